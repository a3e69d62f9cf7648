"""The reference stage's records: prompts with exact ids and answers, held-out likelihood, what ran."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pipeline.errors import PipelineError
from pipeline.records.base import Model, Record, Row


class ChatMessage(Model):
    role: str
    content: str


class ReferenceOutput(Row):
    """``artifacts/reference/outputs.jsonl``: one prompt's exact ids and the reference's greedy answer."""

    FILE: ClassVar[str] = "outputs.jsonl"
    prompt: str
    messages: list[ChatMessage]
    input_ids: list[int]
    output_ids: list[int]
    stopped: bool
    text: str
    # the reference's most likely tokens at every generated step (the stop step included), most likely first:
    # how close each call was, so that a target's divergence at a near-tie is told from a real one
    top_ids: list[list[int]]
    top_logprobs: list[list[float]]


class Heldout(Record):
    """``artifacts/reference/heldout.json``: held-out text ids and the reference's likelihood of them."""

    FILE: ClassVar[str] = "heldout.json"
    source: str
    ids: list[int]
    nll: float
    count: int
    perplexity: float


class LongRun(Model):
    """One full-sequence reference run on the long held-out text (``long_context.reference_run``)."""

    length: int
    regime: str
    file: str
    kl_positions: int


class LongLength(Model):
    """A long-context length every target is checked at, and why that one."""

    length: int
    why: str


class ReferenceRecord(Record):
    """``artifacts/reference/reference.json``: what ran the reference (its timings are in the run log: every
    validation depends on this folder's hash)."""

    FILE: ClassVar[str] = "reference.json"
    model: str
    runtime: str
    device: str
    dtype: str
    eos_token_ids: list[int]
    prompts: int
    max_new_tokens: int
    heldout_tokens: int
    heldout_perplexity: float
    tools: dict[str, str]
    top_k: int
    teacher_forced: str  # .npz of full log-probs at every teacher-forced position, one array per prompt
    long_context_lengths: list[LongLength]
    long_context: list[LongRun]
    long_context_unavailable: str | None = None


def load_reference(ref_dir: Path) -> tuple[list[ReferenceOutput], Heldout, ReferenceRecord]:
    """Everything the reference stage wrote, or one line saying how to make it."""
    if not ReferenceRecord.exists(ref_dir):
        raise PipelineError(f"{ref_dir} is missing", fix="run `dvc repro reference` (or the whole pipeline) first")
    return ReferenceOutput.read_all(ref_dir), Heldout.read(ref_dir), ReferenceRecord.read(ref_dir)
