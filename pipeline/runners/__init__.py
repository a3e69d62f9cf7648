"""Runners: generate from an artifact with its own runtime (see ``base.Runner``).

``open_runner`` picks the runtime named by the target family's ``RUNTIME`` and the device by the
target's ``device`` setting (``auto`` = best present, labelled when it is a proxy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.fsutil import read_json
from pipeline.runners.base import Runner


def open_runner(
    runtime: str,
    name: str,
    target_dir: Path,
    family: Any,
    settings: Any,
    *,
    device: str,
    validation: Any,
    cache_root: Path,
) -> Runner:
    if runtime == "openvino-genai":
        from pipeline.runners import ov_genai

        choice = ov_genai.choose_device(family.intended_device(settings), device, name)
        npu_props = None
        cfg = target_dir / "npu_config.json"
        if cfg.is_file():
            npu_cfg = read_json(cfg)
            npu_props = dict(npu_cfg.get("properties", {}))
            if npu_cfg.get("blob") and choice.device == "NPU":
                npu_props["BLOB_PATH"] = str(target_dir / npu_cfg["blob"])
                if npu_cfg.get("cache_mode", "OPTIMIZE_SIZE") == "OPTIMIZE_SIZE":
                    npu_props["WEIGHTS_PATH"] = str(target_dir / "openvino_model.bin")
        return ov_genai.OpenVINOGenAIRunner(
            target_dir,
            choice,
            cpu_precision=validation.openvino_cpu_precision,
            npu_properties=npu_props,
            cache_root=cache_root / "npu_cache" / name,
        )
    if runtime == "onnxruntime-genai":
        from pipeline.runners import ort_genai

        choice = ort_genai.choose_device(family.intended_device(settings), device, name)
        return ort_genai.OrtGenAIRunner(target_dir, choice, threads=getattr(validation, "threads", None))
    if runtime == "npu-lib":
        from pipeline.runners import npu_lib

        return npu_lib.NPULibRunner(target_dir, settings, name)
    raise ValueError(f"unknown runtime {runtime!r}")
