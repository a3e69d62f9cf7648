"""Pull under faults: killed mid-way and run again, and a second pull into a folder holding a previous version."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.faults.conftest import error_lines
from tests.test_dvc_source import VENV_BIN
from tests.test_publish import AIPC, aipc, same_tree
from tests.test_publish import published_project as published_project


@pytest.fixture(scope="module")
def remote(published_project):
    proc = aipc(["publish", "--target", "ov-int4", "--target", "ov-fp16"], published_project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return published_project


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_second_pull_into_a_previous_version(remote, tmp_path):
    out = tmp_path / "model"
    assert aipc(["pull", "ov-int4", "--repo", str(remote), "--out", str(out)], tmp_path).returncode == 0
    old = tree(out)
    proc = aipc(["pull", "ov-fp16", "--repo", str(remote), "--out", str(out)], tmp_path)
    lines = error_lines(proc.stderr)
    assert proc.returncode != 0 and len(lines) == 1 and "pass --replace" in lines[0], proc.stderr
    assert tree(out) == old
    # a replacement that fails verification leaves the previous version as it was
    proc = aipc(["pull", "ov-fp16", "--repo", str(remote), "--out", str(out), "--replace", "--fingerprint", "0" * 16],
                tmp_path)  # fmt: skip
    assert proc.returncode != 0 and "is not the expected" in " ".join(proc.stderr.split())
    assert tree(out) == old
    proc = aipc(["pull", "ov-fp16", "--repo", str(remote), "--out", str(out), "--replace"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert same_tree(out, remote / "artifacts/packages/ov-fp16")  # the new version whole, nothing of the old
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_a_pull_killed_mid_way_leaves_nothing_and_runs_again(remote, tmp_path):
    out = tmp_path / "model"
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.Popen([AIPC, "pull", "ov-int4", "--repo", str(remote), "--out", str(out)], cwd=tmp_path,
                            env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".tmp-pull-") for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()  # nothing half-pulled where it would be used
    again = aipc(["pull", "ov-int4", "--repo", str(remote), "--out", str(out)], tmp_path)
    assert again.returncode == 0, again.stderr
    assert same_tree(out, remote / "artifacts/packages/ov-int4")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]  # the killed run's folder removed
