"""Stage `reference`: the source model in transformers (fp32), run once for every target to compare with.

Writes ``artifacts/reference/``:
- ``outputs.jsonl`` — per prompt: the chat messages, the exact prompt ids (Phi-3's chat template via the
  source tokenizer), the greedy continuation ids (cut at the first stop token), its text, and the reference's
  top-k log-probs at every generated step (how close each call was);
- ``teacher_forced.npz`` — the full log-probs at every teacher-forced position of each prompt (KL);
- ``heldout.json`` — the held-out text's ids and the reference's summed negative log-likelihood;
- ``long_context/`` — one full-sequence run per LongRoPE regime on long held-out text (``long_context``);
- ``reference.json`` — what ran (device, dtype, timings, stop tokens, lengths, tool versions).
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import numpy as np

from pipeline import heldout, layout, progress, runlog, versions
from pipeline.params import Params
from pipeline.records import ChatMessage, Heldout, LongLength, LongRun, ReferenceOutput, ReferenceRecord
from pipeline.targets.base import ModelDims
from pipeline.textfiles import read_text_source
from pipeline.validate import long_context, metrics
from pipeline.validate.parity import log_softmax, top_k

TEACHER_FORCED = "teacher_forced.npz"
LONG_DIR = "long_context"

log = logging.getLogger(__name__)


def messages_for(params: Params, prompt: str) -> list[ChatMessage]:
    msgs = []
    if params.validation.system_prompt:
        msgs.append(ChatMessage(role="system", content=params.validation.system_prompt))
    msgs.append(ChatMessage(role="user", content=prompt))
    return msgs


def heldout_text(spec: str) -> str:
    text = read_text_source(spec, key="validation.heldout", builtin=heldout.heldout_text())
    return re.sub(r"[ \t]+", " ", text)


def heldout_ids(tok, spec: str, n: int) -> list[int]:
    """The first ``n`` tokens of the held-out text (cycled when a very long length asks for more)."""
    text = heldout_text(spec)
    ids: list[int] = []
    while len(ids) < n:
        # Tokenize only a prefix that surely holds enough tokens (no over-length warning, no wasted work).
        ids += tok(text[: 16 * (n - len(ids))] + "\n\n", add_special_tokens=False, verbose=False)["input_ids"]
    return ids[:n]


def teacher_forced_logprobs(runner, ids: list[int], answer, out: list[int]) -> np.ndarray:
    """The reference's log-probs predicting each answer token with the answer's prefix given: the decode steps'
    own (the logits that chose token j are the ones predicting it), unless prompt + answer pass the model's
    context edge, where cached decoding is not one pass's computation — then one full pass, as a target's."""
    seq = ids + out
    edge = runner.context_edge
    if edge is None or len(seq) <= edge:
        return answer.logprobs[: len(out)]
    return log_softmax(runner.logits(seq)[len(ids) - 1 : len(seq) - 1])


def reference_stage(params: Params, out_dir: Path, root: Path = layout.ARTIFACTS) -> ReferenceRecord:
    """Stage ``reference``: the checks before any work, then ``build_reference`` into ``out_dir``."""
    source = layout.require_source(root)
    return build_reference(params, source, out_dir)


def build_reference(params: Params, source_dir: Path, out_dir: Path) -> ReferenceRecord:
    from pipeline.runners.base import cut_at_eos
    from pipeline.runners.hf import TransformersRunner

    v = params.validation
    dims = ModelDims.from_config(source_dir / "config.json")
    runner = TransformersRunner(source_dir, threads=v.runtime.threads)
    tok = runner.tokenizer
    rows = []
    tf_logprobs: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    prompts = params.prompts()
    messages = [messages_for(params, prompt) for prompt in prompts]
    prompt_ids = [runner.chat_ids([m.model_dump() for m in msgs]) for msgs in messages]
    # One batch: the greedy answers, their top-k per step and the teacher-forced distributions all come from
    # the same decode steps (the logits that chose answer token j are the teacher-forced logits predicting it).
    with progress.steps("reference generations (one batch)", 1) as step:
        answers = runner.generate_batch(prompt_ids, v.max_new_tokens)
        step(f"{len(prompts)} prompts")
    for i, (prompt, msgs, ids, ans) in enumerate(zip(prompts, messages, prompt_ids, answers, strict=True)):
        out = cut_at_eos(ans.tokens, runner.eos)
        tops = [top_k(lp, v.top_k) for lp in ans.logprobs]
        rows.append(
            ReferenceOutput(
                prompt=prompt,
                messages=msgs,
                input_ids=ids,
                output_ids=out,
                stopped=len(out) < len(ans.tokens),
                text=tok.decode(out, skip_special_tokens=True),
                top_ids=[t[0] for t in tops],
                top_logprobs=[t[1] for t in tops],
            )
        )
        tf_logprobs[f"p{i}"] = teacher_forced_logprobs(runner, ids, ans, out).astype(np.float32)
    np.savez(out_dir / TEACHER_FORCED, **tf_logprobs)
    gen_seconds = time.perf_counter() - t0
    runlog.note("generation", gen_seconds)
    runlog.note("load", runner.load_seconds)

    lengths, long_runs = [], []
    if v.long_context.enabled:
        lengths = long_context.model_lengths(dims, v.long_context)
        long_runs = reference_long_runs(runner, dims, v, [n.length for n in lengths], out_dir)
    # Held-out perplexity within the model's original context (beyond it is the long-context check's job): the
    # long-context runs start with the same held-out text, so the run of its regime already scored it.
    n_heldout = min(v.heldout_max_tokens, dims.original_max_position_embeddings or v.heldout_max_tokens)
    ids = heldout_ids(tok, v.heldout, n_heldout)
    scored = long_context.prefix_nll(long_runs, dims, out_dir, ids)
    total, count = scored if scored is not None else metrics.nll(runner.logits(ids), ids)
    heldout = Heldout(source=v.heldout, ids=ids, nll=total, count=count, perplexity=metrics.perplexity(total, count))

    runner.close()

    ReferenceOutput.write_all(out_dir, rows)
    heldout.write(out_dir)
    record = ReferenceRecord(
        model=params.model,
        runtime="transformers",
        device=runner.choice.device,
        dtype="float32",
        eos_token_ids=sorted(runner.eos),
        prompts=len(rows),
        max_new_tokens=v.max_new_tokens,
        heldout_tokens=count,
        heldout_perplexity=heldout.perplexity,
        tools=versions.tool_versions(("torch", "transformers", "tokenizers")),
        top_k=v.top_k,
        teacher_forced=TEACHER_FORCED,
        long_context_lengths=[LongLength(length=n.length, why=n.why) for n in lengths],
        long_context=long_runs,
    )
    record.write(out_dir)
    log.info("reference: %d prompts in %.1f s, held-out perplexity %.3f", len(rows), gen_seconds, heldout.perplexity)
    return record


def reference_long_runs(runner, dims: ModelDims, v, lengths: list[int], out_dir: Path) -> list[LongRun]:
    """One full-sequence run per regime on the long held-out text (see ``long_context``)."""
    runs = []
    (out_dir / LONG_DIR).mkdir(exist_ok=True)
    tok = runner.tokenizer
    for regime, length in sorted(long_context.runs(dims, [long_context.Length(n, "") for n in lengths]).items()):
        ids = heldout_ids(tok, v.heldout, length)
        t0 = time.perf_counter()
        logits = runner.logits(ids)
        positions = long_context.sample_positions(length, v.long_context.kl_positions, lengths)
        name = f"{LONG_DIR}/run-{length}.npz"
        long_context.reference_run(logits, ids, positions, out_dir / name)
        del logits
        seconds = time.perf_counter() - t0
        runlog.note(f"long context {length}", seconds)
        runs.append(LongRun(length=length, regime=regime, file=name, kl_positions=int(positions.size)))
        log.info("reference: long-context run of %d tokens (%s) in %.1f s", length, regime, seconds)
    return runs
