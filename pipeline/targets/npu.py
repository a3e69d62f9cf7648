"""NPU int4 OpenVINO IR (``ov-npu-int4``): an NPU-compliant compression of the shared FP IR + NPU run config.

What OpenVINO GenAI needs to run an LLM on the NPU (docs: "OpenVINO GenAI on NPU"):
- weights int4 (or nf4, channel-wise only, Core Ultra Series 2+), **symmetric**, ratio 1.0, group size
  -1 (channel-wise) or 128 — checked before any work by ``preflight``. Where 128 does not divide a layer's
  input channels (a 576-wide model), ``group_size_fallback: ignore`` leaves that layer in the backup
  precision — channel-wise int8, the precision embeddings and lm_head always have in an NPU IR;
- pipeline properties for its static-shape compilation (``MAX_PROMPT_LEN``, ``MIN_RESPONSE_LEN``,
  ``PREFILL_HINT``, ``GENERATE_HINT``, ``CACHE_DIR``) — written to ``npu_config.json`` in the artifact
  (``NpuConfigFile``, owned by this family) and applied by ``runtime_properties`` only when the device is NPU;
- optionally an ahead-of-time compiled blob (``EXPORT_BLOB``/``BLOB_PATH``/``CACHE_MODE``), which can only
  be made where an NPU and its driver are present: the build does it there and records the NPU's
  architecture and driver version (a blob is only valid for them). Elsewhere it records
  ``npu_compile: skipped — no NPU device (available: [...])``; it never compiles on a fallback device.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from pipeline import layout
from pipeline.errors import BuildError
from pipeline.openvino_ir import MODEL_BIN
from pipeline.records import BuildFacts, Compliance, NpuCompile, Record, WeightSummary
from pipeline.targets import openvino
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
from pipeline.targets.compression import CALIBRATION_RAM_RATIO, Compression, statistics_sharing

log = logging.getLogger(__name__)

RUNTIME = "openvino-genai"
RUNTIME_PACKAGES = ("openvino", "openvino-tokenizers", "openvino-genai")
OLDEST_RUNTIME: dict[str, str] = {}
BLOB = "npu_compiled_model.blob"


class NPURunConfig(StrictSettings):
    """openvino-genai's NPU pipeline properties, applied only when the device is NPU."""

    max_prompt_len: int = Field(1024, ge=16, description="NPU compiles static shapes: the longest prompt it takes.")
    min_response_len: int = Field(128, ge=1, description="Tokens the compiled KV cache reserves for the answer.")
    generate_hint: Literal["FAST_COMPILE", "BEST_PERF"] = "FAST_COMPILE"
    prefill_hint: Literal["DYNAMIC", "STATIC"] = "DYNAMIC"
    cache_dir: str = Field("npu_cache", description="Compiled-blob cache (relative to the model folder).")
    cache_mode: Literal["OPTIMIZE_SIZE", "OPTIMIZE_SPEED"] = Field(
        "OPTIMIZE_SIZE", description="AoT blob without weights (needs the IR's .bin) or with them."
    )
    export_blob: bool = Field(True, description="Where an NPU is present, compile at build time and ship the blob.")

    def pipeline_properties(self, model_dir: Path | None = None) -> dict[str, Any]:
        """The properties passed to ``LLMPipeline(dir, "NPU", **props)``."""
        props: dict[str, Any] = {
            "MAX_PROMPT_LEN": self.max_prompt_len,
            "MIN_RESPONSE_LEN": self.min_response_len,
            "GENERATE_HINT": self.generate_hint,
            "PREFILL_HINT": self.prefill_hint,
        }
        if model_dir is not None:
            props["CACHE_DIR"] = str(Path(model_dir) / self.cache_dir)
        return props


class Settings(Compression):
    weight_format: Literal["int4", "nf4"] = "int4"
    group_size: int = -1
    ratio: float = 1.0
    npu: NPURunConfig = Field(default_factory=NPURunConfig)


