"""The reference: the source model in transformers, computed in fp32, on CPU.

Phi checkpoints ship bf16 weights. Loading them as fp32 holds an fp32 copy of every weight (15 GB for
Phi-3-mini, 20 GiB peak with the file mapping). Instead the weights stay in their 16-bit dtype and every
computation is fp32: each Linear up-casts its own weight the moment it is used (a transient copy of one
matrix), the embedding rows are up-cast as they are looked up, and from there every activation, norm,
rotary table, attention score and logit is fp32 exactly as in an fp32 load. Up-casting bf16/fp16 to fp32 is
exact, so the logits are the same bits as the fp32 load's (``tests/validate/test_reference.py`` compares
them); the price is re-reading the 16-bit weights on every forward pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.runners.base import DeviceChoice, Generation
from pipeline.targets.base import ModelDims


@dataclass
class Scored:
    """One greedy answer (up to and with its stop token) and the log-probs of every step that made it."""

    tokens: list[int]
    logprobs: np.ndarray  # [step, vocab]: the log-softmax (float64) of the logits that chose each token


class TransformersRunner:
    def __init__(self, model_dir: Path, threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        t0 = time.perf_counter()
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.dims = ModelDims.from_config(Path(model_dir) / "config.json")
        stored = checkpoint_dtype(Path(model_dir))
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=stored, trust_remote_code=False).eval()
        if stored != torch.float32:
            compute_in_fp32(self.model)
        self.load_seconds = time.perf_counter() - t0
        self.choice = DeviceChoice(
            device="CPU", intended="CPU", details={"dtype": "float32", "runtime": "transformers"}
        )
        self.properties: dict = {"dtype": "float32", "weights_held_as": str(stored).removeprefix("torch.")}
        self.effective = {"threads": str(torch.get_num_threads())}
        gen = self.model.generation_config.eos_token_id
        self.eos = set(gen if isinstance(gen, list) else [gen]) if gen is not None else set()

    def chat_ids(self, messages: list[dict[str, str]]) -> list[int]:
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
        return [int(i) for i in ids]

    def generate(self, ids: list[int], max_new_tokens: int, ignore_eos: bool = False) -> Generation:
        return self.generate_scored(ids, max_new_tokens, ignore_eos=ignore_eos)[0]

    def generate_scored(
        self, ids: list[int], max_new_tokens: int, k: int = 10, ignore_eos: bool = False
    ) -> tuple[Generation, list[list[int]], list[list[float]]]:
        """Greedy tokens and, at every generated step, the ``k`` most likely tokens with their log-probs."""
        if ignore_eos:
            raise NotImplementedError("the reference always stops at the end-of-sequence token")
        import torch

        from pipeline.validate.parity import log_softmax, top_k

        inp = torch.tensor([ids])
        t0 = time.perf_counter()
        with torch.no_grad():
            out = self.model.generate(
                inp,
                attention_mask=torch.ones_like(inp),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=sorted(self.eos) or None,
                pad_token_id=self.model.generation_config.pad_token_id,
                output_logits=True,
                return_dict_in_generate=True,
            )
        seconds = time.perf_counter() - t0
        tokens = out.sequences[0, len(ids) :].tolist()
        tops = [top_k(log_softmax(step[0].float().numpy()), k) for step in out.logits]
        n = max(1, len(tokens))
        gen = Generation(tokens=tokens, seconds=seconds, tpot_ms=1000 * seconds / n)
        return gen, [t[0] for t in tops], [t[1] for t in tops]

    def generate_batch(self, prompts: list[list[int]], max_new_tokens: int) -> list[Scored]:
        """Greedy answers to every prompt in one batch (left padding + attention mask), with the full log-probs
        at every generated step. A decode step is bound by reading the weights (7.6 GB of bf16 for Phi-3-mini,
        widened matrix by matrix), so one step for all prompts costs about what one step for one prompt does.
        Each answer runs to its first stop token (kept, as ``generate_scored`` keeps it) or ``max_new_tokens``;
        the padded rows' positions come from the attention mask, so every prompt sees the positions it would
        alone (``tests/validate/test_reference.py`` holds the batch against one prompt at a time)."""
        # The batch is as wide as its longest prompt: padded, a short prompt's row may reach past the model's
        # original context, where LongRoPE picks its factors from the batch's width and, without LongRoPE,
        # the rows' answers moved too (seen: a 4088-token prompt beside 6 short ones, 4096 positions). A prompt
        # whose answer could pass it runs alone, as the ones after it would without the batch.
        edge = self.context_edge
        alone = [i for i, p in enumerate(prompts) if edge and len(p) + max_new_tokens > edge]
        together = [i for i in range(len(prompts)) if i not in alone]
        answers: dict[int, Scored] = {}
        for group in [together] + [[i] for i in alone]:
            if group:
                answers.update(zip(group, self._batch([prompts[i] for i in group], max_new_tokens), strict=True))
        return [answers[i] for i in range(len(prompts))]

    def _batch(self, prompts: list[list[int]], max_new_tokens: int) -> list[Scored]:
        import torch

        from pipeline.validate.parity import log_softmax

        width = max(len(p) for p in prompts)
        pad = self.pad_id()
        inp = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        with torch.no_grad():
            out = self.model.generate(
                inp,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=sorted(self.eos) or None,
                pad_token_id=pad,
                output_logits=True,
                return_dict_in_generate=True,
            )
        steps = torch.stack(list(out.logits), dim=1).float().numpy()  # [prompt, step, vocab]
        answers = []
        for row, seq in enumerate(out.sequences[:, width:].tolist()):
            end = next((i + 1 for i, t in enumerate(seq) if t in self.eos), len(seq))
            answers.append(Scored(tokens=seq[:end], logprobs=log_softmax(steps[row, :end])))
        return answers

    @property
    def context_edge(self) -> int | None:
        """Positions past which cached decoding is not a full pass's computation: LongRoPE's switch (the cache
        holds short-factor keys), else the model's context."""
        return self.dims.original_max_position_embeddings or self.dims.max_position_embeddings

    def pad_id(self) -> int:
        """A token id for the padding (masked, so any id the embedding has; Phi-3 names its own)."""
        for v in (self.model.generation_config.pad_token_id, self.tokenizer.pad_token_id, *sorted(self.eos)):
            if isinstance(v, int):
                return v
        return 0

    def logits(self, ids: list[int]) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.model(torch.tensor([ids]), use_cache=False)
        return out.logits[0].float().numpy()

    def close(self) -> None:
        del self.model


