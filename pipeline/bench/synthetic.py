"""A random-weight checkpoint with Phi-3-mini-4k's exact shapes (bf16 safetensors shards, ~7.6 GB).

Written shard by shard so the RAM stays bounded; the tokenizer and chat template are the embedded model's
(the shapes, not the vocabulary's content, decide the cost of every step measured).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

PHI3_MINI = {
    "hidden_size": 3072,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "intermediate_size": 8192,
    "vocab_size": 32064,
    "max_position_embeddings": 4096,
    "original_max_position_embeddings": 4096,
}


def make_phi3_mini_shaped(out: Path, tokenizer_from: Path, seed: int = 0, shard_bytes: int = 2 * 10**9) -> int:
    """Write a random-weight Phi-3-mini-4k-shaped bf16 checkpoint, shard by shard (bounded RAM)."""
    import torch
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    cfg = json.loads((tokenizer_from / "config.json").read_text())
    cfg.update(PHI3_MINI)
    cfg["dtype"] = "bfloat16"
    cfg.pop("torch_dtype", None)
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    for f in ("generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tokenizer_from / f).is_file():
            shutil.copyfile(tokenizer_from / f, out / f)

    h, inter, v, layers = (
        PHI3_MINI["hidden_size"],
        PHI3_MINI["intermediate_size"],
        PHI3_MINI["vocab_size"],
        PHI3_MINI["num_hidden_layers"],
    )
    shapes: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens.weight", (v, h))]
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes += [
            (p + "input_layernorm.weight", (h,)),
            (p + "self_attn.qkv_proj.weight", (3 * h, h)),
            (p + "self_attn.o_proj.weight", (h, h)),
            (p + "post_attention_layernorm.weight", (h,)),
            (p + "mlp.gate_up_proj.weight", (2 * inter, h)),
            (p + "mlp.down_proj.weight", (h, inter)),
        ]
    shapes += [("model.norm.weight", (h,)), ("lm_head.weight", (v, h))]
    gen = torch.Generator().manual_seed(seed)
    shards: list[dict[str, Any]] = [{}]
    size = 0
    for name, shape in shapes:
        n = 2
        for d in shape:
            n *= d
        if size + n > shard_bytes and shards[-1]:
            shards.append({})
            size = 0
        shards[-1][name] = shape
        size += n
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        tensors = {}
        for name, shape in shard.items():
            if name.endswith("norm.weight"):
                tensors[name] = torch.ones(shape, dtype=torch.bfloat16)
            else:
                tensors[name] = (torch.randn(shape, generator=gen, dtype=torch.float32) * 0.02).to(torch.bfloat16)
            weight_map[name] = fname
            total += tensors[name].numel() * 2
        save_file(tensors, str(out / fname), metadata={"format": "pt"})
        del tensors
    (out / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
    )
    return total


def tokenizer_source(project_root: Path) -> Path:
    """A folder with the embedded model's tokenizer and config (built on demand, offline).

    The project's source folder only when it holds the embedded model: with another model selected it holds that
    model's tokenizer and config (measured: smollm2-135m's 49152-token vocabulary and tied embeddings made a
    bench model whose reference stage failed with an IndexError)."""
    from pipeline import cache, layout
    from pipeline.records import SourceRecord

    src = project_root / layout.source_dir()
    borrowed = (src / "tokenizer.json").is_file() and (src / SourceRecord.FILE).is_file()
    if borrowed and SourceRecord.read(src).model == "embedded":
        return src
    from pipeline.params import load_params
    from pipeline.sources import embedded

    out = cache.bench_tokenizer()
    if not (out / "tokenizer.json").is_file():
        out.mkdir(parents=True, exist_ok=True)
        embedded.fetch(load_params(project_root / "params.yaml").models["embedded"], out)
    return out
