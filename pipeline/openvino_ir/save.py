"""Save an IR with the same bytes on every machine.

OpenVINO names a node that nobody named ``<Type>_<n>``, ``n`` from a process-wide instance counter. Whatever
the process did before moves that counter — NNCF compiles helper models on the CPU plugin, whose graph
transformations depend on the CPU's instruction set — so the same int4 IR came out with ``Convert_28828``
on this AVX-512 machine and ``Convert_28823`` with oneDNN capped at AVX2: equal weights, a different XML, a
different DVC hash, and every later stage re-run on a teammate's machine. ``save_ir`` renumbers those names
in the graph's topological order before saving.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

AUTO_NAME = re.compile(r"^([A-Za-z][A-Za-z0-9]*)_(\d+)$")


def canonical_names(model: Any) -> int:
    """Renumber every generated ``<Type>_<n>`` name in topological order; returns how many were renamed."""
    renamed = 0
    for op in model.get_ordered_ops():
        m = AUTO_NAME.match(op.get_friendly_name())
        if m and m.group(1) == op.get_type_name():
            op.set_friendly_name(f"{m.group(1)}_{renamed}")
            renamed += 1
    return renamed


def save_ir(model: Any, out_xml: Path) -> None:
    """``ov.save_model`` (weights as they are, no fp16 rounding) with machine-independent node names."""
    import openvino as ov

    canonical_names(model)
    ov.save_model(model, out_xml, compress_to_fp16=False)
