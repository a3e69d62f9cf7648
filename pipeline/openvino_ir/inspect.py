"""What an OpenVINO IR really holds, read back from its constants (not what params asked for).

A compressed weight is a low-bit Constant followed by Convert → [Subtract zero point] → Multiply scale
(→ Reshape for grouped weights). Walking up from each MatMul/Gather to its largest Constant gives each
weight's element type, group size and whether it has zero points (asymmetric).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pipeline.records import LayerPrecision, WeightSummary

LOW_BIT = {"i4": "int4", "u4": "int4", "nf4": "nf4", "i8": "int8", "u8": "int8"}


def weight_precisions(xml: Path) -> WeightSummary:
    """Per weight (MatMul/Gather input): element type, group size, zero points; and totals.

    A compressed weight is a low-bit Constant followed by Convert → [Subtract zero point] → Multiply scale
    (→ Reshape for grouped weights). Walking up from each MatMul/Gather to its largest Constant tells what
    the artifact really holds.
    """
    import openvino as ov

    model = ov.Core().read_model(xml)
    layers: dict[str, LayerPrecision] = {}
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind not in ("MatMul", "Gather"):
            continue
        port = 1 if kind == "MatMul" else 0
        found = _weight_constant(op.input_value(port).get_node())
        if found is None:
            continue
        const, has_zero_point = found
        et = const.get_element_type().get_type_name()
        shape = list(const.get_output_partial_shape(0).to_shape())
        precision = LOW_BIT.get(et, {"f16": "fp16", "bf16": "bf16", "f32": "fp32"}.get(et, et))
        group = shape[-1] if precision in ("int4", "nf4") and len(shape) == 3 else -1
        layers[op.get_friendly_name()] = LayerPrecision(
            op=kind, element_type=et, precision=precision, shape=shape, group_size=group, zero_point=has_zero_point
        )
    counts = Counter(v.precision for v in layers.values())
    return WeightSummary(counts=dict(sorted(counts.items())), layers=layers)


def weights_sha256(xml: Path) -> str:
    """One hash of every MatMul/Gather weight with its scales and zero points (by the consumer's name): two
    IRs with the same hash hold the same weights, whatever else differs (generated node names, the precision
    of small non-weight constants)."""
    import hashlib

    import openvino as ov

    model = ov.Core().read_model(xml)
    found = []
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind in ("MatMul", "Gather"):
            consts = decompression_constants(op.input_value(1 if kind == "MatMul" else 0).get_node())
            if consts and max(_numel(c) for c in consts) > 1:
                found.append((op.get_friendly_name(), consts))
    h = hashlib.sha256()
    for name, consts in sorted(found, key=lambda x: x[0]):
        h.update(name.encode())
        for c in consts:
            h.update(f"{c.get_element_type().get_type_name()}{list(c.get_output_shape(0))}".encode())
            h.update(memoryview(c.get_data()).cast("B"))
    return h.hexdigest()


# What sits between a compressed weight Constant and its MatMul/Gather: Convert → [Subtract zp] → Multiply
# scale (→ Reshape/Unsqueeze for grouped weights); a walk up from the consumer stops after this many ops.
DECOMPRESSION_OPS = ("Convert", "Multiply", "Subtract", "Reshape", "Unsqueeze")
MAX_DECOMPRESSION_DEPTH = 6


def decompression_constants(node, depth: int = 0) -> list:
    """Every Constant of the weight sub-graph feeding ``node``: the weight, its scales and zero points."""
    kind = node.get_type_name()
    if kind == "Constant":
        return [node]
    if depth > MAX_DECOMPRESSION_DEPTH or kind not in DECOMPRESSION_OPS:
        return []
    found = []
    for i in range(node.get_input_size()):
        found += decompression_constants(node.input_value(i).get_node(), depth + 1)
    return found


def _weight_constant(node, depth: int = 0):
    """The weight Constant feeding ``node`` (through decompression ops) and whether a zero point exists."""
    kind = node.get_type_name()
    if kind == "Constant":
        size = 1
        for d in node.get_output_partial_shape(0).to_shape():
            size *= d
        return (node, False) if size > 1 else None
    if depth > MAX_DECOMPRESSION_DEPTH or kind not in DECOMPRESSION_OPS:
        return None
    best = None
    zero_point = kind == "Subtract"
    for i in range(node.get_input_size()):
        found = _weight_constant(node.input_value(i).get_node(), depth + 1)
        if found is None:
            continue
        const, zp = found
        zero_point = zero_point or zp
        if best is None or _numel(const) > _numel(best):
            best = const
    if best is None:
        return None
    if kind == "Subtract":
        # a Subtract whose second input is a (converted) constant is a zero point
        zero_point = _weight_constant(node.input_value(1).get_node(), depth + 1) is not None
    return best, zero_point


def _numel(const) -> int:
    n = 1
    for d in const.get_output_partial_shape(0).to_shape():
        n *= d
    return n
