"""ONNX Runtime GenAI artifacts through onnxruntime-genai.

The DirectML graph needs Windows and ``onnxruntime-genai-directml``. Where DirectML is usable the runner
keeps the providers of ``genai_config.json`` (DML for real); elsewhere it proves the *same graph* on ONNX
Runtime's CPU provider (``og.Config(dir).clear_providers()``) and says so in the device label.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.ort_builder.graph import GenAIConfig
from pipeline.runners.base import DeviceChoice, DeviceUnavailable, Generation


def dml_available() -> bool:
    try:
        import onnxruntime_genai as og

        return bool(og.is_dml_available())
    except Exception:
        return False


def installed_flavour() -> str | None:
    """Which onnxruntime-genai wheel provides the module (both ship ``onnxruntime_genai``)."""
    from importlib import metadata

    for name in ("onnxruntime-genai-directml", "onnxruntime-genai"):
        try:
            metadata.version(name)
            return name
        except metadata.PackageNotFoundError:
            continue
    return None


def choose_device(intended: str, requested: str, target: str) -> DeviceChoice:
    have_dml = dml_available()
    if requested not in ("auto", "CPU", "DML"):
        raise DeviceUnavailable(f"{target}: device {requested} is not one onnxruntime-genai runs here (CPU, DML)")
    if requested == "DML" and not have_dml:
        flavour = installed_flavour()
        if sys.platform == "win32":
            fix = (
                "install the DirectML flavour alone: `pip uninstall -y onnxruntime-genai` then "
                '`pip install "aipc-pipeline[ort-dml]"`'
                if flavour != "onnxruntime-genai-directml"
                else "update the GPU driver (DirectML needs a DirectX 12 GPU)"
            )
        else:
            fix = "DirectML runs on Windows only: check on a Windows machine, or use --device CPU here"
        raise DeviceUnavailable(
            f"{target}: device DML was requested but DirectML is not usable here ({flavour or 'no onnxruntime-genai'} "
            f"on {sys.platform})",
            fix=fix,
        )
    if requested == "auto":
        device = "DML" if intended == "DML" and have_dml else "CPU"
    else:
        device = requested
    proxy = None
    if intended == "DML" and device != "DML":
        proxy = "DirectML graph on ONNX Runtime's CPU provider (DirectML needs Windows)"
    return DeviceChoice(device=device, intended=intended, proxy=proxy, details={"dml_available": have_dml})


class OrtGenAIRunner:
    def __init__(self, model_dir: Path, choice: DeviceChoice, session_options: dict[str, Any]):
        import onnxruntime_genai as og

        self.og = og
        self.model_dir = Path(model_dir)
        self.choice = choice
        t0 = time.perf_counter()
        config = og.Config(str(self.model_dir))
        if choice.device == "CPU":
            config.clear_providers()  # the graph's own providers (e.g. dml) are replaced by the CPU EP
        if session_options:
            config.overlay(json.dumps({"model": {"decoder": {"session_options": session_options}}}))
            self.choice.details.update(session_options)
        self.properties = dict(session_options)
        self.effective = {"execution provider": "cpu" if choice.device == "CPU" else choice.device.lower()}
        self.model = og.Model(config)
        self.tokenizer = og.Tokenizer(self.model)
        self.load_seconds = time.perf_counter() - t0
        cfg = GenAIConfig(self.model_dir)
        self.eos = cfg.eos_token_ids
        self.choice.details["genai_providers"] = cfg.providers

    def chat_ids(self, messages: list[dict[str, str]]) -> list[int]:
        text = self.tokenizer.apply_chat_template(json.dumps(messages), add_generation_prompt=True)
        return [int(x) for x in self.tokenizer.encode(text)]

    def _generator(self, max_length: int, min_length: int | None = None):
        params = self.og.GeneratorParams(self.model)
        if min_length is None:
            params.set_search_options(do_sample=False, max_length=max_length)
        else:
            params.set_search_options(do_sample=False, max_length=max_length, min_length=min_length)
        return self.og.Generator(self.model, params)

    def generate(self, ids: list[int], max_new_tokens: int, ignore_eos: bool = False) -> Generation:
        length = len(ids) + max_new_tokens
        gen = self._generator(length, length if ignore_eos else None)
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
            if tok in self.eos and not ignore_eos:
                break
        seconds = time.perf_counter() - t0
        tpot = 1000 * float(np.mean(step_times)) if step_times else None
        return Generation(
            tokens=tokens,
            ttft_ms=1000 * ttft if ttft else None,
            tpot_ms=tpot,
            seconds=seconds,
            step_ms=[1000 * t for t in step_times],
        )

    def logits(self, ids: list[int]) -> np.ndarray:
        gen = self._generator(len(ids))  # max_length may not exceed the model's context_length
        gen.append_tokens(np.array(ids, dtype=np.int32))
        out = np.asarray(gen.get_output("logits"))
        return out[0].astype(np.float32)

    def close(self) -> None:
        self.model = None
        self.tokenizer = None
