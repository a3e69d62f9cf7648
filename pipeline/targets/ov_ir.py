"""The one FP OpenVINO IR every OpenVINO target derives from, and the operations that derive them.

Why one IR: ``optimum-cli export openvino`` loads and traces the whole PyTorch model again for every
variant (FP16, INT4, NPU INT4). Its INT4 path is itself "export a bf16 IR, then ``nncf.compress_weights``
on it"; doing that export once (stage ``ov-ir``) and compressing the IR per target gives the same
weights — measured: byte-identical ``openvino_model.bin`` and an XML that differs only in generated node
names — while the trace is paid once.

- ``export_fp_ir``: optimum-intel's ``main_export`` with the model loaded in its own dtype (bf16 for
  Phi-3: 2 bytes per weight in RAM, where the CLI's FP16 path forces a torch fp16 load) and OpenVINO
  tokenizers converted alongside, so openvino-genai can run every derived folder.
- ``to_fp16``: bf16 → fp16 constant by constant (numpy, round-to-nearest-even like torch), then
  OpenVINO's own f32 → f16 compression on save. OpenVINO's ``compress_to_fp16`` converts only f32
  constants, so without this step a bf16 IR would stay bf16 — which iGPUs do not run natively.
- ``compress``: optimum-intel's weight-only quantization (the exact ``nncf.compress_weights`` call and
  rt_info post-processing the CLI uses) with every knob explicit.
- ``weight_precisions``: reads an IR back and reports each weight's element type, group size and
  whether it has zero points (asymmetric) — what the artifact really holds, not what params asked for.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.errors import BuildError

log = logging.getLogger(__name__)

MODEL_XML = "openvino_model.xml"
MODEL_BIN = "openvino_model.bin"
TOKENIZER_FILES = (
    "openvino_tokenizer.xml",
    "openvino_tokenizer.bin",
    "openvino_detokenizer.xml",
    "openvino_detokenizer.bin",
)
LOW_BIT = {"i4": "int4", "u4": "int4", "nf4": "nf4", "i8": "int8", "u8": "int8"}


# --------------------------------------------------------------------------- export


def export_fp_ir(source_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Trace the source once into ``out_dir``: FP IR (source dtype), tokenizers, configs, chat template."""
    import torch
    from optimum.exporters.openvino import main_export
    from optimum.intel.openvino.configuration import OVConfig
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(source_dir)
    dtype = getattr(cfg, "dtype", None) or getattr(cfg, "torch_dtype", None) or torch.float32
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    # OVConfig() without a quantization config: no automatic int8 for >1B models, no fp16 forcing.
    main_export(
        str(source_dir),
        output=out_dir,
        task="text-generation-with-past",
        ov_config=OVConfig(),
        stateful=True,
        convert_tokenizer=True,
        trust_remote_code=False,
        model_loading_kwargs={"torch_dtype": dtype},
    )
    missing = [f for f in (MODEL_XML, MODEL_BIN, *TOKENIZER_FILES) if not (out_dir / f).is_file()]
    if missing:
        raise BuildError(f"the OpenVINO export did not write {', '.join(missing)}")
    _ensure_chat_template(source_dir, out_dir)
    return {"torch_dtype": str(dtype).removeprefix("torch."), "weights": weight_precisions(out_dir / MODEL_XML)}


