"""NNCF's calibration statistics for the shared IR, collected once and shared by every data-aware int4 build.

AWQ, scale estimation and the data-aware mixed-precision metrics read only statistics of the FP IR's
activations on the calibration text (per MatMul input: a mean per sample, variances, a Hessian diagonal). Two
targets calibrated on the same IR with the same text need the same statistics, yet each build collected them
again: the calibration run of the FP IR (f32) to record its inputs, then NNCF's own pass to reduce them — at
Phi-3-mini size a few minutes per build, and the build's RAM peak (the FP IR compiled beside the IR NNCF reads).

NNCF can write every statistic any of its weight-compression algorithms needs to a folder and read it back
(``AdvancedCompressionParameters.statistics_path``; optimum-cli's ``--quantization-statistics-path``). The
folder is kept in the machine's build cache under a key of everything the statistics are a function of: the
IR's bytes, the tokenizer, the calibration text and its settings, and the toolkits' versions. The compressed
weights are the same bytes either way (``tests/targets/test_calibration_stats.py``: ov-int4 and ov-npu-int4,
fresh against cached). GPTQ and LoRA correction also run the model on the data: they keep the fresh path.

The statistics are collected in a child process with oneDNN capped at AVX2 (``PORTABLE_ONEDNN``): the FP IR's
f32 kernels are picked by instruction set, and measured on the embedded model the statistics of layer 1 on
differed between this AVX-512/AMX machine and the same machine capped at AVX2 (relative 1e-7 to 2e-3) — enough
to change ov-npu-int4's weights in a teammate's clone. Capped, they are the same bytes for 1 and 2 threads and
with or without the cap on the host (``tests/test_same_bytes.py`` builds the second clone under the cap).

The child gives NNCF the FP IR's inputs without running the IR (``compress.calibration_inputs``: the tokens,
positions and masks optimum-intel's recording run captures, none of which depends on the model's output). That
recording run compiled the FP IR once more and kept its mapped weight pages resident. Measured at Phi-3-mini
size (random weights, this 2-core machine): the child took about 654 s at 14.7 GiB with it, 283 s at 8.42 GiB
without, and all 650 statistics came out the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from pipeline import cache, fsutil, versions
from pipeline.errors import BuildError, child_failure
from pipeline.openvino_ir import MODEL_BIN, MODEL_XML
from pipeline.targets.compression import Calibration, Compression

log = logging.getLogger(__name__)

# What the key covers of the tokenizer folder (the calibration text is tokenized with it).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
TOOLS = ("nncf", "openvino", "optimum-intel", "transformers", "tokenizers")
# The collecting child's oneDNN: the instruction set every x86-64 CPU of the last decade has, so that the f32
# kernels (and their rounding) are the same on every machine. Read by oneDNN when it loads, hence a child.
PORTABLE_ONEDNN = {"ONEDNN_MAX_CPU_ISA": "AVX2"}


def cacheable(settings: Compression) -> bool:
    """True when NNCF needs only statistics of the data (not the data itself) for these settings."""
    return settings.shared_statistics is not None


def key(ir_dir: Path, tokenizer_dir: Path, settings: Compression, texts: list[str]) -> str:
    h = hashlib.sha256()
    part = {
        "ir": [fsutil.sha256_file(ir_dir / MODEL_XML), fsutil.sha256_file(ir_dir / MODEL_BIN)],
        "tokenizer": {
            f: fsutil.sha256_file(tokenizer_dir / f) for f in TOKENIZER_FILES if (tokenizer_dir / f).is_file()
        },
        "texts": hashlib.sha256("\0".join(texts).encode()).hexdigest(),
        "calibration": settings.calibration.model_dump(),
        "tools": versions.tool_versions(TOOLS),
    }
    h.update(json.dumps(part, sort_keys=True).encode())
    return h.hexdigest()[:32]


def statistics(ir_dir: Path, tokenizer_dir: Path, settings: Compression) -> Path:
    """The statistics folder for this IR and calibration: from the build cache, or collected now and kept."""
    from pipeline.openvino_ir.compress import load_calibration_texts

    folder = cache.calibration_statistics() / key(
        ir_dir, tokenizer_dir, settings, load_calibration_texts(settings.calibration.dataset)
    )
    if (folder / "statistics_metadata.json").is_file():
        log.info("calibration statistics: reused %s", folder)
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    try:
        _collect_in_child(ir_dir, tokenizer_dir, settings.calibration, tmp / "stats")
        try:
            (tmp / "stats").rename(folder)  # atomic: a concurrent build's copy may have landed first
        except OSError:
            if not (folder / "statistics_metadata.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("calibration statistics: collected into %s", folder)
    return folder


def _collect_in_child(ir_dir: Path, tokenizer_dir: Path, calibration: Calibration, out: Path) -> None:
    """Collect NNCF's statistics of the calibration inputs in a child under ``PORTABLE_ONEDNN``."""
    cmd = [sys.executable, "-m", __name__, str(ir_dir), str(tokenizer_dir), calibration.model_dump_json(), str(out)]
    proc = subprocess.run(cmd, env=dict(os.environ, **PORTABLE_ONEDNN), capture_output=True, text=True)
    if proc.returncode != 0:
        raise child_failure(
            proc,
            "collecting the calibration statistics",
            killed_fix="most likely out of memory: close other programs or lower calibration.samples",
        )
    if not (out / "statistics_metadata.json").is_file():
        raise BuildError("collecting the calibration statistics wrote no statistics_metadata.json")


@click.command()
@click.argument("ir_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("tokenizer_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("calibration_json")
@click.argument("out", type=click.Path(path_type=Path))
def _child(ir_dir: Path, tokenizer_dir: Path, calibration_json: str, out: Path) -> None:
    """Child entry: NNCF's statistics of the FP IR on the calibration text into OUT."""
    from pipeline.openvino_ir.compress import calibration_inputs

    calibration = Calibration.model_validate_json(calibration_json)
    collect(ir_dir, calibration_inputs(tokenizer_dir, calibration), calibration.samples, out)


def collect(ir_dir: Path, items: list[dict[str, Any]], samples: int, out: Path) -> None:
    """NNCF's weight-compression statistics of the FP IR on ``items`` into ``out`` (NNCF runs the IR itself)."""
    import nncf
    import openvino as ov
    from nncf.openvino.graph.nncf_graph_builder import GraphConverter
    from nncf.quantization.statistics_caching import cache_weight_compression_statistics

    from pipeline.mapped_pages import ReleasingPages

    model = ov.Core().read_model(ir_dir / MODEL_XML)
    with ReleasingPages(ir_dir):
        graph = GraphConverter.create_nncf_graph(model)
        cache_weight_compression_statistics(model, graph, nncf.Dataset(items), samples, out)


class _NotIterated:
    """NNCF's dataset argument when the statistics come from the folder: it must be there (a data-aware call)
    but is never run; if NNCF ever iterated it, the build would stop here instead of calibrating on nothing."""

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("NNCF asked for calibration data although its statistics were given")


def placeholder_dataset() -> Any:
    import nncf

    return nncf.Dataset(_NotIterated())


if __name__ == "__main__":
    _child()
