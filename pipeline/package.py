"""Stage `package@<target>`: a validated artifact as the unit that is published and pulled.

``artifacts/packages/<target>/`` = the artifact's files (hard links, no extra disk) + ``golden_outputs.jsonl``
+ ``README.md`` (model card) + ``manifest.json``. It is made only from an artifact whose validation passed
for exactly these bytes: every file's sha256 must equal what the validation stage hashed.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from pipeline import fsutil, layout, manifest, model_card
from pipeline.errors import PipelineError
from pipeline.params import Params, Signing
from pipeline.records import (
    GoldenOutput,
    Manifest,
    ManifestSigning,
    PackageStatus,
    RuntimeSupport,
    SourceRecord,
    TargetRecord,
    ValidationResult,
)

log = logging.getLogger(__name__)

GOLDEN = "golden_outputs.jsonl"  # the validation's GoldenOutput rows, as shipped in a package
CARD = "README.md"
SKIP = {TargetRecord.FILE}  # build record: summarised in the manifest


def package_target(params: Params, name: str, out_dir: Path, root: Path = layout.ARTIFACTS) -> Manifest | None:
    target = params.target(name)
    if not target.enabled:
        PackageStatus(target=name, status="disabled").write(out_dir)
        return None
    target_dir = layout.target_dir(name, root)
    vdir = layout.validation_dir(name, root)
    if not ValidationResult.exists(vdir):
        raise PipelineError(f"{name} has not been validated", fix=f"run `dvc repro validate@{name}` first")
    validation = ValidationResult.read(vdir)
    if not validation.passed:
        raise PipelineError(f"{name} did not pass validation ({'; '.join(validation.failures())}): it is not packaged")
    assert validation.artifact is not None
    validated = validation.artifact.sha256_by_path()
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
    GoldenOutput.read_all(vdir)  # a readable record, then the same bytes as validated
    shutil.copyfile(vdir / GoldenOutput.FILE, out_dir / GOLDEN)
    source_dir = layout.source_dir(root)
    source = SourceRecord.read(source_dir) if SourceRecord.exists(source_dir) else None
    record = TargetRecord.read(target_dir)
    family = params.family(name)
    tools = validation.tools or {}
    support = RuntimeSupport(
        validated_with={p: tools[p] for p in family.RUNTIME_PACKAGES if p in tools},
        oldest_proven=dict(family.OLDEST_RUNTIME),
    )
    signing = signing_facts(params.publish.signing)
    draft = manifest.build(name, out_dir, record, validation, source, support, target.origin, signing)
    (out_dir / CARD).write_text(model_card.render_card(draft), encoding="utf-8")
    final = manifest.build(name, out_dir, record, validation, source, support, target.origin, signing)  # with the card
    final.write(out_dir)
    log.info("%s packaged: %d files, fingerprint %s", name, len(final.files), final.fingerprint)
    return final


def signing_facts(settings: Signing) -> ManifestSigning | None:
    """What the manifest and card say about the signature ``aipc publish`` will add (None: unsigned)."""
    if settings.method is None or settings.signer is None:
        return None
    if settings.method == "key":
        assert settings.public_key is not None
        files = [settings.public_key]
        command = f"model_signing verify key --signature model.sig --public_key {Path(settings.public_key).name} ."
    else:
        files = settings.certificate_chain
        chain = " ".join(f"--certificate_chain {Path(c).name}" for c in files)
        command = f"model_signing verify certificate --signature model.sig {chain} ."
    return ManifestSigning(
        signer=settings.signer, method=settings.method, verify_with=", ".join(files), verify_command=command
    )
