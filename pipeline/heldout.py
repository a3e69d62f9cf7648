"""Held-out text the project ships, for perplexity: license texts the embedded model never sees.

GPL-1, LGPL-2.1, MPL-1.1 — mostly other versions of licenses in the training set, so in-domain but unseen.
A perplexity change measured on unseen text says something about the quantized weights, not about
memorisation.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pipeline.textfiles import Paragraph, paragraphs_of

HELDOUT_DIR = Path(__file__).parent / "data" / "heldout"
HELDOUT_ORDER = ("GPL-1", "LGPL-2.1", "MPL-1.1")
DATA_DEPS = ("pipeline/data/heldout",)  # read at run time: a stage that uses this module depends on them


@lru_cache(maxsize=1)
def heldout_paragraphs() -> tuple[Paragraph, ...]:
    return paragraphs_of([HELDOUT_DIR / f"{name}.txt" for name in HELDOUT_ORDER])


def heldout_text() -> str:
    """Text never seen in training, for perplexity."""
    return "\n\n".join(p.text for p in heldout_paragraphs())
