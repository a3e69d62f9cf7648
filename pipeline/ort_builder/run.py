"""Run the model builder in a child process on the local source (never the Hub), with every option explicit.

The child is either the stock builder or, with ``low_memory: true`` (default), the same builder with its
save step streamed through disk (``lowmem``): same output bytes, a fraction of the RAM.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import BuildError, child_failure
from pipeline.ort_builder.graph import GENAI_CONFIG, graph_summary, providers
from pipeline.records import BuildFacts

log = logging.getLogger(__name__)


def run_builder(
    command: Callable[[Path], list[str]],
    *,
    low_memory: bool,
    portable: Callable[[list[str]], list[str]],
    work_dir: Path,
) -> BuildFacts:
    """Run the builder with ``command(cache_dir)``'s arguments; ``portable`` rewrites them for the record."""
    # Temporary files (the builder's cache, the float model streamed to disk) stay beside the output
    # on the same disk, never in the artifact.
    tmp_root = Path(tempfile.mkdtemp(prefix=".ort-build-", dir=work_dir.parent))
    try:
        # absolute paths: the low-memory save changes the working directory
        args = command(tmp_root.resolve() / "cache")
        mode = "low-memory" if low_memory else "stock"
        cmd = [
            sys.executable,
            "-m",
            "pipeline.ort_builder.child",
            "--mode",
            mode,
            "--tmp",
            str(tmp_root),
            "--",
            *args,
        ]
        log.info("onnxruntime-genai builder (%s): %s", mode, " ".join(args))
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise child_failure(
                proc,
                "the ORT GenAI builder",
                killed_fix="most likely out of memory: close other programs or keep low_memory: true",
            )
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    for required in ("model.onnx", GENAI_CONFIG):
        if not (work_dir / required).is_file():
            raise BuildError(f"the ORT GenAI builder did not write {required}")
    return BuildFacts(
        builder_command=[
            "python",
            "-m",
            "onnxruntime_genai.models.builder",
            *portable(args),
        ],
        mode=mode,
        graph=graph_summary(work_dir / "model.onnx"),
        providers=providers(work_dir),
    )
