"""Long runs scored through OpenVINO's PagedAttention compute what one pass of the stateful IR computes."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.runners import ov_paged
from pipeline.runners.ov_genai import PREFILL_CHUNK

# validation's pinned CPU numerics, with int8 dynamic quantization of activations off: with it on, a change of
# chunking alone moves an int4 IR's logits (the stateful IR in 512-token chunks vs one pass: 0.086 on logits of
# ~16), so exactness is asked of the arithmetic that does not depend on how the tokens are grouped
EXACT = {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}


def stateful_one_pass(xml, ids: np.ndarray) -> np.ndarray:
    import openvino as ov

    request = ov.Core().compile_model(xml, "CPU", EXACT).create_infer_request()
    request.reset_state()
    n = len(ids)
    inputs = {
        "input_ids": ids[None],
        "attention_mask": np.ones((1, n), dtype=np.int64),
        "position_ids": np.arange(n, dtype=np.int64)[None],
        "beam_idx": np.zeros(1, dtype=np.int32),
    }
    return request.infer(inputs)["logits"][0].copy()


@pytest.mark.parametrize("target", ["ov-fp16", "ov-int4"])
def test_paged_chunks_give_one_stateful_pass(build, target):
    """Three chunks (the last one partial, ending inside a cache block) against one pass: float noise only."""
    xml = build(target) / "openvino_model.xml"
    ids = np.random.default_rng(0).integers(10, 1000, 2 * PREFILL_CHUNK + 301)
    whole = stateful_one_pass(xml, ids)
    scorer = ov_paged.PagedScorer(xml, "CPU", EXACT)
    starts, pieces = [], []
    for start, logits in scorer.chunks(ids.tolist(), PREFILL_CHUNK):
        starts.append(start)
        pieces.append(logits.copy())
    assert starts == [0, PREFILL_CHUNK, 2 * PREFILL_CHUNK]
    paged = np.concatenate(pieces)
    assert paged.shape == whole.shape
    assert np.abs(paged - whole).max() < 1e-4 * max(1.0, np.abs(whole).max())
    assert (paged.argmax(-1) == whole.argmax(-1)).all()


def test_the_runner_scores_on_paged_attention_where_it_lays_the_cache_out(build, default_params):
    """Validation's own runner and properties (f32 KV cache) on the CPU go through PagedAttention, and the record
    says so; a quantized cache keeps the stateful IR (its block layout is the plugin's own)."""
    from dataclasses import replace

    from pipeline.runners.dispatch import open_runner
    from pipeline.validate.harness import runtime_options

    target, family = default_params.target("ov-int4"), default_params.family("ov-int4")
    options = runtime_options(default_params, "ov-int4")
    assert options.openvino["KV_CACHE_PRECISION"] == "f32"
    folder = build("ov-int4")
    ids = list(range(10, 10 + PREFILL_CHUNK + 7))
    seen = {}
    for kv in ("f32", "u8"):
        opts = replace(options, openvino=dict(options.openvino, KV_CACHE_PRECISION=kv))
        runner = open_runner("ov-int4", family, target.build, folder, device="CPU", options=opts)
        logits = runner.logits(ids)
        seen[kv] = runner.choice.details["scoring_attention"]
        assert logits.shape[0] == len(ids) and np.isfinite(logits).all()
        runner.close()
    assert seen == {"f32": f"PagedAttention, {PREFILL_CHUNK}-token chunks",
                    "u8": f"stateful SDPA, {PREFILL_CHUNK}-token chunks"}  # fmt: skip
    assert not ov_paged.usable("GPU", options.openvino)
