"""The publish workflow, job by job, from .github/workflows/publish.yml itself.

Each job runs in its own fresh clone; all they share is a local DVC remote (standing in for S3, given as the
repository variable DVC_REMOTE_URL), a folder standing in for the artifact store, and a fake Hub on loopback
for the upload. The Windows (DirectML) and self-hosted NPU jobs cannot run here and are left out; the
Linux jobs run as written. What each job ran is read from DVC's own output.

The workflow has two paths and both are taken in one simulation. The origin commits the lock of the session's
built project (as a developer commits the lock of their own `dvc repro`), and the remote starts with what that
build pushed for four of the five targets' stages: their legs pull those outputs and run nothing of their own
(the path of a run after an earlier one, or after the developer's push), which also proves that prepare's fresh
IR and reference are the built project's bytes (else the targets' inputs changed and DVC would run them).
Prepare, the ov-fp16 leg and publish find nothing on the remote for their stages and run them (the first run).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.support.actions import Workflow, clean_env, runs_on_linux
from tests.support.hub_server import FakeHub
from tests.test_dvc_source import VENV_BIN, dvc, project_copy

WORKFLOW = ROOT / ".github/workflows/publish.yml"
# check-params runs in every job: params.yaml is checked before any stage output is touched
SHARED = {"check-params", "source", "ov-ir", "reference"}
FIRST_RUN_LEG = "ov-fp16"  # the leg whose stages nothing on the remote holds: it builds, validates, packages
LEG_STAGES = ("build", "validate", "package")


def origin_repo(dest: Path, lock: Path | None = None) -> Path:
    """The project as it would be pushed: a git repository with one commit of the working tree (with ``lock``
    as its dvc.lock when given)."""
    project_copy(dest)
    if lock is not None:
        shutil.copy2(lock, dest / "dvc.lock")
    git = ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.invalid"]
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True, capture_output=True)
    subprocess.run([*git, "commit", "-qm", "release"], cwd=dest, check=True)
    return dest


def push_earlier_build(built: Path, remote: Path, stages: list[str]) -> None:
    """``stages``' outputs and run-cache, pushed to ``remote`` from a copy of the built project as a leg's
    ``dvc push --run-cache <stages>`` pushes them (a copy: the built project's own remote stays as it is)."""
    seed = remote.parent / "earlier-build"
    shutil.copytree(built, seed, symlinks=True, ignore=lambda d, names: ["tmp"] if d.endswith(".dvc") else [])
    assert dvc(["remote", "add", "-d", "-f", "storage", str(remote)], seed).returncode == 0
    pushed = dvc(["push", "--run-cache", *stages], seed)
    assert pushed.returncode == 0, pushed.stdout[-2000:] + pushed.stderr[-2000:]
    shutil.rmtree(seed)


def seeded_targets(params) -> list[str]:
    return [t for t, x in params.targets.items() if x.enabled and t != FIRST_RUN_LEG]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, repro_project, default_params):
    tmp = tmp_path_factory.mktemp("workflow")
    origin = origin_repo(tmp / "origin", lock=repro_project / "dvc.lock")
    remote, store, work = tmp / "s3", tmp / "artifact-store", tmp / "jobs"
    for d in (remote, store, work):
        d.mkdir()
    seeded = seeded_targets(default_params)
    push_earlier_build(repro_project, remote, [f"{s}@{t}" for t in seeded for s in LEG_STAGES])
    with FakeHub(write_tokens={"hf_write"}) as hub:
        env = clean_env() | {"HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp / "hf")}
        wf = Workflow(
            WORKFLOW, origin, work, store,
            vars={"DVC_REMOTE_URL": str(remote), "HF_REPO_PREFIX": "team/phi3", "NPU_RUNNER": "false"},
            secrets={"HF_TOKEN": "hf_write", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""},
            inputs={"model": "embedded"},
            base_env=env,
        )  # fmt: skip
        skipped = [name for name, job in wf.doc["jobs"].items() if not runs_on_linux(job)]
        runs = {name: wf.run_job(name) for name in wf.doc["jobs"] if name not in skipped}
        repos = {rid: dict(repo.commits[repo.refs["main"]]) for rid, repo in hub.repos.items()}
    return {"runs": runs, "skipped": skipped, "origin": origin, "remote": remote, "store": store, "repos": repos}


def test_jobs_this_machine_cannot_run_are_only_the_windows_and_npu_checks(simulated):
    assert sorted(simulated["skipped"]) == ["check-directml", "check-npu"]


def test_prepare_builds_the_shared_stages_once(simulated, default_params):
    (prepare,) = simulated["runs"]["prepare"]
    disabled = {
        f"{s}@{t}" for t, x in default_params.targets.items() if not x.enabled for s in ("build", "validate", "package")
    }
    assert set(prepare.stages_run()) == SHARED | disabled, prepare.log[-3000:]
    assert len(prepare.stages_run()) == len(SHARED | disabled)  # each once
    assert json.loads(prepare.outputs["targets"]) == [t for t, x in default_params.targets.items() if x.enabled]


def lock_outs(lock: Path, stage: str) -> list[dict]:
    return yaml.safe_load(lock.read_text())["stages"][stage]["outs"]


def test_each_target_job_runs_only_its_own_stages(simulated, default_params):
    """Each job fetches the source again (an uncached output: users' folders are hard-linked, never copied into
    DVC's cache) and restores the IR and the reference from the remote: neither is rebuilt. The first-run leg
    runs its own three stages; the others run none: their inputs (prepare's IR and reference among them) are the
    earlier build's very bytes, so the outputs its lock names, pulled from the remote, are up to date."""
    jobs = simulated["runs"]["build"]
    enabled = [t for t, x in default_params.targets.items() if x.enabled]
    seeded = seeded_targets(default_params)
    assert len(jobs) == len(enabled) == 5 and len(seeded) == 4
    for job, target in zip(jobs, enabled, strict=True):
        own = [f"{s}@{target}" for s in LEG_STAGES]
        ran = job.stages_run()
        if target in seeded:
            assert sorted(ran) == ["check-params", "source"], f"{target}:\n{job.log[-3000:]}"
            for stage in own:
                origin = lock_outs(simulated["origin"] / "dvc.lock", stage)
                assert lock_outs(job.folder / "dvc.lock", stage) == origin, stage
                assert (job.folder / origin[0]["path"]).is_dir(), stage  # checked out, not only listed
        else:
            assert sorted(ran) == sorted(["check-params", "source", *own]), f"{target}:\n{job.log[-3000:]}"


def test_publish_renders_the_report_and_publishes_every_validated_package(simulated, default_params):
    (publish,) = simulated["runs"]["publish"]
    assert publish.stages_run() == ["report"], publish.log[-3000:]
    enabled = [t for t, x in default_params.targets.items() if x.enabled]
    assert sorted(simulated["repos"]) == sorted(f"team/phi3-{t}" for t in enabled)
    for t in enabled:
        files = simulated["repos"][f"team/phi3-{t}"]
        manifest = json.loads(files["manifest.json"])
        assert manifest["validation"]["passed"] is True and manifest["name"] == t


def test_the_published_lock_matches_the_remote_in_a_teammates_clone(simulated, tmp_path):
    """A fresh clone with the lock publish assembled: every entry is restored from the remote and the pipeline is
    up to date (only the uncached source is fetched again); a package pulls and verifies from the remote alone."""
    clone = tmp_path / "teammate"
    subprocess.run(["git", "clone", "-q", str(simulated["origin"]), str(clone)], check=True)
    for rel in ("dvc.lock", "artifacts/report/metrics.json", "artifacts/report/plots.json"):  # what a release commits
        (clone / rel).write_bytes((simulated["store"] / "dvc-lock" / rel).read_bytes())
    assert dvc(["remote", "add", "-d", "-f", "storage", str(simulated["remote"])], clone).returncode == 0
    pulled = dvc(["pull"], clone)
    assert pulled.returncode == 0, pulled.stdout[-2000:] + pulled.stderr[-2000:]
    assert dvc(["repro", "source"], clone).returncode == 0
    status = dvc(["status"], clone)
    assert "Data and pipelines are up to date" in status.stdout, status.stdout[-3000:]

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "commit", "-qam", "release lock"], cwd=clone, check=True)
    elsewhere = tmp_path / "deploy"
    elsewhere.mkdir()
    out = elsewhere / "ov-int4"
    pulled = subprocess.run(
        [str(VENV_BIN / "aipc"), "pull", "ov-int4", "--repo", str(clone), "--rev", "HEAD", "--out", str(out)],
        cwd=elsewhere, capture_output=True, text=True, env=clean_env(),
    )  # fmt: skip
    assert pulled.returncode == 0, pulled.stdout[-2000:] + pulled.stderr[-2000:]
    assert "verified against manifest.json" in " ".join(pulled.stdout.split())
    published = simulated["repos"]["team/phi3-ov-int4"]
    assert (out / "openvino_model.bin").read_bytes() == published["openvino_model.bin"]


