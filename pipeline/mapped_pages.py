"""Give back the pages of an artifact's memory-mapped weight files once the runtime no longer reads them.

OpenVINO maps ``openvino_model.bin`` read-only and shared, and its CPU plugin repacks every weight into its
own buffers at the first inference. The file pages it read stay mapped and resident afterwards: measured on
the Phi-3-mini-shaped FP16 IR (f32 inference precision), 7.05 GiB of the plugin's own memory plus 7.02 GiB
of file pages nobody reads again — 14.1 GiB of RSS, which is also what the kernel's OOM killer counts.

``madvise(MADV_DONTNEED)`` on a *shared read-only* file mapping only drops this process's page-table
entries: the data stays in the page cache and a later read faults the very same bytes back in (the file is
unchanged). Private or writable mappings are never touched — there it could discard data. Measured with the
release running during the first generation: peak RSS 7.28 GiB instead of 14.07, identical tokens.

Linux only (``/proc/self/maps``); elsewhere a no-op.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)

MADV_DONTNEED = 4
MAPS = Path("/proc/self/maps")


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.madvise.restype = ctypes.c_int
    return libc


def shared_readonly_mappings(directory: Path) -> list[tuple[int, int, str]]:
    """(start, end, path) of this process's shared read-only mappings of files under ``directory``."""
    if not MAPS.exists():
        return []
    root = os.path.realpath(directory)
    out = []
    for line in MAPS.read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) < 6 or parts[1] != "r--s":
            continue
        path = parts[5].strip()
        if not os.path.realpath(path).startswith(root + os.sep):
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        out.append((start, end, path))
    return out


def resident_bytes(directory: Path) -> int:
    """Resident bytes of this process's mappings of files under ``directory`` (from /proc/self/smaps)."""
    smaps = Path("/proc/self/smaps")
    if not smaps.exists():
        return 0
    root = os.path.realpath(directory) + os.sep
    total, inside = 0, False
    for line in smaps.read_text().splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and len(parts) >= 5 and not parts[0].endswith(":"):
            inside = len(parts) >= 6 and os.path.realpath(parts[5]).startswith(root)
        elif inside and parts[0] == "Rss:":
            total += int(parts[1]) * 1024
    return total


def release(directory: Path) -> int:
    """Drop the resident pages of ``directory``'s shared read-only mappings; returns the bytes advised."""
    mappings = shared_readonly_mappings(directory)
    if not mappings:
        return 0
    libc = _libc()
    done = 0
    for start, end, path in mappings:
        if libc.madvise(start, end - start, MADV_DONTNEED) == 0:
            done += end - start
        else:
            log.debug("madvise(%s) failed: errno %d", path, ctypes.get_errno())
    return done


class ReleasingPages:
    """Release ``directory``'s file pages every ``interval`` seconds while a block runs (the runtime's first
    inference, when it reads and repacks every weight), and once more at the end. The runtimes release the
    GIL while they compute, so the thread runs during the repack, not after it."""

    def __init__(self, directory: Path, interval: float = 0.2):
        self.directory = Path(directory)
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            release(self.directory)

    def __enter__(self) -> ReleasingPages:
        if MAPS.exists():
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        release(self.directory)
