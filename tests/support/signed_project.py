"""The signed project: the built embedded project with params naming a signer and the team's public key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SIGNER = "Test team <team@example.invalid>"


def ec_key(folder: Path, name: str) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    folder.mkdir(parents=True, exist_ok=True)
    private, public = folder / f"{name}.key", folder / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


@pytest.fixture(scope="session")
def signed(repro_project, tmp_path_factory) -> dict[str, Path]:
    """A copy of the built project whose params name a signer and the team's public key (committed in keys/);
    the private key lives outside the repository. Only the packages are rebuilt for it. Shared by the signing
    tests and the publish faults: each publishes its own targets."""
    from tests.test_dvc_source import dvc
    from tests.test_pipeline_dvc import stages_run
    from tests.test_publish import git

    root = tmp_path_factory.mktemp("signing")
    proj = root / "proj"
    shutil.copytree(repro_project, proj, symlinks=True)
    private, public = ec_key(root / "secrets", "team")
    _, other = ec_key(root / "secrets", "other")
    (proj / "keys").mkdir()
    shutil.copy2(public, proj / "keys/team.pub")
    text = (proj / "params.yaml").read_text()
    text = text.replace("    signer: null ", f'    signer: "{SIGNER}"', 1).replace(
        "    public_key: null ", "    public_key: keys/team.pub", 1
    )
    (proj / "params.yaml").write_text(text)
    proc = dvc(["repro"], proj)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert {s for s in stages_run(proc) if not s.startswith("package@")} <= {"check-params"}, stages_run(proc)
    git(["add", "-A"], proj)
    git(["commit", "-qm", "sign the packages"], proj)
    return {"proj": proj, "private": private, "public": public, "other": other, "root": root}
