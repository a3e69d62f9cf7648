"""Errors a user can act on.

Every failure the user can fix (a wrong param, a missing tool, an unreachable Hub, a full disk) is raised
as a ``PipelineError`` carrying one line that names the problem and the fix. Stage entry points and the
CLI print that line and exit non-zero; they never show a traceback from deep inside a library.
"""

from __future__ import annotations


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
