"""ONNX Runtime GenAI targets (``ort-dml-int4``, ``ort-cpu-int4``) built with onnxruntime-genai's model builder."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.targets.base import ModelDims, StrictSettings, group_size_problems

RUNTIME = "onnxruntime-genai"


class Settings(StrictSettings):
    precision: Literal["int4", "int8", "fp16", "bf16", "fp32"] = "int4"
    execution_provider: Literal["cpu", "dml", "cuda", "webgpu"] = Field(
        ..., description="The EP the graph is built for (dml = Windows DirectML)."
    )
    block_size: Literal[16, 32, 64, 128, 256] = Field(32, description="MatMulNBits block size (DML: 128).")
    accuracy_level: Literal[0, 1, 2, 3, 4] = Field(
        4, description="MatMulNBits compute type: 4 = int8 activations (CPU), 0 = EP default (DML)."
    )
    is_symmetric: bool = True
    algo: Literal["default", "rtn", "k_quant"] = "default"
    exclude_embeds: bool = False
    exclude_lm_head: bool = False
    extra_options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Passed through to the builder's --extra_options as key=value."
    )
    low_memory: bool = Field(
        True,
        description="Keep float weights on disk while quantizing (same output bytes, a fraction of the RAM).",
    )


def preflight(settings: Settings, dims: ModelDims | None) -> list[str]:
    if settings.precision not in ("int4", "int8") or dims is None:
        return []
    return group_size_problems(
        "block_size", settings.block_size, dims, "use a block size that divides them (16/32/64/128)"
    )


def estimate(settings: Settings, weights: int) -> tuple[int, int]:
    """(peak RAM, output disk); the low-memory build keeps float weights on disk while quantizing."""
    size = {"int4": 0.36, "int8": 0.6, "fp16": 1.0, "bf16": 1.0, "fp32": 2.0}[settings.precision]
    ram = 0.7 if settings.low_memory else 3.1
    return int(ram * weights), int(size * weights)
