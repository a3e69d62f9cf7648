"""A stage killed mid-way loses nothing: no half-written output, the others untouched, the next run completes.

Each stage kind is re-run (`dvc repro -f -s`) and killed once its output's temporary folder exists, i.e. while
it works; SIGKILL is the case no handler can tidy (a closed laptop lid, the OOM killer), SIGINT is Ctrl-C. After
the kill the next `dvc repro` must complete and leave every artifact byte-identical to before, and `dvc status`
must find the pipeline up to date. The time that recovery took is printed for the fault table.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.conftest import same_artifacts, snapshot
from tests.test_dvc_source import VENV_BIN, dvc

# stage → the folder its temporary output folder appears in (pipeline.fsutil.atomic_dir)
STAGES = {
    "source": "artifacts",
    "ov-ir": "artifacts",
    "build@ov-int4": "artifacts/targets",
    "reference": "artifacts",
    "validate@ov-int4": "artifacts/validation",
    "package@ov-int4": "artifacts/packages",
    "report": "artifacts",
}


def start(project: Path, args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    return subprocess.Popen(
        [str(VENV_BIN / "dvc"), *args], cwd=project, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def tmp_folders(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".tmp-")] if folder.is_dir() else []


def kill_while_working(project: Path, stage: str, sig: int) -> tuple[str, str]:
    """Run ``stage`` again and kill its whole process group once it is writing its output."""
    parent = project / STAGES[stage]
    before = set(tmp_folders(parent))
    proc = start(project, ["repro", "-f", "-s", stage])
    deadline = time.monotonic() + 300
    while not set(tmp_folders(parent)) - before:
        assert proc.poll() is None, f"{stage} ended before it could be killed:\n{proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, f"{stage} never started writing"
        time.sleep(0.002)
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=120)
    return out, err


# SIGKILL in every stage kind; Ctrl-C (SIGINT: run_main's "interrupted" line) in the longest and the last one
# (each kind took it the same way when all fourteen ran: 2-3 s to recover, nothing lost).
CASES = [(s, signal.SIGKILL) for s in STAGES] + [("build@ov-int4", signal.SIGINT), ("report", signal.SIGINT)]


@pytest.mark.parametrize(("stage", "sig"), CASES, ids=[f"{s}-{g.name}" for s, g in CASES])
def test_a_stage_killed_mid_way_loses_nothing(stage, sig, built):
    before = snapshot(built)
    _, err = kill_while_working(built, stage, sig)
    now = snapshot(built)
    changed = {p for p in set(before) | set(now) if before.get(p) != now.get(p)}
    # only the killed stage's own outputs may be missing (DVC removes them before it runs the stage); nothing
    # is half-written: a file that exists has its old bytes or none at all
    assert all(p not in now for p in changed), sorted(p for p in changed if p in now)[:5]
    owned = STAGES[stage] if "@" not in stage else f"{STAGES[stage]}/{stage.split('@')[1]}"
    if stage in ("source", "ov-ir", "reference", "report"):
        owned = f"artifacts/{stage}"
    assert all(p.startswith(owned + "/") for p in changed), sorted(changed)[:5]
    if sig == signal.SIGINT:
        line = [x for x in err.splitlines() if "interrupted" in x]
        print(f"\n[fault] {stage} SIGINT: {line[:1]}", file=sys.stderr)

    t0 = time.monotonic()
    proc = dvc(["repro"], built)
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert same_artifacts(before, snapshot(built), stage), "the recovered artifacts differ from the ones before"
    status = dvc(["status"], built)
    assert "up to date" in status.stdout, status.stdout
    # a SIGKILLed run's temporary folder is ignored by DVC (.dvcignore) and removed by the next stage that runs
    again = dvc(["repro", "-f", "-s", "check-params"], built)
    assert again.returncode == 0, again.stderr[-2000:]
    assert not any(tmp_folders(built / d) for d in set(STAGES.values())), "a killed run's temporary folder is left"
    print(f"\n[fault] {stage} {sig.name}: recovered in {took:.1f} s; lost {len(changed)} files", file=sys.stderr)
