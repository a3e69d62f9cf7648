"""Full-sequence logits of an OpenVINO IR through PagedAttention: how a long run is scored on the CPU.

The stateful IR scored chunk by chunk sends every chunk after the first through the CPU plugin's one-token
attention kernel (``ScaledDotProductAttentionWithKVCache`` takes its decode path whenever the concatenated
past is non-empty), so each chunk costs more the longer the cache: on a 2-layer Phi-3-mini-wide IR, 4097
tokens took 25.0 s in 512-token chunks (1.5 s for the first, 5.0 s for the eighth); at Phi-3-mini size (int4)
285 s, against 206 s for one pass, which needs 11.7 GiB (measured 2026-12-06, 2-core Xeon, f32, f32 KV cache).
The same IR turned into a PagedAttention model (OpenVINO's own transformation, the one openvino-genai applies
for its default CPU backend, i.e. the attention a deployment's ``LLMPipeline`` runs) takes chunks with a past
through the kernel written for chunked prefill: 12.7 s for the same 4097 tokens, each chunk as cheap as the
first, and logits within 1.2e-5 of one stateful pass (2048 tokens). At Phi-3-mini size (FP16 IR, through the
runner): 146 s instead of 368 s for 4097 tokens, peak RSS 10.54 instead of 10.89 GiB.

The transformation only rewires attention: weights, precisions and the rotary code are the IR's. The block
cache is allocated here, in the layout the CPU plugin compiles for an f32 cache ([blocks, KV heads, 32 tokens,
head size]); other devices and quantized caches (whose blocks carry their scales) keep the stateful path.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


class NoCacheLayout(ValueError):
    """The IR has no KV-cache state this module can read a block layout from (the caller keeps the IR's path)."""


BLOCK = 32  # tokens per cache block asked of the CPU plugin (the compiled model's own layout is what is used)


def cache_layout(model: Any) -> tuple[int, int] | None:
    """(KV heads, head size) read from the stateful IR's KV-cache variables ([batch, KV heads, tokens, head
    size]); None when the IR has no such state or its shape is not static in those two axes."""
    dims = set()
    for variable in model.get_variables():
        shape = variable.info.data_shape
        if len(shape) != 4 or not shape[1].is_static or not shape[3].is_static:
            return None
        dims.add((shape[1].get_length(), shape[3].get_length()))
    return dims.pop() if len(dims) == 1 else None


def usable(device: str, properties: dict[str, Any]) -> bool:
    """PagedAttention scoring is what this module lays out: the CPU with an f32 KV cache (what validation pins)."""
    return device == "CPU" and str(properties.get("KV_CACHE_PRECISION", "")).lower() == "f32"


class PagedScorer:
    """One compiled PagedAttention model; ``chunks(ids, chunk)`` scores a sequence with a fresh cache."""

    ATTENTION = "PagedAttention"

    def __init__(self, xml: Path, device: str, properties: dict[str, Any]):
        import openvino as ov
        from openvino._offline_transformations import paged_attention_transformation

        core = ov.Core()
        model = core.read_model(xml)
        layout = cache_layout(model)
        if layout is None:
            raise NoCacheLayout(f"{xml}: no KV-cache state of static heads and head size to lay a block cache out for")
        self.kv_heads, self.head_size = layout
        paged_attention_transformation(model, False, False)
        self.layers = []
        for param in model.get_parameters():
            name = param.get_output_tensor(0).get_any_name()
            if name.startswith(("key_cache.", "value_cache.")):
                param.set_element_type(ov.Type.f32)
                param.set_partial_shape(ov.PartialShape([-1, self.kv_heads, BLOCK, self.head_size]))
                self.layers.append(name)
        model.validate_nodes_and_infer_types()
        self.compiled = core.compile_model(model, device, properties)
        self.request = self.compiled.create_infer_request()
        # the layout the plugin compiled (it imposes its own block size): what the cache is allocated as
        shape = self.compiled.input(self.layers[0]).get_partial_shape()
        self.block_shape = tuple(shape[i].get_length() for i in (1, 2, 3))
        self.block = self.block_shape[1]

    def chunks(self, ids: list[int], chunk: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first position, logits [tokens, vocab]) chunk by chunk; the cache is released afterwards."""
        import openvino as ov

        n = len(ids)
        blocks = -(-n // self.block)
        for name in self.layers:  # zeros: blocks past the sequence are never read
            self.request.set_tensor(name, ov.Tensor(np.zeros((blocks, *self.block_shape), np.float32)))
        arr = np.asarray(ids, dtype=np.int64)
        try:
            for start in range(0, n, chunk):
                end = min(n, start + chunk)
                used = -(-end // self.block)
                out = self.request.infer(
                    {
                        "input_ids": arr[start:end],
                        "position_ids": np.arange(start, end, dtype=np.int64),
                        "past_lens": np.array([start], dtype=np.int32),
                        "subsequence_begins": np.array([0, end - start], dtype=np.int32),
                        "block_indices": np.arange(used, dtype=np.int32),
                        "block_indices_begins": np.array([0, used], dtype=np.int32),
                        "max_context_len": np.array(end, dtype=np.int32),
                    },
                    share_outputs=True,
                )
                yield start, out["logits"][:, 0]
        finally:
            for name in self.layers:  # a 4k sequence's cache is GBs: not kept between calls
                self.request.set_tensor(name, ov.Tensor(np.zeros((1, *self.block_shape), np.float32)))
