"""`aipc search` on the embedded model with real DVC experiments: points queued and run by DVC's workers, a
search killed with -9 and started again redoing no finished point, and `--apply` + `dvc repro` giving the
experiment's very artifact."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.test_dvc_source import VENV_BIN, dvc, project_copy
from tests.test_pipeline_dvc import stages_run

# three points: with one worker, a kill mid-way leaves one finished, one running (orphaned) and one queued.
# Data-free points (ratio 1.0 without AWQ or scale estimation: no calibration pass): what is tested is DVC's
# queue, the kill and the restart, not the recipe, and each data-aware point cost ~20 s more build in every
# experiment.
SPACE = {"ratio": [1.0], "group_size": [32, 64, 128], "awq": [False], "scale_estimation": [False]}
POINTS = 3


def git(args: list[str], cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def aipc(args: list[str], cwd: Path, **kw) -> subprocess.Popen | subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    cmd = [sys.executable, "-m", "pipeline.cli", *args]
    if kw.pop("background", False):
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def search_project(tmp_path_factory, repro_project) -> Path:
    """A committed copy of the project whose DVC cache and dvc.lock are the built project's, as a team's clone of
    the commit its build machine made: its `dvc repro` checks every stage out of the cache (only the searched
    target's package and the report see the new `search:` key).

    The lock must be the one that goes with the cache: with the developer's committed lock, DVC takes the lock's
    own entry for a stage whose deps match and, not finding those outputs in this cache, runs the stage again
    without looking in the run cache (dvc/stage/cache.py `restore`). The outputs differ in their recorded
    seconds and RSS, so that rebuilt all 21 stages (119 s measured) instead of restoring them."""
    proj = project_copy(tmp_path_factory.mktemp("search") / "proj")
    shutil.copy2(repro_project / "dvc.lock", proj / "dvc.lock")
    from ruamel.yaml import YAML

    rt = YAML()
    doc = rt.load((proj / "params.yaml").read_text())  # round trip: the file keeps its comments
    doc["targets"]["ov-int4"]["search"] = {"space": SPACE, "objective": "faithful", "quality": "kl"}
    with (proj / "params.yaml").open("w") as f:
        rt.dump(doc, f)
    assert dvc(["cache", "dir", str(repro_project / ".dvc" / "cache")], proj).returncode == 0
    proc = dvc(["repro"], proj)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    ran = stages_run(proc)
    # the source is uncached: fetched again, same bytes
    assert ran <= {"check-params", "source", "package@ov-int4", "report"}, ran
    git(["add", "-A"], proj)
    git(["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline"], proj)
    return proj


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def exp_names(proj: Path) -> set[str]:
    out = dvc(["exp", "list", "--name-only"], proj).stdout
    return {x.strip() for x in out.splitlines() if x.strip() and not x.rstrip().endswith(":")}


def test_a_search_killed_and_started_again_redoes_no_finished_point(search_project):
    """kill -9 of the search and of DVC's workers mid-way (a point running): started again, the search
    queues only the points without an experiment (the orphaned task DVC still calls "Running" is taken back)
    and nothing is written into the project's artifacts or reports before the search completes."""
    proj = search_project
    first = aipc(["search", "ov-int4", "--jobs", "1", "--poll", "1"], proj, background=True)
    deadline = time.monotonic() + 900
    while not exp_names(proj) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(3)
    done_before = exp_names(proj)
    # a search that stopped before any point finished says why at once, rather than after the 15 min
    assert done_before, first.stdout.read()[-3000:] if first.poll() is not None else "no point finished in 15 min"
    first.send_signal(signal.SIGKILL)
    first.wait()
    # and everything else working in the project (DVC's queue workers and the point they run), as a reboot would
    for proc in psutil.process_iter(["pid", "cwd"]):
        cwd = proc.info.get("cwd") or ""
        if proc.pid != os.getpid() and (cwd == str(proj) or cwd.startswith(f"{proj}{os.sep}")):
            with contextlib.suppress(psutil.Error):
                proc.kill()
    assert not (proj / "reports" / "search" / "ov-int4" / "search.json").exists()  # nothing half-written

    again = aipc(["search", "ov-int4", "--poll", "1"], proj, timeout=1800)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    result = json.loads((proj / "reports/search/ov-int4/search.json").read_text())
    assert len(result["points"]) == POINTS
    assert result["ran"] <= POINTS - len(done_before)  # the finished points were not queued again
    assert exp_names(proj) >= done_before and len(exp_names(proj) & {p["name"] for p in result["points"]}) == POINTS
    assert result["chosen"] and all(p["passed"] for p in result["points"] if p["name"] == result["chosen"])
    html = (proj / "reports/search/ov-int4/search.html").read_text()
    assert 'class="chosen' in html and html.count("<svg") == 2
    # every point built only its own target: the source, the IR, the reference and the other targets are the
    # baseline's very outputs (same DVC hashes in each experiment's lock), not rebuilt or taken from another run
    base = yaml.safe_load(git(["show", "HEAD:dvc.lock"], proj))["stages"]
    for point in result["points"]:
        lock = yaml.safe_load(git(["show", f"{point['rev']}:dvc.lock"], proj))["stages"]
        shared = [s for s in base if not s.endswith("@ov-int4") and s not in ("report", "package@ov-int4")]
        assert shared and all(lock[s]["outs"] == base[s]["outs"] for s in shared), point["name"]


def test_apply_then_repro_builds_the_experiments_artifact(search_project):
    proj = search_project
    result = json.loads((proj / "reports/search/ov-int4/search.json").read_text())
    chosen = next(p for p in result["points"] if p["name"] == result["chosen"])
    proc = aipc(["search", "ov-int4", "--apply", chosen["name"]], proj)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    target = yaml.safe_load((proj / "params.yaml").read_text())["targets"]["ov-int4"]
    assert target["origin"].startswith(f"aipc search ov-int4: point {chosen['name']}")
    assert all(target["build"][k] == v for k, v in chosen["overrides"].items())
    assert "# " in (proj / "params.yaml").read_text()  # the file's comments are kept
    repro = dvc(["repro"], proj)
    assert repro.returncode == 0, repro.stdout[-2000:] + repro.stderr[-2000:]

    def artifact_hash(lock_text: str) -> str:
        lock = yaml.safe_load(lock_text)
        outs = lock["stages"]["build@ov-int4"]["outs"]
        return next(o["md5"] for o in outs if o["path"] == "artifacts/targets/ov-int4")

    exp_lock = git(["show", f"{chosen['rev']}:dvc.lock"], proj)
    assert artifact_hash((proj / "dvc.lock").read_text()) == artifact_hash(exp_lock)
    # and byte for byte: the sha256 of every file the experiment stored (read from the DVC cache through its
    # directory listing) equals that of the file `dvc repro` built from params.yaml
    cache = Path(dvc(["cache", "dir"], proj).stdout.strip()) / "files" / "md5"
    listing_md5 = artifact_hash(exp_lock).removesuffix(".dir")
    listing = json.loads((cache / listing_md5[:2] / f"{listing_md5[2:]}.dir").read_text())
    built = proj / "artifacts/targets/ov-int4"
    assert sorted(e["relpath"] for e in listing) == sorted(
        str(p.relative_to(built)) for p in built.rglob("*") if p.is_file()
    )
    for entry in listing:
        stored = cache / entry["md5"][:2] / entry["md5"][2:]
        assert sha256(stored) == sha256(built / entry["relpath"]), entry["relpath"]
    mine = json.loads((proj / "artifacts/report/metrics.json").read_text())["ov-int4"]
    assert mine["kl_mean"] == chosen["quality"] and round(mine["size_mb"] * 1e6) == chosen["size_bytes"]
    card = (proj / "artifacts/packages/ov-int4/README.md").read_text()
    assert f"point {chosen['name']}" in card


def test_a_bad_space_stops_before_any_experiment(search_project):
    proj = search_project
    params = proj / "params.yaml"
    text = params.read_text()
    raw = yaml.safe_load(text)
    raw["targets"]["ov-int4"]["search"]["space"]["group_sise"] = [64]
    try:
        params.write_text(yaml.safe_dump(raw, sort_keys=False))
        proc = aipc(["search", "ov-int4"], proj)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert "search.space.group_sise: unknown setting" in " ".join(proc.stderr.split())
    finally:
        params.write_text(text)
