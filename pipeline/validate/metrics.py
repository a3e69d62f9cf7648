"""Quality metrics: pure functions of token lists and logits (easy to test, runtime-agnostic)."""

from __future__ import annotations

import math
from statistics import median

import numpy as np


def first_divergence(ref: list[int], out: list[int]) -> int | None:
    """Index of the first differing token; None when the sequences are identical."""
    for i, (a, b) in enumerate(zip(ref, out, strict=False)):
        if a != b:
            return i
    if len(ref) == len(out):
        return None
    return min(len(ref), len(out))


def exact_match_rate(pairs: list[tuple[list[int], list[int]]]) -> float:
    return sum(a == b for a, b in pairs) / len(pairs) if pairs else float("nan")


def teacher_forced_agreement(logits: np.ndarray, seq: list[int], start: int) -> tuple[int, int]:
    """(agreeing, total): does the artifact's top-1 at each position predict the reference's next token?

    ``seq`` is prompt + reference continuation; ``logits[i]`` predicts ``seq[i+1]``. Positions from
    ``start - 1`` (the last prompt token predicts the first generated one) are scored. Because every step
    is fed the *reference* prefix, one early miss does not cascade into the rest (unlike exact match).
    """
    if len(seq) <= start:
        return 0, 0
    pred = logits[start - 1 : len(seq) - 1].argmax(axis=-1)
    target = np.asarray(seq[start:])
    return int((pred == target).sum()), len(target)


def nll(logits: np.ndarray, ids: list[int]) -> tuple[float, int]:
    """Summed negative log-likelihood of ids[1:] under logits[:-1] (natural log), and the token count."""
    x = logits[:-1].astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    logz = np.log(np.exp(x).sum(axis=-1))
    tgt = np.asarray(ids[1:])
    picked = x[np.arange(len(tgt)), tgt]
    return float((logz - picked).sum()), len(tgt)


def perplexity(total_nll: float, count: int) -> float:
    return math.exp(total_nll / count) if count else float("nan")


def med(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(median(vals)) if vals else None


def p10_p90(values: list[float]) -> list[float] | None:
    """The spread of a timing: its 10th and 90th percentiles (None without samples)."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return None
    return [float(np.percentile(vals, 10)), float(np.percentile(vals, 90))]
