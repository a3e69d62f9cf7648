"""`aipc publish`: push validated packages to the DVC remote and, when asked, to Hugging Face repos.

Refused, with the reason, before anything is pushed: a target with no package (its validation failed or
never ran), a package whose files no longer match its manifest (modified after validation), or one whose
artifact files differ from the bytes the validation stage hashed. The Hugging Face token comes only from
``HF_TOKEN`` or the stored login and is never logged; the endpoint follows ``HF_ENDPOINT``.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from pydantic import BaseModel

from pipeline import fsutil, hub_upload, layout, manifest, signing
from pipeline.dvc_tool import run_dvc
from pipeline.errors import PipelineError
from pipeline.hub_upload import HfUpload
from pipeline.layout import package_dir
from pipeline.package import SKIP
from pipeline.params import Params
from pipeline.records import Manifest, ValidationResult

log = logging.getLogger(__name__)

PUBLISHED_LOG = layout.STATE / "published.jsonl"


class PublishRefused(PipelineError):
    pass


def check_publishable(name: str, root: Path = layout.ARTIFACTS) -> Manifest:
    """The package's manifest if it may be published; ``PublishRefused`` with the reason otherwise."""
    pkg = package_dir(name, root)
    if not Manifest.exists(pkg):
        vdir = layout.validation_dir(name, root)
        why = "it has not been validated"
        if ValidationResult.exists(vdir):
            v = ValidationResult.read(vdir)
            if not v.passed:
                why = "its validation failed: " + "; ".join(v.failures())
        raise PublishRefused(f"{name} is not publishable: {why}", fix=f"fix it and run `dvc repro package@{name}`")
    m = manifest.read(pkg)
    problems = manifest.verify(pkg, m)
    if problems:
        raise PublishRefused(
            f"{name} was modified after it was validated: {manifest.summary(problems)}",
            fix=f"restore it with `dvc checkout artifacts/packages/{name}` or rebuild with `dvc repro`",
        )
    if not m.validated:
        raise PublishRefused(f"{name}: its manifest records a failed validation")
    files = {f.path: f.sha256 for f in m.files}
    validated = {k: v for k, v in m.validation.validated_files_sha256.items() if k not in SKIP}
    mismatch = [p for p, sha in validated.items() if files.get(p) != sha]
    if mismatch or not validated:
        raise PublishRefused(
            f"{name}: {mismatch[0] if mismatch else 'its files'} are not the bytes that were validated"
        )
    return m


def dvc_push(paths: list[Path], remote: str | None) -> None:
    """Content-addressed: a re-run (after a kill) sends only what the remote lacks, nothing twice."""
    run_dvc(
        ["push", *([] if remote is None else ["-r", remote]), *map(str, paths)],
        "dvc push",
        "check the remote (`dvc remote list`) and its credentials, then rerun",
    )


class Published(BaseModel):
    """One line of ``.aipc/published.jsonl``: what went where, with which fingerprint."""

    target: str
    fingerprint: str | None
    time: str
    dvc_remote: str | None
    hf: HfUpload | None = None
    signed_by: str | None = None  # publish.signing.signer; None: published unsigned

    def where(self) -> str:
        parts = [f"DVC remote {self.dvc_remote}" if self.dvc_remote else "",
                 f"{self.hf.repo}@{self.hf.commit[:12]}{'' if self.hf.new_commit else ' (already there)'}"
                 if self.hf else ""]  # fmt: skip
        return ", ".join(p for p in parts if p)


def publish(
    params: Params,
    targets: list[str] | None,
    *,
    remote: str | None,
    to_hf: bool,
    hf_prefix: str | None = None,
    push_dvc: bool = True,
    root: Path = layout.ARTIFACTS,
) -> list[Published]:
    names = targets or [n for n, t in params.targets.items() if t.enabled]
    for n in names:
        if not params.target(n).enabled:
            raise PublishRefused(f"{n} is disabled in params.yaml")
    manifests = {n: check_publishable(n, root) for n in names}  # all checks before any push
    prefix = hf_prefix or params.publish.hf_repo_prefix
    if to_hf and not prefix:
        raise PipelineError(
            "no Hugging Face repo prefix", fix="pass --hf-repo-prefix org/name or set publish.hf_repo_prefix"
        )
    hf_repos = {n: f"{prefix}-{n}" for n in names} if to_hf else {}
    signed = _sign_all(params, manifests, root, hf_repos)  # every signature made and checked before any push
    records = []
    if push_dvc:
        sigs = [_track_signature(n, signed[n], root) for n in names if n in signed]
        dvc_push([*(package_dir(n, root) for n in names), *sigs], remote or params.publish.dvc_remote)
    for n in names:
        rec = Published(
            target=n,
            fingerprint=manifests[n].fingerprint,
            time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            dvc_remote=(remote or params.publish.dvc_remote) if push_dvc else None,
            signed_by=params.publish.signing.signer if n in signed else None,
        )
        if to_hf:
            folder = signed[n].parent if n in signed else package_dir(n, root)
            rec.hf = hub_upload.upload(
                folder,
                hf_repos[n],
                private=params.publish.hf_private,
                message=f"{n} {manifests[n].fingerprint}",
                known=_digests(manifests[n]),
            )
        records.append(rec)
        log.info("published %s (%s)", n, rec.where())
    PUBLISHED_LOG.parent.mkdir(parents=True, exist_ok=True)
    fsutil.write_jsonl(PUBLISHED_LOG, (r.model_dump(mode="json", exclude_unset=True) for r in records), append=True)
    for path in signed.values():
        shutil.rmtree(path.parent)  # hard links to DVC's read-only cache files: unlinked, never chmod-ed
    return records


