"""Two `dvc repro` at once in one project: the second refuses in one line while the first works, and the first
finishes with a consistent lock (the pipeline up to date, every artifact as before)."""

from __future__ import annotations

import sys
import time

from tests.faults.conftest import snapshot
from tests.faults.test_kill import start, tmp_folders
from tests.test_dvc_source import dvc


def test_a_second_repro_refuses_while_the_first_runs(built):
    before = snapshot(built)
    first = start(built, ["repro", "-f", "-s", "build@ov-int4"])
    deadline = time.monotonic() + 300
    while not tmp_folders(built / "artifacts/targets"):
        assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()[-2000:]
        time.sleep(0.01)
    t0 = time.monotonic()
    second = dvc(["repro"], built)
    waited = time.monotonic() - t0
    assert first.poll() is None, "the first run ended before the second was refused: the test proved nothing"
    assert second.returncode != 0
    lines = [line for line in second.stderr.splitlines() if line.startswith(("ERROR", "error"))]
    assert len(lines) == 1 and "lock" in lines[0].lower(), second.stderr[-2000:]
    assert "Traceback" not in second.stderr
    print(f"\n[fault] concurrent repro: {lines[0]!r} after {waited:.1f} s", file=sys.stderr)
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-2000:]
    assert snapshot(built) == before
    assert "up to date" in dvc(["status"], built).stdout
    after = dvc(["repro"], built)  # and the lock the first left is one a third run accepts
    assert after.returncode == 0 and "up to date" in after.stdout, after.stdout[-2000:] + after.stderr[-2000:]
