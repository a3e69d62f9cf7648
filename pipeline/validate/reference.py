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
from typing import Any

from pipeline import corpus, fsutil, progress, versions
from pipeline.errors import PipelineError
from pipeline.params import Params
from pipeline.validate import metrics

log = logging.getLogger(__name__)

OUTPUTS = "outputs.jsonl"
HELDOUT = "heldout.json"
RECORD = "reference.json"


def messages_for(params: Params, prompt: str) -> list[dict[str, str]]:
    msgs = []
    if params.validation.system_prompt:
        msgs.append({"role": "system", "content": params.validation.system_prompt})
    msgs.append({"role": "user", "content": prompt})
    return msgs


def heldout_text(spec: str) -> str:
    text = corpus.read_text_source(spec, key="validation.heldout", builtin=corpus.heldout_text())
    return re.sub(r"[ \t]+", " ", text)


def build_reference(params: Params, source_dir: Path, out_dir: Path) -> dict[str, Any]:
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
            ids = runner.chat_ids(messages)
            gen = runner.generate(ids, v.max_new_tokens)
            out = cut_at_eos(gen.tokens, runner.eos)
            rows.append(
                {
                    "prompt": prompt,
                    "messages": messages,
                    "input_ids": ids,
                    "output_ids": out,
                    "stopped": len(out) < len(gen.tokens),
                    "text": tok.decode(out, skip_special_tokens=True),
                    "seconds": round(gen.seconds, 3),
                }
            )
            step(prompt[:30])
    gen_seconds = time.perf_counter() - t0

    text = heldout_text(v.heldout)
    # Tokenize only a prefix that surely holds enough tokens (no over-length warning, no wasted work).
    ids = tok(text[: 16 * v.heldout_max_tokens], add_special_tokens=False)["input_ids"][: v.heldout_max_tokens]
    total, count = metrics.nll(runner.logits(ids), ids)
    heldout = {
        "source": v.heldout,
        "ids": ids,
        "nll": total,
        "count": count,
        "perplexity": metrics.perplexity(total, count),
    }
    runner.close()

    fsutil.write_jsonl(out_dir / OUTPUTS, rows)
    fsutil.write_json(out_dir / HELDOUT, heldout)
    record = {
        "model": params.model,
        "runtime": "transformers",
        "device": runner.choice.device,
        "dtype": "float32",
        "eos_token_ids": sorted(runner.eos),
        "prompts": len(rows),
        "max_new_tokens": v.max_new_tokens,
        "generation_seconds": round(gen_seconds, 2),
        "load_seconds": round(runner.load_seconds, 2),
        "heldout_tokens": count,
        "heldout_perplexity": heldout["perplexity"],
        "tools": versions.tool_versions(("torch", "transformers", "tokenizers")),
    }
    fsutil.write_json(out_dir / RECORD, record)
    log.info("reference: %d prompts in %.1f s, held-out perplexity %.3f", len(rows), gen_seconds, heldout["perplexity"])
    return record


def load_reference(ref_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    if not (ref_dir / RECORD).is_file():
        raise PipelineError(f"{ref_dir} is missing", fix="run `dvc repro reference` (or the whole pipeline) first")
    return fsutil.read_jsonl(ref_dir / OUTPUTS), fsutil.read_json(ref_dir / HELDOUT), fsutil.read_json(ref_dir / RECORD)
