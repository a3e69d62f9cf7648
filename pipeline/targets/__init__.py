"""Target families: one module per family, all exposing the interface of ``pipeline.targets.base``.

Adding a target family = one module here + one line in ``FAMILIES``; adding a target of an existing
family = one entry under ``targets:`` in params.yaml. Modules are imported lazily so that reading params
never pulls OpenVINO, ONNX Runtime or torch into the process.
"""

from __future__ import annotations

import importlib
from types import ModuleType

FAMILIES: dict[str, str] = {
    "openvino": "pipeline.targets.openvino",
    "npu": "pipeline.targets.npu",
    "ortgenai": "pipeline.targets.ortgenai",
    "npu_lib": "pipeline.targets.npu_lib",
}


def family_module(name: str) -> ModuleType:
    try:
        path = FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown target family {name!r} (known: {', '.join(FAMILIES)})") from None
    return importlib.import_module(path)
