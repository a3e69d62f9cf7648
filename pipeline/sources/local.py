"""A model folder already on disk (e.g. a Hub snapshot fetched elsewhere, or a fine-tune)."""

from __future__ import annotations

from pathlib import Path

from pipeline import fsutil
from pipeline.errors import SourceError
from pipeline.sources.checkpoint import check_checkpoint
from pipeline.sources.files import is_pickle, wanted


def fetch(entry, out_dir: Path) -> dict:
    src = Path(entry.path).expanduser()
    if not src.is_dir():
        raise SourceError(f"models entry path {src} is not a folder", fix="point `path` at an HF-format model folder")
    names = sorted(p.name for p in src.iterdir() if p.is_file())
    take = [n for n in names if wanted(n)]
    if not any(n.endswith(".safetensors") for n in take):
        pickles = [n for n in names if is_pickle(n)]
        if pickles:
            raise SourceError(
                f"{src} has only pickle weights ({', '.join(pickles[:3])}); pickles can run code when loaded",
                fix="convert them to safetensors (transformers: save_pretrained(safe_serialization=True))",
            )
        raise SourceError(f"{src} has no *.safetensors weights")
    check_checkpoint(src)  # before anything is linked: a malformed folder is refused, naming the file
    for name in take:
        _copy(src / name, out_dir / name)
    return {
        "repo": str(src.resolve()),
        "requested_revision": None,
        "resolved_revision": None,
        "license": entry.license,
        "skipped": [n for n in names if n not in take],
    }


def _copy(src: Path, dst: Path) -> None:
    """Hard-link (no second copy of a 7.6 GB checkpoint; dvc.yaml keeps artifacts/source out of DVC's cache, so
    DVC never makes the user's files read-only); copied when the folder is on another filesystem."""
    fsutil.link_or_copy(src, dst)
