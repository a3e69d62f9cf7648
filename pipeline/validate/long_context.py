"""Long-context parity: teacher-forced comparison on long held-out text, at the lengths where artifacts break.

Phi-3 artifacts most often break in the field at long context: LongRoPE switches its rotary factors once a
sequence is longer than ``original_max_position_embeddings`` (optimum-intel and onnxruntime-genai both had
bugs exactly there), a 4k model meets the edge of its context at 4096/4097, and an NPU compiles a static
prompt window (``MAX_PROMPT_LEN``). So the lengths come from the model's config, on both sides of each edge.

Every run is one full-sequence forward pass, in the reference and in the target alike: LongRoPE picks its
factors from the length of the sequence in that pass, so a chunked pass would compute something else. Within
one "regime" (all lengths up to the switch, or all lengths past it) a causal model's logits at a position do
not depend on later tokens, so the reference computes one run per regime, as long as its longest length, and
each length is compared with a prefix of it. The reference keeps, per run, the top-1 and the NLL of the next
token at every position and the full distribution at ``kl_positions`` positions spread over the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.params.validation import LongContext
from pipeline.records import LongRun
from pipeline.targets.base import ModelDims
from pipeline.validate.parity import kl_per_position, log_softmax, spread


@dataclass(frozen=True)
class Length:
    length: int
    why: str


def model_lengths(dims: ModelDims, settings: LongContext) -> list[Length]:
    """The lengths to check for this model (or the ones params.yaml names)."""
    return [Length(n, why) for n, why in settings.model_lengths(dims)]


def regime(dims: ModelDims, length: int) -> str:
    if dims.longrope and dims.original_max_position_embeddings:
        return "long factors" if length > dims.original_max_position_embeddings else "short factors"
    return "rope"


def runs(dims: ModelDims, lengths: list[Length]) -> dict[str, int]:
    """regime → the length of the one reference run that covers every requested length in it."""
    out: dict[str, int] = {}
    for n in lengths:
        r = regime(dims, n.length)
        out[r] = max(out.get(r, 0), n.length)
    return out


def sample_positions(run_length: int, k: int, edges: list[int]) -> np.ndarray:
    """Positions (predicting the next token) spread evenly over the run, plus both sides of every edge."""
    last = run_length - 2
    picks = set(np.linspace(0, last, num=min(k, last + 1)).round().astype(int).tolist())
    for e in edges:
        picks |= {p for p in (e - 2, e - 1) if 0 <= p <= last}
    return np.array(sorted(picks), dtype=np.int64)


def top1_and_nll(logits: np.ndarray, ids: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Argmax and next-token NLL at every position predicting a next token, a chunk of rows at a time (a full
    float64 copy of a 4k × 32k logits matrix would be 1 GB)."""
    n = len(ids) - 1
    top1, nll = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.float64)
    for a in range(0, n, chunk):
        lp = log_softmax(logits[a : min(n, a + chunk)])
        top1[a : a + len(lp)] = lp.argmax(axis=-1)
        nll[a : a + len(lp)] = -lp[np.arange(len(lp)), ids[a + 1 : a + 1 + len(lp)]]
    return top1, nll


def reference_run(logits: np.ndarray, ids: list[int], positions: np.ndarray, path: Path) -> None:
    """Keep what the targets are compared with: top-1 and next-token NLL everywhere, full log-probs at
    ``positions``. Written as one ``.npz`` per run."""
    arr = np.asarray(ids, dtype=np.int64)
    top1, nll = top1_and_nll(logits, arr)
    np.savez(
        path,
        ids=arr,
        top1=top1,
        nll=nll,
        positions=positions,
        logprobs=log_softmax(logits[positions]).astype(np.float32),
    )


@dataclass
class Comparison:
    agreement: float
    kl_mean: float | None
    kl_p99: float | None
    kl_max: float | None
    kl_positions: int
    nll_delta: float


