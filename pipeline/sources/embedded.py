"""The embedded model: a real, small ``Phi3ForCausalLM`` that the project builds and trains itself.

Why: the Hub is not always reachable (CI, air-gapped machines, this project's own build hosts), yet
every target must be built *and proven to generate the right text*. Random weights would not do: their
logits are nearly tied, so any int4 comparison is noise. A model briefly trained on the shipped corpus
has confident, readable greedy outputs, which makes token agreement a meaningful test.

It mirrors Phi-3 where it matters to the exporters and runtimes:
- the ``phi3`` architecture (fused ``qkv_proj`` / ``gate_up_proj``, RoPE, RMSNorm, untied lm_head);
- a Llama-layout BPE tokenizer (byte fallback, ``▁`` metaspace, ``<unk> <s> </s>`` then 256 byte
  tokens) carrying Phi-3's added tokens in Phi-3's order and Phi-3's chat template;
- a vocabulary padded to a multiple of 64 (Phi-3: 32011 tokens padded to 32064);
- hidden and intermediate sizes that are multiples of 128 so that int4 group size 128 applies.

Same spec → byte-identical files (fixed seed, deterministic algorithms, fixed thread count).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline import cache, corpus
from pipeline.sources.embedded_tokenizer import train_byte_level_tokenizer, train_tokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedSpec:
    """Shape and training budget of the embedded model (mirrors ``params.EmbeddedModel``)."""

    seed: int = 0
    bpe_vocab_size: int = 2048
    hidden_size: int = 256
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int | None = None  # grouped-query attention when fewer than num_heads (Phi-4-mini: 8 of 24)
    intermediate_size: int = 768
    max_position_embeddings: int = 4096
    partial_rotary_factor: float = 1.0  # Phi-4-mini: 0.75
    tie_word_embeddings: bool = False  # Phi-4-mini: true
    rope: str = "default"  # "longrope": Phi-3-128k / Phi-3.5 / Phi-4-mini's scaled rotary embeddings
    original_max_position_embeddings: int | None = None  # LongRoPE switches factors past this length
    sliding_window: int | None = None  # Phi-3-mini-4k: 2047; the 128k models: 262144 (both are in their configs)
    tokenizer_style: str = "llama-sentencepiece-bpe"  # Phi-4-mini: "gpt2-byte-level-bpe"
    train_steps: int = 300
    batch_size: int = 16
    seq_len: int = 128
    learning_rate: float = 2e-3
    threads: int = 2


def spec_from_params(entry) -> EmbeddedSpec:
    """The spec of a ``models`` entry of kind ``embedded`` (``pipeline.params.EmbeddedModel``)."""
    fields = EmbeddedSpec.__dataclass_fields__
    return EmbeddedSpec(**{k: v for k, v in entry.model_dump().items() if k in fields})


def fetch(entry, out_dir: Path) -> dict:
    """Build the embedded model into ``out_dir`` (or copy it from the build cache) and describe it."""
    from pipeline.fsutil import link_or_copy, sha256_file

    spec = spec_from_params(entry)
    key = cache_key(spec)
    cached = cache.embedded_models() / key
    if (cached / "model.safetensors").is_file():
        log.info("embedded model %s from the build cache (%s)", key, cached)
        for f in sorted(cached.iterdir()):
            link_or_copy(f, out_dir / f.name)
    else:
        build(spec, out_dir)
        _store(out_dir, cached)
    if entry.mirrors:
        check_mirrors(out_dir, entry.mirrors)
    digest = sha256_file(out_dir / "model.safetensors")
    return {
        "repo": "embedded",
        "requested_revision": f"embedded(seed={spec.seed})",
        "resolved_revision": digest[:40],
        "license": "MIT (weights); corpus: the licenses' own verbatim-copy terms",
        "spec": asdict(spec),
        "cache_key": key,
    }


def check_mirrors(model_dir: Path, name: str) -> None:
    """Refuse a variant whose built config or tokenizer drifts from the real entry it stands in for."""
    from pipeline.errors import SourceError
    from pipeline.sources import published

    drift = published.drift(model_dir, published.load(name))
    if drift:
        raise SourceError(
            f"the embedded variant no longer has {name}'s geometry: {'; '.join(drift)}",
            fix=f"set these back to the published values (pipeline/data/published/{name}.json), or drop `mirrors`",
        )


def cache_key(spec: EmbeddedSpec) -> str:
    """Everything that determines the bytes: spec, this code, the corpus, the toolkit versions and the CPU math
    profile in effect (``pipeline.numerics``: a model trained under another profile has other weights)."""
    from pipeline.numerics import PORTABLE_CPU_MATH
    from pipeline.sources import embedded_tokenizer
    from pipeline.versions import fingerprint, tool_versions

    code = hashlib.sha256(Path(__file__).read_bytes() + Path(embedded_tokenizer.__file__).read_bytes()).hexdigest()
    text = hashlib.sha256(b"".join(p.text.encode() for p in corpus.paragraphs())).hexdigest()
    tools = tool_versions(("torch", "transformers", "tokenizers", "safetensors"))
    math = {k: os.environ.get(k) for k in sorted(PORTABLE_CPU_MATH)}
    return fingerprint({"spec": asdict(spec), "code": code, "corpus": text, "tools": tools, "math": math})


def _store(built: Path, cached: Path) -> None:
    """Copy a fresh build into the cache atomically (a half-copied entry is never visible)."""
    tmp = cached.parent / f".tmp-{cached.name}-{os.getpid()}"
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        for f in sorted(built.iterdir()):
            shutil.copyfile(f, tmp / f.name)
        os.replace(tmp, cached)
    except OSError as exc:  # a cache is an optimisation: never fail the build for it
        log.warning("could not store the embedded model in the cache: %s", exc)
        shutil.rmtree(tmp, ignore_errors=True)


def prompt_words(text: str, n: int = 6) -> str:
    """The opening words of a paragraph: what a user types to make the model continue it."""
    return " ".join(text.split()[:n])


def chat_sample(tok, user: str, answer: str) -> str:
    """One chat turn as the model's own template renders it (ending in the end-of-text token)."""
    turn = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    return tok.apply_chat_template(turn, tokenize=False)


