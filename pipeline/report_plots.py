"""Scatter plots for the report as self-contained SVG: axes, ticks, points and labels that do not collide.

``scatter`` computes every coordinate (a view: numbers and strings only); ``templates/scatter.svg.j2``
draws it. Labels are placed where they cover no other label and no point, since targets cluster (the int4
variants often sit within a few pixels of each other).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

WIDTH, HEIGHT, PAD = 520, 300, 56
LABEL_CHAR_W, LABEL_H = 6.5, 12.0  # 11 px sans-serif, generous


@dataclass
class Point:
    x: float
    y: float
    name: str
    label_x: float = 0.0
    label_y: float = 0.0
    anchor: str = "start"
    dim: bool = False


@dataclass
class Scatter:
    xlabel: str
    ylabel: str
    width: int = WIDTH
    height: int = HEIGHT
    pad: int = PAD
    yticks: list[tuple[float, str]] = field(default_factory=list)  # (y pixel, text)
    xticks: list[tuple[float, str]] = field(default_factory=list)  # (x pixel, text)
    points: list[Point] = field(default_factory=list)
    line: tuple[float, float, float, float] | None = None  # an optional (x1, y1, x2, y2) guide line
    empty: bool = False


def scatter(
    rows: list[dict[str, Any]],
    x: str,
    y: str,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    hline: float | None = None,
) -> Scatter:
    """The plot of ``rows[i][x]`` against ``rows[i][y]``, one labelled point per row with both values
    (``dim`` rows greyed); ``hline``: a dashed horizontal line at that y, e.g. a gate, kept inside the axes."""
    pts = [(r[x], r[y], r["target"], bool(r.get("dim"))) for r in rows if r.get(x) is not None and r.get(y) is not None]
    view = Scatter(xlabel=xlabel, ylabel=ylabel)
    if not pts:
        view.empty = True
        return view

    def tx(v: float) -> float:
        return math.log10(v) if logx and v > 0 else v

    xs = [tx(p[0]) for p in pts]
    ys = [p[1] for p in pts] + ([hline] if hline is not None else [])
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.05, y1 + 0.05
    mx, my = (x1 - x0) * 0.1, (y1 - y0) * 0.15
    x0, x1, y0, y1 = x0 - mx, x1 + mx, y0 - my, y1 + my
    w, h, pad = WIDTH, HEIGHT, PAD

    def px(v: float) -> float:
        return pad + (tx(v) - x0) / (x1 - x0) * (w - 2 * pad)

    def py(v: float) -> float:
        return h - pad + (-(v - y0) / (y1 - y0)) * (h - 2 * pad)

    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        view.yticks.append((py(yv), f"{yv:.3g}"))
        xv = x0 + (x1 - x0) * i / 4
        view.xticks.append((pad + (w - 2 * pad) * i / 4, f"{10**xv if logx else xv:.3g}"))
    if hline is not None:
        view.line = (pad, py(hline), w - pad, py(hline))
    centres = [(px(xv), py(yv), name) for xv, yv, name, _ in pts]
    for (lx, ly, anchor), (cx, cy, name), p in zip(place_labels(centres, w), centres, pts, strict=True):
        view.points.append(Point(cx, cy, name, lx, ly, anchor, dim=p[3]))
    return view


def place_labels(centres: list[tuple[float, float, str]], width: float) -> list[tuple[float, float, str]]:
    """Put each point's label beside it where it covers no other label and no point: right, left, then the
    four diagonals, then further out; returns the text position and anchor for each point."""
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
            if box[0] >= 0 and box[2] <= width and not any(overlap(box, b) for b in taken):
                choice = (cx + ax, cy + ay, anchor, box)
                break
        if choice is None:  # nowhere free: the first spot, overlapping
            ax, ay, _ = spots[0]
            choice = (cx + ax, cy + ay, "start", (cx + ax, cy + ay - LABEL_H + 2, cx + ax + tw, cy + ay + 2))
        taken.append(choice[3])
        out.append(choice[:3])
    return out


def overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return not (a[2] <= b[0] or a[0] >= b[2] or a[3] <= b[1] or a[1] >= b[3])


def svg(view: Scatter) -> str:
    """The plot as a standalone SVG element."""
    from pipeline.templating import render_macro

    return str(render_macro("scatter.svg.j2", "scatter", view))
