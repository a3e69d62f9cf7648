"""ONNX Runtime GenAI targets (``ort-dml-int4``, ``ort-cpu-int4``) built with onnxruntime-genai's model builder.

The builder runs in a child process (``pipeline.ort_builder``) on the local ``artifacts/source`` folder —
never the Hub — with every option explicit. The artifact holds ``model.onnx``, ``model.onnx.data``,
``genai_config.json`` (the DML provider for DML targets), tokenizer files and chat template;
``target.json`` records the exact builder invocation and the count of quantized MatMuls read back from
the graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from pipeline.records import BuildFacts
from pipeline.targets.base import (
    BuildContext,
    Check,
    Estimate,
    ModelDims,
    RuntimeOptions,
    StrictSettings,
    group_size_problems,
    scaled,
)

RUNTIME = "onnxruntime-genai"
RUNTIME_PACKAGES = ("onnxruntime-genai", "onnxruntime")
# The DirectML flavour trails the CPU one: the newest installable onnxruntime-genai-directml is 0.13.0
# (0.14.1 needs onnxruntime-directml >= 1.26, which PyPI does not have: newest 1.24.4, checked 2026-11-25).
# The packages built with 0.18.0 load and generate the golden tokens in 0.13.0 (tests/test_install.py runs
# them in an isolated 0.13.0 venv on the CPU provider), so 0.13.0 is what the ort-dml extra installs.
OLDEST_RUNTIME = {"onnxruntime-genai": "0.13.0", "onnxruntime-genai-directml": "0.13.0"}


class Settings(StrictSettings):
    precision: Literal["int4", "int8", "fp16", "bf16", "fp32"] = "int4"
    execution_provider: Literal["cpu", "dml", "cuda", "webgpu"] = Field(
        ..., description="The EP the graph is built for (dml = Windows DirectML)."
    )
    block_size: Literal[16, 32, 64, 128, 256] = Field(32, description="MatMulNBits block size (DML: 128).")
    accuracy_level: Literal[0, 1, 2, 3, 4] = Field(
        4,
        description="MatMulNBits compute type on ONNX Runtime's CPU provider: 4 = int8 activations, 0 = the input "
        "type's. DirectML does not read it (dequantize + GEMM at any level).",
    )
    is_symmetric: bool = True
    algo: Literal["default", "rtn", "k_quant"] = Field(
        "default",
        description="The builder's algo_config: default/rtn = round to nearest, k_quant = llama.cpp's k-quant.",
    )
    int8_layers: Literal["none", "lm_head", "lm_head+sensitive"] = Field(
        "none",
        description="MatMuls kept in int8 instead of int4 (the builder's matmul_mixed_precision): lm_head = the "
        "last MatMul; +sensitive = also llama.cpp's most sensitive ones (first/last eighth of the layers and every "
        "third layer's qkv/v/down projections).",
    )
    exclude_embeds: bool = False
    exclude_lm_head: bool = False
    extra_options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Passed through to the builder's --extra_options as key=value."
    )
    low_memory: bool = Field(
        True,
        description="Stream float weights through disk while quantizing (same output bytes, a fraction of the RAM).",
    )


# extra_options the settings above own: passing them again would make the recorded settings lie.
OWNED_OPTIONS = {
    "block_size": "block_size",
    "int4_block_size": "block_size",
    "accuracy_level": "accuracy_level",
    "int4_accuracy_level": "accuracy_level",
    "is_symmetric": "is_symmetric",
    "int4_is_symmetric": "is_symmetric",
    "algo_config": "algo",
    "int4_algo_config": "algo",
    "matmul_mixed_precision": "int8_layers",
    "exclude_embeds": "exclude_embeds",
    "exclude_lm_head": "exclude_lm_head",
}
MIXED_PRECISION = {"lm_head": "last_matmul:int8", "lm_head+sensitive": "last_matmul:int8,mixed_layers:int8"}


def preflight(settings: Settings, dims: ModelDims | None) -> list[str]:
    problems = []
    reserved = {"hf_token", "hf_remote"} & set(settings.extra_options)
    if reserved:
        problems.append(f"extra_options.{sorted(reserved)[0]}: set by the pipeline (the source is always local)")
    for key in sorted(set(settings.extra_options) & set(OWNED_OPTIONS)):
        problems.append(f"extra_options.{key}: a setting of its own here — use {OWNED_OPTIONS[key]} instead")
    if settings.precision in ("int4", "int8") and dims is not None:
        problems += group_size_problems("block_size", settings.block_size, dims, (256, 128, 64, 32, 16))
    if dims is not None and dims.rotary_dim and dims.head_dim:
        half = dims.rotary_dim // 2
        if half % 8 or half > dims.head_dim // 2:
            where = "runs" if settings.execution_provider == "cpu" else "is validated here on"
            problems.append(
                f"execution_provider = {settings.execution_provider}: the model's rotary half-dimension is {half} "
                f"(head_dim {dims.head_dim} × partial_rotary_factor {dims.partial_rotary_factor} / 2) and this "
                f"target {where} ONNX Runtime's CPU GroupQueryAttention, which needs a multiple of 8 of at most "
                "head_dim / 2 — disable this target for this model"
            )
    return problems


def estimate(settings: Settings, weights: int) -> Estimate:
    """(peak RAM, output disk), ratios to the bf16 checkpoint size measured on Phi-3-mini."""
    io32 = settings.execution_provider == "cpu"
    # int4 (k-quant block 16, lm_head and the sensitive MatMuls int8): 3.81 GB (CPU: fp32 embeddings and I/O) and
    # 2.99 GB (DML: fp16) for 7.64 GB of bf16, measured in the Phi-3-mini main job's run 5
    size = {"int4": 0.50 if io32 else 0.39, "int8": 0.6, "fp16": 1.0, "bf16": 1.0, "fp32": 2.0}[settings.precision]
    if settings.low_memory:
        # Phi-3-mini, the stage's build alone (2026-12-06, GNU time, the builder's child): 5.26 / 4.40 GiB with the
        # vectorised k-quant writing its slices into place (pipeline.ort_builder.kquant); the original k-quant
        # sliced, same session: 6.34 GiB for ort-cpu-int4 (the main job's run 5, process tree: 6.23 / 5.35 GiB;
        # run 4, the builder's own RTN at block 32: 5.10 / 2.69 GiB)
        ram = 0.66 if io32 else 0.54
    else:
        ram = 3.1 if io32 else 2.4
    return Estimate(
        scaled(0.6, ram, weights),
        int(size * weights),
        # onnxruntime holds the weights once (fp32 CPU I/O adds the fp32 activations and logits); the fp16 DML
        # graph validated on the CPU provider (no DirectML here) holds more. Phi-3-mini main job run 5 (k-quant
        # block 16): 9.83 GiB CPU, 9.32 GiB DML with the 4096-token run (run 4, RTN block 32: 8.88 / 7.66 GiB);
        # the DML graph at accuracy level 4 (2026-12-06, the stage alone at Phi-3-mini size): 11.29 GiB, what
        # the level-4 kernels hold beyond level 0's not traced
        scaled(0.8, size + (0.21 if io32 else 0.74), weights),
        # the builder's unquantised model on disk before quantisation: fp32 for CPU I/O, fp16 for DML
        # (measured on Phi-3-mini: +15.3 GB and +7.6 GB at the peak)
        int((2.0 if io32 else 1.0) * weights),
        # a scoring pass keeps the KV cache in the model's I/O type, and the logits come out once and are
        # widened to f32 once
        kv_element_bytes=4 if io32 else 2,
        logits_copies=2,
    )


def intended_device(settings: Settings) -> str:
    return {"cpu": "CPU", "dml": "DML", "cuda": "CUDA", "webgpu": "WebGPU"}[settings.execution_provider]


def build(ctx: BuildContext) -> BuildFacts:
    from pipeline.ort_builder.run import run_builder

    s: Settings = ctx.settings
    return run_builder(
        lambda cache: builder_command(s, ctx.source_dir.resolve(), ctx.work_dir.resolve(), cache),
        low_memory=s.low_memory,
        portable=lambda args: portable(args, ctx.source_dir.resolve(), ctx.work_dir.resolve(), ctx.target),
        work_dir=ctx.work_dir,
    )


def builder_command(settings: Settings, source: Path, out: Path, cache: Path) -> list[str]:
    """The exact builder invocation (recorded in target.json)."""
    extra: dict[str, Any] = {
        "hf_token": "false",
        "hf_remote": "false",
        "is_symmetric": str(settings.is_symmetric).lower(),
        # A window-sized KV cache (the CPU default for sliding-window layers) refuses any generation whose
        # max_length is below the window (measured on Phi-3-mini-4k's geometry: "KV cache capacity (47) must be
        # at least local_window_size (2047)" for a 15-token prompt + 32 new tokens); the full-length cache with the
        # window in the attention kernel (what the DML graph has) gives the same logits.
        "windowed_kv_cache": "false",
    }
    if settings.precision in ("int4", "int8"):
        extra["block_size"] = settings.block_size
        extra["accuracy_level"] = settings.accuracy_level
        if settings.algo != "default":
            extra["algo_config"] = settings.algo
        if settings.int8_layers != "none":
            extra["matmul_mixed_precision"] = MIXED_PRECISION[settings.int8_layers]
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


def portable(args: list[str], source_dir: Path, work_dir: Path, target: str) -> list[str]:
    """The command with this machine's paths replaced by the project's (so the record is the same everywhere)."""
    out = []
    for a in args:
        a = a.replace(str(source_dir), "artifacts/source").replace(str(work_dir), f"artifacts/targets/{target}")
        out.append("<tmp>/cache" if a.endswith("/cache") else a)
    return out


def cpu_threads(requested: int | None = None) -> int:
    """Physical cores: onnxruntime-genai's own default used one thread on this 2-core build machine
    (measured: 223 ms/token with the default, 120 ms/token with 2 threads on Phi-3-mini int4)."""
    import os

    import psutil

    return requested or psutil.cpu_count(logical=False) or os.cpu_count() or 1


def runtime_properties(settings: Settings, artifact: Path, device: str, options: RuntimeOptions) -> dict[str, Any]:
    """Session options overlaid on ``genai_config.json``. On the CPU provider: one intra-op thread per
    physical core. On DirectML the graph's own configuration is used as built."""
    if device == "CPU":
        return {"intra_op_num_threads": cpu_threads(options.threads)}
    return {}


