"""OpenVINO artifacts through openvino-genai (generation) and OpenVINO Runtime (logits).

Generation uses ``openvino_genai.LLMPipeline`` — what a deployment uses — fed with exact token ids.
Logits (teacher forcing, perplexity, long context) come from the same IR compiled by OpenVINO Runtime, since
the pipeline does not expose them; that is done after the timed generations and after the pipeline is
released, so a large model is never held twice. Each sequence is one full forward pass, as in the reference:
LongRoPE picks its factors per pass from the largest position in it, so scoring a long-factor run in chunks
through the KV cache would put short-factor keys in the cache and compare something else (caught by
``test_long_context``). For that pass the IR's KV state becomes inputs (given empty) and the present-KV
outputs are dropped (``stateful_to_stateless_transformation``): a 4097-token pass of a Phi-3-mini would
otherwise keep 3.2 GB of f32 KV state it never reads again. The arithmetic is the IR's; only the attention
kernel differs from the cache-fused one generation uses (logits equal to ~1e-5 on the embedded model), and
generation itself is measured through the pipeline above.

The runtime reads every weight from the mapped ``openvino_model.bin`` once, at the first inference, and
repacks it; the mapped file pages are given back then (``mapped_pages``), or a Phi-3-mini FP16 IR would
count twice in RSS (14.1 GiB instead of 7.3).

The properties come from the target's family (``runtime_properties``): e.g. the CPU inference precision,
or the NPU run config shipped in the artifact; the report states what was used.
"""

from __future__ import annotations

import gc
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.mapped_pages import ReleasingPages
from pipeline.runners.base import DeviceChoice, DeviceUnavailable, Generation

log = logging.getLogger(__name__)


def available_devices() -> list[str]:
    import openvino as ov

    return list(ov.Core().available_devices)


def choose_device(intended: str, requested: str, target: str) -> DeviceChoice:
    """Pick the device for a target; never fall back silently."""
    devices = available_devices()
    families = {d.split(".")[0] for d in devices}
    if requested != "auto":
        if requested.split(".")[0] not in families:
            raise DeviceUnavailable(
                f"{target}: device {requested} was requested but OpenVINO sees only {devices}",
                fix="set the target's device: auto to validate on the best device present (labelled as a proxy)",
            )
        device = requested
    elif intended == "NPU":
        device = "NPU" if "NPU" in families else "CPU"
    else:  # CPU/iGPU artifacts: the integrated GPU when there is one
        device = "GPU" if "GPU" in families else "CPU"
    proxy = None
    if intended == "NPU" and device != "NPU":
        proxy = f"NPU IR on the OpenVINO {device} device (no NPU present: {devices})"
    return DeviceChoice(device=device, intended=intended, proxy=proxy, details={"available": devices})


# What changes an OpenVINO model's numbers, read back from the compiled model (what the runtime really uses).
NUMERICS = (
    "INFERENCE_PRECISION_HINT",
    "KV_CACHE_PRECISION",
    "KEY_CACHE_PRECISION",
    "VALUE_CACHE_PRECISION",
    "DYNAMIC_QUANTIZATION_GROUP_SIZE",
    "EXECUTION_MODE_HINT",
    "INFERENCE_NUM_THREADS",
)


def read_back(compiled: Any) -> dict[str, str]:
    out = {}
    for key in NUMERICS:
        try:
            value = compiled.get_property(key)
        except Exception:  # a device may not report every property
            continue
        out[key] = value.get_type_name() if hasattr(value, "get_type_name") else str(value)
    return out


