"""The fault suite's project: a private copy of the built embedded project, and what "nothing lost" means."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def built(repro_project, tmp_path_factory) -> Path:
    """A copy of the shared built project that this module may damage (70 MB, copied in a second)."""
    dest = tmp_path_factory.mktemp("faults") / "proj"
    shutil.copytree(repro_project, dest, symlinks=True)
    return dest


def snapshot(project: Path) -> dict[str, str]:
    """sha256 of every artifact file: what a failed run must leave exactly as it was. (dvc.lock may gain the
    entry of a stage that did run and pass, e.g. the params check before the source refused a damaged model.)"""
    files = sorted(
        p
        for p in (project / "artifacts").rglob("*")
        if p.is_file() and not any(part.startswith(".tmp-") for part in p.relative_to(project).parts)
    )  # a killed run's temporary folder is not an artifact: DVC ignores it, no stage reads it (checked apart)
    return {str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def error_lines(stderr: str) -> list[str]:
    """The project's own error lines (DVC adds its "failed to reproduce" after them)."""
    return [line for line in stderr.splitlines() if line.startswith(("error:", "internal error"))]


# Validation measures speed (ms/token, TTFT): its metrics, and the package and report made from them, differ
# from run to run by design, and DVC's run-cache may restore either of two runs of the same inputs.
MEASURED = ("artifacts/validation/", "artifacts/packages/", "artifacts/report/")


def same_artifacts(before: dict[str, str], after: dict[str, str], stage: str) -> bool:
    """Byte-identical, but for what a re-measured validation changes when ``stage`` is a validation."""
    if stage.startswith("validate@"):
        before, after = ({p: h for p, h in x.items() if not p.startswith(MEASURED)} for x in (before, after))
    return before == after
