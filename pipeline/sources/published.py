"""The published configs of the catalogue's real models, kept as data, and what an embedded variant must share.

Why: an embedded variant stands in for a real model wherever the Hub cannot be reached (CI, this project's
build hosts). It proves something about that model only if it has the real model's *geometry* — the shapes
and settings that decide what the exporters and runtimes do: the context sizes and LongRoPE's switch, the
factor vectors' length, head_dim, how query heads share KV heads, partial rotary, tied embeddings, the
attention window, the vocabulary padding and the tokenizer's style. Width (how many heads, how wide the
MLP) and depth (how many layers) are what it may shrink. Shrinking anything else hid real failures: the
variants at 8192 / 256 positions never met the 4096-token edge that three of the four real entries have.

``pipeline/data/published/<entry>.json`` holds each entry's published ``config.json`` values (at the pinned
revision) and its tokenizer's style. ``drift`` says every way a built model differs from them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

DATA_DEPS = ("pipeline/data/published",)  # read at run time: a stage that uses this module depends on them
DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "published"

# Probe conversation for the chat template check: what each template style renders it as.
PROBE = [{"role": "user", "content": "Hi"}]
RENDERED = {
    "phi3": "<|user|>\nHi<|end|>\n<|assistant|>\n",
    "phi4-mini": "<|user|>Hi<|end|><|assistant|>",
}


class PublishedTokenizer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    style: Literal["llama-sentencepiece-bpe", "gpt2-byte-level-bpe"]
    bos_token: str
    eos_token: str
    chat_template: Literal["phi3", "phi4-mini"]


class PublishedConfig(BaseModel):
    """One real entry's published geometry (``pipeline/data/published/<name>.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    repo: str
    revision: str
    config: dict[str, Any]
    tokenizer: PublishedTokenizer


def names() -> list[str]:
    return sorted(p.stem for p in DATA_DIR.glob("*.json"))


@cache
def load(name: str) -> PublishedConfig:
    path = DATA_DIR / f"{name}.json"
    if not path.is_file():
        from pipeline.errors import PipelineError

        raise PipelineError(
            f"no published config for {name!r}", fix=f"mirror one of: {', '.join(names())} (pipeline/data/published)"
        )
    return PublishedConfig.model_validate_json(path.read_text(encoding="utf-8"))


def _rope(config: dict[str, Any]) -> dict[str, Any] | None:
    """LongRoPE settings, wherever the config keeps them (``rope_scaling`` in the published files,
    ``rope_parameters`` as transformers 5 writes them); plain RoPE → None."""
    rope = config.get("rope_scaling") or config.get("rope_parameters")
    if not rope:
        return None
    kind = rope.get("type") or rope.get("rope_type")
    if kind in (None, "default"):
        return None
    kind = "longrope" if kind == "su" else kind  # "su" is LongRoPE's first name in the Phi-3 configs
    out = {"type": kind}
    for side in ("long_factor", "short_factor"):
        out[f"{side}_length"] = rope.get(f"{side}_length", len(rope.get(side) or []))
    return out


def geometry(config: dict[str, Any]) -> dict[str, Any]:
    """What an embedded variant must share with the real model: everything but width and depth."""
    heads = config["num_attention_heads"]
    kv = config.get("num_key_value_heads") or heads
    return {
        "model_type": config.get("model_type"),
        "max_position_embeddings": config.get("max_position_embeddings"),
        "original_max_position_embeddings": config.get("original_max_position_embeddings")
        or config.get("max_position_embeddings"),
        "rope": _rope(config),
        "rope_theta": float(config.get("rope_theta") or (config.get("rope_parameters") or {}).get("rope_theta")),
        "head_dim": config.get("head_dim") or config["hidden_size"] // heads,
        "query_heads_per_kv_head": heads // kv,
        "partial_rotary_factor": float(
            config.get("partial_rotary_factor")
            or (config.get("rope_parameters") or {}).get("partial_rotary_factor")
            or 1.0
        ),
        "tie_word_embeddings": bool(config.get("tie_word_embeddings", False)),
        "sliding_window": config.get("sliding_window"),
        "vocab_padded_to_64": config["vocab_size"] % 64 == 0,
    }


def tokenizer_style(model_dir: Path) -> str:
    """The style of a model folder's ``tokenizer.json``: SentencePiece-like (byte fallback, ``▁``) or GPT-2
    byte-level."""
    tok = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    pre = json.dumps(tok.get("pre_tokenizer") or {})
    if '"ByteLevel"' in pre:
        return "gpt2-byte-level-bpe"
    if tok["model"].get("byte_fallback"):
        return "llama-sentencepiece-bpe"
    return "other"


def tokenizer_facts(model_dir: Path) -> dict[str, Any]:
    """Style, special tokens and how the chat template renders the probe conversation."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    rendered = tok.apply_chat_template(PROBE, tokenize=False, add_generation_prompt=True)
    style = next((k for k, v in RENDERED.items() if v == rendered), f"unknown ({rendered!r})")
    return {
        "style": tokenizer_style(model_dir),
        "bos_token": tok.bos_token,
        "eos_token": tok.eos_token,
        "chat_template": style,
    }


def drift(model_dir: Path, published: PublishedConfig) -> list[str]:
    """Every way the model folder's geometry or tokenizer differs from the published entry ("" = none)."""
    built = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    have, want = geometry(built), geometry(published.config)
    out = [f"{k}: {have[k]!r}, {published.name} has {want[k]!r}" for k in want if have[k] != want[k]]
    facts = tokenizer_facts(model_dir)
    out += [
        f"tokenizer {k}: {facts[k]!r}, {published.name} has {v!r}"
        for k, v in published.tokenizer.model_dump().items()
        if facts[k] != v
    ]
    return out
