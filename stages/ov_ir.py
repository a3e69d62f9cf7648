"""Stage `ov-ir`: the single FP OpenVINO IR (+ tokenizers) that every OpenVINO target derives from."""

from __future__ import annotations

import click

from pipeline import layout
from pipeline.openvino_ir.export import build_ov_ir
from pipeline.stage import run_output_stage


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
def main(params_path: str) -> None:
    run_output_stage("ov-ir", params_path, lambda p: layout.ov_ir_dir(), build_ov_ir)


if __name__ == "__main__":
    main()
