"""``targets.<name>.search``: which build settings a search varies, over which values, and what "best" means.

The keys of ``space`` are the target family's own build settings (dotted for nested ones, e.g.
``calibration.samples``), so a search can only ask for points the family can build; every value is
validated like the same key under ``build:`` (``expand`` below). ``recipes`` adds named points beside the
product — a published recipe (optimum-intel's per-model default, Olive's) is compared on the same report
without making the product grow. The target's gates are the search's constraints: a point that misses one
is on the report, never chosen.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from pipeline.params.base import Strict
from pipeline.targets import family_module
from pipeline.targets.base import ModelDims


class Search(Strict):
    space: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="build setting (dotted for nested) → the values to try; the points are their product.",
    )
    recipes: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="named points besides the product: name → {build setting (dotted): value}, e.g. a toolkit's "
        "published recipe for the model family.",
    )
    objective: Literal["smallest", "fastest", "faithful"] = Field(
        "faithful",
        description="Among the points that pass every gate: smallest on disk, fewest ms per output token, or "
        "closest to the reference (``quality``).",
    )
    quality: Literal["kl", "perplexity"] = Field(
        "kl", description="The quality axis: mean KL to the reference (nats/token) or held-out perplexity change."
    )
    max_points: int = Field(
        64, ge=1, le=1024, description="A space whose product plus its recipes is larger is refused."
    )

    @model_validator(mode="after")
    def _something(self) -> Search:
        if not self.space and not self.recipes:
            raise ValueError("a search needs a space, recipes, or both")
        return self


# --------------------------------------------------------------------------- the space expanded into points
#
# A value that is wrong on its own (a typo'd key, ``ratio: 1.5``) is an error in params.yaml: one line, before
# any work. A combination the family refuses (an asymmetric NPU point, gptq with lora_correction) is not an
# error: the point is left out with the family's reason — "only legal points" is the family's rule, not a list
# kept here.


@dataclass(frozen=True)
class Point:
    """One build of a target: its ``build:`` with the search's values for the keys of the space."""

    target: str
    overrides: tuple[tuple[str, Any], ...]  # (dotted build key, value), in the space's key order
    recipe: str | None = None  # the recipe's name, for a named point (not part of its key: same build, same point)

    @property
    def key(self) -> str:
        """Stable across runs and machines: the experiment's name carries it, so a restarted search finds it."""
        blob = json.dumps([self.target, [list(kv) for kv in self.overrides]], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    @property
    def name(self) -> str:
        return f"search-{self.target}-{self.key}"

    def label(self) -> str:
        settings = ", ".join(f"{k}={_yaml_value(v)}" for k, v in self.overrides)
        return f"{self.recipe} ({settings})" if self.recipe else settings

    def set_args(self) -> list[str]:
        """``dvc exp run`` arguments that set this point in params.yaml (``-S ++key=value``, YAML values): ``++``
        adds a setting the file leaves to its default (seen: plain ``-S`` refused ``group_size_fallback``, which
        the NPU target's build: does not list, with "Key 'group_size_fallback' is not in struct")."""
        out: list[str] = []
        for k, v in self.overrides:
            out += ["-S", f"++targets.{self.target}.build.{k}={_yaml_value(v)}"]
        return out

    def build(self, base: dict[str, Any]) -> dict[str, Any]:
        return with_overrides(base, self.overrides)


@dataclass(frozen=True)
class Expansion:
    points: list[Point]
    excluded: list[tuple[Point, str]]  # (point, the family's reason)


class SpaceError(ValueError):
    """The space itself is wrong: one line per problem, each naming the key and the fix."""

    def __init__(self, lines: list[str]):
        super().__init__("; ".join(lines))
        self.lines = lines


def _yaml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    return json.dumps(v) if isinstance(v, dict | list) else str(v)


def with_overrides(base: dict[str, Any], overrides: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """``base`` (a ``build:`` mapping) with dotted keys replaced; nested mappings are copied, not shared."""
    out = json.loads(json.dumps(base, default=str))
    for key, value in overrides:
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def _known(settings: type[BaseModel], key: str) -> str | None:
    """None when ``key`` (dotted) is a field of ``settings``; else the problem, naming what is allowed."""
    model: Any = settings
    parts = key.split(".")
    for i, p in enumerate(parts):
        fields = model.model_fields
        if p not in fields:
            where = ".".join(parts[:i]) or "build"
            return f"unknown setting (allowed under {where}: {', '.join(sorted(fields))})"
        ann = fields[p].annotation
        nested = isinstance(ann, type) and issubclass(ann, BaseModel)
        if i < len(parts) - 1 and not nested:
            return f"{'.'.join(parts[: i + 1])} has no nested settings"
        if i == len(parts) - 1 and nested:
            return "a group of settings: search one of its keys (e.g. " + f"{key}.{next(iter(ann.model_fields))})"
        model = ann
    return None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return err["msg"].removeprefix("Value error, ")


def expand(name: str, family: str, base: dict[str, Any], search: Search, dims: ModelDims | None) -> Expansion:
    """Every point of ``search`` for target ``name``, or ``SpaceError`` when the space itself is wrong."""
    fam = family_module(family)
    settings_model: type[BaseModel] = fam.Settings  # type: ignore[attr-defined]
    where = f"targets.{name}.search.space"
    lines: list[str] = []
    for recipe, settings in search.recipes.items():
        at = f"targets.{name}.search.recipes.{recipe}"
        if not settings:
            lines.append(f"{at}: no settings (a recipe sets at least one build setting)")
        unknown = [f"{at}.{key}: {problem}" for key in settings if (problem := _known(settings_model, key))]
        lines += unknown
        if settings and not unknown:
            try:
                settings_model.model_validate(with_overrides(base, tuple(settings.items())))
            except ValidationError as exc:
                lines.append(f"{at}: {_first_error(exc)}")
    for key, values in search.space.items():
        problem = _known(settings_model, key)
        if problem:
            lines.append(f"{where}.{key}: {problem}")
            continue
        if not values:
            lines.append(f"{where}.{key}: no values (an empty list makes the product empty; list at least one)")
            continue
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) != len(values):
            lines.append(f"{where}.{key}: a value is listed twice (each point would be built twice)")
        for v in values:
            try:
                settings_model.model_validate(with_overrides(base, ((key, v),)))
            except ValidationError as exc:
                lines.append(f"{where}.{key} = {_yaml_value(v)}: {_first_error(exc)}")
    if lines:
        raise SpaceError(lines)
    size = 1
    for values in search.space.values():
        size *= len(values)
    size = (size if search.space else 0) + len(search.recipes)
    if size > search.max_points:
        raise SpaceError(
            [f"{where}: {size} points, more than max_points = {search.max_points}; drop values or raise max_points"]
        )

    keys = list(search.space)
    candidates = [
        Point(name, tuple(zip(keys, combo, strict=True)))
        for combo in (itertools.product(*(search.space[k] for k in keys)) if keys else ())
    ]
    candidates += [Point(name, tuple(settings.items()), recipe) for recipe, settings in search.recipes.items()]
    # A recipe that is also a point of the product is built once, under the recipe's name.
    by_build = {json.dumps(p.build(base), sort_keys=True, default=str): p for p in candidates}
    points: list[Point] = []
    excluded: list[tuple[Point, str]] = []
    for point in by_build.values():
        try:
            settings = settings_model.model_validate(point.build(base))
        except ValidationError as exc:
            excluded.append((point, _first_error(exc)))
            continue
        problems = fam.preflight(settings, dims)
        if problems:
            excluded.append((point, problems[0]))
            continue
        points.append(point)
    if not points:
        reasons = sorted({r for _, r in excluded})
        raise SpaceError([f"{where}: every point is refused by the {family} family ({'; '.join(reasons)})"])
    return Expansion(points, excluded)
