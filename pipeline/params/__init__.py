"""The schema of ``params.yaml``: every knob of the pipeline, its default and why it exists.

Reading params is the first thing every stage and CLI command does, and a bad value must stop the run
*before any work*, with one line naming the key, the value and what is allowed (``ParamsError``). Knobs
of a target family live in that family's ``Settings`` (``pipeline/targets/<family>.py``) so that adding
a family stays one module; this file validates each target's ``build:`` block against its family.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import Field, ValidationError, create_model, model_validator

from pipeline.errors import ParamsError
from pipeline.params import messages
from pipeline.params.base import Strict
from pipeline.params.models import EmbeddedModel, HubModel, LocalModel, ModelEntry, PackageModel
from pipeline.params.search import Search
from pipeline.params.validation import Gates, Validation
from pipeline.targets import FAMILIES, family_module
from pipeline.targets.base import TargetFamily

DEFAULT_PARAMS = Path("params.yaml")
TARGET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")

__all__ = [
    "EmbeddedModel",
    "Gates",
    "HubModel",
    "LocalModel",
    "PackageModel",
    "Params",
    "Signing",
    "Validation",
    "load_params",
    "validate_params",
]


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
    search: Search | None = Field(None, description="What `aipc search <target>` varies (pipeline/params/search.py).")
    origin: str | None = Field(
        None,
        description="Where the build settings came from, e.g. the search point `aipc search --apply` wrote; "
        "printed in the model card.",
    )


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


class Signing(Strict):
    """Who signs published packages, and what verifies them (``pipeline.signing``). The private key is never
    here: ``aipc publish`` reads its path from ``AIPC_SIGNING_KEY``."""

    signer: str | None = Field(
        None, description="Who signs (a team or person), named in every manifest and model card; set it to sign."
    )
    public_key: str | None = Field(None, description="The team's public key (PEM), e.g. keys/team.pub: what verifies.")
    certificate_chain: list[str] = Field(
        default_factory=list,
        description="Instead of a public key: the CA certificates a signing certificate chains to.",
    )

    @model_validator(mode="after")
    def _complete(self) -> Signing:
        if self.public_key and self.certificate_chain:
            raise ValueError("publish.signing: give public_key or certificate_chain, not both")
        if self.signer and not (self.public_key or self.certificate_chain):
            raise ValueError(
                "publish.signing.signer is set but nothing verifies the signature: add public_key (or certificate_chain)"
            )
        if (self.public_key or self.certificate_chain) and not self.signer:
            raise ValueError("publish.signing: name the signer (signer: ...), which manifests and model cards state")
        return self

    @property
    def method(self) -> str | None:
        if not self.signer:
            return None
        return "certificate" if self.certificate_chain else "key"


class Publish(Strict):
    """Where validated artifacts go (``aipc publish``)."""

    dvc_remote: str = Field("local", description="Name of the DVC remote to push to.")
    hf_repo_prefix: str | None = Field(None, description="e.g. my-org/phi3-aipc → my-org/phi3-aipc-<target>.")
    hf_private: bool = True
    signing: Signing = Field(default_factory=Signing)


class Params(Strict):
    model: str = Field(..., description="Name of the entry under `models` to build from.")
    models: dict[str, ModelEntry]
    validation: Validation
    targets: dict[str, Target]  # type: ignore[valid-type]
    publish: Publish = Field(default_factory=Publish)

    @model_validator(mode="after")
    def _model_exists(self) -> Params:
        for name in self.models:  # DVC addresses the entry as `models.<name>`: a dot there reads as nesting
            if "." in name:
                raise ValueError(
                    f"models.{name}: a dot in an entry's name makes DVC look for models → "
                    f"{' → '.join(name.split('.'))} and fail the source stage; name it {name.replace('.', '_')!r}"
                )
        if self.model not in self.models:
            raise ValueError(
                f"model = {self.model!r}: no such entry under `models`{messages.did_you_mean(self.model, list(self.models))}"
            )
        for name in self.targets:
            if not TARGET_NAME.fullmatch(name):
                raise ValueError(f"targets.{name}: target names are lowercase letters, digits and '-'")
        return self

    # -- helpers ----------------------------------------------------------------------------------
    @property
    def source(self) -> EmbeddedModel | HubModel | LocalModel | PackageModel:
        return self.models[self.model]

    def prompts(self) -> list[str]:
        return list(self.source.prompts or self.validation.prompts)

    def target(self, name: str) -> Any:
        """``targets.<name>``: its family, settings (``.build``, the family's ``Settings``) and gates."""
        try:
            return self.targets[name]
        except KeyError:
            raise ParamsError(
                [f"params.yaml: targets.{name}: no such target{messages.did_you_mean(name, list(self.targets))}"]
            ) from None

    def family(self, name: str) -> TargetFamily:
        return family_module(self.target(name).family)


# --------------------------------------------------------------------------- loading


def load_params(path: Path | str = DEFAULT_PARAMS, *, check_model: bool = True, check_search: bool = True) -> Params:
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
    return validate_params(raw, source=str(path), check_model=check_model, check_search=check_search)


def validate_params(
    raw: dict[str, Any], *, source: str = "params.yaml", check_model: bool = True, check_search: bool = True
) -> Params:
    """``check_search``: also expand every target's ``search:`` against its ``build:``. The pipeline's stages
    skip it: they never read a search, and inside a search point's experiment ``build:`` is the point's, against
    which the sibling recipes may not hold (seen: the data-free point made an AWQ + SE recipe that does not name
    its calibration data invalid, and every stage of that experiment refused to run)."""
    if not isinstance(raw, dict):
        raise ParamsError([f"{source}: the top level must be a mapping of keys"])
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(messages.lines(exc, source, Params)) from None

    lines: list[str] = []
    dims = params.source.dims() if check_model else None
    if check_model:
        for name, target in params.targets.items():
            if target.enabled:
                for problem in family_module(target.family).preflight(target.build, dims):
                    lines.append(f"{source}: targets.{name}.build.{problem}")
    for name, target in params.targets.items():
        if check_search and target.search is not None:
            lines += [f"{source}: {line}" for line in _search_problems(name, target, dims)]
    if lines:
        raise ParamsError(lines)
    return params


def _search_problems(name: str, target: Any, dims: Any) -> list[str]:
    from pipeline.params.search import SpaceError, expand

    if not target.enabled:
        return [f"targets.{name}.search: the target is disabled (enabled: false); enable it to search it"]
    try:
        expand(name, target.family, target.build.model_dump(mode="json"), target.search, dims)
    except SpaceError as exc:
        return exc.lines
    return []
