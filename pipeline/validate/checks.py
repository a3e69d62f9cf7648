"""The measurements one validation makes with an open runner, each against the reference's records.

- ``free_running``: greedy answers from the reference's exact prompt ids, timed; each divergence classified
  against the reference's own log-probs at that step (identical / tie / diverged);
- ``teacher_forced``: the reference prefix fed at every step: top-1 agreement and KL(reference ‖ target)
  from full distributions;
- ``long_context``: the same on long held-out text at the lengths where artifacts break.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import progress
from pipeline.params import Validation
from pipeline.records import Divergence, LongContextResult, ReferenceOutput, ReferenceRecord
from pipeline.runners.base import Runner, cut_at_eos, logits_in_chunks
from pipeline.targets.base import ModelDims
from pipeline.validate import long_context, parity
from pipeline.validate import metrics as m


@dataclass
class FreeRunning:
    outputs: list[list[int]] = field(default_factory=list)
    stopped: list[bool] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)  # one per prompt: its first timed run, if not warmed up
    steps: list[float] = field(default_factory=list)  # every output token after the first, every timed run
    tpots: list[float] = field(default_factory=list)  # per-run means, where a runtime gives no per-token times
    deterministic: bool = True
    divergences: list[Divergence] = field(default_factory=list)


def free_running(name: str, runner: Runner, rows: list[ReferenceOutput], eos: set[int], v: Validation) -> FreeRunning:
    """Each prompt generated ``timed_runs`` times (default once), timed token by token, after ``warmup_runs``
    untimed runs of the first prompt. The warm-up's answer is kept: it must equal the first timed answer
    (determinism across runs). Time per token comes from every output token of every timed run — a spread of
    a few hundred samples — instead of repeating every prompt.

    Time to first token counts only a prompt's first run: OpenVINO GenAI's LLMPipeline keeps a prefix cache on
    the CPU, so a prompt it has seen is not prefilled again (embedded FP16 IR, 1500-token prompt: 7.9 ms repeated
    against 56.8 ms fresh; equal with ``enable_prefix_caching=False``). At Phi-3-mini size the median over three
    runs per prompt, two of them repeats, was 1.0–1.2 s against 2.1–2.2 s over fresh prompts; ONNX Runtime GenAI
    1.9 s either way."""
    res = FreeRunning()
    warm = [runner.generate(rows[0].input_ids, v.max_new_tokens).tokens for _ in range(v.warmup_runs)] if rows else []
    seen = {tuple(rows[0].input_ids)} if warm else set()
    with progress.steps(f"{name}: generate", len(rows)) as step:
        for i, r in enumerate(rows):
            runs = [runner.generate(r.input_ids, v.max_new_tokens) for _ in range(v.timed_runs)]
            toks = [cut_at_eos(g.tokens, eos) for g in runs]
            if i == 0:
                toks += [cut_at_eos(t, eos) for t in warm]
            res.deterministic &= all(t == toks[0] for t in toks)
            out = toks[0]
            # ended by a stop token (some runtimes do not return it: then by stopping early)
            stopped = len(out) < len(runs[0].tokens) or len(out) < v.max_new_tokens
            res.outputs.append(out)
            res.stopped.append(stopped)
            for g in runs:
                if g.ttft_ms is not None and tuple(r.input_ids) not in seen:
                    res.ttfts.append(g.ttft_ms)
                seen.add(tuple(r.input_ids))
                if g.step_ms:
                    res.steps += g.step_ms
                elif g.tpot_ms is not None:
                    res.tpots.append(g.tpot_ms)
            d = parity.classify(r.output_ids, r.stopped, out, stopped, r.top_ids, r.top_logprobs, eos, v.tie_margin)
            if d is not None:
                res.divergences.append(Divergence(prompt=i, **vars(d)))
            step(r.prompt[:30])
    return res


@dataclass
class TeacherForced:
    agree: int = 0
    total: int = 0
    kl: list[float] = field(default_factory=list)


def teacher_forced(runner: Runner, rows: list[ReferenceOutput], ref_dir: Path, ref: ReferenceRecord) -> TeacherForced:
    """Raises NotImplementedError when the runtime cannot give full-sequence logits (NPU)."""
    res = TeacherForced()
    full = np.load(ref_dir / ref.teacher_forced)
    for i, r in enumerate(rows):
        seq = r.input_ids + r.output_ids
        logits = runner.logits(seq)
        a, t = m.teacher_forced_agreement(logits, seq, len(r.input_ids))
        res.agree, res.total = res.agree + a, res.total + t
        scored = logits[len(r.input_ids) - 1 : len(seq) - 1]
        res.kl += parity.kl_per_position(full[f"p{i}"], scored).tolist()
    return res


def runtime_error_line(exc: BaseException) -> str:
    """A runtime's exception as one line: its type and the last line of its message (ONNX Runtime puts the
    kernel's own words last, after the node name)."""
    lines = [x.strip() for x in str(exc).strip().splitlines() if x.strip()] or [""]
    return f"{type(exc).__name__}: {lines[-1]}"[:400]