def test_the_publish_step_signs_with_the_secret_key_and_leaves_no_key_behind(signed, tmp_path):
    """The publish job's step as written, given the secret AIPC_SIGNING_KEY_PEM, in a copy of a project whose
    params name the signer (the job's earlier steps leave it so: packages restored, report rendered)."""
    proj = tmp_path / "publish"
    shutil.copytree(signed["proj"], proj, symlinks=True)
    keytmp = tmp_path / "runner-tmp"  # the runner's TMPDIR: where mktemp puts the key
    keytmp.mkdir()
    (proj / ".venv").symlink_to(VENV_BIN.parent, target_is_directory=True)
    pem = signed["private"].read_text()
    with FakeHub(write_tokens={"hf_write"}) as hub:
        env = clean_env() | {"HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp_path / "hf"),
                             "TMPDIR": str(keytmp)}  # fmt: skip
        wf = Workflow(
            WORKFLOW, proj, tmp_path, tmp_path,
            vars={"HF_REPO_PREFIX": "team/phi3"},
            secrets={"HF_TOKEN": "hf_write", "AIPC_SIGNING_KEY_PEM": pem},
            inputs={"model": "embedded"},
            base_env=env,
        )  # fmt: skip
        log = wf.run_step("publish", "Publish only what passed validation", proj)
        repos = {rid: dict(repo.commits[repo.refs["main"]]) for rid, repo in hub.repos.items()}
    assert "signed by Test team" in " ".join(log.split()), log[-3000:]
    assert pem.strip().splitlines()[1] not in log and not list(keytmp.iterdir())  # never printed; removed on exit
    assert len(repos) == 5 and all("model.sig" in files for files in repos.values())
    folder = tmp_path / "from-hub"
    for name, data in repos["team/phi3-ov-int4"].items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    (folder / ".gitattributes").unlink()
    lib = subprocess.run(
        [str(VENV_BIN / "model_signing"), "verify", "key", "--signature", str(folder / "model.sig"),
         "--public_key", str(signed["public"]), str(folder)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert lib.returncode == 0, lib.stdout + lib.stderr
    assert (proj / "signatures/ov-int4.sig.dvc").is_file()  # what the job uploads with the lock