class NpuConfigFile(Record):
    """``npu_config.json`` in the artifact: how a deployment opens it on the NPU (written and read here only)."""

    FILE: ClassVar[str] = "npu_config.json"
    device: Literal["NPU"] = "NPU"
    properties: dict[str, Any]
    cache_dir: str
    blob: str | None = None
    note: str = ""
    cache_mode: str | None = None


def preflight(settings: Settings, dims: ModelDims | None) -> list[str]:
    """OpenVINO GenAI's NPU rules: int4/nf4, symmetric, ratio 1.0, group size -1 or 128 (nf4: -1 only)."""
    rule = "NPU rule: OpenVINO GenAI on NPU needs"
    problems = []
    if not settings.sym:
        problems.append(f"sym = False: {rule} symmetric int4 weights (set sym: true)")
    if settings.ratio != 1.0:
        problems.append(f"ratio = {settings.ratio}: {rule} every ratio-defining layer in int4 (set ratio: 1.0)")
    if settings.group_size not in (-1, 128):
        problems.append(f"group_size = {settings.group_size}: {rule} group size -1 (channel-wise) or 128")
    if settings.weight_format == "nf4" and settings.group_size != -1:
        problems.append(
            f"weight_format = nf4 with group_size = {settings.group_size}: {rule} nf4 channel-wise (group_size: -1)"
        )
    if settings.gptq or settings.lora_correction:
        problems.append("gptq/lora_correction = True: not validated for NPU; use awq + scale_estimation")
    if settings.group_size_fallback == "adjust":
        problems.append(
            f"group_size_fallback = adjust: {rule} one int4 group size (use ignore: layers 128 does not divide stay "
            "in the backup precision, channel-wise int8, as embeddings and lm_head do)"
        )
    if dims is not None and settings.group_size == 128 and settings.group_size_fallback == "error":
        problems += group_size_problems(
            "group_size",
            128,
            dims,
            (),
            "the NPU takes 128 or -1: use group_size: -1 (channel-wise) or group_size_fallback: ignore",
        )
    return problems


def estimate(settings: Settings, weights: int) -> Estimate:
    ram = max(0.45, CALIBRATION_RAM_RATIO) if settings.data_aware else 0.45  # Phi-3-mini, data-free: 4.8 GiB
    # validated on CPU without an NPU: the plugin's repacked channel-wise int4 weights + activations; the OpenVINO
    # runner reduces a long run's logits chunk by chunk (none held whole) through PagedAttention, without the
    # stateful cache's extra (0.4 before it, less the 0.155 measured on the FP16 IR: openvino.VALIDATE_RAM);
    # checked on main job run 7: 5.85 GiB, predicted -5 %
    return Estimate(
        scaled(1.6, ram, weights),
        int(0.27 * weights),
        scaled(0.85, 0.245, weights),
        kv_element_bytes=4,
        logits_copies=0,
        **statistics_sharing(settings, weights),
    )


def intended_device(settings: Settings) -> str:
    return "NPU"


def build(ctx: BuildContext) -> BuildFacts:
    from pipeline.openvino_ir.derive import derive, require_ir

    ir_dir = require_ir(layout.ov_ir_dir(ctx.artifacts_dir))
    facts = derive(ir_dir, ctx.source_dir, ctx.work_dir, ctx.settings)
    npu = ctx.settings.npu
    config = NpuConfigFile(
        device="NPU",
        properties=npu.pipeline_properties(),
        cache_dir=npu.cache_dir,
        blob=None,
        note="openvino_genai.LLMPipeline(dir, 'NPU', **properties); CACHE_DIR is relative to dir",
    )
    config.write(ctx.work_dir)
    assert facts.weights is not None
    facts.compliance = compliance(facts.weights)
    facts.npu_compile = compile_where_present(ctx.work_dir, npu)
    if facts.npu_compile.status == "compiled":
        config.blob = BLOB
        config.cache_mode = npu.cache_mode
        config.write(ctx.work_dir)
    return facts


