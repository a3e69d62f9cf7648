"""OpenVINO targets: derived from one FP IR, equal to optimum-cli's output, runnable by both runtimes."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline import layout
from pipeline.build import build_target
from pipeline.errors import BuildError, ParamsError, PipelineError
from pipeline.fsutil import atomic_dir
from pipeline.openvino_ir import MODEL_BIN, MODEL_XML, compress
from pipeline.openvino_ir.inspect import weight_precisions, weights_sha256
from pipeline.params import validate_params

OPTIMUM_CLI = str(Path(sys.executable).parent / "optimum-cli")


def optimum_cli(src: Path, out: Path, *flags: str) -> Path:
    subprocess.run(
        [OPTIMUM_CLI, "export", "openvino", "-m", str(src), "--task", "text-generation-with-past", *flags, str(out)],
        check=True,
        capture_output=True,
    )
    return out


def normalized_xml(path: Path) -> str:
    """The IR's XML without generated node-name counters (Convert_123 → Convert_N)."""
    text = re.sub(r'<net name="[^"]*"', '<net name="N"', path.read_text())
    return re.sub(r'name="([A-Za-z_]+)_\d+"', r'name="\1_N"', text)


def greedy(model_dir: Path, prompts_ids: list[list[int]]) -> list[list[int]]:
    import openvino as ov
    import openvino_genai as ov_genai

    pipe = ov_genai.LLMPipeline(str(model_dir), "CPU", INFERENCE_PRECISION_HINT="f32")
    cfg = pipe.get_generation_config()
    cfg.max_new_tokens, cfg.do_sample = 24, False
    outs = []
    for ids in prompts_ids:
        arr = np.array([ids], dtype=np.int64)
        outs.append(
            list(pipe.generate(ov_genai.TokenizedInputs(ov.Tensor(arr), ov.Tensor(np.ones_like(arr))), cfg).tokens[0])
        )
    return outs


@pytest.fixture(scope="module")
def prompt_ids(artifacts_root):
    rows = [json.loads(x) for x in (layout.reference_dir(artifacts_root) / "outputs.jsonl").read_text().splitlines()]
    return [r["input_ids"] for r in rows]


DATA_FREE = {"awq": False, "scale_estimation": False}
ANCHORED = {  # test targets (name → family, build): data-free settings, which optimum-cli can be run with offline
    "ov-int4-reference": ("openvino", {"sym": True, "group_size": 128, "ratio": 0.6, **DATA_FREE}),
    "ov-int4-awq-data-free": (
        "openvino",
        {
            "sym": False,
            "group_size": 64,
            "ratio": 0.6,
            "awq": True,
            "scale_estimation": False,
            "calibration": {"dataset": "none"},
        },
    ),
    "ov-npu-int4-data-free": ("npu", {"sym": True, "group_size": -1, "ratio": 1.0, **DATA_FREE}),
}


@pytest.fixture(scope="module")
def anchored_params(raw_params):
    params_raw = copy.deepcopy(raw_params)
    for name, (family, build) in ANCHORED.items():
        params_raw["targets"][name] = {"family": family, "enabled": True, "device": "auto", "build": build}
    return validate_params(params_raw)


