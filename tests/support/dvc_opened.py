"""Run DVC's CLI in this process and record which files under ``artifacts/`` it opened.

A no-op ``dvc repro`` is quick at any model size only if DVC's state database answers for every output: when it
misses, DVC re-reads the output to hash it, which is 7.6 GB at Phi-3-mini size. Wall time at embedded size cannot
show that (the outputs are 56 MB, and the shared 2-core CI machine's speed varies by more than their hashing
costs), the files DVC opens can. Python's audit hook sees every ``open`` that DVC's local filesystem makes.

Usage: ``python dvc_opened.py OUT.json <dvc args>`` in the project folder; OUT.json gets the sorted list of
``(path relative to the project, mode)`` DVC opened under ``artifacts/``, ``.gitignore`` files excepted (DVC reads
those to know what it ignores, not to hash).
"""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    out, args = sys.argv[1], sys.argv[2:]
    artifacts = os.path.realpath("artifacts") + os.sep
    opened: set[tuple[str, str | None]] = set()

    def hook(event: str, hook_args: tuple) -> None:
        if event != "open" or not isinstance(hook_args[0], (str, bytes, os.PathLike)):
            return
        path = os.path.realpath(os.fsdecode(hook_args[0]))
        if path.startswith(artifacts) and os.path.basename(path) != ".gitignore":
            opened.add((os.path.relpath(path), hook_args[1]))

    sys.addaudithook(hook)
    from dvc.cli import main as dvc_main

    rc = dvc_main(args)
    with open(out, "w") as f:
        json.dump(sorted(opened, key=lambda o: o[0]), f)
    return rc


if __name__ == "__main__":
    sys.exit(main())
