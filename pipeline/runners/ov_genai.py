"""OpenVINO artifacts through openvino-genai (generation) and OpenVINO Runtime (logits).

Generation uses ``openvino_genai.LLMPipeline`` — what a deployment uses — fed with exact token ids.
Logits (teacher forcing, perplexity, long context) come from the same IR compiled by OpenVINO Runtime, since
the pipeline does not expose them; that is done after the timed generations and after the pipeline is
released, so a large model is never held twice.

Long sequences are scored through the KV cache in chunks, as a chunked prefill would: one 4097-token pass of
a Phi-3-mini FP16 IR (f32) held every layer's activations at once (14.3 GiB). The chunk is 512 tokens: on a
Phi-3-mini-wide 8-layer FP16 IR, 4097 tokens peaked at 4.58 GiB in 1024-token chunks and at 4.0 GiB in 512-token
ones (the plugin's intermediate buffers grow with the chunk), in the same time. The chunks are handed to the
caller as they come (``logits_chunks``), so a long run's logits need not be held whole. Chunking is exact only while no
chunk can switch LongRoPE's factors: optimum-intel's IR picks them per pass from the largest position in it,
so a long-factor run scored in chunks would put short-factor keys in the cache (caught by
``test_long_context``). Such a run is one pass. (Dropping the KV state for that pass, with
``stateful_to_stateless_transformation``, was tried: the CPU plugin then held the FP16 weights in f32,
14 GiB at the first token.) On the CPU with the f32 KV cache validation pins, the chunks go through the IR
turned into a PagedAttention model (``ov_paged``: the stateful IR sends every chunk after the first through
its one-token kernel, 2x slower over 4097 tokens); elsewhere through the IR's own state.

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.mapped_pages import ReleasingPages
from pipeline.runners import ov_paged
from pipeline.runners.base import DeviceChoice, DeviceUnavailable, Generation
from pipeline.runners.ov_paged import PagedScorer
from pipeline.targets.base import ModelDims

log = logging.getLogger(__name__)

# Tokens per scoring pass through the KV cache (see the module's docstring).
PREFILL_CHUNK = 512


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


class StatefulScorer:
    """The stateful IR scored through its own KV-cache state (devices and caches ``ov_paged`` does not lay out)."""

    ATTENTION = "stateful SDPA"

    def __init__(self, compiled: Any):
        self.compiled = compiled
        self.request = compiled.create_infer_request()

    def chunks(self, ids: list[int], chunk: int) -> Iterator[tuple[int, np.ndarray]]:
        req = self.request
        req.reset_state()
        try:
            for start in range(0, len(ids), chunk):
                end = min(len(ids), start + chunk)
                inputs = {
                    "input_ids": np.array([ids[start:end]], dtype=np.int64),
                    "attention_mask": np.ones((1, end), dtype=np.int64),  # the cached prefix + this chunk
                    "position_ids": np.arange(start, end, dtype=np.int64)[None],
                    "beam_idx": np.zeros(1, dtype=np.int32),
                }
                yield start, req.infer(inputs, share_outputs=True)["logits"][0]
        finally:
            req.reset_state()  # the KV cache of a 4k sequence is GBs: not kept between calls


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
        """Next-token logits at every position of ``ids`` (f32, one buffer; chunks written into it)."""
        out: np.ndarray | None = None
        for start, logits in self.logits_chunks(ids):
            if out is None:
                out = np.empty((len(ids), logits.shape[-1]), dtype=np.float32)
            out[start : start + len(logits)] = logits
        assert out is not None
        return out

    def logits_chunks(self, ids: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        """(first position, logits of the positions from there) chunk by chunk, in order. Each array is the
        runtime's own output buffer, valid until the next chunk is asked for: copy what you keep."""
        if self._request is None:
            self._request = self._scoring_request()
        chunk = PREFILL_CHUNK if self._chunking_is_exact(len(ids)) else len(ids)
        pieces = self._request.chunks(ids, chunk)
        if self.first_inference:
            with ReleasingPages(self.model_dir):
                first = next(pieces, None)
            self.first_inference = False
            if first is None:
                return
            yield first
        yield from pieces

    def _chunking_is_exact(self, length: int) -> bool:
        """True when scoring ``length`` tokens chunk by chunk computes what one pass computes: no LongRoPE
        switch, or a sequence that never passes it (every chunk then uses the short factors, as the pass)."""
        if length <= PREFILL_CHUNK:
            return True
        if not (self.model_dir / "config.json").is_file():
            return False  # the shape is unknown: one pass is always exact
        dims = ModelDims.from_config(self.model_dir / "config.json")
        return not dims.longrope or length <= (dims.original_max_position_embeddings or 0)

    def _scoring_request(self) -> Any:
        import openvino as ov

        if self.choice.device == "NPU":
            raise NotImplementedError("full-sequence logits are not available from the NPU's static pipeline")
        del self.pipe
        self.pipe = None
        gc.collect()
        xml = self.model_dir / "openvino_model.xml"
        scorer: PagedScorer | StatefulScorer | None = None
        if ov_paged.usable(self.choice.device, self.properties):
            try:
                scorer = PagedScorer(xml, self.choice.device, self.properties)
            except ov_paged.NoCacheLayout as e:
                log.info("%s: scored through the IR's own state", e)
        if scorer is None:
            scorer = StatefulScorer(ov.Core().compile_model(xml, self.choice.device, self.properties))
        self.choice.details["scoring_attention"] = f"{scorer.ATTENTION}, {PREFILL_CHUNK}-token chunks"
        self.effective = read_back(scorer.compiled)
        self.first_inference = True
        return scorer

    def close(self) -> None:
        self.pipe = None
        self._request = None
        gc.collect()
