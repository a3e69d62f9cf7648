"""Stage `reference`: the source model in transformers (fp32), run once for every target to compare with.

Writes ``artifacts/reference/``:
- ``outputs.jsonl`` — per prompt: the chat messages, the exact prompt ids (Phi-3's chat template via the
  source tokenizer), the greedy continuation ids (cut at the first stop token) and its text;
- ``heldout.json`` — the held-out text's ids and the reference's summed negative log-likelihood;
- ``reference.json`` — what ran (device, dtype, timings, stop tokens, tool versions).
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from pipeline import heldout, layout, progress, resources, versions
from pipeline.params import Params
from pipeline.records import ChatMessage, Heldout, ReferenceOutput, ReferenceRecord
from pipeline.textfiles import read_text_source
from pipeline.validate import metrics

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


def reference_stage(params: Params, out_dir: Path, root: Path = layout.ARTIFACTS) -> ReferenceRecord:
    """Stage ``reference``: the checks before any work, then ``build_reference`` into ``out_dir``."""
    source = layout.require_source(root)
    # fp32 = twice the bf16 checkpoint in RAM, plus activations
    resources.require_ram(int(2.2 * resources.weights_bytes(source)), "the fp32 reference")
    return build_reference(params, source, out_dir)


def build_reference(params: Params, source_dir: Path, out_dir: Path) -> ReferenceRecord:
    from pipeline.runners.base import cut_at_eos
    from pipeline.runners.hf import TransformersRunner

    v = params.validation
    runner = TransformersRunner(source_dir, threads=v.threads)
    tok = runner.tokenizer
    rows = []
    t0 = time.perf_counter()
    prompts = params.prompts()
    with progress.steps("reference generations", len(prompts)) as step:
        for prompt in prompts:
            messages = messages_for(params, prompt)
            ids = runner.chat_ids([m.model_dump() for m in messages])
            gen = runner.generate(ids, v.max_new_tokens)
            out = cut_at_eos(gen.tokens, runner.eos)
            rows.append(
                ReferenceOutput(
                    prompt=prompt,
                    messages=messages,
                    input_ids=ids,
                    output_ids=out,
                    stopped=len(out) < len(gen.tokens),
                    text=tok.decode(out, skip_special_tokens=True),
                    seconds=round(gen.seconds, 3),
                )
            )
            step(prompt[:30])
    gen_seconds = time.perf_counter() - t0

    text = heldout_text(v.heldout)
    # Tokenize only a prefix that surely holds enough tokens (no over-length warning, no wasted work).
    ids = tok(text[: 16 * v.heldout_max_tokens], add_special_tokens=False)["input_ids"][: v.heldout_max_tokens]
    total, count = metrics.nll(runner.logits(ids), ids)
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
        generation_seconds=round(gen_seconds, 2),
        load_seconds=round(runner.load_seconds, 2),
        heldout_tokens=count,
        heldout_perplexity=heldout.perplexity,
        tools=versions.tool_versions(("torch", "transformers", "tokenizers")),
    )
    record.write(out_dir)
    log.info("reference: %d prompts in %.1f s, held-out perplexity %.3f", len(rows), gen_seconds, heldout.perplexity)
    return record
