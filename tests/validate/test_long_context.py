"""Long-context parity: lengths from the model's config, and a wrong RoPE caught where short prompts pass."""

from __future__ import annotations

import json
import shutil

import pytest

from pipeline import layout
from pipeline.params.validation import LongContext
from pipeline.targets.base import ModelDims
from pipeline.validate import long_context

PLAIN_4K = ModelDims(3072, 8192, num_heads=32, max_position_embeddings=4096, original_max_position_embeddings=4096)
LONGROPE = ModelDims(3072, 8192, num_heads=32, max_position_embeddings=131072, original_max_position_embeddings=4096,
                     longrope=True)  # fmt: skip


def test_lengths_come_from_the_config():
    assert [n.length for n in long_context.model_lengths(PLAIN_4K, LongContext())] == [4096, 4097]
    assert [n.length for n in long_context.model_lengths(LONGROPE, LongContext())] == [4096, 4097]
    assert long_context.regime(LONGROPE, 4096) != long_context.regime(LONGROPE, 4097)
    assert long_context.regime(PLAIN_4K, 4096) == long_context.regime(PLAIN_4K, 4097)
    assert long_context.runs(LONGROPE, long_context.model_lengths(LONGROPE, LongContext())) == {
        "short factors": 4096,
        "long factors": 4097,
    }
    override = long_context.model_lengths(PLAIN_4K, LongContext(lengths=[512, 1024]))
    assert [(n.length, n.why) for n in override] == [(512, "validation.long_context.lengths"),
                                                     (1024, "validation.long_context.lengths")]  # fmt: skip


def test_positions_cover_both_sides_of_every_edge():
    pos = long_context.sample_positions(4097, 64, [4096, 4097, 1024])
    assert len(pos) <= 64 + 6 and pos.max() == 4095
    assert {1022, 1023, 4094, 4095} <= set(pos.tolist())


@pytest.fixture(scope="module")
def longrope(variant):
    return variant("embedded-longrope")


def _validate(params, name, root, tmp_path):
    from pipeline.validate.harness import validate_target

    out = tmp_path / name
    out.mkdir(parents=True)
    return validate_target(params, name, out, root)


def test_a_wrong_rope_is_caught_by_long_context_and_not_by_the_short_prompts(longrope, build, tmp_path):
    """The mutation the check exists for: an FP16 IR built from a copy of the source whose config drops
    LongRoPE's long factors (long_factor := short_factor), validated against the correct reference."""
    params, good_root = longrope
    build("ov-fp16", params, good_root)
    good = _validate(params, "ov-fp16", good_root, tmp_path / "good")
    assert good.passed, good.failures()

    root = tmp_path / "mutated"
    shutil.copytree(layout.source_dir(good_root), layout.source_dir(root))
    shutil.copytree(layout.reference_dir(good_root), layout.reference_dir(root))
    cfg_path = layout.source_dir(root) / "config.json"
    cfg = json.loads(cfg_path.read_text())
    rope = cfg.get("rope_parameters") or cfg["rope_scaling"]
    rope["long_factor"] = rope["short_factor"]
    cfg_path.write_text(json.dumps(cfg))
    from pipeline.openvino_ir.export import export_fp_ir

    layout.ov_ir_dir(root).mkdir(parents=True)
    export_fp_ir(layout.source_dir(root), layout.ov_ir_dir(root))
    build("ov-fp16", params, root)
    bad = _validate(params, "ov-fp16", root, tmp_path / "bad")

    q = bad.quality
    assert q.exact_match_tie_tolerant == 1.0 and q.teacher_forced_agreement == 1.0 and q.kl_mean < 1e-6
    assert abs(q.perplexity_increase) < 1e-3  # the short metrics all pass ...
    by_len = {x.length: x for x in bad.long_context}
    short, long_ = (by_len[n] for n in sorted(by_len)[:2])
    assert short.kl_mean < 1e-6 and long_.kl_mean > 0.1  # ... and past the switch the parity breaks
    assert not bad.passed and all("long-context" in f for f in bad.failures()), bad.failures()


def test_a_long_factor_run_longer_than_a_prefill_chunk_is_one_pass(longrope, build, tmp_path):
    """At Phi-3 size the LongRoPE switch (4096) lies past the 1024-token chunks a chunked prefill uses, and
    LongRoPE picks its factors per forward pass from the largest position in it: a 4097-token run scored chunk
    by chunk through the KV cache puts short-factor keys in the cache. The same shape here: the embedded
    LongRoPE model with its switch moved to 1100 tokens (config only, in the source the reference and the IR
    both read), so the runs are 1100/1101 tokens. The correct IR must pass. (Seen failing with 1024-token
    chunked scoring: KL 0.46, top-1 agreement 0.67 at 1101 tokens; with the switch at 256 a 1024-token chunk
    already holds long positions and hid it.)"""
    from pipeline import layout
    from pipeline.openvino_ir.export import export_fp_ir
    from pipeline.validate.reference import build_reference

    params, good_root = longrope
    root = tmp_path / "root"
    shutil.copytree(layout.source_dir(good_root), layout.source_dir(root))
    cfg_path = layout.source_dir(root) / "config.json"
    cfg = json.loads(cfg_path.read_text())
    rope = cfg.get("rope_parameters") or cfg["rope_scaling"]
    cfg["original_max_position_embeddings"] = rope["original_max_position_embeddings"] = 1100
    cfg_path.write_text(json.dumps(cfg))
    for make in (layout.ov_ir_dir, layout.reference_dir):
        make(root).mkdir(parents=True)
    export_fp_ir(layout.source_dir(root), layout.ov_ir_dir(root))
    build_reference(params, layout.source_dir(root), layout.reference_dir(root))
    build("ov-fp16", params, root)
    res = _validate(params, "ov-fp16", root, tmp_path / "v")
    measured = {x.length: x for x in res.long_context if x.status == "measured"}
    assert {1100, 1101} <= set(measured)
    assert res.passed, res.failures()
    assert all(x.kl_mean < 1e-6 and x.agreement == 1.0 for x in measured.values())


