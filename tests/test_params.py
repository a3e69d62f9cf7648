"""params.yaml schema: the shipped file is valid; every bad value gives one line naming key, value, rule."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.errors import ParamsError
from pipeline.params import load_params, validate_params
from tests.conftest import ROOT


def errors_of(raw) -> list[str]:
    with pytest.raises(ParamsError) as info:
        validate_params(raw)
    return info.value.lines


def test_shipped_params_are_valid():
    params = load_params(ROOT / "params.yaml")
    assert params.model == "embedded"
    assert set(params.targets) >= {"ov-fp16", "ov-int4", "ov-npu-int4", "ort-dml-int4", "ort-cpu-int4", "npu-lib-int4"}
    assert {"phi-3-mini-4k", "phi-3-mini-128k", "phi-3_5-mini"} <= set(params.models)
    assert params.models["phi-3-mini-4k"].repo == "microsoft/Phi-3-mini-4k-instruct"
    int4 = params.target("ov-int4").build
    # the recipe `aipc search ov-int4` chose on a real trained checkpoint (README: "Int4 recipes")
    assert (int4.sym, int4.group_size, int4.ratio, int4.backup_precision) == (False, 64, 0.6, "int8_asym")
    assert int4.awq and int4.scale_estimation and int4.data_aware


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda r: r.update(model="phi-4"),
            "model = 'phi-4': no such entry under `models` (did you mean 'phi-4-mini'? allowed: embedded",
        ),
        (
            lambda r: r["targets"]["ov-int4"]["build"].update(ratio=1.7),
            "targets.ov-int4.build.ratio = 1.7: Input should be less than or equal to 1",
        ),
        (
            lambda r: r["targets"]["ov-int4"]["build"].update(group_size=100),
            "targets.ov-int4.build.group_size = 100: does not divide",
        ),
        (
            lambda r: r["targets"]["ov-int4"]["build"].update(grup_size=64),
            "targets.ov-int4.build.grup_size: unknown key (did you mean 'group_size'?",
        ),
        (
            lambda r: r["validation"].update(max_new_token=8),
            "validation.max_new_token: unknown key (did you mean 'max_new_tokens'?",
        ),
        (
            lambda r: r["models"]["phi-3-mini-4k"].update(revision="main"),
            "models.phi-3-mini-4k.revision = 'main': must be a full 40-hex commit sha",
        ),
        (
            lambda r: r["targets"]["ort-dml-int4"]["build"].update(block_size=100),
            "targets.ort-dml-int4.build.block_size = 100: Input should be 16, 32, 64, 128 or 256",
        ),
        (
            lambda r: r["targets"]["ov-int4"].update(family="tensorrt"),
            "targets.ov-int4.family = 'tensorrt': unknown family",
        ),
        (
            lambda r: r["models"]["embedded"].update(hidden_size=200),
            "models.embedded.hidden_size = 200: must be a positive multiple of 128",
        ),
        (
            lambda r: r["targets"]["ov-fp16"]["gates"].update(exact_match_min=2),
            "targets.ov-fp16.gates.exact_match_min = 2",
        ),
    ],
)
def test_bad_values_name_key_value_and_rule(params_raw, mutate, expected):
    mutate(params_raw)
    lines = errors_of(params_raw)
    assert len(lines) == 1, lines
    assert expected in lines[0], lines[0]
    assert "\n" not in lines[0]


def test_group_size_checked_against_hub_model_shape(params_raw):
    params_raw["model"] = "phi-3-mini-4k"
    params_raw["targets"]["ov-int4"]["build"]["group_size"] = 96  # 3072 % 96 == 0 but 8192 % 96 != 0
    (line,) = errors_of(params_raw)
    assert "down_proj (intermediate_size)=8192" in line


def test_group_size_fallback_allows_non_dividing_group(params_raw):
    params_raw["targets"]["ov-int4"]["build"].update(group_size=100, group_size_fallback="adjust")
    settings = validate_params(params_raw).target("ov-int4").build  # raises ParamsError if refused
    assert (settings.group_size, settings.group_size_fallback) == (100, "adjust")


def test_cli_reports_bad_params_without_traceback(tmp_path, params_raw):
    import yaml

    params_raw["targets"]["ov-int4"]["build"]["ratio"] = 1.7
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(params_raw))
    proc = subprocess.run(
        [sys.executable, "-m", "stages.source", "--params", str(bad)], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    err = " ".join(proc.stderr.split())
    assert "targets.ov-int4.build.ratio = 1.7" in err


def test_yaml_syntax_error_is_one_line(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("model: embedded\ntargets: [unclosed\n")
    with pytest.raises(ParamsError) as info:
        load_params(bad)
    assert "is not valid YAML" in str(info.value)


def test_an_error_line_prints_brackets_as_text(capsys):
    """Fixes name extras (`pip install "aipc-pipeline[dvc]"`); rich markup must not swallow them."""
    from pipeline.console import run_main
    from pipeline.errors import PipelineError

    def fail():
        raise PipelineError("DVC is missing", fix='pip install "aipc-pipeline[dvc]"')

    with pytest.raises(SystemExit) as exit_:
        run_main(fail, name="pull")
    assert exit_.value.code != 0
    assert 'pip install "aipc-pipeline[dvc]"' in " ".join(capsys.readouterr().err.split())


def test_a_refused_group_size_names_the_sizes_that_fit_not_the_refused_one(params_raw):
    """Hidden size 576 (a real 135M checkpoint): group 128 was refused with "e.g. 128" as the fix."""
    from pipeline.errors import ParamsError
    from pipeline.params import validate_params

    params_raw["models"]["small"] = {"kind": "hub", "repo": "x/y", "revision": "a" * 40,
                                     "hidden_size": 576, "intermediate_size": 1536}  # fmt: skip
    params_raw["model"] = "small"
    params_raw["targets"]["ov-npu-int4"]["build"]["group_size_fallback"] = "error"  # group 128 for every layer
    params_raw["targets"]["ov-int4"]["build"]["group_size"] = 128  # the mission's reference flags
    params_raw["targets"]["ort-dml-int4"]["build"]["block_size"] = 128
    with pytest.raises(ParamsError) as info:
        validate_params(params_raw)
    lines = {line.split(" = ")[0]: line for line in info.value.lines}
    ov = lines["params.yaml: targets.ov-int4.build.group_size"]
    assert "divides them all: 64, 32, 16;" in ov and "-1 (per channel)" in ov and "e.g. 128" not in ov
    assert "divides them all: 64, 32, 16" in lines["params.yaml: targets.ort-dml-int4.build.block_size"]
    assert (
        "use group_size: -1 (channel-wise) or group_size_fallback: ignore"
        in lines["params.yaml: targets.ov-npu-int4.build.group_size"]
    )


def test_a_dot_in_a_model_name_is_refused_before_dvc_reads_it_as_nesting(params_raw):
    """Seen: `model: phi-3.5-mini` (the catalogue's own name then) made `dvc repro` stop with "Parameters
    'models.phi-3.5-mini' are missing from 'params.yaml'"."""
    params_raw["models"]["phi-3.5-mini"] = params_raw["models"].pop("phi-3_5-mini")
    (line,) = [e for e in errors_of(params_raw) if "dot" in e]
    assert "name it 'phi-3_5-mini'" in line and "\n" not in line


def test_the_real_checkpoints_shape_is_checked_before_any_work(params_raw):
    """Seen: with `model: smollm2-135m` the pipeline fetched and converted the model, exported the FP IR and
    built ov-fp16 before build@ov-int4 refused group 128 on hidden 576; now both targets that cannot take that
    width are named at once, before the source stage."""
    params_raw["model"] = "smollm2-135m"
    assert validate_params(params_raw).model == "smollm2-135m"  # the default recipes take the real checkpoint
    params_raw["targets"]["ov-int4"]["build"]["group_size"] = 128  # the mission's reference flags
    params_raw["targets"]["ort-dml-int4"]["build"]["block_size"] = 128
    problems = [e for e in errors_of(params_raw) if "hidden_size)=576" in e]
    assert {p.split(": ")[1] for p in problems} == {"targets.ov-int4.build.group_size = 128",
                                                  "targets.ort-dml-int4.build.block_size = 128"}  # fmt: skip
