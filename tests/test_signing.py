"""Signed packages: published signed, pulled elsewhere with only the public key, refused when anything differs.

The attacker modelled here controls the remote: a changed byte comes with a manifest rewritten to match it, an
added file with a manifest that lists it, so the manifest check alone passes them; only the signature can refuse.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.hub_server import FakeHub
from tests.support.signed_project import SIGNER
from tests.test_dvc_source import VENV_BIN
from tests.test_publish import aipc, git


def test_the_manifest_and_card_say_who_signs_and_how_to_verify(signed):
    m = json.loads((signed["proj"] / "artifacts/packages/ov-fp16/manifest.json").read_text())
    assert m["signing"]["signer"] == SIGNER and m["signing"]["verify_with"] == "keys/team.pub"
    command = "model_signing verify key --signature model.sig --public_key team.pub ."
    assert m["signing"]["verify_command"] == command
    card = (signed["proj"] / "artifacts/packages/ov-fp16/README.md").read_text()
    assert f"Signed by **{SIGNER}**" in card and command in card


def remote_files(proj: Path) -> set[Path]:
    remote = proj / ".aipc/dvc-remote"
    return set(remote.rglob("*")) if remote.exists() else set()


def test_publish_without_the_key_or_with_another_key_is_refused_before_any_push(signed):
    proj = signed["proj"]
    pushed = remote_files(proj)
    proc = aipc(["publish", "--target", "ov-fp16"], proj, {"AIPC_SIGNING_KEY": ""})
    assert proc.returncode != 0
    assert f"params.yaml says {SIGNER} signs the packages, but AIPC_SIGNING_KEY names no private key" in " ".join(
        proc.stderr.split()
    )
    wrong = signed["root"] / "secrets/wrong.key"
    shutil.copy2(signed["other"].with_suffix(".key"), wrong)
    proc = aipc(["publish", "--target", "ov-fp16"], proj, {"AIPC_SIGNING_KEY": str(wrong)})
    err = " ".join(proc.stderr.split())
    assert proc.returncode != 0 and "its signature does not verify against public key team.pub" in err, err
    assert str(wrong) not in proc.stdout + proc.stderr  # the private key's path is not printed either
    assert not (proj / "signatures/ov-fp16.sig").exists()  # nothing was pushed or tracked
    assert remote_files(proj) == pushed


def test_signed_over_dvc_verified_elsewhere_with_only_the_public_key(signed, tmp_path):
    proj = signed["proj"]
    proc = aipc(["publish", "--target", "ov-fp16"], proj, {"AIPC_SIGNING_KEY": str(signed["private"])})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"signed by {SIGNER}" in " ".join(proc.stdout.split())
    assert str(signed["private"]) not in proc.stdout + proc.stderr
    assert (proj / "signatures/ov-fp16.sig.dvc").is_file()
    # a re-run reuses that signature of the same bytes, and a private key that is not the team's is still refused
    wrong = signed["root"] / "secrets/other.key"
    proc = aipc(["publish", "--target", "ov-fp16"], proj, {"AIPC_SIGNING_KEY": str(wrong)})
    err = " ".join(proc.stderr.split())
    assert proc.returncode != 0 and "its signature does not verify against public key team.pub" in err, err
    git(["add", "-A"], proj)
    git(["commit", "-qm", "publish ov-fp16 signed"], proj)

    elsewhere = tmp_path / "elsewhere"  # another folder: only the repository and the public key
    elsewhere.mkdir()
    key = shutil.copy2(signed["public"], elsewhere / "team.pub")
    out = elsewhere / "ov-fp16"
    proc = aipc(["pull", "ov-fp16", "--repo", str(proj), "--out", str(out), "--public-key", str(key)], elsewhere)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"signature verified: signed by {SIGNER}" in " ".join(proc.stdout.split())
    lib = subprocess.run(
        [str(VENV_BIN / "model_signing"), "verify", "key", "--signature", str(out / "model.sig"),
         "--public_key", str(key), str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert lib.returncode == 0 and "Verification succeeded" in lib.stdout + lib.stderr, lib.stdout + lib.stderr

    proc = aipc(["pull", "ov-fp16", "--repo", str(proj), "--out", str(elsewhere / "plain")], elsewhere)
    assert proc.returncode == 0 and "signed, NOT verified: pass --public-key" in " ".join(proc.stdout.split())

    refused = elsewhere / "other-key"
    proc = aipc(
        ["pull", "ov-fp16", "--repo", str(proj), "--out", str(refused), "--public-key", str(signed["other"])], elsewhere
    )
    assert proc.returncode != 0 and "its signature does not verify against public key other.pub" in " ".join(
        proc.stderr.split()
    )
    assert not refused.exists() and not [p for p in elsewhere.iterdir() if p.name.startswith(".tmp-")]


def _rewrite_manifest(files: dict[str, bytes], changed: dict[str, bytes]) -> bytes:
    """The manifest an attacker with write access would put beside ``changed`` files, so that it matches them."""
    m = json.loads(files["manifest.json"])
    rows = {f["path"]: f for f in m["files"]}
    for path, data in changed.items():
        rows[path] = {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    m["files"] = sorted(rows.values(), key=lambda f: f["path"])
    return json.dumps(m, indent=2).encode()


@pytest.mark.parametrize("attack", ["byte changed", "file added", "signature removed"])
def test_a_tampered_package_on_the_hub_is_refused_and_nothing_is_left(attack, signed, tmp_path):
    proj = signed["proj"]
    env = {"HF_TOKEN": "hf_write", "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_CACHE": str(tmp_path / "hf-cache"), "AIPC_SIGNING_KEY": str(signed["private"])}  # fmt: skip
    with FakeHub(write_tokens={"hf_write"}) as hub:
        env["HF_ENDPOINT"] = hub.url
        proc = aipc(["publish", "--target", "ov-fp16", "--no-dvc", "--hf", "--hf-repo-prefix", "org/phi3"], proj, env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        repo_id = "org/phi3-ov-fp16"
        files = dict(hub.repos[repo_id].commits[hub.repos[repo_id].refs["main"]])
        assert "model.sig" in files
        pull = ["pull", "ov-fp16", "--from", "hf", "--hf-repo", repo_id, "--public-key", str(signed["public"])]
        proc = aipc([*pull, "--out", str(tmp_path / "good")], tmp_path, env)
        assert proc.returncode == 0 and "signature verified" in proc.stdout, proc.stdout + proc.stderr

        if attack == "byte changed":
            name = "openvino_model.bin"
            data = bytearray(files[name])
            data[len(data) // 2] ^= 0x01
            changed = {name: bytes(data)}
        elif attack == "file added":
            changed = {"extra_config.json": b"{}"}
        else:
            changed = {}
        for name, data in changed.items():
            hub.tamper(repo_id, name, data)
        if changed:
            hub.tamper(repo_id, "manifest.json", _rewrite_manifest(files, changed))
        else:
            hub.tamper(repo_id, "model.sig", b"")
        out = tmp_path / "tampered"
        proc = aipc([*pull, "--out", str(out)], tmp_path, env)
    err = " ".join(proc.stderr.split())
    assert proc.returncode != 0, proc.stdout
    assert "does not verify against public key team.pub" in err, err
    assert len([line for line in proc.stderr.splitlines() if line.startswith("error")]) == 1, proc.stderr
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_check_refuses_an_unsigned_folder_when_a_key_is_given_and_says_unsigned_otherwise(signed, tmp_path):
    folder = tmp_path / "copy/ov-fp16"
    shutil.copytree(signed["proj"] / "artifacts/packages/ov-fp16", folder)
    proc = aipc(["check", str(folder), "--device", "CPU", "--public-key", str(signed["public"])], tmp_path)
    assert proc.returncode != 0
    assert "ov-fp16 is unsigned (no model.sig) and verification is configured" in " ".join(proc.stderr.split())
    proc = aipc(["check", str(folder), "--device", "CPU"], tmp_path)
    assert proc.returncode == 0 and "unsigned: no signature" in proc.stdout, proc.stdout + proc.stderr
