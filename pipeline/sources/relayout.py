"""A Llama-architecture checkpoint in one GGUF file, re-laid as ``Phi3ForCausalLM``, proven to be the same function.

Why: a real trained model is what int4 recipes must hold on (the embedded models' int4 KL is 0.01–0.04, a real
checkpoint's 0.3–0.8 with the same recipes), and the only real trained chat models this project can reach
offline ship inside registry packages, in llama.cpp's GGUF format. Phi-3 *is* the Llama block with two fused
projections (``qkv_proj`` = q|k|v, ``gate_up_proj`` = gate|up) and the same RMSNorm, SiLU MLP and rotary
embedding, so a Llama checkpoint re-laid that way is a Phi-3 that every exporter takes down its Phi-3 path.

Two proofs, both refused in one line when they fail: the Phi-3 model's logits equal the original architecture's
(transformers' own GGUF reader building ``LlamaForCausalLM`` from the same bf16 weights), and the tokenizer
written here gives the ids that transformers' conversion of the GGUF tokenizer gives.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipeline.errors import SourceError
from pipeline.sources.tokenizer_files import added_tokens_decoder, special_token, write_json, write_tokenizer_json

log = logging.getLogger(__name__)

# Probe text for the two equality checks: chat markup, digits, punctuation, non-ASCII and a long word.
PROBE = (
    "<|im_start|>user\nWhat is 17×23? Answer: 391, it's “easy”.<|im_end|>\n<|im_start|>assistant\nAntidisestablishment"
)
LOGITS_ATOL = 1e-3  # fp32 logits of the two layouts (the fused matmuls add in another order)

# llama.cpp's name for a tokenizer's pre-tokenizer → the tokenizers pre-tokenizer that splits the same way
PRE_TOKENIZERS: dict[str, list[dict[str, Any]]] = {
    "smollm": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    ],
    "gpt2": [{"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}],
}
CONTROL = 3  # GGUF token type of special tokens
# What a user can do when a checkpoint is not one this re-layout can prove equal to its original
CANNOT_PROVE = "choose another package, or convert the model yourself and add it as a `kind: local` folder"


def gguf_fields(path: Path) -> dict[str, Any]:
    """The GGUF file's metadata (tokenizer vocabulary, merges, ids, template, shapes)."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    return {name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")}


def write_tokenizer(meta: dict[str, Any], out_dir: Path) -> None:
    """``tokenizer.json`` and ``tokenizer_config.json`` in the Hugging Face layout, from the GGUF's own fields."""

    if meta.get("tokenizer.ggml.model") != "gpt2":
        raise SourceError(
            f"the GGUF tokenizer is {meta.get('tokenizer.ggml.model')!r}; only byte-level BPE ('gpt2') is converted",
            fix="choose a package whose model has a byte-level BPE tokenizer",
        )
    pre = meta.get("tokenizer.ggml.pre", "gpt2")
    if pre not in PRE_TOKENIZERS:
        raise SourceError(
            f"the GGUF pre-tokenizer {pre!r} has no known tokenizers equivalent here",
            fix=f"known: {', '.join(PRE_TOKENIZERS)}",
        )
    tokens: list[str] = meta["tokenizer.ggml.tokens"]
    types: list[int] = meta["tokenizer.ggml.token_type"]
    merges = [m.split(" ") for m in meta["tokenizer.ggml.merges"]]
    special = [i for i, t in enumerate(types) if t == CONTROL]
    added = [special_token(i, tokens[i]) for i in special]
    unk_id = meta.get("tokenizer.ggml.unknown_token_id")
    data = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": PRE_TOKENIZERS[pre]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": tokens[unk_id] if unk_id is not None else None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": {t: i for i, t in enumerate(tokens)},
            "merges": merges,
        },
    }
    write_tokenizer_json(data, out_dir)

    def name(key: str) -> str | None:
        i = meta.get(f"tokenizer.ggml.{key}_token_id")
        return tokens[i] if i is not None else None

    config = {
        "add_bos_token": bool(meta.get("tokenizer.ggml.add_bos_token", False)),
        "add_prefix_space": False,
        "added_tokens_decoder": added_tokens_decoder(added),
        "bos_token": name("bos"),
        "eos_token": name("eos"),
        "pad_token": name("padding"),
        "unk_token": name("unknown"),
        "chat_template": meta.get("tokenizer.chat_template"),
        "clean_up_tokenization_spaces": False,
        "model_max_length": int(meta["llama.context_length"]),
        "tokenizer_class": "GPT2Tokenizer",
    }
    write_json(out_dir / "tokenizer_config.json", config)


