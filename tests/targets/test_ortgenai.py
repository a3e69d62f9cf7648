"""ONNX Runtime GenAI targets: builder options explicit, DML graph proven on the CPU provider, fp32 exact."""

from __future__ import annotations

import json

import pytest

from pipeline import layout
from pipeline.params import validate_params
from pipeline.runners import ort_genai
from pipeline.runners.base import DeviceUnavailable, cut_at_eos
from pipeline.targets import ortgenai
from pipeline.targets.base import RuntimeOptions


def open_on(out, choice):
    settings = None  # the ORT family's runtime properties depend on the device only
    return ort_genai.OrtGenAIRunner(
        out, choice, ortgenai.runtime_properties(settings, out, choice.device, RuntimeOptions())
    )


def with_target(params_raw, name, build, **extra):
    params_raw["targets"][name] = {"family": "ortgenai", "enabled": True, "device": "auto", "build": build, **extra}
    return validate_params(params_raw)


def test_cpu_and_dml_int4_artifacts(build):
    for name, ep, block, providers in (("ort-cpu-int4", "cpu", 16, []), ("ort-dml-int4", "dml", 16, ["dml"])):
        out = build(name)
        for f in (
            "model.onnx",
            "model.onnx.data",
            "genai_config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "target.json",
        ):
            assert (out / f).is_file(), (name, f)
        rec = json.loads((out / "target.json").read_text())
        cmd = rec["build"]["builder_command"]
        assert cmd[:3] == ["python", "-m", "onnxruntime_genai.models.builder"]
        assert ["-e", ep] == cmd[cmd.index("-e") : cmd.index("-e") + 2] and f"block_size={block}" in cmd
        assert "hf_token=false" in cmd and "artifacts/source" in cmd
        graph = rec["build"]["graph"]
        assert graph["quantized_matmuls"] > 0 and graph["float_matmuls"] == 0
        # k-quant int4 body; lm_head and llama.cpp's sensitive MatMuls in int8 (int8_layers: lm_head+sensitive)
        assert "algo_config=k_quant" in cmd and "matmul_mixed_precision=last_matmul:int8,mixed_layers:int8" in cmd
        assert {k.split("/")[0] for k in graph["quantized_by_kind"]} == {"4bit", "8bit"}, graph["quantized_by_kind"]
        assert all(k.split("/")[1] == f"block{block}" for k in graph["quantized_by_kind"])
        assert rec["build"]["providers"] == providers


def test_fp32_cpu_build_matches_transformers_token_for_token(params_raw, build, artifacts_root):
    params = with_target(params_raw, "ort-cpu-fp32", {"precision": "fp32", "execution_provider": "cpu"})
    out = build("ort-cpu-fp32", params)
    choice = ort_genai.choose_device("CPU", "auto", "ort-cpu-fp32")
    runner = open_on(out, choice)
    rows = [json.loads(x) for x in (layout.reference_dir(artifacts_root) / "outputs.jsonl").read_text().splitlines()]
    eos = set(json.loads((layout.reference_dir(artifacts_root) / "reference.json").read_text())["eos_token_ids"])
    for r in rows:
        assert runner.chat_ids(r["messages"]) == r["input_ids"]
        assert cut_at_eos(runner.generate(r["input_ids"], 32).tokens, eos) == r["output_ids"], r["prompt"]


def test_dml_graph_is_proven_on_the_cpu_provider_and_labelled(build):
    out = build("ort-dml-int4")
    if ort_genai.dml_available():
        pytest.skip("DirectML is usable here: the DML graph runs for real")
    choice = ort_genai.choose_device("DML", "auto", "ort-dml-int4")
    assert choice.device == "CPU" and "DirectML graph on ONNX Runtime's CPU provider" in choice.label
    runner = open_on(out, choice)
    assert runner.choice.details["genai_providers"] == ["dml"]
    assert len(runner.generate([2058, 339, 13, 320, 2055, 339, 13, 2049, 339, 13], 4).tokens) >= 1
    with pytest.raises(DeviceUnavailable, match="device DML was requested but DirectML is not usable here"):
        ort_genai.choose_device("DML", "DML", "ort-dml-int4")


def test_every_builder_option_reaches_the_command():
    s = ortgenai.Settings(
        precision="int4", execution_provider="cpu", block_size=64, accuracy_level=2, is_symmetric=False,
        algo="k_quant", exclude_embeds=True, exclude_lm_head=True, extra_options={"int4_op_types_to_quantize": "MatMul"},
        int8_layers="lm_head",
    )  # fmt: skip
    cmd = ortgenai.builder_command(s, layout.source_dir(), layout.target_dir("x"), layout.ARTIFACTS / "cache")
    for opt in ("block_size=64", "accuracy_level=2", "is_symmetric=false", "algo_config=k_quant", "exclude_embeds=true",
                "exclude_lm_head=true", "int4_op_types_to_quantize=MatMul", "hf_remote=false",
                "matmul_mixed_precision=last_matmul:int8"):  # fmt: skip
        assert opt in cmd, opt
    none = s.model_copy(update={"int8_layers": "none"})
    assert not any(
        a.startswith("matmul_mixed_precision")
        for a in ortgenai.builder_command(none, layout.source_dir(), layout.target_dir("x"), layout.ARTIFACTS)
    )


