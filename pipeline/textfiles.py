"""Plain text as the pipeline reads it: paragraphs, and a text named in params (the shipped one or a file)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError

MIN_PARAGRAPH_CHARS = 40


@dataclass(frozen=True)
class Paragraph:
    source: str  # file stem, e.g. "Apache-2.0"
    text: str


def split_paragraphs(raw: str, min_chars: int = 1) -> list[str]:
    """Blank-line separated paragraphs, whitespace-normalised."""
    texts = (" ".join(block.split()) for block in re.split(r"\n\s*\n", raw))
    return [t for t in texts if len(t) >= min_chars]


def paragraphs_of(paths: list[Path]) -> tuple[Paragraph, ...]:
    out: list[Paragraph] = []
    for path in paths:
        for text in split_paragraphs(path.read_text(encoding="utf-8"), MIN_PARAGRAPH_CHARS):
            out.append(Paragraph(path.stem, text))
    return tuple(out)


def read_text_source(spec: str, *, key: str, builtin: str) -> str:
    """``spec`` = 'corpus' (the shipped ``builtin`` text) or the path of a UTF-8 text file (``key`` names the param)."""
    if spec == "corpus":
        return builtin
    path = Path(spec)
    if not path.is_file():
        raise PipelineError(
            f"{key} = {spec!r} is neither 'corpus' nor a text file",
            fix=f"set {key} to 'corpus' or to the path of a UTF-8 text file",
        )
    return path.read_text(encoding="utf-8")
