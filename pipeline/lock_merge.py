"""One ``dvc.lock`` from a CI fan-out: the shared stages' lock and each target job's own entries.

The publish workflow builds the shared stages once (job ``prepare``: source, the FP IR, the reference), then
one job per target runs that target's stages starting from prepare's lock. Each job's lock therefore equals
prepare's except for the entries of the stages it ran. Copying the job locks over each other in turn (what
the workflow once did) keeps only the last job's target; this takes, for every stage, the one job that
changed it — and refuses a lock that changed a stage outside its own target (it rebuilt something shared,
so its target was not built from what the others were), or two jobs that changed the same stage.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError


def _yaml() -> Any:
    from ruamel.yaml import YAML  # what DVC itself writes dvc.lock with: the merged file reads like DVC's own

    y = YAML()
    y.default_flow_style = False
    return y


def read_lock(path: Path) -> Any:
    if not path.is_file():
        raise PipelineError(f"{path} is missing", fix="pass the dvc.lock each job uploaded")
    data = _yaml().load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("stages"), dict):
        raise PipelineError(f"{path} is not a dvc.lock (no `stages:` mapping)")
    return data


def _target_of(stage: str) -> str | None:
    return stage.split("@", 1)[1] if "@" in stage else None


def merge_locks(base: Path, jobs: list[Path]) -> tuple[Any, dict[str, list[str]]]:
    """``base`` with each job's changed entries; also which stages came from which job lock."""
    merged = read_lock(base)
    stages = merged["stages"]
    taken: dict[str, Path] = {}
    by_job: dict[str, list[str]] = {}
    entries: dict[str, Any] = {}
    for job in jobs:
        lock = read_lock(job)["stages"]
        changed = [s for s, entry in lock.items() if stages.get(s) != entry]
        targets = {_target_of(s) for s in changed}
        if None in targets or len(targets) > 1:
            shared = sorted(s for s in changed if _target_of(s) is None) or sorted(changed)
            raise PipelineError(
                f"{job} changed {', '.join(shared)}: a target job may change only its own target's stages",
                fix="the job re-ran stages it should have restored from the remote (was prepare's dvc.lock and the "
                "shared DVC remote passed to it?)",
            )
        for s in changed:
            if s in taken:
                raise PipelineError(f"{taken[s]} and {job} both changed {s}", fix="run each target in one job only")
            taken[s], entries[s] = job, lock[s]
        by_job[str(job)] = changed
    stages.update(entries)
    return merged, by_job


def write_lock(data: Any, out: Path) -> None:
    buf = io.StringIO()
    _yaml().dump(data, buf)
    out.write_text(buf.getvalue(), encoding="utf-8")
