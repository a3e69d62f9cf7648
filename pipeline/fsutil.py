"""Files: checksums, atomic folder outputs, free-space checks.

Every stage writes its output into a temporary sibling folder and renames it into place only when the
output is complete (``atomic_dir``). A killed or failed stage therefore never leaves a half-written
artifact where DVC or a later stage would trust it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pipeline import fmt
from pipeline.errors import ResourceError

log = logging.getLogger(__name__)

CHUNK = 8 * 1024 * 1024
TMP_PREFIX = ".tmp-"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def git_blob_sha1(path: Path) -> str:
    """The git object id of a file (what the Hub reports for files not stored in LFS)."""
    h = hashlib.sha1(usedforsecurity=False)
    h.update(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_table(root: Path, *, exclude: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every file under ``root`` (sorted) with its size and sha256."""
    rows = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel in exclude:
            continue
        rows.append({"path": rel, "size": path.stat().st_size, "sha256": sha256_file(path)})
    return rows


def dir_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write_jsonl(path: Path, rows: Iterable[Any], *, append: bool = False) -> None:
    """One JSON document per line (UTF-8 kept readable: the prompts and answers are text)."""
    with open(path, "a" if append else "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def free_bytes(path: Path) -> int:
    probe = path
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def require_disk(path: Path, needed: int, what: str) -> None:
    free = free_bytes(path)
    if free < needed:
        raise ResourceError(
            # in units that fit: a small model's need once read "0.0 GiB needed, 0.0 GiB free"
            f"not enough disk for {what}: {fmt.size(needed)} needed, {fmt.size(free)} free at {path}",
            fix="free space (e.g. `dvc gc -w`, delete old artifacts) or point the project at a larger disk",
        )


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``final``; move it to ``final`` only on success.

    The temporary folder is on the same filesystem, so the final rename is atomic. On any exception
    (including KeyboardInterrupt) it is removed and ``final`` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f"{TMP_PREFIX}{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists() or final.is_symlink():
        remove_path(final)
    try:
        os.replace(tmp, final)
    except OSError as exc:  # pragma: no cover - exotic filesystems
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno == errno.ENOSPC:
            raise ResourceError(f"disk full while finishing {final}", fix="free space and rerun") from None
        raise


def remove_path(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        # DVC may have made cache-linked files read-only; make them writable to remove them.
        for p in path.rglob("*"):
            with contextlib.suppress(OSError):
                if not p.is_symlink():
                    p.chmod(p.stat().st_mode | 0o200)
        shutil.rmtree(path)


def clean_stale_tmp(parent: Path, kinds: tuple[str, ...] = ("",)) -> None:
    """Remove temporary folders left by killed runs (their pids are gone); ``kinds``: only ``.tmp-<kind>…``
    (in a folder of the user's, such as a pull's destination, nothing but our own names is touched)."""
    if not parent.is_dir():
        return
    for p in parent.iterdir():
        if p.name.startswith(tuple(TMP_PREFIX + k for k in kinds)) and p.is_dir():
            pid = p.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not _pid_alive(int(pid)):
                log.info("removing %s left by a killed run", p)
                shutil.rmtree(p, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (no extra disk on the same filesystem), else copy it."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
