"""The DVC command of this environment, for the commands that shell out to it (pull, publish)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline.errors import PipelineError


def dvc_executable() -> str:
    """DVC of this environment. A deployment install has it only with the ``dvc`` extra (DVC and its
    dependencies are most of that install's time; pulling from the Hub does not need it)."""
    found = shutil.which("dvc", path=str(Path(sys.executable).parent))
    if found is None:
        raise PipelineError(
            "DVC is not installed in this environment (needed to pull from a DVC remote)",
            fix='pip install "aipc-pipeline[dvc]" (beside your runtime extra), or pull --from hf',
        )
    return found


def dvc_env(**extra: str) -> dict[str, str]:
    """This environment's DVC and Python first on PATH: the stages' commands are ``python -m stages.…``, run
    by DVC through the shell, and ``aipc`` may be called by path without the environment activated."""
    bin_dir = str(Path(sys.executable).parent)
    return dict(os.environ, PATH=os.pathsep.join([bin_dir, os.environ.get("PATH", "")]), **extra)


def run_dvc(args: list[str], what: str, fix: str) -> str:
    """``dvc <args>``'s output; one ``PipelineError`` line naming ``what`` failed otherwise (a full disk said as
    such: DVC's own line for it is "[Errno 28] No space left on device", deep in its log)."""
    proc = subprocess.run([dvc_executable(), *args], capture_output=True, text=True)
    if proc.returncode == 0:
        return proc.stdout
    text = " ".join((proc.stderr or proc.stdout).split())
    if "No space left on device" in text:
        raise PipelineError(f"disk full during {what}", fix="free space and rerun")
    raise PipelineError(f"{what} failed: {text[-300:] or '?'}", fix=fix)
