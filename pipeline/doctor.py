"""`aipc doctor`: can this machine run the configured pipeline, and where will each target really run?

Checks the toolkit versions against the project's pins, OpenVINO's devices (is there an NPU? a GPU?),
DirectML, the isolated npu-lib environment, and free RAM/disk against what the configured model needs.
A check is ``ok``, ``info`` (a fact, e.g. "no NPU: the NPU IR is validated on CPU"), ``warn`` or
``fail``; any ``fail`` makes the command exit non-zero.
"""

from __future__ import annotations

import json
import platform
import re
import sys
from importlib import metadata
from pathlib import Path

from pipeline import resource_plan, resources
from pipeline.fmt import size
from pipeline.fsutil import free_bytes
from pipeline.params import Params
from pipeline.targets.base import Check

GiB = 2**30


CORE = ""  # the requirements every install has (requirements-core.txt)
# Each extra's distinctive module: an extra counts as installed when its first pin is present.
RUNTIME_EXTRAS = ("openvino", "ort-cpu", "ort-dml")
GENAI_FLAVOURS = {"onnxruntime-genai": "ort-cpu", "onnxruntime-genai-directml": "ort-dml"}


def pinned_requirements() -> dict[str, dict[str, str]]:
    """extra ("" = core) → {name: pinned version}, from this package's own metadata (pyproject's files)."""
    try:
        reqs = metadata.requires("aipc-pipeline") or []
    except metadata.PackageNotFoundError:
        return {}
    out: dict[str, dict[str, str]] = {}
    for req in reqs:
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^;\s]+)\s*(?:;(.*))?$", req)
        if not m:
            continue
        marker = m.group(3) or ""
        extra = re.search(r"extra\s*==\s*[\"']([^\"']+)[\"']", marker)
        if "sys_platform" in marker and ("win32" in marker) != (sys.platform == "win32"):
            continue
        out.setdefault(extra.group(1) if extra else CORE, {})[m.group(1).lower()] = m.group(2)
    return out


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def installed_extras(pins: dict[str, dict[str, str]]) -> list[str]:
    """The extras whose every pin is installed: ``build`` for a build machine, a runtime for a deployment."""
    return [e for e, reqs in pins.items() if e not in (CORE, "dev") and reqs and all(_version(n) for n in reqs)]


def check_toolkits() -> list[Check]:
    checks = []
    if (3, 11) <= sys.version_info[:2] <= (3, 13):
        checks.append(Check("python", "ok", platform.python_version()))
    else:
        checks.append(Check("python", "warn", f"{platform.python_version()} (supported: 3.11–3.13)"))
    pins = pinned_requirements()
    if not pins:
        checks.append(Check("install", "fail", "aipc-pipeline is not installed: run `make install` (pip install -e .)"))
        return checks
    extras = installed_extras(pins)
    kind = "build (make install)" if "build" in extras else "deployment"
    runtimes = [e for e in extras if e in RUNTIME_EXTRAS] if "build" not in extras else []
    detail = kind + (f", runtimes: {', '.join(runtimes)}" if runtimes else "")
    if "build" not in extras:  # the build install has DVC: it runs the pipeline
        detail += (
            "; pulls from a DVC remote or the Hub"
            if "dvc" in extras
            else '; pulls from the Hub (pip install "aipc-pipeline[dvc]" for a DVC remote)'
        )
    if "build" not in extras and not runtimes:
        checks.append(Check("install", "warn", f"{detail} — no runtime: pip install \"aipc-pipeline[openvino]\" "
                            "(or [ort-cpu], [ort-dml] on Windows) to check packages"))  # fmt: skip
    else:
        checks.append(Check("install", "ok", detail))
    checks += check_genai_flavours()
    wanted: dict[str, str] = dict(pins.get(CORE, {}))
    for extra in extras:
        if extra != "dev":
            wanted.update(pins[extra])
    for name, want in sorted(wanted.items()):
        have = _version(name)
        if have is None:
            checks.append(Check(name, "fail", f"missing (pinned {want}): run `make install`"))
            continue
        status = "ok" if have.split("+")[0] == want or have == want else "warn"
        detail = have if status == "ok" else f"{have} installed, {want} pinned (untested combination)"
        checks.append(Check(name, status, detail))
    return checks


