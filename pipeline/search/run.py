"""``aipc search TARGET``: every point of the target's search space built, validated against the one reference
and read back, then the front and the chosen point written as ``search.json`` + Markdown + HTML.

Points run as queued DVC experiments (``pipeline.search.queue``) by ``dvc queue start -j N`` workers; N comes
from the cores and from the RAM a point needs (the plan's build and validation estimate for this target), so
parallel points never push the machine into swap. A search started again asks DVC which points already
have an experiment and queues only the others; a point still queued or running from an interrupted search
is waited for, not queued twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import psutil
from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline import resource_plan, resources
from pipeline.params import Params, load_params
from pipeline.params.search import Expansion, Point, expand
from pipeline.records.base import Model, Record
from pipeline.search import pareto, queue

log = logging.getLogger(__name__)

SEARCH_DIR = Path("reports") / "search"


class PointResult(Model):
    name: str
    label: str
    overrides: dict[str, Any]
    rev: str
    size_bytes: int
    ms_per_token: float | None
    quality: float | None
    passed: bool
    on_front: bool


class Excluded(Model):
    label: str
    reason: str


class SearchResult(Record):
    """``reports/search/<target>/search.json``: what one search measured and chose (``--apply`` reads it)."""

    FILE: ClassVar[str] = "search.json"
    target: str
    family: str
    objective: Literal["smallest", "fastest", "faithful"]
    quality: Literal["kl", "perplexity"]
    baseline: str  # the commit every point started from
    points: list[PointResult]
    excluded: list[Excluded]
    chosen: str | None
    why: str | None
    seconds: float
    ran: int  # points run by this invocation (the others were already done)


def workers(params: Params, target: str, points: int, cores: int | None = None, free: int | None = None) -> int:
    """Parallel points: one per two cores (a point's build and validation each use every thread they get), and
    no more than the free RAM holds at the target's larger stage estimate."""
    cores = cores or psutil.cpu_count(logical=False) or 1
    free = free if free is not None else resources.available_ram()
    needs = {n.stage: n.ram_any_order for n in resource_plan.plan(params)}  # points run side by side
    per_point = max(needs.get(f"build@{target}", 0), needs.get(f"validate@{target}", 0), 1)
    return max(1, min(points, cores // 2 or 1, free // per_point))


def plan_points(project: Path, target: str) -> tuple[Params, Expansion]:
    params = load_params(project / "params.yaml")
    spec = params.target(target)
    if spec.search is None:
        raise queue.SearchError(
            f"targets.{target} has no search: block in params.yaml",
            fix=f"add targets.{target}.search.space (README: Searching a target's settings)",
        )
    return params, expand(target, spec.family, spec.build.model_dump(mode="json"), spec.search, params.source.dims())


class TargetMetrics(BaseModel):
    """The part of one target's entry in ``artifacts/report/metrics.json`` (``report.flat_metrics``, DVC's
    metrics file) a search ranks by; an experiment carries that file, so ``dvc exp show`` shows the same."""

    model_config = ConfigDict(extra="ignore")
    gates_passed: bool
    size_mb: float
    ms_per_token: float | None
    kl_mean: float | None
    perplexity_increase: float | None


def _measured(point: Point, exp: queue.Experiment, quality: str) -> pareto.Measured:
    try:
        m = TargetMetrics.model_validate(exp.metrics.get(point.target))
    except ValidationError:
        raise queue.SearchError(
            f"experiment {point.name} has no report metrics for {point.target}",
            fix=f"remove it (dvc exp remove {point.name}) and search again",
        ) from None
    return pareto.Measured(
        name=point.name,
        label=point.label(),
        size_bytes=round(m.size_mb * 1e6),
        ms_per_token=m.ms_per_token,
        quality=m.kl_mean if quality == "kl" else m.perplexity_increase,
        passed=m.gates_passed,
    )


Progress = Callable[[int, int, pareto.Measured | None], None]


def search(
    project: Path, target: str, jobs: int | None = None, poll: float = 5.0, progress: Progress | None = None
) -> SearchResult:
    project = Path(project).resolve()
    params, expansion = plan_points(project, target)
    spec = params.target(target)
    assert spec.search is not None
    queue.require_clean_baseline(project)
    baseline = queue.git_head(project)
    points = {p.name: p for p in expansion.points}
    t0 = time.monotonic()

    done = queue.finished(project) & set(points)
    requeued = queue.forget_failed(project, set(points)) + queue.forget_orphans(project, set(points))
    if requeued:
        log.info("queued again after a failure: %s", ", ".join(t.name for t in requeued))
    waiting = {t.name for t in queue.tasks(project) if t.status in ("Queued", "Running")} & set(points)
    missing = [p for name, p in points.items() if name not in done and name not in waiting]
    for p in missing:
        queue.enqueue(project, p.name, p.set_args())
    n = jobs or workers(params, target, len(missing) + len(waiting))
    if missing or waiting:
        queue.start_workers(project, n)
        log.info("%d points: %d done, %d queued now, %d already queued; %d workers", len(points), len(done),
                 len(missing), len(waiting), n)  # fmt: skip

    best: pareto.Measured | None = None
    while True:
        done = queue.finished(project) & set(points)
        failed = [t for t in queue.tasks(project) if t.status == "Failed" and t.name in points]
        if failed:
            t = failed[0]
            raise queue.SearchError(
                f"point {t.name} ({points[t.name].label()}) failed: {queue.failure_log(project, t.task)}",
                fix="fix the cause and run the search again (finished points are kept)",
            )
        if len(done) == len(points) or progress is not None:
            exps = queue.experiments(project)
            measured = [_measured(points[x], exps[x], spec.search.quality) for x in sorted(done) if x in exps]
            best = pareto.choose(measured, spec.search.objective)
            if progress is not None:
                progress(len(done), len(points), best)
        if len(done) == len(points):
            break
        time.sleep(poll)

    exps = queue.experiments(project)
    measured = [_measured(p, exps[p.name], spec.search.quality) for p in expansion.points]
    on_front = {m.name for m in pareto.front(measured)}
    chosen = pareto.choose(measured, spec.search.objective)
    return SearchResult(
        target=target,
        family=spec.family,
        objective=spec.search.objective,
        quality=spec.search.quality,
        baseline=baseline,
        points=[
            PointResult(
                name=m.name,
                label=m.label,
                overrides=dict(points[m.name].overrides),
                rev=exps[m.name].rev,
                size_bytes=m.size_bytes,
                ms_per_token=m.ms_per_token,
                quality=m.quality,
                passed=m.passed,
                on_front=m.name in on_front,
            )
            for m in measured
        ],
        excluded=[Excluded(label=p.label(), reason=why) for p, why in expansion.excluded],
        chosen=chosen.name if chosen else None,
        why=pareto.why(chosen, measured, spec.search.objective) if chosen else None,
        seconds=round(time.monotonic() - t0, 1),
        ran=len(missing),
    )
