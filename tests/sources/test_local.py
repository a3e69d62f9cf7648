"""A local HF folder as the source: only safe files are taken; pickles-only folders are refused."""

from __future__ import annotations

import json
import shutil

import pytest

from pipeline.errors import SourceError
from pipeline.params import validate_params
from pipeline.sources import fetch_source


def local_params(params_raw, path):
    params_raw["models"]["mine"] = {"kind": "local", "path": str(path)}
    params_raw["model"] = "mine"
    return validate_params(params_raw)


def test_local_folder_is_copied_without_pickles_or_code(embedded_dir, params_raw, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(embedded_dir, src)
    (src / "pytorch_model.bin").write_bytes(b"pickle")
    (src / "modeling_phi3.py").write_text("import os")
    out = tmp_path / "out"
    out.mkdir()
    record = fetch_source(local_params(params_raw, src), out).dump()
    assert not (out / "pytorch_model.bin").exists() and not (out / "modeling_phi3.py").exists()
    assert (out / "model.safetensors").read_bytes() == (src / "model.safetensors").read_bytes()
    assert record["kind"] == "local"
    assert json.loads((out / "source.json").read_text())["files"]


def test_local_pickle_only_folder_is_refused(embedded_dir, params_raw, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(embedded_dir, src)
    (src / "model.safetensors").unlink()
    (src / "pytorch_model.bin").write_bytes(b"pickle")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SourceError, match="only pickle weights"):
        fetch_source(local_params(params_raw, src), out)


def test_missing_local_folder_is_clear(params_raw, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SourceError, match="is not a folder"):
        fetch_source(local_params(params_raw, tmp_path / "nope"), out)