def check_genai_flavours() -> list[Check]:
    """Both onnxruntime-genai wheels ship the module ``onnxruntime_genai``: installed together, the one
    installed last silently replaces the other's files (onnxruntime-genai issue #971)."""
    present = [name for name in GENAI_FLAVOURS if _version(name)]
    if len(present) < 2:
        return []
    keep = "onnxruntime-genai-directml" if sys.platform == "win32" else "onnxruntime-genai"
    drop = next(n for n in present if n != keep)
    return [
        Check(
            "onnxruntime-genai",
            "fail",
            f"two flavours installed ({', '.join(f'{n} {_version(n)}' for n in present)}), one module: "
            f"`pip uninstall -y {' '.join(present)}` then `pip install {keep}=={_version(keep)}` "
            f"({'DirectML' if keep.endswith('directml') else 'CPU'} on this OS; drop {drop})",
        )
    ]


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


def check_resources(params: Params, root: Path = Path(".")) -> list[Check]:
    """The configured pipeline's hungriest stage against free RAM, and the disk all its stages add against free
    disk (``pipeline.resource_plan``: every stage, the reference, validation, packages and DVC's cache)."""
    needs = resource_plan.plan(params)
    hungriest = max(needs, key=lambda n: n.ram)
    disk_need = resource_plan.total_disk(needs)
    ram = resources.available_ram()
    disk = free_bytes(root.resolve())
    biggest = sorted(needs, key=lambda n: -n.disk)[:3]
    return [
        Check(
            "RAM",
            "ok" if ram >= hungriest.ram else "fail",
            f"{size(ram)} available; the hungriest stage of model '{params.model}', {hungriest.stage}, "
            f"needs ~{size(hungriest.ram)}",
        ),
        Check(
            "disk",
            "ok" if disk >= disk_need else "fail",
            f"{size(disk)} free; the pipeline adds ~{size(disk_need)}"
            + (
                " (most: " + ", ".join(f"{n.stage} {size(n.disk)}" for n in biggest if n.disk) + ")"
                if disk_need
                else ""
            ),
        ),
    ]


RWLOCK = Path(".dvc/tmp/rwlock")


def check_dvc_state(root: Path = Path(".")) -> list[Check]:
    """DVC's own lock table, which DVC rewrites in place: a disk that filled while it wrote left it truncated,
    and every DVC command then fails with "Unable to read RWLock-file" until it is removed (seen in the fault
    suite, tests/faults/test_full_disk.py)."""
    path = root / RWLOCK
    if not path.is_file():
        return []
    try:
        json.loads(path.read_text(encoding="utf-8") or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return [
            Check(
                "dvc lock",
                "fail",
                f"{RWLOCK} is truncated (the disk filled while DVC wrote it): with no DVC command running, "
                f"remove it (`rm {RWLOCK}`) and rerun",
            )
        ]
    return [Check("dvc lock", "ok", f"{RWLOCK} readable")]


def check_families(params: Params) -> list[Check]:
    """What each enabled target's family says about its own environment (e.g. npu-lib's isolated venv)."""
    checks: list[Check] = []
    seen: set[str] = set()
    for name, target in params.targets.items():
        if target.enabled and target.family not in seen:
            seen.add(target.family)
            checks += params.family(name).environment_checks(target.build)
    return checks


def run(params: Params | None) -> list[Check]:
    """Every check; without params (a deployment machine, no project here) the pipeline's own are skipped."""
    if params is None:
        skipped = Check("pipeline", "info", "no params.yaml here: RAM/disk and target checks skipped (deployment use)")
        return [*check_toolkits(), *check_devices(), skipped]
    return [
        *check_toolkits(), *check_devices(), *check_resources(params), *check_dvc_state(), *check_families(params)
    ]  # fmt: skip
