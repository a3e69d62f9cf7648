"""Stage `package@<target>`: the validated artifact + manifest.json + model card + golden outputs."""

from __future__ import annotations

import click

from pipeline.layout import package_dir
from pipeline.package import package_target
from pipeline.stage import run_target_stage


@click.command()
@click.argument("target")
@click.option("--params", "params_path", default="params.yaml", show_default=True)
def main(target: str, params_path: str) -> None:
    run_target_stage("package", target, params_path, package_dir, package_target)


if __name__ == "__main__":
    main()
