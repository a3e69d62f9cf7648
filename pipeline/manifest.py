"""``manifest.json``: what a published artifact is, exactly, and how it was proven.

Inside every package (``artifacts/packages/<target>/manifest.json``): every file with its size and sha256;
the source repository and resolved revision; the target's settings; the exact versions of every toolkit
that built and validated it; device facts (the NPU platform and driver where one compiled it); the
validation verdict and metrics, with the sha256 of each file that was validated. ``fingerprint`` hashes
files + toolkit versions + settings, so two builds made with different toolkit versions never share a
manifest. ``verify`` is what publish and pull use to refuse anything changed, missing or extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline import fsutil, versions

MANIFEST = "manifest.json"
SCHEMA = 1


def build(
    name: str,
    package_dir: Path,
    target_record: dict[str, Any],
    validation: dict[str, Any],
    source_record: dict[str, Any],
) -> dict[str, Any]:
    files = fsutil.file_table(package_dir, exclude=(MANIFEST,))
    build_facts = target_record.get("build") or {}
    device_facts: dict[str, Any] = {}
    if "npu_compile" in build_facts:
        device_facts["npu_compile"] = build_facts["npu_compile"]
    if "providers" in build_facts:
        device_facts["genai_providers"] = build_facts["providers"]
    manifest = {
        "schema": SCHEMA,
        "name": name,
        "family": target_record.get("family"),
        "runtime": target_record.get("runtime"),
        "description": target_record.get("description", ""),
        "source": {
            "model": source_record.get("model"),
            "kind": source_record.get("kind"),
            "repo": source_record.get("repo"),
            "requested_revision": source_record.get("requested_revision"),
            "resolved_revision": source_record.get("resolved_revision"),
            "license": source_record.get("license", ""),
        },
        "settings": target_record.get("settings"),
        "build": {
            "weights": (build_facts.get("weights") or {}).get("counts"),
            "graph": build_facts.get("graph"),
            "builder_command": build_facts.get("builder_command"),
            "nncf_compress_weights": build_facts.get("nncf_compress_weights"),
            "seconds": target_record.get("seconds"),
            "peak_rss_bytes": target_record.get("peak_rss_bytes"),
        },
        "tools": {"build": target_record.get("tools", {}), "validation": validation.get("tools", {})},
        "device_facts": device_facts,
        "validation": {
            "passed": bool(validation.get("gates", {}).get("passed")),
            "device": validation.get("device"),
            "device_label": validation.get("device_label"),
            "intended_device": validation.get("intended_device"),
            "proxy": validation.get("proxy"),
            "quality": validation.get("quality"),
            "speed": validation.get("speed"),
            "gates": validation.get("gates"),
            "validated_files_sha256": {
                f["path"]: f["sha256"] for f in (validation.get("artifact") or {}).get("files_sha256", [])
            },
            "validated_at": validation.get("validated_at"),
        },
        "files": files,
    }
    manifest["fingerprint"] = versions.fingerprint(
        {"files": files, "tools": manifest["tools"], "settings": manifest["settings"]}
    )
    return manifest


def write(package_dir: Path, manifest: dict[str, Any]) -> None:
    fsutil.write_json(package_dir / MANIFEST, manifest)


def read(package_dir: Path) -> dict[str, Any]:
    return fsutil.read_json(package_dir / MANIFEST)


def verify(folder: Path, manifest: dict[str, Any] | None = None) -> list[str]:
    """Problems with ``folder`` against its manifest: changed, missing or unexpected files (empty = intact)."""
    folder = Path(folder)
    if manifest is None:
        if not (folder / MANIFEST).is_file():
            return [f"{folder} has no {MANIFEST}"]
        manifest = read(folder)
    problems = []
    listed = {f["path"]: f for f in manifest.get("files", [])}
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {MANIFEST}
    for path in sorted(present - set(listed)):
        problems.append(f"unexpected file {path} (not in the manifest)")
    for path, f in sorted(listed.items()):
        p = folder / path
        if not p.is_file():
            problems.append(f"missing file {path}")
            continue
        if p.stat().st_size != f["size"]:
            problems.append(f"{path}: size {p.stat().st_size}, manifest says {f['size']}")
            continue
        if fsutil.sha256_file(p) != f["sha256"]:
            problems.append(f"{path}: sha256 differs from the manifest")
    return problems


def summary(problems: list[str]) -> str:
    """The first problem, and how many more there are."""
    return problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
