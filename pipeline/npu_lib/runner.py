"""The legacy route's validation runner: the isolated environment's worker behind the ``Runner`` interface."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import PipelineError
from pipeline.npu_lib.client import NPULibWorker, device_choice
from pipeline.npu_lib.family import NpuLibRun
from pipeline.runners.base import Generation


class NPULibRunner:
    def __init__(self, target_dir: Path, settings: Any, name: str):
        from pipeline.npu_lib.env import env_python, read_stamp, resolve_env_dir

        if not NpuLibRun.exists(target_dir):
            raise PipelineError(f"{target_dir} has no {NpuLibRun.FILE}", fix=f"run `dvc repro build@{name}`")
        record = NpuLibRun.read(target_dir)
        env_dir = resolve_env_dir(settings.env_dir)
        if read_stamp(env_dir) is None:
            raise PipelineError(f"the npu-lib environment {env_dir} is missing", fix="run `aipc env npu-lib`")
        model_dir = (Path(target_dir) / record.model_dir).resolve()
        self.worker = NPULibWorker(env_python(env_dir), model_dir, settings.dtype)
        self.load_seconds = self.worker.load_seconds
        self.choice = device_choice(self.worker.facts)
        self.eos = set(self.worker.facts.get("eos", []))
        self.properties = {"dtype": settings.dtype}
        self.effective = {"npu_available": str(self.worker.facts.get("npu_available"))}

    def chat_ids(self, messages: list[dict[str, str]]) -> list[int]:
        return self.worker.call({"op": "chat_ids", "messages": messages})["ids"]

    def generate(self, ids: list[int], max_new_tokens: int, ignore_eos: bool = False) -> Generation:
        if ignore_eos:
            raise NotImplementedError("the npu-lib worker always stops at the end-of-sequence token")
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