class OpenVINOGenAIRunner:
    def __init__(self, model_dir: Path, choice: DeviceChoice, properties: dict[str, Any]):
        import openvino_genai as ov_genai

        self.model_dir = Path(model_dir)
        self.choice = choice
        self.properties = dict(properties)
        self.choice.details["properties"] = {k: str(v) for k, v in self.properties.items()}
        t0 = time.perf_counter()
        with ReleasingPages(self.model_dir):
            self.pipe = ov_genai.LLMPipeline(str(self.model_dir), choice.device, **self.properties)
        self.first_inference = True  # the CPU plugin repacks the weights lazily, at the first inference
        self.load_seconds = time.perf_counter() - t0
        cfg = self.pipe.get_generation_config()
        self.eos = set(cfg.stop_token_ids) | ({cfg.eos_token_id} if cfg.eos_token_id >= 0 else set())
        self._request = None
        self._empty_past: dict[str, np.ndarray] = {}
        self.effective: dict[str, str] = {}

    def chat_ids(self, messages: list[dict[str, str]]) -> list[int]:
        tok = self.pipe.get_tokenizer()
        text = tok.apply_chat_template(messages, add_generation_prompt=True)
        return [int(x) for x in tok.encode(text, add_special_tokens=False).input_ids.data[0]]

    def generate(self, ids: list[int], max_new_tokens: int, ignore_eos: bool = False) -> Generation:
        import openvino as ov
        import openvino_genai as ov_genai

        cfg = self.pipe.get_generation_config()
        cfg.max_new_tokens = max_new_tokens
        cfg.do_sample = False
        if ignore_eos:
            cfg.min_new_tokens, cfg.ignore_eos = max_new_tokens, True
        arr = np.array([ids], dtype=np.int64)
        inputs = ov_genai.TokenizedInputs(ov.Tensor(arr), ov.Tensor(np.ones_like(arr)))
        t0 = time.perf_counter()
        if self.first_inference:
            with ReleasingPages(self.model_dir):
                res = self.pipe.generate(inputs, cfg)
            self.first_inference = False
        else:
            res = self.pipe.generate(inputs, cfg)
        seconds = time.perf_counter() - t0
        pm = res.perf_metrics
        tokens = [int(t) for t in res.tokens[0]]
        tpot = pm.get_tpot().mean if len(tokens) > 1 else None
        steps = [d / 1000.0 for d in list(pm.raw_metrics.m_durations)[1:]]  # µs per generated token
        return Generation(
            tokens=tokens, ttft_ms=float(pm.get_ttft().mean), tpot_ms=tpot, seconds=seconds, step_ms=steps
        )

    def logits(self, ids: list[int]) -> np.ndarray:
        """Next-token logits at every position of ``ids``, one forward pass. The array is a view of the
        request's output (a 4097 × 32064 f32 matrix is 525 MB): valid until the next call."""
        if self._request is None:
            self._request = self._scoring_request()
        inputs = {
            "input_ids": np.array([ids], dtype=np.int64),
            "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
            "position_ids": np.arange(len(ids), dtype=np.int64)[None],
            **self._empty_past,
        }
        if self.first_inference:
            with ReleasingPages(self.model_dir):
                out = self._request.infer(inputs, share_outputs=True)
            self.first_inference = False
        else:
            out = self._request.infer(inputs, share_outputs=True)
        return out["logits"][0]

    def _scoring_request(self) -> Any:
        """The IR without its KV state, logits as its only output, compiled once the pipeline is gone."""
        import openvino as ov
        from openvino._offline_transformations import stateful_to_stateless_transformation

        if self.choice.device == "NPU":
            raise NotImplementedError("full-sequence logits are not available from the NPU's static pipeline")
        del self.pipe
        self.pipe = None
        gc.collect()
        core = ov.Core()
        model = core.read_model(self.model_dir / "openvino_model.xml")
        stateful_to_stateless_transformation(model)
        for result in list(model.get_results()):
            if "logits" not in result.output(0).get_names():
                model.remove_result(result)
        model.validate_nodes_and_infer_types()
        self._empty_past = {}
        for port in model.inputs:
            name = port.get_any_name()
            if name.startswith("past_key_values"):
                shape = [0 if dim.is_dynamic else dim.get_length() for dim in port.get_partial_shape()]
                shape[0] = 1  # batch
                self._empty_past[name] = np.zeros(shape, dtype=port.get_element_type().to_dtype())
            elif name not in ("input_ids", "attention_mask", "position_ids"):
                raise RuntimeError(f"{self.model_dir}: unexpected input {name} after removing the KV state")
        compiled = core.compile_model(model, self.choice.device, self.properties)
        del model
        self.effective = read_back(compiled)
        self.first_inference = True
        return compiled.create_infer_request()

    def close(self) -> None:
        self.pipe = None
        self._request = None
        gc.collect()
