"""Errors a user can act on.

Every failure the user can fix (a wrong param, a missing tool, an unreachable Hub, a full disk) is raised
as a ``PipelineError`` carrying one line that names the problem and the fix. Stage entry points and the
CLI print that line and exit non-zero; they never show a traceback from deep inside a library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess


class PipelineError(Exception):
    """A failure with a one-line, actionable message."""

    exit_code = 2

    def __init__(self, message: str, *, fix: str | None = None):
        self.problem = message
        self.fix = fix
        super().__init__(f"{message} — {fix}" if fix else message)


class ParamsError(PipelineError):
    """params.yaml is invalid; ``lines`` holds one line per problem."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


class GateFailed(PipelineError):
    """A validation gate was missed (the metrics were still written)."""

    exit_code = 3


class SourceError(PipelineError):
    """The model source could not be fetched or verified."""


class BuildError(PipelineError):
    """A target could not be built."""


class ResourceError(PipelineError):
    """Not enough RAM or disk for the requested work."""


def child_failure(proc: subprocess.CompletedProcess[str], what: str, *, killed_fix: str) -> BuildError:
    """A child process's failure as one line: killed (a signal, or exit 137 from the kernel's OOM killer behind a
    shell) with ``killed_fix``, or the last line it printed."""
    if proc.returncode < 0 or proc.returncode == 137:
        return BuildError(
            f"{what} was killed (signal {-proc.returncode if proc.returncode < 0 else 9})", fix=killed_fix
        )
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
    return BuildError(f"{what} failed: {tail[0]}")
