"""Target families: one module per family, each fulfilling ``pipeline.targets.base.TargetFamily``.

Adding a target family = one module + one line in ``FAMILIES``; adding a target of an existing family = one
entry under ``targets:`` in params.yaml. Family modules are light to import (settings and contract); what
they need to build (OpenVINO, NNCF, the ORT builder, torch) is imported when they build.
"""

from __future__ import annotations

import importlib
from typing import cast

from pipeline.targets.base import TargetFamily

FAMILIES: dict[str, str] = {
    "openvino": "pipeline.targets.openvino",
    "npu": "pipeline.targets.npu",
    "ortgenai": "pipeline.targets.ortgenai",
    "npu_lib": "pipeline.npu_lib.family",
}


def family_module(name: str) -> TargetFamily:
    try:
        path = FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown target family {name!r} (known: {', '.join(FAMILIES)})") from None
    return cast(TargetFamily, importlib.import_module(path))
