"""``targets.<name>.search``: which build settings a search varies, over which values, and what "best" means.

The keys of ``space`` are the target family's own build settings (dotted for nested ones, e.g.
``calibration.samples``), so a search can only ask for points the family can build; every value is
validated like the same key under ``build:`` (``pipeline.search.space``). The target's gates are the search's
constraints: a point that misses one is on the report, never chosen.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from pipeline.params.base import Strict


class Search(Strict):
    space: dict[str, list[Any]] = Field(
        ...,
        min_length=1,
        description="build setting (dotted for nested) → the values to try; the points are their product.",
    )
    objective: Literal["smallest", "fastest", "faithful"] = Field(
        "faithful",
        description="Among the points that pass every gate: smallest on disk, fewest ms per output token, or "
        "closest to the reference (``quality``).",
    )
    quality: Literal["kl", "perplexity"] = Field(
        "kl", description="The quality axis: mean KL to the reference (nats/token) or held-out perplexity change."
    )
    max_points: int = Field(64, ge=1, le=1024, description="A space whose product is larger is refused.")
