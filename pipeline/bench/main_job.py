"""`aipc bench main-job`: the whole `dvc repro` at Phi-3-mini size, every stage measured, beside the plan.

A copy of the project (its git-tracked files) gets a ``bench`` model entry — a local source folder with the
Phi-3-mini-shaped model — and runs under real DVC, one stage after the other in ``dvc.yaml`` order with
``dvc repro --single-item <stage>``: the same commands, outputs, cache commits and lock file as one
``dvc repro``, but each stage measured on its own: wall and CPU time, the process tree's peak RSS (DVC
included), the disk it added and the disk's peak during it. Then a plain ``dvc repro`` must find nothing to
do. ``resource_plan`` predicts each figure from the same params before the stage runs; both go side by side
into docs/benchmarks.md.

Random weights cannot pass the int4 quality gates (they measure quantisation error of a model that knows
nothing); those gates are switched off in the copy, except the tokenizer's. The FP16 IR keeps every gate:
a faithful FP16 artifact must pass them at real size, near-ties included.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline import fsutil, layout, resources
from pipeline.bench.measure import Step, run_measured
from pipeline.dvc_tool import dvc_env, dvc_executable

log = logging.getLogger(__name__)

INT4_QUALITY_GATES = (
    "exact_match_min",
    "teacher_forced_agreement_min",
    "kl_mean_max",
    "perplexity_increase_max",
    "long_context_kl_max",
    "long_context_agreement_min",
)


def copy_project(project_root: Path, dest: Path) -> None:
    """The project's git-tracked (and untracked, not ignored) files, without artifacts or caches."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=project_root,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in files:
        rel = raw.decode()
        src = project_root / rel
        if rel and src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)


def full_size_params(raw: dict[str, Any], model_dir: Path) -> dict[str, Any]:
    """params.yaml pointed at the full-size local model, int4 quality gates off (random weights)."""
    raw = json.loads(json.dumps(raw))
    raw["models"]["bench"] = {
        "kind": "local",
        "path": str(model_dir),
        "description": "Phi-3-mini-shaped, random weights",
    }
    raw["model"] = "bench"
    for name, target in raw["targets"].items():
        if name != "ov-fp16":
            for gate in INT4_QUALITY_GATES:
                if gate in (target.get("gates") or {}):
                    target["gates"][gate] = None
    return raw


def dvc_stages(ws: Path, env: dict[str, str]) -> list[str]:
    """Every stage in ``dvc.yaml`` order (foreach expanded) — the order ``dvc repro`` may run them in."""
    out = subprocess.run(
        [dvc_executable(), "stage", "list", "--name-only"], cwd=ws, env=env, capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(f"dvc stage list failed: {out.stderr.strip()}")
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def up_to_date(ws: Path, env: dict[str, str], stage: str) -> bool:
    """DVC's own answer: nothing changed in the stage's deps, params or outputs since its lock entry."""
    proc = subprocess.run(
        [dvc_executable(), "status", "--json", stage], cwd=ws, env=env, capture_output=True, text=True
    )
    return proc.returncode == 0 and json.loads(proc.stdout or "{}") == {}


def footprint(paths: list[Path]) -> int:
    """Bytes allocated on disk under ``paths``, each inode counted once (hard links share their bytes)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for top in paths:
        if not top.exists():
            continue
        for dirpath, _dirs, files in os.walk(top):
            for f in files:
                try:
                    st = os.lstat(os.path.join(dirpath, f))
                except OSError:
                    continue
                key = (st.st_dev, st.st_ino)
                if key not in seen:
                    seen.add(key)
                    total += st.st_blocks * 512
    return total


def distinct_bytes(ws: Path, source: Path) -> int:
    """The bytes that must exist: every distinct file content among the outputs (DVC's md5s) + the source."""
    cache = ws / ".dvc" / "cache" / "files" / "md5"
    sizes: dict[str, int] = {}
    for manifest in cache.glob("*/*.dir"):
        for entry in json.loads(manifest.read_text()):
            md5 = entry["md5"]
            obj = cache / md5[:2] / md5[2:]
            if md5 not in sizes and obj.exists():
                sizes[md5] = obj.stat().st_size
    return sum(sizes.values()) + sum(p.stat().st_size for p in source.rglob("*") if p.is_file())


class PeakDisk:
    """The filesystem's used bytes sampled every ``interval`` s: the peak a stage reached over its start."""

    def __init__(self, path: Path, interval: float = 0.5):
        self.path, self.interval = path, interval
        self.start = self.peak = shutil.disk_usage(path).used
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, shutil.disk_usage(self.path).used)

    def __enter__(self) -> PeakDisk:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, shutil.disk_usage(self.path).used)


