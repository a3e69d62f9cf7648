"""Stage `validate@<target>`: one artifact against the reference, with its own runtime, on a real device.

For every reference prompt the artifact is fed the reference's exact prompt ids; separately its own
tokenizer + chat template must reproduce those ids. Measured:
- quality: exact-match rate, first-divergence position, teacher-forced top-1 agreement (the artifact sees
  the reference prefix at every step, so one early miss does not cascade), held-out perplexity and its
  change, sentence-embedding similarity of the answers;
- speed and cost: load/compile time, time to first token and per output token (medians over timed runs
  after warm-up), tokens/s, peak RSS of the run, size on disk;
- outputs: the artifact's own greedy answers, kept as its golden outputs (``aipc check`` re-runs them).
The metrics file is written before the gates are checked, so a failed gate can be inspected.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pipeline import cache, fsutil, layout, progress, resources, versions
from pipeline.errors import GateFailed, PipelineError
from pipeline.fmt import num
from pipeline.params import Params
from pipeline.records import (
    GateVerdict,
    GoldenOutput,
    Quality,
    Speed,
    TargetRecord,
    ValidatedArtifact,
    ValidationResult,
    file_table,
)
from pipeline.records.reference import load_reference
from pipeline.targets.base import RuntimeOptions
from pipeline.validate import gates as gate_checks
from pipeline.validate import metrics as m

log = logging.getLogger(__name__)


def runtime_options(params: Params, name: str) -> RuntimeOptions:
    v = params.validation
    return RuntimeOptions(
        cpu_precision=v.openvino_cpu_precision, threads=v.threads, cache_root=cache.npu_compile_cache(name)
    )


def validate_target(params: Params, name: str, out_dir: Path, root: Path = layout.ARTIFACTS) -> ValidationResult:
    target = params.target(name)
    if not target.enabled:
        result = ValidationResult(target=name, family=target.family, status="disabled")
        result.write(out_dir)
        return result
    target_dir = layout.target_dir(name, root)
    record = TargetRecord.read(target_dir) if TargetRecord.exists(target_dir) else None
    if record is None or not record.built:
        raise PipelineError(f"{target_dir} is not a built artifact", fix=f"run `dvc repro build@{name}` first")
    family = params.family(name)
    settings = target.build
    rows, heldout, ref_record = load_reference(layout.reference_dir(root))
    v = params.validation

    from pipeline.runners.base import cut_at_eos
    from pipeline.runners.dispatch import open_runner

    eos = set(ref_record.eos_token_ids)
    with resources.PeakRSS() as peak:
        runner = open_runner(
            name, family, settings, target_dir, device=target.device, options=runtime_options(params, name)
        )
        log.info("%s: %s on %s", name, family.RUNTIME, runner.choice.label)

        # 1. the artifact's own tokenizer + chat template
        token_matches = [runner.chat_ids([msg.model_dump() for msg in r.messages]) == r.input_ids for r in rows]

        # 2. greedy generation from the reference's prompt ids, timed
        outputs, stopped, ttfts, tpots, deterministic = [], [], [], [], True
        if rows and v.warmup_runs:
            for _ in range(v.warmup_runs):
                runner.generate(rows[0].input_ids, v.max_new_tokens)
        with progress.steps(f"{name}: generate", len(rows)) as step:
            for r in rows:
                runs = [runner.generate(r.input_ids, v.max_new_tokens) for _ in range(v.timed_runs)]
                toks = [cut_at_eos(g.tokens, eos) for g in runs]
                deterministic &= all(t == toks[0] for t in toks)
                outputs.append(toks[0])
                stopped.append(len(toks[0]) < len(runs[0].tokens))
                ttfts += [g.ttft_ms for g in runs]
                tpots += [g.tpot_ms for g in runs]
                step(r.prompt[:30])

        # 3. teacher forcing and held-out perplexity (full-sequence logits)
        agree = total = 0
        ppl = None
        logits_note = None
        try:
            for r in rows:
                seq = r.input_ids + r.output_ids
                a, t = m.teacher_forced_agreement(runner.logits(seq), seq, len(r.input_ids))
                agree, total = agree + a, total + t
            ids = heldout.ids
            tnll, count = m.nll(runner.logits(ids), ids)
            ppl = m.perplexity(tnll, count)
        except NotImplementedError as exc:
            logits_note = str(exc)
        choice = runner.choice
        load_seconds = runner.load_seconds
        runner.close()

    tokenizer = _decoder(target_dir)
    texts = [tokenizer.decode(o, skip_special_tokens=True) for o in outputs]
    pairs = [(r.output_ids, o) for r, o in zip(rows, outputs, strict=True)]
    ref_ppl = heldout.perplexity
    similarity = None
    if v.similarity:
        from pipeline.validate import similarity as sim

        if sim.available():
            sims = sim.cosine_pairs([r.text for r in rows], texts)
            similarity = sum(sims) / len(sims) if sims else None
    tpot = m.med(tpots)
    quality = Quality(
        exact_match_rate=m.exact_match_rate(pairs),
        first_divergence=[m.first_divergence(a, b) for a, b in pairs],
        teacher_forced_agreement=agree / total if total else None,
        teacher_forced_tokens=total,
        perplexity=ppl,
        reference_perplexity=ref_ppl,
        perplexity_increase=(ppl / ref_ppl - 1.0) if ppl is not None else None,
        similarity=similarity,
        tokenizer_match_rate=sum(token_matches) / len(token_matches) if token_matches else None,
        deterministic_across_runs=deterministic,
    )
    if logits_note:
        quality.logits_unavailable = logits_note
    result = ValidationResult(
        target=name,
        family=target.family,
        status="measured",
        runtime=family.RUNTIME,
        device=choice.device,
        intended_device=choice.intended,
        proxy=choice.proxy,
        device_label=choice.label,
        device_details=choice.details,
        quality=quality,
        speed=Speed(
            load_seconds=round(load_seconds, 3),
            ttft_ms_median=m.med(ttfts),
            tpot_ms_median=tpot,
            tokens_per_second=1000.0 / tpot if tpot else None,
            peak_rss_bytes=peak.peak.rss,
            size_bytes=_artifact_size(target_dir),
            timed_runs=v.timed_runs,
            warmup_runs=v.warmup_runs,
        ),
        artifact=ValidatedArtifact(
            target_json_sha256=fsutil.sha256_file(TargetRecord.path(target_dir)),
            files_sha256=file_table(target_dir),
            settings=record.settings,
            source_revision=record.source.resolved_revision if record.source else None,
        ),
        validated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        tools=versions.tool_versions(),
    )
    failures = gate_checks.check(name, target.gates, quality, result.speed)
    result.gates = GateVerdict(passed=not failures, failures=failures, bounds=target.gates.model_dump())

    GoldenOutput.write_all(
        out_dir,
        [
            GoldenOutput(prompt=r.prompt, messages=r.messages, input_ids=r.input_ids, output_ids=o, stopped=st,
                         max_new_tokens=v.max_new_tokens, text=t)
            for r, o, st, t in zip(rows, outputs, stopped, texts, strict=True)
        ],
    )  # fmt: skip
    result.write(out_dir)
    log.info(
        "%s on %s: exact %.2f, teacher-forced %s, ppl %s, %s ms/token",
        name,
        choice.label,
        quality.exact_match_rate,
        num(quality.teacher_forced_agreement),
        num(ppl),
        num(tpot),
    )
    return result


def raise_if_failed(result: ValidationResult) -> None:
    if result.status == "measured" and not result.passed:
        raise GateFailed("GATE FAILED " + "; ".join(result.failures()))


def _artifact_size(target_dir: Path) -> int:
    return sum(p.stat().st_size for p in target_dir.rglob("*") if p.is_file() and p.name != TargetRecord.FILE)


def _decoder(target_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(target_dir)
