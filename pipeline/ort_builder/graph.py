"""What a built ONNX Runtime GenAI model holds: operator counts and the execution providers it asks for."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.records import GraphSummary


def graph_summary(model_path: Path) -> GraphSummary:
    """Operator counts of the built graph (without loading its weights)."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    ops: dict[str, int] = {}
    nbits: dict[str, int] = {}
    for node in model.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
        if node.op_type == "MatMulNBits":
            attrs = {a.name: a.i for a in node.attribute if a.type == onnx.AttributeProto.INT}
            key = f"{attrs.get('bits')}bit/block{attrs.get('block_size')}/acc{attrs.get('accuracy_level', 0)}"
            nbits[key] = nbits.get(key, 0) + 1
    return GraphSummary(
        quantized_matmuls=ops.get("MatMulNBits", 0),
        float_matmuls=ops.get("MatMul", 0),
        quantized_by_kind=nbits,
        op_counts=dict(sorted(ops.items())),
    )


GENAI_CONFIG = "genai_config.json"


class GenAIConfig:
    """The parts of onnxruntime-genai's ``genai_config.json`` the pipeline reads (the builder writes it)."""

    def __init__(self, model_dir: Path):
        self.data = json.loads((Path(model_dir) / GENAI_CONFIG).read_text())
        self.model = self.data["model"]

    @property
    def providers(self) -> list[str]:
        options = self.model["decoder"]["session_options"].get("provider_options", [])
        return [next(iter(o)) for o in options]

    @property
    def context_length(self) -> int | None:
        return self.model.get("context_length")

    @property
    def eos_token_ids(self) -> set[int]:
        eos = self.model.get("eos_token_id")
        return set(eos if isinstance(eos, list) else [eos])


def providers(model_dir: Path) -> list[str]:
    return GenAIConfig(model_dir).providers
