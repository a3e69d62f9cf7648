"""Stage `source`: the selected model as a verified HF folder in artifacts/source (+ source.json)."""

from __future__ import annotations

import click

from pipeline import layout
from pipeline.sources import fetch_source
from pipeline.stage import run_output_stage


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
def main(params_path: str) -> None:
    run_output_stage("source", params_path, lambda p: layout.source_dir(), fetch_source)


if __name__ == "__main__":
    main()
