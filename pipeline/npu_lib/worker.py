"""Runs inside the isolated npu-lib environment (stdlib + torch + transformers 4.x + the library only).

Protocol: one JSON request per line on stdin, one JSON answer per line on the original stdout; everything
the library prints goes to stderr. Requests:
  {"op": "load", "model": DIR, "dtype": "int4"}     → device facts (npu_available, driver, versions)
  {"op": "chat_ids", "messages": [...]}             → the prompt ids from this environment's tokenizer
  {"op": "generate", "ids": [...], "max_new_tokens": N} → tokens, ttft_ms, tpot_ms
  {"op": "logits", "ids": [...], "out": FILE}        → writes float32 [len, vocab] to FILE (.npy)
  {"op": "quit"}
The library's compiled-model cache is a pickle that ``torch.load`` cannot read back on the next run; it is
disabled (``export=False``) and the working directory is a temporary folder, so no pickle is ever written
next to an artifact.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library prints (Python and C) go to stderr, the protocol stays clean
    state: dict = {}
    for line in sys.stdin:
        req = json.loads(line)
        try:
            answer = handle(req, state)
        except Exception as exc:  # reported to the parent, which turns it into one clear line
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        proto.write(json.dumps(answer) + "\n")
        if req.get("op") == "quit":
            break


def handle(req: dict, state: dict) -> dict:
    op = req["op"]
    if op == "load":
        import intel_npu_acceleration_library as npu_lib
        import torch
        import transformers
        from intel_npu_acceleration_library.backend import npu_available
        from intel_npu_acceleration_library.compiler import CompilerConfig

        dtype = {"int4": npu_lib.int4, "int8": npu_lib.int8, "fp16": torch.float16}[req["dtype"]]
        available = bool(npu_available())
        facts = {
            "npu_available": available,
            "library_version": npu_lib.__version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        }
        if available:
            from intel_npu_acceleration_library.backend import get_driver_version

            facts["npu_driver_version"] = str(get_driver_version())
        t0 = time.perf_counter()
        model = npu_lib.NPUModelForCausalLM.from_pretrained(
            req["model"], use_cache=True, config=CompilerConfig(dtype=dtype), attn_implementation="sdpa", export=False
        ).eval()
        facts["load_seconds"] = time.perf_counter() - t0
        state["model"] = model
        state["tokenizer"] = transformers.AutoTokenizer.from_pretrained(req["model"])
        gen = model.generation_config.eos_token_id
        state["eos"] = gen if isinstance(gen, list) else [gen]
        facts["eos"] = state["eos"]
        return facts
    if op == "chat_ids":
        ids = state["tokenizer"].apply_chat_template(req["messages"], add_generation_prompt=True, tokenize=True)
        return {"ids": [int(i) for i in ids]}
    if op == "generate":
        return generate(state, req["ids"], req["max_new_tokens"])
    if op == "logits":
        import numpy as np
        import torch

        with torch.no_grad():
            out = state["model"](torch.tensor([req["ids"]]), use_cache=False)
        np.save(req["out"], out.logits[0].float().numpy())
        return {"ok": True}
    if op == "quit":
        return {"ok": True}
    raise ValueError(f"unknown op {op}")


def generate(state: dict, ids: list[int], max_new_tokens: int) -> dict:
    """Greedy decoding step by step with the KV cache, timing the first token and each later one."""
    import torch

    model, eos = state["model"], set(state["eos"])
    tokens: list[int] = []
    steps: list[float] = []
    with torch.no_grad():
        t0 = time.perf_counter()
        out = model(torch.tensor([ids]), use_cache=True)
        past = out.past_key_values
        nxt = int(out.logits[0, -1].argmax())
        ttft = time.perf_counter() - t0
        tokens.append(nxt)
        while len(tokens) < max_new_tokens and nxt not in eos:
            ts = time.perf_counter()
            out = model(torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
            past = out.past_key_values
            nxt = int(out.logits[0, -1].argmax())
            steps.append(time.perf_counter() - ts)
            tokens.append(nxt)
    tpot = 1000 * sum(steps) / len(steps) if steps else None
    return {"tokens": tokens, "ttft_ms": 1000 * ttft, "tpot_ms": tpot}


if __name__ == "__main__":
    main()
