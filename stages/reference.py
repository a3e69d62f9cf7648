"""Stage `reference`: the source model in transformers fp32 — outputs and held-out likelihood to compare with."""

from __future__ import annotations

import click

from pipeline import layout
from pipeline.stage import run_output_stage
from pipeline.validate.reference import reference_stage


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
def main(params_path: str) -> None:
    run_output_stage("reference", params_path, lambda p: layout.reference_dir(), reference_stage)


if __name__ == "__main__":
    main()
