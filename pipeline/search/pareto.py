"""The trade-off a search shows: size on disk × ms per output token × distance from the reference.

A point *dominates* another when it is no worse on all three axes and better on one; the front is the points
nobody dominates. Points that miss a gate are drawn (the user sees what the gate cost) but never chosen; the
chosen point is the best passing point on the search's objective, ties broken by the other axes in order.
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


def choose(points: list[Measured], objective: Objective) -> Measured | None:
    """The best point that passes every gate on ``objective`` (None when no point passes)."""
    passing = [p for p in points if p.passed]
    if not passing:
        return None
    order = _ORDER[objective]
    return min(passing, key=lambda p: tuple(p.axes()[i] for i in order))


def why(chosen: Measured, points: list[Measured], objective: Objective) -> str:
    """One sentence for the report and the model card: what the chosen point won on, among how many."""
    passing = sum(p.passed for p in points)
    axis = {"smallest": "the smallest", "fastest": "the fastest", "faithful": "the closest to the reference"}[objective]
    return f"{axis} of the {passing} points (of {len(points)}) that pass every gate"
