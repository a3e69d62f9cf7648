"""The machine-wide build cache: one root for everything the project keeps between checkouts.

``AIPC_CACHE`` (default ``~/.cache/aipc``) holds what is expensive to make and the same for every checkout
on the machine: the embedded models, verified Hub downloads, the isolated npu-lib environment, NPU
compile caches and NNCF calibration statistics. Project state that belongs to one checkout (the publish log, the last error, the local DVC
remote) lives in ``layout.STATE`` instead.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("AIPC_CACHE") or Path.home() / ".cache" / "aipc")


def embedded_models() -> Path:
    """Built embedded models, one folder per cache key."""
    return cache_root() / "embedded"


def downloads() -> Path:
    """Verified Hub downloads (``AIPC_DOWNLOADS`` overrides, e.g. to put them on a larger disk)."""
    return Path(os.environ.get("AIPC_DOWNLOADS") or cache_root() / "hub")


def npu_compile_cache(target: str) -> Path:
    """OpenVINO's NPU compile cache for one target: never inside the (DVC-tracked) artifact."""
    return cache_root() / "npu_cache" / target


def calibration_statistics() -> Path:
    """NNCF calibration statistics of an IR, one folder per content key (``openvino_ir.calibration_stats``)."""
    return cache_root() / "nncf-stats"


def bench_tokenizer() -> Path:
    """The embedded model's tokenizer, borrowed by the full-size benchmark's synthetic model."""
    return cache_root() / "bench-tokenizer"
