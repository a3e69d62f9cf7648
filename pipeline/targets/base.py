"""The small interface every target family implements.

A family module (``openvino.py``, ``ortgenai.py``, ``npu.py``, ``npu_lib.py``) exposes:

- ``Settings``: a pydantic model of its build knobs, every one explicit with a default and a
  description — never an exporter's hidden per-model default;
- ``RUNTIME``: the name of the runner (``pipeline.runners``) that generates from its artifacts;
- ``preflight(settings, dims) -> list[str]``: problems with the settings for a model of this shape,
  found before any work (one line each, naming the key, the value and what is allowed);
- ``build(ctx) -> dict``: writes the artifact into ``ctx.work_dir`` (a temporary folder that the caller
  moves into place only when the build returns) and returns the facts for ``target.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict


class StrictSettings(BaseModel):
    """Base for build settings: unknown keys are errors (a typo must not silently become a default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ModelDims:
    """The channel sizes that weight-quantization groups must divide."""

    hidden_size: int
    intermediate_size: int
    num_layers: int | None = None
    vocab_size: int | None = None

    @property
    def input_channels(self) -> dict[str, int]:
        """Input-channel size of each linear layer kind (the axis int4 groups run along)."""
        return {
            "qkv_proj/o_proj/gate_up_proj/lm_head (hidden_size)": self.hidden_size,
            "down_proj (intermediate_size)": self.intermediate_size,
        }

    @classmethod
    def from_config(cls, config_path: Path) -> ModelDims:
        cfg = json.loads(config_path.read_text(encoding="utf-8"))
        return cls(
            hidden_size=int(cfg["hidden_size"]),
            intermediate_size=int(cfg["intermediate_size"]),
            num_layers=int(cfg.get("num_hidden_layers", 0)) or None,
            vocab_size=int(cfg.get("vocab_size", 0)) or None,
        )


def group_size_problems(key: str, group_size: int, dims: ModelDims, fix: str) -> list[str]:
    """Why ``group_size`` cannot be used on a model of shape ``dims`` (empty when it can)."""
    if group_size == -1:
        return []
    bad = {name: size for name, size in dims.input_channels.items() if size % group_size}
    if not bad:
        return []
    sizes = ", ".join(f"{name}={size}" for name, size in bad.items())
    return [f"{key} = {group_size}: does not divide the input channels of {sizes}; {fix}"]


@dataclass
class BuildContext:
    """What a family's ``build`` receives."""

    target: str
    settings: Any
    source_dir: Path
    work_dir: Path
    artifacts_dir: Path
    dims: ModelDims
    extra: dict[str, Any] = field(default_factory=dict)
