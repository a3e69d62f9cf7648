"""What one run of a stage measured: wall time, peak RSS, the host, and the stage's own timings.

Kept apart from the stage's output on purpose. A DVC output is hashed and every later stage depends on
that hash, so a measured value inside it (seconds, RSS, a timestamp, the host) made two runs from the same
inputs look different: a re-run that changed no weight re-ran everything downstream, and a teammate's
clone never matched the committed ``dvc.lock``. The run log is not a DVC output (``.aipc/runs``, git- and
DVC-ignored): it is read by people, ``aipc runs`` and the benchmark, never by a stage.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError

from pipeline import fsutil
from pipeline.errors import PipelineError
from pipeline.records.base import Model


class HostFacts(Model):
    """Where the run happened: enough to tell two machines' timings apart, nothing identifying a person."""

    cpu: str
    logical_cpus: int
    physical_cpus: int | None
    threads: dict[str, str]  # the thread-count environment variables set for the run (OMP_NUM_THREADS …)
    platform: str
    python: str


class RunLog(Model):
    """``.aipc/runs/<stage>.json``: the last successful run of one stage (``build@ov-int4`` …)."""

    stage: str
    started_at: str  # UTC, ISO 8601
    seconds: float
    peak_rss_bytes: int
    host: HostFacts
    # the stage's own timings, by what they time (the reference's generation, each long-context pass …)
    details: dict[str, float] = Field(default_factory=dict)

    @staticmethod
    def path(folder: Path, stage: str) -> Path:
        return Path(folder) / f"{stage}.json"

    @classmethod
    def read(cls, folder: Path, stage: str) -> RunLog:
        path = cls.path(folder, stage)
        if not path.is_file():
            raise PipelineError(f"{path} is missing", fix=f"run the stage (`dvc repro {stage}`) to log a run")
        fix = f"run `dvc repro -f {stage}` to log a new run"
        try:
            data = fsutil.read_json(path)
        except ValueError as exc:
            raise PipelineError(f"{path} is not JSON ({exc})", fix=fix) from None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"]
            raise PipelineError(f"{path} is not a run log this version understands ({msg})", fix=fix) from None

    def write(self, folder: Path) -> Path:
        path = self.path(folder, self.stage)
        path.parent.mkdir(parents=True, exist_ok=True)
        fsutil.write_json(path, self.model_dump(mode="json"))
        return path
