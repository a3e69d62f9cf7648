"""Signed packages: who published an artifact, provable offline with the OpenSSF ``model-signing`` library.

A manifest proves that a package's bytes are the ones validated, but it travels with the bytes: whoever can
replace one can replace both. ``aipc publish`` therefore signs each package folder with the team's key (an
elliptic-curve private key, or a key with its certificate chain) into ``model.sig``: a Sigstore bundle whose
DSSE envelope carries an in-toto statement of every file's digest. ``aipc pull`` and ``aipc check`` verify it
against the team's public key or CA before a package is used; the library's own CLI verifies the same file
(``model_signing verify key --signature model.sig --public_key team.pub <folder>``).

The private key is named only by the environment (``AIPC_SIGNING_KEY``, a path; never in params.yaml, never
logged); the public half and the signer's name are in params.yaml, so the model card can say who signed.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline import fsutil
from pipeline.errors import PipelineError
from pipeline.records import ManifestSigning

log = logging.getLogger(__name__)

SIGNATURE = ManifestSigning.FILE  # inside a published package; the signature covers every other file
KEY_ENV = "AIPC_SIGNING_KEY"  # path of the PEM private key
PASSWORD_ENV = "AIPC_SIGNING_KEY_PASSWORD"  # its password, if it has one
CERT_ENV = "AIPC_SIGNING_CERT"  # path of the signing certificate (certificate method)
CHAIN_ENV = "AIPC_SIGNING_CHAIN"  # the certificates up to the team's CA, os.pathsep-separated
VERIFY_KEY_ENV = "AIPC_VERIFY_PUBLIC_KEY"  # what pull/check verify with when no option is given
VERIFY_CHAIN_ENV = "AIPC_VERIFY_CERT_CHAIN"


class SignatureRefused(PipelineError):
    pass


@dataclass(frozen=True)
class Verifier:
    """What a signature must verify against: the team's public key, or its CA certificate chain."""

    public_key: Path | None = None
    certificate_chain: tuple[Path, ...] = ()

    @classmethod
    def from_options(cls, public_key: str | None, chain: tuple[str, ...] | list[str] = ()) -> Verifier | None:
        """The options given, else the environment (``AIPC_VERIFY_PUBLIC_KEY`` / ``AIPC_VERIFY_CERT_CHAIN``); None
        when neither configures verification."""
        key = public_key or os.environ.get(VERIFY_KEY_ENV) or None
        certs = list(chain) or [c for c in os.environ.get(VERIFY_CHAIN_ENV, "").split(os.pathsep) if c]
        if key and certs:
            raise PipelineError("verify with a public key or a certificate chain, not both")
        if not key and not certs:
            return None
        paths = [Path(p).expanduser() for p in ([key] if key else certs)]
        for p in paths:
            if not p.is_file():
                raise PipelineError(f"{p} (to verify signatures with) is not a file", fix="pass the team's public key")
        return cls(public_key=paths[0] if key else None, certificate_chain=() if key else tuple(paths))

    def describe(self) -> str:
        if self.public_key is not None:
            return f"public key {self.public_key.name} (sha256 {fsutil.sha256_file(self.public_key)[:16]}…)"
        return f"CA chain {', '.join(p.name for p in self.certificate_chain)}"


def signing_requested() -> bool:
    return bool(os.environ.get(KEY_ENV))


def _hashing():
    from model_signing import hashing

    return hashing.Config().set_ignored_paths(paths=[SIGNATURE])


def sign(folder: Path, signature: Path) -> None:
    """Sign every file of ``folder`` (but ``model.sig``) into ``signature`` with the key the environment names."""
    from model_signing import signing

    key = Path(os.environ.get(KEY_ENV, "")).expanduser()
    if not key.is_file():
        raise PipelineError(f"{KEY_ENV} does not name a private key file", fix="set it to the team's PEM key's path")
    config = signing.Config().set_hashing_config(_hashing())
    cert = os.environ.get(CERT_ENV)
    try:
        if cert:
            chain = [c for c in os.environ.get(CHAIN_ENV, "").split(os.pathsep) if c]
            config.use_certificate_signer(private_key=key, signing_certificate=cert, certificate_chain=chain)
        else:
            config.use_elliptic_key_signer(private_key=key, password=os.environ.get(PASSWORD_ENV) or None)
        config.sign(folder, signature)
    except (ValueError, TypeError, OSError) as exc:  # the library's words for a wrong key, password or format
        signature.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise  # a full disk, said as such by the command's runner
        raise PipelineError(
            f"signing {folder.name} failed: {type(exc).__name__}: {_short(exc)}",
            fix=f"check {KEY_ENV} (a PEM elliptic-curve key{' and its certificate' if cert else ''}) and its password",
        ) from None


def verify(folder: Path, verifier: Verifier, name: str | None = None) -> None:
    """``SignatureRefused`` unless ``folder`` is exactly what its ``model.sig`` signed, signed by ``verifier``
    (``name``: the package's, for the message, when ``folder`` is a temporary download)."""
    from model_signing import verifying

    signature = folder / SIGNATURE
    name = name or folder.name
    if not signature.is_file():
        raise SignatureRefused(
            f"{name} is unsigned (no {SIGNATURE}) and verification is configured ({verifier.describe()})",
            fix="ask the team to republish it signed, or verify without a key to accept unsigned packages",
        )
    config = verifying.Config().set_hashing_config(_hashing())
    if verifier.public_key is not None:
        config.use_elliptic_key_verifier(public_key=verifier.public_key)
    else:
        config.use_certificate_verifier(certificate_chain=verifier.certificate_chain)
    try:
        config.verify(folder, signature)
    except Exception as exc:  # the library raises ValueError and others for a bad signature, key or bundle
        raise SignatureRefused(
            f"{name}: its signature does not verify against {verifier.describe()}: {_short(exc)}",
            fix="the package or its signature was changed, or another key signed it: do not use it",
        ) from None


def check_key(verifier: Verifier, scratch: Path) -> None:
    """``SignatureRefused`` unless the private key the environment names is the team's: what it signs verifies
    against ``verifier``. A publish that reuses an earlier signature of the same bytes signs nothing itself, and a
    wrong key must still be refused there, not noticed at the next package."""
    folder = scratch / "key-check"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        (folder / "probe.txt").write_bytes(b"aipc: the signing key is the team's\n")
        sign(folder, folder / SIGNATURE)
        verify(folder, verifier, name=f"the key {KEY_ENV} names")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def link_copy(pkg: Path, dest: Path) -> None:
    """``dest``: ``pkg``'s files as hard links (no copy of the weights), to sign and upload. A package folder is
    a DVC output and is never written into. (Removed with ``shutil.rmtree``: unlinking needs no write permission
    on the files, which are DVC's read-only cache files.)"""
    if dest.exists():
        shutil.rmtree(dest)
    for src in sorted(p for p in pkg.rglob("*") if p.is_file()):
        target = dest / src.relative_to(pkg)
        target.parent.mkdir(parents=True, exist_ok=True)
        fsutil.link_or_copy(src, target)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:240] + ("…" if len(text) > 240 else "")
