"""NPU int4 OpenVINO IR (``ov-npu-int4``): an NPU-compliant compression of the shared FP IR + NPU run config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.targets.base import ModelDims, StrictSettings, group_size_problems
from pipeline.targets.weights import Compression

RUNTIME = "openvino-genai"


class NPURunConfig(StrictSettings):
    """openvino-genai's NPU pipeline properties, applied only when the device is NPU."""

    max_prompt_len: int = Field(1024, ge=16, description="NPU compiles static shapes: the longest prompt it takes.")
    min_response_len: int = Field(128, ge=1, description="Tokens the compiled KV cache reserves for the answer.")
    generate_hint: Literal["FAST_COMPILE", "BEST_PERF"] = "FAST_COMPILE"
    prefill_hint: Literal["DYNAMIC", "STATIC"] = "DYNAMIC"
    cache_dir: str = Field("npu_cache", description="Compiled-blob cache (relative to the model folder).")


class Settings(Compression):
    weight_format: Literal["int4", "nf4"] = "int4"
    group_size: int = -1
    ratio: float = 1.0
    npu: NPURunConfig = Field(default_factory=NPURunConfig)


def preflight(settings: Settings, dims: ModelDims | None) -> list[str]:
    """OpenVINO GenAI's NPU rules: int4/nf4, symmetric, ratio 1.0, group size -1 or 128 (nf4: -1 only)."""
    rules = "NPU rule: OpenVINO GenAI on NPU needs"
    problems = []
    if not settings.sym:
        problems.append(f"sym = False: {rules} symmetric int4 weights (set sym: true)")
    if settings.ratio != 1.0:
        problems.append(f"ratio = {settings.ratio}: {rules} every ratio-defining layer in int4 (set ratio: 1.0)")
    if settings.group_size not in (-1, 128):
        problems.append(f"group_size = {settings.group_size}: {rules} group size -1 (channel-wise) or 128")
    if settings.weight_format == "nf4" and settings.group_size != -1:
        problems.append(
            f"weight_format = nf4 with group_size = {settings.group_size}: {rules} nf4 channel-wise only (group_size: -1)"
        )
    if settings.gptq or settings.lora_correction:
        problems.append("gptq/lora_correction: not validated for NPU; use awq + scale_estimation")
    if dims is not None and settings.group_size == 128:
        problems += group_size_problems("group_size", 128, dims, "use group_size: -1 (channel-wise)")
    return problems


def estimate(settings: Settings, weights: int) -> tuple[int, int]:
    return int(1.3 * weights), int(0.27 * weights)
