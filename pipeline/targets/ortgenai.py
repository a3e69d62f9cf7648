"""ONNX Runtime GenAI targets (``ort-dml-int4``, ``ort-cpu-int4``) built with onnxruntime-genai's model builder.

The builder runs in a child process (``python -m pipeline.targets.ort_builder``) on the local
``artifacts/source`` folder — never the Hub (``hf_token=false``, ``hf_remote=false``) — with every option
explicit. The child is either the stock builder or, with ``low_memory: true`` (default), the same builder
with its save step streamed through disk (see ``ort_builder``): same output bytes, a fraction of the RAM.
The artifact holds ``model.onnx``, ``model.onnx.data``, ``genai_config.json`` (the DML provider for DML
targets), tokenizer files and chat template; ``target.json`` records the exact builder invocation and the
count of quantized MatMuls read back from the graph.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from pipeline.errors import BuildError
from pipeline.targets.base import BuildContext, ModelDims, StrictSettings, group_size_problems

log = logging.getLogger(__name__)

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
        description="Stream float weights through disk while quantizing (same output bytes, a fraction of the RAM).",
    )


def preflight(settings: Settings, dims: ModelDims | None) -> list[str]:
    problems = []
    reserved = {"hf_token", "hf_remote"} & set(settings.extra_options)
    if reserved:
        problems.append(f"extra_options.{sorted(reserved)[0]}: set by the pipeline (the source is always local)")
    if settings.precision in ("int4", "int8") and dims is not None:
        problems += group_size_problems(
            "block_size", settings.block_size, dims, "use a block size that divides them (16/32/64/128)"
        )
    return problems


def estimate(settings: Settings, weights: int) -> tuple[int, int]:
    """(peak RAM, output disk), ratios to the bf16 checkpoint size measured on Phi-3-mini."""
    size = {"int4": 0.36, "int8": 0.6, "fp16": 1.0, "bf16": 1.0, "fp32": 2.0}[settings.precision]
    io32 = settings.execution_provider == "cpu"
    if settings.low_memory:
        ram = 0.75 if io32 else 0.5
    else:
        ram = 3.1 if io32 else 2.4
    return int(ram * weights), int(size * weights)


def intended_device(settings: Settings) -> str:
    return {"cpu": "CPU", "dml": "DML", "cuda": "CUDA", "webgpu": "WebGPU"}[settings.execution_provider]


def builder_command(settings: Settings, source: Path, out: Path, cache: Path) -> list[str]:
    """The exact builder invocation (recorded in target.json)."""
    extra: dict[str, Any] = {
        "hf_token": "false",
        "hf_remote": "false",
        "is_symmetric": str(settings.is_symmetric).lower(),
    }
    if settings.precision in ("int4", "int8"):
        extra["block_size"] = settings.block_size
        extra["accuracy_level"] = settings.accuracy_level
        if settings.algo != "default":
            extra["algo_config"] = settings.algo
    if settings.exclude_embeds:
        extra["exclude_embeds"] = "true"
    if settings.exclude_lm_head:
        extra["exclude_lm_head"] = "true"
    for k, v in settings.extra_options.items():
        extra[k] = str(v).lower() if isinstance(v, bool) else v
    cmd = [
        "-i",
        str(source),
        "-o",
        str(out),
        "-p",
        settings.precision,
        "-e",
        settings.execution_provider,
        "-c",
        str(cache),
        "--extra_options",
        *[f"{k}={v}" for k, v in extra.items()],
    ]
    return cmd


def build(ctx: BuildContext) -> dict[str, Any]:
    s: Settings = ctx.settings
    # Temporary files (the builder's cache, the float model streamed to disk) stay beside the output
    # on the same disk, never in the artifact.
    tmp_root = Path(tempfile.mkdtemp(prefix=".ort-build-", dir=ctx.work_dir.parent))
    try:
        # absolute paths: the low-memory save changes the working directory
        args = builder_command(s, ctx.source_dir.resolve(), ctx.work_dir.resolve(), tmp_root.resolve() / "cache")
        mode = "low-memory" if s.low_memory else "stock"
        cmd = [
            sys.executable,
            "-m",
            "pipeline.targets.ort_builder",
            "--mode",
            mode,
            "--tmp",
            str(tmp_root),
            "--",
            *args,
        ]
        log.info("onnxruntime-genai builder (%s): %s", mode, " ".join(args))
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
            if proc.returncode < 0 or proc.returncode == 137:
                raise BuildError(
                    f"the ORT GenAI builder was killed (signal {-proc.returncode if proc.returncode < 0 else 9})",
                    fix="most likely out of memory: close other programs or keep low_memory: true",
                )
            raise BuildError(f"the ORT GenAI builder failed: {tail[0]}")
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    for required in ("model.onnx", "genai_config.json"):
        if not (ctx.work_dir / required).is_file():
            raise BuildError(f"the ORT GenAI builder did not write {required}")
    return {
        "builder_command": ["python", "-m", "onnxruntime_genai.models.builder", *_portable(args, ctx)],
        "mode": mode,
        "graph": graph_summary(ctx.work_dir / "model.onnx"),
        "providers": providers(ctx.work_dir),
    }


def _portable(args: list[str], ctx: BuildContext) -> list[str]:
    out = []
    for a in args:
        a = a.replace(str(ctx.source_dir), "artifacts/source").replace(
            str(ctx.work_dir), f"artifacts/targets/{ctx.target}"
        )
        out.append("<tmp>/cache" if a.endswith("/cache") else a)
    return out


def graph_summary(model_path: Path) -> dict[str, Any]:
    """Operator counts of the built graph (without loading its weights)."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    ops: dict[str, int] = {}
    nbits: dict[str, int] = {}
    for node in model.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
        if node.op_type == "MatMulNBits":
            attrs = {a.name: a.i for a in node.attribute if a.type == onnx.AttributeProto.INT}
            key = f"{attrs.get('bits')}bit/block{attrs.get('block_size')}/acc{attrs.get('accuracy_level', 0)}"
            nbits[key] = nbits.get(key, 0) + 1
    return {
        "quantized_matmuls": ops.get("MatMulNBits", 0),
        "float_matmuls": ops.get("MatMul", 0),
        "quantized_by_kind": nbits,
        "op_counts": dict(sorted(ops.items())),
    }


def providers(model_dir: Path) -> list[str]:
    import json

    cfg = json.loads((model_dir / "genai_config.json").read_text())
    opts = cfg["model"]["decoder"]["session_options"].get("provider_options", [])
    return [next(iter(o)) for o in opts]
