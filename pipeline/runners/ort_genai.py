"""ONNX Runtime GenAI artifacts through onnxruntime-genai.

The DirectML graph needs Windows and ``onnxruntime-genai-directml``. Where DirectML is usable the runner
keeps the providers of ``genai_config.json`` (DML for real); elsewhere it proves the *same graph* on ONNX
Runtime's CPU provider (``og.Config(dir).clear_providers()``) and says so in the device label.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from pipeline.runners.base import DeviceChoice, DeviceUnavailable, Generation


def dml_available() -> bool:
    try:
        import onnxruntime_genai as og

        return bool(og.is_dml_available())
    except Exception:
        return False


def choose_device(intended: str, requested: str, target: str) -> DeviceChoice:
    have_dml = dml_available()
    if requested not in ("auto", "CPU", "DML"):
        raise DeviceUnavailable(f"{target}: device {requested} is not one onnxruntime-genai runs here (CPU, DML)")
    if requested == "DML" and not have_dml:
        raise DeviceUnavailable(
            f"{target}: device DML was requested but DirectML is not usable here (needs Windows and "
            "onnxruntime-genai-directml)",
            fix="set the target's device: auto to prove the DML graph on ORT's CPU provider (labelled)",
        )
    if requested == "auto":
        device = "DML" if intended == "DML" and have_dml else "CPU"
    else:
        device = requested
    proxy = None
    if intended == "DML" and device != "DML":
        proxy = "DirectML graph on ONNX Runtime's CPU provider (DirectML needs Windows)"
    return DeviceChoice(device=device, intended=intended, proxy=proxy, details={"dml_available": have_dml})


def cpu_threads(requested: int | None = None) -> int:
    """Physical cores: onnxruntime-genai's own default used one thread on this 2-core build machine
    (measured: 223 ms/token with the default, 120 ms/token with 2 threads on Phi-3-mini int4)."""
    import os

    import psutil

    return requested or psutil.cpu_count(logical=False) or os.cpu_count() or 1


class OrtGenAIRunner:
    def __init__(self, model_dir: Path, choice: DeviceChoice, threads: int | None = None):
        import onnxruntime_genai as og

        self.og = og
        self.model_dir = Path(model_dir)
        self.choice = choice
        t0 = time.perf_counter()
        config = og.Config(str(self.model_dir))
        if choice.device == "CPU":
            config.clear_providers()  # the graph's own providers (e.g. dml) are replaced by the CPU EP
            n = cpu_threads(threads)
            config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": n}}}}))
            self.choice.details["intra_op_num_threads"] = n
        self.model = og.Model(config)
        self.tokenizer = og.Tokenizer(self.model)
        self.load_seconds = time.perf_counter() - t0
        cfg = json.loads((self.model_dir / "genai_config.json").read_text())
        eos = cfg["model"].get("eos_token_id")
        self.eos = set(eos if isinstance(eos, list) else [eos])
        self.choice.details["genai_providers"] = [
            next(iter(o)) for o in cfg["model"]["decoder"]["session_options"].get("provider_options", [])
        ]

    def chat_ids(self, messages: list[dict[str, str]]) -> list[int]:
        text = self.tokenizer.apply_chat_template(json.dumps(messages), add_generation_prompt=True)
        return [int(x) for x in self.tokenizer.encode(text)]

    def _generator(self, max_length: int):
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(do_sample=False, max_length=max_length)
        return self.og.Generator(self.model, params)

    def generate(self, ids: list[int], max_new_tokens: int) -> Generation:
        gen = self._generator(len(ids) + max_new_tokens)
        tokens: list[int] = []
        t0 = time.perf_counter()
        gen.append_tokens(np.array(ids, dtype=np.int32))  # prefill
        ttft = None
        step_times = []
        while not gen.is_done() and len(tokens) < max_new_tokens:
            ts = time.perf_counter()
            gen.generate_next_token()
            tok = int(gen.get_next_tokens()[0])
            now = time.perf_counter()
            if ttft is None:
                ttft = now - t0
            else:
                step_times.append(now - ts)
            tokens.append(tok)
            if tok in self.eos:
                break
        seconds = time.perf_counter() - t0
        tpot = 1000 * float(np.mean(step_times)) if step_times else None
        return Generation(tokens=tokens, ttft_ms=1000 * ttft if ttft else None, tpot_ms=tpot, seconds=seconds)

    def logits(self, ids: list[int]) -> np.ndarray:
        gen = self._generator(len(ids) + 1)
        gen.append_tokens(np.array(ids, dtype=np.int32))
        out = np.asarray(gen.get_output("logits"))
        return out[0].astype(np.float32)

    def close(self) -> None:
        self.model = None
        self.tokenizer = None
