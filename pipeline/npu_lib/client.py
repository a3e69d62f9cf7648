"""A worker process in the isolated npu-lib environment, spoken to one JSON line at a time (``worker.py``).

The library falls back to the CPU without saying so when there is no NPU; the worker asks it
(``npu_available()``) and ``device_choice`` labels the run ``CPU (fallback)`` — never NPU — in that case.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.runners.base import DeviceChoice

WORKER = Path(__file__).resolve().parent / "worker.py"


class NPULibWorker:
    """A running worker in the isolated environment (one model loaded)."""

    def __init__(self, python: Path, model_dir: Path, dtype: str):
        self._tmp = tempfile.TemporaryDirectory(prefix="aipc-npu-lib-run-")
        env = dict(os.environ, PYTHONNOUSERSITE="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen(
            [str(python), str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self._tmp.name,  # any cache the library writes lands here and is deleted
            env=env,
        )
        t0 = time.perf_counter()
        self.facts = self.call({"op": "load", "model": str(Path(model_dir).resolve()), "dtype": dtype})
        self.load_seconds = time.perf_counter() - t0

    def call(self, req: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise PipelineError(f"the npu-lib worker stopped: {(err.strip().splitlines() or ['no output'])[-1]}")
        answer = json.loads(line)
        if "error" in answer:
            raise PipelineError(f"intel-npu-acceleration-library failed: {answer['error']}")
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(PipelineError):
                self.call({"op": "quit"})
            self.proc.wait(timeout=30)
        self._tmp.cleanup()


def device_choice(facts: dict[str, Any]) -> DeviceChoice:
    if facts.get("npu_available"):
        return DeviceChoice(device="NPU", intended="NPU", details=facts)
    return DeviceChoice(
        device="CPU (fallback)",
        intended="NPU",
        proxy="intel-npu-acceleration-library found no NPU and ran on the CPU",
        details=facts,
    )
