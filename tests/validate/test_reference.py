"""The reference stage: exact prompt ids, greedy outputs, held-out likelihood — and a sound test instrument."""

from __future__ import annotations

import numpy as np

from pipeline import layout
from pipeline.records.reference import load_reference


def test_reference_files(artifacts_root, default_params):
    rows, heldout, record = load_reference(layout.reference_dir(artifacts_root))
    assert [r.prompt for r in rows] == default_params.prompts()
    assert all(r.output_ids and r.text.strip() for r in rows)
    assert record.dtype == "float32" and record.device == "CPU" and record.eos_token_ids
    assert heldout.count == len(heldout.ids) - 1 and 1 < heldout.perplexity < 1000
    assert rows[0].messages[0].role == "user"


def test_reference_keeps_how_close_every_call_was(artifacts_root, default_params):
    """Per generated step the top-k log-probs, its own token first (greedy); full distributions for KL at every
    teacher-forced position; long-context runs on both sides of the model's edge."""
    from pipeline.records import ReferenceRecord

    ref_dir = layout.reference_dir(artifacts_root)
    rows, _, record = load_reference(ref_dir)
    k = default_params.validation.top_k
    tf = np.load(ref_dir / record.teacher_forced)
    for i, r in enumerate(rows):
        steps = r.output_ids + ([r.top_ids[-1][0]] if r.stopped else [])
        assert [ids[0] for ids in r.top_ids] == steps and all(len(ids) == k for ids in r.top_ids)
        assert all(lp[0] >= lp[-1] for lp in r.top_logprobs)
        probs = np.exp(tf[f"p{i}"])
        assert tf[f"p{i}"].shape[0] == len(r.output_ids) and np.allclose(probs.sum(-1), 1.0, atol=1e-4)
    assert isinstance(record, ReferenceRecord) and record.long_context and record.long_context_lengths
