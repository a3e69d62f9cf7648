"""The intel-npu-acceleration-library route end to end through real DVC: isolated env, honest device label."""

from __future__ import annotations

import json

import pytest

from pipeline.npu_lib import env as npu_lib_env
from tests.conftest import edited_params
from tests.test_dvc_source import dvc


@pytest.fixture(scope="module")
def npu_lib_env_record():
    """Built once per machine (cached by recipe): ~2 min on 2 cores, offline but for the package index."""
    return npu_lib_env.ensure_env(npu_lib_env.default_env_dir())


def test_environment_is_isolated_and_recorded(npu_lib_env_record):
    rec = npu_lib_env_record
    assert rec["library_version"].lstrip("v") == "1.4.0" and rec["openvino"] == "openvino==2024.4.0"
    assert rec["transformers"].startswith("4.") and rec["build_seconds"] > 0 and rec["size_bytes"] > 10**8
    import transformers

    assert transformers.__version__.startswith("5.")  # the main environment is untouched


def test_dvc_repro_with_the_switch_on(repro_project, npu_lib_env_record):
    off, on = "    family: npu_lib\n    enabled: false\n", "    family: npu_lib\n    enabled: true\n"
    with edited_params(repro_project, off, on):
        proc = dvc(["repro"], repro_project)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        run = json.loads((repro_project / "artifacts/targets/npu-lib-int4/npu_lib_run.json").read_text())
        metrics = json.loads((repro_project / "artifacts/validation/npu-lib-int4/metrics.json").read_text())
        if run["npu_available"]:
            assert run["device"].startswith("NPU") and metrics["device"] == "NPU"
        else:
            assert run["device"] == "CPU (fallback)" and metrics["device"] == "CPU (fallback)"
            assert "found no NPU" in metrics["proxy"]
        assert (
            metrics["quality"]["tokenizer_match_rate"] == 1.0 and metrics["quality"]["teacher_forced_agreement"] > 0.5
        )
        for folder in ("artifacts/targets/npu-lib-int4", "artifacts/packages/npu-lib-int4"):
            files = [p.name for p in (repro_project / folder).rglob("*") if p.is_file()]
            assert not [f for f in files if f.endswith((".pt", ".pkl", ".pickle", ".bin"))], files
        report = (repro_project / "artifacts/report/report.html").read_text()
        assert "CPU (fallback)" in report or "NPU" in report
