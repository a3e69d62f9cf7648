"""The offline text the project ships: license texts split into paragraphs.

Why license texts: they exist verbatim on every Debian system (``/usr/share/common-licenses``),
their licenses allow verbatim copies, and they are long, formal English — enough for a tiny model to
learn readable continuations in seconds. The project ships its own copy (``pipeline/data/corpus``)
so that nothing depends on the host's files.

The corpus is split deterministically into a *training* part (the embedded model learns it, NNCF
calibrates on it) and a *held-out* part (never trained on; used for perplexity), so that a perplexity
change measured on a quantized artifact is not just memorisation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CORPUS_DIR = Path(__file__).parent / "data" / "corpus"

# Every HELDOUT_EVERY-th paragraph (by position in the sorted corpus) is held out.
HELDOUT_EVERY = 10
MIN_PARAGRAPH_CHARS = 40


@dataclass(frozen=True)
class Paragraph:
    source: str  # file stem, e.g. "Apache-2.0"
    text: str


@lru_cache(maxsize=1)
def paragraphs() -> tuple[Paragraph, ...]:
    """All paragraphs of the shipped corpus, whitespace-normalised, in a fixed order."""
    out: list[Paragraph] = []
    for path in sorted(CORPUS_DIR.glob("*.txt")):
        raw = path.read_text(encoding="utf-8")
        for block in re.split(r"\n\s*\n", raw):
            text = " ".join(block.split())
            if len(text) >= MIN_PARAGRAPH_CHARS:
                out.append(Paragraph(path.stem, text))
    if not out:
        raise RuntimeError(f"the shipped corpus is empty: {CORPUS_DIR}")
    return tuple(out)


def training_paragraphs() -> list[Paragraph]:
    return [p for i, p in enumerate(paragraphs()) if i % HELDOUT_EVERY != HELDOUT_EVERY - 1]


def heldout_paragraphs() -> list[Paragraph]:
    return [p for i, p in enumerate(paragraphs()) if i % HELDOUT_EVERY == HELDOUT_EVERY - 1]


def heldout_text() -> str:
    """Text never seen in training, for perplexity."""
    return "\n\n".join(p.text for p in heldout_paragraphs())


def calibration_texts() -> list[str]:
    """Paragraphs for data-aware quantization (the embedded model's own training text)."""
    return [p.text for p in training_paragraphs()]
