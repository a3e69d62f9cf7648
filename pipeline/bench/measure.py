"""One benchmark step: a command in its own process, with wall time, CPU time and the process tree's peak RSS
(``resources.PeakRSS``, the same measurement the stages record)."""

from __future__ import annotations

import resource
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from pipeline.resources import PeakRSS


@dataclass
class Step:
    name: str
    kind: str  # anchor | project
    cmd: list[str]
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_bytes: int = 0
    max_single_rss_bytes: int = 0
    output_bytes: int = 0
    returncode: int = 0
    weights_sha256: dict[str, str] = field(default_factory=dict)


def run_measured(step: Step, cwd: Path, log_path: Path, env: dict[str, str] | None = None) -> Step:
    """Run ``step.cmd`` with its output in ``log_path``; CPU time from rusage of the waited-for children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with open(log_path, "w") as logf:
        proc = psutil.Popen(step.cmd, cwd=cwd, stdout=logf, stderr=subprocess.STDOUT, env=env)
        with PeakRSS(pid=proc.pid, interval=0.1) as peak:
            step.returncode = proc.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    step.wall_s = round(time.monotonic() - t0, 2)
    step.cpu_s = round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2)
    step.peak_rss_bytes = peak.peak.rss
    step.max_single_rss_bytes = after.ru_maxrss * 1024
    return step
