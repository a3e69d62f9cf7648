"""The run log: what a stage's run measured, written beside the project, never into a DVC output.

``pipeline.stage`` wraps every stage in ``logged_run``; library code that times a part of its work calls
``note("generation", seconds)`` and the value lands in that run's ``details`` (a no-op outside a stage, e.g.
in a test calling the library directly). Outputs stay a function of their inputs; the measurements stay
available to people (``aipc runs``) and to the benchmark.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline import layout, resources
from pipeline.errors import PipelineError
from pipeline.records.run import HostFacts, RunLog

log = logging.getLogger(__name__)

RUNS = layout.runs_dir()
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TORCH_NUM_THREADS")

_details: dict[str, float] | None = None


def note(what: str, seconds: float) -> None:
    """Add ``seconds`` to what the current stage run spent on ``what`` (nothing outside a stage run)."""
    if _details is not None:
        _details[what] = round(_details.get(what, 0.0) + seconds, 3)


def host_facts() -> HostFacts:
    import psutil

    return HostFacts(
        cpu=_cpu_model(),
        logical_cpus=os.cpu_count() or 1,
        physical_cpus=psutil.cpu_count(logical=False),
        threads={k: os.environ[k] for k in THREAD_VARS if k in os.environ},
        platform=platform.platform(terse=True),
        python=platform.python_version(),
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@contextmanager
def logged_run(stage: str, folder: Path = RUNS) -> Iterator[None]:
    """Time the block and its peak RSS; write ``folder/<stage>.json`` when it completes (a failed run
    leaves the previous log as it was)."""
    global _details
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t0, _details = time.monotonic(), {}
    try:
        with resources.PeakRSS() as peak:
            yield
        run = RunLog(
            stage=stage,
            started_at=started,
            seconds=round(time.monotonic() - t0, 2),
            peak_rss_bytes=peak.peak.rss,
            host=host_facts(),
            details=dict(_details),
        )
    finally:
        _details = None
    try:
        run.write(folder)
    except OSError as exc:  # a log is not worth failing a finished stage for
        log.warning("could not write the run log of %s: %s", stage, exc)


def read_all(folder: Path = RUNS) -> list[RunLog]:
    """Every stage's last logged run, by stage name. A log that cannot be read is skipped with a warning: a log
    never fails what reads it (the report stage among them)."""
    if not folder.is_dir():
        return []
    logs = []
    for path in sorted(folder.glob("*.json")):
        try:
            logs.append(RunLog.read(folder, path.stem))
        except PipelineError as exc:
            log.warning("skipped a run log: %s", exc)
    return logs
