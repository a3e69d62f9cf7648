"""A target's generated ids as text, the way transformers' ``AutoTokenizer.decode(ids, skip_special_tokens=True)``
gives it (what the reference stage decoded its answers with), without importing transformers.

transformers (5.x) decodes a tokenizers-backed tokenizer with the backend's own ``decode`` and then, only where
``tokenizer_config.json`` sets ``clean_up_tokenization_spaces``, its clean-up of spaces before punctuation.
Importing transformers and PyTorch for that cost the validate stage ~5 s of its ~8 s on the embedded model
(measured). The text is held equal to AutoTokenizer's on random id sequences, special and added tokens included:
the embedded models' Llama-style SentencePiece BPE (default, LongRoPE and Phi-4-mini variants,
``tests/validate/test_decode.py``) and the registry checkpoint's GPT-2 byte-level BPE (``tests/sources/test_package.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

# transformers.PreTrainedTokenizerBase.clean_up_tokenization, in its order
_CLEAN_UP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
             (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))  # fmt: skip


def clean_up_tokenization(text: str) -> str:
    for old, new in _CLEAN_UP:
        text = text.replace(old, new)
    return text


def decoder(folder: Path) -> Callable[[Sequence[int]], str]:
    """``decode(ids)`` for the tokenizer in ``folder`` (its tokenizer.json and tokenizer_config.json)."""
    from tokenizers import Tokenizer

    from pipeline.errors import PipelineError

    path = folder / "tokenizer.json"
    if not path.is_file():  # every family's build writes it; a folder without it was damaged after the build
        raise PipelineError(f"{folder} has no tokenizer.json to decode the answers with",
                            fix=f"rebuild the target: dvc repro -f -s build@{folder.name}")  # fmt: skip
    backend = Tokenizer.from_file(str(path))
    config_file = folder / "tokenizer_config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    clean_up = bool(config.get("clean_up_tokenization_spaces", False))  # transformers 5's default: False

    def decode(ids: Sequence[int]) -> str:
        text = backend.decode(list(ids), skip_special_tokens=True)
        return clean_up_tokenization(text) if clean_up else text

    return decode
