"""Fetch a pinned revision of a Hub repository: resumable, checksum-verified, safetensors only.

How:
1. Ask the Hub (``HF_ENDPOINT``, default huggingface.co) for the repo at the pinned revision with file
   metadata: every file's size, git blob id and — for LFS files — sha256.
2. Keep only the files the pipeline needs (``files.ALLOW_PATTERNS``); refuse repos with pickles only.
3. Download each file over HTTP into the project's download cache
   (``$AIPC_DOWNLOADS``, default ``$AIPC_CACHE/hub/<owner>--<name>/<commit>/``), appending to a ``.part`` file: an interrupted
   transfer resumes with an HTTP Range request from the exact byte it reached — within a run (5xx and
   dropped connections are retried with back-off) and across runs (a killed stage keeps its ``.part``).
   huggingface_hub 1.x's ``hf_hub_download`` cannot do the latter: it downloads into a uniquely named
   temporary file and deletes it on failure, so a killed 7.6 GB download would restart from zero.
4. Verify every file (sha256 for LFS files, git blob sha1 for the others) and its size; a mismatch
   deletes the bad copy and fails with a clear message, so nothing unverified reaches ``artifacts/source``.
5. Hard-link (or copy) the verified files into the output folder.

If the Hub is unreachable, a complete copy of the pinned revision in the download cache or in the
standard HF cache (``HF_HUB_CACHE``, e.g. filled by ``hf download`` elsewhere) is used after the same
verification. The token comes only from ``HF_TOKEN`` or the stored HF login; it is sent only to the
Hub's own host, and never logged or written anywhere.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from pipeline import cache, fsutil
from pipeline.errors import SourceError
from pipeline.sources import resumable
from pipeline.sources.files import is_pickle, wanted

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
ATTEMPTS = 5
BACKOFF_S = 1.0
T = TypeVar("T")


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def fetch(entry, out_dir: Path, *, cache_dir: Path | None = None) -> dict[str, Any]:
    from huggingface_hub import HfApi, get_token

    ep = endpoint()
    token = get_token()  # HF_TOKEN or the stored login; never logged
    cache = Path(cache_dir) if cache_dir else _default_cache()
    api = HfApi(endpoint=ep, token=token)
    what = f"{entry.repo}@{entry.revision[:12]}"

    try:
        info = _with_retries(lambda: api.model_info(entry.repo, revision=entry.revision, files_metadata=True), what)
    except _Unreachable as exc:
        return _offline(entry, cache, out_dir, ep, exc.reason, what)

    files = [s for s in (info.siblings or []) if wanted(s.rfilename)]
    names = [s.rfilename for s in info.siblings or []]
    if not any(s.rfilename.endswith(".safetensors") for s in files):
        pickles = [n for n in names if is_pickle(n)]
        if pickles:
            raise SourceError(
                f"{what} has only pickle weights ({', '.join(pickles[:3])}); pickles can execute code when loaded",
                fix="use a revision or repository that ships *.safetensors",
            )
        raise SourceError(f"{what} has no *.safetensors weights", fix="check the repository and revision")

    store = download_dir(entry.repo, info.sha)
    store.mkdir(parents=True, exist_ok=True)
    missing = sum(
        (s.size or 0) - resumable.part_size(store / s.rfilename) for s in files if not (store / s.rfilename).exists()
    )
    fsutil.require_disk(store, missing, f"downloading {what}")
    log.info("fetching %d files (%.2f GB) of %s from %s", len(files), sum(s.size or 0 for s in files) / 1e9, what, ep)
    fsutil.write_json(store / METADATA, [_sibling_json(s) for s in files])

    headers = _auth_headers(token)
    for sib in files:
        dest = store / sib.rfilename
        url = f"{ep}/{entry.repo}/resolve/{info.sha}/{quote(sib.rfilename)}"

        def download(url: str = url, dest: Path = dest, sib: Any = sib) -> None:
            _with_retries(lambda: _get_resumable(url, dest, sib, headers), f"{what}/{sib.rfilename}")

        cached = dest.exists()
        if not cached:
            download()
        try:
            _verify(dest, sib, what)
        except SourceError:
            if not cached:
                raise
            # A cached copy damaged since it was verified (a disk fault, an edit through a hard link): _verify
            # deleted it; the Hub is reachable, so fetch it once more rather than fail the run.
            log.warning("cached %s/%s failed verification; downloading it again", what, sib.rfilename)
            download()
            _verify(dest, sib, what)
        _place(dest, out_dir / sib.rfilename)
    return {
        "repo": entry.repo,
        "endpoint": ep,
        "requested_revision": entry.revision,
        "resolved_revision": info.sha,
        "license": entry.license or getattr(getattr(info, "card_data", None), "license", None) or "",
        "skipped": sorted(set(names) - {s.rfilename for s in files}),
    }


def download_dir(repo: str, sha: str) -> Path:
    """Where a revision's files are downloaded and kept (``AIPC_DOWNLOADS``, default ``$AIPC_CACHE/hub``)."""
    return cache.downloads() / repo.replace("/", "--") / sha


