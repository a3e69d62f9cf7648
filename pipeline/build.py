"""Build one target: checks before any work, the family's build into a temporary folder, target.json.

The stage ``build@<target>`` calls ``build_target`` inside ``atomic_dir``: the artifact appears at
``artifacts/targets/<name>`` only once complete. Before any work the settings are checked against the
real source shape (e.g. a group size that does not divide a layer) and the estimated RAM and disk
against what is free, so a build fails in a second with a clear line instead of being OOM-killed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline import fmt, fsutil, layout, resources, versions
from pipeline.errors import ParamsError
from pipeline.params import Params
from pipeline.records import SourceRecord, TargetRecord, TargetSource
from pipeline.targets.base import BuildContext, ModelDims

log = logging.getLogger(__name__)


def build_target(params: Params, name: str, work_dir: Path, root: Path = layout.ARTIFACTS) -> TargetRecord:
    target = params.target(name)
    if not target.enabled:
        record = TargetRecord(target=name, family=target.family, description=target.description, status="disabled")
        record.write(work_dir)
        log.info("%s is disabled in params.yaml: nothing to build", name)
        return record

    family = params.family(name)
    settings = target.build
    source = layout.require_source(root)
    dims = ModelDims.from_config(source / "config.json")
    problems = family.preflight(settings, dims)
    if problems:
        raise ParamsError([f"params.yaml: targets.{name}.build.{p}" for p in problems])
    weights = resources.weights_bytes(source)
    need = family.estimate(settings, weights)
    resources.require_ram(need.ram, f"building {name}")
    fsutil.require_disk(work_dir, need.disk, f"building {name}")

    ctx = BuildContext(
        target=name, settings=settings, source_dir=source, work_dir=work_dir, artifacts_dir=root, dims=dims
    )
    facts = family.build(ctx)
    origin = SourceRecord.read(source) if SourceRecord.exists(source) else None
    record = TargetRecord(
        target=name,
        family=target.family,
        description=target.description,
        status="built",
        runtime=family.RUNTIME,
        settings=settings.model_dump(mode="json"),
        source=TargetSource(
            model=params.model,
            repo=origin.repo if origin else None,
            resolved_revision=origin.resolved_revision if origin else None,
        ),
        build=facts,
        size_bytes=fsutil.dir_size(work_dir),
        tools=versions.tool_versions(),
    )
    record.write(work_dir)
    log.info("%s built: %s", name, fmt.size(record.size_bytes))
    return record
