"""NPU int4 target: compliance preflight, what the IR really holds, run config, honest device labels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.errors import ParamsError
from pipeline.openvino_ir import MODEL_XML
from pipeline.openvino_ir.inspect import weight_precisions
from pipeline.params import validate_params
from pipeline.runners import ov_genai
from pipeline.runners.base import DeviceUnavailable
from pipeline.targets import npu
from pipeline.targets.base import RuntimeOptions


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"sym": False}, "sym = False: NPU rule: OpenVINO GenAI on NPU needs symmetric int4 weights"),
        ({"ratio": 0.8}, "ratio = 0.8: NPU rule"),
        (
            {"group_size": 64},
            "group_size = 64: NPU rule: OpenVINO GenAI on NPU needs group size -1 (channel-wise) or 128",
        ),
        ({"weight_format": "nf4", "group_size": 128}, "nf4 channel-wise"),
        ({"gptq": True}, "gptq/lora_correction = True"),
        ({"group_size_fallback": "adjust"}, "group_size_fallback = adjust: NPU rule"),
    ],
)
def test_preflight_rejects_each_non_compliant_setting(params_raw, change, rule):
    params_raw["targets"]["ov-npu-int4"]["build"].update(change)
    with pytest.raises(ParamsError) as info:
        validate_params(params_raw)
    assert any(
        rule in line and line.startswith("params.yaml: targets.ov-npu-int4.build.") for line in info.value.lines
    ), info.value.lines


def test_allowed_npu_settings_pass(params_raw):
    for change in (
        {"group_size": 128},
        {"weight_format": "nf4", "group_size": -1},
        {"awq": True, "scale_estimation": True},
        {"group_size": 128, "group_size_fallback": "ignore"},  # layers 128 does not divide stay int8 per channel
    ):
        raw = json.loads(json.dumps(params_raw))
        raw["targets"]["ov-npu-int4"]["build"].update(change)
        settings = validate_params(raw).target("ov-npu-int4").build  # raises ParamsError if refused
        assert {k: getattr(settings, k) for k in change} == change


def test_ir_really_holds_symmetric_group128_int4(build):
    """Read the IR's constants: int4 weights are signed i4 (symmetric), in groups of 128, no zero points."""
    import openvino as ov

    out = build("ov-npu-int4")
    model = ov.Core().read_model(out / MODEL_XML)
    low = [
        op
        for op in model.get_ops()
        if op.get_type_name() == "Constant" and op.get_element_type() in (ov.Type.i4, ov.Type.u4)
    ]
    assert low and all(op.get_element_type() == ov.Type.i4 for op in low)  # u4 would mean asymmetric
    w = weight_precisions(out / MODEL_XML)
    int4 = {k: v for k, v in w.layers.items() if v.precision == "int4"}
    matmuls = [k for k, v in w.layers.items() if v.op == "MatMul" and "lm_head" not in k]
    assert set(matmuls) <= set(int4)  # ratio 1.0: every ratio-defining layer is int4
    assert all(v.group_size == 128 and not v.zero_point for v in int4.values())
    rec = json.loads((out / "target.json").read_text())
    assert rec["build"]["data_aware"] is True  # AWQ + scale estimation on the shipped text
    assert rec["build"]["compliance"]["ok"] is True


def test_npu_config_and_compile_record(build):
    out = build("ov-npu-int4")
    cfg = json.loads((out / "npu_config.json").read_text())
    assert cfg["properties"] == {
        "MAX_PROMPT_LEN": 1024,
        "MIN_RESPONSE_LEN": 128,
        "GENERATE_HINT": "FAST_COMPILE",
        "PREFILL_HINT": "DYNAMIC",
    }
    rec = json.loads((out / "target.json").read_text())["build"]["npu_compile"]
    if "NPU" in ov_genai.available_devices():
        assert rec["status"] == "compiled" and (out / rec["blob"]).is_file()
    else:
        assert rec["status"] == "skipped"
        assert rec["summary"] == f"skipped — no NPU device (available: {ov_genai.available_devices()})"


def test_device_selection_never_falls_back_silently():
    devices = ov_genai.available_devices()
    if "NPU" in devices:
        pytest.skip("this machine has an NPU")
    with pytest.raises(DeviceUnavailable, match="device NPU was requested but OpenVINO sees only"):
        ov_genai.choose_device("NPU", "NPU", "ov-npu-int4")
    auto = ov_genai.choose_device("NPU", "auto", "ov-npu-int4")
    assert auto.device == "CPU" and auto.intended == "NPU"
    assert auto.proxy and "NPU IR on the OpenVINO CPU device" in auto.label
    cpu = ov_genai.choose_device("CPU/GPU", "auto", "ov-int4")
    assert cpu.proxy is None and cpu.device in ("CPU", "GPU")


def test_npu_properties_are_applied_only_on_npu(build):
    out = build("ov-npu-int4")
    choice = ov_genai.choose_device("NPU", "auto", "ov-npu-int4")
    props = npu.runtime_properties(npu.Settings(), out, choice.device, RuntimeOptions(cache_root=None))
    runner = ov_genai.OpenVINOGenAIRunner(out, choice, props)
    try:
        if choice.device == "NPU":
            assert "MAX_PROMPT_LEN" in runner.properties
        else:
            assert "MAX_PROMPT_LEN" not in runner.properties
        gen = runner.generate([2058, 339, 13, 320, 2055, 339, 13, 2049, 339, 13], 4)
        assert len(gen.tokens) >= 1 and np.isfinite(gen.ttft_ms)
    finally:
        runner.close()


def test_estimate_and_intended_device():
    s = npu.Settings()
    assert npu.intended_device(s) == "NPU"
    e = npu.estimate(s, 7_600_000_000)
    # measured on Phi-3-mini: 4.76 GiB peak (the IR's pages given back as NNCF reads them), 2.01 GB written
    assert 4.5 * 2**30 < e.ram < 5.5 * 2**30 and e.disk < 3e9 and e.scratch == 0
    assert e.validate_ram < e.ram
