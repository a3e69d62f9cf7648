"""The benchmark harness on the embedded model (the full-size run is `aipc bench`, marked heavy)."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from pipeline.bench import TARGETS, GiB, render
from pipeline.bench.run import run_bench
from tests.conftest import ROOT


def test_harness_on_the_embedded_model(embedded_dir, tmp_path):
    results = run_bench(ROOT, tmp_path / "work", model=embedded_dir, keep=False, need_ram=1 * GiB, need_disk=1 * GiB)
    names = {(s["kind"], s["name"]) for s in results["steps"]}
    for t in TARGETS:
        assert ("anchor", t) in names and ("project", f"build@{t}") in names
    assert all(
        s["returncode"] == 0 and s["wall_s"] > 0 and s["peak_rss_bytes"] > 0 and s["output_bytes"] > 0
        for s in results["steps"]
    )
    summary = render.summarize(results)
    assert len(summary["rows"]) == 5 and all(r["same_weights"] for r in summary["rows"]), [
        (r["target"], r["anchor"]["weights_sha256"], r["project"]["weights_sha256"]) for r in summary["rows"]
    ]
    assert results["bandwidth_bytes_per_s"] > 1e9
    assert results["bandwidth_1_thread_bytes_per_s"] > 1e8
    assert set(results["decode"]) >= {"ov-int4", "ort-cpu-int4"} and all(
        d["ms_per_token"] > 0 and d["ms_per_token_1_thread"] > 0 for d in results["decode"].values()
    )
    md = render.markdown(results, "aipc bench")
    assert "| ov-int4 |" in md and "ratio" in md
    # the calibrated defaults have no offline optimum-cli anchor: compared as their data-free twins, same weights
    assert results["data_free_twins"] == ["ov-int4", "ov-npu-int4"] and "data-free twins" in md
    assert not (tmp_path / "work").exists()  # cleaned up
    render.write_results(results, tmp_path / "docs", "aipc bench")
    assert json.loads((tmp_path / "docs/benchmarks.json").read_text())["steps"]


def _decode_results(one_thread_ms: float) -> dict:
    # 2.8 GB per token: 100 ms bound at 28 GB/s, 200 ms on one thread's 14 GB/s
    return {
        "bandwidth_bytes_per_s": 28e9,
        "bandwidth_1_thread_bytes_per_s": 14e9,
        "decode": {"ov-int4": {"ms_per_token": 130.0, "ratio": 1.3, "ms_per_token_1_thread": one_thread_ms,
                               "weight_bytes_per_token": 2.8e9}},
    }  # fmt: skip


def test_decode_reading_sets_one_thread_against_its_own_bound():
    near = " ".join(render.decode_reading(_decode_results(220.0)))
    assert "One thread reads 14.0 GB/s (50% of all cores' 28.0 GB/s)" in near
    assert "ov-int4 1.10× (all cores 1.30×)" in near and "cores share the work" in near
    far = " ".join(render.decode_reading(_decode_results(300.0)))
    assert "ov-int4 1.50×" in far and "even on one thread" in far and "share the work" not in far


def test_build_reading_only_when_the_goal_is_missed():
    def step(wall: float, cpu: float) -> dict:
        return {"wall_s": wall, "cpu_s": cpu}

    rows = [{"anchor": step(100, 150), "project": step(80, 120), "same_weights": True}]
    missed = {"rows": rows, "ov_ir": step(20, 20), "ratio": 1.0, "project_wall_s": 100.0}
    text = " ".join(render.build_reading(missed, {"logical_cpus": 2}))
    assert "anchors 150 s, project 140 s (ratio 0.93)" in text and "on average 1.4 of the machine's 2" in text
    assert render.build_reading(dict(missed, ratio=0.5), {"logical_cpus": 2}) == []


def test_an_anchor_that_did_not_finish_is_shown_and_not_counted():
    """The stock ORT builder's k-quant at Phi-3-mini size was killed by the kernel at 22.9 GiB (24 GiB machine):
    its wall time is only a lower bound and it left nothing to hash, so it must not enter the ratio."""
    results = json.loads((ROOT / "docs" / "benchmarks.json").read_text())
    steps = {(s["kind"], s["name"]): s for s in results["steps"]}
    project = steps[("project", "build@ort-cpu-int4")]  # first a finished anchor, as a bigger machine has it
    steps[("anchor", "ort-cpu-int4")].update(returncode=0, wall_s=900.0, weights_sha256=project["weights_sha256"])
    full = render.summarize(results)
    gone = next(r for r in full["rows"] if r["target"] == "ort-cpu-int4")
    gone_anchor_s, gone_project_s = gone["anchor"]["wall_s"], gone["project"]["wall_s"]
    for s in results["steps"]:
        if (s["kind"], s["name"]) == ("anchor", "ort-cpu-int4"):
            s.update(returncode=-9, wall_s=2274.0, peak_rss_bytes=int(22.9 * GiB), weights_sha256={})
    cut = render.summarize(results)
    assert [r["target"] for r in cut["not_compared"]] == ["ort-cpu-int4"]
    assert "ort-cpu-int4" not in [r["target"] for r in cut["rows"]] and len(cut["rows"]) == len(full["rows"]) - 1
    assert cut["anchor_wall_s"] == pytest.approx(full["anchor_wall_s"] - gone_anchor_s)
    assert cut["project_wall_s"] == pytest.approx(full["project_wall_s"] - gone_project_s)
    tools = {b["tool"]: b for b in cut["by_tool"]}
    assert set(tools) == {"optimum-cli", "onnxruntime-genai builder"}
    assert sum(b["anchor_wall_s"] for b in cut["by_tool"]) == cut["anchor_wall_s"]
    md = " ".join(render.markdown(results, "aipc bench").split())
    assert "| ort-cpu-int4 | killed (signal 9) after 2274 s |" in md and "| not compared | – |" in md
    assert "Not compared: ort-cpu-int4, its anchor did not finish (killed by signal 9, at 22.9 GiB" in md
    assert f"**{len(cut['rows'])} targets compared:" in md


def test_resource_check_refuses_before_work(tmp_path):
    from pipeline.errors import ResourceError

    with pytest.raises(ResourceError, match="not enough disk"):
        run_bench(ROOT, tmp_path / "w", need_ram=1, need_disk=10**15)


@pytest.mark.heavy
def test_full_size_benchmark(tmp_path):
    """The real thing (~40 min, ~70 GB disk): `AIPC_HEAVY=1 pytest -m heavy`."""
    results = run_bench(ROOT, tmp_path / "work")
    render.write_results(results, ROOT / "docs", "AIPC_HEAVY=1 pytest -m heavy tests/bench/test_bench.py")
    summary = render.summarize(results)
    assert all(r["same_weights"] for r in summary["rows"])
    assert os.path.exists(ROOT / "docs" / "benchmarks.md")


def test_the_committed_benchmark_page_is_its_json_rendered():
    """docs/benchmarks.md is what the current template makes of docs/benchmarks.json — also for runs made
    before a field was recorded (the validation phases came after run 4)."""
    results = json.loads((ROOT / "docs" / "benchmarks.json").read_text())
    page = render.markdown(results, results.get("command", "aipc bench"))
    assert page == (ROOT / "docs" / "benchmarks.md").read_text()


def test_main_job_section_breaks_validation_down(repro_project):
    """The main job's validation time, target by target: long-context passes apart from the rest, with the
    speed figures' spread — read from the validation records a real `dvc repro` wrote."""
    from pipeline.bench.main_job import validation_breakdown
    from pipeline.params import load_params

    params = load_params(repro_project / "params.yaml")
    enabled = {n for n in params.targets if params.target(n).enabled}
    breakdown = validation_breakdown(repro_project)
    assert set(breakdown) == enabled
    assert all(v["passed"] and v["long_context_s"] > 0 and v["tpot_ms_p10_p90"] for v in breakdown.values())
    results = json.loads((ROOT / "docs" / "benchmarks.json").read_text())
    stages = [
        {"stage": f"validate@{t}", "wall_s": 100.0, "cpu_s": 90.0, "peak_rss_bytes": GiB, "disk_added_bytes": 0,
         "disk_peak_bytes": 0, "returncode": 0, "predicted_ram_bytes": GiB, "predicted_disk_bytes": 0}
        for t in breakdown
    ]  # fmt: skip
    results["main_job"] = {**results["main_job"], "stages": stages, "validation": breakdown}
    md = " ".join(render.markdown(results, "aipc bench").split())
    for t, v in breakdown.items():
        assert f"| {t} | {v['device']} | 100 s | " in md
    assert f"Validation of the {len(enabled)} targets: 8.3 min" in md, md[-2000:]
    for t, v in breakdown.items():  # the phases' table: start-up is what the stage spent outside them
        startup = 100.0 - sum(v["phases"].values())
        assert f"| {t} | {startup:.0f} | {v['phases']['load']:.0f} | " in md, t


