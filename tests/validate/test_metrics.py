"""The metric functions on hand-made inputs (what each number means)."""

from __future__ import annotations

import math

import numpy as np

from pipeline.runners.base import cut_at_eos
from pipeline.validate import metrics as m


def test_first_divergence():
    assert m.first_divergence([1, 2, 3], [1, 2, 3]) is None
    assert m.first_divergence([1, 2, 3], [1, 9, 3]) == 1
    assert m.first_divergence([1, 2, 3], [1, 2]) == 2
    assert m.first_divergence([], [5]) == 0


def test_exact_match_rate():
    assert m.exact_match_rate([([1], [1]), ([1, 2], [1, 3])]) == 0.5
    assert math.isnan(m.exact_match_rate([]))


def test_teacher_forced_agreement_counts_each_position_without_cascade():
    vocab = 5
    seq = [0, 1, 2, 3, 4]  # prompt = [0, 1], continuation = [2, 3, 4]
    logits = np.zeros((len(seq), vocab))
    logits[1, 2] = 1.0  # predicts 2 after the prompt: right
    logits[2, 0] = 1.0  # predicts 0 instead of 3: wrong
    logits[3, 4] = 1.0  # predicts 4: right, although the step before was wrong
    assert m.teacher_forced_agreement(logits, seq, start=2) == (2, 3)


def test_nll_and_perplexity_of_a_uniform_model():
    vocab = 8
    ids = [0, 1, 2, 3]
    total, count = m.nll(np.zeros((len(ids), vocab)), ids)
    assert count == 3
    assert math.isclose(m.perplexity(total, count), vocab, rel_tol=1e-9)


def test_nll_is_stable_for_large_logits():
    logits = np.array([[1e4, 0.0], [0.0, 1e4]])
    total, count = m.nll(logits, [0, 0])
    assert count == 1 and math.isfinite(total) and total < 1e-6


def test_cut_at_eos_and_median():
    assert cut_at_eos([5, 6, 2, 7], {2}) == [5, 6]
    assert cut_at_eos([5, 6], {2}) == [5, 6]
    assert m.med([3.0, None, 1.0, 2.0]) == 2.0 and m.med([None]) is None
