"""Build one target: checks before any work, the family's build into a temporary folder, target.json.

The stage ``build@<target>`` calls ``build_target`` inside ``atomic_dir``: the artifact appears at
``artifacts/targets/<name>`` only once complete. Before any work the settings are checked against the
real source shape (e.g. a group size that does not divide a layer) and the estimated RAM and disk
against what is free, so a build fails in a second with a clear line instead of being OOM-killed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from pipeline import fsutil, layout, resources, versions
from pipeline.errors import BuildError, ParamsError
from pipeline.params import Params
from pipeline.targets import family_module
from pipeline.targets.base import BuildContext, ModelDims

log = logging.getLogger(__name__)

TARGET_RECORD = "target.json"


def require_source(root: Path) -> Path:
    src = layout.source_dir(root)
    if not (src / "config.json").is_file():
        raise BuildError(f"{src} is missing or incomplete", fix="run `dvc repro source` (or the whole pipeline) first")
    return src


def build_target(params: Params, name: str, work_dir: Path, root: Path = layout.ARTIFACTS) -> dict[str, Any]:
    target = params.target(name)
    record: dict[str, Any] = {"target": name, "family": target.family, "description": target.description}
    if not target.enabled:
        record["status"] = "disabled"
        fsutil.write_json(work_dir / TARGET_RECORD, record)
        log.info("%s is disabled in params.yaml: nothing to build", name)
        return record

    module = family_module(target.family)
    settings = params.settings(name)
    source = require_source(root)
    dims = ModelDims.from_config(source / "config.json")
    problems = module.preflight(settings, dims)
    if problems:
        raise ParamsError([f"params.yaml: targets.{name}.build.{p}" for p in problems])
    weights = resources.weights_bytes(source)
    ram, disk = module.estimate(settings, weights)
    resources.require_ram(ram, f"building {name}")
    fsutil.require_disk(work_dir, disk, f"building {name}")

    ctx = BuildContext(
        target=name, settings=settings, source_dir=source, work_dir=work_dir, artifacts_dir=root, dims=dims
    )
    t0 = time.monotonic()
    with resources.PeakRSS() as peak:
        facts = module.build(ctx)
    source_record = fsutil.read_json(source / "source.json") if (source / "source.json").is_file() else {}
    record.update(
        {
            "status": "built",
            "runtime": module.RUNTIME,
            "settings": settings.model_dump(mode="json"),
            "source": {
                "model": params.model,
                "repo": source_record.get("repo"),
                "resolved_revision": source_record.get("resolved_revision"),
            },
            "build": facts,
            "seconds": round(time.monotonic() - t0, 2),
            "peak_rss_bytes": peak.peak.rss,
            "size_bytes": fsutil.dir_size(work_dir),
            "tools": versions.tool_versions(),
        }
    )
    fsutil.write_json(work_dir / TARGET_RECORD, record)
    log.info("%s built in %.1f s (peak RSS %.2f GiB)", name, record["seconds"], peak.peak.rss / 2**30)
    return record
