"""The benchmark run: the model, the anchors, the project's stages and the decode measurements, in one go.

Results are saved after every step (``results.json`` in the work folder) so that ``--resume`` reuses what an
earlier ``--keep`` run measured. RAM and disk are checked before any work; everything made is removed
unless ``keep``.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil

from pipeline import fsutil, layout, versions
from pipeline.bench import TARGETS, GiB
from pipeline.bench.anchors import anchor_command, data_free_twin
from pipeline.bench.measure import Step, run_measured
from pipeline.bench.synthetic import PHI3_MINI, make_phi3_mini_shaped, tokenizer_source
from pipeline.errors import ResourceError

log = logging.getLogger(__name__)


def machine_facts() -> dict[str, Any]:
    flags = ""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = line
            if line.startswith("model name") and cpu == platform.processor():
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    isa = [
        f
        for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
        if f" {f}" in flags
    ]
    return {
        "cpu": cpu,
        "logical_cpus": psutil.cpu_count(),
        "isa": isa,
        "ram_gib": round(psutil.virtual_memory().total / GiB, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "tools": versions.tool_versions(),
    }


def check_resources(work: Path, need_ram: float = 20 * GiB, need_disk: float = 70 * GiB) -> None:
    ram = psutil.virtual_memory().total
    if ram < need_ram:
        raise ResourceError(f"the benchmark needs ~{need_ram / GiB:.0f} GiB of RAM, this machine has {ram / GiB:.1f}")
    fsutil.require_disk(
        work, int(need_disk), "the full-size benchmark (model, anchors, project artifacts, temporary files)"
    )


def bench_params(project_root: Path, model_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """The project's params.yaml pointed at ``model_dir`` (a local source), with the benchmarked targets only,
    and the targets benchmarked as their data-free twins (``anchors.data_free_twin``)."""
    import yaml

    raw = yaml.safe_load((project_root / "params.yaml").read_text())
    raw["models"]["bench"] = {
        "kind": "local",
        "path": str(model_dir),
        "description": "Phi-3-mini-shaped, random weights",
    }
    raw["model"] = "bench"
    raw["targets"] = {k: v for k, v in raw["targets"].items() if k in TARGETS}
    twins = []
    for name, target in raw["targets"].items():
        if target["family"] in ("openvino", "npu") and (twin := data_free_twin(target["build"])) is not None:
            log.info("%s: benchmarked as its data-free twin (calibration has no offline optimum-cli anchor)", name)
            target["build"] = twin
            target.pop("search", None)  # its recipes were written against the calibrated build
            twins.append(name)
    return raw, twins


def weights_digest(runtime: str, folder: Path) -> dict[str, str]:
    """What must be equal for "same weights": OpenVINO: every weight constant (``inspect.weights_sha256``; the
    project's FP16 IR keeps RoPE's f32 constant that the CLI rounds to f16); ONNX: the weights file and the graph
    but for its ``producer_version`` (the anchor's stock builder stamps the git commit around its virtual
    environment, the project's the wheel's: ``ort_builder.child.pin_build_stamp``)."""
    if runtime == "openvino-genai":
        from pipeline.openvino_ir.inspect import weights_sha256

        xml = folder / "openvino_model.xml"
        return {"weights": weights_sha256(xml)} if xml.is_file() else {}
    out = {}
    if (folder / "model.onnx").is_file():
        import hashlib

        import onnx

        graph = onnx.load(folder / "model.onnx", load_external_data=False)
        graph.producer_version = ""
        out["model.onnx"] = hashlib.sha256(graph.SerializeToString(deterministic=True)).hexdigest()
    if (folder / "model.onnx.data").is_file():
        out["model.onnx.data"] = fsutil.sha256_file(folder / "model.onnx.data")
    return out


def run_bench(
    project_root: Path,
    work: Path,
    *,
    model: Path | None = None,
    keep: bool = False,
    decode: bool = True,
    resume: bool = False,
    need_ram: float = 20 * GiB,
    need_disk: float = 70 * GiB,
) -> dict[str, Any]:
    """Run everything; ``model`` = an existing HF folder instead of the generated Phi-3-mini shape (tests)."""
    from pipeline.params import validate_params

    project_root = project_root.resolve()
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    existing = work / "phi3-mini-shaped"
    kept = sum(p.stat().st_size for p in existing.glob("*.safetensors")) if model is None and existing.is_dir() else 0
    check_resources(work, need_ram, need_disk - kept)  # a model kept from an earlier --keep run is reused
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    results: dict[str, Any] = {
        "machine": machine_facts(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    previous = _load(work) if resume else {}
    done = {(st["kind"], st["name"]): st for st in previous.get("steps", []) if st["returncode"] == 0}
    try:
        # 0. the model
        t0 = time.monotonic()
        if model is None:
            model = work / "phi3-mini-shaped"
            if not (model / "model.safetensors.index.json").is_file():
                make_phi3_mini_shaped(model, tokenizer_source(project_root))
        model = Path(model).resolve()
        total = sum(p.stat().st_size for p in model.glob("*.safetensors"))
        shape = {k: v for k, v in json.loads((model / "config.json").read_text()).items() if k in PHI3_MINI}
        results["model"] = {"weights_bytes": total, "seconds": round(time.monotonic() - t0, 1), **shape}
        log.info("model: %.2f GB of bf16 safetensors", total / 1e9)

        raw, results["data_free_twins"] = bench_params(project_root, model)
        params = validate_params(raw, check_model=False)
        anchors_out = work / "anchors"
        anchors_out.mkdir(exist_ok=True)
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        steps: list[Step] = []

        # 1. anchors, each alone; outputs measured and hashed, then deleted to keep disk in bounds
        for name in TARGETS:
            if ("anchor", name) in done:  # --resume: measured in an earlier run of this work folder
                steps.append(Step(**done[("anchor", name)]))
                continue
            target = params.target(name)
            folder = anchors_out / name
            cmd = anchor_command(target, model, folder, anchors_out / f"{name}-cache")
            step = run_measured(Step(name, "anchor", cmd), work, logs / f"anchor-{name}.log", env)
            step.output_bytes = fsutil.dir_size(folder) if folder.exists() else 0
            step.weights_sha256 = weights_digest(params.family(name).RUNTIME, folder) if folder.exists() else {}
            steps.append(step)
            log.info(
                "anchor %s: %.0f s, peak %.1f GiB, rc %d", name, step.wall_s, step.peak_rss_bytes / GiB, step.returncode
            )
            shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(anchors_out / f"{name}-cache", ignore_errors=True)
            results["steps"] = [asdict(s) for s in steps]
            _save(work, results)

        # 2. the project's stages in a workspace of their own
        ws = work / "project"
        ws.mkdir(exist_ok=True)
        import yaml

        (ws / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        arts = ws / layout.ARTIFACTS
        stage_cmds = [("source", ["source"], layout.source_dir(arts)), ("ov-ir", ["ov_ir"], layout.ov_ir_dir(arts))]
        stage_cmds += [(f"build@{t}", ["build", t], layout.target_dir(t, arts)) for t in TARGETS]
        for name, argv, out_folder in stage_cmds:
            if ("project", name) in done and out_folder.is_dir():
                steps.append(Step(**done[("project", name)]))
                continue
            cmd = [sys.executable, "-m", f"stages.{argv[0]}", *argv[1:]]
            step = run_measured(
                Step(name, "project", cmd), ws, logs / f"project-{name}.log", dict(env, PYTHONPATH=str(project_root))
            )
            step.output_bytes = fsutil.dir_size(out_folder) if out_folder.exists() else 0
            if name.startswith("build@"):
                t = name.split("@")[1]
                step.weights_sha256 = weights_digest(params.family(t).RUNTIME, out_folder)
            steps.append(step)
            log.info(
                "project %s: %.0f s, peak %.1f GiB, rc %d",
                name,
                step.wall_s,
                step.peak_rss_bytes / GiB,
                step.returncode,
            )
            if step.returncode != 0:
                break
        results["steps"] = [asdict(s) for s in steps]

        # 3. decode speed against the bandwidth bound
        if decode:
            results.update(measure_decode(params, arts, work, results))
        results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return results
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def run_main_job_bench(
    project_root: Path, work: Path, model: Path | None, *, keep: bool = False, resume: bool = False
) -> dict[str, Any]:
    """``main_job.run_main_job`` on ``model`` (or a Phi-3-mini-shaped model made in ``work``), then clean up."""
    from pipeline.bench.main_job import require_kept_run, run_main_job

    project_root, work = project_root.resolve(), work.resolve()
    if resume:
        require_kept_run(work)  # before a 7.7 GB model is made
    work.mkdir(parents=True, exist_ok=True)
    made = model is None
    model = (work / "phi3-mini-shaped") if model is None else model.resolve()
    if made and not model.is_dir():
        fsutil.require_disk(work, int(7.7e9), "the Phi-3-mini-shaped model")
    try:
        if made and not (model / "model.safetensors.index.json").is_file():
            make_phi3_mini_shaped(model, tokenizer_source(project_root))
        results = run_main_job(project_root, work, model, resume=resume)
        results["machine"] = machine_facts()
        return results
    finally:
        if not keep:
            shutil.rmtree(work / "project", ignore_errors=True)
            shutil.rmtree(work / "cache", ignore_errors=True)
            if made:
                shutil.rmtree(model, ignore_errors=True)


DECODED = (
    ("ov-int4", "ov-int4"),
    ("ov-npu-int4", "ov-npu-int4"),
    ("ort-cpu-int4", "ort-cpu-int4"),
    ("ort-dml-int4 (CPU provider)", "ort-dml-int4"),
)


def measure_decode(params: Any, arts: Path, work: Path, results: dict[str, Any]) -> dict[str, Any]:
    from pipeline.bench import decode as dec
    from pipeline.targets.base import RuntimeOptions

    numerics = params.validation.runtime.openvino.model_dump(exclude_none=True)
    tuned, one_thread = RuntimeOptions(openvino=numerics), RuntimeOptions(openvino=numerics, threads=1)

    out: dict[str, Any] = {
        "bandwidth_bytes_per_s": dec.memory_bandwidth(),
        "bandwidth_1_thread_bytes_per_s": dec.memory_bandwidth(threads=1),
        "decode": {},
    }
    for label, target in DECODED:
        folder = layout.target_dir(target, arts)
        if not folder.is_dir():
            continue
        family, settings = params.family(target), params.target(target).build
        wbytes = dec.weight_bytes_per_token(family, folder)
        ms = dec.decode_ms_per_token(family, settings, folder, tuned)
        ms_default = dec.decode_ms_per_token(family, settings, folder, None)
        ms_one = dec.decode_ms_per_token(family, settings, folder, one_thread)
        bound = 1000.0 * wbytes / out["bandwidth_bytes_per_s"]
        out["decode"][label] = {
            "ms_per_token": ms,
            "ms_per_token_runtime_defaults": ms_default,
            "ms_per_token_1_thread": ms_one,
            "weight_bytes_per_token": wbytes,
            "bound_ms": bound,
            "ratio": ms / bound,
        }
        log.info("decode %s: %.1f ms/token (runtime defaults %.1f), bound %.1f ms, ratio %.2f",
                 label, ms, ms_default, bound, ms / bound)  # fmt: skip
        _save(work, {**results, **out})
    return out


def _save(work: Path, results: dict[str, Any]) -> None:
    (work / "results.json").write_text(json.dumps(results, indent=2, default=str))


def _load(work: Path) -> dict[str, Any]:
    path = work / "results.json"
    return json.loads(path.read_text()) if path.is_file() else {}
