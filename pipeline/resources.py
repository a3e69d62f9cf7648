"""RAM and disk: measure peak use, and refuse work that would not fit before it starts.

Being OOM-killed halfway through a 3-minute build (the ORT builder alone peaked at 23.6 GB of 24 on
Phi-3-mini) is the worst outcome: it wastes the time and can take other processes down. Each build
estimates its need from the source weights and checks free RAM and disk first.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from pipeline.errors import ResourceError

GiB = 2**30


def available_ram() -> int:
    return psutil.virtual_memory().available


def weights_bytes(model_dir: Path) -> int:
    return sum(p.stat().st_size for p in Path(model_dir).glob("*.safetensors"))


def require_ram(needed: int, what: str) -> None:
    if os.environ.get("AIPC_SKIP_RAM_CHECK") == "1":
        return
    free = available_ram()
    if free < needed:
        raise ResourceError(
            f"{what} needs about {needed / GiB:.1f} GiB of RAM but only {free / GiB:.1f} GiB is available",
            fix="close other programs, build the targets one at a time (`dvc repro build@<target>`), "
            "or set AIPC_SKIP_RAM_CHECK=1 to try anyway",
        )


@dataclass
class Peak:
    rss: int = 0  # bytes, whole process tree
    single: int = 0  # bytes, the largest high-water mark (VmHWM) of one process seen in the tree


class PeakRSS:
    """Peak RSS of this process and its children (a build may spawn subprocesses) during a block.

    Two sources, the larger wins: the RSS of the whole tree sampled every ``interval`` seconds by a thread
    (what `top` shows, summed over processes), and the kernel's high-water marks (``ru_maxrss`` of this
    process and of waited-for children) when they rose during the block. The sampler alone under-reads:
    a long C call holding the GIL (OpenVINO's save, for one) starves it — measured 0.4 GiB sampled
    against 6.2 GiB ``ru_maxrss`` for the same FP16 build.
    """

    def __init__(self, pid: int | None = None, interval: float = 0.05):
        # Measuring another process (a child this process waits for): its tree's own high-water marks
        # (``VmHWM``, read while each lives) describe it; this process's marks are not its business.
        self.own = pid is None or pid == os.getpid()
        self.proc = psutil.Process(pid or os.getpid())
        self.interval = interval
        self.peak = Peak()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        total = 0
        try:
            procs = [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            return 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
            if not self.own:  # a high-water mark is the process's life, not this block's
                self.peak.single = max(self.peak.single, _hwm(p.pid))
        self.peak.rss = max(self.peak.rss, total)
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self._marks = _maxrss()
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
        if self.own:
            for before, after in zip(self._marks, _maxrss(), strict=True):
                if after > before:  # the high-water mark was set inside the block
                    self.peak.rss = max(self.peak.rss, after)
        # Another process: its tree's own high-water marks (an exec'd child's ``ru_maxrss`` would start
        # from the RSS of the process that launched it).
        self.peak.rss = max(self.peak.rss, self.peak.single)


def _hwm(pid: int) -> int:
    """A process's own RSS high-water mark (Linux ``VmHWM``; 0 elsewhere or once it is gone). Unlike a
    child's ``ru_maxrss`` it starts afresh at exec, so it does not inherit the RSS of whoever launched it."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _maxrss() -> tuple[int, int]:
    import resource

    return (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
    )
