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
    assert set(results["decode"]) >= {"ov-int4", "ort-cpu-int4"} and all(
        d["ms_per_token"] > 0 for d in results["decode"].values()
    )
    md = bench.markdown(results, "aipc bench")
    assert "| ov-int4 |" in md and "ratio" in md
    assert not (tmp_path / "work").exists()  # cleaned up
    bench.write_results(results, tmp_path / "docs", "aipc bench")
    assert json.loads((tmp_path / "docs/benchmarks.json").read_text())["steps"]


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
