"""The records that cross a stage boundary, each defined once with its file name.

Every stage writes what the next one needs as one of these models and every reader goes through them: a
record is read in one place, a missing or foreign one is one clear line, and a question such as "did
validation pass?" is answered by the record itself (``ValidationResult.passed``), never re-derived from
dictionary lookups in each consumer.

Files are written as indented JSON with the fields a writer set (``exclude_unset``), in field order, so the
bytes are stable across runs and readable in a diff. Family-specific files (``npu_config.json``,
``npu_lib_run.json``) are owned by their family module; these are the ones every stage shares.
"""

from __future__ import annotations

from pipeline.records.base import FileEntry, Model, Record, Row, file_table
from pipeline.records.build import (
    BuildFacts,
    Compliance,
    GraphSummary,
    LayerPrecision,
    NpuCompile,
    OvIrRecord,
    TargetRecord,
    TargetSource,
    WeightSummary,
)
from pipeline.records.checked import ParamsChecked
from pipeline.records.package import (
    DeviceFacts,
    Manifest,
    ManifestBuild,
    ManifestSigning,
    ManifestSource,
    ManifestTools,
    ManifestValidation,
    PackageStatus,
    RuntimeSupport,
)
from pipeline.records.reference import ChatMessage, Heldout, LongLength, LongRun, ReferenceOutput, ReferenceRecord
from pipeline.records.run import HostFacts, RunLog
from pipeline.records.source import SourceRecord
from pipeline.records.validation import (
    Divergence,
    GateVerdict,
    GoldenOutput,
    LongContextResult,
    Phases,
    Quality,
    RuntimeRecord,
    Speed,
    ValidatedArtifact,
    ValidationResult,
)

__all__ = [
    "BuildFacts",
    "ChatMessage",
    "Compliance",
    "DeviceFacts",
    "Divergence",
    "FileEntry",
    "GateVerdict",
    "GoldenOutput",
    "GraphSummary",
    "Heldout",
    "HostFacts",
    "LayerPrecision",
    "LongContextResult",
    "LongLength",
    "LongRun",
    "Manifest",
    "ManifestBuild",
    "ManifestSigning",
    "ManifestSource",
    "ManifestTools",
    "ManifestValidation",
    "Model",
    "NpuCompile",
    "OvIrRecord",
    "PackageStatus",
    "ParamsChecked",
    "Phases",
    "Quality",
    "Record",
    "ReferenceOutput",
    "ReferenceRecord",
    "Row",
    "RunLog",
    "RuntimeRecord",
    "RuntimeSupport",
    "SourceRecord",
    "Speed",
    "TargetRecord",
    "TargetSource",
    "ValidatedArtifact",
    "ValidationResult",
    "WeightSummary",
    "file_table",
]  # fmt: skip
