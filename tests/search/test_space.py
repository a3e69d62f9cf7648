"""A target's search space: the family's own settings, validated as ``build:`` is, one line per bad value."""

from __future__ import annotations

import pytest

from pipeline.errors import ParamsError
from pipeline.params import validate_params
from pipeline.params.search import expand
from pipeline.targets.base import ModelDims

PHI3_MINI = ModelDims(3072, 8192, num_layers=32, vocab_size=32064, num_heads=32)


def errors_of(raw) -> list[str]:
    with pytest.raises(ParamsError) as info:
        validate_params(raw)
    return info.value.lines


def _search(params_raw, target, space, **more):
    params_raw["targets"][target]["search"] = {"space": space, **more}
    return params_raw


def test_a_space_expands_to_its_product_with_stable_names(params_raw):
    raw = _search(params_raw, "ov-int4", {"ratio": [0.6, 0.8, 1.0], "group_size": [64, 128], "awq": [False, True]})
    params = validate_params(raw)
    t = params.target("ov-int4")
    exp = expand("ov-int4", t.family, raw["targets"]["ov-int4"]["build"], t.search, None)
    assert len(exp.points) == 12 and not exp.excluded
    again = expand("ov-int4", t.family, raw["targets"]["ov-int4"]["build"], t.search, None)
    assert [p.name for p in exp.points] == [p.name for p in again.points]
    assert len({p.name for p in exp.points}) == 12
    p = exp.points[-1]
    assert p.set_args() == ["-S", "++targets.ov-int4.build.ratio=1.0", "-S", "++targets.ov-int4.build.group_size=128",
                            "-S", "++targets.ov-int4.build.awq=true"]  # fmt: skip
    built = p.build(raw["targets"]["ov-int4"]["build"])
    base_sym = raw["targets"]["ov-int4"]["build"]["sym"]  # not in the space: the base's own value
    assert (built["ratio"], built["group_size"], built["awq"], built["sym"]) == (1.0, 128, True, base_sym)
    assert raw["targets"]["ov-int4"]["build"]["ratio"] == 0.6  # the base is not modified


def test_nested_settings_are_searched_by_dotted_key(params_raw):
    raw = _search(params_raw, "ov-int4", {"awq": [True], "calibration.samples": [32, 128]})
    params = validate_params(raw)
    t = params.target("ov-int4")
    exp = expand("ov-int4", t.family, raw["targets"]["ov-int4"]["build"], t.search, None)
    assert [p.build(raw["targets"]["ov-int4"]["build"])["calibration"]["samples"] for p in exp.points] == [32, 128]


@pytest.mark.parametrize(
    ("target", "space", "expected"),
    [
        ("ov-int4", {"ratoi": [0.8]}, "targets.ov-int4.search.space.ratoi: unknown setting (allowed under build:"),
        ("ov-int4", {"ratio": [0.8, 1.5]}, "targets.ov-int4.search.space.ratio = 1.5: Input should be less than"),
        ("ov-int4", {"ratio": []}, "targets.ov-int4.search.space.ratio: no values"),
        ("ov-int4", {"ratio": [0.8, 0.8]}, "a value is listed twice"),
        ("ov-int4", {"calibration": [1]}, "targets.ov-int4.search.space.calibration: a group of settings"),
        ("ov-int4", {"ratio.x": [1]}, "ratio has no nested settings"),
        ("ort-cpu-int4", {"block_size": [32, 33]}, "targets.ort-cpu-int4.search.space.block_size = 33:"),
        ("ort-cpu-int4", {"accuracy_level": [4, 9]}, "targets.ort-cpu-int4.search.space.accuracy_level = 9:"),
    ],
)
def test_a_bad_space_is_one_line_naming_the_key(params_raw, target, space, expected):
    lines = errors_of(_search(params_raw, target, space))
    assert len(lines) == 1 and expected in lines[0], lines


def test_a_space_larger_than_max_points_is_refused(params_raw):
    space = {"ratio": [0.5, 0.6, 0.7, 0.8], "group_size": [32, 64, 128], "awq": [False, True]}
    (line,) = errors_of(_search(params_raw, "ov-int4", space, max_points=20))
    assert "24 points, more than max_points = 20" in line


def test_search_keys_themselves_are_checked(params_raw):
    (line,) = errors_of(_search(params_raw, "ov-int4", {"ratio": [1.0]}, objective="cheapest"))
    assert "targets.ov-int4.search.objective = 'cheapest'" in line


