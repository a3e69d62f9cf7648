"""What every stage entry point does around the library call.

Read and check params (one line per problem, before any work), clear temporary folders left by killed
runs, check free RAM and disk against the stage's need (``resource_plan``: one line when it cannot fit),
produce the output in a temporary sibling folder and move it into place only when complete, log what the
run measured outside the output (``runlog``: the output's bytes depend on its inputs only), and turn known
failures into one line and an exit code (``console.run_main``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from pipeline import fsutil, layout, resource_plan, runlog
from pipeline.console import run_main
from pipeline.params import Params, load_params


def run_output_stage(
    name: str,
    params_path: str,
    out_dir: Callable[[Params], Path],
    produce: Callable[[Params, Path], Any],
    after: Callable[[Any], None] | None = None,
) -> NoReturn:
    """Run ``produce(params, tmp)`` into ``out_dir(params)`` atomically, then ``after(result)``.

    ``after`` runs once the output is in place: the validate stage checks its gates there, so the metrics
    of a failed gate can still be inspected.
    """

    def body() -> None:
        params = load_params(params_path, check_search=False)  # a stage never reads a search: block
        out = out_dir(params)
        for folder in {out.parent, *layout.OUTPUT_PARENTS}:  # whatever a killed run of any stage left
            fsutil.clean_stale_tmp(folder)
        resource_plan.require(params, name, out.parent)
        with runlog.logged_run(name), fsutil.atomic_dir(out) as tmp:
            result = produce(params, tmp)
        if after is not None:
            after(result)

    run_main(body, name=name)


def run_target_stage(
    stage: str,
    target: str,
    params_path: str,
    out_dir: Callable[[str], Path],
    produce: Callable[[Params, str, Path], Any],
    after: Callable[[Any], None] | None = None,
) -> NoReturn:
    """``run_output_stage`` for a per-target stage (``<stage>@<target>``); an unknown target is one line."""

    def checked_out(params: Params) -> Path:
        params.target(target)
        return out_dir(target)

    run_output_stage(f"{stage}@{target}", params_path, checked_out, lambda p, tmp: produce(p, target, tmp), after)