def test_a_run_scored_chunk_by_chunk_compares_exactly_as_the_whole_logits(tmp_path):
    """The OpenVINO runner hands a long run over chunk by chunk so that its logits are never held whole; the
    comparison must come out bit-identical to the one on the whole matrix, whatever the chunking (a chunk that
    ends on a KL position, a last row that predicts nothing, a chunk of one token)."""
    import itertools

    import numpy as np

    from pipeline.records import LongRun

    rng = np.random.default_rng(3)
    length, vocab = 301, 50
    ref_logits = rng.normal(size=(length, vocab)).astype(np.float32)
    ids = rng.integers(0, vocab, length)
    positions = long_context.sample_positions(length, 16, [256, 257])
    long_context.reference_run(ref_logits, ids.tolist(), positions, tmp_path / "run.npz")
    run = LongRun(regime="rope", length=length, file="run.npz", kl_positions=len(positions))
    target = ref_logits + rng.normal(scale=0.3, size=ref_logits.shape).astype(np.float32)

    for n in (256, 257, 301):
        whole = long_context.compare(run, tmp_path, n, target[:n])
        assert whole.kl_positions > 0 and 0 < whole.agreement < 1
        for cuts in ([128, 256], [1, 2, 255, 256], [100, 200, 300], [int(positions[5]) + 1]):
            scores = long_context.RunScores(ids, positions)
            bounds = [0, *[c for c in cuts if c < length], length]
            for a, b in itertools.pairwise(bounds):
                scores.add(a, target[a:b].copy())
            assert scores.compare(run, tmp_path, n) == whole, (n, cuts)


def test_a_runtime_failure_at_a_length_is_one_gate_line_not_an_internal_error(longrope, build, tmp_path, monkeypatch):
    """What the real Phi-3-mini-4k geometry met in ONNX Runtime (a GroupQueryAttention error at the 4096-token
    pass, seen as "internal error" with a traceback): now the length is recorded as failed, with the runtime's
    own last line, and the gate names the target, the check and the length."""
    from pipeline.validate import checks

    params, root = longrope
    build("ov-fp16", params, root)

    def failing(runner, ids):
        raise RuntimeError(
            "Non-zero status code returned while running GroupQueryAttention node.\n"
            "Status Message: total_sequence_length must equal past_sequence_length + kv_sequence_length"
        )
        yield  # pragma: no cover - a generator, like the real one

    monkeypatch.setattr(checks, "logits_in_chunks", failing)
    res = _validate(params, "ov-fp16", root, tmp_path)
    assert not res.passed
    errors = [x for x in res.long_context if x.status == "error"]
    assert {x.length for x in errors} == {256, 257}
    lines = [f for f in res.failures() if "long-context check failed" in f]
    assert len(lines) == 2 and all("\n" not in f for f in lines)
    assert lines[0].startswith("ov-fp16: the long-context check failed at 256 tokens (short factors): RuntimeError: ")
    assert lines[0].endswith("total_sequence_length must equal past_sequence_length + kv_sequence_length")


def test_a_proxy_says_what_it_cannot_prove_at_a_length():
    """The NPU IR measured past MAX_PROMPT_LEN on the CPU, and the DirectML graph past LongRoPE's switch on the
    CPU (one prefill: generation crossing the switch is what DirectML gets wrong, onnxruntime-genai #1787)."""
    from pipeline.targets import npu, ortgenai

    npu_settings = npu.Settings(weight_format="int4", sym=True, group_size=-1, ratio=1.0)
    assert "MAX_PROMPT_LEN 1024" in npu.long_context_caveat(npu_settings, LONGROPE, 1025, "CPU")
    assert npu.long_context_caveat(npu_settings, LONGROPE, 1024, "CPU") is None
    assert npu.long_context_caveat(npu_settings, LONGROPE, 4097, "NPU") is None
    dml = ortgenai.Settings(execution_provider="dml")
    assert "#1787" in ortgenai.long_context_caveat(dml, LONGROPE, 4097, "CPU")
    assert ortgenai.long_context_caveat(dml, LONGROPE, 4096, "CPU") is None  # short factors: nothing crosses
    assert ortgenai.long_context_caveat(dml, PLAIN_4K, 4096, "CPU") is None  # plain RoPE: no switch
    assert ortgenai.long_context_caveat(dml, LONGROPE, 4097, "DML") is None  # on DirectML itself
    cpu = ortgenai.Settings(execution_provider="cpu")
    assert ortgenai.long_context_caveat(cpu, LONGROPE, 4097, "CPU") is None  # the CPU rewinds
