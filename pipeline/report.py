"""Stage `report`: every target's validation in one place — DVC metrics and plots, Markdown and HTML.

The HTML is self-contained (inline CSS and SVG, no scripts, no network) so it can be attached to a CI run
or a release. For each target it states the device that actually ran it and whether that device was a
stand-in (the DirectML graph on ONNX Runtime's CPU provider, the NPU IR on the OpenVINO CPU device).

``collect`` reads the records; ``COLUMNS`` is the one definition of the summary table (the report and
``aipc report`` both use it); the templates in ``pipeline/templates`` lay out the documents.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import layout
from pipeline.fmt import num, pct, sci
from pipeline.params import Params
from pipeline.records import (
    Divergence,
    GoldenOutput,
    ReferenceOutput,
    ReferenceRecord,
    TargetRecord,
    ValidationResult,
)
from pipeline.report_plots import scatter
from pipeline.templating import render

METRICS = "metrics.json"
PLOTS = "plots.json"
MARKDOWN = "report.md"
HTML = "report.html"


# --------------------------------------------------------------------------- collect


@dataclass
class TargetReport:
    """One target as the report sees it: its validation (if any) and its build record (if any)."""

    name: str
    family: str
    description: str
    result: ValidationResult | None
    build: TargetRecord | None
    golden: list[GoldenOutput]
    # No run log here: the report is a DVC output, and what a run measured (seconds, RSS, host) made its bytes
    # depend on which stage ran last on which machine (found by the fault suite: a full-disk case re-ran a
    # build, and the report re-rendered from the same inputs differed). `aipc runs` shows the costs.

    @property
    def status(self) -> str:
        return self.result.status if self.result is not None else "not validated"

    @property
    def measured(self) -> ValidationResult | None:
        return self.result if self.result is not None and self.result.measured else None

    def divergence(self, prompt: int) -> Divergence | None:
        """Where this target's answer to prompt ``prompt`` left the reference's (None: identical)."""
        r = self.measured
        divergences = (r.quality.divergences if r and r.quality else None) or []
        return next((d for d in divergences if d.prompt == prompt), None)

    def build_summary(self) -> str:
        if self.build is None or self.build.build is None:
            return self.build.status if self.build else ""
        b = self.build.build
        if b.weights is not None:
            parts = ", ".join(f"{n} {p}" for p, n in b.weights.counts.items())
            npu = b.npu_compile.summary if b.npu_compile else None
            return parts + (f"; npu_compile: {npu}" if npu else "")
        if b.graph is not None:
            g = b.graph
            return f"{g.quantized_matmuls} MatMulNBits, {g.float_matmuls} float MatMul; providers {b.providers}"
        return self.build.status


@dataclass
class ReportData:
    model: str
    reference: ReferenceRecord | None
    reference_outputs: list[ReferenceOutput]
    targets: list[TargetReport]


def collect(params: Params, root: Path = layout.ARTIFACTS) -> ReportData:
    """Reference facts and every target's records (or why there are none)."""
    ref_dir = layout.reference_dir(root)
    reference = ReferenceRecord.read(ref_dir) if ReferenceRecord.exists(ref_dir) else None
    ref_outputs = ReferenceOutput.read_all(ref_dir) if reference is not None else []
    targets = []
    for name, target in params.targets.items():
        vdir, tdir = layout.validation_dir(name, root), layout.target_dir(name, root)
        result = ValidationResult.read(vdir) if ValidationResult.exists(vdir) else None
        golden = GoldenOutput.read_all(vdir) if (vdir / GoldenOutput.FILE).is_file() else []
        build = TargetRecord.read(tdir) if TargetRecord.exists(tdir) else None
        targets.append(TargetReport(name, target.family, target.description, result, build, golden))
    return ReportData(params.model, reference, ref_outputs, targets)