class RunScores:
    """What the comparison needs from a target's pass over a run, gathered chunk by chunk: the top-1 and the
    next-token NLL at every position, and the logits rows at the reference's KL positions. Each row gives the
    same numbers whether it arrives alone or in the whole matrix (every reduction is per row), so a long run's
    logits (525 MB in f32 for Phi-3-mini at 4097 tokens) are never held whole."""

    def __init__(self, ids: np.ndarray, positions: np.ndarray):
        self.ids = np.asarray(ids, dtype=np.int64)
        n = len(self.ids) - 1  # positions that predict a next token
        self.top1 = np.full(n, -1, dtype=np.int64)
        self.nll = np.full(n, np.nan, dtype=np.float64)
        self.positions = positions[positions < n]
        self.rows: dict[int, np.ndarray] = {}

    def add(self, start: int, logits: np.ndarray) -> None:
        """Logits of positions ``start`` … ``start + len(logits) - 1`` (rows past the last prediction ignored)."""
        end = min(start + len(logits), len(self.top1))
        if end <= start:
            return
        block = logits[: end - start]
        ids = self.ids[start : end + 1]
        top1, nll = top1_and_nll(block, ids)
        self.top1[start:end], self.nll[start:end] = top1, nll
        for p in self.positions[(self.positions >= start) & (self.positions < end)]:
            self.rows[int(p)] = np.array(block[p - start], dtype=np.float32)

    def compare(self, run: LongRun, ref_dir: Path, length: int) -> Comparison:
        """The first ``length`` tokens against the prefix of the reference's run."""
        n = length - 1
        if n > len(self.top1) or (self.top1[:n] < 0).any():
            raise ValueError(f"the target's pass did not cover {length} tokens")
        data = np.load(ref_dir / run.file)
        agreement = float((self.top1[:n] == data["top1"][:n]).mean())
        nll_delta = float(self.nll[:n].mean() - data["nll"][:n].mean())
        keep = data["positions"] < n
        pos = data["positions"][keep]
        if pos.size:
            kl = kl_per_position(data["logprobs"][keep], np.stack([self.rows[int(p)] for p in pos]))
        else:
            kl = np.array([])
        mean, p99, mx = spread(kl)
        return Comparison(agreement, mean, p99, mx, int(pos.size), nll_delta)


def compare(run: LongRun, ref_dir: Path, length: int, target_logits: np.ndarray) -> Comparison:
    """The target's logits for the first ``length`` tokens against the prefix of the reference's run."""
    data = np.load(ref_dir / run.file)
    scores = RunScores(data["ids"][:length], data["positions"])
    scores.add(0, target_logits[:length])
    return scores.compare(run, ref_dir, length)


def prefix_nll(runs_: list[LongRun], dims: ModelDims, ref_dir: Path, ids: list[int]) -> tuple[float, int] | None:
    """The summed next-token NLL of ``ids`` and its count, read from the reference run they begin (same regime,
    long enough), or None when no run begins with them."""
    run = covering_run(runs_, dims, len(ids))
    if run is None:
        return None
    data = np.load(ref_dir / run.file)
    return nll_of_prefix(data["ids"], data["nll"], ids)


def nll_of_prefix(run_ids: np.ndarray, nll: np.ndarray, prefix: list[int]) -> tuple[float, int] | None:
    """(summed next-token NLL, count) of ``prefix`` from a run's per-position NLL, if the run begins with it."""
    if len(prefix) < 2 or len(prefix) > len(run_ids) or not np.array_equal(run_ids[: len(prefix)], prefix):
        return None
    return float(nll[: len(prefix) - 1].sum()), len(prefix) - 1


def covering_run(runs_: list[LongRun], dims: ModelDims, length: int) -> LongRun | None:
    """The reference run whose prefix stands for ``length`` tokens (same regime, long enough), if any."""
    r = regime(dims, length)
    return next((x for x in runs_ if x.regime == r and x.length >= length), None)