@dataclass
class StageRun:
    stage: str
    wall_s: float
    cpu_s: float
    peak_rss_bytes: int
    disk_added_bytes: int  # footprint after − before (project + caches + source folder)
    disk_peak_bytes: int  # the filesystem's used bytes at the stage's peak, over its start
    returncode: int
    predicted_ram_bytes: int | None
    predicted_disk_bytes: int | None
    predicted_disk_peak_bytes: int | None = None


def predictions(raw: dict[str, Any], model_dir: Path, weights: int, workspace: Path) -> dict[str, Any]:
    """``aipc doctor``'s plan for these params, as the workspace's filesystem and DVC cache make it."""
    from pipeline import resource_plan
    from pipeline.params import validate_params
    from pipeline.targets.base import ModelDims

    params = validate_params(raw, check_model=False)
    dims = ModelDims.from_config(model_dir / "config.json")
    cwd = Path.cwd()
    try:
        os.chdir(workspace)
        return {n.stage: n for n in resource_plan.plan(params, weights, dims=dims)}
    finally:
        os.chdir(cwd)


def repredict(results: dict[str, Any], raw: dict[str, Any], model_dir: Path, workspace: Path) -> dict[str, Any]:
    """The same measurements beside the plan of the code as it is now (its commit recorded): after the plan
    was calibrated on an earlier run, the figures it predicts for this one."""
    plan = predictions(raw, model_dir, results["weights_bytes"], workspace)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = {**results, "predicted_by": f"resource_plan at {commit or 'this checkout'}"}
    out["stages"] = []
    for s in results["stages"]:
        need = plan.get(s["stage"])
        out["stages"].append({**s, "predicted_ram_bytes": need.ram if need else None,
                              "predicted_disk_bytes": need.disk if need else None,
                              "predicted_disk_peak_bytes": need.disk + need.scratch if need else None})  # fmt: skip
    return out


def require_kept_run(work: Path) -> None:
    """``--resume`` continues a run kept with ``--keep``: one line, before any work, when there is none."""
    if not ((work / "main-job.json").is_file() and (work / "project").is_dir()):
        from pipeline.errors import PipelineError

        raise PipelineError(
            f"--resume: no kept run in {work} (it needs main-job.json and project/)",
            fix="run without --resume (add --keep to be able to resume later), or pass that run's --work",
        )


