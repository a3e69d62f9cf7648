"""`aipc pull` and `aipc check`: fetch a published package, verify it, prove it on the local device.

Pull downloads into a temporary folder next to the destination, verifies every file against the
package's ``manifest.json`` (a changed, missing or extra file is refused) and only then moves it into
place: nothing unverified is ever left where it would be used. Check re-runs the package's golden prompts
with its own runtime on the chosen device and compares with the golden outputs recorded at validation —
how a team proves an artifact on its own NPU or DirectML machine.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import cache, fsutil, manifest, model_card, signing
from pipeline.dvc_tool import dvc_executable, run_dvc
from pipeline.errors import PipelineError
from pipeline.package import GOLDEN
from pipeline.records import GoldenOutput, Manifest

log = logging.getLogger(__name__)


class PullRefused(PipelineError):
    pass


def pull(
    target: str,
    out: Path,
    *,
    source: str = "dvc",
    repo: str = ".",
    rev: str | None = None,
    hf_repo: str | None = None,
    remote: str | None = None,
    fingerprint: str | None = None,
    verifier: signing.Verifier | None = None,
    replace: bool = False,
) -> tuple[Manifest, str]:
    """The verified package in ``out``, and what its signature says (``signature_status``). ``replace``: ``out``
    may hold a previous version, which stays as it is until the new one is verified, then is swapped out whole."""
    out = Path(out)
    previous = Manifest.exists(out)
    if out.exists() and any(out.iterdir()) and not (replace and previous):
        why = "holds a package (pass --replace to update it)" if previous else "is not a package and is not empty"
        raise PipelineError(f"{out} already exists and {why}", fix="choose another --out, or --replace a package")
    out.parent.mkdir(parents=True, exist_ok=True)
    fsutil.clean_stale_tmp(out.parent, ("pull-", "old-"))  # what a killed pull left
    tmp = out.parent / f"{fsutil.TMP_PREFIX}pull-{target}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        if source == "dvc":
            _dvc_get(repo, f"artifacts/packages/{target}", tmp, rev, remote)
            _dvc_get_signature(repo, target, tmp / signing.SIGNATURE, rev, remote)
        elif source == "hf":
            if not hf_repo:
                raise PipelineError("--hf-repo is required to pull from Hugging Face")
            _hf_get(hf_repo, tmp, rev)
        else:
            raise PipelineError(f"unknown source {source!r} (dvc or hf)")
        if not Manifest.exists(tmp):
            raise PullRefused(f"the download of {target} has no manifest.json: not a package made by this pipeline")
        m = manifest.read(tmp)
        problems = manifest.verify(tmp, m)
        if problems:
            raise PullRefused(
                f"{target} failed verification and was deleted: {manifest.summary(problems)}",
                fix="the remote copy is damaged or was tampered with: republish it from a validated build",
            )
        if not m.validated:
            raise PullRefused(f"{target}: its manifest records a failed validation")
        if fingerprint and m.fingerprint != fingerprint:
            raise PullRefused(
                f"{target}: fingerprint {m.fingerprint} is not the expected {fingerprint}",
                fix="the remote holds a different build (or a rewritten manifest): check what was published",
            )
        status = signature_status(tmp, m, verifier)
        _swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return m, status


def _swap_in(new: Path, out: Path) -> None:
    """``new`` at ``out``: an old version is renamed aside first and removed only once ``new`` is in place."""
    old = out.parent / f"{fsutil.TMP_PREFIX}old-{out.name}-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    try:
        os.replace(new, out)
    except OSError:
        if old.exists():
            os.replace(old, out)
        raise
    if old.exists():
        fsutil.remove_path(old)


def signature_status(folder: Path, m: Manifest, verifier: signing.Verifier | None) -> str:
    """One line on who signed ``folder``; ``SignatureRefused`` when verification is configured and fails (an
    unsigned package included)."""
    present = (folder / signing.SIGNATURE).is_file()
    if verifier is not None:
        signing.verify(folder, verifier, m.name)
        who = m.signing.signer if m.signing else "an unnamed signer"
        return f"signature verified: signed by {who}, checked against {verifier.describe()}"
    if not present:
        return "unsigned: no signature (nothing proves who published it)"
    how = f" ({m.signing.verify_command})" if m.signing else ""
    return f"signed, NOT verified: pass --public-key (or set {signing.VERIFY_KEY_ENV}) to verify{how}"


def _dvc_get_signature(repo: str, target: str, dest: Path, rev: str | None, remote: str | None) -> None:
    """``signatures/<target>.sig`` at the same revision, if the team published one (none: unsigned). Listed first:
    `dvc get` of a path that is not there fails with an "unexpected error", not a "not found" one can tell apart."""
    cmd = [dvc_executable(), "ls", repo, "signatures", *(["--rev", rev] if rev else [])]
    listed = subprocess.run(cmd, capture_output=True, text=True)
    if listed.returncode != 0 or f"{target}.sig" not in listed.stdout.split():
        return
    _dvc_get(repo, f"signatures/{target}.sig", dest, rev, remote)


def _dvc_get(repo: str, path: str, dest: Path, rev: str | None, remote: str | None = None) -> None:
    dvc = dvc_executable()
    cmd = [dvc, "get", repo, path, "-o", str(dest)]
    if rev:
        cmd += ["--rev", rev]
    if remote:
        cmd += ["--remote", remote]
    local_url = _local_remote_url(repo, remote)
    if local_url:
        # `dvc get` clones the repo to a temporary folder, where a relative local remote would not resolve.
        cmd += ["--remote-config", f"url={local_url}"]
    run_dvc(cmd[1:], f"dvc get {path}", "check the repo/--rev and that the target was published")


def _local_remote_url(repo: str, remote: str | None) -> str | None:
    """For a repo on this machine whose remote is a relative local path: that path made absolute."""
    root = Path(repo)
    if not (root / ".dvc").is_dir():
        return None
    dvc = dvc_executable()
    name = (
        remote
        or subprocess.run([dvc, "config", "core.remote"], cwd=root, capture_output=True, text=True).stdout.strip()
    )
    if not name:
        return None
    url = subprocess.run([dvc, "config", f"remote.{name}.url"], cwd=root, capture_output=True, text=True).stdout.strip()
    if not url or "://" in url or Path(url).is_absolute():
        return None
    return str((root / ".dvc" / url).resolve())


def _hf_get(repo_id: str, dest: Path, rev: str | None) -> None:
    from huggingface_hub import hf_hub_download, snapshot_download

    from pipeline.sources.hub import endpoint

    try:
        # The manifest first: it lists the artifact's files; repo housekeeping (.gitattributes) is not fetched.
        first = Path(hf_hub_download(repo_id, Manifest.FILE, revision=rev, endpoint=endpoint(), local_dir=str(dest)))
        listed = [f.path for f in Manifest.parse_file_data(first, json.loads(first.read_text(encoding="utf-8"))).files]
        snapshot_download(
            repo_id,
            revision=rev,
            local_dir=str(dest),
            endpoint=endpoint(),
            allow_patterns=[*listed, Manifest.FILE, signing.SIGNATURE],
        )
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise  # said as a full disk by the command's runner
        raise PipelineError(
            f"download of {repo_id} failed: {type(exc).__name__}", fix="check --hf-repo, --rev, HF_TOKEN"
        ) from None
    shutil.rmtree(dest / ".cache", ignore_errors=True)  # huggingface_hub's local-dir bookkeeping


def validated_numerics(m: Manifest) -> dict[str, Any]:
    """The OpenVINO numerics the package was validated with (a check reproduces them on its own device)."""
    from pipeline.params.validation import OpenVINORuntime

    recorded = m.validation.numerics.properties if m.validation.numerics else {}
    out: dict[str, Any] = {}
    for key in OpenVINORuntime.model_fields:
        if key in recorded:
            value = recorded[key]
            out[key] = int(value) if value.isdigit() else value
    return out


def how_to_run(m: Manifest, folder: Path) -> str:
    return model_card.snippet(m, str(folder))


# --------------------------------------------------------------------------- check


@dataclass
class CheckResult:
    device_label: str
    rows: list[dict[str, Any]]
    exact_match_rate: float
    prefix_agreement: float
    signature: str = ""


def check(
    folder: Path, device: str = "auto", max_prompts: int | None = None, verifier: signing.Verifier | None = None
) -> CheckResult:
    from pipeline.runners.base import cut_at_eos
    from pipeline.runners.dispatch import open_runner
    from pipeline.targets import family_module
    from pipeline.targets.base import RuntimeOptions
    from pipeline.validate import metrics as mt

    folder = Path(folder)
    problems = manifest.verify(folder)
    if problems:
        raise PullRefused(f"{folder} does not match its manifest: {problems[0]}", fix="pull it again")
    m = manifest.read(folder)
    signature = signature_status(folder, m, verifier)  # before any of its files is loaded
    if m.runtime == "npu-lib":
        raise PipelineError(
            f"{m.name} holds intel-npu-acceleration-library's run record, not a model to run",
            fix=f"on the NPU machine, run `dvc repro validate@{m.name}` with the source model",
        )
    golden = GoldenOutput.read_all(folder, GOLDEN)
    golden = golden[:max_prompts] if max_prompts else golden
    family = family_module(m.family)
    settings = family.Settings.model_validate(m.settings or {})
    options = RuntimeOptions(openvino=validated_numerics(m), cache_root=cache.npu_compile_cache(m.name))
    runner = open_runner(m.name, family, settings, folder, device=device, options=options)
    rows = []
    try:
        eos = set(getattr(runner, "eos", set()))
        for g in golden:
            want = g.output_ids
            n = len(want) + 1 if g.stopped else len(want)
            got = cut_at_eos(runner.generate(g.input_ids, max(1, n)).tokens, eos)[
                : len(want) if not g.stopped else None
            ]
            div = mt.first_divergence(want, got)
            rows.append({"prompt": g.prompt, "match": got == want, "first_divergence": div,
                         "prefix": (len(want) if div is None else div) / max(1, len(want))})  # fmt: skip
        label = runner.choice.label
    finally:
        runner.close()
    em = sum(r["match"] for r in rows) / len(rows) if rows else float("nan")
    pa = sum(r["prefix"] for r in rows) / len(rows) if rows else float("nan")
    return CheckResult(device_label=label, rows=rows, exact_match_rate=em, prefix_agreement=pa, signature=signature)
