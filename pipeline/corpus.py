"""The offline text the project ships: license texts split into paragraphs.

Why license texts: they exist verbatim on every Debian system (``/usr/share/common-licenses``), their
licenses allow verbatim copies, and they are long, formal English — enough for a tiny model to learn
readable continuations in seconds. The project ships its own copy so nothing depends on the host.

- ``data/corpus/``: what the embedded model is trained on and what NNCF calibrates with;
- ``data/heldout/``: license texts it never sees (GPL-1, LGPL-2.1, MPL-1.1 — mostly other versions of
  licenses in the training set, so in-domain but unseen), for perplexity. A perplexity change measured
  on unseen text says something about the quantized weights, not about memorisation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
CORPUS_DIR = DATA_DIR / "corpus"
HELDOUT_DIR = DATA_DIR / "heldout"
HELDOUT_ORDER = ("GPL-1", "LGPL-2.1", "MPL-1.1")
MIN_PARAGRAPH_CHARS = 40


@dataclass(frozen=True)
class Paragraph:
    source: str  # file stem, e.g. "Apache-2.0"
    text: str


def split_paragraphs(raw: str, min_chars: int = 1) -> list[str]:
    """Blank-line separated paragraphs, whitespace-normalised."""
    texts = (" ".join(block.split()) for block in re.split(r"\n\s*\n", raw))
    return [t for t in texts if len(t) >= min_chars]


def _paragraphs(paths: list[Path]) -> tuple[Paragraph, ...]:
    out: list[Paragraph] = []
    for path in paths:
        for text in split_paragraphs(path.read_text(encoding="utf-8"), MIN_PARAGRAPH_CHARS):
            out.append(Paragraph(path.stem, text))
    return tuple(out)


@lru_cache(maxsize=1)
def paragraphs() -> tuple[Paragraph, ...]:
    """All training paragraphs, whitespace-normalised, in a fixed order."""
    out = _paragraphs(sorted(CORPUS_DIR.glob("*.txt")))
    if not out:
        raise RuntimeError(f"the shipped corpus is empty: {CORPUS_DIR}")
    return out


def training_paragraphs() -> list[Paragraph]:
    return list(paragraphs())


@lru_cache(maxsize=1)
def heldout_paragraphs() -> tuple[Paragraph, ...]:
    return _paragraphs([HELDOUT_DIR / f"{name}.txt" for name in HELDOUT_ORDER])


def heldout_text() -> str:
    """Text never seen in training, for perplexity."""
    return "\n\n".join(p.text for p in heldout_paragraphs())


def read_text_source(spec: str, *, key: str, builtin: str) -> str:
    """``spec`` = 'corpus' (the shipped ``builtin`` text) or the path of a UTF-8 text file (``key`` names the param)."""
    if spec == "corpus":
        return builtin
    path = Path(spec)
    if not path.is_file():
        from pipeline.errors import PipelineError

        raise PipelineError(
            f"{key} = {spec!r} is neither 'corpus' nor a text file",
            fix=f"set {key} to 'corpus' or to the path of a UTF-8 text file",
        )
    return path.read_text(encoding="utf-8")


def calibration_texts() -> list[str]:
    """Paragraphs for data-aware quantization (the embedded model's own training text)."""
    return [p.text for p in training_paragraphs()]
