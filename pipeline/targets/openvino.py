"""OpenVINO IR targets for CPU/iGPU (``ov-fp16``, ``ov-int4``): derived from the shared FP IR with NNCF.

The folder each build writes runs as is in ``openvino_genai.LLMPipeline(dir, device)`` and in
``optimum.intel.OVModelForCausalLM.from_pretrained(dir)``: IR, OpenVINO tokenizer/detokenizer, configs,
chat template, plus ``target.json`` (written by the build stage) with the settings, the NNCF arguments
and the per-layer precisions read back from the IR.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from pipeline import layout
from pipeline.errors import BuildError
from pipeline.targets.base import BuildContext, ModelDims, group_size_problems
from pipeline.targets.weights import DATA_AWARE, Compression

RUNTIME = "openvino-genai"


class Settings(Compression):
    weight_format: Literal["fp16", "fp32", "int8", "int4"] = Field(
        "int4", description="fp16/fp32: no compression; int8: per-channel int8; int4: grouped int4 + backup."
    )


def preflight(settings: Settings, dims: ModelDims | None) -> list[str]:
    problems: list[str] = []
    if settings.weight_format != "int4":
        used = [a for a in DATA_AWARE if getattr(settings, a)]
        if used:
            problems.append(f"{used[0]} = True: data-aware algorithms apply to weight_format: int4 only")
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
    """(peak RAM, output disk) for a bf16 source of ``weights`` bytes (ratios measured on Phi-3-mini)."""
    size = {"fp32": 2.0, "fp16": 1.0, "int8": 0.52, "int4": 0.37}[settings.weight_format]
    ram = 1.45 if settings.weight_format in ("int4", "int8") else 1.1
    if settings.data_aware:
        ram += 1.0  # the FP IR is compiled once more to collect calibration activations
    return int(ram * weights), int(size * weights)


def build(ctx: BuildContext) -> dict[str, Any]:
    from pipeline.targets import ov_ir

    ir_dir = layout.ov_ir_dir(ctx.artifacts_dir)
    if not (ir_dir / ov_ir.MODEL_XML).is_file():
        raise BuildError(f"{ir_dir} has no FP IR", fix="run `dvc repro ov-ir` (or the whole pipeline) first")
    return derive(ir_dir, ctx.source_dir, ctx.work_dir, ctx.settings)


def derive(ir_dir, source_dir, work_dir, settings: Any) -> dict[str, Any]:
    """Write the variant described by ``settings`` (fp16/fp32/int8/int4/nf4) of the shared IR to work_dir."""
    from pipeline.targets import ov_ir

    ov_ir.copy_support_files(ir_dir, work_dir)
    out_xml = work_dir / ov_ir.MODEL_XML
    facts: dict[str, Any] = {"derived_from": str(ir_dir)}
    fmt = settings.weight_format
    if fmt == "fp16":
        ov_ir.to_fp16(ir_dir, out_xml)
    elif fmt == "fp32":
        ov_ir.to_fp32(ir_dir, out_xml)
    else:
        bits = 8 if fmt == "int8" else 4
        dataset = None
        if settings.data_aware and bits == 4:
            dataset = ov_ir.calibration_dataset(ir_dir, source_dir, settings.calibration, prefill_only=settings.gptq)
        facts.update(ov_ir.compress(ir_dir, out_xml, settings, bits, dataset))
    facts["weights"] = ov_ir.weight_precisions(out_xml)
    return facts


def intended_device(settings: Settings) -> str:
    return "CPU/GPU"
