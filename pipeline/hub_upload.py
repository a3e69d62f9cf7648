"""A package folder onto a Hugging Face repo as one commit, and never twice.

``upload_folder`` with ``hf_xet`` installed streams a large folder as several commits (huggingface_hub 1.x
batches files and forces a commit after five minutes), so a publish killed mid-way could leave the repo's head
a mix of two packages, neither of them validated. Here the whole package is one ``create_commit`` against the
head it was compared with (``parent_commit``): files added, files the package no longer has deleted. Before
that, the head is compared with the folder file by file (git blob id, or LFS sha256): when it already holds
exactly these bytes, e.g. a publish killed after its commit landed, nothing is uploaded and its commit is
reported. The token comes only from ``HF_TOKEN`` or the stored login and is never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from pipeline import fsutil
from pipeline.errors import PipelineError

log = logging.getLogger(__name__)

KEEP = (".gitattributes",)  # the Hub's own housekeeping: never compared, never deleted


class HfUpload(BaseModel):
    repo: str
    commit: str
    url: str | None = None
    new_commit: bool = True  # False: the head already held these bytes, nothing was uploaded


def _api() -> Any:
    from huggingface_hub import HfApi, get_token

    from pipeline.sources.hub import endpoint

    token = get_token()
    if token is None:
        raise PipelineError(
            "no Hugging Face token for the upload", fix="set HF_TOKEN (a write token) or run `hf auth login`"
        )
    return HfApi(endpoint=endpoint(), token=token)


def _failed(what: str, exc: Exception) -> PipelineError:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return PipelineError(
        f"{what} failed: {type(exc).__name__}{f' (HTTP {status})' if status else ''}",
        fix="check HF_TOKEN has write access to the organisation and that HF_ENDPOINT is right, then rerun: "
        "what is already on the Hub is not uploaded again",
    )


def local_files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


def differences(folder: Path, siblings: list[Any], known: Mapping[str, str] | None = None) -> list[str]:
    """What keeps the repo's head (its ``siblings`` with blob ids and LFS sha256) from being ``folder`` byte for
    byte: [] when it is. ``known``: sha256 of files already verified in this run (the manifest's, checked by
    ``check_publishable``), so the weights are not hashed again."""
    known = known or {}
    local = local_files(folder)
    remote = {s.rfilename: s for s in siblings if s.rfilename not in KEEP}
    out = [f"{p}: not on the Hub" for p in local if p not in remote]
    out += [f"{p}: not in the package" for p in remote if p not in local]
    for p in sorted(set(local) & set(remote)):
        s = remote[p]
        if s.lfs is not None:
            same = s.lfs.sha256 == (known.get(p) or fsutil.sha256_file(local[p]))
        else:
            same = s.blob_id == fsutil.git_blob_sha1(local[p])
        if not same:
            out.append(f"{p}: differs")
    return out


def head(repo_id: str) -> tuple[str, list[Any]] | None:
    """The repo's head commit and its files (blob ids, LFS sha256); None when the repo does not exist."""
    from huggingface_hub.errors import RepositoryNotFoundError

    api = _api()
    try:
        info = api.model_info(repo_id, files_metadata=True)
    except RepositoryNotFoundError:
        return None
    except Exception as exc:
        raise _failed(f"reading {repo_id}", exc) from None
    return info.sha, list(info.siblings or [])


def download(repo_id: str, commit: str, filename: str, dest: Path) -> Path:
    from huggingface_hub import hf_hub_download

    from pipeline.sources.hub import endpoint

    try:
        return Path(hf_hub_download(repo_id, filename, revision=commit, endpoint=endpoint(), local_dir=str(dest)))
    except Exception as exc:
        raise _failed(f"download of {filename} from {repo_id}", exc) from None


def upload(
    folder: Path, repo_id: str, *, private: bool, message: str, known: Mapping[str, str] | None = None
) -> HfUpload:
    """``folder`` as the head of ``repo_id``, in one commit; none when the head already is ``folder``
    (``known``: as for ``differences``)."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    api = _api()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    except Exception as exc:
        raise _failed(f"creating {repo_id}", exc) from None
    current = head(repo_id)
    assert current is not None  # just created
    commit, siblings = current
    diff = differences(folder, siblings, known)
    if not diff:
        log.info("%s already holds %s at %s: nothing uploaded", repo_id, folder.name, commit[:12])
        return HfUpload(repo=repo_id, commit=commit, new_commit=False)
    log.info("%s: %d file(s) to change (%s)", repo_id, len(diff), "; ".join(diff[:3]))
    local = local_files(folder)
    ops: list[Any] = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(p)) for rel, p in local.items()]
    ops += [CommitOperationDelete(path_in_repo=s.rfilename) for s in siblings
            if s.rfilename not in local and s.rfilename not in KEEP]  # fmt: skip
    try:
        info = api.create_commit(
            repo_id, operations=ops, commit_message=message, parent_commit=commit, repo_type="model"
        )
    except Exception as exc:
        raise _failed(f"upload of {folder.name} to {repo_id}", exc) from None
    return HfUpload(repo=repo_id, commit=info.oid, url=getattr(info, "commit_url", None))
