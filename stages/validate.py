"""Stage `validate@<target>`: metrics.json + golden outputs; a missed gate fails the stage with one line."""

from __future__ import annotations

import click

from pipeline import fsutil, layout
from pipeline.console import run_main
from pipeline.params import load_params
from pipeline.validate.harness import raise_if_failed, validate_target


@click.command()
@click.argument("target")
@click.option("--params", "params_path", default="params.yaml", show_default=True)
def main(target: str, params_path: str) -> None:
    def body() -> None:
        params = load_params(params_path)
        params.target(target)
        out = layout.validation_dir(target)
        fsutil.clean_stale_tmp(out.parent)
        with fsutil.atomic_dir(out) as tmp:
            result = validate_target(params, target, tmp)
        # The metrics are in place before the gate verdict, so a failure can be inspected.
        raise_if_failed(result)

    run_main(body, name=f"validate@{target}")


if __name__ == "__main__":
    main()
