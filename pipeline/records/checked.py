"""The params check's record: the one file every stage's outputs sit behind in the DAG."""

from __future__ import annotations

from typing import ClassVar

from pipeline.records.base import Record


class ParamsChecked(Record):
    """``artifacts/checked-params/checked.json``: params.yaml passed every check a stage makes before work.

    Its content names only the checks, never a params value: the source stage depends on this file for the
    order DVC runs stages in (the check first, before DVC removes any stage's outputs), and a value in it would
    re-run the source, and everything after it, whenever any knob changed."""

    FILE: ClassVar[str] = "checked.json"
    checks: list[str]
