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
    if ns.mode == "low-memory":
        from pipeline.ort_builder import lowmem

        lowmem.install(ns.tmp)
    sys.argv = ["onnxruntime_genai.models.builder", *args]
    # The builder has no main(); run its __main__ block exactly as `python -m` would.
    runpy.run_module("onnxruntime_genai.models.builder", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
