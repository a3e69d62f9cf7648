"""The reference stage: exact prompt ids, greedy outputs, held-out likelihood — and a sound test instrument."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import layout
from pipeline.records.reference import load_reference


def test_reference_files(artifacts_root, default_params):
    rows, heldout, record = load_reference(layout.reference_dir(artifacts_root))
    assert [r.prompt for r in rows] == default_params.prompts()
    assert all(r.output_ids and r.text.strip() for r in rows)
    assert record.dtype == "float32" and record.device == "CPU" and record.eos_token_ids
    assert heldout.count == len(heldout.ids) - 1 and 1 < heldout.perplexity < 1000
    assert rows[0].messages[0].role == "user"


def test_reference_keeps_how_close_every_call_was(artifacts_root, default_params):
    """Per generated step the top-k log-probs, its own token first (greedy); full distributions for KL at every
    teacher-forced position; long-context runs on both sides of the model's edge."""
    from pipeline.records import ReferenceRecord

    ref_dir = layout.reference_dir(artifacts_root)
    rows, _, record = load_reference(ref_dir)
    k = default_params.validation.top_k
    tf = np.load(ref_dir / record.teacher_forced)
    for i, r in enumerate(rows):
        steps = r.output_ids + ([r.top_ids[-1][0]] if r.stopped else [])
        assert [ids[0] for ids in r.top_ids] == steps and all(len(ids) == k for ids in r.top_ids)
        assert all(lp[0] >= lp[-1] for lp in r.top_logprobs)
        probs = np.exp(tf[f"p{i}"])
        assert tf[f"p{i}"].shape[0] == len(r.output_ids) and np.allclose(probs.sum(-1), 1.0, atol=1e-4)
    assert isinstance(record, ReferenceRecord) and record.long_context and record.long_context_lengths


@pytest.mark.parametrize("model", ["embedded", "embedded-phi4-mini"])
def test_bf16_weights_computed_in_fp32_give_the_fp32_load_bit_for_bit(model, variant, embedded_dir):
    """The reference holds the checkpoint's bf16 weights and computes in fp32 (a fraction of the RAM): the
    logits must be the fp32 load's, bit for bit — on the plain shape and on tied embeddings + partial rotary +
    LongRoPE, past the factor switch."""
    import torch
    from transformers import AutoModelForCausalLM

    from pipeline.runners.hf import TransformersRunner

    src = embedded_dir if model == "embedded" else layout.source_dir(variant(model)[1])
    ids = list(range(300, 600))  # 300 tokens: past the variant's LongRoPE switch at 256
    fp32 = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
    with torch.no_grad():
        expected = fp32(torch.tensor([ids])).logits[0].numpy()
    runner = TransformersRunner(src)
    assert runner.model.dtype == torch.bfloat16  # the weights stay as stored
    assert np.array_equal(runner.logits(ids), expected)
    # decode steps widen the weights a few rows at a time: the same tokens and log-probs, bit for bit
    got, got_ids, got_lp = runner.generate_scored(ids[:40], 12)
    runner.model = fp32
    want, want_ids, want_lp = runner.generate_scored(ids[:40], 12)
    assert got.tokens == want.tokens and got_ids == want_ids and got_lp == want_lp


@pytest.mark.parametrize("model", ["embedded", "embedded-longrope"])
def test_one_batch_answers_as_one_prompt_at_a_time(model, variant, embedded_dir, default_params):
    """The reference generates every prompt in one left-padded batch: the same greedy tokens, top-k and
    log-probs within float noise as each prompt alone, and the teacher-forced log-probs it keeps are a full
    pass's (the decode steps' own, or a pass where prompt + answer cross the context edge) — on prompts of different lengths, on the plain shape and on LongRoPE (a prompt whose answer could
    pass the original context runs alone: padded beside it, the others' answers moved)."""
    from pipeline.runners.base import cut_at_eos
    from pipeline.runners.hf import TransformersRunner
    from pipeline.validate.parity import log_softmax, top_k
    from pipeline.validate.reference import teacher_forced_logprobs

    src = embedded_dir if model == "embedded" else layout.source_dir(variant(model)[1])
    runner = TransformersRunner(src)
    prompts = [runner.chat_ids([{"role": "user", "content": p}]) for p in default_params.prompts()]
    k, n = default_params.validation.top_k, 24
    edge = runner.dims.original_max_position_embeddings
    prompts.append([300 + i % 1500 for i in range(edge - n - 2)])  # the others padded to near the edge
    prompts.append([300 + i % 1500 for i in range(edge - 8)])  # its answer passes the edge: alone
    assert len({len(p) for p in prompts}) > 3
    batch = runner.generate_batch(prompts, n)
    for ids, got in zip(prompts, batch, strict=True):
        alone, top_ids, top_lps = runner.generate_scored(ids, n, k)
        assert got.tokens == alone.tokens
        tops = [top_k(lp, k) for lp in got.logprobs]
        assert [t[0] for t in tops] == top_ids
        assert np.allclose([t[1] for t in tops], top_lps, atol=1e-4)
        out = cut_at_eos(got.tokens, runner.eos)
        full = log_softmax(runner.logits(ids + out)[len(ids) - 1 : len(ids) + len(out) - 1])
        assert np.abs(teacher_forced_logprobs(runner, ids, got, out) - full).max() < 1e-4


def test_heldout_perplexity_read_from_the_long_run(artifacts_root, default_params):
    """The reference's held-out NLL comes from the prefix of its long-context run: it is what a pass over the
    held-out ids alone gives, within float noise."""
    from pipeline.runners.hf import TransformersRunner
    from pipeline.validate import metrics

    _, heldout, _ = load_reference(layout.reference_dir(artifacts_root))
    runner = TransformersRunner(layout.source_dir(artifacts_root))
    total, count = metrics.nll(runner.logits(heldout.ids), heldout.ids)
    assert count == heldout.count and abs(total - heldout.nll) < 1e-3 * count**0.5
