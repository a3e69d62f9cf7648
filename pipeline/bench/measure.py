"""One benchmark step: a command in its own process, with wall time, CPU time and the process tree's peak RSS
(``resources.PeakRSS``, the same measurement the stages record)."""

from __future__ import annotations

import os
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
    """Run ``step.cmd`` with its output in ``log_path``.

    Peak RSS: the larger of the tree's sampled sum and the largest single process's own high-water mark
    (``VmHWM``, read while it lives: the stage's Python process runs for seconds to minutes, so its peak is
    caught even when the 100 ms sampler misses a short spike). Not ``RUSAGE_CHILDREN``: that is the largest
    child of the whole benchmark so far, so a step below an earlier one's peak was left to the sampler (an NPU
    build read 2.5 GiB against 4.7 standalone). Not ``wait4``'s ``ru_maxrss`` either: an exec'd child starts
    from its launcher's RSS (seen in the test suite: 2.9 GB for a 0.4 GB step launched from pytest). What this
    still misses: a descendant that lives less than one sample interval (seen: a 10 ms, 400 MB one read 0.39
    GB); the stages' processes live for seconds at least."""
    t0 = time.monotonic()
    with open(log_path, "w") as logf:
        proc = psutil.Popen(step.cmd, cwd=cwd, stdout=logf, stderr=subprocess.STDOUT, env=env)
        with PeakRSS(pid=proc.pid, interval=0.1) as peak:
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = step.returncode = os.waitstatus_to_exitcode(status)
    step.wall_s = round(time.monotonic() - t0, 2)
    step.cpu_s = round(usage.ru_utime + usage.ru_stime, 2)
    step.max_single_rss_bytes = peak.peak.single
    step.peak_rss_bytes = max(peak.peak.rss, step.max_single_rss_bytes)
    return step
