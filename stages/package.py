"""Stage `package@<target>`: the validated artifact + manifest.json + model card + golden outputs."""

from __future__ import annotations

import click

from pipeline import fsutil
from pipeline.console import run_main
from pipeline.package import package_dir, package_target
from pipeline.params import load_params


@click.command()
@click.argument("target")
@click.option("--params", "params_path", default="params.yaml", show_default=True)
def main(target: str, params_path: str) -> None:
    def body() -> None:
        params = load_params(params_path)
        params.target(target)
        out = package_dir(target)
        fsutil.clean_stale_tmp(out.parent)
        with fsutil.atomic_dir(out) as tmp:
            package_target(params, target, tmp)

    run_main(body, name=f"package@{target}")


if __name__ == "__main__":
    main()
