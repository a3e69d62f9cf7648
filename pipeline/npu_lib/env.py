"""The isolated virtual environment for intel-npu-acceleration-library (archived upstream, 2025-04).

Why isolated: its only PyPI release (1.4.0) is a source package whose dependencies clash with the main
environment (numpy<2, neural-compressor<3, setuptools<81, six, transformers 4.x), and whose CMake build
refuses every Linux but Ubuntu and downloads OpenVINO 2024.4 at build time. With OpenVINO 2026.x it
builds but fails at run time ("Unsupported dtype"), so it needs 2024.4 exactly.

How it is built, offline except for the package index:
1. a venv with the pinned dependency set (torch from the CPU wheel);
2. ``pip download openvino==2024.4.0`` (the wheel carries the C++ headers, libraries and CMake config) and
   repack it in the layout of the OpenVINO toolkit archive the library's CMake expects (an uncompressed tar);
3. the library's sdist, with its ``setup.py`` told ``-DOV_LIBRARY_URL=file://<that archive>`` (so no
   download and no ``lsb_release`` check), built with ``--no-build-isolation``;
4. the unversioned ``lib*.so`` links the library's loader opens (wheels cannot carry symlinks);
5. a smoke import; ``aipc-npu-lib-env.json`` records what was built, how long it took and its size.
The environment is keyed by this recipe (``spec_hash``) and lives in the build cache by default, so every
checkout on the machine shares one; it is built in a temporary folder and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from pipeline import fsutil
from pipeline.cache import cache_root
from pipeline.errors import BuildError

log = logging.getLogger(__name__)

LIBRARY = "intel-npu-acceleration-library==1.4.0"
OPENVINO = "openvino==2024.4.0"
REQUIREMENTS = (
    "torch==2.13.0",
    "numpy<2",
    "transformers==4.46.3",
    "neural-compressor<3",
    "setuptools<81",
    "six",
)
STAMP = "aipc-npu-lib-env.json"


def spec_hash() -> str:
    recipe = {"library": LIBRARY, "openvino": OPENVINO, "requirements": REQUIREMENTS, "python": sys.version_info[:2]}
    return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:12]


def default_env_dir() -> Path:
    return cache_root() / f"npu-lib-env-{spec_hash()}"


def resolve_env_dir(setting: str | None) -> Path:
    return Path(setting).expanduser().resolve() if setting else default_env_dir()


def env_python(env_dir: Path) -> Path:
    return env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def read_stamp(env_dir: Path) -> dict[str, Any] | None:
    stamp = env_dir / STAMP
    if not stamp.is_file() or not env_python(env_dir).exists():
        return None
    data = json.loads(stamp.read_text())
    return data if data.get("spec") == spec_hash() else None


def ensure_env(env_dir: Path) -> dict[str, Any]:
    """The environment's record; builds it first if it is missing or from another recipe."""
    existing = read_stamp(env_dir)
    if existing is not None:
        return existing
    return build_env(env_dir)


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise BuildError(f"building the npu-lib environment failed while {what}: {' | '.join(tail)}",
                         fix="check the package index is reachable (pip) and a C++ compiler and cmake are installed")  # fmt: skip