def long_context_results(
    runner: Runner,
    family: Any,
    settings: Any,
    artifact: Path,
    ref_dir: Path,
    ref: ReferenceRecord,
    dims: ModelDims,
    prefix: list[int] | None = None,
) -> tuple[list[LongContextResult], tuple[float, int] | None]:
    """Every model-derived length and the family's own edges, each measured or said why not; and the summed
    next-token NLL of ``prefix`` (with its count) when a measured pass began with it, else None.

    Within one regime a causal model's logits at a position do not depend on later tokens (in the target as
    in the reference), so the target runs once per regime, at the longest length it takes, and each shorter
    length of that regime is read from the prefix of that pass: half the cost when both sides of a plain-RoPE
    context edge are checked. The held-out text the perplexity is measured on is how the long runs begin, so
    its NLL is read from the pass of its regime too (``prefix``) instead of a pass of its own."""
    wanted = {n.length: n.why for n in ref.long_context_lengths}
    for length, why in family.long_context_edges(settings):
        wanted.setdefault(length, why)
    limit = family.max_context(settings, artifact, runner.choice.device)
    results = {
        n: LongContextResult(length=n, why=wanted[n], regime=long_context.regime(dims, n), status="not taken")
        for n in sorted(wanted)
    }
    by_run: dict[str, list[int]] = {}
    for n, res in results.items():
        run = long_context.covering_run(ref.long_context, dims, n)
        if ref.long_context_unavailable:
            res.reason = ref.long_context_unavailable
        elif run is None:
            res.reason = (
                f"no reference run covers {n} tokens ({res.regime}); add {n} to validation.long_context.lengths"
            )
        elif limit is not None and n > limit[0]:
            res.reason = f"longer than {limit[1]}"
        else:
            by_run.setdefault(run.file, []).append(n)
    for n in (n for lengths in by_run.values() for n in lengths):  # only what is measured has a caveat
        results[n].caveat = family.long_context_caveat(settings, dims, n, runner.choice.device)
    prefix_nll = None
    prefix_run = long_context.covering_run(ref.long_context, dims, len(prefix)) if prefix and len(prefix) > 1 else None
    for file, lengths in by_run.items():
        run = next(x for x in ref.long_context if x.file == file)
        longest = max(lengths)
        data = np.load(ref_dir / run.file)
        ids = data["ids"][:longest]
        scores = long_context.RunScores(ids, data["positions"])
        t0 = time.perf_counter()
        try:
            for start, logits in logits_in_chunks(runner, ids.tolist()):
                scores.add(start, logits)
        except NotImplementedError as exc:
            for n in lengths:
                results[n].reason = str(exc)
            continue
        except Exception as exc:  # a runtime's own failure: recorded for the gate, in one line
            for n in lengths:
                results[n].status, results[n].reason = "error", runtime_error_line(exc)
            continue
        seconds = round(time.perf_counter() - t0, 2)
        if prefix and run is prefix_run:
            prefix_nll = long_context.nll_of_prefix(ids, scores.nll, prefix)
        for n in lengths:
            cmp = scores.compare(run, ref_dir, n)
            res = results[n]
            res.status, res.agreement, res.nll_delta, res.seconds = "measured", cmp.agreement, cmp.nll_delta, seconds
            res.kl_mean, res.kl_p99, res.kl_max, res.kl_positions = (
                cmp.kl_mean,
                cmp.kl_p99,
                cmp.kl_max,
                cmp.kl_positions,
            )
        del scores
    return list(results.values()), prefix_nll