def test_recorded_command_is_the_same_on_every_machine(tmp_path, monkeypatch):
    """The stage runs with relative paths, the builder gets absolute ones, and the record names neither."""
    from pipeline.ort_builder import run
    from pipeline.records import BuildFacts
    from pipeline.targets.base import BuildContext, ModelDims

    def fake_builder(command, *, low_memory, portable, work_dir):  # what the child would run, as recorded
        return BuildFacts(builder_command=portable(command(tmp_path / "tmp" / "cache")))

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run, "run_builder", fake_builder)
    s = ortgenai.Settings(precision="int4", execution_provider="cpu")
    ctx = BuildContext("ort-x", s, layout.source_dir(), layout.ARTIFACTS / "targets" / ".tmp-ort-x-1", layout.ARTIFACTS,
                       ModelDims(256, 768))  # fmt: skip
    shown = ortgenai.build(ctx).builder_command
    assert shown[:4] == ["-i", "artifacts/source", "-o", "artifacts/targets/ort-x"] and "<tmp>/cache" in shown
    assert not any(str(tmp_path) in a for a in shown), shown


def test_dml_fp16_is_one_params_entry_away(params_raw):
    params = with_target(params_raw, "ort-dml-fp16", {"precision": "fp16", "execution_provider": "dml"})
    assert params.target("ort-dml-fp16").build.precision == "fp16"


def test_block_size_that_divides_nothing_is_rejected(params_raw):
    from pipeline.errors import ParamsError

    params_raw["models"]["odd"] = {
        "kind": "hub",
        "repo": "x/y",
        "revision": "a" * 40,
        "hidden_size": 3000,
        "intermediate_size": 8192,
    }
    params_raw["model"] = "odd"
    params_raw["targets"]["ov-int4"]["build"]["group_size"] = 8
    params_raw["targets"]["ov-npu-int4"]["enabled"] = False
    with pytest.raises(ParamsError) as info:
        validate_params(params_raw)
    lines = [x for x in info.value.lines if "ort-" in x]
    assert lines and all("block_size" in x and "hidden_size)=3000" in x for x in lines), info.value.lines


def test_pipeline_owned_builder_options_are_refused(params_raw):
    from pipeline.errors import ParamsError

    with pytest.raises(ParamsError, match=r"extra_options\.hf_token: set by the pipeline"):
        with_target(
            params_raw, "ort-x", {"precision": "int4", "execution_provider": "cpu", "extra_options": {"hf_token": "x"}}
        )
    # an option a setting owns would make the recorded settings say one thing and the graph another
    for key, owner in (
        ("matmul_mixed_precision", "int8_layers"),
        ("int4_algo_config", "algo"),
        ("block_size", "block_size"),
    ):
        build = {"precision": "int4", "execution_provider": "cpu", "extra_options": {key: "x"}}
        with pytest.raises(
            ParamsError, match=rf"extra_options\.{key}: a setting of its own here — use {owner} instead"
        ):
            with_target(params_raw, "ort-x", build)


@pytest.mark.parametrize("ep", ["cpu", "dml"])
def test_low_memory_build_is_byte_identical_to_the_stock_builder(params_raw, build, artifacts_root, ep):
    name = f"ort-{ep}-int4"
    params_raw["targets"][name]["build"]["low_memory"] = False
    stock_root = artifacts_root / "stock"
    if not stock_root.exists():
        import shutil

        shutil.copytree(layout.source_dir(artifacts_root), layout.source_dir(stock_root))
        shutil.copytree(layout.ov_ir_dir(artifacts_root), layout.ov_ir_dir(stock_root))
    stock = build(name, validate_params(params_raw), stock_root)
    low = build(name)  # params.yaml default: low_memory: true
    assert json.loads((low / "target.json").read_text())["build"]["mode"] == "low-memory"
    assert json.loads((stock / "target.json").read_text())["build"]["mode"] == "stock"
    for f in ("model.onnx", "model.onnx.data", "genai_config.json"):
        assert (low / f).read_bytes() == (stock / f).read_bytes(), f


def test_the_build_stamp_is_the_wheels_commit_not_the_projects(build):
    """The builder stamps producer_version with the commit of the git repository around its virtual environment —
    this project's, when .venv sits in it — so every commit rebuilt different ORT bytes (seen in the same-bytes
    test when a commit landed between two builds); the stamp must be the installed wheel's own."""
    import onnx
    import onnxruntime_genai as og

    graph = onnx.load(build("ort-cpu-int4") / "model.onnx", load_external_data=False)
    assert graph.producer_version == f"{og.__version__}+{og.__commit__[:7]}"