def run_main_job(project_root: Path, work: Path, model_dir: Path, resume: bool = False) -> dict[str, Any]:
    """Copy the project into ``work/project``, run every stage measured; returns the results (also saved).

    ``resume``: continue the run in ``work/project`` as it is (its code, params and lock): a stage DVC finds
    up to date keeps the measurement of the run that made it, every other stage runs measured."""
    import yaml

    from pipeline import resource_plan
    from pipeline.params import validate_params

    ws = work / "project"
    earlier: dict[str, dict[str, Any]] = {}
    started = _now()
    if resume:
        require_kept_run(work)
        saved = json.loads((work / "main-job.json").read_text())
        earlier, started = {s["stage"]: s for s in saved["stages"]}, saved["started"]
        raw = yaml.safe_load((ws / "params.yaml").read_text())
    else:
        if ws.exists():
            shutil.rmtree(ws)
        ws.mkdir(parents=True)
        copy_project(project_root, ws)
        raw = full_size_params(yaml.safe_load((ws / "params.yaml").read_text()), model_dir.resolve())
        (ws / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    cache = work / "cache"
    env = dvc_env(AIPC_CACHE=str(cache), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    logs = work / "logs"
    logs.mkdir(exist_ok=True)

    params = validate_params(raw, check_model=False)
    weights = resource_plan.source_weights(params, ws / layout.ARTIFACTS)
    plan = predictions(raw, model_dir.resolve(), weights, ws)
    # the same plan `aipc doctor` shows, with a tenth more disk for the stages' temporary files
    resources.require_ram(max(n.ram for n in plan.values()), "the main job's hungriest stage")
    fsutil.require_disk(ws, resource_plan.total_disk(list(plan.values())), "the main job")
    measured = [ws, cache, model_dir]
    results: dict[str, Any] = {"weights_bytes": weights, "stages": [], "started": started, "failed": None,
                               "predicted_by": "resource_plan when the run started",
                               "second_repro_up_to_date": None, "footprint_bytes": None, "distinct_bytes": None}  # fmt: skip
    if earlier:
        results["resumed"] = _now()
    for stage in dvc_stages(ws, env):
        prior = earlier.get(stage)
        if prior and not prior["returncode"] and up_to_date(ws, env, stage):
            results["stages"].append({**prior, "carried_over": True})
            log.info("%s: up to date, measured in the earlier run", stage)
            continue
        before = footprint(measured)
        with PeakDisk(ws) as disk:
            step = run_measured(
                Step(stage, "main-job", [dvc_executable(), "repro", "--single-item", stage]),
                ws,
                logs / f"{stage}.log",
                env,
            )
        need = plan.get(stage)
        run = StageRun(
            stage=stage,
            wall_s=step.wall_s,
            cpu_s=step.cpu_s,
            peak_rss_bytes=step.peak_rss_bytes,
            disk_added_bytes=footprint(measured) - before,
            disk_peak_bytes=disk.peak - disk.start,
            returncode=step.returncode,
            predicted_ram_bytes=need.ram if need else None,
            predicted_disk_bytes=need.disk if need else None,
            predicted_disk_peak_bytes=need.disk + need.scratch if need else None,
        )
        results["stages"].append(asdict(run))
        log.info("%s: %.0f s, peak %.1f GiB, +%.2f GB, rc %d", stage, run.wall_s, run.peak_rss_bytes / 2**30,
                 run.disk_added_bytes / 1e9, run.returncode)  # fmt: skip
        _save(work, results)
        if step.returncode:
            results["failed"] = stage
            break
    else:
        again = subprocess.run([dvc_executable(), "repro"], cwd=ws, env=env, capture_output=True, text=True)
        results["second_repro_up_to_date"] = again.returncode == 0 and "up to date" in again.stdout
        results["footprint_bytes"] = footprint(measured)
        results["distinct_bytes"] = distinct_bytes(ws, model_dir)
    results["validation"] = validation_breakdown(ws)
    results["finished"] = _now()
    _save(work, results)
    return results


def validation_breakdown(ws: Path) -> dict[str, dict[str, Any]]:
    """Per validated target: the seconds of its long-context passes (one per regime run: lengths read from
    the same pass share its time), its speed figures with their spread, and its gate verdict — what the
    validation wall time is made of."""
    from pipeline.records import ValidationResult

    out: dict[str, dict[str, Any]] = {}
    for folder in sorted((ws / layout.ARTIFACTS / "validation").glob("*")):
        if not ValidationResult.exists(folder):
            continue
        v = ValidationResult.read(folder)
        if not v.measured or v.speed is None:
            continue
        passes = {(x.regime, x.seconds) for x in v.long_context or [] if x.status == "measured" and x.seconds}
        out[v.target] = {
            "long_context_s": round(sum(sec for _, sec in passes), 1),
            "long_context_lengths": [x.length for x in v.long_context or [] if x.status == "measured"],
            "timed_tokens": v.speed.timed_tokens,
            "tpot_ms_median": v.speed.tpot_ms_median,
            "tpot_ms_p10_p90": v.speed.tpot_ms_p10_p90,
            "ttft_ms_median": v.speed.ttft_ms_median,
            "ttft_ms_p10_p90": v.speed.ttft_ms_p10_p90,
            "passed": v.passed,
            "device": v.device_label,
            "phases": v.speed.phases.model_dump() if v.speed.phases else None,
        }
    return out


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _save(work: Path, results: dict[str, Any]) -> None:
    (work / "main-job.json").write_text(json.dumps(results, indent=2))
