"""Shared fixtures: the embedded model (built once per session), a fake Hub on loopback, params helpers."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from pipeline.numerics import use_portable_cpu_math
from tests.support.hub_server import FakeHub
from tests.support.signed_project import signed as signed

# What the tests compute in-process (the session's embedded model, reference, builds) is computed as the stages
# compute it: the same CPU math profile, set before anything imports PyTorch.
use_portable_cpu_math()

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    if os.environ.get("AIPC_HEAVY") == "1":
        return
    skip = pytest.mark.skip(reason="heavy (full-size) test: set AIPC_HEAVY=1 to run")
    for item in items:
        if "heavy" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def aipc_cache(tmp_path_factory) -> Path:
    """One build cache for the whole session (the embedded model is trained once, ~45 s)."""
    path = Path(os.environ.get("AIPC_TEST_CACHE") or tmp_path_factory.mktemp("aipc-cache"))
    os.environ["AIPC_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def raw_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture
def params_raw(raw_params) -> dict:
    """A private deep copy of the project's params.yaml, for tests to modify."""
    return copy.deepcopy(raw_params)


@pytest.fixture(scope="session")
def embedded_dir(tmp_path_factory, raw_params) -> Path:
    """The default embedded model as an HF folder (shared, read-only by convention)."""
    from pipeline.params import validate_params
    from pipeline.sources import fetch_source

    params = validate_params(raw_params)
    out = tmp_path_factory.mktemp("embedded")
    fetch_source(params, out)
    return out


@pytest.fixture
def fake_hub():
    with FakeHub() as hub:
        yield hub


@pytest.fixture
def hub_env(fake_hub, tmp_path, monkeypatch):
    """Point huggingface_hub at the fake Hub with an empty cache and no token."""
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("AIPC_DOWNLOADS", str(tmp_path / "downloads"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return fake_hub


@pytest.fixture(scope="session")
def default_params(raw_params):
    from pipeline.params import validate_params

    return validate_params(copy.deepcopy(raw_params))


@pytest.fixture(scope="session")
def artifacts_root(tmp_path_factory, embedded_dir, default_params) -> Path:
    """An artifacts/ tree with source, the shared OpenVINO IR and the reference, built once per session."""
    import shutil

    from pipeline import layout
    from pipeline.openvino_ir.export import export_fp_ir
    from pipeline.validate.reference import build_reference

    root = tmp_path_factory.mktemp("artifacts")
    shutil.copytree(embedded_dir, layout.source_dir(root))
    export_fp_ir(layout.source_dir(root), _mk(layout.ov_ir_dir(root)))
    build_reference(default_params, layout.source_dir(root), _mk(layout.reference_dir(root)))
    return root


def _mk(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


_BUILT: dict = {}


@pytest.fixture(scope="session")
def build(artifacts_root, default_params):
    """build(name, params=None) → the target folder, built once per (name, params) in the session root."""
    from pipeline import layout
    from pipeline.build import build_target
    from pipeline.fsutil import atomic_dir

    def _build(name: str, params=None, root: Path | None = None) -> Path:
        params = params or default_params
        root = root or artifacts_root
        key = (name, root, params.model_dump_json())
        if key not in _BUILT:
            out = layout.target_dir(name, root)
            with atomic_dir(out) as tmp:
                build_target(params, name, tmp, root)
            _BUILT[key] = out
        return _BUILT[key]

    return _build


@pytest.fixture(scope="session")
def repro_project(tmp_path_factory, embedded_dir) -> Path:
    """A fresh copy of the project after a full `dvc repro` (shared by the DVC and publish tests; tests that
    change params restore them and repro again, which DVC's run cache makes cheap)."""
    import time

    from tests.test_dvc_source import dvc, project_copy

    proj = project_copy(tmp_path_factory.mktemp("pipeline") / "proj")
    t0 = time.monotonic()
    proc = dvc(["repro"], proj)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (proj / ".first_repro_seconds").write_text(f"{time.monotonic() - t0:.1f}")
    return proj


@contextmanager
def edited_params(project: Path, old: str, new: str) -> Iterator[None]:
    """``project``'s params.yaml with the first ``old`` replaced by ``new`` for the block; afterwards the
    original is put back and re-built, so the shared ``repro_project`` is what the next test expects."""
    from tests.test_dvc_source import dvc

    params = project / "params.yaml"
    text = params.read_text()
    edited = text.replace(old, new, 1)
    assert edited != text, f"{old!r} is not in params.yaml"
    params.write_text(edited)
    try:
        yield
    finally:
        params.write_text(text)
        restored = dvc(["repro"], project)
        assert restored.returncode == 0, restored.stdout[-2000:] + restored.stderr[-2000:]


_VARIANTS: dict = {}


@pytest.fixture(scope="session")
def variant(tmp_path_factory, raw_params):
    """variant(model) → (params, artifacts root) with source, shared IR and reference built for that `models`
    entry (e.g. the embedded LongRoPE or Phi-4-mini shape), once per session."""
    from pipeline import layout
    from pipeline.openvino_ir.export import export_fp_ir
    from pipeline.params import validate_params
    from pipeline.sources import fetch_source
    from pipeline.validate.reference import build_reference

    def _variant(model: str):
        if model not in _VARIANTS:
            raw = copy.deepcopy(raw_params)
            raw["model"] = model
            params = validate_params(raw)
            root = tmp_path_factory.mktemp(model)
            fetch_source(params, _mk(layout.source_dir(root)))
            export_fp_ir(layout.source_dir(root), _mk(layout.ov_ir_dir(root)))
            build_reference(params, layout.source_dir(root), _mk(layout.reference_dir(root)))
            _VARIANTS[model] = (params, root)
        return _VARIANTS[model]

    return _variant
