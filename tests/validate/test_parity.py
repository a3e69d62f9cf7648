"""Ties and KL: a divergence at a near-tie is told from a real one, and KL sees what top-1 agreement misses."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.params import Gates
from pipeline.records import LongContextResult, Quality, Speed
from pipeline.validate import gates, parity

EOS = {2}
# the reference at each step: its top tokens, most likely first, with log-probs
TOP_IDS = [[10, 11, 12], [20, 21, 22], [30, 2, 31]]
TOP_LPS = [[-0.1, -0.13, -3.0], [-0.5, -1.5, -4.0], [-0.2, -0.21, -5.0]]


def classify(reference, ref_stopped, target, tgt_stopped, margin=0.05):
    return parity.classify(reference, ref_stopped, target, tgt_stopped, TOP_IDS, TOP_LPS, EOS, margin)


def test_identical_answers_have_no_divergence():
    assert classify([10, 20, 30], False, [10, 20, 30], False) is None
    assert classify([10, 20], True, [10, 20], True) is None


def test_a_flip_between_near_tied_tokens_is_a_tie():
    d = classify([10, 20, 30], False, [11, 25, 30], False)  # 11 is 0.03 nats behind the reference's top-1
    assert (d.position, d.kind, d.reference_token, d.target_token) == (0, "tie", 10, 11)
    assert d.margin == pytest.approx(0.03) and not d.margin_is_lower_bound


def test_a_clear_choice_overturned_is_a_divergence_even_at_a_loose_margin():
    d = classify([10, 20, 30], False, [10, 21, 30], False)  # 1.0 nat behind
    assert (d.position, d.kind) == (1, "diverged") and d.margin == pytest.approx(1.0)
    assert classify([10, 20, 30], False, [10, 21, 30], False, margin=2.0).kind == "tie"  # the margin decides


def test_a_token_outside_the_reference_top_k_is_never_a_tie():
    d = classify([10, 20, 30], False, [10, 99, 30], False, margin=100.0)
    assert d.kind == "diverged" and d.margin_is_lower_bound and d.margin == pytest.approx(3.5)


def test_stopping_early_is_judged_by_the_stop_token_rank():
    d = classify([10, 20, 30], False, [10, 20], True)  # the target stopped where the reference ranked EOS 2nd
    assert (d.position, d.kind, d.target_token) == (2, "tie", None) and d.margin == pytest.approx(0.01)
    d = classify([10, 20], True, [10, 20, 31], False)  # the reference stopped; the target went on
    assert d.position == 2 and d.reference_token is None and d.target_token == 31


def test_kl_is_zero_for_the_same_distribution_and_sees_what_top1_misses():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 300))
    ref = parity.log_softmax(logits)
    assert parity.kl_per_position(ref, logits).max() < 1e-12
    # Broken but with the same argmax everywhere: flatten every distribution (e.g. a wrong scale).
    flattened = logits * 0.5
    assert (flattened.argmax(-1) == logits.argmax(-1)).all()
    assert parity.kl_per_position(ref, flattened).mean() > 0.1


def _quality(**kw):
    base = dict(exact_match_rate=0.0, first_divergence=[], teacher_forced_agreement=1.0, teacher_forced_tokens=1,
                perplexity=1.0, reference_perplexity=1.0, perplexity_increase=0.0, similarity=None,
                tokenizer_match_rate=1.0, deterministic_across_runs=True)  # fmt: skip
    return Quality(**{**base, **kw})


SPEED = Speed(load_seconds=0, ttft_ms_median=1, tpot_ms_median=1, tokens_per_second=1, peak_rss_bytes=1,
              size_bytes=1, timed_runs=1, warmup_runs=0)  # fmt: skip


def test_exact_match_gate_counts_ties_and_kl_gate_bites():
    g = Gates(exact_match_min=1.0, kl_mean_max=1e-3)
    ok = _quality(exact_match_rate=0.5, exact_match_tie_tolerant=1.0, kl_mean=1e-8)
    assert gates.check("t", g, ok, SPEED) == []
    bad = _quality(exact_match_rate=0.5, exact_match_tie_tolerant=0.5, kl_mean=0.2)
    failures = gates.check("t", g, bad, SPEED)
    assert any("exact_match_tie_tolerant = 0.5" in f for f in failures)
    assert any("kl_mean = 0.2, bound <= 0.001 (targets.t.gates.kl_mean_max)" in f for f in failures)


def test_long_context_gates_take_the_worst_length_and_refuse_nothing_measured():
    g = Gates(long_context_kl_max=1e-3, long_context_agreement_min=0.99)
    good = LongContextResult(length=256, why="", regime="short", status="measured", agreement=1.0, kl_mean=1e-8)
    bad = LongContextResult(length=257, why="", regime="long", status="measured", agreement=0.6, kl_mean=0.7)
    skipped = LongContextResult(length=1025, why="", regime="long", status="not taken", reason="x")
    assert gates.check("t", g, _quality(), SPEED, [good, skipped]) == []
    failures = gates.check("t", g, _quality(), SPEED, [good, bad])
    assert any("long-context kl_mean = 0.7 at 257 tokens" in f for f in failures)
    assert any("long-context agreement = 0.6 at 257 tokens" in f for f in failures)
    assert all("no long-context length was measured" in f for f in gates.check("t", g, _quality(), SPEED, [skipped]))
