"""Stage `report`: every target's validation in one place — DVC metrics and plots, Markdown and HTML.

The HTML is self-contained (inline CSS and SVG, no scripts, no network) so it can be attached to a CI run
or a release. For each target it states the device that actually ran it and whether that device was a
stand-in (the DirectML graph on ONNX Runtime's CPU provider, the NPU IR on the OpenVINO CPU device).
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from pipeline import fsutil, layout
from pipeline.fmt import num, pct
from pipeline.params import Params
from pipeline.validate import harness, reference

METRICS = "metrics.json"
PLOTS = "plots.json"
MARKDOWN = "report.md"
HTML = "report.html"


# --------------------------------------------------------------------------- collect


def collect(params: Params, root: Path = layout.ARTIFACTS) -> dict[str, Any]:
    """Reference facts and every target's metrics (or why there are none)."""
    ref_path = layout.reference_dir(root) / "reference.json"
    reference = fsutil.read_json(ref_path) if ref_path.is_file() else {}
    targets = {}
    for name, target in params.targets.items():
        path = layout.validation_dir(name, root) / "metrics.json"
        if path.is_file():
            targets[name] = fsutil.read_json(path)
        else:
            targets[name] = {"target": name, "family": target.family, "status": "not validated"}
        build = layout.target_dir(name, root) / "target.json"
        if build.is_file():
            rec = fsutil.read_json(build)
            targets[name]["build_seconds"] = rec.get("seconds")
            targets[name]["build_peak_rss_bytes"] = rec.get("peak_rss_bytes")
            targets[name]["description"] = target.description
            targets[name]["build_facts"] = _build_summary(rec)
    return {"model": params.model, "reference": reference, "targets": targets}


def _build_summary(rec: dict[str, Any]) -> str:
    b = rec.get("build") or {}
    if "weights" in b:
        counts = b["weights"].get("counts", {})
        parts = [f"{n} {p}" for p, n in counts.items()]
        npu = b.get("npu_compile", {}).get("summary")
        return ", ".join(parts) + (f"; npu_compile: {npu}" if npu else "")
    if "graph" in b:
        g = b["graph"]
        return f"{g.get('quantized_matmuls', 0)} MatMulNBits, {g.get('float_matmuls', 0)} float MatMul; providers {b.get('providers')}"
    return rec.get("status", "")


def flat_metrics(data: dict[str, Any]) -> dict[str, Any]:
    """The numbers DVC tracks (``dvc metrics show``/``diff``)."""
    out: dict[str, Any] = {"reference": {"heldout_perplexity": data["reference"].get("heldout_perplexity")}}
    for name, r in data["targets"].items():
        if r.get("status") != "measured":
            out[name] = {"status": r.get("status")}
            continue
        q, s = r["quality"], r["speed"]
        out[name] = {
            "device": r["device_label"],
            "gates_passed": r["gates"]["passed"],
            "exact_match_rate": q["exact_match_rate"],
            "teacher_forced_agreement": q["teacher_forced_agreement"],
            "perplexity": q["perplexity"],
            "perplexity_increase": q["perplexity_increase"],
            "similarity": q["similarity"],
            "tokenizer_match_rate": q["tokenizer_match_rate"],
            "ttft_ms": s["ttft_ms_median"],
            "ms_per_token": s["tpot_ms_median"],
            "tokens_per_second": s["tokens_per_second"],
            "size_mb": s["size_bytes"] / 1e6,
            "peak_rss_mb": s["peak_rss_bytes"] / 1e6,
            "load_seconds": s["load_seconds"],
        }
    return out


def plot_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, r in data["targets"].items():
        if r.get("status") != "measured":
            continue
        q, s = r["quality"], r["speed"]
        rows.append(
            {
                "target": name,
                "device": r["device_label"],
                "size_mb": round(s["size_bytes"] / 1e6, 3),
                "teacher_forced_agreement": q["teacher_forced_agreement"],
                "perplexity_increase_pct": None if q["perplexity_increase"] is None else 100 * q["perplexity_increase"],
                "ms_per_token": s["tpot_ms_median"],
            }
        )
    return rows


# --------------------------------------------------------------------------- render


