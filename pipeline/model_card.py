"""The model card (``README.md``) shipped with every package and pushed to the Hugging Face repo.

``card_view`` turns a manifest into the values the card shows (one row per table line, already formatted);
``templates/model_card.md.j2`` lays them out. ``snippet`` is the runnable example for the artifact's own
runtime, also printed by ``aipc pull``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.fmt import num, pct, sci
from pipeline.records import Manifest, ManifestSigning
from pipeline.templating import render

RUNTIME_TAGS = {
    "openvino-genai": ["openvino", "openvino-genai", "nncf"],
    "onnxruntime-genai": ["onnx", "onnxruntime-genai"],
    "npu-lib": ["intel-npu-acceleration-library"],
}


def snippet(manifest: Manifest, folder: str = "<this folder>") -> str:
    """A runnable example for the artifact's own runtime."""
    if manifest.runtime == "openvino-genai":
        kind = "npu" if manifest.family == "npu" else "openvino"
    elif manifest.runtime == "onnxruntime-genai":
        kind = "ort"
    else:
        kind = "record"
    dml = "dml" in (manifest.device_facts.genai_providers or [])
    install = "pip install onnxruntime-genai-directml  # Windows, DirectML" if dml else "pip install onnxruntime-genai"
    return render(
        "snippet.md.j2",
        kind=kind,
        folder=folder,
        install=install,
        name=manifest.name,
        props=validated_properties(manifest),
    )


def validated_properties(manifest: Manifest) -> dict[str, str]:
    """The runtime properties validation set (the snippet passes the same ones; NPU ones come from npu_config)."""
    numerics = manifest.validation.numerics
    props = dict(numerics.properties) if numerics else {}
    return {k: v for k, v in props.items() if k not in NPU_ONLY}


NPU_ONLY = (
    "MAX_PROMPT_LEN",
    "MIN_RESPONSE_LEN",
    "GENERATE_HINT",
    "PREFILL_HINT",
    "CACHE_DIR",
    "BLOB_PATH",
    "WEIGHTS_PATH",
)


@dataclass
class CardView:
    name: str
    title: str
    license: str
    tags: list[str]
    base_model: str | None
    repo: str | None
    revision: str
    requested: str | None
    license_text: str
    runtime: str | None
    intended: str
    device: str | None
    proxy: str
    settings: list[tuple[str, Any]]
    weights: str
    metrics: list[tuple[str, str]]
    long_context: list[tuple[str, str, str]]
    numerics: list[tuple[str, str, str]]
    gates: list[tuple[str, str]]
    snippet: str
    toolkits: str
    fingerprint: str
    runtime_versions: str
    origin: str | None = None
    signing: ManifestSigning | None = None


