"""Publish → pull → verify round trips against a local DVC remote, an S3-compatible server and a Hub server."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import manifest
from tests.support.hub_server import FakeHub
from tests.test_dvc_source import VENV_BIN, dvc

AIPC = str(VENV_BIN / "aipc")


def aipc(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", COLUMNS="160", **(env or {}))
    return subprocess.run([AIPC, *args], cwd=cwd, env=full, capture_output=True, text=True)


def git(args: list[str], cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True, capture_output=True
    )


@pytest.fixture(scope="module")
def published_project(repro_project):
    """The repro'd project committed to git (dvc.lock records the packages), as CI would have it."""
    git(["add", "-A"], repro_project)
    git(["commit", "-qm", "pipeline run", "--allow-empty"], repro_project)
    return repro_project


def same_tree(a: Path, b: Path) -> bool:
    fa = {p.relative_to(a).as_posix(): p.read_bytes() for p in a.rglob("*") if p.is_file()}
    fb = {p.relative_to(b).as_posix(): p.read_bytes() for p in b.rglob("*") if p.is_file()}
    return fa == fb


def test_packages_hold_manifest_card_and_golden_outputs(published_project):
    pkg = published_project / "artifacts/packages/ov-int4"
    m = manifest.read(pkg)
    assert manifest.verify(pkg) == []
    assert m.validated and m.source.resolved_revision and m.tools.build["nncf"]
    assert m.settings["group_size"] == 64 and m.settings["awq"] and m.build.weights == {"int4": 5, "int8": 5}
    assert {f.path for f in m.files} >= {
        "openvino_model.xml",
        "openvino_model.bin",
        "README.md",
        "golden_outputs.jsonl",
    }
    card = (pkg / "README.md").read_text()
    for section in (
        "## Quantization and build settings",
        "## Validation against the reference",
        "## Use it",
        "## Provenance",
    ):
        assert section in card
    assert "teacher-forced top-1 agreement" in card and "LLMPipeline" in card
    # gate bounds in the units of the validation table (params hold fractions)
    assert "| `teacher_forced_agreement_min` | ≥ 80.0% |" in card and "| `perplexity_increase_max` | ≤ +25.0% |" in card
    dml_card = (published_project / "artifacts/packages/ort-dml-int4/README.md").read_text()
    assert "onnxruntime-genai-directml" in dml_card and "proxy" in dml_card
    assert (
        json.loads((published_project / "artifacts/packages/npu-lib-int4/status.json").read_text())["status"]
        == "disabled"
    )


