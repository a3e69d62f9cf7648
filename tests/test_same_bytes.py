"""Outputs are a function of their inputs: a second clone elsewhere, built on different terms, gives the same bytes.

The second clone differs from the session's built project in everything a teammate's machine may differ in that
should not matter: its working path, its thread counts (OMP_NUM_THREADS=1 against the machine's default), its
clock (a day ahead, through libfaketime), NumPy's kernels without AVX-512, a shell asking PyTorch and MKL for
other code paths (the stages' math profile, ``pipeline.numerics``, must win) and, for the builds, the
instruction set OpenVINO's CPU plugin plans for (oneDNN capped at AVX2 on this AVX-512 machine — the CPU
plugin's graph transformations, which NNCF's helper models go through, depend on it). The source, the IR,
every target, the reference and every package's model files must come out with the same hashes. Validation,
packages' manifests and the report carry measurements and are not compared (README: what differs between
machines).
"""

from __future__ import annotations

import glob
import hashlib
import os
from pathlib import Path

import pytest
import yaml

from tests.test_dvc_source import dvc, project_copy
from tests.test_pipeline_dvc import stages_run

FAKETIME = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))


def _no_avx512() -> str:
    """NumPy's AVX-512 features this CPU has (disabling one it lacks is an error)."""
    import numpy as np

    features = np._core._multiarray_umath.__cpu_features__
    return " ".join(f for f, on in features.items() if on and f.startswith("AVX512"))


NO_AVX512 = _no_avx512()


def out_hashes(project: Path) -> dict[str, str]:
    """Each stage's outputs as dvc.lock records them: path → md5."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return {o["path"]: o["md5"] for entry in lock["stages"].values() for o in entry.get("outs", [])}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_files(project: Path) -> dict[str, str]:
    """Every package file that came from its target's folder (not the manifest, card or golden outputs)."""
    out = {}
    for pkg in sorted((project / "artifacts/packages").iterdir()):
        target = project / "artifacts/targets" / pkg.name
        for f in sorted(pkg.rglob("*")):
            if f.is_file() and (target / f.relative_to(pkg)).is_file():
                out[str(f.relative_to(project))] = sha(f)
    return out


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory, repro_project) -> Path:
    if not FAKETIME:
        if os.environ.get("AIPC_REQUIRE_FAKETIME") == "1":
            pytest.fail("libfaketime is missing: apt-get install faketime")
        pytest.skip("libfaketime is not installed (apt-get install faketime)")
    proj = project_copy(tmp_path_factory.mktemp("teammate") / "a" / "much" / "longer" / "path" / "proj")
    # the teammate's own build cache: nothing computed on this machine (NNCF's calibration statistics) is
    # reused; only the embedded model, which is trained and checked against its own key, is lent
    cache = tmp_path_factory.mktemp("teammate-cache")
    (cache / "embedded").symlink_to(Path(os.environ["AIPC_CACHE"]) / "embedded", target_is_directory=True)
    skewed = dict(
        os.environ,
        AIPC_CACHE=str(cache),
        OMP_NUM_THREADS="1",
        FAKETIME="+1d",
        FAKETIME_DONT_FAKE_MONOTONIC="1",
        LD_PRELOAD=FAKETIME[0],
        NPY_DISABLE_CPU_FEATURES=NO_AVX512,  # NumPy's kernels as on a CPU without AVX-512 (read by NumPy itself)
        ATEN_CPU_CAPABILITY="default",  # a shell that asks PyTorch for other kernels: the stages' profile wins
        MKL_CBWR="AUTO",
    )
    built = dvc(["repro", "build"], proj, env=dict(skewed, ONEDNN_MAX_CPU_ISA="AVX2"))
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    # validation under the capped oneDNN is not a machine anyone has (OpenVINO's own CPU detection still says
    # AVX-512 and its int4 kernels fail to build): the rest runs with threads and clock still changed
    rest = dvc(["repro"], proj, env=skewed)
    assert rest.returncode == 0, rest.stdout[-3000:] + rest.stderr[-3000:]
    return proj


def test_ir_targets_and_reference_are_the_same_bytes_in_another_clone(elsewhere, repro_project):
    mine, theirs = out_hashes(repro_project), out_hashes(elsewhere)
    targets = sorted(p for p in mine if p.startswith("artifacts/targets/"))
    compared = ["artifacts/source", "artifacts/ov-ir", "artifacts/reference", *targets]
    assert len(compared) == 9
    assert {p: theirs[p] for p in compared} == {p: mine[p] for p in compared}


def test_package_model_files_are_the_same_bytes_in_another_clone(elsewhere, repro_project):
    mine = model_files(repro_project)
    assert len(mine) > 30 and any(p.endswith("openvino_model.bin") for p in mine)
    assert model_files(elsewhere) == mine


def test_a_forced_rerun_of_the_ir_reruns_nothing_after_it(elsewhere):
    forced = dvc(["repro", "-f", "-s", "ov-ir"], elsewhere)
    assert forced.returncode == 0 and stages_run(forced) == {"ov-ir"}, forced.stdout[-2000:]
    after = dvc(["repro"], elsewhere)
    assert after.returncode == 0, after.stdout[-2000:] + after.stderr[-2000:]
    assert stages_run(after) == set(), after.stdout[-3000:]
