"""``manifest.json``: what a published artifact is, exactly, and how it was proven.

Inside every package (``artifacts/packages/<target>/manifest.json``, ``records.Manifest``): every file with
its size and sha256; the source repository and resolved revision; the target's settings; the exact
versions of every toolkit that built and validated it; device facts (the NPU platform and driver where one
compiled it); the validation verdict and metrics, with the sha256 of each file that was validated.
``fingerprint`` hashes files + toolkit versions + settings, so two builds made with different toolkit
versions never share a manifest. ``verify`` is what publish and pull use to refuse anything changed,
missing or extra.
"""

from __future__ import annotations

from pathlib import Path

from pipeline import fsutil, versions
from pipeline.records import (
    DeviceFacts,
    Manifest,
    ManifestBuild,
    ManifestSigning,
    ManifestSource,
    ManifestTools,
    ManifestValidation,
    RuntimeSupport,
    SourceRecord,
    TargetRecord,
    ValidationResult,
    file_table,
)


def build(
    name: str,
    package_dir: Path,
    target: TargetRecord,
    validation: ValidationResult,
    source: SourceRecord | None,
    runtime_support: RuntimeSupport | None = None,
    origin: str | None = None,
    signing: ManifestSigning | None = None,
) -> Manifest:
    files = file_table(package_dir, exclude=(Manifest.FILE,))
    facts = target.build
    device_facts = DeviceFacts()
    if facts is not None and facts.npu_compile is not None:
        device_facts.npu_compile = facts.npu_compile
    if facts is not None and facts.providers is not None:
        device_facts.genai_providers = facts.providers
    tools = ManifestTools(build=target.tools or {}, validation=validation.tools or {})
    manifest = Manifest(
        schema_=1,
        name=name,
        family=target.family,
        runtime=target.runtime,
        description=target.description,
        source=ManifestSource(
            model=source.model if source else None,
            kind=source.kind if source else None,
            repo=source.repo if source else None,
            requested_revision=source.requested_revision if source else None,
            resolved_revision=source.resolved_revision if source else None,
            license=source.license if source else "",
        ),
        settings=target.settings,
        build=ManifestBuild(
            weights=facts.weights.counts if facts and facts.weights else None,
            graph=facts.graph if facts else None,
            builder_command=facts.builder_command if facts else None,
            nncf_compress_weights=facts.nncf_compress_weights if facts else None,
        ),
        tools=tools,
        runtime_support=runtime_support,
        origin=origin,
        device_facts=device_facts,
        validation=ManifestValidation(
            passed=validation.passed,
            device=validation.device,
            device_label=validation.device_label,
            intended_device=validation.intended_device,
            proxy=validation.proxy,
            quality=validation.quality,
            speed=validation.speed,
            gates=validation.gates,
            validated_files_sha256=validation.artifact.sha256_by_path() if validation.artifact else {},
            validated_at=validation.validated_at,
            numerics=validation.numerics,
            long_context=validation.long_context,
        ),
        files=files,
    )
    if signing is not None:
        manifest.signing = signing
    manifest.fingerprint = versions.fingerprint(
        {
            "files": [f.model_dump() for f in files],
            "tools": tools.model_dump(),
            "settings": manifest.settings,
        }
    )
    return manifest


def read(package_dir: Path) -> Manifest:
    return Manifest.read(package_dir)


def verify(folder: Path, manifest: Manifest | None = None) -> list[str]:
    """Problems with ``folder`` against its manifest: changed, missing or unexpected files (empty = intact)."""
    folder = Path(folder)
    if manifest is None:
        if not Manifest.exists(folder):
            return [f"{folder} has no {Manifest.FILE}"]
        manifest = read(folder)
    problems = []
    listed = {f.path: f for f in manifest.files}
    # the signature is made at publish over every file, this manifest included, so the manifest cannot list it
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {
        Manifest.FILE,
        ManifestSigning.FILE,
    }
    for path in sorted(present - set(listed)):
        problems.append(f"unexpected file {path} (not in the manifest)")
    for path, f in sorted(listed.items()):
        p = folder / path
        if not p.is_file():
            problems.append(f"missing file {path}")
            continue
        if p.stat().st_size != f.size:
            problems.append(f"{path}: size {p.stat().st_size}, manifest says {f.size}")
            continue
        if fsutil.sha256_file(p) != f.sha256:
            problems.append(f"{path}: sha256 differs from the manifest")
    return problems


def summary(problems: list[str]) -> str:
    """The first problem, and how many more there are."""
    return problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
