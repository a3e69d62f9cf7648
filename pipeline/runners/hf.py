"""The reference: the source model in transformers, fp32, on CPU."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pipeline.runners.base import DeviceChoice, Generation


class TransformersRunner:
    def __init__(self, model_dir: Path, threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        t0 = time.perf_counter()
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(
            model_dir, dtype=torch.float32, trust_remote_code=False
        ).eval()
        self.load_seconds = time.perf_counter() - t0
        self.choice = DeviceChoice(
            device="CPU", intended="CPU", details={"dtype": "float32", "runtime": "transformers"}
        )
        self.properties: dict = {"dtype": "float32"}
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

    def logits(self, ids: list[int]) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.model(torch.tensor([ids]), use_cache=False)
        return out.logits[0].float().numpy()

    def close(self) -> None:
        del self.model
