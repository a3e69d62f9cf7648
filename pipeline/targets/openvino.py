"""OpenVINO IR targets for CPU/iGPU (``ov-fp16``, ``ov-int4``): derived from the shared FP IR with NNCF."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.targets.base import ModelDims, group_size_problems
from pipeline.targets.weights import Compression

RUNTIME = "openvino-genai"


class Settings(Compression):
    weight_format: Literal["fp16", "fp32", "int8", "int4"] = Field(
        "int4", description="fp16/fp32: no compression; int8: per-channel int8; int4: grouped int4 + backup."
    )


def preflight(settings: Settings, dims: ModelDims | None) -> list[str]:
    problems: list[str] = []
    if settings.weight_format != "int4":
        return problems
    if dims is not None and settings.group_size_fallback == "error":
        problems += group_size_problems(
            "group_size",
            settings.group_size,
            dims,
            "use a group size that divides them (e.g. 128, 64, or -1 per channel) "
            "or set group_size_fallback: ignore|adjust",
        )
    return problems


def estimate(settings: Settings, weights: int) -> tuple[int, int]:
    """(peak RAM, output disk) for a source checkpoint of ``weights`` bytes (bf16), measured on Phi-3-mini."""
    size = {"fp32": 2.0, "fp16": 1.0, "int8": 0.52, "int4": 0.37}[settings.weight_format]
    return int(1.4 * weights), int(size * weights)
