"""Stage ``ov-ir``: trace the source once into the FP OpenVINO IR every OpenVINO target derives from.

optimum-intel's ``main_export`` with the model loaded in its own dtype (bf16 for Phi-3: 2 bytes per weight in
RAM, where the CLI's FP16 path forces a torch fp16 load) and OpenVINO tokenizers converted alongside, so
openvino-genai can run every derived folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline import layout, versions
from pipeline.errors import BuildError
from pipeline.openvino_ir import MODEL_BIN, MODEL_XML, TOKENIZER_FILES
from pipeline.openvino_ir.inspect import weight_precisions
from pipeline.records import OvIrRecord


def build_ov_ir(params: object, out_dir: Path, root: Path = layout.ARTIFACTS) -> OvIrRecord:
    """Stage ``ov-ir``: the export into ``out_dir`` (a temporary folder) with the tools recorded (its cost goes
    to the run log: the record is hashed by DVC and every OpenVINO build depends on it)."""
    source = layout.require_source(root)
    record = export_fp_ir(source, out_dir)
    record.tools = versions.tool_versions()
    record.write(out_dir)
    return record


def export_fp_ir(source_dir: Path, out_dir: Path) -> OvIrRecord:
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
    return OvIrRecord(torch_dtype=str(dtype).removeprefix("torch."), weights=weight_precisions(out_dir / MODEL_XML))


def _ensure_chat_template(source_dir: Path, out_dir: Path) -> None:
    """transformers 5 re-saves the template as chat_template.jinja; keep Phi-3's tokenizer_config too."""
    for name in ("tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        if (source_dir / name).is_file():
            shutil.copyfile(source_dir / name, out_dir / name)


def copy_support_files(ir_dir: Path, out_dir: Path) -> None:
    """Everything of the FP IR folder except the model itself (tokenizers, configs, template)."""
    for f in sorted(ir_dir.iterdir()):
        if f.is_file() and f.name not in (MODEL_XML, MODEL_BIN) and not f.name.endswith(".json.lock"):
            if f.name in (OvIrRecord.FILE, "manifest.json"):
                continue
            shutil.copyfile(f, out_dir / f.name)
