"""Is a folder a whole HF checkpoint? Checked from the files' own structure, before any work reads them.

A malformed model used to surface deep inside a stage: an empty ``config.json`` as "internal error:
KeyError: 'hidden_size'", a truncated ``.safetensors`` as a loader's error several minutes into a build. Each
check here reads only headers and sizes (a 7.6 GB checkpoint is checked in milliseconds), and each problem is
one line naming the file and what is wrong with it.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from pipeline.errors import SourceError
from pipeline.targets.base import read_model_config

INDEX = "model.safetensors.index.json"
# The safetensors format: an 8-byte little-endian header length, a JSON header, then the tensor bytes, which
# the header's data_offsets must cover exactly (the library refuses holes and trailing bytes).
MAX_HEADER = 100_000_000
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
FIX = "fetch the model again (a copy was cut short or damaged), or point the models entry at a complete folder"


def check_checkpoint(folder: Path) -> None:
    """``folder``'s config, tokenizer files, safetensors files and shard index are whole and consistent."""
    folder = Path(folder)
    read_model_config(folder / "config.json")
    _check_tokenizer(folder)
    headers = {p.name: safetensors_header(p) for p in sorted(folder.glob("*.safetensors"))}
    if not headers:
        raise SourceError(f"{folder} has no *.safetensors weights", fix="convert the weights to safetensors")
    if (folder / INDEX).is_file():
        _check_index(folder / INDEX, headers)


def safetensors_header(path: Path) -> dict[str, Any]:
    """The header of a safetensors file whose length matches what the header describes, or ``SourceError``."""
    size = path.stat().st_size
    if size < 8:
        raise SourceError(f"{path} is {size} bytes: too short to be a safetensors file", fix=FIX)
    with path.open("rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > min(size - 8, MAX_HEADER):
            raise SourceError(
                f"{path}: its header length field says {n:,} bytes but the file holds {size:,} "
                "(truncated, or not a safetensors file)",
                fix=FIX,
            )
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SourceError(
            f"{path}: its header is not valid JSON (damaged, or not a safetensors file)", fix=FIX
        ) from None
    if not isinstance(header, dict):
        raise SourceError(f"{path}: its header is not a mapping of tensors", fix=FIX)
    end = 0
    for name, t in header.items():
        if name == "__metadata__":
            continue
        try:
            start, stop = t["data_offsets"]
            count = 1
            for dim in t["shape"]:
                count *= dim
            width = DTYPE_BYTES[t["dtype"]]
        except (KeyError, TypeError, ValueError):
            raise SourceError(f"{path}: tensor {name} has a malformed header entry", fix=FIX) from None
        if stop - start != count * width:
            raise SourceError(
                f"{path}: tensor {name} spans {stop - start:,} bytes, its shape and dtype need {count * width:,}",
                fix=FIX,
            )
        end = max(end, stop)
    data = size - 8 - n
    if data != end:
        what = "truncated" if data < end else "followed by bytes no tensor owns"
        raise SourceError(
            f"{path} is {what}: its header describes {end:,} bytes of tensors, it holds {data:,}", fix=FIX
        )
    return header


def _check_index(index: Path, headers: dict[str, dict[str, Any]]) -> None:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        items = list(weight_map.items())
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
        raise SourceError(f"{index} is not a shard index (no `weight_map` mapping)", fix=FIX) from None
    for tensor, shard in items:
        if shard not in headers:
            raise SourceError(f"{index} maps {tensor} to {shard}, which is not in the folder", fix=FIX)
        if tensor not in headers[shard]:
            raise SourceError(f"{index} maps {tensor} to {shard}, which does not hold it", fix=FIX)


def _check_tokenizer(folder: Path) -> None:
    for name in ("tokenizer_config.json", "tokenizer.json"):
        path = folder / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SourceError(f"{path} is not valid JSON ({exc})", fix=FIX) from None
        if not isinstance(data, dict) or (name == "tokenizer.json" and not isinstance(data.get("model"), dict)):
            raise SourceError(f"{path} is not a tokenizer file (no `model` mapping)", fix=FIX)
    spm = folder / "tokenizer.model"
    if spm.is_file() and spm.stat().st_size == 0:
        raise SourceError(f"{spm} is empty", fix=FIX)
