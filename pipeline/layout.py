"""Where every artifact and piece of project state lives (one place, so stages, CLI and tests agree)."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import BuildError

ARTIFACTS = Path("artifacts")


def checked_params_dir(root: Path = ARTIFACTS) -> Path:
    """Where the params check leaves its record (``ParamsChecked``)."""
    return root / "checked-params"


def source_dir(root: Path = ARTIFACTS) -> Path:
    return root / "source"


def require_source(root: Path = ARTIFACTS) -> Path:
    """The source model folder, or one line saying how to make it."""
    src = source_dir(root)
    if not (src / "config.json").is_file():
        raise BuildError(f"{src} is missing or incomplete", fix="run `dvc repro source` (or the whole pipeline) first")
    return src


def ov_ir_dir(root: Path = ARTIFACTS) -> Path:
    return root / "ov-ir"


def target_dir(name: str, root: Path = ARTIFACTS) -> Path:
    return root / "targets" / name


def reference_dir(root: Path = ARTIFACTS) -> Path:
    return root / "reference"


def validation_dir(name: str, root: Path = ARTIFACTS) -> Path:
    return root / "validation" / name


def report_dir(root: Path = ARTIFACTS) -> Path:
    return root / "report"


def packages_dir(root: Path = ARTIFACTS) -> Path:
    return root / "packages"


def package_dir(name: str, root: Path = ARTIFACTS) -> Path:
    return packages_dir(root) / name


# Where stages write their output folders (atomically, through a temporary sibling).
OUTPUT_PARENTS = (ARTIFACTS, ARTIFACTS / "targets", ARTIFACTS / "validation", ARTIFACTS / "packages")


# Project state that belongs to this checkout (never a DVC output): publish log, last error, local remote.
STATE = Path(".aipc")


def runs_dir(root: Path = ARTIFACTS) -> Path:
    """The run logs (``pipeline.runlog``) of the project whose artifacts are at ``root``."""
    return root.parent / STATE / "runs"
