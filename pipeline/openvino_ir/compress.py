"""NNCF weight compression of the shared IR, exactly as optimum-cli calls it, and its offline calibration data.

``compress`` is optimum-intel's weight-only quantization (the exact ``nncf.compress_weights`` call and
rt_info post-processing the CLI uses) with every knob explicit; ``calibration_inputs`` are the IR's own inputs
on the shipped text, as optimum-intel records them, for the data-aware algorithms (AWQ, scale estimation, GPTQ).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipeline.errors import BuildError
from pipeline.mapped_pages import ReleasingPages
from pipeline.openvino_ir import MODEL_XML, scale_estimation
from pipeline.openvino_ir.save import save_ir
from pipeline.targets.compression import Calibration, Compression

log = logging.getLogger(__name__)


def quantization_config(settings: Compression, bits: int) -> Any:
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


def compress(
    ir_dir: Path, out_xml: Path, settings: Compression, bits: int, dataset: Any = None, statistics: Path | None = None
) -> dict[str, Any]:
    """nncf.compress_weights on the shared IR, exactly as optimum-cli calls it; returns the NNCF arguments.
    ``statistics``: a folder of NNCF calibration statistics to read instead of running ``dataset``."""
    import openvino as ov
    from optimum.intel.openvino.quantization import _weight_only_quantization

    config = quantization_config(settings, bits)
    scale_estimation.install()  # NNCF's scale estimation, the same bytes in cache-sized slices
    if statistics is not None:
        config.statistics_path = str(statistics)
    model = ov.Core().read_model(ir_dir / MODEL_XML)
    # NNCF reads each bf16 weight of the mapped IR once and keeps its compressed copy: the file pages it has
    # read are given back as it goes (measured: the NPU int4 build peaked at 11.9 GiB on Phi-3-mini with them
    # resident). The bytes written are the same.
    with ReleasingPages(ir_dir):
        try:
            compressed = _weight_only_quantization(model, config, calibration_dataset=dataset)
        except Exception as exc:
            raise _explain_nncf_error(exc, settings) from exc
        if statistics is not None:
            _name_statistics(compressed, statistics)
        save_ir(compressed, out_xml)
    nncf_args = {k: str(v) for k, v in config.to_nncf_dict().items() if v is not None}
    if statistics is not None:  # the build record, like the IR, names the statistics by key, not by path
        nncf_args = {k: v.replace(str(statistics), _statistics_label(statistics)) for k, v in nncf_args.items()}
    return {"nncf_compress_weights": nncf_args, "data_aware": dataset is not None}


def _name_statistics(model: Any, statistics: Path) -> None:
    """NNCF records its arguments in the IR, the statistics folder's absolute path among them: the build
    cache's location would then decide the IR's bytes (and the build record's: seen in the same-bytes test,
    whose second clone has its own cache). The folder's name (its content key) stays."""
    where = ["nncf", "weight_compression", "advanced_parameters"]
    if model.has_rt_info(where):
        value = model.get_rt_info(where)  # an OVAny
        text = value.astype(str) if hasattr(value, "astype") else str(value)
        model.set_rt_info(text.replace(str(statistics), _statistics_label(statistics)), where)


def _statistics_label(statistics: Path) -> str:
    return f"nncf-stats/{statistics.name}"


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


def calibration_dataset(tokenizer_dir: Path, calibration: Calibration, prefill_only: bool = False) -> Any:
    """An nncf.Dataset of the FP IR's inputs on offline text: ``calibration_inputs``, for NNCF to run itself."""
    import nncf

    items = calibration_inputs(tokenizer_dir, calibration)
    if prefill_only:
        # NNCF 3.4's GPTQ runs sub-graphs that are stateless and refuses the state-reset marker ("Cannot reset
        # state of a stateless model"). Every item is a whole sample's prefill, so without the marker (NNCF then
        # resets the state before every input) the inputs mean the same.
        from nncf.definitions import NNCF_DATASET_RESET_STATE_KEY

        items = [{k: v for k, v in item.items() if k != NNCF_DATASET_RESET_STATE_KEY} for item in items]
    return nncf.Dataset(items)


def calibration_inputs(tokenizer_dir: Path, calibration: Calibration) -> list[dict[str, Any]]:
    """The stateful FP IR's inputs for each calibration sample, as optimum-intel records them for NNCF.

    optimum-intel runs ``generate(max_new_tokens=1)`` on each sample with the model's infer request wrapped
    (``InferRequestWrapper``): that is one inference call per sample, its prefill, whose inputs are the tokens,
    an all-ones attention mask, positions 0..n-1 and beam 0, after a state reset. None of it depends on the
    model's output, so the inputs are written here without compiling and running the FP IR once more (with
    its mapped weight pages, that run was the statistics child's 14.7 GiB peak at Phi-3-mini size); ``tests/targets/test_calibration_stats.py`` holds them equal to what the recording
    gives.
    """
    import numpy as np
    from nncf.definitions import NNCF_DATASET_RESET_STATE_KEY
    from transformers import AutoTokenizer

    texts = load_calibration_texts(calibration.dataset)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    step = max(1, len(texts) // calibration.samples)
    items = []
    for text in texts[::step][: calibration.samples]:
        ids = np.asarray(tok(text, truncation=True, max_length=calibration.seq_len)["input_ids"], dtype=np.int64)
        n = ids.shape[0]
        items.append(
            {
                "input_ids": ids[None],
                "attention_mask": np.ones((1, n), dtype=np.int64),
                "position_ids": np.arange(n, dtype=np.int64)[None],
                "beam_idx": np.arange(1, dtype=int),
                NNCF_DATASET_RESET_STATE_KEY: True,
            }
        )
    log.info("calibration: %d samples from %s", len(items), calibration.dataset)
    return items


def load_calibration_texts(dataset: str) -> list[str]:
    from pipeline import corpus
    from pipeline.textfiles import read_text_source, split_paragraphs

    if dataset == "corpus":
        return corpus.calibration_texts()
    texts = split_paragraphs(read_text_source(dataset, key="calibration.dataset", builtin=""))
    if not texts:
        raise BuildError(f"calibration file {dataset} has no text")
    return texts