def flat_metrics(data: ReportData) -> dict[str, Any]:
    """The numbers DVC tracks (``dvc metrics show``/``diff``)."""
    out: dict[str, Any] = {
        "reference": {"heldout_perplexity": data.reference.heldout_perplexity if data.reference else None}
    }
    for t in data.targets:
        r = t.measured
        if r is None:
            out[t.name] = {"status": t.status}
            continue
        q, s = r.quality, r.speed
        assert q is not None and s is not None
        out[t.name] = {
            "device": r.device_label,
            "gates_passed": r.passed,
            "exact_match_rate": q.exact_match_rate,
            "exact_match_tie_tolerant": q.exact_match_tie_tolerant,
            "ties": q.ties,
            "teacher_forced_agreement": q.teacher_forced_agreement,
            "kl_mean": q.kl_mean,
            "kl_p99": q.kl_p99,
            "kl_max": q.kl_max,
            "perplexity": q.perplexity,
            "perplexity_increase": q.perplexity_increase,
            "similarity": q.similarity,
            "tokenizer_match_rate": q.tokenizer_match_rate,
            "ttft_ms": s.ttft_ms_median,
            "ms_per_token": s.tpot_ms_median,
            "tokens_per_second": s.tokens_per_second,
            "size_mb": s.size_bytes / 1e6,
            "peak_rss_mb": s.peak_rss_bytes / 1e6,
            "load_seconds": s.load_seconds,
            "long_context": {
                str(x.length): {"agreement": x.agreement, "kl_mean": x.kl_mean} if x.status == "measured" else x.status
                for x in r.long_context or []
            },
        }
    return out


def plot_rows(data: ReportData) -> list[dict[str, Any]]:
    rows = []
    for t in data.targets:
        r = t.measured
        if r is None:
            continue
        q, s = r.quality, r.speed
        assert q is not None and s is not None
        rows.append(
            {
                "target": t.name,
                "device": r.device_label,
                "size_mb": round(s.size_bytes / 1e6, 3),
                "teacher_forced_agreement": q.teacher_forced_agreement,
                "kl_mean": q.kl_mean,
                "kl_mean_log10": math.log10(q.kl_mean) if q.kl_mean else None,
                "perplexity_increase_pct": None if q.perplexity_increase is None else 100 * q.perplexity_increase,
                "ms_per_token": s.tpot_ms_median,
            }
        )
    return rows


# --------------------------------------------------------------------------- the summary table


@dataclass(frozen=True)
class Column:
    key: str
    header: str  # in report.md / report.html
    short: str | None  # in `aipc report` (None: shown another way there)
    cell: Callable[[ValidationResult], str]


def _ppl(r: ValidationResult) -> str:
    q = r.quality
    if q is None or q.perplexity is None or q.perplexity_increase is None:
        return "n/a"
    return f"{q.perplexity:.3f} ({100 * q.perplexity_increase:+.2f}%)"


def _exact(r: ValidationResult) -> str:
    q = r.quality
    raw = pct(q.exact_match_rate)
    return raw if q.exact_match_tie_tolerant is None else f"{raw} / {pct(q.exact_match_tie_tolerant)} ({q.ties} ties)"


def _kl(r: ValidationResult) -> str:
    return f"{sci(r.quality.kl_mean)} / {sci(r.quality.kl_p99)}"


def _long(r: ValidationResult) -> str:
    """The worst measured long-context length (KL mean, top-1 agreement), how many were not taken and how many
    failed in the runtime."""
    measured = [x for x in r.long_context or [] if x.status == "measured" and x.kl_mean is not None]
    failed = sum(x.status == "error" for x in r.long_context or [])
    skipped = len(r.long_context or []) - len(measured) - failed
    rest = "; ".join(t for t in (f"{skipped} not taken" if skipped else "", f"{failed} FAILED" if failed else "") if t)
    if not measured:
        return rest or "n/a"
    worst = max(measured, key=lambda x: x.kl_mean or 0.0)
    text = f"{sci(worst.kl_mean)} / {pct(worst.agreement)} @{worst.length}"
    return text + (f"; {rest}" if rest else "")


