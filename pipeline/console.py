"""Logging and error display shared by the CLI and the stage entry points.

The library only logs; these entry points decide how it looks (rich on a terminal, plain in CI logs)
and turn a ``PipelineError`` into its one-line message and an exit code — no traceback for a problem the
user can fix. An unexpected exception keeps its traceback in a log file and shows one line.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from pipeline.errors import PipelineError
from pipeline.layout import STATE

err_console = Console(stderr=True)
# Tables stay readable in CI logs and pipes, where rich would otherwise squeeze them into 80 columns.
out_console = Console() if sys.stdout.isatty() else Console(width=220)
ERROR_LOG = STATE / "last-error.log"
# the option every command that reads params.yaml takes
params_option = click.option(
    "--params", "params_path", default="params.yaml", show_default=True, help="The params file to read."
)


def setup_logging(level: str | None = None) -> None:
    level = (level or os.environ.get("AIPC_LOG_LEVEL") or "INFO").upper()
    root = logging.getLogger()
    if any(isinstance(h, RichHandler) for h in root.handlers):
        return
    handler = RichHandler(console=err_console, show_path=False, rich_tracebacks=False, markup=False)
    handler.setFormatter(logging.Formatter("%(message)s", datefmt="%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries that are chatty at INFO.
    for noisy in ("nncf", "httpx", "urllib3", "huggingface_hub", "onnxruntime", "transformers", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def print_error(exc: PipelineError) -> None:
    for line in str(exc).splitlines():  # escaped: a fix such as `pip install "aipc-pipeline[dvc]"` is text
        err_console.print(f"[bold red]error:[/] {escape(line)}", markup=True, highlight=False, soft_wrap=True)


def run_main(fn: Callable[[], object], *, name: str) -> NoReturn:
    """Run a stage/CLI body: exit 0 on success, the error's code with one line on a known failure."""
    setup_logging()
    try:
        fn()
    except PipelineError as exc:
        print_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print(f"[bold red]interrupted:[/] {name} stopped; nothing half-written was kept")
        sys.exit(130)
    except MemoryError:
        err_console.print(f"[bold red]error:[/] {name} ran out of memory — close other programs or use a smaller model")
        sys.exit(2)
    except OSError as exc:
        if exc.errno == 28:  # ENOSPC
            err_console.print(f"[bold red]error:[/] disk full during {name} — free space and rerun")
            sys.exit(2)
        _internal(exc, name)
    except Exception as exc:
        _internal(exc, name)
    sys.exit(0)


def _internal(exc: BaseException, name: str) -> NoReturn:
    try:
        ERROR_LOG.parent.mkdir(parents=True, exist_ok=True)
        ERROR_LOG.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
        where = f" (traceback in {ERROR_LOG})"
    except OSError:
        where = ""
    err_console.print(
        f"[bold red]internal error in {name}:[/] {type(exc).__name__}: {escape(str(exc))}{where}", highlight=False
    )
    sys.exit(1)