def phi3_config(llama) -> Any:
    """The Phi-3 config of the same shape (no attention window, no LongRoPE: as the Llama checkpoint has)."""
    from transformers import Phi3Config

    c = llama.config
    rope = getattr(c, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        raise SourceError(
            f"the checkpoint's rotary embedding is {rope.get('rope_type')!r}; only plain RoPE converts",
            fix=CANNOT_PROVE,
        )
    config = Phi3Config(
        vocab_size=c.vocab_size,
        hidden_size=c.hidden_size,
        intermediate_size=c.intermediate_size,
        num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=c.num_attention_heads,
        num_key_value_heads=c.num_key_value_heads,
        max_position_embeddings=c.max_position_embeddings,
        original_max_position_embeddings=c.max_position_embeddings,
        rope_theta=float(rope.get("rope_theta", getattr(c, "rope_theta", 10000.0))),
        rms_norm_eps=c.rms_norm_eps,
        hidden_act=c.hidden_act,
        tie_word_embeddings=c.tie_word_embeddings,
        bos_token_id=c.bos_token_id,
        eos_token_id=c.eos_token_id,
        pad_token_id=c.pad_token_id,
        sliding_window=None,
        attention_dropout=0.0,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
    )
    config.architectures = ["Phi3ForCausalLM"]
    return config


def phi3_state_dict(llama) -> dict[str, Any]:
    """Llama's tensors under Phi-3's names, q|k|v and gate|up concatenated along the output dimension."""
    import torch

    sd = llama.state_dict()
    out = {"model.embed_tokens.weight": sd["model.embed_tokens.weight"], "model.norm.weight": sd["model.norm.weight"]}
    if not llama.config.tie_word_embeddings:
        out["lm_head.weight"] = sd["lm_head.weight"]
    for i in range(llama.config.num_hidden_layers):
        p = f"model.layers.{i}."
        out[p + "self_attn.qkv_proj.weight"] = torch.cat([sd[p + f"self_attn.{x}_proj.weight"] for x in "qkv"], dim=0)
        out[p + "self_attn.o_proj.weight"] = sd[p + "self_attn.o_proj.weight"]
        out[p + "mlp.gate_up_proj.weight"] = torch.cat([sd[p + "mlp.gate_proj.weight"], sd[p + "mlp.up_proj.weight"]])
        out[p + "mlp.down_proj.weight"] = sd[p + "mlp.down_proj.weight"]
        for norm in ("input_layernorm", "post_attention_layernorm"):
            out[p + f"{norm}.weight"] = sd[p + f"{norm}.weight"]
    return out


def convert(gguf_path: Path, out_dir: Path) -> dict[str, Any]:
    """Write a Phi-3 model folder (bf16 safetensors, config, generation config, tokenizer) from ``gguf_path``
    and return what the source record states about the conversion."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, Phi3ForCausalLM

    meta = gguf_fields(gguf_path)
    if meta.get("general.architecture") != "llama":
        raise SourceError(
            f"{gguf_path.name} is a {meta.get('general.architecture')!r} model; only the Llama architecture is "
            "re-laid as Phi-3",
            fix="choose a package that ships a Llama-architecture GGUF",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    write_tokenizer(meta, out_dir)
    ours = AutoTokenizer.from_pretrained(out_dir)
    theirs = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    a, b = ours(PROBE, add_special_tokens=False)["input_ids"], theirs(PROBE, add_special_tokens=False)["input_ids"]
    if a != b:
        raise SourceError(f"the tokenizer written from {gguf_path.name} splits the probe text differently from "
                          f"transformers' GGUF tokenizer ({len(a)} against {len(b)} ids)", fix=CANNOT_PROVE)  # fmt: skip

    # The original architecture, from transformers' own GGUF reader; bf16 as the Phi-3 checkpoints ship, and
    # compared in fp32 from those very bf16 values.
    llama = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    with torch.no_grad():  # the weights only: ``.to(bfloat16)`` would round the rotary frequencies' buffer too
        for p in llama.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))
    llama.eval()
    phi3 = Phi3ForCausalLM(phi3_config(llama)).eval()
    missing, unexpected = phi3.load_state_dict(phi3_state_dict(llama), strict=False)
    if unexpected or [k for k in missing if k != "lm_head.weight"]:
        raise SourceError(
            f"re-layout left weights unmapped: missing {missing[:3]}, unexpected {unexpected[:3]}", fix=CANNOT_PROVE
        )
    if phi3.config.tie_word_embeddings:
        phi3.tie_weights()
    ids = torch.tensor([a])
    with torch.no_grad():
        want, got = llama(ids).logits[0], phi3(ids).logits[0]
    diff = float((want - got).abs().max())
    same_top1 = bool((want.argmax(-1) == got.argmax(-1)).all())
    if diff > LOGITS_ATOL or not same_top1:
        raise SourceError(
            f"the Phi-3 re-layout is not the same function as the original Llama model: max |Δlogit| {diff:.3g} "
            f"over {len(a)} tokens (bound {LOGITS_ATOL}), same top-1 everywhere: {same_top1}",
            fix=CANNOT_PROVE,
        )
    log.info("re-laid as Phi3ForCausalLM: max |Δlogit| %.2e over %d tokens, same top-1", diff, len(a))

    phi3 = phi3.to(torch.bfloat16)
    phi3.config.dtype = "bfloat16"
    eos = phi3.config.eos_token_id
    phi3.generation_config = GenerationConfig(
        bos_token_id=phi3.config.bos_token_id, eos_token_id=eos, pad_token_id=phi3.config.pad_token_id, do_sample=False
    )
    phi3.save_pretrained(out_dir, safe_serialization=True)
    return {"original": "LlamaForCausalLM", "max_abs_logit_difference": diff, "probe_tokens": len(a)}
