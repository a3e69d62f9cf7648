"""Calibration statistics collected once per IR and calibration, shared by the data-aware int4 builds."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from pipeline import fsutil, layout
from pipeline.openvino_ir import MODEL_BIN, MODEL_XML
from tests.conftest import ROOT

# A build that calibrates on its own (optimum-cli's path: the data run inside NNCF's compression), in a child
# with the statistics' oneDNN profile: the shared statistics are what such a build computes on an AVX2 machine.
FRESH = """
import sys
from pathlib import Path
import stages  # the stages' math profile
from pipeline.openvino_ir import compress
from pipeline.params import load_params
ir, src, name, out = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
settings = load_params(Path("params.yaml")).target(name).build
compress.compress(ir, out, settings, 4, compress.calibration_dataset(src, settings.calibration))
"""


def fresh_build(ir: Path, src: Path, name: str, out_xml: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", FRESH, str(ir), str(src), name, str(out_xml)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]


def _without_stats_path(xml: bytes) -> bytes:
    return re.sub(rb"'statistics_path': [^,]+,", b"", xml)


def test_shared_statistics_give_the_fresh_builds_bytes(artifacts_root, default_params, tmp_path, monkeypatch):
    """ov-int4 (asym g64 r0.6, AWQ + SE) and ov-npu-int4 (sym g128, AWQ + SE) built on one statistics folder:
    the calibration runs once, and each build's weights are the bytes of a build that calibrates on its own
    (optimum-cli's path) on an AVX2 machine; the IR and the build record name the folder by its key, not by where the
    cache is."""
    from pipeline.openvino_ir import calibration_stats
    from pipeline.openvino_ir.derive import derive

    monkeypatch.setenv("AIPC_CACHE", str(tmp_path / "cache"))
    ir, src = layout.ov_ir_dir(artifacts_root), layout.source_dir(artifacts_root)
    calls = []
    real = calibration_stats._collect_in_child
    monkeypatch.setattr(calibration_stats, "_collect_in_child", lambda *a: calls.append(a) or real(*a))
    for name in ("ov-int4", "ov-npu-int4"):
        settings = default_params.target(name).build
        assert calibration_stats.cacheable(settings)
        shared = tmp_path / name / "shared"
        shared.mkdir(parents=True)
        facts = derive(ir, src, shared, settings)
        assert "nncf-stats/" in facts.nncf_compress_weights["advanced_parameters"]
        assert str(tmp_path) not in facts.model_dump_json()  # the build record does not name the cache's path
        fresh = tmp_path / name / "fresh"
        fresh.mkdir(parents=True)
        fresh_build(ir, src, name, fresh / MODEL_XML, dict(os.environ, **calibration_stats.PORTABLE_ONEDNN))
        assert fsutil.sha256_file(shared / MODEL_BIN) == fsutil.sha256_file(fresh / MODEL_BIN)
        xml = (shared / MODEL_XML).read_bytes()
        assert b"'statistics_path': 'nncf-stats/" in xml and str(tmp_path).encode() not in xml
        assert _without_stats_path(xml) == _without_stats_path((fresh / MODEL_XML).read_bytes())
    assert len(calls) == 1  # the second build read the first one's statistics
    assert len(list((tmp_path / "cache" / "nncf-stats").iterdir())) == 1


def test_statistics_are_keyed_by_what_they_depend_on(artifacts_root, default_params, tmp_path):
    from pipeline.openvino_ir import calibration_stats

    ir, src = layout.ov_ir_dir(artifacts_root), layout.source_dir(artifacts_root)
    settings = default_params.target("ov-int4").build
    k = calibration_stats.key(ir, src, settings, ["a", "b"])
    assert k == calibration_stats.key(ir, src, settings, ["a", "b"])
    assert k != calibration_stats.key(ir, src, settings, ["a", "c"])
    more = settings.model_copy(update={"calibration": settings.calibration.model_copy(update={"samples": 8})})
    assert k != calibration_stats.key(ir, src, more, ["a", "b"])
    assert not calibration_stats.cacheable(settings.model_copy(update={"gptq": True, "awq": False}))


def test_nncf_never_runs_the_placeholder(artifacts_root):
    """If NNCF asked for data while its statistics are given, the build stops instead of calibrating on
    nothing."""
    import pytest

    from pipeline.openvino_ir.calibration_stats import placeholder_dataset

    with pytest.raises(RuntimeError, match="asked for calibration data"):
        list(placeholder_dataset().get_inference_data())


def test_a_failed_collection_is_one_line_and_leaves_no_statistics(
    artifacts_root, default_params, tmp_path, monkeypatch
):
    """The child's failure (here: an IR whose weights file was cut short) reaches the build as one line naming the
    step and the runtime's reason, and nothing, not even a partial folder, is left in the cache to be reused."""
    import shutil

    import pytest

    from pipeline.errors import BuildError
    from pipeline.openvino_ir import calibration_stats

    monkeypatch.setenv("AIPC_CACHE", str(tmp_path / "cache"))
    ir = tmp_path / "ir"
    shutil.copytree(layout.ov_ir_dir(artifacts_root), ir)
    weights = ir / MODEL_BIN
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(BuildError) as info:
        calibration_stats.statistics(ir, layout.source_dir(artifacts_root), default_params.target("ov-int4").build)
    assert str(info.value) == "collecting the calibration statistics failed: Incorrect weights in bin file!"
    assert [p.name for p in (tmp_path / "cache").rglob("*")] == ["nncf-stats"]


def test_calibration_inputs_are_what_optimum_intel_records(artifacts_root, default_params):
    """The inputs written without running the model equal those optimum-intel's recording gives: the FP IR run by
    OVModelForCausalLM.generate(max_new_tokens=1) with its infer request wrapped (InferRequestWrapper)."""
    import torch
    from optimum.intel import OVModelForCausalLM
    from optimum.intel.openvino.quantization import InferRequestWrapper
    from transformers import AutoTokenizer

    from pipeline.openvino_ir.compress import calibration_inputs, load_calibration_texts

    calibration = default_params.target("ov-int4").build.calibration
    ir, src = layout.ov_ir_dir(artifacts_root), layout.source_dir(artifacts_root)
    texts = load_calibration_texts(calibration.dataset)
    tok = AutoTokenizer.from_pretrained(src)
    f32 = {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32"}
    model = OVModelForCausalLM.from_pretrained(ir, compile=False, use_cache=True, ov_config=f32)
    model.compile()
    recorded: list = []
    model.request = InferRequestWrapper(model.request, recorded)
    step = max(1, len(texts) // calibration.samples)
    for text in texts[::step][: calibration.samples]:
        enc = tok(text, return_tensors="pt", truncation=True, max_length=calibration.seq_len)
        with torch.no_grad():
            model.generate(**enc, max_new_tokens=1, do_sample=False)
    written = calibration_inputs(src, calibration)
    assert len(written) == len(recorded) == calibration.samples
    for a, b in zip(written, recorded, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert type(a[k]) is type(b[k]), k
            if isinstance(a[k], np.ndarray):
                assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
            else:
                assert a[k] == b[k], k
