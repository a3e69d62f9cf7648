"""The build stages' records: the shared FP IR and each target's ``target.json`` with its family's facts."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from pipeline.records.base import Model, Record


class LayerPrecision(Model):
    op: str
    element_type: str
    precision: str
    shape: list[int]
    group_size: int
    zero_point: bool


class WeightSummary(Model):
    """What an OpenVINO IR really holds, read back from its constants."""

    counts: dict[str, int]
    layers: dict[str, LayerPrecision]


class OvIrRecord(Record):
    """``artifacts/ov-ir/ov_ir.json``: the shared FP IR's export facts."""

    FILE: ClassVar[str] = "ov_ir.json"
    torch_dtype: str
    weights: WeightSummary
    tools: dict[str, str] = Field(default_factory=dict)


class Compliance(Model):
    """The NPU rules checked against the IR (not against params)."""

    int4_layers: int
    asymmetric_int4_layers: list[str]
    disallowed_group_sizes: list[str]
    ok: bool


class NpuCompile(Model):
    """Whether the build compiled the NPU blob, and on what (device properties are kept as reported)."""

    model_config = ConfigDict(extra="allow")
    status: Literal["compiled", "skipped"]
    reason: str | None = None
    summary: str | None = None
    device: str | None = None
    blob: str | None = None


class GraphSummary(Model):
    """Operator counts of an ONNX graph."""

    quantized_matmuls: int
    float_matmuls: int
    quantized_by_kind: dict[str, int]
    op_counts: dict[str, int]


class BuildFacts(Model):
    """What a family's build reports (each family fills its own sections)."""

    # OpenVINO families
    derived_from: str | None = None
    nncf_compress_weights: dict[str, str] | None = None
    data_aware: bool | None = None
    weights: WeightSummary | None = None
    compliance: Compliance | None = None
    npu_compile: NpuCompile | None = None
    # ONNX Runtime GenAI
    builder_command: list[str] | None = None
    mode: str | None = None
    graph: GraphSummary | None = None
    providers: list[str] | None = None
    # a family's own run record (read only by that family)
    npu_lib: dict[str, Any] | None = None


class TargetSource(Model):
    model: str
    repo: str | None = None
    resolved_revision: str | None = None


class TargetRecord(Record):
    """``artifacts/targets/<name>/target.json``: what was built, with which settings and tools.

    Only what the inputs decide: the build's seconds and RSS are in the run log (``pipeline.runlog``), or a
    rebuild with the same bytes would re-run validation and packaging."""

    FILE: ClassVar[str] = "target.json"
    target: str
    family: str
    description: str = ""
    status: Literal["built", "disabled"]
    runtime: str | None = None
    settings: dict[str, Any] | None = None
    source: TargetSource | None = None
    build: BuildFacts | None = None
    size_bytes: int | None = None
    tools: dict[str, str] | None = None

    @property
    def built(self) -> bool:
        return self.status == "built"
