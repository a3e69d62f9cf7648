"""The legacy route: intel-npu-acceleration-library (archived upstream), run in its own virtual env."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.targets.base import ModelDims, StrictSettings

RUNTIME = "npu-lib"


class Settings(StrictSettings):
    dtype: Literal["int4", "int8", "fp16"] = Field("int4", description="CompilerConfig(dtype=...)")
    env_dir: str = Field(".venv-npu-lib", description="The isolated virtual environment (relative to the project).")


def preflight(settings: Settings, dims: ModelDims | None) -> list[str]:
    return []


def estimate(settings: Settings, weights: int) -> tuple[int, int]:
    return int(2.5 * weights), 0


def env_check(settings: Settings):
    from pathlib import Path

    from pipeline.doctor import Check

    env = Path(settings.env_dir)
    if (env / "bin" / "python").exists():
        return Check("npu-lib env", "ok", f"{env} exists")
    return Check("npu-lib env", "warn", f"{env} not built yet: `aipc env npu-lib` builds it (offline)")
