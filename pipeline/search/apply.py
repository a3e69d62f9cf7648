"""``aipc search TARGET --apply POINT``: the chosen point's settings written into params.yaml, so that a plain
``dvc repro`` builds, validates and packages exactly that point.

The edit is round-trip (comments and layout of params.yaml are kept: it is the project's documentation) and is
validated as a whole before anything is written; ``targets.<name>.origin`` records which search and point the
settings came from, and the package's model card prints it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from pipeline.errors import ParamsError
from pipeline.params import validate_params
from pipeline.search.queue import SearchError
from pipeline.search.run import SEARCH_DIR, SearchResult


def _round_trip() -> Any:
    try:
        from ruamel.yaml import YAML
    except ImportError:  # ruamel.yaml comes with DVC, which a search needs anyway
        raise SearchError(
            "ruamel.yaml is not installed (it comes with DVC)", fix='pip install "aipc-pipeline[dvc]"'
        ) from None
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def find_point(result: SearchResult, point: str) -> Any:
    """A point by its experiment name, its key, or its short id on the report (p1…pN)."""
    for i, p in enumerate(result.points, 1):
        if point in (p.name, p.name.rsplit("-", 1)[-1], f"p{i}"):
            return p
    names = ", ".join(f"p{i}={p.name}" for i, p in enumerate(result.points, 1))
    raise SearchError(
        f"no point {point!r} in the search of {result.target} ({names})", fix="use a name from the report"
    )


def apply(project: Path, target: str, point: str) -> dict[str, Any]:
    """Write the point's settings into ``project/params.yaml``; returns them (dotted key → value)."""
    folder = project / SEARCH_DIR / target
    if not SearchResult.exists(folder):
        raise SearchError(f"no search of {target} in {folder}", fix=f"run `aipc search {target}` first")
    result = SearchResult.read(folder)
    chosen = find_point(result, point)
    if not chosen.passed:
        raise SearchError(
            f"point {chosen.name} ({chosen.label}) failed a gate of {target}",
            fix="apply a point that passes (the report marks them), or change the gates first",
        )
    yaml = _round_trip()
    path = project / "params.yaml"
    doc = yaml.load(path.read_text(encoding="utf-8"))
    node = doc["targets"][target]
    build = node.setdefault("build", {})
    for key, value in chosen.overrides.items():
        parts = key.split(".")
        here = build
        for part in parts[:-1]:
            here = here.setdefault(part, {})
        here[parts[-1]] = value
    node["origin"] = (
        f"aipc search {target}: point {chosen.name} ({chosen.label}), {result.why}; baseline {result.baseline[:10]}"
    )
    buf = io.StringIO()
    yaml.dump(doc, buf)
    text = buf.getvalue()
    import yaml as pyyaml

    try:
        validate_params(pyyaml.safe_load(text), source=str(path))
    except ParamsError as exc:
        raise SearchError(f"the point does not validate in params.yaml: {exc.lines[0]}", fix="search again") from None
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return dict(chosen.overrides)