def test_a_steps_peak_counts_its_grandchild_after_a_bigger_step(tmp_path):
    """A stage runs as dvc → python: its peak is a grandchild's. After a bigger earlier step (the benchmark's
    RUSAGE_CHILDREN already higher), a 400 MB grandchild is read from its own high-water mark, not from the
    benchmark's largest child so far nor from its launcher's RSS."""
    import sys

    from pipeline.bench.measure import Step, run_measured

    def step(mb: int, hold: float) -> Step:
        inner = f"b = bytearray({mb} * 2**20); b[::4096] = b'x' * len(b[::4096]); import time; time.sleep({hold})"
        code = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {inner!r}], check=True)"
        return run_measured(Step(f"{mb}", "test", [sys.executable, "-c", code]), tmp_path, tmp_path / "log")

    big = step(800, 0.3)
    small = step(400, 0.3)  # alive for a few samples: a high-water mark is read while the process lives
    assert big.returncode == small.returncode == 0
    assert big.peak_rss_bytes > 800 * 2**20
    assert 400 * 2**20 < small.peak_rss_bytes < big.peak_rss_bytes
    # the step's own high-water mark, not the benchmark's largest child so far (the sampler may miss it)
    assert 400 * 2**20 < small.max_single_rss_bytes < 800 * 2**20


