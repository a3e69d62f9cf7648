"""Stage `build@<target>`: one artifact in artifacts/targets/<target> (+ target.json)."""

from __future__ import annotations

import click

from pipeline import layout
from pipeline.build import build_target
from pipeline.stage import run_target_stage


@click.command()
@click.argument("target")
@click.option("--params", "params_path", default="params.yaml", show_default=True)
def main(target: str, params_path: str) -> None:
    run_target_stage("build", target, params_path, layout.target_dir, build_target)


if __name__ == "__main__":
    main()
