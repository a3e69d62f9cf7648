"""Progress for long work: a rich bar on a terminal, sparse log lines elsewhere (CI logs stay readable)."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)


def _interactive() -> bool:
    return sys.stderr.isatty()


@contextlib.contextmanager
def bytes_bar(name: str, total: int | None, *, start: int = 0) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n_bytes)``; shows a transfer bar (or logs every ~10 %)."""
    if _interactive():
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        from pipeline.console import err_console

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
        ) as prog:
            task = prog.add_task(name, total=total, completed=start)
            yield lambda n: prog.advance(task, n)
        return
    done = start
    next_mark = 0.1
    t0 = time.monotonic()

    def advance(n: int) -> None:
        nonlocal done, next_mark
        done += n
        if total and done / total >= next_mark:
            log.info(
                "%s: %d%% (%.1f MB/s)",
                name,
                100 * done // total,
                (done - start) / 1e6 / max(1e-6, time.monotonic() - t0),
            )
            next_mark += 0.1

    yield advance


@contextlib.contextmanager
def steps(description: str, total: int) -> Iterator[Callable[[str], None]]:
    """Yield ``step(label)`` for work made of ``total`` items (prompts, layers, repeats)."""
    if _interactive():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from pipeline.console import err_console

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        ) as prog:
            task = prog.add_task(description, total=total)

            def step(label: str) -> None:
                prog.update(task, advance=1, description=f"{description}: {label}")

            yield step
        return

    count = 0

    def step_log(label: str) -> None:
        nonlocal count
        count += 1
        log.debug("%s: %d/%d %s", description, count, total, label)

    yield step_log
