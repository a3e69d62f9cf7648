"""The validate stage's records: one target measured against the reference, and its golden outputs."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pipeline.records.base import FileEntry, Model, Record, Row
from pipeline.records.reference import ChatMessage


class Divergence(Model):
    """Where a free-running answer first left the reference's, and how close the reference's call was."""

    prompt: int
    position: int
    kind: Literal["tie", "diverged"]
    margin: float | None  # nats from the reference's top-1 to the target's token at that step
    margin_is_lower_bound: bool  # the target's token was outside the reference's top-k
    reference_token: int | None  # None: the reference had ended its answer
    target_token: int | None  # None: the target had ended its answer


class Quality(Model):
    exact_match_rate: float
    first_divergence: list[int | None]
    teacher_forced_agreement: float | None
    teacher_forced_tokens: int
    perplexity: float | None
    reference_perplexity: float
    perplexity_increase: float | None
    similarity: float | None
    tokenizer_match_rate: float | None
    deterministic_across_runs: bool
    logits_unavailable: str | None = None
    exact_match_tie_tolerant: float | None = None  # identical + diverged at a near-tie (what the gate checks)
    ties: int | None = None
    tie_margin: float | None = None
    divergences: list[Divergence] | None = None
    kl_mean: float | None = None  # KL(reference ‖ target), nats per teacher-forced token, full distributions
    kl_p99: float | None = None
    kl_max: float | None = None
    kl_tokens: int | None = None


class LongContextResult(Model):
    """Teacher-forced parity at one long-context length (or why the target does not take it)."""

    length: int
    why: str
    regime: str
    # "error": the runtime failed on a length it should take (the reason holds its first line; a gate fails)
    status: Literal["measured", "not taken", "error"]
    reason: str | None = None
    caveat: str | None = None  # what this measurement on a proxy device cannot prove about the intended one
    agreement: float | None = None
    kl_mean: float | None = None
    kl_p99: float | None = None
    kl_max: float | None = None
    kl_positions: int | None = None
    nll_delta: float | None = None  # target's mean next-token NLL minus the reference's, nats
    seconds: float | None = None


class RuntimeRecord(Model):
    """How the runtime ran the artifact: the properties validation set, and what the runtime reports using."""

    properties: dict[str, str]
    effective: dict[str, str]


class Phases(Model):
    """Wall seconds of each part of a validation run: where its time goes at full size (not a speed figure of
    the artifact; the host's load shows in these too)."""

    load: float  # open the artifact and compile it for the device
    tokenizer: float  # the artifact's own tokenizer + chat template against the reference's ids
    generation: float  # warm-up + timed greedy generation of every prompt
    teacher_forcing: float  # full-sequence logits of every prompt + reference answer (KL, top-1 agreement)
    perplexity: float  # held-out text
    long_context: float  # every long-context pass (0 when disabled)
    rest: float  # decode the answers, similarity, hash the artifact's files, write the record


class Speed(Model):
    load_seconds: float
    ttft_ms_median: float | None
    tpot_ms_median: float | None
    tokens_per_second: float | None
    peak_rss_bytes: int
    size_bytes: int
    timed_runs: int
    warmup_runs: int
    ttft_ms_p10_p90: list[float] | None = None
    tpot_ms_p10_p90: list[float] | None = None
    timed_tokens: int | None = None  # output tokens the time per token is the median of
    phases: Phases | None = None


class ValidatedArtifact(Model):
    """Exactly which bytes were validated (a package is made only from these)."""

    target_json_sha256: str
    files_sha256: list[FileEntry]
    settings: dict[str, Any] | None
    source_revision: str | None

    def sha256_by_path(self) -> dict[str, str]:
        return {f.path: f.sha256 for f in self.files_sha256}


class GateVerdict(Model):
    passed: bool
    failures: list[str]
    bounds: dict[str, float | bool | None]


class ValidationResult(Record):
    """``artifacts/validation/<name>/metrics.json``: one target measured against the reference."""

    FILE: ClassVar[str] = "metrics.json"
    target: str
    family: str
    status: Literal["measured", "disabled"]
    runtime: str | None = None
    device: str | None = None
    intended_device: str | None = None
    proxy: str | None = None
    device_label: str | None = None
    device_details: dict[str, Any] | None = None
    quality: Quality | None = None
    speed: Speed | None = None
    artifact: ValidatedArtifact | None = None
    validated_at: str | None = None
    tools: dict[str, str] | None = None
    gates: GateVerdict | None = None
    numerics: RuntimeRecord | None = None  # the runtime properties it ran with
    long_context: list[LongContextResult] | None = None

    @property
    def measured(self) -> bool:
        return self.status == "measured" and self.quality is not None and self.speed is not None

    @property
    def passed(self) -> bool:
        """The one answer to "did this target pass validation?"."""
        return self.measured and self.gates is not None and self.gates.passed

    def failures(self) -> list[str]:
        if self.gates is None:
            return [f"{self.target}: {self.status}"]
        return self.gates.failures


class GoldenOutput(Row):
    """``artifacts/validation/<name>/outputs.jsonl`` (and a package's ``golden_outputs.jsonl``): the
    artifact's own greedy answer to each validation prompt, which ``aipc check`` re-runs elsewhere."""

    FILE: ClassVar[str] = "outputs.jsonl"
    prompt: str
    messages: list[ChatMessage]
    input_ids: list[int]
    output_ids: list[int]
    stopped: bool
    max_new_tokens: int
    text: str
