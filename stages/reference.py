"""Stage `reference`: the source model in transformers fp32 — outputs and held-out likelihood to compare with."""

from __future__ import annotations

import click

from pipeline import layout, resources
from pipeline.build import require_source
from pipeline.stage import run_output_stage
from pipeline.validate.reference import build_reference


def produce(params, tmp):
    source = require_source(layout.ARTIFACTS)
    # fp32 = twice the bf16 checkpoint in RAM, plus activations
    resources.require_ram(int(2.2 * resources.weights_bytes(source)), "the fp32 reference")
    return build_reference(params, source, tmp)


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
def main(params_path: str) -> None:
    run_output_stage("reference", params_path, lambda p: layout.reference_dir(), produce)


if __name__ == "__main__":
    main()
