"""Stage `package@<target>`: a validated artifact as the unit that is published and pulled.

``artifacts/packages/<target>/`` = the artifact's files (hard links, no extra disk) + ``golden_outputs.jsonl``
+ ``README.md`` (model card) + ``manifest.json``. It is made only from an artifact whose validation passed
for exactly these bytes: every file's sha256 must equal what the validation stage hashed.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from pipeline import fsutil, layout, manifest, model_card
from pipeline.errors import PipelineError
from pipeline.params import Params
from pipeline.validate import harness

log = logging.getLogger(__name__)

GOLDEN = "golden_outputs.jsonl"
CARD = "README.md"
SKIP = {"target.json"}  # build record: summarised in the manifest


def packages_dir(root: Path = layout.ARTIFACTS) -> Path:
    return root / "packages"


def package_dir(name: str, root: Path = layout.ARTIFACTS) -> Path:
    return packages_dir(root) / name


def package_target(params: Params, name: str, out_dir: Path, root: Path = layout.ARTIFACTS) -> dict[str, Any]:
    target = params.target(name)
    if not target.enabled:
        fsutil.write_json(out_dir / "status.json", {"target": name, "status": "disabled"})
        return {"status": "disabled"}
    target_dir = layout.target_dir(name, root)
    vdir = layout.validation_dir(name, root)
    if not (vdir / "metrics.json").is_file():
        raise PipelineError(f"{name} has not been validated", fix=f"run `dvc repro validate@{name}` first")
    validation = fsutil.read_json(vdir / "metrics.json")
    if not validation.get("gates", {}).get("passed"):
        failures = "; ".join(validation.get("gates", {}).get("failures", [])) or validation.get("status")
        raise PipelineError(f"{name} did not pass validation ({failures}): it is not packaged")
    validated = {f["path"]: f["sha256"] for f in validation["artifact"]["files_sha256"]}
    current = {f["path"]: f["sha256"] for f in fsutil.file_table(target_dir)}
    if current != validated:
        changed = sorted(set(current.items()) ^ set(validated.items()))
        raise PipelineError(
            f"{name}: the artifact's files differ from the ones validated ({changed[0][0]} …)",
            fix=f"rerun `dvc repro validate@{name}`",
        )
    for path in sorted(current):
        if path in SKIP:
            continue
        fsutil.link_or_copy(target_dir / path, out_dir / path)
    shutil.copyfile(vdir / harness.GOLDEN, out_dir / GOLDEN)
    source_record = (
        fsutil.read_json(layout.source_dir(root) / "source.json")
        if (layout.source_dir(root) / "source.json").is_file()
        else {}
    )
    record = fsutil.read_json(target_dir / "target.json")
    draft = manifest.build(name, out_dir, record, validation, source_record)
    (out_dir / CARD).write_text(model_card.render(draft), encoding="utf-8")
    final = manifest.build(name, out_dir, record, validation, source_record)  # now including the card
    manifest.write(out_dir, final)
    log.info("%s packaged: %d files, fingerprint %s", name, len(final["files"]), final["fingerprint"])
    return final