def _spread(median: float | None, p10_p90: list[float] | None) -> str:
    if not p10_p90:
        return num(median, 3)
    return f"{num(median, 3)} ({num(p10_p90[0], 3)}–{num(p10_p90[1], 3)})"


COLUMNS: tuple[Column, ...] = (
    Column("device", "device that ran it", None, lambda r: str(r.device_label)),
    Column("gates", "gates", "gates", lambda r: "pass" if r.passed else "FAIL"),
    Column("exact", "exact match: raw / near-ties counted", "exact (raw / ties ok)", _exact),
    Column("tf", "teacher-forced top-1", "TF top-1", lambda r: pct(r.quality.teacher_forced_agreement)),
    Column("kl", "KL mean / p99 (nats/token)", "KL mean / p99", _kl),
    Column("long", "long context: worst KL / top-1", "long ctx", _long),
    Column("ppl", "held-out ppl (Δ)", "ppl (Δ)", _ppl),
    Column("sim", "answer similarity", "sim", lambda r: num(r.quality.similarity, 3)),
    Column("tok", "tokenizer ids match", "tok ids", lambda r: pct(r.quality.tokenizer_match_rate)),
    Column("ttft", "TTFT ms", "TTFT ms", lambda r: num(r.speed.ttft_ms_median, 2)),
    Column("tpot", "ms/token (p10–p90)", "ms/tok", lambda r: _spread(r.speed.tpot_ms_median, r.speed.tpot_ms_p10_p90)),
    Column("size", "size MB", "MB", lambda r: num(r.speed.size_bytes / 1e6, 2)),
    Column("rss", "peak RSS MB", None, lambda r: num(r.speed.peak_rss_bytes / 1e6, 0)),
)


def table_rows(data: ReportData) -> list[dict[str, str]]:
    """One row per target: every column's cell, already formatted (an unmeasured target says why)."""
    rows = []
    for t in data.targets:
        row = {"target": t.name}
        r = t.measured
        if r is None:
            row.update({c.key: "" for c in COLUMNS})
            row["device"] = t.status
            row["gates"] = "—"
        else:
            row.update({c.key: c.cell(r) for c in COLUMNS})
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- render


def plots(data: ReportData) -> list[Any]:
    rows = plot_rows(data)
    return [
        scatter(rows, "size_mb", "teacher_forced_agreement", "size on disk (MB)", "teacher-forced top-1 agreement"),
        scatter(
            rows, "ms_per_token", "teacher_forced_agreement", "ms per output token", "teacher-forced top-1 agreement"
        ),
        scatter(rows, "size_mb", "perplexity_increase_pct", "size on disk (MB)", "held-out perplexity change (%)"),
        scatter(rows, "size_mb", "kl_mean_log10", "size on disk (MB)", "log10 KL(reference ‖ target), nats/token"),
    ]


def markdown(data: ReportData) -> str:
    return render("report.md.j2", data=data, columns=COLUMNS, rows=table_rows(data), num=num, pct=pct, sci=sci)


def render_html(data: ReportData) -> str:
    return render(
        "report.html.j2",
        data=data,
        columns=COLUMNS,
        rows=table_rows(data),
        plots=plots(data),
        num=num,
        pct=pct,
        sci=sci,
    )


def write_report(params: Params, out_dir: Path, root: Path = layout.ARTIFACTS) -> ReportData:
    data = collect(params, root)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / METRICS).write_text(json.dumps(flat_metrics(data), indent=2) + "\n", encoding="utf-8")
    (out_dir / PLOTS).write_text(json.dumps(plot_rows(data), indent=2) + "\n", encoding="utf-8")
    (out_dir / MARKDOWN).write_text(markdown(data), encoding="utf-8")
    (out_dir / HTML).write_text(render_html(data), encoding="utf-8")
    return data