@pytest.mark.parametrize(
    ("target", "flags", "counts"),
    [
        (
            "ov-int4-reference",  # the mission's reference flags
            ["--weight-format", "int4", "--group-size", "128", "--ratio", "0.6", "--sym"],
            {"int4": 4, "int8": 6},
        ),
        (
            "ov-int4-awq-data-free",  # optimum-intel's Phi-3.5 / Phi-4-mini recipe form: --awq without --dataset
            ["--weight-format", "int4", "--group-size", "64", "--ratio", "0.6", "--awq"],
            {"int4": 4, "int8": 6},
        ),
        (
            "ov-npu-int4-data-free",
            ["--weight-format", "int4", "--group-size", "-1", "--ratio", "1.0", "--sym"],
            {"int4": 8, "int8": 2},
        ),
        ("ov-fp16", ["--weight-format", "fp16"], {"fp16": 10}),
    ],
)
def test_same_result_as_optimum_cli(build, anchored_params, embedded_dir, tmp_path, prompt_ids, target, flags, counts):
    from pipeline.bench.anchors import optimum_cli_flags

    assert optimum_cli_flags(anchored_params.target(target).build) == flags  # the benchmark's anchor is this command
    ours = build(target, anchored_params)
    cli = optimum_cli(embedded_dir, tmp_path / "cli", *flags)
    ours_w = weight_precisions(ours / MODEL_XML)
    cli_w = weight_precisions(cli / MODEL_XML)
    assert ours_w.counts == cli_w.counts == counts
    assert {k: (v.precision, v.group_size, v.zero_point) for k, v in ours_w.layers.items()} == {
        k: (v.precision, v.group_size, v.zero_point) for k, v in cli_w.layers.items()
    }
    # the weights are the same bytes; the graphs differ only in generated node names ...
    assert weights_sha256(ours / MODEL_XML) == weights_sha256(cli / MODEL_XML)
    if target != "ov-fp16":
        assert (ours / MODEL_BIN).read_bytes() == (cli / MODEL_BIN).read_bytes()
        assert normalized_xml(ours / MODEL_XML) == normalized_xml(cli / MODEL_XML)
    else:  # ... and, for FP16, in the small non-weight constants the CLI rounds to f16: kept f32 here
        ours_f32, cli_f16 = float_constants(ours, "f32"), float_constants(cli, "f16")
        assert max(ours_f32.values()) <= 256  # hidden_size: norms, scalars, RoPE — no weight matrix
        rope = "__module.model.rotary_emb/aten::to/Convert"  # RoPE's inverse frequencies
        assert rope in ours_f32 and rope + "_compressed" in cli_f16
    assert greedy(ours, prompt_ids) == greedy(cli, prompt_ids)


def test_data_aware_settings_have_no_optimum_cli_anchor(default_params):
    from pipeline.bench.anchors import optimum_cli_flags

    with pytest.raises(PipelineError, match="data-aware settings have no optimum-cli anchor"):
        optimum_cli_flags(default_params.target("ov-int4").build)  # AWQ + scale estimation on the shipped text


def float_constants(folder: Path, element_type: str) -> dict[str, int]:
    """name → element count of the IR's constants of ``element_type``."""
    import openvino as ov

    model = ov.Core().read_model(folder / MODEL_XML)
    return {op.get_friendly_name(): int(np.prod(op.get_output_shape(0))) for op in model.get_ops()
            if op.get_type_name() == "Constant" and op.get_element_type().get_type_name() == element_type}  # fmt: skip


def test_artifact_is_complete_and_records_what_it_holds(build):
    out = build("ov-int4")
    for f in ("openvino_model.xml", "openvino_model.bin", "openvino_tokenizer.xml", "openvino_detokenizer.xml",
              "config.json", "generation_config.json", "tokenizer_config.json", "target.json"):  # fmt: skip
        assert (out / f).is_file(), f
    assert "chat_template" in json.loads((out / "tokenizer_config.json").read_text())
    rec = json.loads((out / "target.json").read_text())
    assert rec["status"] == "built" and rec["runtime"] == "openvino-genai"
    assert rec["settings"]["group_size"] == 64 and rec["settings"]["ratio"] == 0.6 and rec["settings"]["sym"] is False
    nncf_args = rec["build"]["nncf_compress_weights"]
    assert nncf_args["mode"] == "int4_asym" and nncf_args["group_size"] == "64" and nncf_args["ratio"] == "0.6"
    assert nncf_args["awq"] == "True" and nncf_args["scale_estimation"] == "True" and rec["build"]["data_aware"]
    # with calibration data NNCF ranks layers by their activations (not only the weights' error): one more MatMul
    # of the embedded model falls inside the 60 % than the data-free ranking puts there (4 int4, 6 int8)
    assert rec["build"]["weights"]["counts"] == {"int4": 5, "int8": 5}
    assert rec["tools"]["nncf"] and rec["tools"]["openvino"]


def test_runs_in_openvino_genai_and_optimum_intel(build):
    import openvino_genai as ov_genai
    from optimum.intel import OVModelForCausalLM
    from transformers import AutoTokenizer

    for target in ("ov-fp16", "ov-int4"):
        out = build(target)
        text = ov_genai.LLMPipeline(str(out), "CPU").generate("You may convey verbatim copies of", max_new_tokens=8)
        assert isinstance(text, str) and text.strip()
        model = OVModelForCausalLM.from_pretrained(out)
        tok = AutoTokenizer.from_pretrained(out)
        gen = model.generate(
            **tok("You may convey verbatim copies of", return_tensors="pt"), max_new_tokens=8, do_sample=False
        )
        assert gen.shape[1] > 0