METADATA = ".metadata.json"


def _sibling_json(sib: Any) -> dict[str, Any]:
    lfs = getattr(sib, "lfs", None)
    return {
        "rfilename": sib.rfilename,
        "size": sib.size,
        "blob_id": sib.blob_id,
        "lfs": {"sha256": lfs.sha256, "size": lfs.size} if lfs else None,
    }


def _auth_headers(token: str | None) -> dict[str, str]:
    from huggingface_hub.utils import build_hf_headers

    return build_hf_headers(token=token or False)


def _get_resumable(url: str, dest: Path, sib: Any, headers: dict[str, str]) -> None:
    """One attempt (``pipeline.sources.resumable``) at the size the Hub lists; an error answer raises the Hub
    client's own error, which ``_with_retries`` classifies."""
    from huggingface_hub.utils import hf_raise_for_status

    expected = (sib.lfs.size if getattr(sib, "lfs", None) else None) or sib.size
    resumable.get(url, dest, expected=expected, headers=headers, raise_for_status=hf_raise_for_status)


def _offline(entry, cache: Path, out_dir: Path, ep: str, reason: str, what: str) -> dict[str, Any]:
    """The Hub cannot be reached: use a complete, verifiable copy of the pinned revision if one exists."""
    store = download_dir(entry.repo, entry.revision)
    if (store / METADATA).is_file():
        meta = fsutil.read_json(store / METADATA)
        if all((store / m["rfilename"]).is_file() for m in meta):
            log.warning("Hub unreachable (%s): using %s from the download cache, verified", reason, what)
            for m in meta:
                sib = _Sibling(m)
                _verify(store / sib.rfilename, sib, what)
                _place(store / sib.rfilename, out_dir / sib.rfilename)
            return _offline_record(entry, ep, "download cache")
    snap = _complete_in_hf_cache(entry, cache)
    if snap is not None:
        log.warning("Hub unreachable (%s): using %s from the HF cache, verified by content hash", reason, what)
        _from_hf_cache(entry, snap, out_dir)
        return _offline_record(entry, ep, "HF cache")
    raise SourceError(
        f"the Hub at {ep} is unreachable ({reason}) and {what} is in neither the download cache nor the HF cache ({cache})",
        fix="check the network or HF_ENDPOINT; or pre-fetch it where the Hub is reachable "
        f"(`hf download {entry.repo} --revision {entry.revision}`) and copy the HF cache here; "
        "or set `model: embedded` in params.yaml to build offline",
    )


class _Sibling:
    def __init__(self, m: dict[str, Any]):
        self.rfilename = m["rfilename"]
        self.size = m["size"]
        self.blob_id = m["blob_id"]
        lfs = m.get("lfs")
        self.lfs = type("Lfs", (), lfs)() if lfs else None


def _offline_record(entry, ep: str, where: str) -> dict[str, Any]:
    return {
        "repo": entry.repo,
        "endpoint": ep,
        "requested_revision": entry.revision,
        "resolved_revision": entry.revision,
        "license": entry.license,
        "offline_cache": where,
    }


# --------------------------------------------------------------------------- errors and retries


class _Unreachable(Exception):
    def __init__(self, reason: str):
        self.reason = reason


