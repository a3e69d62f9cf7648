"""Stage `validate@<target>`: metrics.json + golden outputs; a missed gate fails the stage with one line."""

from __future__ import annotations

import click

from pipeline import layout
from pipeline.stage import run_target_stage
from pipeline.validate.harness import raise_if_failed, validate_target


@click.command()
@click.argument("target")
@click.option("--params", "params_path", default="params.yaml", show_default=True)
def main(target: str, params_path: str) -> None:
    # The gate verdict comes after the metrics are in place, so a failure can be inspected.
    run_target_stage("validate", target, params_path, layout.validation_dir, validate_target, after=raise_if_failed)


if __name__ == "__main__":
    main()
