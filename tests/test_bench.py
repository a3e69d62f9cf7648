"""The benchmark harness on the embedded model (the full-size run is `aipc bench`, marked heavy)."""

from __future__ import annotations

import json
import os

import pytest

from pipeline import bench
from tests.conftest import ROOT


def test_harness_on_the_embedded_model(embedded_dir, tmp_path):
    results = bench.run_bench(
        ROOT, tmp_path / "work", model=embedded_dir, keep=False, need_ram=1 * bench.GiB, need_disk=1 * bench.GiB
    )
    names = {(s["kind"], s["name"]) for s in results["steps"]}
    for t in bench.TARGETS:
        assert ("anchor", t) in names and ("project", f"build@{t}") in names
    assert all(
        s["returncode"] == 0 and s["wall_s"] > 0 and s["peak_rss_bytes"] > 0 and s["output_bytes"] > 0
        for s in results["steps"]
    )
    summary = bench.summarize(results)
    assert len(summary["rows"]) == 5 and all(r["same_weights"] for r in summary["rows"]), [
        (r["target"], r["anchor"]["weights_sha256"], r["project"]["weights_sha256"]) for r in summary["rows"]
    ]
    assert results["bandwidth_bytes_per_s"] > 1e9
    assert results["bandwidth_1_thread_bytes_per_s"] > 1e8
    assert set(results["decode"]) >= {"ov-int4", "ort-cpu-int4"} and all(
        d["ms_per_token"] > 0 and d["ms_per_token_1_thread"] > 0 for d in results["decode"].values()
    )
    md = bench.markdown(results, "aipc bench")
    assert "| ov-int4 |" in md and "ratio" in md
    assert not (tmp_path / "work").exists()  # cleaned up
    bench.write_results(results, tmp_path / "docs", "aipc bench")
    assert json.loads((tmp_path / "docs/benchmarks.json").read_text())["steps"]


def _decode_results(one_thread_ms: float, bw1: float) -> dict:
    return {
        "bandwidth_bytes_per_s": 28e9,
        "bandwidth_1_thread_bytes_per_s": bw1,
        "decode": {"ov-int4": {"ms_per_token": 120.0, "ms_per_token_1_thread": one_thread_ms}},
    }


def test_decode_reading_tells_compute_bound_from_memory_bound():
    compute = " ".join(bench._decode_reading(_decode_results(230.0, 22e9)))
    assert "ov-int4 ×1.92" in compute and "is compute" in compute
    memory = " ".join(bench._decode_reading(_decode_results(130.0, 22e9)))
    assert "do not single out compute" in memory
    # one thread cannot read the bandwidth: a slowdown proves nothing about compute
    assert "do not single out compute" in " ".join(bench._decode_reading(_decode_results(230.0, 8e9)))


def test_build_reading_only_when_the_goal_is_missed():
    def step(wall: float, cpu: float) -> dict:
        return {"wall_s": wall, "cpu_s": cpu}

    rows = [{"anchor": step(100, 150), "project": step(80, 120), "same_weights": True}]
    missed = {"rows": rows, "ov_ir": step(20, 20), "ratio": 1.0, "project_wall_s": 100.0}
    text = " ".join(bench._build_reading(missed, {"logical_cpus": 2}))
    assert "anchors 150 s, project 140 s (ratio 0.93)" in text and "1.4 of the machine's 2" in text
    assert bench._build_reading(dict(missed, ratio=0.5), {"logical_cpus": 2}) == []


def test_resource_check_refuses_before_work(tmp_path):
    from pipeline.errors import ResourceError

    with pytest.raises(ResourceError, match="not enough disk"):
        bench.run_bench(ROOT, tmp_path / "w", need_ram=1, need_disk=10**15)


@pytest.mark.heavy
def test_full_size_benchmark(tmp_path):
    """The real thing (~40 min, ~70 GB disk): `AIPC_HEAVY=1 pytest -m heavy`."""
    results = bench.run_bench(ROOT, tmp_path / "work")
    bench.write_results(results, ROOT / "docs", "AIPC_HEAVY=1 pytest -m heavy tests/test_bench.py")
    summary = bench.summarize(results)
    assert all(r["same_weights"] for r in summary["rows"])
    assert os.path.exists(ROOT / "docs" / "benchmarks.md")
