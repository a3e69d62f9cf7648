"""The search report: every point, the front and the gate line drawn, the chosen point named with why."""

from __future__ import annotations

from pipeline.search import pareto
from pipeline.search.report import write
from pipeline.search.run import PointResult, SearchResult


def _result() -> SearchResult:
    raw = [  # name, size, ms, kl, passed
        ("search-ov-int4-a", 2_800_000, 0.80, 0.012, True),
        ("search-ov-int4-b", 3_400_000, 0.85, 0.004, True),
        ("search-ov-int4-c", 3_500_000, 0.90, 0.006, True),  # dominated by b
        ("search-ov-int4-d", 2_500_000, 0.79, 0.400, False),  # smallest, fails the KL gate
    ]
    measured = [pareto.Measured(n, n[-1], s, ms, q, ok) for n, s, ms, q, ok in raw]
    front = {m.name for m in pareto.front(measured)}
    chosen = pareto.choose(measured, "faithful")
    assert chosen is not None
    return SearchResult(
        target="ov-int4", family="openvino", objective="faithful", quality="kl", baseline="0123456789abcdef",
        points=[PointResult(name=m.name, label=f"ratio={m.label}", overrides={"ratio": 1.0}, rev="r", size_bytes=m.size_bytes,
                            ms_per_token=m.ms_per_token, quality=m.quality, passed=m.passed, on_front=m.name in front)
                for m in measured],
        excluded=[], chosen=chosen.name, why=pareto.why(chosen, measured, "faithful"), seconds=12.0, ran=4,
    )  # fmt: skip


def test_report_shows_front_gate_and_choice(tmp_path):
    result = _result()
    paths = write(result, tmp_path, gate=0.25)
    assert [p.name for p in paths] == ["search.json", "search.md", "search.html"]
    assert SearchResult.read(tmp_path) == result
    md = (tmp_path / "search.md").read_text()
    assert "**Chosen: p2**" in md and "the closest to the reference of the 3 points (of 4)" in md
    assert "| p3 | `ratio=c` | 3.50 | 0.90 | 0.006 | pass | dominated |" in md
    assert "| p4 | `ratio=d` | 2.50 | 0.79 | 0.4 | FAIL | yes |" in md
    html = (tmp_path / "search.html").read_text()
    assert html.count("<svg") == 2 and html.count('stroke-dasharray="4 3"') == 2  # the gate, on both plots
    assert 'data-point="search-ov-int4-b" class="chosen ' in html
    assert 'data-point="search-ov-int4-c" class=" dominated"' in html
