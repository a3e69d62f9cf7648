"""A full disk in each kind of stage: one clear line, nothing half-written, and once space is freed the next run
completes with every artifact byte-identical to before.

The project runs from a small tmpfs the test mounts (root only: skipped, saying why, where mounting is not
allowed) and a filler file takes the free space, leaving a few pages: a stage either sees it in its pre-check
(`resource_plan`: "not enough disk for …") or runs out while writing ("disk full during …").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import error_lines, same_artifacts, snapshot
from tests.faults.test_kill import STAGES
from tests.test_dvc_source import dvc
from tests.test_publish import aipc, git, same_tree

SIZE = "1g"


@pytest.fixture(scope="module")
def small_disk(built, tmp_path_factory) -> Iterator[Path]:
    mnt = tmp_path_factory.mktemp("tmpfs")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.decode().strip()}): run as root to test a full disk")
    try:
        proj = mnt / "proj"
        shutil.copytree(built, proj, symlinks=True)
        yield proj
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(project: Path, leave: int) -> Path:
    """A file taking every free byte of the project's filesystem but ``leave``."""
    filler = project.parent / "filler"
    st = os.statvfs(project)
    size = max(st.f_bavail * st.f_frsize - leave, 0)
    chunk = b"\0" * (1 << 20)
    with filler.open("wb", buffering=0) as f:
        while size > 0:
            try:
                size -= f.write(chunk[: min(size, len(chunk))])
            except OSError:
                break
        while leave == 0:  # what statvfs did not count (metadata, rounding): until the disk refuses a page
            try:
                f.write(b"\0" * 4096)
            except OSError:
                break
    return filler


def the_line(stderr: str) -> list[str]:
    """Ours ("error: …"), or DVC's own when it failed before the stage's command ran."""
    return error_lines(stderr) or [line for line in stderr.splitlines() if line.startswith("ERROR:")]


# Every stage kind on a disk with 0 bytes free; with 64 KiB free (the stage's pre-check or its own writes meet
# the limit first), the stage that writes the most and the one that writes the least.
CASES = [(s, 0) for s in STAGES] + [("build@ov-int4", 64 * 1024), ("report", 64 * 1024)]


@pytest.mark.parametrize(("stage", "leave"), CASES, ids=[f"{s}-{n // 1024}KiB-free" for s, n in CASES])
def test_a_full_disk_in_a_stage_loses_nothing(stage, leave, small_disk):
    proj = small_disk
    before = snapshot(proj)
    filler = fill(proj, leave)
    try:
        proc = dvc(["repro", "-f", "-s", stage], proj)
        now = snapshot(proj)
    finally:
        filler.unlink()
    changed = {p for p in set(before) | set(now) if before.get(p) != now.get(p)}
    assert "Traceback" not in proc.stderr + proc.stdout
    if proc.returncode == 0:  # the stage fitted in what was left: it wrote the same bytes again
        assert same_artifacts(before, now, stage)
        print(f"\n[fault] {stage} {leave} B free: fitted", file=sys.stderr)
    else:
        partial = sorted(p for p in changed if p in now)
        if partial:  # a file DVC itself was copying when the disk filled: it must know, so nothing after trusts it
            status = dvc(["status", "--json"], proj).stdout
            assert all(p in status for p in partial), (partial, status, proc.stderr[-1500:])
            print(f"\n[fault] {stage} {leave} B free: {partial} half-written by DVC, which flags it", file=sys.stderr)
        lines = the_line(proc.stderr)
        assert len(lines) == 1, proc.stderr[-3000:]
        print(f"\n[fault] {stage} {leave} B free: {lines[0]!r}; {len(changed)} files removed by DVC", file=sys.stderr)
        if "RWLock" in lines[0]:
            # DVC rewrote its lock table in place on a full disk; doctor names it and the fix, which the user runs
            doctor = aipc(["doctor"], proj)
            assert "dvc lock" in doctor.stdout and "rm .dvc/tmp/rwlock" in " ".join(doctor.stdout.split())
            (proj / ".dvc/tmp/rwlock").unlink()
        else:
            assert "disk" in lines[0] or "No space left on device" in lines[0], lines[0]

    t0 = time.monotonic()
    again = dvc(["repro"], proj)
    if again.returncode != 0 and "RWLock" in again.stderr:
        # DVC failed with "No space left on device" while it rewrote its lock table: the next command finds it
        # truncated; doctor names it and the fix, which the user runs
        doctor = aipc(["doctor"], proj)
        assert "rm .dvc/tmp/rwlock" in " ".join(doctor.stdout.split()), doctor.stdout[-2000:]
        (proj / ".dvc/tmp/rwlock").unlink()
        print(f"[fault] {stage} {leave} B free: DVC's rwlock left truncated; doctor named the fix", file=sys.stderr)
        again = dvc(["repro"], proj)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert same_artifacts(before, snapshot(proj), stage)
    assert "up to date" in dvc(["status"], proj).stdout
    print(f"[fault] {stage} {leave} B free: recovered in {time.monotonic() - t0:.1f} s", file=sys.stderr)


def test_a_full_disk_in_publish_and_pull(small_disk):
    """A new DVC remote (a local folder, as in params) and the pull's destination are on the full disk."""
    proj = small_disk
    remote = proj.parent / "remote"
    assert dvc(["remote", "add", "-f", "full", str(remote)], proj).returncode == 0
    git(["add", "-A"], proj)
    git(["commit", "-qm", "pipeline run", "--allow-empty"], proj)  # pull clones the repository at its head
    before = snapshot(proj)
    publish = ["publish", "--target", "ov-int4", "--remote", "full"]
    filler = fill(proj, 0)
    try:
        proc = aipc(publish, proj)
    finally:
        filler.unlink()
    lines = error_lines(proc.stderr)
    assert proc.returncode != 0 and len(lines) == 1 and "disk full during dvc push" in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and snapshot(proj) == before
    print(f"\n[fault] publish, 0 B free: {lines[0]!r}; {len(list(remote.rglob('*')))} remote entries", file=sys.stderr)
    t0 = time.monotonic()
    again = aipc(publish, proj)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "in sync" in dvc(["status", "--cloud", "-r", "full", "artifacts/packages/ov-int4"], proj).stdout
    print(f"[fault] publish, 0 B free: recovered in {time.monotonic() - t0:.1f} s", file=sys.stderr)

    out = proj.parent / "pulled"
    pull = ["pull", "ov-int4", "--repo", str(proj), "--remote", "full", "--out", str(out)]
    filler = fill(proj, 0)
    try:
        proc = aipc(pull, proj.parent)
    finally:
        filler.unlink()
    lines = error_lines(proc.stderr)
    assert proc.returncode != 0 and len(lines) == 1 and "disk full during" in lines[0], proc.stderr
    assert not out.exists() and not [p for p in proj.parent.iterdir() if p.name.startswith(".tmp-")]
    print(f"[fault] pull, 0 B free: {lines[0]!r}; nothing at --out", file=sys.stderr)
    t0 = time.monotonic()
    again = aipc(pull, proj.parent)
    assert again.returncode == 0, again.stdout + again.stderr
    assert same_tree(out, proj / "artifacts/packages/ov-int4")
    print(f"[fault] pull, 0 B free: recovered in {time.monotonic() - t0:.1f} s", file=sys.stderr)