def build_env(env_dir: Path) -> dict[str, Any]:
    if shutil.which("cmake") is None or shutil.which("c++") is None:
        raise BuildError(
            "the npu-lib environment needs cmake and a C++ compiler",
            fix="install them (Debian: apt-get install cmake g++) or disable the npu-lib target",
        )
    env_dir.parent.mkdir(parents=True, exist_ok=True)
    fsutil.require_disk(env_dir.parent, 4 * 2**30, "the npu-lib environment")
    t0 = time.monotonic()
    staging = env_dir.parent / f"{fsutil.TMP_PREFIX}{env_dir.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix="aipc-npu-lib-"))
    try:
        log.info("npu-lib env: creating %s", staging)
        _run([sys.executable, "-m", "venv", str(staging)], "creating the venv")
        py = str(env_python(staging))
        pip = [py, "-m", "pip", "--disable-pip-version-check"]
        log.info("npu-lib env: installing %s", " ".join(REQUIREMENTS))
        # --no-compile: byte-compiling all of torch and transformers up front took 38 s of the 63 s install here;
        # Python compiles what the route imports when it first imports it
        _run([*pip, "install", "-q", "--no-compile", *REQUIREMENTS], "installing its dependencies")
        log.info("npu-lib env: repacking %s as the toolkit archive its CMake expects", OPENVINO)
        _run(
            [*pip, "download", "-q", "--no-deps", "--only-binary=:all:", OPENVINO, "-d", str(work)],
            "downloading openvino",
        )
        archive = repack_openvino_wheel(next(work.glob("openvino-*.whl")), work / "openvino_toolkit.tar")
        _run(
            [*pip, "download", "-q", "--no-deps", "--no-binary=:all:", LIBRARY, "-d", str(work)],
            "downloading the library",
        )
        src = _unpack_sdist(next(work.glob("intel_npu_acceleration_library-*.tar.gz")), work)
        _patch_setup(src / "setup.py")
        log.info("npu-lib env: building the library (C++, CMake)")
        env = dict(os.environ, AIPC_OV_LIBRARY_URL=archive.as_uri())
        _run([*pip, "install", "-q", "--no-build-isolation", "--no-deps", str(src)], "building the library", env=env)
        lib_dir = _site_packages(py) / "intel_npu_acceleration_library" / "lib"
        _link_unversioned(lib_dir)
        facts = _smoke(py)
        if env_dir.exists():
            shutil.rmtree(env_dir)
        os.replace(staging, env_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record = {
        "spec": spec_hash(),
        "path": str(env_dir),
        "library": LIBRARY,
        "openvino": OPENVINO,
        "requirements": list(REQUIREMENTS),
        "build_seconds": round(time.monotonic() - t0, 1),
        "size_bytes": fsutil.dir_size(env_dir),
        **facts,
    }
    (env_dir / STAMP).write_text(json.dumps(record, indent=2))
    log.info("npu-lib env ready in %.0f s (%.1f GB)", record["build_seconds"], record["size_bytes"] / 1e9)
    return record


def repack_openvino_wheel(wheel: Path, out: Path) -> Path:
    """Lay the PyPI wheel out as the toolkit archive: runtime/cmake, runtime/lib/intel64, python/openvino.

    The wheel's CMake config finds headers and libraries two levels above its own folder, so the package
    folder is kept at the archive root beside the toolkit-style folders the library's CMake reads.
    """
    root = out.parent / "openvino_toolkit"
    shutil.rmtree(root, ignore_errors=True)
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(out.parent / "wheel")
    pkg = out.parent / "wheel" / "openvino"
    shutil.copytree(pkg, root / "openvino", symlinks=True)
    shutil.copytree(pkg / "cmake", root / "runtime" / "cmake")
    shutil.copytree(pkg / "libs", root / "runtime" / "lib" / "intel64")
    shutil.copytree(pkg, root / "python" / "openvino", symlinks=True)
    # uncompressed: the archive lives for one build on the same disk, and gzip at tarfile's default level 9 took
    # 40 s of a 137 s environment build here (level 1: 5 s); CMake's FetchContent extracts a .tar as it does a .tgz
    with tarfile.open(out, "w") as tar:
        tar.add(root, arcname="openvino_toolkit")
    return out


def _unpack_sdist(sdist: Path, work: Path) -> Path:
    with tarfile.open(sdist) as tar:
        tar.extractall(work, filter="data")
    return next(p for p in work.iterdir() if p.is_dir() and p.name.startswith("intel_npu_acceleration_library-"))


def _patch_setup(setup_py: Path) -> None:
    text = setup_py.read_text()
    anchor = '"-DSETUPTOOL_BUILD=True",'
    if anchor not in text:
        raise BuildError("the library's setup.py is not the expected 1.4.0 one (cannot point it at the local OpenVINO)")
    setup_py.write_text(
        text.replace(anchor, anchor + '\n            "-DOV_LIBRARY_URL=" + os.environ["AIPC_OV_LIBRARY_URL"],', 1)
    )


def _site_packages(py: str) -> Path:
    out = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def _link_unversioned(lib_dir: Path) -> None:
    """The library's loader opens ``libopenvino.so``; wheels drop the toolkit's unversioned symlinks."""
    for f in lib_dir.glob("*.so.*"):
        base = lib_dir / (f.name.split(".so.")[0] + ".so")
        if not base.exists():
            base.symlink_to(f.name)


def _smoke(py: str) -> dict[str, Any]:
    code = (
        "import json, intel_npu_acceleration_library as l; from intel_npu_acceleration_library.backend import npu_available;"
        "import torch, transformers; print(json.dumps({'library_version': l.__version__, 'npu_available': bool(npu_available()),"
        "'torch': torch.__version__, 'transformers': transformers.__version__}))"
    )
    proc = subprocess.run([py, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"the built library does not import: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