def _with_retries(call: Callable[[], T], what: str) -> T:
    """Run a Hub call; retry 5xx/connection faults; turn every other failure into one clear line."""
    import httpx
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    delay = BACKOFF_S
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return call()
        except GatedRepoError:
            has_token = _has_token()
            raise SourceError(
                f"{what} is a gated repository and "
                + ("the token in use has no access to it" if has_token else "no Hugging Face token was found"),
                fix="accept the model's terms on its Hub page, then set HF_TOKEN (or run `hf auth login`); "
                "or set `model: embedded` to build offline",
            ) from None
        except RevisionNotFoundError:
            raise SourceError(
                f"revision {what.split('@')[1]}… does not exist in {what.split('@')[0]}",
                fix="pin an existing commit sha in params.yaml (models.<name>.revision)",
            ) from None
        except RepositoryNotFoundError:
            raise SourceError(
                f"{what.split('@')[0]} was not found on {endpoint()} (or it is private and needs a token)",
                fix="check the repo name in params.yaml; for a private repo set HF_TOKEN",
            ) from None
        except OfflineModeIsEnabled as exc:
            raise _Unreachable("HF_HUB_OFFLINE is set") from exc
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status is None or status < 500 or attempt == ATTEMPTS:
                if status is not None and status >= 500:
                    raise SourceError(
                        f"the Hub answered HTTP {status} {ATTEMPTS} times for {what}",
                        fix="the Hub is having trouble; retry later (downloads resume where they stopped)",
                    ) from None
                raise SourceError(f"the Hub refused {what}: HTTP {status}") from None
            log.warning(
                "Hub answered HTTP %s for %s; retrying in %.0f s (%d/%d)", status, what, delay, attempt, ATTEMPTS
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            if attempt == ATTEMPTS:
                raise _Unreachable(f"{type(exc).__name__}: {exc}") from exc
            log.warning("cannot connect to %s; retrying in %.0f s (%d/%d)", endpoint(), delay, attempt, ATTEMPTS)
        except (httpx.TransportError, ConnectionError, TimeoutError) as exc:
            if attempt == ATTEMPTS:
                raise SourceError(
                    f"the connection to {endpoint()} kept failing for {what}: {type(exc).__name__}",
                    fix="retry later: completed parts are kept and the download resumes",
                ) from None
            log.warning(
                "transfer of %s interrupted (%s); resuming (%d/%d)", what, type(exc).__name__, attempt, ATTEMPTS
            )
        time.sleep(delay)
        delay = min(delay * 2, 30)
    raise AssertionError("unreachable")  # pragma: no cover


def _has_token() -> bool:
    from huggingface_hub import get_token

    return get_token() is not None


# --------------------------------------------------------------------------- files


def _default_cache() -> Path:
    from huggingface_hub import constants

    return Path(os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE)


def _verify(path: Path, sib: Any, what: str) -> None:
    """Check size and content hash against the Hub's metadata; delete the file on mismatch."""
    size = path.stat().st_size
    lfs = getattr(sib, "lfs", None)
    expected_size = (lfs.size if lfs else None) or sib.size
    if lfs is not None:
        algo, expected, actual = "sha256", lfs.sha256, fsutil.sha256_file(path)
    else:
        algo, expected, actual = "git-sha1", sib.blob_id, fsutil.git_blob_sha1(path)
    if (expected_size is not None and size != expected_size) or (expected and actual != expected):
        _discard(path)
        raise SourceError(
            f"{what}/{sib.rfilename} failed verification: {algo} {actual[:16]}… size {size}, "
            f"the Hub says {str(expected)[:16]}… size {expected_size}; the bad copy was deleted",
            fix="rerun to download it again; if it repeats, the server at HF_ENDPOINT serves corrupt data",
        )


def _discard(path: Path) -> None:
    """Remove a bad copy so the next run downloads it afresh."""
    path.unlink(missing_ok=True)


def _place(src: Path, dst: Path) -> None:
    fsutil.link_or_copy(src, dst)


# --------------------------------------------------------------------------- offline cache


def _complete_in_hf_cache(entry, cache: Path) -> Path | None:
    snap = cache / ("models--" + entry.repo.replace("/", "--")) / "snapshots" / entry.revision
    if not snap.is_dir():
        return None
    names = [p.name for p in snap.iterdir()]
    if not any(n.endswith(".safetensors") for n in names):
        return None
    index = snap / "model.safetensors.index.json"
    if index.is_file():
        shards = set(fsutil.read_json(index).get("weight_map", {}).values())
        if not shards <= set(names):
            return None
    return snap


def _from_hf_cache(entry, snap: Path, out_dir: Path) -> None:
    for link in sorted(snap.iterdir()):
        if not wanted(link.name):
            continue
        blob = link.resolve()
        etag = blob.name  # the HF cache names blobs by etag: sha256 (LFS) or git sha1
        actual = fsutil.sha256_file(blob) if len(etag) == 64 else fsutil.git_blob_sha1(blob)
        if actual != etag:
            raise SourceError(
                f"cached {entry.repo}/{link.name} is corrupt (content hash differs from its address)",
                fix=f"delete {blob} and fetch again where the Hub is reachable",
            )
        _place(blob, out_dir / link.name)
