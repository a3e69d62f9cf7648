"""Child-process entry that runs onnxruntime-genai's model builder, stock or low-memory.

``python -m pipeline.ort_builder.child --mode stock|low-memory --tmp DIR -- <builder args>``
"""

from __future__ import annotations

import argparse
import runpy
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["stock", "low-memory"], default="stock")
    parser.add_argument("--tmp", required=True)
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    ns = parser.parse_args(argv)
    args = ns.rest[1:] if ns.rest and ns.rest[0] == "--" else ns.rest
    pin_build_stamp()
    if ns.mode == "low-memory":
        from pipeline.ort_builder import lowmem

        lowmem.install(ns.tmp)
    sys.argv = ["onnxruntime_genai.models.builder", *args]
    # The builder has no main(); run its __main__ block exactly as `python -m` would.
    runpy.run_module("onnxruntime_genai.models.builder", run_name="__main__", alter_sys=True)


def pin_build_stamp() -> None:
    """The builder stamps ``producer_version`` with "+<commit>" from ``git rev-parse HEAD`` run five folders above
    its own file — meant for its source tree, but with a virtual environment inside a project (``make install``
    makes ``.venv`` here) that is the *project's* commit: measured, the same ORT model built at two commits of
    this repository differed in that stamp alone, so every commit (and every teammate's clone at another one)
    rebuilt the ORT targets' bytes. The stamp is the installed wheel's own commit, as the builder does when no
    git repository is around it."""
    import importlib

    import onnxruntime_genai
    import onnxruntime_genai.models  # puts the builder's folder on sys.path

    commit = getattr(onnxruntime_genai, "__commit__", None) or None
    # builder.py imports its classes as the top-level package `builders` (see lowmem): patch the one it uses
    base = importlib.import_module("builders.base")
    base.Model.get_genai_commit = classmethod(lambda cls: commit)


if __name__ == "__main__":
    main()