def test_the_npu_family_decides_which_points_are_legal(params_raw):
    """NPU-legal points only, by the NPU family's own preflight (symmetric, ratio 1.0): the other points are left
    out with the family's reason, not refused as a bad space."""
    raw = _search(params_raw, "ov-npu-int4", {"sym": [True, False], "ratio": [1.0, 0.8], "group_size": [-1, 128]})
    params = validate_params(raw)
    t = params.target("ov-npu-int4")
    exp = expand("ov-npu-int4", t.family, raw["targets"]["ov-npu-int4"]["build"], t.search, PHI3_MINI)
    assert [dict(p.overrides) for p in exp.points] == [
        {"sym": True, "ratio": 1.0, "group_size": -1},
        {"sym": True, "ratio": 1.0, "group_size": 128},
    ]
    assert len(exp.excluded) == 6
    assert {why.split(":")[0] for _, why in exp.excluded} == {"sym = False", "ratio = 0.8"}


def test_a_space_with_no_legal_point_is_refused(params_raw):
    raw = _search(params_raw, "ov-int4", {"gptq": [True], "lora_correction": [True]})
    (line,) = errors_of(raw)
    assert "targets.ov-int4.search.space: every point is refused by the openvino family" in line
    assert "gptq and lora_correction cannot be combined" in line


def test_a_disabled_target_cannot_be_searched(params_raw):
    raw = _search(params_raw, "npu-lib-int4", {"dtype": ["int4"]})
    (line,) = errors_of(raw)
    assert "targets.npu-lib-int4.search: the target is disabled" in line


def test_named_recipes_sit_beside_the_product_and_a_duplicate_is_built_once(params_raw):
    """optimum-intel's Phi-3 recipe as a named point: on the same report, not a larger product."""
    recipes = {
        "optimum-intel phi-3-mini": {
            "sym": False,
            "group_size": 64,
            "ratio": 1.0,
            "scale_estimation": True,
            "awq": False,
        },
        "same as a product point": {"ratio": 0.8, "group_size": 64},
    }
    raw = _search(params_raw, "ov-int4", {"ratio": [0.6, 0.8], "group_size": [64]}, recipes=recipes)
    t = validate_params(raw).target("ov-int4")
    base = raw["targets"]["ov-int4"]["build"]
    exp = expand("ov-int4", t.family, base, t.search, PHI3_MINI)
    assert [p.label() for p in exp.points] == [
        "ratio=0.6, group_size=64",
        "same as a product point (ratio=0.8, group_size=64)",
        "optimum-intel phi-3-mini (sym=false, group_size=64, ratio=1.0, scale_estimation=true, awq=false)",
    ]
    built = exp.points[-1].build(base)
    assert (built["sym"], built["scale_estimation"], built["awq"]) == (False, True, False)


def test_recipes_alone_are_a_search_and_a_bad_recipe_is_one_line(params_raw):
    raw = _search(
        params_raw,
        "ov-int4",
        {},
        recipes={"r": {"awq": True, "scale_estimation": False, "calibration.dataset": "none"}},
    )
    t = validate_params(raw).target("ov-int4")
    exp = expand("ov-int4", t.family, raw["targets"]["ov-int4"]["build"], t.search, None)
    assert len(exp.points) == 1 and exp.points[0].recipe == "r"
    for recipe, expected in [
        ({"ratoi": 1.0}, "targets.ov-int4.search.recipes.r.ratoi: unknown setting"),
        ({"scale_estimation": True, "calibration.dataset": "none"}, "scale_estimation needs calibration data"),
        ({}, "targets.ov-int4.search.recipes.r: no settings"),
    ]:
        lines = errors_of(_search(params_raw, "ov-int4", {}, recipes={"r": recipe}))
        assert len(lines) == 1 and expected in lines[0], lines
    assert any(
        "a search needs a space, recipes, or both" in line for line in errors_of(_search(params_raw, "ov-int4", {}))
    )


def test_a_stage_inside_a_points_experiment_does_not_judge_the_sibling_recipes(params_raw):
    """Seen: the data-free point (calibration.dataset: none) made a sibling AWQ + SE recipe that inherits the
    dataset invalid; every stage of that point's experiment refused to run. Stages skip the search block."""
    raw = _search(params_raw, "ov-int4", {}, recipes={"se": {"scale_estimation": True}})
    raw["targets"]["ov-int4"]["build"].update(awq=True, scale_estimation=False, calibration={"dataset": "none"})
    assert any("scale_estimation needs calibration data" in line for line in errors_of(raw))  # `aipc params`
    assert validate_params(raw, check_search=False).target("ov-int4").build.calibration.dataset == "none"
