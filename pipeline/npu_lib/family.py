"""The legacy route (``npu-lib-int4``): intel-npu-acceleration-library, in its own virtual environment.

The seed project ran Phi-3 with ``NPUModelForCausalLM.from_pretrained(model, use_cache=True,
config=CompilerConfig(dtype=int4), attn_implementation="sdpa")``. The library compiles at load time and
ships no binary to publish, so this target's artifact is the *run record*: which environment (library,
OpenVINO 2024.4, torch, transformers versions; build time and size), whether an NPU was found
(``npu_available()``) — without one it runs on the CPU and the record says ``CPU (fallback)`` — the load
time and a smoke generation, plus the tokenizer files to decode its outputs. Its compiled-model cache (a
pickle that ``torch.load`` fails to read back) is never written. Off by default (``enabled: false``):
turning it on builds the environment once per machine (~2 min, ~1.7 GB), offline but for the package index.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from pipeline.errors import BuildError
from pipeline.records import BuildFacts, Record
from pipeline.targets.base import BuildContext, Check, Estimate, ModelDims, RuntimeOptions, StrictSettings, scaled

RUNTIME = "npu-lib"
RUNTIME_PACKAGES = ("intel-npu-acceleration-library",)
OLDEST_RUNTIME: dict[str, str] = {}
ENV_FACTS = (
    "library",
    "openvino",
    "requirements",
    "build_seconds",
    "size_bytes",
    "library_version",
    "torch",
    "transformers",
    "path",
)
COPIED = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


class NpuLibRun(Record):
    """``npu_lib_run.json``: this route's artifact — the run record (written and read by this package only)."""

    FILE: ClassVar[str] = "npu_lib_run.json"
    device: str
    npu_available: bool
    npu_driver_version: str | None
    dtype: str
    model_dir: str  # the source folder, relative to the artifact (the library compiles it at load time)
    load_seconds: float
    smoke: dict[str, list[int]]
    compiled_model_cache: str
    environment: dict[str, Any]


class Settings(StrictSettings):
    dtype: Literal["int4", "int8", "fp16"] = Field("int4", description="CompilerConfig(dtype=...)")
    env_dir: str | None = Field(
        None, description="The isolated virtual environment; null = the build cache (shared by every checkout)."
    )


def preflight(settings: Settings, dims: ModelDims | None) -> list[str]:
    return []


def estimate(settings: Settings, weights: int) -> Estimate:
    # fp32 load + the library's quantised copy; the artifact itself is a few small files
    # validation runs the library's model in its own process the way the build does: fp32 + quantised copy
    return Estimate(
        scaled(1.5, 3.0, weights), 10 * 2**20, scaled(1.5, 3.0, weights), kv_element_bytes=4, logits_copies=2
    )


def intended_device(settings: Settings) -> str:
    return "NPU"


def environment_checks(settings: Settings) -> list[Check]:
    from pipeline.npu_lib.env import read_stamp, resolve_env_dir

    env = resolve_env_dir(settings.env_dir)
    rec = read_stamp(env)
    if rec:
        where = "NPU found" if rec.get("npu_available") else "no NPU: it will run on the CPU (fallback)"
        return [Check("npu-lib env", "ok", f"{env} ({rec['library']}, {rec['size_bytes'] / 1e9:.1f} GB; {where})")]
    return [Check("npu-lib env", "warn", f"{env} not built yet: `aipc env npu-lib` (or the build stage) builds it")]


def runtime_properties(settings: Settings, artifact: Path, device: str, options: RuntimeOptions) -> dict[str, Any]:
    """The library takes no runtime properties: it compiles the source model itself when it loads it."""
    return {"dtype": settings.dtype}


def build(ctx: BuildContext) -> BuildFacts:
    from pipeline.npu_lib.client import NPULibWorker, device_choice
    from pipeline.npu_lib.env import ensure_env, env_python, resolve_env_dir

    s: Settings = ctx.settings
    env = ensure_env(resolve_env_dir(s.env_dir))
    for name in COPIED:
        if (ctx.source_dir / name).is_file():
            shutil.copyfile(ctx.source_dir / name, ctx.work_dir / name)
    # Relative to the artifact folder (its temporary folder is a sibling of the final one).
    model_rel = os.path.relpath(ctx.source_dir.resolve(), ctx.work_dir.resolve())
    worker = NPULibWorker(env_python(Path(env["path"])), ctx.source_dir, s.dtype)
    try:
        choice = device_choice(worker.facts)
        ids = worker.call({"op": "chat_ids", "messages": [{"role": "user", "content": "Hello"}]})["ids"]
        smoke = worker.call({"op": "generate", "ids": ids, "max_new_tokens": 8})
    finally:
        worker.close()
    pickles = [p.name for p in ctx.work_dir.rglob("*") if p.suffix in (".pt", ".pkl", ".pickle", ".bin")]
    if pickles:
        raise BuildError(f"the npu-lib run left pickles in the artifact ({', '.join(pickles)}): refusing to keep them")
    record = NpuLibRun(
        device=choice.label if choice.device == "NPU" else "CPU (fallback)",
        npu_available=worker.facts["npu_available"],
        npu_driver_version=worker.facts.get("npu_driver_version"),
        dtype=s.dtype,
        model_dir=model_rel,
        load_seconds=round(worker.load_seconds, 2),
        smoke={"prompt_ids": ids, "tokens": smoke["tokens"]},
        compiled_model_cache="disabled (export=False): no pickle is written or published",
        environment={k: env.get(k) for k in ENV_FACTS},
    )
    record.write(ctx.work_dir)
    return BuildFacts(npu_lib=record.dump())


def long_context_edges(settings: Settings) -> list[tuple[int, str]]:
    return []


def max_context(settings: Settings, artifact: Path, device: str) -> tuple[int, str] | None:
    return None


def long_context_caveat(settings: Settings, dims: ModelDims, length: int, device: str) -> str | None:
    return None