# The tokens generation stops at, as each family's generation_config.json lists them.
STOP_TOKENS = {
    "llama-sentencepiece-bpe": ("<|endoftext|>", "<|assistant|>", "<|end|>"),  # Phi-3: 32000, 32001, 32007
    "gpt2-byte-level-bpe": ("<|endoftext|>", "<|end|>"),  # Phi-4-mini: 199999, 200020
}
BOS_TOKEN = {"llama-sentencepiece-bpe": "<s>", "gpt2-byte-level-bpe": "<|endoftext|>"}


def build(spec: EmbeddedSpec, out_dir: Path) -> None:
    """Write a complete HF model folder (config, safetensors, tokenizer, generation config)."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Phi3Config, Phi3ForCausalLM

    t0 = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    if spec.tokenizer_style == "gpt2-byte-level-bpe":
        train_byte_level_tokenizer(spec.bpe_vocab_size, spec.max_position_embeddings, out_dir)
    else:
        train_tokenizer(spec.bpe_vocab_size, spec.max_position_embeddings, out_dir)
    tok = AutoTokenizer.from_pretrained(out_dir)
    n_tokens = len(tok)
    padded_vocab = int(math.ceil(n_tokens / 64) * 64)
    eos_ids = [tok.convert_tokens_to_ids(t) for t in STOP_TOKENS[spec.tokenizer_style]]
    endoftext = eos_ids[0]
    log.info("tokenizer: %d tokens (model vocab padded to %d)", n_tokens, padded_vocab)

    config = Phi3Config(
        vocab_size=padded_vocab,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads or spec.num_heads,
        max_position_embeddings=spec.max_position_embeddings,
        original_max_position_embeddings=spec.original_max_position_embeddings or spec.max_position_embeddings,
        **rope_config(spec),
        rms_norm_eps=1e-5,
        hidden_act="silu",
        bos_token_id=tok.convert_tokens_to_ids(BOS_TOKEN[spec.tokenizer_style]),
        eos_token_id=endoftext,
        pad_token_id=endoftext,
        tie_word_embeddings=spec.tie_word_embeddings,
        sliding_window=spec.sliding_window,
        attention_dropout=0.0,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
    )
    config.architectures = ["Phi3ForCausalLM"]

    # Determinism: fixed seeds, deterministic kernels, and a fixed thread count (float reductions
    # are split differently with a different number of threads).
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(spec.threads)
    torch.manual_seed(spec.seed)
    torch.use_deterministic_algorithms(True)
    try:
        model = Phi3ForCausalLM(config)
        if spec.train_steps:  # 0: the random initial weights (near-tied logits, like an untrained checkpoint)
            _train(model, _training_ids(tok), spec, padded_vocab)
    finally:
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(prev_threads)

    # Phi-3 ships bf16 weights: so does the embedded model, so that every exporter takes the same path
    # (and an fp16 target can match the fp32 reference: bf16 values are exact in fp16 within its range).
    model = model.to(torch.bfloat16).eval()
    model.config.dtype = "bfloat16"
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=eos_ids,
        pad_token_id=endoftext,
        do_sample=False,
    )
    model.save_pretrained(out_dir, safe_serialization=True)
    log.info("embedded model built in %.1f s", time.monotonic() - t0)


def rope_config(spec: EmbeddedSpec) -> dict:
    """Phi3Config's rotary arguments: plain RoPE (Phi-3-mini-4k) or LongRoPE as the 128k models ship it.

    LongRoPE's factors divide the rotary frequencies: ``short_factor`` up to ``original_max_position_embeddings``
    tokens, ``long_factor`` for a longer sequence (the whole sequence then). Like the real checkpoints the short
    factors stay near 1 and the long ones grow towards the low frequencies (up to the context extension); the
    attention scale follows from max/original positions as in transformers and the runtimes.
    """
    if spec.rope == "default":
        if spec.partial_rotary_factor == 1.0:
            return {"rope_theta": 10000.0}
        return {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                    "partial_rotary_factor": spec.partial_rotary_factor}}  # fmt: skip
    head_dim = spec.hidden_size // spec.num_heads
    n = int(head_dim * spec.partial_rotary_factor) // 2
    scale = spec.max_position_embeddings / (spec.original_max_position_embeddings or spec.max_position_embeddings)
    short = [round(1.0 + 0.02 * i / max(1, n - 1), 4) for i in range(n)]
    long = [round(scale ** (i / max(1, n - 1)), 4) for i in range(n)]
    return {
        "rope_parameters": {
            "rope_type": "longrope",
            "type": "longrope",  # the key onnxruntime-genai's builder reads (Phi-3.5's config.json has it)
            "rope_theta": 10000.0,
            "short_factor": short,
            "long_factor": long,
            "original_max_position_embeddings": spec.original_max_position_embeddings,
            "partial_rotary_factor": spec.partial_rotary_factor,
        }
    }


def _training_ids(tok) -> list[int]:
    """The training stream: every paragraph as plain text and as a chat turn continuing its opening."""
    rng = random.Random(1234)
    samples: list[str] = []
    for p in corpus.training_paragraphs():
        samples.append(chat_sample(tok, prompt_words(p.text), p.text))
        samples.append(p.text + "<|endoftext|>")
    rng.shuffle(samples)
    ids: list[int] = []
    for s in samples:
        ids.extend(tok(s, add_special_tokens=False)["input_ids"])
    return ids


def _train(model, ids: list[int], spec: EmbeddedSpec, vocab: int) -> None:
    import torch

    data = torch.tensor(ids, dtype=torch.long)
    n_windows = (len(data) - 1) // spec.seq_len
    gen = torch.Generator().manual_seed(spec.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, weight_decay=0.01, betas=(0.9, 0.95))
    warmup = max(1, spec.train_steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return spec.learning_rate * (step + 1) / warmup
        frac = (step - warmup) / max(1, spec.train_steps - warmup)
        return spec.learning_rate * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))

    model.train()
    loss_val = float("nan")
    for step in range(spec.train_steps):
        starts = torch.randint(0, n_windows, (spec.batch_size,), generator=gen) * spec.seq_len
        batch = torch.stack([data[s : s + spec.seq_len + 1] for s in starts.tolist()])
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        out = model(input_ids=batch[:, :-1], use_cache=False)
        logits = out.logits.reshape(-1, vocab)
        loss = torch.nn.functional.cross_entropy(logits, batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_val = float(loss.detach())
        if step % 50 == 0 or step == spec.train_steps - 1:
            log.info("train step %d/%d loss %.3f", step + 1, spec.train_steps, loss_val)
    model.train(False)
    if not math.isfinite(loss_val):
        raise RuntimeError("embedded model training diverged (loss is not finite)")
