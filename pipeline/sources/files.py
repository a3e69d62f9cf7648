"""Which files of a model repository/folder the pipeline takes, and which it refuses.

Only what the targets need and nothing that executes: safetensors weights, JSON configs, tokenizer
files and the chat template. Pickled weights (``*.bin`` & co.) can run code when loaded, and custom
modelling code (``*.py``) would need ``trust_remote_code`` — Phi-3 is native in transformers, so neither
is ever fetched.
"""

from __future__ import annotations

import fnmatch

ALLOW_PATTERNS = (
    "*.safetensors",
    "model.safetensors.index.json",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "chat_template.jinja",
    "chat_template.json",
    "LICENSE",
    "LICENSE.*",
    "NOTICE.md",
)
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle")


def wanted(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return "/" not in name and any(fnmatch.fnmatch(base, p) for p in ALLOW_PATTERNS)


def is_pickle(name: str) -> bool:
    return any(fnmatch.fnmatch(name.rsplit("/", 1)[-1], p) for p in PICKLE_PATTERNS)