def _ensure_chat_template(source_dir: Path, out_dir: Path) -> None:
    """transformers 5 re-saves the template as chat_template.jinja; keep Phi-3's tokenizer_config too."""
    for name in ("tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        if (source_dir / name).is_file():
            shutil.copyfile(source_dir / name, out_dir / name)


def copy_support_files(ir_dir: Path, out_dir: Path) -> None:
    """Everything of the FP IR folder except the model itself (tokenizers, configs, template)."""
    for f in sorted(ir_dir.iterdir()):
        if f.is_file() and f.name not in (MODEL_XML, MODEL_BIN) and not f.name.endswith(".json.lock"):
            if f.name in ("ov_ir.json", "manifest.json"):
                continue
            shutil.copyfile(f, out_dir / f.name)


# --------------------------------------------------------------------------- derive


def to_fp16(ir_dir: Path, out_xml: Path) -> None:
    """Write a true-FP16 copy of the IR (bf16 and f32 weight constants become f16), in bounded memory.

    bf16 and f16 are both 2 bytes, so the bf16 weights are converted *in the file* — streamed chunk by
    chunk into a patched copy of the IR with the same offsets — and OpenVINO then only compresses the small
    f32 constants on save (the same ``compress_to_fp16`` the CLI applies). Converting through the OpenVINO
    API instead keeps the mmapped bf16 weights and a full f16 copy in memory at once: measured 14.5 GiB
    peak on Phi-3-mini, against ~8 GiB this way; the result is byte-identical.
    """
    import tempfile
    import xml.etree.ElementTree as ET

    import openvino as ov

    tree = ET.parse(ir_dir / MODEL_XML)
    root = tree.getroot()
    regions: dict[tuple[int, int], bool] = {}  # (offset, size) -> is bf16
    converted: set[str] = set()
    for layer in root.iter("layer"):
        data = layer.find("data")
        if layer.get("type") != "Const" or data is None or data.get("offset") is None:
            continue
        key = (int(data.get("offset")), int(data.get("size")))
        is_bf16 = data.get("element_type") == "bf16"
        if regions.get(key, is_bf16) != is_bf16:
            raise BuildError("the FP IR shares one weight buffer between a bf16 and another constant")
        regions[key] = is_bf16
        if is_bf16:
            data.set("element_type", "f16")
            for port in layer.iter("port"):
                port.set("precision", "FP16")
            converted.add(layer.get("id"))
    layers = {layer.get("id"): layer for layer in root.iter("layer")}
    for edge in root.iter("edge"):
        if edge.get("from-layer") in converted:
            to = layers[edge.get("to-layer")].find("input")
            for port in to.iter("port") if to is not None else ():
                if port.get("id") == edge.get("to-port"):
                    port.set("precision", "FP16")
    with tempfile.TemporaryDirectory(prefix=".fp16-", dir=out_xml.parent) as tmp:
        tmp_xml = Path(tmp) / MODEL_XML
        tree.write(tmp_xml, encoding="utf-8", xml_declaration=True)
        _convert_bin(ir_dir / MODEL_BIN, tmp_xml.with_suffix(".bin"), sorted(k for k, bf in regions.items() if bf))
        model = ov.Core().read_model(tmp_xml)
        ov.save_model(model, out_xml, compress_to_fp16=True)
        del model


def _convert_bin(src: Path, dst: Path, bf16_regions: list[tuple[int, int]], chunk: int = 128 * 2**20) -> None:
    """Copy ``src`` to ``dst`` converting the listed bf16 byte ranges to f16 (round to nearest even, via
    torch's vectorised conversion: ~1.8 GB/s here against ~0.45 GB/s for numpy's astype)."""
    import torch

    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        pos = 0
        for offset, size in bf16_regions:
            _copy_range(fin, fout, pos, offset - pos, chunk)
            done = 0
            while done < size:
                n = fin.readinto(view[: min(chunk, size - done)])
                f16 = torch.frombuffer(buf, dtype=torch.bfloat16, count=n // 2).to(torch.float16)
                fout.write(memoryview(f16.numpy()).cast("B"))
                done += n
            pos = offset + size
        _copy_range(fin, fout, pos, src.stat().st_size - pos, chunk)


def _copy_range(fin, fout, start: int, length: int, chunk: int) -> None:
    if length <= 0:
        return
    fin.seek(start)
    while length > 0:
        data = fin.read(min(chunk, length))
        fout.write(data)
        length -= len(data)


def to_fp32(ir_dir: Path, out_xml: Path) -> None:
    import numpy as np
    import openvino as ov

    model = ov.Core().read_model(ir_dir / MODEL_XML)
    for op in model.get_ops():
        if op.get_type_name() == "Constant" and op.get_element_type() in (ov.Type.bf16, ov.Type.f16):
            data = op.get_tensor_view().data
            if op.get_element_type() == ov.Type.bf16:
                f32 = (data.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                f32 = data.astype(np.float32)
            new = ov.op.Constant(ov.Tensor(np.ascontiguousarray(f32)))
            new.set_friendly_name(op.get_friendly_name())
            op.output(0).replace(new.output(0))
    ov.save_model(model, out_xml, compress_to_fp16=False)


def quantization_config(settings: Any, bits: int) -> Any:
    """optimum-intel's OVWeightQuantizationConfig with every knob explicit (no per-model table)."""
    from optimum.intel.openvino.configuration import OVWeightQuantizationConfig

    kwargs: dict[str, Any] = {
        "bits": bits,
        "sym": settings.sym,
        "group_size": settings.group_size if bits == 4 else -1,
        "ratio": settings.ratio if bits == 4 else 1.0,
        "all_layers": settings.all_layers if bits == 4 else None,
        "sensitivity_metric": settings.sensitivity_metric,
        "quant_method": "awq" if settings.awq else "default",
        "scale_estimation": settings.scale_estimation or None,
        "gptq": settings.gptq or None,
        "lora_correction": settings.lora_correction or None,
        "backup_precision": settings.backup_precision if bits == 4 else None,
        "group_size_fallback": None if settings.group_size_fallback == "error" else settings.group_size_fallback,
        "num_samples": settings.calibration.samples if settings.data_aware else None,
    }
    if getattr(settings, "weight_format", None) == "nf4":
        kwargs["dtype"] = "nf4"
    return OVWeightQuantizationConfig(**kwargs)


def compress(ir_dir: Path, out_xml: Path, settings: Any, bits: int, dataset: Any = None) -> dict[str, Any]:
    """nncf.compress_weights on the shared IR, exactly as optimum-cli calls it; returns the NNCF arguments."""
    import openvino as ov
    from optimum.intel.openvino.quantization import _weight_only_quantization

    config = quantization_config(settings, bits)
    model = ov.Core().read_model(ir_dir / MODEL_XML)
    try:
        compressed = _weight_only_quantization(model, config, calibration_dataset=dataset)
    except Exception as exc:
        raise _explain_nncf_error(exc, settings) from exc
    ov.save_model(compressed, out_xml, compress_to_fp16=False)
    nncf_args = {k: str(v) for k, v in config.to_nncf_dict().items() if v is not None}
    return {"nncf_compress_weights": nncf_args, "data_aware": dataset is not None}


def _explain_nncf_error(exc: Exception, settings: Any) -> Exception:
    name = type(exc).__name__
    text = str(exc)
    if "InvalidGroupSizeError" in name or "group size" in text.lower():
        layers = sorted(set(_layer_names(text)))[:6]
        where = f" (layers: {', '.join(layers)})" if layers else ""
        return BuildError(
            f"group_size = {settings.group_size} does not divide the channels of some layers{where}",
            fix="choose a group size that divides them, or set group_size_fallback: ignore (keep those layers in "
            "backup precision) or adjust (closest dividing group size)",
        )
    return BuildError(f"NNCF weight compression failed: {name}: {text.splitlines()[0] if text else ''}")


def _layer_names(text: str) -> list[str]:
    import re

    return re.findall(r"(__module\.[\w.]+|[\w.]+/MatMul|[\w./]+proj[\w./]*)", text)


# --------------------------------------------------------------------------- calibration


def calibration_dataset(ir_dir: Path, tokenizer_dir: Path, calibration: Any, prefill_only: bool = False) -> Any:
    """An nncf.Dataset of the FP IR's own inputs on offline text, collected the way optimum-intel does.

    Each sample is run through the stateful model as "prefill + one generated token" and the inputs of
    every inference call are recorded (with NNCF's state-reset marker), so AWQ / scale estimation / GPTQ
    see the activations the deployed model will see.
    """
    import nncf
    import torch
    from optimum.intel import OVModelForCausalLM
    from optimum.intel.openvino.quantization import InferRequestWrapper
    from transformers import AutoTokenizer

    texts = load_calibration_texts(calibration.dataset)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    step = max(1, len(texts) // calibration.samples)
    picked = texts[::step][: calibration.samples]
    model = OVModelForCausalLM.from_pretrained(ir_dir, compile=False, use_cache=True)
    model.update_pkv_precision(True)
    model.compile()
    collected: list[Any] = []
    model.request = InferRequestWrapper(model.request, collected)
    try:
        for text in picked:
            enc = tok(text, return_tensors="pt", truncation=True, max_length=calibration.seq_len)
            with torch.no_grad():
                model.generate(**enc, max_new_tokens=1, do_sample=False)
    finally:
        model.request = model.request.request
    log.info("calibration: %d samples (%d inference inputs) from %s", len(picked), len(collected), calibration.dataset)
    if prefill_only:
        # NNCF 3.4's GPTQ runs sub-graphs that are stateless and refuses the state-reset marker ("Cannot reset
        # state of a stateless model"). Without the marker NNCF resets the state before every input, which
        # is right for prefills and wrong for the decode steps: keep the prefills only, each a whole sample.
        from nncf.definitions import NNCF_DATASET_RESET_STATE_KEY

        collected = [
            {k: v for k, v in item.items() if k != NNCF_DATASET_RESET_STATE_KEY}
            for item in collected
            if item.get(NNCF_DATASET_RESET_STATE_KEY, True)
        ]
    return nncf.Dataset(collected)


def load_calibration_texts(dataset: str) -> list[str]:
    from pipeline import corpus

    if dataset == "corpus":
        return corpus.calibration_texts()
    texts = corpus.split_paragraphs(corpus.read_text_source(dataset, key="calibration.dataset", builtin=""))
    if not texts:
        raise BuildError(f"calibration file {dataset} has no text")
    return texts


# --------------------------------------------------------------------------- inspection


def weight_precisions(xml: Path) -> dict[str, Any]:
    """Per weight (MatMul/Gather input): element type, group size, zero points; and totals.

    A compressed weight is a low-bit Constant followed by Convert → [Subtract zero point] → Multiply scale
    (→ Reshape for grouped weights). Walking up from each MatMul/Gather to its largest Constant tells what
    the artifact really holds.
    """
    import openvino as ov

    model = ov.Core().read_model(xml)
    layers: dict[str, dict[str, Any]] = {}
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind not in ("MatMul", "Gather"):
            continue
        port = 1 if kind == "MatMul" else 0
        found = _weight_constant(op.input_value(port).get_node())
        if found is None:
            continue
        const, has_zero_point = found
        et = const.get_element_type().get_type_name()
        shape = list(const.get_output_partial_shape(0).to_shape())
        precision = LOW_BIT.get(et, {"f16": "fp16", "bf16": "bf16", "f32": "fp32"}.get(et, et))
        group = shape[-1] if precision in ("int4", "nf4") and len(shape) == 3 else -1
        layers[op.get_friendly_name()] = {
            "op": kind,
            "element_type": et,
            "precision": precision,
            "shape": shape,
            "group_size": group,
            "zero_point": has_zero_point,
        }
    counts = Counter(v["precision"] for v in layers.values())
    return {"counts": dict(sorted(counts.items())), "layers": layers}


# What sits between a compressed weight Constant and its MatMul/Gather: Convert → [Subtract zp] → Multiply
# scale (→ Reshape/Unsqueeze for grouped weights); a walk up from the consumer stops after this many ops.
DECOMPRESSION_OPS = ("Convert", "Multiply", "Subtract", "Reshape", "Unsqueeze")
MAX_DECOMPRESSION_DEPTH = 6


def decompression_constants(node, depth: int = 0) -> list:
    """Every Constant of the weight sub-graph feeding ``node``: the weight, its scales and zero points."""
    kind = node.get_type_name()
    if kind == "Constant":
        return [node]
    if depth > MAX_DECOMPRESSION_DEPTH or kind not in DECOMPRESSION_OPS:
        return []
    found = []
    for i in range(node.get_input_size()):
        found += decompression_constants(node.input_value(i).get_node(), depth + 1)
    return found


def _weight_constant(node, depth: int = 0):
    """The weight Constant feeding ``node`` (through decompression ops) and whether a zero point exists."""
    kind = node.get_type_name()
    if kind == "Constant":
        size = 1
        for d in node.get_output_partial_shape(0).to_shape():
            size *= d
        return (node, False) if size > 1 else None
    if depth > MAX_DECOMPRESSION_DEPTH or kind not in DECOMPRESSION_OPS:
        return None
    best = None
    zero_point = kind == "Subtract"
    for i in range(node.get_input_size()):
        found = _weight_constant(node.input_value(i).get_node(), depth + 1)
        if found is None:
            continue
        const, zp = found
        zero_point = zero_point or zp
        if best is None or _numel(const) > _numel(best):
            best = const
    if best is None:
        return None
    if kind == "Subtract":
        # a Subtract whose second input is a (converted) constant is a zero point
        zero_point = _weight_constant(node.input_value(1).get_node(), depth + 1) is not None
    return best, zero_point


def _numel(const) -> int:
    n = 1
    for d in const.get_output_partial_shape(0).to_shape():
        n *= d
    return n