def test_local_remote_round_trip(published_project, tmp_path):
    t0 = time.monotonic()
    proc = aipc(["publish", "--target", "ov-int4", "--target", "ort-dml-int4"], published_project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "published ov-int4" in " ".join(proc.stdout.split())
    print(f"local publish: {time.monotonic() - t0:.1f} s", file=sys.stderr)
    t0 = time.monotonic()
    out = tmp_path / "pulled"
    proc = aipc(["pull", "ov-int4", "--repo", str(published_project), "--rev", "HEAD", "--out", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(f"local pull: {time.monotonic() - t0:.1f} s", file=sys.stderr)
    assert same_tree(out, published_project / "artifacts/packages/ov-int4")
    assert "LLMPipeline" in proc.stdout and "aipc check" in proc.stdout


def test_publishing_a_modified_package_is_refused(published_project):
    pkg = published_project / "artifacts/packages/ov-int4"
    card = pkg / "README.md"
    original = card.read_bytes()
    card.unlink()  # DVC links cache files read-only: replace the file instead of writing through the link
    card.write_bytes(original + b"\nunreviewed edit\n")
    try:
        proc = aipc(["publish", "--target", "ov-int4"], published_project)
        assert proc.returncode != 0
        err = " ".join(proc.stderr.split())
        assert "ov-int4 was modified after it was validated: README.md: size" in err and "Traceback" not in err
    finally:
        assert dvc(["checkout", "-f", "artifacts/packages/ov-int4"], published_project).returncode == 0
    assert manifest.verify(pkg) == []


def test_publishing_an_unvalidated_target_is_refused(published_project):
    vfile = published_project / "artifacts/validation/ort-cpu-int4/metrics.json"
    pkg = published_project / "artifacts/packages/ort-cpu-int4"
    shutil.move(pkg, pkg.with_name("ort-cpu-int4.bak"))
    data = json.loads(vfile.read_text())
    data["gates"].update(passed=False, failures=["ort-cpu-int4: teacher_forced_agreement = 0.5, bound >= 0.7"])
    vfile.unlink()
    vfile.write_text(json.dumps(data))
    try:
        proc = aipc(["publish", "--target", "ort-cpu-int4"], published_project)
        assert proc.returncode != 0
        err = " ".join(proc.stderr.split())
        assert (
            "ort-cpu-int4 is not publishable: its validation failed: ort-cpu-int4: teacher_forced_agreement = 0.5"
            in err
        )
    finally:
        shutil.move(pkg.with_name("ort-cpu-int4.bak"), pkg)
        assert dvc(["checkout", "-f"], published_project).returncode == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_server(monkeypatch):
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    import boto3

    boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}").create_bucket(Bucket="aipc")
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_s3_remote_round_trip(published_project, tmp_path, s3_server):
    assert dvc(["remote", "add", "-f", "s3", "s3://aipc/cache"], published_project).returncode == 0
    assert dvc(["remote", "modify", "s3", "endpointurl", s3_server], published_project).returncode == 0
    git(["add", ".dvc/config"], published_project)
    git(["commit", "-qm", "s3 remote"], published_project)
    t0 = time.monotonic()
    proc = aipc(["publish", "--target", "ov-npu-int4", "--remote", "s3"], published_project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(f"s3 publish: {time.monotonic() - t0:.1f} s", file=sys.stderr)
    import boto3

    listed = boto3.client("s3", endpoint_url=s3_server).list_objects_v2(Bucket="aipc")
    assert listed.get("KeyCount", 0) > 0
    t0 = time.monotonic()
    out = tmp_path / "pulled"
    proc = aipc(
        ["pull", "ov-npu-int4", "--repo", str(published_project), "--rev", "HEAD", "--remote", "s3", "--out", str(out)],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(f"s3 pull: {time.monotonic() - t0:.1f} s", file=sys.stderr)
    assert same_tree(out, published_project / "artifacts/packages/ov-npu-int4")


@pytest.fixture
def hub(monkeypatch, tmp_path):
    with FakeHub(write_tokens={"hf_write"}) as server:
        yield server


def test_hub_round_trip_and_tampered_download_is_refused(published_project, tmp_path, hub):
    env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_write", "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_CACHE": str(tmp_path / "hf-cache")}  # fmt: skip
    t0 = time.monotonic()
    proc = aipc(
        ["publish", "--target", "ov-fp16", "--no-dvc", "--hf", "--hf-repo-prefix", "test-org/phi3"],
        published_project,
        env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(f"hub publish: {time.monotonic() - t0:.1f} s", file=sys.stderr)
    assert "hf_write" not in proc.stdout + proc.stderr
    repo = hub.repos["test-org/phi3-ov-fp16"]
    files = repo.commits[repo.refs["main"]]
    assert files["manifest.json"] == (published_project / "artifacts/packages/ov-fp16/manifest.json").read_bytes()
    assert any(r["method"] == "PUT" for r in hub.requests)  # the IR went through the LFS upload path

    t0 = time.monotonic()
    out = tmp_path / "pulled"
    proc = aipc(
        ["pull", "ov-fp16", "--from", "hf", "--hf-repo", "test-org/phi3-ov-fp16", "--out", str(out)], tmp_path, env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(f"hub pull: {time.monotonic() - t0:.1f} s", file=sys.stderr)
    expected = published_project / "artifacts/packages/ov-fp16"
    assert same_tree(out, expected)
    fingerprint = manifest.read(expected).fingerprint
    proc = aipc(["pull", "ov-fp16", "--from", "hf", "--hf-repo", "test-org/phi3-ov-fp16", "--out", str(tmp_path / "fp"),
                 "--fingerprint", "0" * 16], tmp_path, env)  # fmt: skip
    assert proc.returncode != 0 and f"fingerprint {fingerprint} is not the expected" in " ".join(proc.stderr.split())

    tampered = bytearray(files["openvino_model.bin"])
    tampered[100] ^= 0xFF
    hub.tamper("test-org/phi3-ov-fp16", "openvino_model.bin", bytes(tampered))
    out2 = tmp_path / "pulled-tampered"
    proc = aipc(
        ["pull", "ov-fp16", "--from", "hf", "--hf-repo", "test-org/phi3-ov-fp16", "--out", str(out2)], tmp_path, env
    )
    assert proc.returncode != 0
    err = " ".join(proc.stderr.split())
    assert "ov-fp16 failed verification and was deleted: openvino_model.bin: sha256 differs from the manifest" in err
    assert not out2.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_check_reruns_golden_prompts_on_the_local_device(published_project, tmp_path):
    pkg = published_project / "artifacts/packages/ov-fp16"
    proc = aipc(["check", str(pkg), "--device", "CPU"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "exact match 100%" in proc.stdout
    proc = aipc(["check", str(published_project / "artifacts/packages/ort-dml-int4"), "--device", "auto"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "DirectML graph on ONNX Runtime's CPU provider" in " ".join(proc.stdout.split())
    proc = aipc(["check", str(published_project / "artifacts/packages/ov-npu-int4"), "--device", "NPU"], tmp_path)
    if "NPU" not in __import__("openvino").Core().available_devices:
        assert proc.returncode != 0 and "device NPU was requested but OpenVINO sees only" in " ".join(
            proc.stderr.split()
        )


@pytest.fixture(scope="module")
def deploy_venv(tmp_path_factory) -> Path:
    """A fresh venv with the light deployment install only: the core and the OpenVINO + ONNX Runtime GenAI
    CPU runtimes, from this checkout (what a team installs on an AI PC to pull from the Hub and check)."""
    from tests.conftest import ROOT

    venv = tmp_path_factory.mktemp("deploy") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    t0 = time.monotonic()
    proc = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", f"{ROOT}[openvino,ort-cpu]"],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    print(f"deployment install: {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return venv


def test_deployment_install_pulls_and_checks_without_the_build_stack(published_project, deploy_venv, tmp_path, hub):
    """The light install pulls from the Hub and checks; pulling from the DVC remote says in one line that it
    needs the ``dvc`` extra, and works once that is installed."""
    from tests.conftest import ROOT

    bin_dir = deploy_venv / "bin"
    hub_env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_write", "HF_HUB_DISABLE_XET": "1",
               "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf-cache")}  # fmt: skip
    env = dict(
        os.environ,
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        COLUMNS="160",
        VIRTUAL_ENV=str(deploy_venv),
        **hub_env,
    )

    def run(*args: str, cwd: Path = tmp_path) -> subprocess.CompletedProcess:
        return subprocess.run([str(bin_dir / "aipc"), *args], cwd=cwd, env=env, capture_output=True, text=True)

    for heavy in ("torch", "transformers", "optimum", "nncf", "dvc"):
        probe = subprocess.run([str(bin_dir / "python"), "-c", f"import {heavy}"], capture_output=True, text=True)
        assert probe.returncode != 0, f"{heavy} is importable in the deployment install"
    targets = ("ov-int4", "ort-cpu-int4")
    published = aipc(
        ["publish", *(a for t in targets for a in ("--target", t)), "--hf", "--hf-repo-prefix", "team/phi3"],
        published_project,
        hub_env,
    )
    assert published.returncode == 0, published.stdout + published.stderr
    for target in targets:
        out = tmp_path / target
        proc = run("pull", target, "--from", "hf", "--hf-repo", f"team/phi3-{target}", "--out", str(out))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert same_tree(out, published_project / "artifacts/packages" / target)
        proc = run("check", str(out), "--device", "CPU")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "exact match 100%" in " ".join(proc.stdout.split())
    doctor = run("doctor")
    text = " ".join(doctor.stdout.split())
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "deployment, runtimes: openvino, ort-cpu; pulls from the Hub" in text and "no params.yaml here" in text

    no_dvc = run("pull", "ov-int4", "--repo", str(published_project), "--rev", "HEAD", "--out", str(tmp_path / "d"))
    err = no_dvc.stdout + no_dvc.stderr
    assert no_dvc.returncode != 0 and "Traceback" not in err and not (tmp_path / "d").exists()
    assert "DVC is not installed in this environment" in err and "aipc-pipeline[dvc]" in err, err

    proc = subprocess.run(
        [str(bin_dir / "pip"), "install", "-q", f"{ROOT}[openvino,ort-cpu,dvc]"],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    for target in targets:
        out = tmp_path / f"dvc-{target}"
        proc = run("pull", target, "--repo", str(published_project), "--rev", "HEAD", "--out", str(out))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert same_tree(out, published_project / "artifacts/packages" / target)
    text = " ".join(run("doctor").stdout.split())
    assert "pulls from a DVC remote or the Hub" in text, text


def test_a_package_published_before_the_run_log_still_reads(published_project, tmp_path):
    """Packages published by earlier versions carry the build's seconds and RSS in their manifest: pulling or
    checking one must not be refused as a foreign file."""
    from pipeline import manifest
    from pipeline.records import Manifest

    old = tmp_path / "ov-int4"
    shutil.copytree(published_project / "artifacts/packages/ov-int4", old)
    (old / "manifest.json").chmod(0o644)
    data = json.loads((old / "manifest.json").read_text())
    data["build"].update(seconds=12.3, peak_rss_bytes=456789)  # as the earlier version wrote them
    (old / "manifest.json").write_text(json.dumps(data))
    assert Manifest.read(old).build.seconds == 12.3
    assert manifest.verify(old) == []