COLUMNS = [
    ("device", "device that ran it"),
    ("gates", "gates"),
    ("exact", "exact match"),
    ("tf", "teacher-forced top-1"),
    ("ppl", "held-out ppl (Δ)"),
    ("sim", "answer similarity"),
    ("tok", "tokenizer ids match"),
    ("ttft", "TTFT ms"),
    ("tpot", "ms/token"),
    ("size", "size MB"),
    ("rss", "peak RSS MB"),
]


def table_rows(data: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for name, r in data["targets"].items():
        row = {"target": name}
        if r.get("status") != "measured":
            row.update({k: "" for k, _ in COLUMNS})
            row["device"] = r.get("status", "")
            row["gates"] = "—"
            rows.append(row)
            continue
        q, s = r["quality"], r["speed"]
        ppl = q["perplexity"]
        row.update(
            {
                "device": r["device_label"],
                "gates": "pass" if r["gates"]["passed"] else "FAIL",
                "exact": pct(q["exact_match_rate"]),
                "tf": pct(q["teacher_forced_agreement"]),
                "ppl": "n/a" if ppl is None else f"{ppl:.3f} ({100 * q['perplexity_increase']:+.2f}%)",
                "sim": num(q["similarity"], 3),
                "tok": pct(q["tokenizer_match_rate"]),
                "ttft": num(s["ttft_ms_median"], 2),
                "tpot": num(s["tpot_ms_median"], 3),
                "size": num(s["size_bytes"] / 1e6, 2),
                "rss": num(s["peak_rss_bytes"] / 1e6, 0),
            }
        )
        rows.append(row)
    return rows


def markdown(data: dict[str, Any]) -> str:
    ref = data["reference"]
    lines = [
        f"# Validation report — model `{data['model']}`",
        "",
        f"Reference: transformers fp32 on {ref.get('device', '?')}, {ref.get('prompts', '?')} prompts, "
        f"{ref.get('max_new_tokens', '?')} new tokens, held-out perplexity {num(ref.get('heldout_perplexity'), 3)} "
        f"over {ref.get('heldout_tokens', '?')} tokens.",
        "",
        "| target | " + " | ".join(h for _, h in COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for row in table_rows(data):
        lines.append(f"| {row['target']} | " + " | ".join(row[k] for k, _ in COLUMNS) + " |")
    lines += ["", "## Where each target ran", ""]
    for name, r in data["targets"].items():
        if r.get("status") == "measured":
            where = r["device_label"]
            lines.append(f"- **{name}** — intended for {r['intended_device']}; ran on **{where}**.")
            for f in r["gates"]["failures"]:
                lines.append(f"  - gate failed: {f}")
        else:
            lines.append(f"- **{name}** — {r.get('status')}.")
    lines.append("")
    return "\n".join(lines)


def _svg_scatter(rows: list[dict[str, Any]], x: str, y: str, xlabel: str, ylabel: str, logx: bool = False) -> str:
    pts = [(r[x], r[y], r["target"]) for r in rows if r.get(x) is not None and r.get(y) is not None]
    w, h, pad = 520, 300, 56
    if not pts:
        return f'<svg width="{w}" height="{h}" role="img"><text x="20" y="40">no data for {html.escape(ylabel)}</text></svg>'

    def tx(v: float) -> float:
        return math.log10(v) if logx and v > 0 else v

    xs = [tx(p[0]) for p in pts]
    ys = [p[1] for p in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.05, y1 + 0.05
    mx, my = (x1 - x0) * 0.1, (y1 - y0) * 0.15
    x0, x1, y0, y1 = x0 - mx, x1 + mx, y0 - my, y1 + my

    def px(v: float) -> float:
        return pad + (tx(v) - x0) / (x1 - x0) * (w - 2 * pad)

    def py(v: float) -> float:
        return h - pad + (-(v - y0) / (y1 - y0)) * (h - 2 * pad)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="{html.escape(ylabel)} vs {html.escape(xlabel)}">',
        f'<rect x="{pad}" y="{pad / 2}" width="{w - 2 * pad}" height="{h - 1.5 * pad}" fill="#fafafa" stroke="#ccc"/>',
        f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle" font-size="12">{html.escape(xlabel)}</text>',
        f'<text x="14" y="{h / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 {h / 2})">{html.escape(ylabel)}</text>',
    ]
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        parts.append(f'<text x="{pad - 6}" y="{py(yv) + 4:.1f}" text-anchor="end" font-size="10">{yv:.3g}</text>')
        xv = x0 + (x1 - x0) * i / 4
        label = 10**xv if logx else xv
        parts.append(
            f'<text x="{pad + (w - 2 * pad) * i / 4:.1f}" y="{h - pad + 16}" text-anchor="middle" font-size="10">{label:.3g}</text>'
        )
    centres = [(px(xv), py(yv), name) for xv, yv, name in pts]
    for cx, cy, name in centres:
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="#1f6feb"><title>{html.escape(name)}</title></circle>'
        )
    for (lx, ly, anchor), (_, _, name) in zip(_place_labels(centres, w), centres, strict=True):
        parts.append(
            f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" font-size="11">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


LABEL_CHAR_W, LABEL_H = 6.5, 12.0  # 11 px sans-serif, generous


def _place_labels(centres: list[tuple[float, float, str]], width: float) -> list[tuple[float, float, str]]:
    """Put each point's label beside it where it covers no other label and no point (targets often cluster,
    e.g. the int4 variants): right, left, then the four diagonals, then further out; returns the text position
    and anchor for each point."""
    radius = 6.0
    taken = [(cx - radius, cy - radius, cx + radius, cy + radius) for cx, cy, _ in centres]
    out: list[tuple[float, float, str]] = []
    for cx, cy, name in centres:
        tw = LABEL_CHAR_W * len(name)
        spots = [(8.0, 4.0, "start"), (-8.0, 4.0, "end")]
        for step in (0, 1, 2):
            dy = 7 + step * LABEL_H
            spots += [
                (6.0, -dy, "start"),
                (6.0, dy + LABEL_H - 2, "start"),
                (-6.0, -dy, "end"),
                (-6.0, dy + LABEL_H - 2, "end"),
            ]
        choice = None
        for ax, ay, anchor in spots:
            left = cx + ax if anchor == "start" else cx + ax - tw
            box = (left, cy + ay - LABEL_H + 2, left + tw, cy + ay + 2)
            if box[0] >= 0 and box[2] <= width and not any(_overlap(box, b) for b in taken):
                choice = (cx + ax, cy + ay, anchor, box)
                break
        if choice is None:  # nowhere free: the first spot, overlapping
            ax, ay, _ = spots[0]
            choice = (cx + ax, cy + ay, "start", (cx + ax, cy + ay - LABEL_H + 2, cx + ax + tw, cy + ay + 2))
        taken.append(choice[3])
        out.append(choice[:3])
    return out


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return not (a[2] <= b[0] or a[0] >= b[2] or a[3] <= b[1] or a[1] >= b[3])


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1b1f23}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}
.pass{color:#1a7f37;font-weight:600}.FAIL{color:#cf222e;font-weight:700}
.proxy{background:#fff8c5;padding:1px 4px;border-radius:3px}
.target{border:1px solid #d0d7de;border-radius:6px;padding:10px 14px;margin:14px 0}
.plots svg{margin-right:16px;border:1px solid #eee}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
pre{white-space:pre-wrap;background:#f6f8fa;padding:6px}
"""


def render_html(
    data: dict[str, Any], golden: dict[str, list[dict[str, Any]]], ref_outputs: list[dict[str, Any]]
) -> str:
    e = html.escape
    ref = data["reference"]
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Validation report — {e(data['model'])}</title><style>{CSS}</style></head><body>",
        f"<h1>Validation report — model <code>{e(data['model'])}</code></h1>",
        f"<p>Reference: transformers fp32 on {e(str(ref.get('device', '?')))}; {e(str(ref.get('prompts', '?')))} prompts; "
        f"{e(str(ref.get('max_new_tokens', '?')))} new tokens; held-out perplexity {num(ref.get('heldout_perplexity'), 3)}.</p>",
        "<h2>Summary</h2><table id='summary'><tr><th>target</th>"
        + "".join(f"<th>{e(h)}</th>" for _, h in COLUMNS)
        + "</tr>",
    ]
    for row in table_rows(data):
        cells = []
        for k, _ in COLUMNS:
            v = e(row[k])
            if k == "gates":
                v = f"<span class='{e(row[k])}'>{v}</span>"
            if k == "device" and "proxy" in row[k]:
                v = f"<span class='proxy'>{v}</span>"
            cells.append(f"<td>{v}</td>")
        out.append(f"<tr data-target='{e(row['target'])}'><td><b>{e(row['target'])}</b></td>{''.join(cells)}</tr>")
    out.append("</table>")

    rows = plot_rows(data)
    out.append("<h2>Size, quality and speed</h2><div class='plots'>")
    out.append(
        _svg_scatter(rows, "size_mb", "teacher_forced_agreement", "size on disk (MB)", "teacher-forced top-1 agreement")
    )
    out.append(
        _svg_scatter(
            rows, "ms_per_token", "teacher_forced_agreement", "ms per output token", "teacher-forced top-1 agreement"
        )
    )
    out.append(
        _svg_scatter(rows, "size_mb", "perplexity_increase_pct", "size on disk (MB)", "held-out perplexity change (%)")
    )
    out.append("</div>")

    out.append("<h2>Targets</h2>")
    for name, r in data["targets"].items():
        out.append(f"<div class='target' id='target-{e(name)}'><h3>{e(name)}</h3>")
        if r.get("description"):
            out.append(f"<p>{e(r['description'])}</p>")
        if r.get("status") != "measured":
            out.append(f"<p>Status: <b>{e(str(r.get('status')))}</b></p></div>")
            continue
        proxy = r.get("proxy")
        out.append(
            f"<p>Runtime <code>{e(r['runtime'])}</code>; intended device <b>{e(r['intended_device'])}</b>; "
            f"ran on <b class='device'>{e(r['device'])}</b>"
            + (f" — <span class='proxy'>proxy: {e(proxy)}</span>" if proxy else "")
            + "</p>"
        )
        if r.get("build_facts"):
            out.append(f"<p>Build: {e(r['build_facts'])}; {num(r.get('build_seconds'), 1)} s, peak RSS "
                       f"{num((r.get('build_peak_rss_bytes') or 0) / 1e6, 0)} MB</p>")  # fmt: skip
        q = r["quality"]
        status = "pass" if r["gates"]["passed"] else "FAIL"
        out.append(f"<p>Gates: <span class='{status}'>{status}</span></p>")
        for f in r["gates"]["failures"]:
            out.append(f"<p class='FAIL'>{e(f)}</p>")
        out.append(
            "<table><tr><th>prompt</th><th>first divergence</th><th>reference answer</th><th>this target's answer</th></tr>"
        )
        for i, (ref_row, div) in enumerate(zip(ref_outputs, q["first_divergence"], strict=False)):
            mine = golden.get(name, [])
            text = mine[i]["text"] if i < len(mine) else ""
            out.append(
                f"<tr><td>{e(ref_row['prompt'])}</td><td>{'identical' if div is None else f'token {div}'}</td>"
                f"<td>{e(ref_row['text'])}</td><td>{e(text)}</td></tr>"
            )
        out.append("</table></div>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(params: Params, out_dir: Path, root: Path = layout.ARTIFACTS) -> dict[str, Any]:
    data = collect(params, root)
    golden = {}
    for name in params.targets:
        p = layout.validation_dir(name, root) / harness.GOLDEN
        if p.is_file():
            golden[name] = fsutil.read_jsonl(p)
    ref_path = layout.reference_dir(root) / reference.OUTPUTS
    ref_outputs = fsutil.read_jsonl(ref_path) if ref_path.is_file() else []
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / METRICS).write_text(json.dumps(flat_metrics(data), indent=2) + "\n", encoding="utf-8")
    (out_dir / PLOTS).write_text(json.dumps(plot_rows(data), indent=2) + "\n", encoding="utf-8")
    (out_dir / MARKDOWN).write_text(markdown(data), encoding="utf-8")
    (out_dir / HTML).write_text(render_html(data, golden, ref_outputs), encoding="utf-8")
    return data
