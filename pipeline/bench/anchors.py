"""The anchor commands: what a user would run without this project, with the flags the targets' settings mean.

``optimum-cli export openvino`` for the OpenVINO targets (every compression knob the target sets, passed
explicitly) and onnxruntime-genai's builder for the ORT GenAI targets (the exact command the project's build
records). Data-aware OpenVINO settings have no anchor: optimum-cli would calibrate on a Hub dataset. Data-free
AWQ (``awq: true`` with ``calibration.dataset: none``) is ``optimum-cli --awq`` without ``--dataset``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError


def data_free_twin(build: dict[str, Any]) -> dict[str, Any] | None:
    """A data-aware OpenVINO ``build:`` in the form optimum-cli can run offline, or None when it already can.

    The build benchmark compares the same settings on both sides; calibration has no offline anchor (optimum-cli
    calibrates on Hub datasets only), so a calibrated default is benchmarked as its data-free twin: every knob
    kept, AWQ data-free (``--awq``), scale estimation / GPTQ / LoRA correction off. The calibration's own cost
    is then not in the comparison (the main-job benchmark runs the defaults as they are)."""
    from pipeline.targets.compression import DATA_FREE, NEED_DATA

    calibration = dict(build.get("calibration") or {})
    if not any(build.get(k) for k in NEED_DATA) and not (build.get("awq") and calibration.get("dataset") != DATA_FREE):
        return None
    return {**build, **dict.fromkeys(NEED_DATA, False), "calibration": {**calibration, "dataset": DATA_FREE}}


def optimum_cli_flags(settings: Any) -> list[str]:
    """optimum-cli's flags for an OpenVINO target's settings."""
    if getattr(settings, "data_aware", False):
        raise PipelineError("data-aware settings have no optimum-cli anchor (it would calibrate on a Hub dataset)")
    fmt = settings.weight_format
    flags = ["--weight-format", fmt]
    if fmt in ("int4", "nf4"):
        flags += ["--group-size", str(settings.group_size), "--ratio", str(settings.ratio)]
        if settings.sym:
            flags.append("--sym")
        if settings.backup_precision != "int8_asym":
            flags += ["--backup-precision", settings.backup_precision]
        if settings.all_layers:
            flags.append("--all-layers")
        if settings.sensitivity_metric:
            flags += ["--sensitivity-metric", settings.sensitivity_metric]
        if settings.awq:
            flags.append("--awq")
        if settings.group_size_fallback != "error":
            flags += ["--group-size-fallback", settings.group_size_fallback]
    elif fmt == "int8" and settings.sym:
        flags.append("--sym")
    return flags


def anchor_command(target: Any, model: Path, out: Path, cache: Path) -> list[str]:
    """The anchor for one ``params`` target (its family decides which tool)."""
    bindir = Path(sys.executable).parent
    if target.family in ("openvino", "npu"):
        cli = [
            str(bindir / "optimum-cli"),
            "export",
            "openvino",
            "-m",
            str(model),
            "--task",
            "text-generation-with-past",
        ]
        return [*cli, *optimum_cli_flags(target.build), str(out)]
    if target.family == "ortgenai":
        from pipeline.targets.ortgenai import builder_command

        return [
            sys.executable,
            "-m",
            "onnxruntime_genai.models.builder",
            *builder_command(target.build, model, out, cache),
        ]
    raise PipelineError(f"family {target.family} has no anchor command")
