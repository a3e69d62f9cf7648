"""The Hub source against a real HTTP server on 127.0.0.1 (tests/support/hub_server.py) with faults."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest

from pipeline import layout
from pipeline.errors import SourceError
from pipeline.fsutil import atomic_dir
from pipeline.params import validate_params
from pipeline.sources import fetch_source
from tests.support.hub_server import Fault

REPO = "test-org/phi3-tiny"


def repo_files(model_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in model_dir.iterdir() if p.is_file() and p.name != "source.json"}


def hub_params(params_raw, sha: str, repo: str = REPO):
    params_raw["models"]["fake"] = {"kind": "hub", "repo": repo, "revision": sha, "license": "mit"}
    params_raw["model"] = "fake"
    return validate_params(params_raw)


def run_source(params, root: Path) -> Path:
    """What the `source` stage does: fetch into a temporary folder, move into place on success."""
    out = layout.source_dir(root)
    with atomic_dir(out) as tmp:
        fetch_source(params, tmp)
    return out


def test_happy_path_pins_the_requested_revision(hub_env, embedded_dir, params_raw, tmp_path):
    files = repo_files(embedded_dir)
    old = hub_env.add_commit(REPO, files)
    changed = dict(
        files,
        **{"config.json": files["config.json"].replace(b'"num_attention_heads": 4', b'"num_attention_heads": 4 ')},
    )
    new = hub_env.add_commit(REPO, changed)
    assert old != new

    out = run_source(hub_params(params_raw, old), tmp_path / "artifacts")
    record = json.loads((out / "source.json").read_text())
    assert record["requested_revision"] == old and record["resolved_revision"] == old
    assert (out / "config.json").read_bytes() == files["config.json"]  # the pinned commit, not main
    for row in record["files"]:
        data = (out / row["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"] and len(data) == row["size"]
    assert {r["path"] for r in record["files"]} == set(files)
    # only the revision-pinned endpoints were used
    assert all(old in r["path"] or "/api/" in r["path"] for r in hub_env.requests)


def _ranges(hub_env, name="model.safetensors"):
    return [r["range"] for r in hub_env.requests if r["path"].endswith(name) and r["method"] == "GET"]


def test_connection_dropped_mid_file_resumes_with_range(hub_env, embedded_dir, params_raw, tmp_path, monkeypatch):
    from pipeline.sources import hub

    monkeypatch.setattr(hub, "BACKOFF_S", 0.01)
    files = repo_files(embedded_dir)
    sha = hub_env.add_commit(REPO, files)
    cut = 1_000_000
    hub_env.faults.append(Fault("drop", path_glob="*/model.safetensors", method="GET", after=cut, times=1))
    out = run_source(hub_params(params_raw, sha), tmp_path / "artifacts")
    assert (out / "model.safetensors").read_bytes() == files["model.safetensors"]
    assert _ranges(hub_env) == [None, f"bytes={cut}-"]  # resumed at the exact byte


def test_a_killed_download_resumes_in_the_next_run(hub_env, embedded_dir, params_raw, tmp_path, monkeypatch):
    """Every attempt of the first run is cut; the second run continues from the kept .part file."""
    from pipeline.sources import hub

    monkeypatch.setattr(hub, "BACKOFF_S", 0.01)
    files = repo_files(embedded_dir)
    sha = hub_env.add_commit(REPO, files)
    params = hub_params(params_raw, sha)
    hub_env.faults.append(Fault("drop", path_glob="*/model.safetensors", method="GET", after=2_000_000, times=1))
    hub_env.faults.append(Fault("drop", path_glob="*/model.safetensors", method="GET", after=0, times=None))
    with pytest.raises(SourceError, match="kept failing"):
        run_source(params, tmp_path / "artifacts")
    assert not layout.source_dir(tmp_path / "artifacts").exists()
    part = hub.download_dir(REPO, sha) / "model.safetensors.part"
    assert part.stat().st_size == 2_000_000

    hub_env.faults.clear()
    hub_env.requests.clear()
    out = run_source(params, tmp_path / "artifacts")
    assert (out / "model.safetensors").read_bytes() == files["model.safetensors"]
    assert _ranges(hub_env) == ["bytes=2000000-"]
    assert not part.exists()


def test_second_run_reuses_verified_downloads(hub_env, embedded_dir, params_raw, tmp_path):
    sha = hub_env.add_commit(REPO, repo_files(embedded_dir))
    params = hub_params(params_raw, sha)
    run_source(params, tmp_path / "a")
    hub_env.requests.clear()
    run_source(params, tmp_path / "b")
    assert [r for r in hub_env.requests if "/resolve/" in r["path"]] == []


def test_5xx_answers_are_retried(hub_env, embedded_dir, params_raw, tmp_path, monkeypatch):
    from pipeline.sources import hub

    monkeypatch.setattr(hub, "BACKOFF_S", 0.01)
    sha = hub_env.add_commit(REPO, repo_files(embedded_dir))
    hub_env.faults.append(Fault("status", path_glob="/api/models/*", code=503, times=2))
    hub_env.faults.append(Fault("status", path_glob="*/tokenizer.json", code=502, times=1))
    out = run_source(hub_params(params_raw, sha), tmp_path / "artifacts")
    assert (out / "tokenizer.json").is_file()
    statuses = [f.hits for f in hub_env.faults]
    assert statuses == [2, 1]


def test_5xx_forever_gives_a_clear_error(hub_env, embedded_dir, params_raw, tmp_path, monkeypatch):
    from pipeline.sources import hub

    monkeypatch.setattr(hub, "BACKOFF_S", 0.01)
    sha = hub_env.add_commit(REPO, repo_files(embedded_dir))
    hub_env.faults.append(Fault("status", path_glob="/api/models/*", code=500, times=None))
    with pytest.raises(SourceError, match="answered HTTP 500 5 times"):
        run_source(hub_params(params_raw, sha), tmp_path / "artifacts")
    assert not layout.source_dir(tmp_path / "artifacts").exists()


def test_corrupted_file_is_refused_and_nothing_is_left(hub_env, embedded_dir, params_raw, tmp_path):
    sha = hub_env.add_commit(REPO, repo_files(embedded_dir))
    hub_env.faults.append(Fault("corrupt", path_glob="*/model.safetensors", method="GET", times=None))
    root = tmp_path / "artifacts"
    with pytest.raises(SourceError) as info:
        run_source(hub_params(params_raw, sha), root)
    assert "model.safetensors failed verification: sha256" in str(info.value)
    assert "the bad copy was deleted" in str(info.value)
    assert not layout.source_dir(root).exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-")]
    # the corrupt copy is not kept in the download cache either
    from pipeline.sources import hub

    assert not (hub.download_dir(REPO, sha) / "model.safetensors").exists()


def test_gated_repo_without_token_says_what_to_do(hub_env, embedded_dir, params_raw, tmp_path):
    sha = hub_env.add_commit(REPO, repo_files(embedded_dir), gated=True, allowed_tokens={"hf_secret_ok"})
    with pytest.raises(SourceError) as info:
        run_source(hub_params(params_raw, sha), tmp_path / "artifacts")
    msg = str(info.value)
    assert "gated repository and no Hugging Face token was found" in msg
    assert "HF_TOKEN" in msg and "model: embedded" in msg


def test_gated_repo_with_token_works_and_token_is_never_written(
    hub_env, embedded_dir, params_raw, tmp_path, monkeypatch, caplog
):
    secret = "hf_secret_ok"
    sha = hub_env.add_commit(REPO, repo_files(embedded_dir), gated=True, allowed_tokens={secret})
    monkeypatch.setenv("HF_TOKEN", secret)
    caplog.set_level(logging.DEBUG)
    out = run_source(hub_params(params_raw, sha), tmp_path / "artifacts")
    assert all(r["auth"] for r in hub_env.requests)
    assert secret not in caplog.text
    for f in out.rglob("*"):
        if f.is_file():
            assert secret.encode() not in f.read_bytes()


def test_wrong_token_is_reported(hub_env, embedded_dir, params_raw, tmp_path, monkeypatch):
    sha = hub_env.add_commit(REPO, repo_files(embedded_dir), gated=True, allowed_tokens={"hf_secret_ok"})
    monkeypatch.setenv("HF_TOKEN", "hf_other")
    with pytest.raises(SourceError, match="the token in use has no access"):
        run_source(hub_params(params_raw, sha), tmp_path / "artifacts")


def test_pickle_only_repo_is_refused(hub_env, embedded_dir, params_raw, tmp_path):
    files = {k: v for k, v in repo_files(embedded_dir).items() if not k.endswith(".safetensors")}
    files["pytorch_model.bin"] = b"\x80\x04not really a pickle"
    sha = hub_env.add_commit(REPO, files)
    with pytest.raises(SourceError) as info:
        run_source(hub_params(params_raw, sha), tmp_path / "artifacts")
    assert "only pickle weights (pytorch_model.bin)" in str(info.value)
    assert not any(
        r["path"].endswith(".bin") for r in hub_env.requests if r["method"] == "GET" and "/resolve/" in r["path"]
    )


def test_pickles_and_code_beside_safetensors_are_skipped(hub_env, embedded_dir, params_raw, tmp_path):
    files = repo_files(embedded_dir)
    files["pytorch_model.bin"] = b"pickle"
    files["modeling_phi3.py"] = b"import os"
    sha = hub_env.add_commit(REPO, files)
    out = run_source(hub_params(params_raw, sha), tmp_path / "artifacts")
    assert not (out / "pytorch_model.bin").exists() and not (out / "modeling_phi3.py").exists()
    record = json.loads((out / "source.json").read_text())
    assert {"pytorch_model.bin", "modeling_phi3.py"} <= set(record["skipped"])


def test_unknown_revision_and_repo(hub_env, embedded_dir, params_raw, tmp_path):
    hub_env.add_commit(REPO, repo_files(embedded_dir))
    with pytest.raises(SourceError, match="does not exist in test-org/phi3-tiny"):
        run_source(hub_params(params_raw, "0" * 40), tmp_path / "a")
    with pytest.raises(SourceError, match="was not found"):
        run_source(hub_params(params_raw, "0" * 40, repo="nobody/nothing"), tmp_path / "b")


def test_unreachable_hub_explains_and_uses_a_complete_cache(hub_env, embedded_dir, params_raw, tmp_path, monkeypatch):
    from pipeline.sources import hub

    monkeypatch.setattr(hub, "BACKOFF_S", 0.01)
    sha = hub_env.add_commit(REPO, repo_files(embedded_dir))
    params = hub_params(params_raw, sha)
    first = run_source(params, tmp_path / "first")  # fills the download cache

    hub_env.stop()  # the Hub goes away
    out = run_source(params, tmp_path / "second")
    assert json.loads((out / "source.json").read_text())["offline_cache"] == "download cache"
    assert (out / "model.safetensors").read_bytes() == (first / "model.safetensors").read_bytes()

    monkeypatch.setenv("AIPC_DOWNLOADS", str(tmp_path / "empty-downloads"))
    with pytest.raises(SourceError) as info:
        run_source(params, tmp_path / "third")
    msg = str(info.value)
    assert "is unreachable" in msg and "hf download" in msg and "model: embedded" in msg
