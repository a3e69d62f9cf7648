"""Report rendering pieces that need no pipeline run (the full report is tested in test_pipeline_dvc)."""

from __future__ import annotations

import re

from pipeline import report_plots


def _box(x: float, y: float, anchor: str, name: str) -> tuple[float, float, float, float]:
    tw = report_plots.LABEL_CHAR_W * len(name)
    left = x if anchor == "start" else x - tw
    return left, y - report_plots.LABEL_H + 2, left + tw, y + 2


def test_clustered_point_labels_cover_no_label_and_no_point():
    # the embedded model's int4 targets sit within a few pixels of each other in the perplexity plot
    centres = [
        (75.0, 272.0, "ov-npu-int4"),
        (99.0, 273.0, "ov-int4"),
        (105.0, 279.0, "ort-dml-int4"),
        (300.0, 40.0, "ov-fp16"),
    ]
    boxes = [
        _box(x, y, a, n) for (x, y, a), (_, _, n) in zip(report_plots.place_labels(centres, 520), centres, strict=True)
    ]
    for i, a in enumerate(boxes):
        assert a[0] >= 0 and a[2] <= 520
        for b in boxes[i + 1 :]:
            assert not report_plots.overlap(a, b), (a, b)
        for cx, cy, _ in centres:
            assert not report_plots.overlap(a, (cx - 5, cy - 5, cx + 5, cy + 5)), (a, cx, cy)


def test_scatter_names_every_target():
    rows = [
        {"target": "ov-int4", "size": 2.8, "agree": 0.977},
        {"target": "ov-npu-int4", "size": 2.4, "agree": 0.982},
        {"target": "no-metric", "size": 1.0, "agree": None},
    ]
    svg = report_plots.svg(report_plots.scatter(rows, "size", "agree", "size on disk (MB)", "agreement"))
    labels = re.findall(r'font-size="11">([^<]+)</text>', svg)
    assert sorted(labels) == ["ov-int4", "ov-npu-int4"]


def test_text_in_the_html_documents_is_escaped():
    rows = [{"target": "<script>x</script>", "size": 1.0, "agree": 0.5}]
    svg = report_plots.svg(report_plots.scatter(rows, "size", "agree", "size <MB>", "agreement"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "size &lt;MB&gt;" in svg


def test_an_unreadable_run_log_is_skipped_not_a_failure(tmp_path, caplog):
    """The run log is for people: a truncated or foreign one must not fail the report stage or `aipc runs`."""
    from pipeline import runlog

    with runlog.logged_run("build@ov-int4", tmp_path):
        runlog.note("part", 0.5)
    (tmp_path / "reference.json").write_text('{"stage": "reference", "seco')  # cut mid-write
    (tmp_path / "ov-ir.json").write_text('{"stage": "ov-ir"}')  # another version's
    logs = runlog.read_all(tmp_path)
    assert [r.stage for r in logs] == ["build@ov-int4"] and logs[0].details == {"part": 0.5}
    assert logs[0].seconds >= 0 and logs[0].host.logical_cpus >= 1
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "reference.json is not JSON" in warned and "ov-ir.json is not a run log" in warned
