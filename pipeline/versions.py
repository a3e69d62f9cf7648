"""Exact versions of the toolkits that touch an artifact.

Recorded in every source/target/manifest record and folded into cache keys: two builds made with
different toolkit versions must never share a cache entry or a manifest (a known failure elsewhere:
caches keyed on the model name only).
"""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata

TOOLKITS = (
    "torch",
    "transformers",
    "tokenizers",
    "huggingface-hub",
    "safetensors",
    "optimum",
    "optimum-intel",
    "nncf",
    "openvino",
    "openvino-tokenizers",
    "openvino-genai",
    "onnx",
    "onnx-ir",
    "onnxruntime",
    "onnxruntime-genai",
    "onnxruntime-genai-directml",
    "intel-npu-acceleration-library",
    "dvc",
    "aipc-pipeline",
)


def version_of(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def tool_versions(names: tuple[str, ...] = TOOLKITS) -> dict[str, str]:
    """Installed versions of ``names`` (absent packages are left out)."""
    out = {"python": platform.python_version()}
    for name in names:
        v = version_of(name)
        if v is not None:
            out[name] = v
    return out


def fingerprint(data: object) -> str:
    """Stable short hash of JSON-able data (settings + versions) for cache keys."""
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
