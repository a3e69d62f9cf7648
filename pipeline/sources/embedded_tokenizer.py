"""The embedded model's tokenizer: a byte-fallback BPE in the classic Llama/Phi-3 layout with Phi-3's added
tokens (in Phi-3's id order) and Phi-3's chat template, trained on the shipped corpus."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline import corpus
from pipeline.sources.tokenizer_files import added_tokens_decoder, special_token, write_json, write_tokenizer_json

# Phi-3's added tokens, in Phi-3's id order (32000..32010 in the real model).
PHI3_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|assistant|>", True),
    ("<|placeholder1|>", True),
    ("<|placeholder2|>", True),
    ("<|placeholder3|>", True),
    ("<|placeholder4|>", True),
    ("<|system|>", True),
    ("<|end|>", True),
    ("<|placeholder5|>", True),
    ("<|placeholder6|>", True),
    ("<|user|>", True),
)

# Phi-3-mini-4k-instruct's chat template (tokenizer_config.json of the pinned revision).
PHI3_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)

BYTE_TOKENS = tuple(f"<0x{i:02X}>" for i in range(256))
BASE_SPECIALS = ("<unk>", "<s>", "</s>")


def train_tokenizer(bpe_vocab_size: int, max_position_embeddings: int, out_dir: Path) -> None:
    """Train a byte-fallback BPE and save it in the classic Llama/Phi-3 ``tokenizer.json`` layout.

    The layout is written by hand rather than by ``transformers.LlamaTokenizer``: transformers 5 rebuilds
    Llama tokenizers with a ``Metaspace(prepend_scheme="first")`` pre-tokenizer, which does *not* put a
    ``▁`` after special tokens, while Phi-3's own file (normalizer ``Prepend("▁")`` + ``Replace(" ", "▁")``)
    does — and so do onnxruntime-genai's and OpenVINO's tokenizers. Measured on this model: the
    Metaspace layout gave ORT GenAI different ids after ``<|user|>``; the classic layout gives identical ids
    in transformers, openvino-tokenizers and onnxruntime-genai.
    """
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

    texts = [p.text for p in corpus.training_paragraphs()]
    trainer_tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=True))
    trainer_tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    # Training only: learn merges the way SentencePiece does for Llama/Phi-3 — inside a word, a ▁ only at
    # its start, letters never merged with digits or punctuation, digits one by one and without a ▁
    # (Llama: " 2" → "▁", "2"). Merges that cross
    # those boundaries would be honoured by transformers (whose tokenizer.json has no pre-tokenizer) but
    # not by onnxruntime-genai's tokenizer, which splits there like SentencePiece (measured: "b)" and "in,").
    trainer_tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"▁?\p{L}+|\p{N}|▁?[^\p{L}\p{N}▁]+|▁+"), behavior="isolated")
    n_reserved = len(BASE_SPECIALS) + len(BYTE_TOKENS)
    trainer = trainers.BpeTrainer(
        vocab_size=bpe_vocab_size - n_reserved,
        min_frequency=2,
        show_progress=False,
        special_tokens=[],
        limit_alphabet=200,
    )
    trainer_tok.train_from_iterator(texts, trainer=trainer)
    learned = json.loads(trainer_tok.to_str())["model"]

    vocab: dict[str, int] = {}
    for tok in (*BASE_SPECIALS, *BYTE_TOKENS):  # Llama layout: <unk> <s> </s> <0x00>..<0xFF>
        vocab[tok] = len(vocab)
    for tok, _ in sorted(learned["vocab"].items(), key=lambda kv: kv[1]):
        vocab.setdefault(tok, len(vocab))
    merges = [m.split(" ") if isinstance(m, str) else list(m) for m in learned["merges"]]

    added_tokens = [special_token(vocab[t], t) for t in BASE_SPECIALS]
    added_tokens += [special_token(len(vocab) + i, t) for i, (t, _) in enumerate(PHI3_ADDED_TOKENS)]
    tokenizer_json = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added_tokens,
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
            ],
        },
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {},
        },
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<unk>",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": merges,
        },
    }
    write_tokenizer_json(tokenizer_json, out_dir)

    tokenizer_config = {
        "add_bos_token": False,
        "add_eos_token": False,
        "added_tokens_decoder": added_tokens_decoder(added_tokens),
        "bos_token": "<s>",
        "chat_template": PHI3_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>",
        "legacy": False,
        "model_max_length": max_position_embeddings,
        "pad_token": "<|endoftext|>",
        "padding_side": "left",
        "tokenizer_class": "LlamaTokenizer",
        "unk_token": "<unk>",
        "use_default_system_prompt": False,
    }
    write_json(out_dir / "tokenizer_config.json", tokenizer_config)
    special_map = {"bos_token": "<s>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": "<unk>"}
    write_json(out_dir / "special_tokens_map.json", special_map)


# Phi-4-mini's added tokens after its byte-level vocabulary (ids 199999, then 200018.. in the real model; the
# placeholders between them are kept so that the order and the gap look like the real file).
PHI4_MINI_ENDOFTEXT = "<|endoftext|>"
PHI4_MINI_ADDED_TOKENS: tuple[str, ...] = (
    *(f"<|dummy_id_{i}|>" for i in range(18)),
    "<|endofprompt|>",
    "<|assistant|>",
    "<|end|>",
    "<|user|>",
    "<|system|>",
    "<|tool|>",
    "<|/tool|>",
    "<|tool_call|>",
    "<|/tool_call|>",
    "<|tool_response|>",
    "<|tag|>",
)

# Phi-4-mini-instruct's chat template (tokenizer_config.json): no newline after the role tags, unlike Phi-3.
PHI4_MINI_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' and 'tools' in message and message['tools'] is not none %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|tool|>' + message['tools'] + '<|/tool|>' + '<|end|>' }}"
    "{% else %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% else %}{{ eos_token }}{% endif %}"
)


def train_byte_level_tokenizer(bpe_vocab_size: int, max_position_embeddings: int, out_dir: Path) -> None:
    """Train a GPT-2 byte-level BPE in the layout of Phi-4-mini's ``tokenizer.json``: 256 byte symbols, merges,
    ``<|endoftext|>`` right after the learned vocabulary, then Phi-4-mini's added tokens and its chat template.

    The pre-tokenizer is GPT-2's (``ByteLevel`` with its own regex, no prefix space): Phi-4-mini's file splits
    with a longer o200k-style regex first, which differs only on rare scripts and long digit runs, and which not
    every runtime's tokenizer re-implements; what the variant must share with the real model is the byte-level
    style (no ``▁``, no byte fallback, ``Ġ`` for a space) that the converters take a different path for.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    texts = [p.text for p in corpus.training_paragraphs()]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=bpe_vocab_size,
        min_frequency=2,
        show_progress=False,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer=trainer)
    data = json.loads(tok.to_str())  # the tokenizers library's own file layout, not a record
    model = data["model"]
    n = len(model["vocab"])
    specials = (PHI4_MINI_ENDOFTEXT, *PHI4_MINI_ADDED_TOKENS)
    added_tokens = [special_token(n + i, t) for i, t in enumerate(specials)]
    data["added_tokens"] = added_tokens
    data["post_processor"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": True}
    write_tokenizer_json(data, out_dir)

    tokenizer_config = {
        "add_bos_token": False,
        "add_eos_token": False,
        "added_tokens_decoder": added_tokens_decoder(added_tokens),
        "bos_token": PHI4_MINI_ENDOFTEXT,
        "chat_template": PHI4_MINI_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": PHI4_MINI_ENDOFTEXT,
        "model_max_length": max_position_embeddings,
        "pad_token": PHI4_MINI_ENDOFTEXT,
        "tokenizer_class": "GPT2Tokenizer",
        "unk_token": PHI4_MINI_ENDOFTEXT,
    }
    write_json(out_dir / "tokenizer_config.json", tokenizer_config)
    special_map = {k: PHI4_MINI_ENDOFTEXT for k in ("bos_token", "eos_token", "pad_token", "unk_token")}
    write_json(out_dir / "special_tokens_map.json", special_map)
