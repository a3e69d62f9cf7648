"""A child process's failure reaches the user as one line: what failed and why, or how it was killed and what to do."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.errors import BuildError, child_failure


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_a_failed_child_is_its_last_line():
    err = child_failure(run("raise SystemExit('the IR has no MatMul')"), "collecting x", killed_fix="more RAM")
    assert isinstance(err, BuildError) and str(err) == "collecting x failed: the IR has no MatMul"


@pytest.mark.parametrize("code", ["import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "raise SystemExit(137)"])
def test_a_killed_child_names_the_signal_and_the_fix(code):
    err = child_failure(run(code), "the builder", killed_fix="close other programs")
    assert str(err) == "the builder was killed (signal 9) — close other programs"