def checkpoint_dtype(model_dir: Path):
    """The dtype the weights are stored in (config.json's dtype / torch_dtype; fp32 when it says nothing)."""
    import json

    import torch

    cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    name = cfg.get("dtype") or cfg.get("torch_dtype") or "float32"
    dtype = getattr(torch, str(name), torch.float32)
    return dtype if dtype in (torch.bfloat16, torch.float16) else torch.float32


def compute_in_fp32(model) -> None:
    """Make a model loaded with 16-bit weights compute exactly as if it had been loaded in fp32.

    Each Linear widens its weight into one scratch buffer shared by all layers, then calls ``F.linear`` with
    the same shapes the fp32 load would: the same kernel, so the same logits bit for bit (tested). A fresh
    fp32 tensor per call would cost page faults on every decode step (86 ms against 22 ms for Phi-3-mini's
    gate_up projection, measured). Widening a few rows at a time was faster still in isolation, but a
    matrix-vector product over a slice of rows is a different kernel: measured at Phi-3-mini's shapes, its
    outputs differ from the fp32 load's in the last bits — so the reference does not do it."""
    import torch
    import torch.nn.functional as F

    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    largest = max((m.weight.numel() for m in linears), default=0)
    full = torch.empty(largest, dtype=torch.float32)

    def linear_fp32(self, x):
        bias = None if self.bias is None else self.bias.float()
        w = self.weight
        wide = full[: w.numel()].view(w.shape)
        wide.copy_(w)
        return F.linear(x, wide, bias)

    def embedding_fp32(self, ids):
        return F.embedding(ids, self.weight, self.padding_idx).float()

    # Norm weights multiply fp32 activations (fp32 by type promotion); RoPE's frequencies are fp32 buffers.
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.forward = linear_fp32.__get__(module)
        elif isinstance(module, torch.nn.Embedding):
            module.forward = embedding_fp32.__get__(module)
