"""The params keys DVC itself reads, checked to be present in params.yaml.

A stage's ``params:`` in dvc.yaml are read by DVC, not by our schema, and DVC reads them only after it has
removed the stage's outputs: a key the schema fills with a default (``targets.<t>.device``) but the user
deleted made ``dvc repro`` fail with "Parameters ... are missing" once the stage's outputs were gone. The
params check (stage ``check-params``) runs first and reports such a key in one line instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DVC_YAML = Path("dvc.yaml")
DEFAULT_FILE = "params.yaml"


def declared_keys(dvc_yaml: dict[str, Any], raw: dict[str, Any]) -> dict[str, list[str]]:
    """stage name → the dotted params.yaml keys its ``params:`` name, ``${model}``/``${key}`` substituted."""
    out: dict[str, list[str]] = {}
    for name, stage in (dvc_yaml.get("stages") or {}).items():
        if "foreach" in stage:
            for key in raw.get("targets") or {}:
                out[f"{name}@{key}"] = _keys(stage["do"], {"key": key, "model": raw.get("model")})
        else:
            out[name] = _keys(stage, {"model": raw.get("model")})
    return out


def _keys(stage: dict[str, Any], subs: dict[str, Any]) -> list[str]:
    keys = []
    for entry in stage.get("params") or []:
        if isinstance(entry, str):
            keys.append(entry)
        elif isinstance(entry, dict):  # {file: [keys]}: a whole file (no keys) is always there
            for file, listed in entry.items():
                if file == DEFAULT_FILE:
                    keys += list(listed or [])
    for var, value in subs.items():
        keys = [k.replace("${" + var + "}", str(value)) for k in keys]
    return keys


def missing(raw: dict[str, Any], dvc_yaml_path: Path = DVC_YAML, source: str = DEFAULT_FILE) -> list[str]:
    """One line per key a stage's ``params:`` names that params.yaml does not hold."""
    if not dvc_yaml_path.is_file():
        return []
    dvc_yaml = yaml.safe_load(dvc_yaml_path.read_text(encoding="utf-8")) or {}
    lines = []
    for stage, keys in declared_keys(dvc_yaml, raw).items():
        for key in keys:
            if not _present(raw, key):
                lines.append(
                    f"{source}: {key}: missing, and DVC reads it for stage {stage} (dvc.yaml) — write it out, "
                    "even at its default (`aipc params` prints the resolved value)"
                )
    return lines


def _present(raw: Any, dotted: str) -> bool:
    node = raw
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True
