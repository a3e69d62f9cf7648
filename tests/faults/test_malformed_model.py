"""A malformed local or downloaded model is refused before any work, in one line naming the file and the fault.

Each damage below is what a user's folder really gets: an empty or cut config, a tokenizer saved half-way, a
weights file cut short by a failed copy (header or data), stray bytes after it, a shard index naming a shard
that is not there. Before these checks the empty config ended in "internal error: KeyError: 'hidden_size'" and
a cut weights file in a loader's error minutes into the build.
"""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.errors import PipelineError, SourceError
from pipeline.params import validate_params
from pipeline.sources import fetch_source
from pipeline.sources.checkpoint import safetensors_header


def local_raw(params_raw: dict, path: Path) -> dict:
    params_raw["models"]["mine"] = {"kind": "local", "path": str(path)}
    params_raw["model"] = "mine"
    return params_raw


def _cut(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _header_len(path: Path) -> int:
    return struct.unpack("<Q", path.read_bytes()[:8])[0]


def _index(folder: Path, shard: str) -> None:
    names = [n for n in safetensors_header(folder / "model.safetensors") if n != "__metadata__"]
    weight_map = {n: "model.safetensors" for n in names} | {names[0]: shard}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "empty config": (lambda d: (d / "config.json").write_text("{}"), r"config\.json lacks hidden_size"),
    "config not json": (lambda d: _cut(d / "config.json", 40), r"config\.json is not valid JSON"),
    "config value": (
        lambda d: (d / "config.json").write_text(
            json.dumps(json.loads((d / "config.json").read_text()) | {"hidden_size": "256"})
        ),
        r"config\.json: hidden_size = '256' — must be positive integers",
    ),
    "tokenizer cut": (lambda d: _cut(d / "tokenizer.json", 1000), r"tokenizer\.json is not valid JSON"),
    "header cut": (lambda d: _cut(d / "model.safetensors", 100), r"model\.safetensors: its header length field says"),
    "tiny file": (lambda d: _cut(d / "model.safetensors", 5), r"model\.safetensors is 5 bytes"),
    "data short": (
        lambda d: _cut(d / "model.safetensors", (d / "model.safetensors").stat().st_size - 4096),
        r"model\.safetensors is truncated: its header describes [\d,]+ bytes of tensors, it holds [\d,]+",
    ),
    "trailing bytes": (
        lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes() + b"\0" * 64),
        r"model\.safetensors is followed by bytes no tensor owns",
    ),
    "header garbage": (
        lambda d: (d / "model.safetensors").write_bytes(
            (d / "model.safetensors").read_bytes()[:8]
            + b"#" * _header_len(d / "model.safetensors")
            + (d / "model.safetensors").read_bytes()[8 + _header_len(d / "model.safetensors") :]
        ),
        r"model\.safetensors: its header is not valid JSON",
    ),
    "missing shard": (
        lambda d: _index(d, "model-00002-of-00002.safetensors"),
        r"model\.safetensors\.index\.json maps \S+ to model-00002-of-00002\.safetensors, which is not in the folder",
    ),
}


@pytest.mark.parametrize("fault", list(DAMAGE))
def test_a_damaged_local_folder_is_refused_naming_the_file(fault, embedded_dir, params_raw, tmp_path):
    src = tmp_path / "mine"
    shutil.copytree(embedded_dir, src)
    damage, expected = DAMAGE[fault]
    damage(src)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(PipelineError) as info:  # at params validation (the config) or at the source's start
        fetch_source(validate_params(local_raw(params_raw, src)), out)
    line = str(info.value)
    assert "\n" not in line and str(src) in line, line
    assert __import__("re").search(expected, line), line
    assert list(out.iterdir()) == []  # refused before anything was linked


def test_the_undamaged_copy_passes(embedded_dir, params_raw, tmp_path):
    src = tmp_path / "mine"
    shutil.copytree(embedded_dir, src)
    _index(src, "model.safetensors")  # a consistent index is fine
    out = tmp_path / "out"
    out.mkdir()
    fetch_source(validate_params(local_raw(params_raw, src)), out)
    assert (out / "model.safetensors").is_file()


def test_every_damage_is_caught_by_its_own_check(embedded_dir, tmp_path):
    """The checks are not one check matching everything: each damage fails with its own message only."""
    from pipeline.sources.checkpoint import check_checkpoint

    messages = set()
    for fault, (damage, _) in DAMAGE.items():
        src = tmp_path / fault.replace(" ", "-")
        shutil.copytree(embedded_dir, src)
        damage(src)
        with pytest.raises(SourceError) as info:
            check_checkpoint(src)
        messages.add(str(info.value).replace(str(src), "<dir>"))
    assert len(messages) == len(DAMAGE), messages


@pytest.mark.parametrize("damage", ["byte flipped", "cut short"])
def test_a_damaged_cached_download_is_fetched_again(damage, hub_env, embedded_dir, params_raw, tmp_path, caplog):
    from pipeline.fsutil import atomic_dir
    from pipeline.sources import hub
    from tests.sources.test_hub import REPO, hub_params, repo_files

    files = repo_files(embedded_dir)
    sha = hub_env.add_commit(REPO, files)
    params = hub_params(params_raw, sha)
    with atomic_dir(tmp_path / "first") as tmp:
        fetch_source(params, tmp)
    cached = hub.download_dir(REPO, sha) / "model.safetensors"
    data = bytearray(cached.read_bytes())
    cached.unlink()  # the first output holds a hard link: damage the cache's copy only, as a disk fault would
    if damage == "byte flipped":
        data[len(data) // 2] ^= 0xFF
        cached.write_bytes(bytes(data))
    else:
        cached.write_bytes(bytes(data[: len(data) // 2]))
    gets = sum(1 for r in hub_env.requests if r["path"].endswith("model.safetensors") and r["method"] == "GET")
    with caplog.at_level("WARNING"), atomic_dir(tmp_path / "second") as tmp:
        fetch_source(params, tmp)
    assert (tmp_path / "second/model.safetensors").read_bytes() == files["model.safetensors"]
    again = sum(1 for r in hub_env.requests if r["path"].endswith("model.safetensors") and r["method"] == "GET")
    assert again == gets + 1, "the damaged file was fetched again, once"
    assert "failed verification; downloading it again" in caplog.text
