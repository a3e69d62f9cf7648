"""Stage `reference`: the source model in transformers fp32 — outputs and held-out likelihood to compare with."""

from __future__ import annotations

import click

from pipeline import fsutil, layout, resources
from pipeline.build import require_source
from pipeline.console import run_main
from pipeline.params import load_params
from pipeline.validate.reference import build_reference


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
def main(params_path: str) -> None:
    def body() -> None:
        params = load_params(params_path)
        source = require_source(layout.ARTIFACTS)
        # fp32 = twice the bf16 checkpoint in RAM, plus activations
        resources.require_ram(int(2.2 * resources.weights_bytes(source)), "the fp32 reference")
        out = layout.reference_dir()
        fsutil.clean_stale_tmp(out.parent)
        with fsutil.atomic_dir(out) as tmp:
            build_reference(params, source, tmp)

    run_main(body, name="reference")


if __name__ == "__main__":
    main()
