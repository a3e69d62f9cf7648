"""The search's points as DVC experiments: queued by name, run by DVC's queue workers, read back with
``dvc exp show``.

Each point is one experiment named ``search-<target>-<key>`` (``Point.name``) that reproduces the ``report``
stage with the point's settings: ``build@<target>`` and ``validate@<target>`` run, every other stage is
unchanged and restored from DVC's cache (the shared source, IR and reference never run again; other targets
are not rebuilt). A queued experiment runs in DVC's own temporary copy of the project, so an interrupted
point never leaves anything in ``artifacts/``: a point is done when its experiment exists, and that is what
a restarted search asks DVC.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter

from pipeline.dvc_tool import dvc_env, dvc_executable
from pipeline.errors import PipelineError

log = logging.getLogger(__name__)

REPORT_METRICS = "artifacts/report/metrics.json"


class SearchError(PipelineError):
    pass


def dvc(
    args: list[str], project: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [dvc_executable(), *args], cwd=project, env=dvc_env(**(env or {})), capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise SearchError(f"dvc {' '.join(args[:3])} failed: {last[0]}", fix="see `dvc queue logs` or run it by hand")
    return proc


def require_clean_baseline(project: Path) -> None:
    """Experiments start from the last commit: it must hold params.yaml, dvc.yaml and a dvc.lock whose outputs
    are in the cache, or every point would rebuild the shared stages (or fail)."""
    git = subprocess.run(["git", "rev-parse", "--verify", "HEAD"], cwd=project, capture_output=True, text=True)
    if git.returncode != 0:
        raise SearchError(
            f"{project} is not a git repository with a commit (DVC experiments start from one)",
            fix="git init, then commit the project after `dvc repro`",
        )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "params.yaml", "dvc.yaml", "dvc.lock"],
        cwd=project,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if dirty:
        raise SearchError(
            "params.yaml, dvc.yaml or dvc.lock differ from the last commit (experiments start from the commit)",
            fix="commit them (git commit params.yaml dvc.yaml dvc.lock) or restore them",
        )
    # Only what a point reproduces (`report` and every stage before it): a package is not made for a baseline
    # target that misses its gate, and need not be — points never build packages.
    status = dvc(["status", "--json", "report"], project, check=False)
    try:
        changed = json.loads(status.stdout or "{}")
    except json.JSONDecodeError:
        changed = {"?": status.stderr.strip()}
    if status.returncode != 0 or changed:
        stages = ", ".join(sorted(changed)) or status.stderr.strip()
        raise SearchError(
            f"the committed pipeline is not up to date ({stages})",
            fix="run `dvc repro` and commit dvc.lock, so every point starts from the cache",
        )


def finished(project: Path) -> set[str]:
    """Names of the experiments of the current commit (a finished point has one)."""
    out = dvc(["exp", "list", "--name-only"], project).stdout
    return {line.strip() for line in out.splitlines() if line.strip() and not line.rstrip().endswith(":")}


@dataclass(frozen=True)
class Task:
    task: str
    name: str
    status: str  # Queued, Running, Success, Failed


_ROW = re.compile(r"^(?P<task>[0-9a-f]{7,})\s+(?P<name>\S+)\s+.*?\s(?P<status>Queued|Running|Success|Failed)\s*$")


def tasks(project: Path) -> list[Task]:
    """The queue as DVC reports it (``dvc queue status`` has no JSON form)."""
    out = dvc(["queue", "status"], project).stdout
    return [Task(**m.groupdict()) for m in map(_ROW.match, out.splitlines()) if m]


_WORKERS = re.compile(r"Worker status:\s*(\d+) active")


def active_workers(project: Path) -> int:
    m = _WORKERS.search(dvc(["queue", "status"], project).stdout)
    return int(m.group(1)) if m else 0


def forget_orphans(project: Path, names: set[str]) -> list[Task]:
    """Tasks DVC still lists as running although no worker is alive (their worker was killed: a reboot, a
    kill -9 of the whole session). DVC never finishes them; they are killed and removed, so they are queued
    again. Measured with DVC 3.67: such a task stays "Running" with "0 active" workers for good."""
    if active_workers(project):
        return []
    orphans = [t for t in tasks(project) if t.status == "Running" and t.name in names]
    if orphans:
        ids = [t.task for t in orphans]
        dvc(["queue", "kill", *ids], project, check=False)
        dvc(["queue", "remove", *ids], project)
    return orphans


def enqueue(project: Path, name: str, set_args: list[str]) -> None:
    dvc(["exp", "run", "--queue", "-n", name, *set_args, "report"], project)


def start_workers(project: Path, jobs: int) -> None:
    """The workers (and the experiments they run) record a point's missed gate instead of failing on it."""
    from pipeline.validate.harness import GATES_ENV, GATES_RECORD

    dvc(["queue", "start", "-j", str(jobs)], project, env={GATES_ENV: GATES_RECORD})


def forget_failed(project: Path, names: set[str]) -> list[Task]:
    """Failed tasks of this search leave the queue (so they are queued again); returns them."""
    failed = [t for t in tasks(project) if t.status == "Failed" and t.name in names]
    if failed:
        dvc(["queue", "remove", *[t.task for t in failed]], project)
    return failed


def failure_log(project: Path, task: str, lines: int = 5) -> str:
    proc = dvc(["queue", "logs", task], project, check=False)
    tail = [x for x in (proc.stdout or proc.stderr).splitlines() if x.strip()][-lines:]
    return " | ".join(tail)


class _File(BaseModel):
    data: dict[str, Any] = Field(default_factory=dict)


class _RevData(BaseModel):
    params: dict[str, _File] = Field(default_factory=dict)
    metrics: dict[str, _File] = Field(default_factory=dict)


class _Rev(BaseModel):
    rev: str
    name: str | None = None
    data: _RevData | None = None


class _Exp(BaseModel):
    revs: list[_Rev] = Field(default_factory=list)


class _Baseline(BaseModel):
    """One entry of ``dvc exp show --json`` (DVC 3): a commit and the experiments based on it."""

    rev: str
    experiments: list[_Exp] | None = None


@dataclass(frozen=True)
class Experiment:
    name: str
    rev: str
    params: dict[str, Any]  # params.yaml as the experiment ran it
    metrics: dict[str, Any]  # artifacts/report/metrics.json of the experiment


def experiments(project: Path) -> dict[str, Experiment]:
    """The named experiments of the current commit, with their params and report metrics."""
    raw = json.loads(dvc(["exp", "show", "--json"], project).stdout or "[]")
    out: dict[str, Experiment] = {}
    for baseline in TypeAdapter(list[_Baseline]).validate_python(raw):
        for exp in baseline.experiments or []:
            for rev in exp.revs:
                if rev.name and rev.data is not None:
                    params = rev.data.params.get("params.yaml", _File()).data
                    metrics = rev.data.metrics.get(REPORT_METRICS, _File()).data
                    out[rev.name] = Experiment(rev.name, rev.rev, params, metrics)
    return out


def git_head(project: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()
