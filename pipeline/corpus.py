"""The training text the project ships: license texts split into paragraphs.

Why license texts: they exist verbatim on every Debian system (``/usr/share/common-licenses``), their
licenses allow verbatim copies, and they are long, formal English — enough for a tiny model to learn
readable continuations in seconds. The project ships its own copy so nothing depends on the host.
``data/corpus/`` is what the embedded model is trained on and what NNCF calibrates with; the held-out text
for perplexity is in ``heldout``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pipeline.textfiles import Paragraph, paragraphs_of

CORPUS_DIR = Path(__file__).parent / "data" / "corpus"
DATA_DEPS = ("pipeline/data/corpus",)  # read at run time: a stage that uses this module depends on them


@lru_cache(maxsize=1)
def paragraphs() -> tuple[Paragraph, ...]:
    """All training paragraphs, whitespace-normalised, in a fixed order."""
    out = paragraphs_of(sorted(CORPUS_DIR.glob("*.txt")))
    if not out:
        raise RuntimeError(f"the shipped corpus is empty: {CORPUS_DIR}")
    return out


def training_paragraphs() -> list[Paragraph]:
    return list(paragraphs())


def calibration_texts() -> list[str]:
    """Paragraphs for data-aware quantization (the embedded model's own training text)."""
    return [p.text for p in training_paragraphs()]
