"""The trade-off a search shows: size on disk × ms per output token × distance from the reference.

A point *dominates* another when it is no worse on all three axes and better on one; the front is the points
nobody dominates. Points that miss a gate are drawn (the user sees what the gate cost) but never chosen; the
chosen point is the best passing point on the search's objective; points within that axis's tolerance of the best
count as tied and the next axes decide among them (see ``TIE``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

Objective = Literal["smallest", "fastest", "faithful"]


@dataclass(frozen=True)
class Measured:
    """One finished point, as its validation measured it."""

    name: str
    label: str
    size_bytes: int
    ms_per_token: float | None  # None: the runtime gave no timing (it is then worst on that axis)
    quality: float | None  # KL (nats/token) or perplexity change: lower is better; None = not measurable
    passed: bool
    failures: list[str] = field(default_factory=list)

    def axes(self) -> tuple[float, float, float]:
        worst = math.inf
        return (
            float(self.size_bytes),
            self.ms_per_token if self.ms_per_token is not None else worst,
            self.quality if self.quality is not None else worst,
        )


def dominates(a: Measured, b: Measured) -> bool:
    x, y = a.axes(), b.axes()
    return all(p <= q for p, q in zip(x, y, strict=True)) and any(p < q for p, q in zip(x, y, strict=True))


def front(points: list[Measured]) -> list[Measured]:
    """The points no other point dominates, in the given order."""
    return [p for p in points if not any(dominates(q, p) for q in points if q is not p)]


_ORDER: dict[str, tuple[int, int, int]] = {"smallest": (0, 2, 1), "fastest": (1, 2, 0), "faithful": (2, 0, 1)}

# Relative differences below these do not rank one point above another. Size is exact, but 1 % of a model is
# nobody's reason to take a slower or less faithful one. ms/token varies about 10 % within one validation (p10–p90
# at Phi-3-mini size: 6–12 % of the median). 2 % of KL or perplexity is a judgement, not a measured noise floor: it
# can tie two different artifacts (embedded ov-int4 search: KL 0.0122 and 0.0124 for two different weight sets),
# and then size and speed decide, which is the intent. Measured case this fixes: on the embedded ort-cpu-int4
# search, block 128 at accuracy level 0 won "smallest" over level 4 at the same size on a KL difference in the
# fourth digit, although level 4 ran twice as fast.
TIE: tuple[float, float, float] = (0.01, 0.10, 0.02)


def choose(points: list[Measured], objective: Objective) -> Measured | None:
    """The best point that passes every gate on ``objective`` (None when no point passes).

    Axis by axis in the objective's order, the candidates narrow to those within the axis's tolerance of the best;
    the last axis picks the single best. (A plain lexicographic minimum would let a noise-level difference on the
    second axis decide against a real one on the third.)"""
    candidates = [p for p in points if p.passed]
    if not candidates:
        return None
    *narrowing, last = _ORDER[objective]
    for axis in narrowing:
        best = min(p.axes()[axis] for p in candidates)
        candidates = [p for p in candidates if p.axes()[axis] <= _within(best, TIE[axis])]
    return min(candidates, key=lambda p: tuple(p.axes()[i] for i in (last, *narrowing)))


def _within(best: float, tolerance: float) -> float:
    return best if math.isinf(best) else best + abs(best) * tolerance


def why(chosen: Measured, points: list[Measured], objective: Objective) -> str:
    """One sentence for the report and the model card: what the chosen point won on, among how many."""
    passing = sum(p.passed for p in points)
    names = ("the smallest", "the fastest", "the closest to the reference")
    first, *rest = (names[i] for i in _ORDER[objective])
    tolerance = TIE[_ORDER[objective][0]]
    return (
        f"{first} of the {passing} points (of {len(points)}) that pass every gate; "
        f"among points within {tolerance:.0%} of that, {rest[0]}, then {rest[1]}"
    )
