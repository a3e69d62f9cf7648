"""dvc.yaml's `reference` params against the code: a validation setting the stage does not list must not change
what the reference writes (else DVC would keep a stale reference), and every listed key must exist."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from pipeline import layout
from pipeline.params import validate_params
from pipeline.validate.reference import build_reference
from tests.conftest import ROOT

# a different, valid value for the unlisted string settings (bool, int and float ones are changed generically)
OTHER_STRING = {"INFERENCE_PRECISION_HINT": "bf16", "KV_CACHE_PRECISION": "u8"}


def listed_validation_keys() -> list[str]:
    params = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["reference"]["params"]
    return [p.removeprefix("validation.") for p in params if p.startswith("validation.")]


def leaves(tree: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        out += leaves(value, f"{path}.") if isinstance(value, dict) else [(path, value)]
    return out


def changed(name: str, value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2 + 0.01
    assert name in OTHER_STRING, f"validation.{name} is not in the reference's params: give it a changed value here"
    return OTHER_STRING[name]


def put(tree: dict, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[last] = value


def contents(ref_dir: Path) -> dict[str, bytes]:
    """Every file the reference wrote, byte for byte (no timing is in them: those go to the run log)."""
    return {str(p.relative_to(ref_dir)): p.read_bytes() for p in sorted(ref_dir.rglob("*")) if p.is_file()}


def test_every_listed_key_is_a_validation_setting(default_params):
    settings = default_params.validation.model_dump()
    for key in listed_validation_keys():
        node: Any = settings
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"dvc.yaml reference params: validation.{key} is unknown"
            node = node[part]


def test_unlisted_validation_settings_leave_the_reference_unchanged(artifacts_root, raw_params, tmp_path):
    """Every validation setting not in the stage's params (warm-up, timed runs, OpenVINO hints, similarity, tie
    margin — and any new one) is changed at once; the reference is built again and must equal the session's."""
    listed = listed_validation_keys()
    all_settings = validate_params(copy.deepcopy(raw_params)).validation.model_dump()
    unlisted = [
        (path, value)
        for path, value in leaves(all_settings)
        if not any(path == key or path.startswith(f"{key}.") for key in listed)
    ]
    assert {p for p, _ in unlisted} >= {"warmup_runs", "timed_runs", "similarity", "tie_margin"}, unlisted
    raw = copy.deepcopy(raw_params)
    for path, value in unlisted:
        put(raw["validation"], path, changed(path.rsplit(".", 1)[-1], value))
    params = validate_params(raw)
    out = tmp_path / "reference"
    out.mkdir()
    build_reference(params, layout.source_dir(artifacts_root), out)
    mine, session = contents(out), contents(layout.reference_dir(artifacts_root))
    assert mine.keys() == session.keys()
    assert [k for k in mine if mine[k] != session[k]] == [], "the reference depends on an unlisted setting"