def card_view(m: Manifest) -> CardView:
    src, v = m.source, m.validation
    q, s = v.quality, v.speed
    revision = src.resolved_revision or "n/a"
    bounds = (v.gates.bounds if v.gates else None) or {}
    weights = m.build.weights
    if weights:
        weights_line = ", ".join(f"{n} {p} layers" for p, n in weights.items())
    elif m.build.graph:
        weights_line = f"{m.build.graph.quantized_matmuls} MatMulNBits ({m.build.graph.quantized_by_kind})"
    else:
        weights_line = "none shipped — intel-npu-acceleration-library quantises the source model when it loads it"
    rs = m.runtime_support
    runtime_versions = ""
    if rs is not None and rs.validated_with:
        runtime_versions = "validated with " + ", ".join(f"{p} {v}" for p, v in rs.validated_with.items())
        if rs.oldest_proven:
            runtime_versions += "; proven to load and generate in " + ", ".join(
                f"{p} {v}" for p, v in rs.oldest_proven.items()
            )
        if "onnxruntime-genai" in rs.validated_with:
            runtime_versions += (
                ' — install one flavour only: `pip install "aipc-pipeline[ort-cpu]"`, or `[ort-dml]` on Windows'
            )
    return CardView(
        origin=m.origin,
        signing=m.signing,
        runtime_versions=runtime_versions,
        name=m.name,
        title=m.description or str(m.runtime),
        license=(src.license or "other").split()[0].lower(),
        tags=["phi3", "text-generation", "aipc", *RUNTIME_TAGS.get(m.runtime or "", [])],
        base_model=src.repo if src.kind == "hub" else None,
        repo=src.repo,
        revision=revision,
        requested=src.requested_revision,
        license_text=src.license or "see source",
        runtime=m.runtime,
        intended=v.intended_device or "?",
        device=v.device,
        proxy=f" — **proxy**: {v.proxy}" if v.proxy else "",
        settings=[(k, val) for k, val in (m.settings or {}).items() if not isinstance(val, dict)],
        weights=weights_line,
        metrics=[
            ("gates", "passed" if v.passed else "FAILED"),
            ("device that ran the validation", str(v.device_label)),
            ("exact greedy match (prompts)", pct(q.exact_match_rate if q else None)),
            (
                f"… divergences at near-ties counted (within {q.tie_margin if q else '?'} nats of the reference's top-1)",
                f"{pct(q.exact_match_tie_tolerant if q else None)} ({q.ties if q else '?'} ties)",
            ),
            ("teacher-forced top-1 agreement", pct(q.teacher_forced_agreement if q else None)),
            (
                "KL(reference ‖ artifact), nats/token: mean / p99 / max",
                f"{sci(q.kl_mean if q else None)} / {sci(q.kl_p99 if q else None)} / {sci(q.kl_max if q else None)}",
            ),
            (
                f"held-out perplexity (reference {num(q.reference_perplexity if q else None)})",
                num(q.perplexity if q else None),
            ),
            ("perplexity change", pct(q.perplexity_increase if q else None, signed=True)),
            ("answer similarity (MiniLM cosine)", num(q.similarity if q else None)),
            ("own tokenizer + chat template give the reference ids", pct(q.tokenizer_match_rate if q else None)),
            ("time to first token (median)", f"{num(s.ttft_ms_median if s else None, 2)} ms"),
            ("time per output token (median; p10–p90)", _tpot(s)),
            ("size on disk", f"{(s.size_bytes if s else 0) / 1e6:.1f} MB"),
        ],
        long_context=[
            (
                f"{x.length} ({x.why})",
                ("measured" if x.status == "measured" else f"{x.status}: {x.reason}")
                + (f" (caveat: {x.caveat})" if x.caveat else ""),
                f"{pct(x.agreement)} / {sci(x.kl_mean)}" if x.status == "measured" else "",
            )
            for x in v.long_context or []
        ],
        numerics=[
            (k, val, (v.numerics.effective.get(k, "") if v.numerics else ""))
            for k, val in (v.numerics.properties.items() if v.numerics else [])
        ],
        gates=[(k, gate_bound(k, b)) for k, b in bounds.items() if b not in (None, False)],
        snippet=snippet(m),
        toolkits=", ".join(f"{k} {val}" for k, val in sorted(m.tools.build.items())),
        fingerprint=m.fingerprint or "",
    )


def _tpot(s) -> str:
    text = f"{num(s.tpot_ms_median if s else None, 2)} ms"
    if s and s.tpot_ms_p10_p90:
        lo, hi = s.tpot_ms_p10_p90
        text += f" ({num(lo, 2)}–{num(hi, 2)} ms over {s.timed_tokens} tokens)"
    return text


def render_card(manifest: Manifest) -> str:
    return render("model_card.md.j2", card=card_view(manifest))


def gate_bound(name: str, bound: Any) -> str:
    """A gate's bound in the units the validation table uses (params keep fractions: 0.25 = +25 %)."""
    if bound is True:
        return "required"
    if name in ("exact_match_min", "teacher_forced_agreement_min", "long_context_agreement_min"):
        return f"≥ {100 * bound:.1f}%"
    if name in ("kl_mean_max", "long_context_kl_max"):
        return f"≤ {bound} nats/token"
    if name == "perplexity_increase_max":
        return f"≤ +{100 * bound:.1f}%"
    if name == "ms_per_token_max":
        return f"≤ {bound} ms"
    return f"≥ {bound}" if name.endswith("_min") else f"≤ {bound}" if name.endswith("_max") else str(bound)
