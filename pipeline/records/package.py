"""A package's records: ``manifest.json`` (and ``status.json`` for a disabled target)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from pipeline.records.base import FileEntry, Model, Record
from pipeline.records.build import GraphSummary, NpuCompile
from pipeline.records.validation import GateVerdict, LongContextResult, Quality, RuntimeRecord, Speed


class ManifestSource(Model):
    model: str | None
    kind: str | None
    repo: str | None
    requested_revision: str | None
    resolved_revision: str | None
    license: str


class ManifestBuild(Model):
    weights: dict[str, int] | None
    graph: GraphSummary | None
    builder_command: list[str] | None
    nncf_compress_weights: dict[str, str] | None
    # Read, never written: packages published before the run log (2026-12) carry the build's cost here, and a
    # team pulling one of them must not be refused. A build's cost is in the run log now (pipeline.runlog).
    seconds: float | None = None
    peak_rss_bytes: int | None = None


class ManifestTools(Model):
    build: dict[str, str]
    validation: dict[str, str]


class RuntimeSupport(Model):
    """Which runtime versions the package is proven with: the one validation ran, and the oldest a test
    proves it loads and generates in (e.g. onnxruntime-genai-directml 0.14.1, the newest DirectML build)."""

    validated_with: dict[str, str]
    oldest_proven: dict[str, str]


class DeviceFacts(Model):
    npu_compile: NpuCompile | None = None
    genai_providers: list[str] | None = None


class ManifestValidation(Model):
    passed: bool
    device: str | None
    device_label: str | None
    intended_device: str | None
    proxy: str | None
    quality: Quality | None
    speed: Speed | None
    gates: GateVerdict | None
    validated_files_sha256: dict[str, str]
    validated_at: str | None
    numerics: RuntimeRecord | None = None
    long_context: list[LongContextResult] | None = None


class ManifestSigning(Model):
    """Who signs this package at publish and how to verify it (the signature, ``model.sig``, is made at publish
    over every file including this manifest, so it cannot be inside it)."""

    FILE: ClassVar[str] = "model.sig"  # the signature's file, beside the package's files once published

    signer: str
    method: Literal["key", "certificate"]
    verify_with: str  # the public key or CA chain file(s) the team publishes, as params.yaml names them
    verify_command: str  # the model-signing library's own CLI


class Manifest(Record):
    """``manifest.json`` of a package: every file's sha256, provenance, tools, and how it was proven.

    ``fingerprint`` hashes files + toolkit versions + settings, so two builds made with different toolkit
    versions never share a manifest."""

    FILE: ClassVar[str] = "manifest.json"
    schema_: int = Field(1, alias="schema")
    name: str
    family: str
    runtime: str | None
    description: str
    source: ManifestSource
    settings: dict[str, Any] | None
    build: ManifestBuild
    tools: ManifestTools
    runtime_support: RuntimeSupport | None = None
    origin: str | None = None  # targets.<name>.origin: e.g. the search point the settings came from
    device_facts: DeviceFacts
    validation: ManifestValidation
    files: list[FileEntry]
    fingerprint: str | None = None
    signing: ManifestSigning | None = None  # None: published unsigned

    model_config = ConfigDict(extra="forbid", validate_by_name=True, serialize_by_alias=True)

    @property
    def validated(self) -> bool:
        return self.validation.passed


class PackageStatus(Record):
    """``status.json`` in place of a package for a disabled target."""

    FILE: ClassVar[str] = "status.json"
    target: str
    status: Literal["disabled"]
