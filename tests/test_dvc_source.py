"""Real DVC on a copy of the project: `dvc repro source` builds the embedded model; a second repro is a no-op."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

VENV_BIN = Path(sys.executable).parent


def project_copy(dest: Path) -> Path:
    """The project's files as a fresh clone would have them (no artifacts, no DVC cache)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for rel in listed:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def dvc(args: list[str], cwd: Path, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    env = dict(env or os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env['PATH']}"
    return subprocess.run([str(VENV_BIN / "dvc"), *args], cwd=cwd, env=env, capture_output=True, text=True, **kw)


@pytest.fixture
def project(tmp_path, embedded_dir) -> Path:  # embedded_dir: the build cache already holds the model
    return project_copy(tmp_path / "proj")


def test_repro_source_then_noop(project):
    proc = dvc(["repro", "source"], project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((project / "artifacts/source/source.json").read_text())
    assert record["kind"] == "embedded" and (project / "artifacts/source/model.safetensors").is_file()
    assert (project / "dvc.lock").is_file()

    t0 = time.monotonic()
    proc = dvc(["repro", "source"], project)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0
    assert "didn't change, skipping" in proc.stdout
    assert elapsed < 3.0, elapsed


def test_bad_params_fail_repro_before_any_work(project):
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("ratio: 0.6", "ratio: 1.7"))
    proc = dvc(["repro", "source"], project)
    assert proc.returncode != 0
    assert "targets.ov-int4.build.ratio = 1.7" in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr
    assert not (project / "artifacts/source").exists()


def test_one_copy_of_each_artifact_and_the_users_folder_stays_writable(project, embedded_dir, tmp_path):
    """DVC 3.67 on ext4: with cache.type hardlink the cache and the workspace share each output's bytes and
    the files are read-only (an edit cannot corrupt the cache); the source is hard-linked from the user's
    own folder and kept out of DVC's cache, so that folder is neither copied nor made read-only."""
    import stat

    mine = tmp_path / "my-model"
    shutil.copytree(embedded_dir, mine)
    params = project / "params.yaml"
    text = params.read_text().replace("model: embedded\n", "model: mine\n", 1)
    params.write_text(text.replace("models:\n", f"models:\n  mine:\n    kind: local\n    path: {mine}\n", 1))
    proc = dvc(["repro", "build@ov-fp16"], project)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

    weights = project / "artifacts/source/model.safetensors"
    assert weights.stat().st_ino == (mine / "model.safetensors").stat().st_ino  # no second copy of the source
    assert (mine / "model.safetensors").stat().st_mode & stat.S_IWUSR  # the user's file is still writable
    size = weights.stat().st_size
    cached = [p for p in (project / ".dvc/cache").rglob("*") if p.is_file() and p.stat().st_size == size]
    assert not [p for p in cached if p.read_bytes() == weights.read_bytes()]  # nor is it in DVC's cache
    ir = project / "artifacts/targets/ov-fp16/openvino_model.bin"
    assert ir.stat().st_nlink == 2 and not ir.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
