"""`aipc doctor`: can this machine run the configured pipeline, and where will each target really run?

Checks the toolkit versions against the project's pins, OpenVINO's devices (is there an NPU? a GPU?),
DirectML, the isolated npu-lib environment, and free RAM/disk against what the configured model needs.
A check is ``ok``, ``info`` (a fact, e.g. "no NPU: the NPU IR is validated on CPU"), ``warn`` or
``fail``; any ``fail`` makes the command exit non-zero.
"""

from __future__ import annotations

import platform
import re
import sys
from importlib import metadata
from pathlib import Path

from pipeline import layout, resources
from pipeline.fsutil import free_bytes
from pipeline.params import EmbeddedModel, HubModel, LocalModel, Params
from pipeline.targets.base import Check

GiB = 2**30


def pinned_requirements() -> dict[str, str]:
    """name → pinned version, from this package's own metadata (the pins in pyproject.toml)."""
    try:
        reqs = metadata.requires("aipc-pipeline") or []
    except metadata.PackageNotFoundError:
        return {}
    out = {}
    for req in reqs:
        if "extra ==" in req:
            continue
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^;\s]+)", req)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def check_toolkits() -> list[Check]:
    checks = []
    if sys.version_info[:2] != (3, 11):
        checks.append(Check("python", "warn", f"{platform.python_version()} (the pins were tested on 3.11)"))
    else:
        checks.append(Check("python", "ok", platform.python_version()))
    pins = pinned_requirements()
    if not pins:
        checks.append(Check("install", "fail", "aipc-pipeline is not installed: run `make install` (pip install -e .)"))
    for name, want in sorted(pins.items()):
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            checks.append(Check(name, "fail", f"missing (pinned {want}): run `make install`"))
            continue
        base = have.split("+")[0]
        status = "ok" if base == want or have == want else "warn"
        detail = have if status == "ok" else f"{have} installed, {want} pinned (untested combination)"
        checks.append(Check(name, status, detail))
    return checks


def check_devices() -> list[Check]:
    checks = []
    try:
        import openvino as ov

        core = ov.Core()
        devices = core.available_devices
        names = {d: _device_name(core, d) for d in devices}
        checks.append(Check("openvino devices", "ok", ", ".join(f"{d} ({n})" for d, n in names.items())))
        if any(d.startswith("NPU") for d in devices):
            checks.append(Check("NPU", "ok", f"present: {names.get('NPU', '')} — ov-npu-int4 compiles and runs on it"))
        else:
            checks.append(
                Check("NPU", "info", "not present: ov-npu-int4 is built here and validated on CPU (labelled CPU)")
            )
        if not any(d.startswith("GPU") for d in devices):
            checks.append(Check("GPU", "info", "no OpenVINO GPU device: OpenVINO targets are validated on CPU"))
    except Exception as exc:  # a broken OpenVINO install must not hide the other checks
        checks.append(Check("openvino", "fail", f"cannot start OpenVINO: {exc}"))
    try:
        import onnxruntime_genai as og

        dml = bool(og.is_dml_available())
    except Exception:
        dml = False
    if dml:
        checks.append(Check("DirectML", "ok", "available: ort-dml-* targets run on DirectML"))
    else:
        why = (
            "needs Windows and onnxruntime-genai-directml"
            if platform.system() != "Windows"
            else "install onnxruntime-genai-directml"
        )
        checks.append(
            Check("DirectML", "info", f"not usable ({why}): the DML graph is validated on ORT's CPU provider")
        )
    return checks


def _device_name(core, device: str) -> str:
    try:
        return str(core.get_property(device, "FULL_DEVICE_NAME"))
    except Exception:
        return "?"


def estimated_weights(params: Params) -> int:
    src = params.source
    if isinstance(src, HubModel) and src.weights_gb:
        return int(src.weights_gb * 1e9)
    if isinstance(src, LocalModel):
        return resources.weights_bytes(Path(src.path))
    if isinstance(src, EmbeddedModel):
        existing = layout.source_dir() / "model.safetensors"
        return existing.stat().st_size if existing.is_file() else 12 * 2**20
    return 8 * 10**9  # unknown hub model: assume a Phi-3-mini-sized one


def estimate_need(params: Params) -> tuple[int, int]:
    """(peak RAM of the hungriest step, total disk for source + all enabled targets)."""
    w = estimated_weights(params)
    ram = int(1.3 * w)  # reference stage: fp32 forward of a bf16 checkpoint streams layer by layer
    disk = 2 * w  # source (+ the DVC cache hard-links it: no copy) and the shared FP IR
    for name, target in params.targets.items():
        if not target.enabled:
            continue
        t_ram, t_disk = params.family(name).estimate(target.build, w)
        ram = max(ram, t_ram)
        disk += t_disk
    return ram, disk


def check_resources(params: Params, root: Path = Path(".")) -> list[Check]:
    ram_need, disk_need = estimate_need(params)
    ram = resources.available_ram()
    disk = free_bytes(root.resolve())
    return [
        Check(
            "RAM",
            "ok" if ram >= ram_need else "fail",
            f"{ram / GiB:.1f} GiB available, model '{params.model}' needs ~{ram_need / GiB:.1f} GiB at peak",
        ),
        Check(
            "disk",
            "ok" if disk >= disk_need else "fail",
            f"{disk / GiB:.1f} GiB free, source + enabled targets need ~{disk_need / GiB:.1f} GiB",
        ),
    ]


def check_families(params: Params) -> list[Check]:
    """What each enabled target's family says about its own environment (e.g. npu-lib's isolated venv)."""
    checks: list[Check] = []
    seen: set[str] = set()
    for name, target in params.targets.items():
        if target.enabled and target.family not in seen:
            seen.add(target.family)
            checks += params.family(name).environment_checks(target.build)
    return checks


def run(params: Params) -> list[Check]:
    return [*check_toolkits(), *check_devices(), *check_resources(params), *check_families(params)]