def environment_checks(settings: Settings) -> list[Check]:
    return []


def long_context_edges(settings: Settings) -> list[tuple[int, str]]:
    return []


def long_context_caveat(settings: Settings, dims: ModelDims, length: int, device: str) -> str | None:
    """A teacher-forced pass is one prefill: past LongRoPE's switch it proves the long factors. Generation that
    *crosses* the switch is another matter on DirectML: onnxruntime-genai recomputes the cache with the long
    factors at that token on CPU/CUDA (the "Phi-3 RoPE rewind"), not on DirectML (onnxruntime-genai #1787)."""
    crosses = dims.longrope and length > dims.original_max_position_embeddings
    if intended_device(settings) == "DML" and device != "DML" and crosses:
        return (
            f"one {length}-token prefill on the {device} proxy; on DirectML, generation that crosses "
            f"{dims.original_max_position_embeddings} tokens keeps the cache of the short factors (no Phi-3 RoPE "
            "rewind, onnxruntime-genai #1787): not proven here"
        )
    return None


def max_context(settings: Settings, artifact: Path, device: str) -> tuple[int, str] | None:
    from pipeline.ort_builder.graph import GenAIConfig

    n = GenAIConfig(artifact).context_length
    return (n, f"context_length {n} in genai_config.json") if n else None
