"""The source stage's record."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from pipeline.records.base import FileEntry, Model, Record


class Relayout(Model):
    """How a checkpoint of another architecture became a Phi-3 (``pipeline.sources.relayout``), and the proof."""

    original: str  # the architecture it was proven equal to
    max_abs_logit_difference: float
    probe_tokens: int


class SourceRecord(Record):
    """``artifacts/source/source.json``: which model, from where, at which revision, with which files.

    Only what the content is, nothing about the run that fetched it (no time taken): the source is a DVC
    output that is never cached (``cache: false``), so every queued experiment fetches it again in its own
    workspace, and its bytes must come out the same for DVC to reuse the IR, the reference and the builds."""

    FILE: ClassVar[str] = "source.json"
    model: str
    kind: Literal["embedded", "hub", "local", "package"]
    repo: str
    endpoint: str | None = None
    requested_revision: str | None = None
    resolved_revision: str | None = None
    license: str = ""
    skipped: list[str] | None = None
    offline_cache: str | None = None
    spec: dict[str, Any] | None = None
    cache_key: str | None = None
    relayout: Relayout | None = None
    tools: dict[str, str] = Field(default_factory=dict)
    files: list[FileEntry] = Field(default_factory=list)
