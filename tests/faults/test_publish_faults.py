"""Publish under faults: killed mid-upload to the Hub, killed after its commit landed, killed mid `dvc push`; each
run again completes, and nothing is published twice (no second Hub commit, no second signature, nothing pushed
again). Signed, as a team publishes: a new signature is new bytes, so a re-run that signed again would publish
the same package twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.support.hub_server import FakeHub, Fault
from tests.test_dvc_source import VENV_BIN, dvc
from tests.test_publish import AIPC, aipc
from tests.test_signing import remote_files

PREFIX = "org/phi3"


def hub_env(hub: FakeHub, tmp_path: Path, signed: dict) -> dict[str, str]:
    return {"HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_write", "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp_path / "hf"),
            "HF_HUB_CACHE": str(tmp_path / "hf-cache"), "AIPC_SIGNING_KEY": str(signed["private"])}  # fmt: skip


def start(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    full = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", **env)
    return subprocess.Popen([AIPC, *args], cwd=cwd, env=full, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def kill_when(proc: subprocess.Popen, ready, what: str) -> None:
    """SIGKILL ``proc``'s process group as soon as ``ready()``; the publish must still be running then."""
    deadline = time.monotonic() + 180
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            out, err = proc.communicate()
            raise AssertionError(f"publish ended before {what}: {out[-1500:]} {err[-1500:]}")
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def killed_while_the_hub_holds_it(hub: FakeHub, fault: Fault, args: list[str], proj: Path, env: dict) -> None:
    """Run ``args`` until the Hub holds one of its requests (``fault``), SIGKILL it there, then let the Hub go on."""
    hub.faults.append(fault)
    kill_when(start(args, proj, env), hub.hanging.is_set, f"the Hub held its {fault.method} {fault.path_glob}")
    hub.release.set()


def package_files(proj: Path, target: str) -> dict[str, bytes]:
    pkg = proj / "artifacts/packages" / target
    return {p.relative_to(pkg).as_posix(): p.read_bytes() for p in pkg.rglob("*") if p.is_file()}


def head_files(hub: FakeHub, repo_id: str) -> dict[str, bytes]:
    repo = hub.repos[repo_id]
    return {k: v for k, v in repo.commits[repo.refs["main"]].items() if k != ".gitattributes"}


def test_killed_mid_upload_then_run_again_publishes_once(signed, tmp_path):
    proj, target = signed["proj"], "ov-int4"
    repo_id = f"{PREFIX}-{target}"
    args = ["publish", "--target", target, "--hf", "--hf-repo-prefix", PREFIX]
    with FakeHub(write_tokens={"hf_write"}) as hub:
        env = hub_env(hub, tmp_path, signed)
        killed_while_the_hub_holds_it(hub, Fault("hang", path_glob="/lfs-upload/*", method="PUT"), args, proj, env)
        assert len(hub.repos[repo_id].commits) == 1  # the repo's creation only: nothing of the package is there
        signature = (proj / f"signatures/{target}.sig").read_bytes()  # signed and pushed to DVC before the upload
        pushed = remote_files(proj)

        t0 = time.monotonic()
        again = aipc(args, proj, env)
        assert again.returncode == 0, again.stdout + again.stderr
        print(f"\n[fault] publish killed mid-upload: rerun in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        assert len(hub.repos[repo_id].commits) == 2
        assert head_files(hub, repo_id) == {**package_files(proj, target), "model.sig": signature}
        assert remote_files(proj) == pushed  # the DVC remote had everything: nothing pushed twice

        third = aipc(args, proj, env)
        assert third.returncode == 0 and "(already there)" in third.stdout, third.stdout + third.stderr
        assert len(hub.repos[repo_id].commits) == 2 and remote_files(proj) == pushed
        assert (proj / f"signatures/{target}.sig").read_bytes() == signature

        out = tmp_path / "pulled"
        pull = ["pull", target, "--from", "hf", "--hf-repo", repo_id, "--public-key", str(signed["public"])]
        proc = aipc([*pull, "--out", str(out)], tmp_path, env)
        assert proc.returncode == 0 and "signature verified" in proc.stdout, proc.stdout + proc.stderr


def test_killed_after_its_commit_landed_is_not_published_again(signed, tmp_path):
    """Hub only (``--no-dvc``): no signature is kept here, so the re-run finds the one at the Hub's head."""
    proj, target = signed["proj"], "ov-npu-int4"
    repo_id = f"{PREFIX}-{target}"
    args = ["publish", "--target", target, "--no-dvc", "--hf", "--hf-repo-prefix", PREFIX]
    with FakeHub(write_tokens={"hf_write"}) as hub:
        env = hub_env(hub, tmp_path, signed)
        commit = Fault("hang-after", path_glob="/api/models/*/commit/*", method="POST")
        killed_while_the_hub_holds_it(hub, commit, args, proj, env)
        assert len(hub.repos[repo_id].commits) == 2  # the package's commit landed; the publish never heard back
        landed = head_files(hub, repo_id)
        assert {k: v for k, v in landed.items() if k != "model.sig"} == package_files(proj, target)

        again = aipc(args, proj, env)
        assert again.returncode == 0 and "(already there)" in again.stdout, again.stdout + again.stderr
        assert len(hub.repos[repo_id].commits) == 2 and head_files(hub, repo_id) == landed


# A remote that takes its time: DVC's local remote writes each file (put_file, or a reflink where the disk has
# them) and then this waits, one file at a time. Without it the whole push of a small package landed between
# two looks at the remote and the kill came after it (seen: "Cache and remote are in sync" in a full suite).
SLOW_REMOTE = """
import threading, time
from dvc_objects.fs import generic, local

_one_at_a_time = threading.Lock()


def _slowly(write):
    def wrapper(*args, **kwargs):
        with _one_at_a_time:
            done = write(*args, **kwargs)
            time.sleep(0.5)
            return done
    return wrapper


local.FsspecLocalFileSystem.put_file = _slowly(local.FsspecLocalFileSystem.put_file)
generic._link = _slowly(generic._link)
"""


def test_killed_mid_dvc_push_then_run_again_pushes_the_rest(signed, tmp_path):
    proj, target = signed["proj"], "ort-cpu-int4"
    args = ["publish", "--target", target]
    env = {"AIPC_SIGNING_KEY": str(signed["private"])}
    slow = tmp_path / "slow-remote"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(SLOW_REMOTE)
    before = remote_files(proj)
    grew = threading.Event()

    def remote_grew() -> bool:
        if len(remote_files(proj) - before) >= 2:
            grew.set()
        return grew.is_set()

    proc = start(args, proj, {**env, "PYTHONPATH": str(slow)})
    kill_when(proc, remote_grew, "its push")
    partial = remote_files(proj) - before
    status = dvc(["status", "--cloud", f"artifacts/packages/{target}"], proj)
    assert "in sync" not in status.stdout, status.stdout  # killed before the remote had it all

    again = aipc(args, proj, env)
    assert again.returncode == 0, again.stdout + again.stderr
    status = dvc(["status", "--cloud", f"artifacts/packages/{target}", f"signatures/{target}.sig"], proj)
    assert "in sync" in status.stdout, status.stdout
    after = remote_files(proj)
    third = aipc(args, proj, env)
    assert third.returncode == 0 and remote_files(proj) == after  # nothing pushed twice
    print(f"\n[fault] dvc push killed after {len(partial)} remote entries; rerun completed", file=sys.stderr)
