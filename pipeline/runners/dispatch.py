"""``open_runner``: the runtime named by the target family's ``RUNTIME`` on the requested device.

``device`` is ``auto`` (best present, labelled when it is a proxy) or an explicit device; the family says
which runtime properties run its artifact on that device, so a runner applies properties and never reads a
family's files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.runners.base import Runner
from pipeline.targets.base import RuntimeOptions, TargetFamily


def open_runner(
    name: str,
    family: TargetFamily,
    settings: Any,
    artifact: Path,
    *,
    device: str,
    options: RuntimeOptions,
) -> Runner:
    runtime = family.RUNTIME
    if runtime == "openvino-genai":
        from pipeline.runners import ov_genai

        choice = ov_genai.choose_device(family.intended_device(settings), device, name)
        props = family.runtime_properties(settings, artifact, choice.device, options)
        return ov_genai.OpenVINOGenAIRunner(artifact, choice, props)
    if runtime == "onnxruntime-genai":
        from pipeline.runners import ort_genai

        choice = ort_genai.choose_device(family.intended_device(settings), device, name)
        props = family.runtime_properties(settings, artifact, choice.device, options)
        return ort_genai.OrtGenAIRunner(artifact, choice, props)
    if runtime == "npu-lib":
        from pipeline.npu_lib.runner import NPULibRunner

        return NPULibRunner(artifact, settings, name)
    raise ValueError(f"unknown runtime {runtime!r}")
