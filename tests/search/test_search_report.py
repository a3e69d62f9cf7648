"""The search report: every point, the front and the gate line drawn, the chosen point named with why."""

from __future__ import annotations

import html
import json
import re

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


PROBE = """<pre id="probe"></pre><script>
const px = (el) => { const b = el.getBoundingClientRect(); return [b.width, b.height]; };
const row = (name) => document.querySelector(`tr[data-point="${name}"]`);
const style = (el) => getComputedStyle(el);
document.getElementById("probe").textContent = JSON.stringify({
  chosen_bg: style(row("search-ov-int4-b").cells[0]).backgroundColor,
  dominated_fg: style(row("search-ov-int4-c").cells[0]).color,
  failing_fg: style(row("search-ov-int4-d").cells[0]).color,
  front_fg: style(row("search-ov-int4-a").cells[0]).color,
  fail_badge: style(row("search-ov-int4-d").querySelector(".FAIL")).color,
  svgs: [...document.querySelectorAll(".plots svg")].map(px),
  dots: [...document.querySelectorAll(".plots circle")].map((c) => ({
    fill: style(c).fill, inside: c.getBBox().width > 0 &&
      c.getBoundingClientRect().right <= c.ownerSVGElement.getBoundingClientRect().right + 0.5 &&
      c.getBoundingClientRect().left >= c.ownerSVGElement.getBoundingClientRect().left - 0.5 })),
  gates: [...document.querySelectorAll('.plots line[stroke-dasharray]')].map(px),
  chosen_text: document.getElementById("chosen").innerText,
});
</script>"""


def test_search_page_renders_in_headless_chromium(tmp_path):
    """What a user sees: the chosen row highlighted, dominated and failing rows grey, every point drawn inside its
    plot in the right colour, the gate line visible on both plots."""
    from tests.support import browser

    write(_result(), tmp_path, gate=0.25)
    page = tmp_path / "probe.html"
    page.write_text((tmp_path / "search.html").read_text().replace("</body>", PROBE + "</body>"))
    dom = browser.dump_dom(page, tmp_path / "profile")
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found and found.group(1), dom[-2000:]
    seen = json.loads(html.unescape(found.group(1)))
    assert seen["chosen_bg"] == "rgb(221, 244, 255)"
    grey = "rgb(140, 149, 159)"
    assert seen["dominated_fg"] == grey and seen["failing_fg"] == grey and seen["front_fg"] != grey
    assert seen["fail_badge"] == "rgb(207, 34, 46)"
    assert len(seen["svgs"]) == 2 and all(w > 200 and h > 150 for w, h in seen["svgs"])
    assert len(seen["dots"]) == 8 and all(d["inside"] for d in seen["dots"])
    blue, light = "rgb(31, 111, 235)", "rgb(177, 184, 192)"
    assert sorted(d["fill"] for d in seen["dots"]) == sorted([blue] * 4 + [light] * 4)  # a, b on the front; c, d not
    assert len(seen["gates"]) == 2 and all(max(w, h) > 50 for w, h in seen["gates"])
    assert seen["chosen_text"].startswith("Chosen: p2")
    shot = browser.screenshot(tmp_path / "search.html", tmp_path / "profile", tmp_path / "search.png", "1200,1400")
    assert shot.stat().st_size > 20_000