def test_fp16_ir_has_only_fp16_weights(build):
    w = weight_precisions(build("ov-fp16") / MODEL_XML)
    assert set(w.counts) == {"fp16"}  # the bf16 weights of the shared IR were converted


def test_group_size_that_divides_nothing_fails_before_work(params_raw, artifacts_root, tmp_path):
    params_raw["targets"]["ov-int4"]["build"]["group_size"] = 96  # 768 % 96 == 0 but 256 % 96 != 0
    with pytest.raises(ParamsError) as info:
        validate_params(params_raw)
    (line,) = info.value.lines
    assert "group_size = 96" in line and "hidden_size)=256" in line and "group_size_fallback" in line


@pytest.fixture
def fallback_root(artifacts_root, tmp_path):
    import shutil

    root = tmp_path / "artifacts"
    shutil.copytree(layout.source_dir(artifacts_root), layout.source_dir(root))
    shutil.copytree(layout.ov_ir_dir(artifacts_root), layout.ov_ir_dir(root))
    return root


def test_group_size_fallback_ignore_keeps_those_layers_in_backup(params_raw, build, fallback_root):
    params_raw["targets"]["ov-int4"]["build"].update(group_size=96, group_size_fallback="ignore", ratio=1.0)
    out = build("ov-int4", validate_params(params_raw), fallback_root)
    layers = weight_precisions(out / MODEL_XML).layers
    assert {v.group_size for v in layers.values() if v.precision == "int4"} == {96}
    assert all(v.precision != "int4" for k, v in layers.items() if "down_proj" not in k)


def test_failed_build_leaves_nothing(default_params, fallback_root, monkeypatch):
    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(compress, "compress", boom)
    out = layout.target_dir("ov-int4", fallback_root)
    with pytest.raises(OSError), atomic_dir(out) as tmp:
        build_target(default_params, "ov-int4", tmp, fallback_root)
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".tmp-")]


def test_missing_ir_is_a_clear_error(default_params, fallback_root):
    import shutil

    shutil.rmtree(layout.ov_ir_dir(fallback_root))
    with (
        pytest.raises(BuildError, match=r"has no FP IR.*dvc repro ov-ir"),
        atomic_dir(layout.target_dir("ov-fp16", fallback_root)) as tmp,
    ):
        build_target(default_params, "ov-fp16", tmp, fallback_root)


def test_data_aware_int4_uses_offline_calibration_and_beats_data_free(params_raw, build, fallback_root, tmp_path):
    """AWQ + scale estimation and GPTQ + scale estimation, calibrated on the shipped corpus (no Hub dataset),
    lower the held-out perplexity of ratio-0.6 int4 on the embedded model (numbers in the closing notes)."""
    import shutil

    from transformers import AutoTokenizer

    from pipeline.runners import ov_genai
    from pipeline.targets.base import RuntimeOptions
    from pipeline.targets.openvino import runtime_properties
    from pipeline.validate import metrics
    from pipeline.validate.reference import heldout_text

    perplexity = {}
    ids: list[int] = []
    for label, change in {
        "data-free": {"awq": False, "scale_estimation": False},
        "awq+se": {"awq": True, "scale_estimation": True},
        "gptq+se": {"awq": False, "gptq": True, "scale_estimation": True},
    }.items():
        raw = json.loads(json.dumps(params_raw))
        raw["targets"]["ov-int4"]["build"].update(change)
        raw["targets"]["ov-int4"].pop("search")  # its data-free recipes do not combine with a gptq base
        root = tmp_path / label
        shutil.copytree(fallback_root, root)
        out = build("ov-int4", validate_params(raw), root)
        assert json.loads((out / "target.json").read_text())["build"]["data_aware"] is (label != "data-free")
        if not ids:
            tok = AutoTokenizer.from_pretrained(out)
            ids = tok(heldout_text("corpus"), add_special_tokens=False)["input_ids"][:512]
        choice = ov_genai.choose_device("CPU/GPU", "CPU", label)
        props = runtime_properties(None, out, choice.device, RuntimeOptions())
        runner = ov_genai.OpenVINOGenAIRunner(out, choice, props)
        total, count = metrics.nll(runner.logits(ids), ids)
        runner.close()
        perplexity[label] = metrics.perplexity(total, count)
    assert perplexity["awq+se"] < perplexity["data-free"] and perplexity["gptq+se"] < perplexity["data-free"], (
        perplexity
    )
