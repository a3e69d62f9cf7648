"""Parity with the reference beyond top-1: divergences classified at near-ties, and KL of full distributions.

Top-1 agreement alone cannot tell rounding at a near-tie from a broken graph: a correct FP16 artifact and a
random-weight model (whose logits are nearly tied) flip tokens where the reference's top two are a hair
apart. So a free-running divergence is classified by the reference's own log-probs at that step (``tie``
when the target's token is within ``tie_margin`` nats of the reference's top-1), and teacher-forced parity is
measured on whole distributions: KL(reference ‖ target) per position, which is ~0 for a faithful artifact
whatever the weights, and large for a wrong one even where the argmax happens to agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def kl_per_position(ref_logprobs: np.ndarray, target_logits: np.ndarray) -> np.ndarray:
    """KL(reference ‖ target) in nats at each row: Σ p·(log p − log q) over the whole vocabulary."""
    ref = np.asarray(ref_logprobs, dtype=np.float64)
    q = log_softmax(target_logits)
    if ref.shape != q.shape:
        raise ValueError(f"reference {ref.shape} and target {q.shape} distributions differ in shape")
    return (np.exp(ref) * (ref - q)).sum(axis=-1).clip(min=0.0)


def spread(values: np.ndarray | list[float]) -> tuple[float | None, float | None, float | None]:
    """(mean, 99th percentile, max) — None when there is nothing to summarise."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return None, None, None
    return float(v.mean()), float(np.percentile(v, 99)), float(v.max())


def top_k(logprobs: np.ndarray, k: int) -> tuple[list[int], list[float]]:
    """The ``k`` most likely token ids and their log-probs, most likely first."""
    idx = np.argsort(-logprobs, kind="stable")[:k]
    return [int(i) for i in idx], [float(logprobs[i]) for i in idx]


@dataclass(frozen=True)
class Divergence:
    """Where a target's free-running answer first left the reference's, and how close that call was."""

    position: int
    kind: str  # "tie" | "diverged"
    margin: float | None  # nats from the reference's top-1 to the target's token at that step
    margin_is_lower_bound: bool  # the target's token was outside the reference's top-k: at least this far
    reference_token: int | None  # None: the reference had ended its answer
    target_token: int | None  # None: the target had ended its answer


def classify(
    reference: list[int],
    reference_stopped: bool,
    target: list[int],
    target_stopped: bool,
    top_ids: list[list[int]],
    top_logprobs: list[list[float]],
    eos: set[int],
    tie_margin: float,
) -> Divergence | None:
    """None when the answers are identical. ``reference``/``target``: the answers up to (not including) a stop
    token; ``*_stopped``: whether the answer ended there (rather than at max_new_tokens);
    ``top_ids[i]``/``top_logprobs[i]``: the reference's most likely tokens at step i."""
    i = next((j for j, (a, b) in enumerate(zip(reference, target, strict=False)) if a != b), None)
    if i is None:
        if len(reference) == len(target) and reference_stopped == target_stopped:
            return None
        i = min(len(reference), len(target))
    ref_tok = reference[i] if i < len(reference) else None
    tgt_tok = target[i] if i < len(target) else None
    if i >= len(top_ids):  # the reference has no step here (it reached max_new_tokens first)
        return Divergence(i, "diverged", None, False, ref_tok, tgt_tok)
    ids, lps = top_ids[i], top_logprobs[i]
    if tgt_tok is None:  # the target stopped here: its token is the stop token the reference ranks highest
        candidates = [lp for t, lp in zip(ids, lps, strict=True) if t in eos]
    else:
        candidates = [lp for t, lp in zip(ids, lps, strict=True) if t == tgt_tok]
    if candidates:
        margin, bound = lps[0] - max(candidates), False
    else:
        margin, bound = lps[0] - lps[-1], True
    kind = "tie" if not bound and margin <= tie_margin else "diverged"
    return Divergence(i, kind, margin, bound, ref_tok, tgt_tok)
