"""Bad params never cost an artifact: `dvc repro` stops at the params check with one line, before DVC removes
any stage's outputs.

Each case failed on the code before the check stage: the typo and the deleted key lost outputs (the uncached
source, which DVC cannot check out again; the ov-int4 validation), and the empty config.json ended in an
internal error with a traceback file.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.faults.conftest import error_lines, snapshot
from tests.test_dvc_source import dvc
from tests.test_pipeline_dvc import stages_run


@contextmanager
def params_text(project: Path, edit) -> Iterator[None]:
    path = project / "params.yaml"
    text = path.read_text()
    path.write_text(edit(text))
    try:
        yield
    finally:
        path.write_text(text)


def local_model(text: str, folder: Path) -> str:
    entry = f"  mine:\n    kind: local\n    path: {folder}\n"
    return text.replace("model: embedded\n", "model: mine\n", 1).replace("models:\n", "models:\n" + entry, 1)


def damaged_copy(src: Path, dest: Path, damage) -> Path:
    shutil.copytree(src, dest)
    for p in list(dest.iterdir()):
        if p.name == "source.json":
            p.unlink()
    damage(dest)
    return dest


def _device_deleted(text: str) -> str:
    start = text.index("  ov-int4:\n")
    at = text.index("    device: auto\n", start)
    return text[:at] + text[at + len("    device: auto\n") :]


CASES = {
    "model typo": (
        lambda text, tmp: text.replace("model: embedded\n", "model: no-such-model-xyz\n", 1),
        "model = 'no-such-model-xyz': no such entry under `models` (allowed: embedded,",
    ),
    "model near miss": (
        lambda text, tmp: text.replace("model: embedded\n", "model: embeded\n", 1),
        "(did you mean 'embedded'?",
    ),
    "value typo": (
        lambda text, tmp: text.replace("      weight_format: int4\n", "      weight_format: init4\n", 1),
        "targets.ov-int4.build.weight_format = 'init4': not an allowed value (did you mean 'int4'?",
    ),
    "key DVC reads deleted": (
        lambda text, tmp: _device_deleted(text),
        "targets.ov-int4.device: missing, and DVC reads it for stage validate@ov-int4",
    ),
    "empty config.json": (
        lambda text, tmp: local_model(text, tmp["empty-config"]),
        "config.json lacks hidden_size, intermediate_size",
    ),
    "truncated safetensors": (
        lambda text, tmp: local_model(text, tmp["truncated"]),
        "model.safetensors is truncated",
    ),
}


@pytest.fixture(scope="module")
def damaged(built, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("damaged")
    src = built / "artifacts/source"
    weights = "model.safetensors"
    return {
        "empty-config": damaged_copy(src, root / "empty-config", lambda d: (d / "config.json").write_text("{}")),
        "truncated": damaged_copy(
            src, root / "truncated", lambda d: (d / weights).write_bytes((d / weights).read_bytes()[:-4096])
        ),
    }


@pytest.mark.parametrize("case", list(CASES))
def test_bad_params_cost_no_artifact(case, built, damaged):
    edit, expected = CASES[case]
    before = snapshot(built)
    with params_text(built, lambda text: edit(text, damaged)):
        proc = dvc(["repro"], built)
    assert proc.returncode != 0
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and expected in lines[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert snapshot(built) == before, "a failed run changed or removed an artifact"
    after = dvc(["repro"], built)  # params put back: nothing to rebuild (at most the check runs again)
    assert after.returncode == 0 and stages_run(after) <= {"check-params"}, after.stdout[-2000:]
    assert snapshot(built) == before
