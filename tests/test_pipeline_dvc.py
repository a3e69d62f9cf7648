"""The whole pipeline through real DVC on a fresh copy of the project (embedded model, all targets)."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
from pathlib import Path

import pytest

from tests.conftest import edited_params
from tests.support import browser
from tests.test_dvc_source import VENV_BIN, dvc


def stages_run(proc) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", proc.stdout))


@pytest.fixture
def project(repro_project):
    return repro_project


def test_repro_builds_validates_and_reports_every_target(project):
    params = __import__("yaml").safe_load((project / "params.yaml").read_text())
    for name, t in params["targets"].items():
        metrics = json.loads((project / f"artifacts/validation/{name}/metrics.json").read_text())
        assert metrics["status"] == ("measured" if t["enabled"] else "disabled"), name
        assert (project / f"artifacts/targets/{name}/target.json").is_file()
        if t["enabled"]:
            assert (project / f"artifacts/packages/{name}/manifest.json").is_file()
    for f in ("metrics.json", "plots.json", "report.md", "report.html"):
        assert (project / "artifacts/report" / f).is_file()
    fp16 = json.loads((project / "artifacts/validation/ov-fp16/metrics.json").read_text())
    assert fp16["quality"]["exact_match_rate"] == 1.0


def test_dvc_metrics_and_plots_work(project, tmp_path):
    proc = dvc(["metrics", "show", "--json"], project)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert "ov-int4" in json.dumps(data)
    proc = dvc(["plots", "show", "-o", str(tmp_path / "plots")], project)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "plots" / "index.html").is_file()


def _repro_watched(project: Path, out: Path) -> tuple[object, list[str], float]:
    """`dvc repro` in a child that records the artifacts it opened; also its CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [str(VENV_BIN / "python"), str(Path(__file__).parent / "support/dvc_opened.py"), str(out), "repro"],
        cwd=project,
        env={**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert proc.returncode == 0 and stages_run(proc) == set(), proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Data and pipelines are up to date" in proc.stdout
    return proc, [path for path, _ in json.loads(out.read_text())], cpu


def test_second_repro_is_a_quick_noop(project, tmp_path):
    # Without ruamel.yaml's C parser DVC parses params.yaml once per stage in pure Python: 2.8 s against 2.0 s
    # here, and 3.1 s on CI, which failed the wall-time bound this test had then. Hold the cause directly.
    from ruamel.yaml.main import CParser

    assert CParser is not None, "ruamel.yaml.clib is missing: pip install -r requirements.txt"
    # What makes a no-op slow at real size is DVC re-reading outputs to hash them (7.6 GB for Phi-3-mini): it
    # must open none of them. Under xdist this project is a copy of the one built, a new folder to DVC (its state
    # database is keyed by the folder), so its first repro hashes every output once (161 files, 4.1 s wall on
    # CI): the second is the no-op a user gets.
    _repro_watched(project, tmp_path / "opened-0.json")
    _, opened, cpu = _repro_watched(project, tmp_path / "opened-1.json")
    assert opened == [], opened
    # The check sees a re-hash: an output whose mtime changed (same bytes) is read again, and nothing re-runs.
    largest = max((p for p in (project / "artifacts").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    os.utime(largest)
    _, opened, _ = _repro_watched(project, tmp_path / "opened-2.json")
    assert str(largest.relative_to(project)) in opened, opened
    _, opened, cpu_again = _repro_watched(project, tmp_path / "opened-3.json")
    assert opened == [], opened
    # DVC's own overhead for 23 stages and 650 dependencies: 1.6-3.0 CPU-s on this 2-core machine alone, minutes
    # apart, for the same no-op. CPU seconds, not wall: the other xdist worker's threads share the 2 cores. The
    # bound catches a gross regression; the checks above hold the causes.
    assert min(cpu, cpu_again) < 4.0, (cpu, cpu_again)


def test_changing_one_target_reruns_only_that_target(project):
    with edited_params(project, "      ratio: 0.6\n", "      ratio: 0.8\n"):
        proc = dvc(["repro"], project)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert stages_run(proc) == {"check-params", "build@ov-int4", "validate@ov-int4", "package@ov-int4", "report"}


def test_changing_a_validation_knob_reruns_only_validation(project):
    with edited_params(project, "  timed_runs: 1\n", "  timed_runs: 2\n"):
        proc = dvc(["repro"], project)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        ran = stages_run(proc)
        # a speed knob: every validation again, but neither a build nor the fp32 reference (13 min at full size)
        assert {s for s in ran if s.startswith("validate@")} >= {"validate@ov-int4", "validate@ort-cpu-int4"}, ran
        assert all(s.startswith(("validate@", "package@")) or s in ("report", "check-params") for s in ran), ran


def test_impossible_gate_fails_repro_with_one_line_and_keeps_other_results(project):
    others = {
        p.parent.name: p.read_bytes()
        for p in (project / "artifacts/validation").glob("*/metrics.json")
        if p.parent.name != "ov-int4"
    }
    impossible = "      teacher_forced_agreement_min: 1.0\n      ms_per_token_max: 0.000001\n"
    with edited_params(project, "      teacher_forced_agreement_min: 0.80\n", impossible):
        proc = dvc(["repro"], project)
        assert proc.returncode != 0
        lines = [line for line in proc.stderr.splitlines() if "GATE FAILED" in line]
        assert len(lines) == 1, proc.stderr
        assert (
            "ov-int4: teacher_forced_agreement = " in lines[0]
            and "(targets.ov-int4.gates.teacher_forced_agreement_min)" in lines[0]
        )
        assert "Traceback" not in proc.stderr
        kept = json.loads((project / "artifacts/validation/ov-int4/metrics.json").read_text())
        assert kept["gates"]["passed"] is False  # the failing target's metrics are there to inspect
        for name, data in others.items():
            assert (project / f"artifacts/validation/{name}/metrics.json").read_bytes() == data, name


def test_report_renders_in_headless_chromium(project, tmp_path):
    page = project / "artifacts/report/report.html"
    dom = browser.dump_dom(page, tmp_path / "profile")
    params = __import__("yaml").safe_load((project / "params.yaml").read_text())
    for name, t in params["targets"].items():
        row = re.search(rf"<tr data-target=\"{re.escape(name)}\">(.*?)</tr>", dom, re.S)
        assert row, name
        cells = row.group(1)
        if t["enabled"]:
            label = json.loads((project / f"artifacts/validation/{name}/metrics.json").read_text())["device_label"]
            assert __import__("html").escape(label, quote=False) in cells, (name, label)
        else:
            assert "disabled" in cells
    assert "proxy: NPU IR on the OpenVINO CPU device" in dom
    assert "DirectML graph on ONNX Runtime" in dom
    shot = browser.screenshot(
        page, tmp_path / "profile", Path(os.environ.get("AIPC_SCREENSHOT_DIR", tmp_path)) / "report.png"
    )
    assert shot.is_file() and shot.stat().st_size > 20_000


MEASURED = re.compile(r'"(\w*seconds|peak_rss_bytes|started_at|host)"')


def test_what_a_run_measured_is_in_the_run_log_not_in_what_later_stages_depend_on(project):
    """The shared IR, the builds and the reference hold no seconds, RSS, host or time (every later stage depends
    on their hash); each stage's run log has them, and `aipc runs --json` reads them."""
    import subprocess
    import sys

    for folder in (
        "artifacts/ov-ir",
        "artifacts/reference",
        *(f"artifacts/targets/{t}" for t in os.listdir(project / "artifacts/targets")),
    ):
        for f in (project / folder).rglob("*.json*"):
            if f.name not in ("tokenizer.json", "tokenizer_config.json"):
                assert not MEASURED.search(f.read_text()), f"{f} records a measurement"
    lock = __import__("yaml").safe_load((project / "dvc.lock").read_text())["stages"]
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "runs", "--json"], cwd=project, capture_output=True,
                          text=True, check=True)  # fmt: skip
    runs = {r["stage"]: r for r in json.loads(proc.stdout)}
    assert set(runs) >= set(lock), set(lock) - set(runs)
    assert runs["build@ov-int4"]["seconds"] > 0 and runs["build@ov-int4"]["peak_rss_bytes"] > 2**20
    assert runs["reference"]["details"]["generation"] > 0 and runs["reference"]["host"]["logical_cpus"] >= 1
