"""The intel-npu-acceleration-library route, run in its own environment through a worker process.

The library falls back to the CPU without saying so when there is no NPU; the runner asks it
(``npu_available()``) and labels the run ``CPU (fallback)`` — never NPU — in that case.
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

import numpy as np

from pipeline.errors import PipelineError
from pipeline.runners.base import DeviceChoice, Generation

WORKER = Path(__file__).resolve().parent / "npu_lib_worker.py"


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


class NPULibRunner:
    def __init__(self, target_dir: Path, settings: Any, name: str):
        from pipeline.npu_lib_env import read_stamp, resolve_env_dir

        record_path = Path(target_dir) / "npu_lib_run.json"
        if not record_path.is_file():
            raise PipelineError(f"{target_dir} has no npu_lib_run.json", fix=f"run `dvc repro build@{name}`")
        record = json.loads(record_path.read_text())
        env_dir = resolve_env_dir(settings.env_dir)
        if read_stamp(env_dir) is None:
            raise PipelineError(f"the npu-lib environment {env_dir} is missing", fix="run `aipc env npu-lib`")
        model_dir = (Path(target_dir) / record["model_dir"]).resolve()
        from pipeline.npu_lib_env import env_python

        self.worker = NPULibWorker(env_python(env_dir), model_dir, settings.dtype)
        self.load_seconds = self.worker.load_seconds
        self.choice = device_choice(self.worker.facts)
        self.eos = set(self.worker.facts.get("eos", []))

    def chat_ids(self, messages: list[dict[str, str]]) -> list[int]:
        return self.worker.call({"op": "chat_ids", "messages": messages})["ids"]

    def generate(self, ids: list[int], max_new_tokens: int) -> Generation:
        t0 = time.perf_counter()
        ans = self.worker.call({"op": "generate", "ids": ids, "max_new_tokens": max_new_tokens})
        return Generation(
            tokens=ans["tokens"], ttft_ms=ans["ttft_ms"], tpot_ms=ans["tpot_ms"], seconds=time.perf_counter() - t0
        )

    def logits(self, ids: list[int]) -> np.ndarray:
        out = Path(self.worker._tmp.name) / "logits.npy"
        self.worker.call({"op": "logits", "ids": ids, "out": str(out)})
        arr = np.load(out)
        out.unlink()
        return arr

    def close(self) -> None:
        self.worker.close()
