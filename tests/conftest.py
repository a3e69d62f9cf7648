"""Shared fixtures: the embedded model (built once per session), a fake Hub on loopback, params helpers.

The suite runs on pytest-xdist workers (``-n auto --dist loadfile``: a file's module fixtures stay on one worker).
What is expensive and read-only — the build cache, the embedded model, the built project — is made once for all
workers (``shared_once``); a worker that changes the built project gets its own copy of it.
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Callable, Iterator
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
# Two xdist workers share the 2 cores, each with PyTorch's 2 OpenMP threads: by default an OpenMP thread that
# waits spins on its core, taking it from the other worker. Measured on the 2-core Xeon (2026-12-06), the
# embedded model's training twice at once: 403 s each spinning, 146 s each with passive waiting (alone: 77 s
# spinning, 89 s passive); the same weights (sha256) either way — how a thread waits does not change what it
# computes. Read by libgomp when PyTorch loads it, and inherited by every stage the tests start.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]


def _shared_root(tmp_path_factory) -> Path | None:
    """The folder every xdist worker of this run sees (None without workers: the session is alone)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    return tmp_path_factory.getbasetemp().parent


def shared_once(tmp_path_factory, name: str, make: Callable[[Path], None]) -> Path:
    """``name``'s folder, made by ``make`` once per test run: the first worker to ask makes it under a file
    lock, the others wait and read it (a ``.done`` marker: a worker that failed half-way leaves no result)."""
    root = _shared_root(tmp_path_factory)
    if root is None:
        out = tmp_path_factory.mktemp(name)
        make(out)
        return out
    from filelock import FileLock

    out, done = root / f"shared-{name}", root / f"shared-{name}.done"
    with FileLock(str(root / f"shared-{name}.lock")):
        if not done.exists():
            if out.exists():
                shutil.rmtree(out)
            out.mkdir()
            make(out)
            done.touch()
    return out


# The slowest test files first (measured: a whole suite's --durations, 2-core Xeon, 2026-12-05), so that the
# xdist workers, handed whole files in collection order (pyproject: --no-loadscope-reorder; xdist's default
# hands out the files with the most tests first), do not end with one long file running alone. The family
# variants go first: their sources (minutes of training each) are then ready when the variants' other tests
# (reference, long context, collected late) need them.
SLOW_FIRST = (
    "tests/validate/test_family_variants.py",  # 258 s
    "tests/ci/test_publish_workflow.py",  # 216 s
    "tests/search/test_search_dvc.py",  # 172 s
    "tests/test_same_bytes.py",  # 135 s
    "tests/npu_lib/test_route.py",  # 135 s
    "tests/bench/test_bench.py",  # 115 s of its own
    "tests/faults/test_full_disk.py",  # 119 s
    "tests/test_pipeline_dvc.py",  # 116 s
    "tests/faults/test_kill.py",  # 99 s
    "tests/test_publish.py",  # 84 s
    "tests/test_install.py",  # 64 s
)


def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: files keep their order
    if os.environ.get("AIPC_HEAVY") == "1":
        return
    skip = pytest.mark.skip(reason="heavy (full-size) test: set AIPC_HEAVY=1 to run")
    for item in items:
        if "heavy" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def aipc_cache(tmp_path_factory) -> Path:
    """One build cache for the whole test run, every worker's (the embedded model is trained once, ~45 s; the
    cache is machine-wide by design, shared by concurrent checkouts)."""
    shared = _shared_root(tmp_path_factory)
    path = Path(
        os.environ.get("AIPC_TEST_CACHE")
        or (shared / "aipc-cache" if shared else tmp_path_factory.mktemp("aipc-cache"))
    )
    path.mkdir(parents=True, exist_ok=True)
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
    return shared_once(tmp_path_factory, "embedded", lambda out: fetch_source(params, out))


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
    change params restore them and repro again, which DVC's run cache makes cheap). Built once per test run;
    each xdist worker changes its own copy of it (70 MB, copied in a second, as the fault tests' copies)."""
    import time

    from tests.test_dvc_source import dvc, project_copy

    def make(folder: Path) -> None:
        proj = project_copy(folder / "proj")
        t0 = time.monotonic()
        proc = dvc(["repro"], proj)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        (proj / ".first_repro_seconds").write_text(f"{time.monotonic() - t0:.1f}")

    built = shared_once(tmp_path_factory, "pipeline", make) / "proj"
    if _shared_root(tmp_path_factory) is None:
        return built
    mine = tmp_path_factory.mktemp("pipeline") / "proj"
    shutil.copytree(built, mine, symlinks=True)
    return mine


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


def _variant_params(raw_params: dict, model: str):
    from pipeline.params import validate_params

    raw = copy.deepcopy(raw_params)
    raw["model"] = model
    return validate_params(raw)


@pytest.fixture(scope="session")
def variant_source(tmp_path_factory, raw_params):
    """variant_source(model) → that `models` entry's source folder (read-only by convention), made once per run."""
    from pipeline.sources import fetch_source

    def _source(model: str) -> Path:
        params = _variant_params(raw_params, model)
        return shared_once(tmp_path_factory, f"source-{model}", lambda out: fetch_source(params, out))

    return _source


_VARIANTS: dict = {}


@pytest.fixture(scope="session")
def variant(tmp_path_factory, raw_params, variant_source):
    """variant(model) → (params, artifacts root) with source, shared IR and reference built for that `models`
    entry (e.g. the embedded LongRoPE or Phi-4-mini shape), once per session."""
    from pipeline import layout
    from pipeline.openvino_ir.export import export_fp_ir
    from pipeline.validate.reference import build_reference

    def _variant(model: str):
        if model not in _VARIANTS:
            params = _variant_params(raw_params, model)
            root = tmp_path_factory.mktemp(model)
            shutil.copytree(variant_source(model), layout.source_dir(root))
            export_fp_ir(layout.source_dir(root), _mk(layout.ov_ir_dir(root)))
            build_reference(params, layout.source_dir(root), _mk(layout.reference_dir(root)))
            _VARIANTS[model] = (params, root)
        return _VARIANTS[model]

    return _variant