def test_resume_without_a_kept_run_is_one_line_before_any_work(tmp_path):
    import subprocess

    work = tmp_path / "work"
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "aipc"), "bench", "main-job", "--work", str(work), "--resume"],
                          cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, COLUMNS="200"))  # fmt: skip
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"--resume: no kept run in {work}" in " ".join(proc.stderr.split())
    assert not work.exists()  # no model made, no folder left


def test_the_main_jobs_dvc_runs_this_environments_python(monkeypatch):
    """``aipc`` called by path without the environment activated: DVC runs each stage's ``python -m stages.…``
    through the shell, which must find this environment's interpreter (it found none: FileNotFoundError 'dvc'
    after a 7.6 GB model was made)."""
    import subprocess
    import sys

    from pipeline.dvc_tool import dvc_env

    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    env = dvc_env()
    out = subprocess.run(["sh", "-c", 'python -c "import sys; print(sys.prefix)"'], env=env, capture_output=True,
                         text=True)  # fmt: skip
    assert out.stdout.strip() == sys.prefix
    assert subprocess.run(["sh", "-c", "command -v dvc"], env=env, capture_output=True).returncode == 0


def test_the_synthetic_model_borrows_the_embedded_tokenizer_only(embedded_dir, tmp_path, monkeypatch):
    from pipeline import cache
    from pipeline.bench.synthetic import tokenizer_source
    from pipeline.records import SourceRecord

    project = tmp_path / "proj"
    shutil.copytree(embedded_dir, project / "artifacts/source")
    assert SourceRecord.read(project / "artifacts/source").model == "embedded"
    assert tokenizer_source(project) == project / "artifacts/source"
    # another model selected: its source folder is not borrowed, the embedded model's is made in the cache
    record = SourceRecord.read(project / "artifacts/source").model_copy(update={"model": "smollm2-135m"})
    (project / "artifacts/source" / SourceRecord.FILE).write_text(record.model_dump_json())
    monkeypatch.setattr(cache, "bench_tokenizer", lambda: tmp_path / "bench-tokenizer")
    shutil.copytree(embedded_dir, tmp_path / "bench-tokenizer")  # as a first call would have made it
    assert tokenizer_source(project) == tmp_path / "bench-tokenizer"


def test_results_render_reads_the_runs_own_model_and_names_no_local_path(tmp_path):
    """``--results`` re-renders a saved run beside the plan: the model is looked for beside main-job.json (it
    looked under the default --work and then spoke of params.yaml), a missing one is one line naming --model, and
    the page's "Reproduce with" does not carry this copy's folder."""
    import subprocess

    import yaml

    run = tmp_path / "run"
    run.mkdir()
    saved = json.loads((ROOT / "docs" / "benchmarks.json").read_text())["main_job"]
    (run / "main-job.json").write_text(json.dumps(saved))
    aipc = [str(ROOT / ".venv" / "bin" / "aipc"), "bench", "main-job", "--results", str(run / "main-job.json"),
            "--docs", str(tmp_path / "docs")]  # fmt: skip
    env = dict(os.environ, COLUMNS="200")
    proc = subprocess.run(aipc, cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"{run / 'phi3-mini-shaped' / 'config.json'} is missing" in " ".join(proc.stderr.split())
    assert "--model" in proc.stderr and not (tmp_path / "docs").exists()

    model = run / "phi3-mini-shaped"
    model.mkdir()
    published = json.loads((ROOT / "pipeline" / "data" / "published" / "phi-3-mini-4k.json").read_text())
    (model / "config.json").write_text(json.dumps(published["config"]))
    proc = subprocess.run([*aipc, "--model", str(model)], cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = (tmp_path / "docs" / "benchmarks.md").read_text()
    assert "Reproduce with `aipc bench main-job`." in page and str(tmp_path) not in page
    rendered = json.loads((tmp_path / "docs" / "benchmarks.json").read_text())["main_job"]["stages"]
    # beside the plan of the code as it is now (not the figures saved with the run, which a re-set plan changes)
    from pipeline.bench.main_job import full_size_params, repredict

    raw = full_size_params(yaml.safe_load((ROOT / "params.yaml").read_text()), model)
    plan = repredict(saved, raw, model, ROOT)["stages"]
    assert [s["predicted_ram_bytes"] for s in rendered] == [s["predicted_ram_bytes"] for s in plan]
    assert all(s["predicted_ram_bytes"] for s in rendered)
