"""Where the users are: the pins install on Python 3.11–3.13 for Linux and Windows, the deployment extras
agree with the build pins, and the ort-* packages run in the oldest onnxruntime-genai the manifest names.

Resolution uses pip's own resolver against the package index (`pip install --dry-run --only-binary=:all:
--python-version … --platform …`). Two limits of pip shape the checks, both measured here:
- pip evaluates environment markers for the *running* interpreter, not the target platform, so a full
  resolution of torch for Windows drags in its Linux-only CUDA wheels. Every build pin is therefore checked for
  a wheel on each (version, platform) with ``--no-deps``, and the deployment installs (no torch) are resolved
  with all their dependencies.
- ``--platform`` admits wheels only: DVC's antlr4-python3-runtime 4.9.3 exists only as a source archive
  (pure Python), so its wheel is built first with ``pip wheel`` and offered with ``--find-links``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pipeline.targets import ortgenai
from tests.conftest import ROOT

PYTHONS = ("3.11", "3.12", "3.13")
LINUX = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64")
PLATFORMS = {"linux": LINUX, "windows": ("win_amd64",)}
EXTRAS = ("core", "openvino", "ort-cpu", "ort-dml", "dvc")


def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^;\s]+)", line.strip())
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def pip(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
           "--quiet", "--target", "/nonexistent-dry-run", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def platform_args(platform: str, version: str) -> list[str]:
    return ["--python-version", version, *[a for p in PLATFORMS[platform] for a in ("--platform", p)]]


def errors(proc: subprocess.CompletedProcess) -> str:
    return "\n".join(line for line in proc.stderr.splitlines() if "is ignored" not in line)[-1500:]


@pytest.fixture(scope="module")
def pure_wheels(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pure-wheels")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), "antlr4-python3-runtime==4.9.3"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, errors(proc)
    return out


def test_deployment_pins_are_the_build_pins():
    build = pins(ROOT / "requirements.txt")
    for extra in ("core", "openvino", "ort-cpu", "dvc"):
        for name, version in pins(ROOT / f"requirements-{extra}.txt").items():
            assert build.get(name) == version, (
                f"requirements-{extra}.txt pins {name}=={version}, build {build.get(name)}"
            )
    dml = pins(ROOT / "requirements-ort-dml.txt")
    assert dml == {"onnxruntime-genai-directml": ortgenai.OLDEST_RUNTIME["onnxruntime-genai-directml"]}


def build_pins_args(version: str, platform: str) -> list[str]:
    return ["--no-deps", *platform_args(platform, version), "-r", str(ROOT / "requirements.txt")]


def deployment_args(version: str, platform: str, pure_wheels: Path, report: Path) -> list[str]:
    runtime = "ort-dml" if platform == "windows" else "ort-cpu"
    # the team's route: pulling from the DVC remote (the Hub route is the same without requirements-dvc.txt)
    reqs = [f"-r{ROOT / f'requirements-{x}.txt'}" for x in ("core", "openvino", "dvc")]
    if runtime == "ort-dml":  # its marker is evaluated for this (Linux) interpreter: name the package itself
        reqs += [f"{n}=={v}" for n, v in pins(ROOT / "requirements-ort-dml.txt").items()]
    else:
        reqs.append(f"-r{ROOT / 'requirements-ort-cpu.txt'}")
    return ["--find-links", str(pure_wheels), *platform_args(platform, version), "--report", str(report), *reqs]


@pytest.fixture(scope="module")
def resolved(pure_wheels, tmp_path_factory) -> dict[tuple[str, str, str], tuple[subprocess.CompletedProcess, Path]]:
    """Every resolution of this module, run side by side: each is one pip process that mostly waits on the
    package index, so twelve in a row spent ~2.5 min of the suite waiting (measured: --durations)."""
    reports = tmp_path_factory.mktemp("pip-reports")
    jobs = {}
    for version in PYTHONS:
        for platform in PLATFORMS:
            jobs["pins", version, platform] = build_pins_args(version, platform)
            report = reports / f"{version}-{platform}.json"
            jobs["deploy", version, platform] = deployment_args(version, platform, pure_wheels, report)
    with ThreadPoolExecutor(max_workers=6) as pool:
        procs = dict(zip(jobs, pool.map(lambda args: pip(*args), jobs.values()), strict=True))
    return {k: (proc, reports / f"{k[1]}-{k[2]}.json") for k, proc in procs.items()}


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
@pytest.mark.parametrize("version", PYTHONS)
def test_every_build_pin_has_a_wheel(version, platform, resolved):
    proc, _ = resolved["pins", version, platform]
    assert proc.returncode == 0, errors(proc)


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
@pytest.mark.parametrize("version", PYTHONS)
def test_deployment_install_resolves(version, platform, resolved):
    proc, report = resolved["deploy", version, platform]
    assert proc.returncode == 0, errors(proc)
    names = {i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]}
    assert not names & {"torch", "transformers", "optimum", "nncf"}, names
    assert ("onnxruntime-genai-directml" in names) == (platform == "windows")


@pytest.fixture(scope="module")
def oldest_genai(aipc_cache) -> Path:
    """An isolated venv with the oldest onnxruntime-genai the manifest names (built like the npu-lib env)."""
    version = ortgenai.OLDEST_RUNTIME["onnxruntime-genai"]
    env = aipc_cache / f"onnxruntime-genai-{version}"
    if not (env / "ok").exists():
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        proc = subprocess.run(
            [str(env / "bin" / "pip"), "install", "-q", f"onnxruntime-genai=={version}"],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert proc.returncode == 0, errors(proc)
        (env / "ok").touch()
    return env / "bin" / "python"


@pytest.mark.parametrize("target", ["ort-cpu-int4", "ort-dml-int4"])
def test_ort_packages_generate_in_the_oldest_runtime(target, oldest_genai, build, artifacts_root, default_params,
                                                     tmp_path):  # fmt: skip
    """The golden tokens of the package, re-generated by onnxruntime-genai 0.13.0 on the CPU provider."""
    import shutil

    from pipeline.package import GOLDEN
    from pipeline.validate.harness import validate_target

    folder = tmp_path / target
    shutil.copytree(build(target), folder)
    vdir = tmp_path / "validation"
    vdir.mkdir()
    validate_target(default_params, target, vdir, artifacts_root)
    shutil.copyfile(vdir / "outputs.jsonl", folder / GOLDEN)
    probe = ROOT / "tests" / "support" / "ort_genai_probe.py"
    proc = subprocess.run([str(oldest_genai), str(probe), str(folder)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-1500:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["version"] == ortgenai.OLDEST_RUNTIME["onnxruntime-genai"]
    assert result["matches"] and all(result["matches"]), result


def test_doctor_fails_on_two_onnxruntime_genai_flavours(monkeypatch):
    from pipeline import doctor

    versions = {"onnxruntime-genai": "0.18.0", "onnxruntime-genai-directml": "0.13.0"}
    monkeypatch.setattr(doctor, "_version", lambda name: versions.get(name))
    (check,) = doctor.check_genai_flavours()
    assert check.status == "fail" and "two flavours installed" in check.detail
    assert "pip uninstall -y onnxruntime-genai onnxruntime-genai-directml" in check.detail
    del versions["onnxruntime-genai-directml"]
    assert doctor.check_genai_flavours() == []
