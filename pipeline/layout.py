"""Where every artifact lives (one place, so stages, CLI and tests agree)."""

from __future__ import annotations

from pathlib import Path

ARTIFACTS = Path("artifacts")


def source_dir(root: Path = ARTIFACTS) -> Path:
    return root / "source"


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
