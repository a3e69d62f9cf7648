"""The search's report: the points, the front of size × ms/token × quality, the gate line and the choice, as
Markdown and as an HTML page in the validation report's style (``templates/search.*.j2``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.report_plots import scatter
from pipeline.search.run import SearchResult
from pipeline.templating import render

QUALITY_LABEL = {"kl": "KL to the reference (nats/token)", "perplexity": "held-out perplexity change"}


def view(result: SearchResult, gate: float | None) -> dict[str, Any]:
    """Plain values for the templates: one row per point (short id p1…pN on the plots), the plots, the choice."""
    rows = []
    for i, p in enumerate(result.points, 1):
        rows.append(
            {
                "id": f"p{i}",
                "target": f"p{i}",  # the plot's label
                "name": p.name,
                "label": p.label,
                "size_mb": p.size_bytes / 1e6,
                "ms_per_token": p.ms_per_token,
                "quality": p.quality,
                "passed": p.passed,
                "on_front": p.on_front,
                "chosen": p.name == result.chosen,
                "dim": not p.on_front or not p.passed,
            }
        )
    qlabel = QUALITY_LABEL[result.quality]
    plots = [
        scatter(rows, "size_mb", "quality", "size on disk (MB)", qlabel, hline=gate),
        scatter(rows, "ms_per_token", "quality", "ms per output token", qlabel, hline=gate),
    ]
    chosen = next((r for r in rows if r["chosen"]), None)
    return {"r": result, "rows": rows, "plots": plots, "chosen": chosen, "gate": gate, "qlabel": qlabel}


def write(result: SearchResult, out_dir: Path, gate: float | None) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    v = view(result, gate)
    paths = [result.write(out_dir)]
    for name in ("search.md", "search.html"):
        path = out_dir / name
        path.write_text(render(f"{name}.j2", **v), encoding="utf-8")
        paths.append(path)
    return paths
