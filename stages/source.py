"""Stage `source`: the selected model as a verified HF folder in artifacts/source (+ source.json)."""

from __future__ import annotations

import click

from pipeline import layout
from pipeline.console import run_main
from pipeline.fsutil import atomic_dir, clean_stale_tmp
from pipeline.params import load_params
from pipeline.sources import fetch_source


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
def main(params_path: str) -> None:
    def body() -> None:
        params = load_params(params_path)
        out = layout.source_dir()
        clean_stale_tmp(out.parent)
        with atomic_dir(out) as tmp:
            fetch_source(params, tmp)

    run_main(body, name="stage source")


if __name__ == "__main__":
    main()
