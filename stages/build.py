"""Stage `build@<target>`: one artifact in artifacts/targets/<target> (+ target.json)."""

from __future__ import annotations

import click

from pipeline import layout
from pipeline.build import build_target
from pipeline.console import run_main
from pipeline.fsutil import atomic_dir, clean_stale_tmp
from pipeline.params import load_params


@click.command()
@click.argument("target")
@click.option("--params", "params_path", default="params.yaml", show_default=True)
def main(target: str, params_path: str) -> None:
    def body() -> None:
        params = load_params(params_path)
        params.target(target)  # unknown name → one clear line
        out = layout.target_dir(target)
        clean_stale_tmp(out.parent)
        with atomic_dir(out) as tmp:
            build_target(params, target, tmp)

    run_main(body, name=f"build@{target}")


if __name__ == "__main__":
    main()
