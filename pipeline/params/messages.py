"""One readable line per invalid value in params.yaml: the key, the value and what is allowed."""

from __future__ import annotations

import difflib
import re
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from pipeline.targets import FAMILIES


def lines(exc: ValidationError, source: str, root: type[BaseModel]) -> list[str]:
    """One readable line per pydantic error: key, value, what is allowed."""
    out = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        key = ".".join(_without_tags(loc)) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = _fields_at(root, loc[:-1])
            hint = did_you_mean(loc[-1], sorted(allowed)) if allowed else ""
            out.append(f"{source}: {key}: unknown key{hint}")
        elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            field = "family" if loc[:1] == ("targets",) else "kind"
            tag = err.get("ctx", {}).get("tag")
            allowed = ", ".join(FAMILIES if field == "family" else ("embedded", "hub", "local"))
            shown = "missing" if tag is None else f"{tag!r}"
            what = "family" if field == "family" else "model kind"
            out.append(f"{source}: {key}.{field} = {shown}: unknown {what} (allowed: {allowed})")
        elif err["type"] in ("literal_error", "enum") and isinstance(err.get("input"), str):
            allowed = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
            out.append(f"{source}: {key} = {err['input']!r}: not an allowed value{did_you_mean(err['input'], allowed)}")
        elif err["type"] == "missing":
            out.append(f"{source}: {key}: required key is missing")
        elif not loc:  # a cross-field rule: its message already names the key
            out.append(f"{source}: {msg}")
        else:
            value = err.get("input")
            shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
            out.append(f"{source}: {key} = {shown}: {msg}")
    return out


def did_you_mean(value: object, allowed: list[str]) -> str:
    """The tail of a typo's one line: the closest allowed name first, then every allowed one."""
    close = difflib.get_close_matches(str(value), allowed, n=1) if isinstance(value, str) else []
    return (
        f" (did you mean '{close[0]}'? allowed: {', '.join(allowed)})" if close else f" (allowed: {', '.join(allowed)})"
    )


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


def _fields_at(root: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    """The keys the schema accepts at ``loc`` (a pydantic error location, union tags included)."""
    model: Any = root
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