def signature_path(name: str, root: Path = layout.ARTIFACTS) -> Path:
    """Where a target's signature is kept under DVC, beside the artifacts (git-ignored) folder."""
    return root.parent / "signatures" / f"{name}.sig"


SIGNED = layout.STATE / "signed"  # per target: the package's files (hard links) and model.sig, as uploaded


def _sign_all(params: Params, manifests: dict[str, Manifest], root: Path, hf_repos: dict[str, str]) -> dict[str, Path]:
    """target → its ``model.sig`` beside hard links to its files; {} when params.yaml names no signer. Each
    signature is verified against the team's public key or CA at once: a private key that is not the team's is
    refused here, not by the teammate who pulls."""
    settings = params.publish.signing
    if settings.method is None:
        if signing.signing_requested():
            raise PublishRefused(
                f"{signing.KEY_ENV} is set but params.yaml names no publish.signing.signer: the packages' manifests "
                "and model cards say they are unsigned",
                fix="set publish.signing (signer and public_key) and rerun `dvc repro`, or unset the variable",
            )
        return {}
    if not signing.signing_requested():
        raise PublishRefused(
            f"params.yaml says {settings.signer} signs the packages, but {signing.KEY_ENV} names no private key",
            fix=f"set {signing.KEY_ENV} to the path of the team's private key (kept out of the repository)",
        )
    stale = [n for n, m in manifests.items() if m.signing is None or m.signing.signer != settings.signer]
    if stale:
        raise PublishRefused(
            f"{stale[0]}'s manifest does not name {settings.signer} as its signer (packaged before publish.signing)",
            fix="run `dvc repro` to repackage, then publish",
        )
    verifier = signing.Verifier.from_options(settings.public_key, settings.certificate_chain)
    assert verifier is not None
    signing.check_key(verifier, SIGNED)
    out = {}
    for n in manifests:
        dest = SIGNED / n
        signing.link_copy(package_dir(n, root), dest)
        sig = dest / signing.SIGNATURE
        if not _reuse_signature(n, sig, verifier, root, hf_repos.get(n), _digests(manifests[n])):
            signing.sign(dest, sig)
        signing.verify(dest, verifier)
        out[n] = sig
    return out


def _digests(m: Manifest) -> dict[str, str]:
    """The package's sha256 per file, as ``check_publishable`` verified them in this run."""
    return {f.path: f.sha256 for f in m.files}


def _reuse_signature(
    name: str, sig: Path, verifier: signing.Verifier, root: Path, hf_repo: str | None, known: dict[str, str]
) -> bool:
    """Put an earlier publish's signature of these very bytes at ``sig``, if there is one that verifies: the one
    at the head of the Hub repo when the head holds the package (then nothing is uploaded), else the tracked
    ``signatures/<target>.sig``. A signature is new bytes every time (ECDSA), so a re-run that signed again
    (after a kill, or of a package already out) would publish the same package twice."""
    candidates = []
    if hf_repo is not None:
        current = hub_upload.head(hf_repo)
        if current is not None and hub_upload.differences(sig.parent, current[1], known) == [
            f"{signing.SIGNATURE}: not in the package"
        ]:
            candidates.append(hub_upload.download(hf_repo, current[0], signing.SIGNATURE, SIGNED / f"hub-{name}"))
    candidates.append(signature_path(name, root))
    try:
        for c in candidates:
            if not c.is_file():
                continue
            shutil.copyfile(c, sig)
            try:
                signing.verify(sig.parent, verifier)
            except signing.SignatureRefused:
                sig.unlink()
                continue
            log.info("%s: reusing the signature of these bytes from %s", name, c)
            return True
        return False
    finally:
        shutil.rmtree(SIGNED / f"hub-{name}", ignore_errors=True)


def _track_signature(name: str, sig: Path, root: Path) -> Path:
    """``signatures/<target>.sig`` under DVC (``dvc add``): the signature goes to the remote with the package,
    and a clone at the same commit finds it (commit ``signatures/<target>.sig.dvc`` with dvc.lock)."""
    dest = signature_path(name, root)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        fsutil.remove_path(dest)
    dest.write_bytes(sig.read_bytes())
    run_dvc(["add", str(dest)], f"dvc add {dest}", "run `aipc doctor`, fix what it names, and rerun the publish")
    return dest