def compliance(weights: WeightSummary) -> Compliance:
    """What the IR really holds, against the NPU rules (int4/nf4 weights are symmetric, no zero points)."""
    low = {n: w for n, w in weights.layers.items() if w.precision in ("int4", "nf4")}
    asym = sorted(n for n, w in low.items() if w.zero_point)
    bad_groups = sorted(n for n, w in low.items() if w.group_size not in (-1, 128))
    return Compliance(
        int4_layers=len(low),
        asymmetric_int4_layers=asym,
        disallowed_group_sizes=bad_groups,
        ok=bool(low) and not asym and not bad_groups,
    )


def npu_facts(core) -> dict[str, Any]:
    facts = {}
    for prop in ("FULL_DEVICE_NAME", "DEVICE_ARCHITECTURE", "NPU_DRIVER_VERSION", "NPU_COMPILER_VERSION"):
        try:
            facts[prop] = str(core.get_property("NPU", prop))
        except Exception:  # properties differ between driver generations
            continue
    return facts


def compile_where_present(model_dir: Path, npu: NPURunConfig) -> NpuCompile:
    """Compile on a real NPU and export the blob; never on a fallback device."""
    import openvino as ov

    core = ov.Core()
    devices = list(core.available_devices)
    if "NPU" not in devices:
        reason = f"no NPU device (available: {devices})"
        log.info("npu_compile: skipped — %s", reason)
        return NpuCompile(status="skipped", reason=reason, summary=f"skipped — {reason}")
    if not npu.export_blob:
        return NpuCompile(status="skipped", reason="export_blob: false", summary="skipped — export_blob: false")
    import openvino_genai as ov_genai

    props = npu.pipeline_properties(model_dir)
    props.pop("CACHE_DIR")
    props.update({"EXPORT_BLOB": "YES", "BLOB_PATH": str(model_dir / BLOB), "CACHE_MODE": npu.cache_mode})
    try:
        ov_genai.LLMPipeline(str(model_dir), "NPU", **props)
    except Exception as exc:
        raise BuildError(
            f"compiling for the NPU failed: {type(exc).__name__}: {str(exc).splitlines()[0]}",
            fix="update the NPU driver, or set targets.<name>.build.npu.export_blob: false to ship the IR only",
        ) from exc
    return NpuCompile(status="compiled", device="NPU", blob=BLOB, **npu_facts(core))


def runtime_properties(settings: Settings, artifact: Path, device: str, options: RuntimeOptions) -> dict[str, Any]:
    """On the NPU: the run config shipped in the artifact (its blob when one was compiled) and a compile
    cache outside the artifact. On a stand-in device: the same properties as any OpenVINO IR."""
    if device != "NPU":
        return openvino.runtime_properties(settings, artifact, device, options)
    config = NpuConfigFile.read(artifact)
    props = dict(config.properties)
    if config.blob:
        props["BLOB_PATH"] = str(Path(artifact) / config.blob)
        if (config.cache_mode or "OPTIMIZE_SIZE") == "OPTIMIZE_SIZE":
            props["WEIGHTS_PATH"] = str(Path(artifact) / MODEL_BIN)
    if options.cache_root is not None:  # never write into the (DVC-tracked) artifact
        props["CACHE_DIR"] = str(options.cache_root)
    return props


def environment_checks(settings: Settings) -> list[Check]:
    return []


def long_context_edges(settings: Settings) -> list[tuple[int, str]]:
    n = settings.npu.max_prompt_len
    return [(n, "the NPU's static prompt window (MAX_PROMPT_LEN)"), (n + 1, "one past the NPU's prompt window")]


def max_context(settings: Settings, artifact: Path, device: str) -> tuple[int, str] | None:
    if device != "NPU":
        return None
    n = settings.npu.max_prompt_len
    return n, f"MAX_PROMPT_LEN {n}: the NPU compiles static shapes"


def long_context_caveat(settings: Settings, dims: ModelDims, length: int, device: str) -> str | None:
    """The CPU proxy runs the NPU IR without the NPU's static prompt window: past it, the NPU itself refuses."""
    n = settings.npu.max_prompt_len
    if device != "NPU" and length > n:
        return (
            f"measured on the {device} proxy, which has no prompt window; on an NPU a prompt longer than "
            f"MAX_PROMPT_LEN {n} is refused (the plugin compiles static shapes)"
        )
    return None
