"""Writing a tokenizer in the Hugging Face file layout, for the tokenizers this project makes itself (the embedded
models' two styles and the one converted from a GGUF file): one way to spell a special token, and files that
are checked loadable before they are written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def special_token(token_id: int, content: str) -> dict[str, Any]:
    """An ``added_tokens`` entry for a special token, never split, never normalized."""
    return {
        "id": token_id,
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": True,
    }


def added_tokens_decoder(added: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``tokenizer_config.json``'s view of the same tokens, keyed by id."""
    return {str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in added}


def write_tokenizer_json(data: dict[str, Any], out_dir: Path) -> None:
    """``tokenizer.json``, refused here rather than in a runtime if the tokenizers library cannot load it."""
    from tokenizers import Tokenizer

    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    Tokenizer.from_str(text)
    (out_dir / "tokenizer.json").write_text(text, encoding="utf-8")


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
