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
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline import cache, fsutil, layout, resources, versions
from pipeline.errors import GateFailed, PipelineError
from pipeline.fmt import num
from pipeline.params import Params
from pipeline.records import (
    GateVerdict,
    GoldenOutput,
    Phases,
    Quality,
    RuntimeRecord,
    Speed,
    TargetRecord,
    ValidatedArtifact,
    ValidationResult,
    file_table,
)
from pipeline.records.reference import load_reference
from pipeline.targets.base import ModelDims, RuntimeOptions
from pipeline.validate import checks, parity
from pipeline.validate import gates as gate_checks
from pipeline.validate import metrics as m
from pipeline.validate.decode import decoder

log = logging.getLogger(__name__)


def runtime_options(params: Params, name: str) -> RuntimeOptions:
    r = params.validation.runtime
    return RuntimeOptions(
        openvino=r.openvino.model_dump(exclude_none=True),
        threads=r.threads,
        cache_root=cache.npu_compile_cache(name),
    )


class _Clock:
    """Wall seconds per named phase; what no phase claims is ``rest``."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0

    def phases(self) -> Phases:
        named = {k: round(self.seconds.get(k, 0.0), 2) for k in Phases.model_fields if k != "rest"}
        rest = time.perf_counter() - self.started - sum(self.seconds.values())
        return Phases(**named, rest=round(max(rest, 0.0), 2))


@contextmanager
def runtime_check(target: str, check: str) -> Iterator[None]:
    """A runtime's own failure during ``check`` as the project's one-line error, naming the target, the check
    and its length (the runtime's message is multi-line C++ text; its last line is the kernel's reason)."""
    try:
        yield
    except (PipelineError, NotImplementedError):
        raise
    except Exception as exc:
        raise PipelineError(f"{target}: {check} failed in the runtime: {checks.runtime_error_line(exc)}") from exc


def validate_target(params: Params, name: str, out_dir: Path, root: Path = layout.ARTIFACTS) -> ValidationResult:
    clock = _Clock()
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
    ref_dir = layout.reference_dir(root)
    rows, heldout, ref_record = load_reference(ref_dir)
    dims = ModelDims.from_config(layout.source_dir(root) / "config.json")
    v = params.validation

    from pipeline.runners.dispatch import open_runner

    eos = set(ref_record.eos_token_ids)
    with resources.PeakRSS() as peak:
        with clock.phase("load"):
            runner = open_runner(
                name, family, settings, target_dir, device=target.device, options=runtime_options(params, name)
            )
        log.info("%s: %s on %s", name, family.RUNTIME, runner.choice.label)

        longest = max((len(r.input_ids) for r in rows), default=0)
        # 1. the artifact's own tokenizer + chat template
        with clock.phase("tokenizer"), runtime_check(name, "the chat template / tokenizer check"):
            token_matches = [runner.chat_ids([msg.model_dump() for msg in r.messages]) == r.input_ids for r in rows]
        # 2. greedy generation from the reference's prompt ids, timed; divergences classified
        with (
            clock.phase("generation"),
            runtime_check(name, f"greedy generation (prompts up to {longest} tokens + {v.max_new_tokens} new)"),
        ):
            free = checks.free_running(name, runner, rows, eos, v)
        # 3. teacher forcing, long context and held-out perplexity (full-sequence logits); the long runs begin
        # with the held-out text, so its NLL comes from the pass of its regime when one was measured
        tf, ppl, logits_note, long, scored = None, None, None, None, None
        try:
            with clock.phase("teacher_forcing"), runtime_check(name, "teacher forcing on the reference's answers"):
                tf = checks.teacher_forced(runner, rows, ref_dir, ref_record)
        except NotImplementedError as exc:
            logits_note = str(exc)
        if v.long_context.enabled:
            with clock.phase("long_context"):
                long, scored = checks.long_context_results(
                    runner, family, settings, target_dir, ref_dir, ref_record, dims, prefix=heldout.ids
                )
        if logits_note is None:
            try:
                with clock.phase("perplexity"), runtime_check(name, f"held-out perplexity ({len(heldout.ids)} tokens)"):
                    tnll, count = scored or m.nll(runner.logits(heldout.ids), heldout.ids)
                    ppl = m.perplexity(tnll, count)
            except NotImplementedError as exc:
                logits_note = str(exc)
        choice = runner.choice
        load_seconds = runner.load_seconds
        properties = {k: str(x) for k, x in runner.properties.items()}
        effective = dict(runner.effective)
        runner.close()

    decode = decoder(target_dir)
    texts = [decode(o) for o in free.outputs]
    pairs = [(r.output_ids, o) for r, o in zip(rows, free.outputs, strict=True)]
    ref_ppl = heldout.perplexity
    similarity = None
    if v.similarity:
        from pipeline.validate import similarity as sim

        if sim.available():
            sims = sim.cosine_pairs([r.text for r in rows], texts)
            similarity = sum(sims) / len(sims) if sims else None
    per_token = free.steps or free.tpots
    tpot = m.med(per_token)
    kl_mean, kl_p99, kl_max = parity.spread(tf.kl if tf else [])
    ties = sum(d.kind == "tie" for d in free.divergences)
    quality = Quality(
        exact_match_rate=m.exact_match_rate(pairs),
        first_divergence=[m.first_divergence(a, b) for a, b in pairs],
        teacher_forced_agreement=tf.agree / tf.total if tf and tf.total else None,
        teacher_forced_tokens=tf.total if tf else 0,
        perplexity=ppl,
        reference_perplexity=ref_ppl,
        perplexity_increase=(ppl / ref_ppl - 1.0) if ppl is not None else None,
        similarity=similarity,
        tokenizer_match_rate=sum(token_matches) / len(token_matches) if token_matches else None,
        deterministic_across_runs=free.deterministic,
        exact_match_tie_tolerant=(len(rows) - len(free.divergences) + ties) / len(rows) if rows else None,
        ties=ties,
        tie_margin=v.tie_margin,
        divergences=free.divergences,
        kl_mean=kl_mean,
        kl_p99=kl_p99,
        kl_max=kl_max,
        kl_tokens=len(tf.kl) if tf else 0,
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
            ttft_ms_median=m.med(free.ttfts),
            tpot_ms_median=tpot,
            ttft_ms_p10_p90=m.p10_p90(free.ttfts),
            tpot_ms_p10_p90=m.p10_p90(per_token),
            timed_tokens=len(per_token),
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
    failures = gate_checks.check(name, target.gates, quality, result.speed, long)
    result.gates = GateVerdict(passed=not failures, failures=failures, bounds=target.gates.model_dump())
    result.numerics = RuntimeRecord(properties=properties, effective=effective)
    result.long_context = long

    GoldenOutput.write_all(
        out_dir,
        [
            GoldenOutput(prompt=r.prompt, messages=r.messages, input_ids=r.input_ids, output_ids=o, stopped=st,
                         max_new_tokens=v.max_new_tokens, text=t)
            for r, o, st, t in zip(rows, free.outputs, free.stopped, texts, strict=True)
        ],
    )  # fmt: skip
    result.speed.phases = clock.phases()
    result.write(out_dir)
    log.info(
        "%s on %s: exact %.2f (%d at ties), teacher-forced %s, KL %s, ppl %s, %s ms/token",
        name,
        choice.label,
        quality.exact_match_rate,
        ties,
        num(quality.teacher_forced_agreement),
        num(kl_mean, 5),
        num(ppl),
        num(tpot),
    )
    return result


# A search point is a measurement: its missed gate belongs on the search's report (``gates_passed: false``, never
# chosen), not in a failed experiment that stops the search. ``aipc search`` starts DVC's queue workers with this
# set; the experiments run in DVC's own temporary copies, and a package is never made from a failed validation.
GATES_ENV = "AIPC_GATES"
GATES_RECORD = "record"


def raise_if_failed(result: ValidationResult) -> None:
    if result.status == "measured" and not result.passed:
        line = "GATE FAILED " + "; ".join(result.failures())
        if os.environ.get(GATES_ENV) == GATES_RECORD:
            log.warning("%s (recorded, not enforced: %s=%s, a search point)", line, GATES_ENV, GATES_RECORD)
            return
        raise GateFailed(line)


def _artifact_size(target_dir: Path) -> int:
    return sum(p.stat().st_size for p in target_dir.rglob("*") if p.is_file() and p.name != TargetRecord.FILE)
