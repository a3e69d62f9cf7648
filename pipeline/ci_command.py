"""`aipc ci`: what the publish workflow's fan-out needs (.github/workflows/publish.yml)."""

from __future__ import annotations

import json

import click

from pipeline.console import out_console as console
from pipeline.console import params_option, run_main


@click.group("ci")
def ci_command() -> None:
    """What the publish workflow's fan-out needs (.github/workflows/publish.yml)."""


@ci_command.command("targets")
@params_option
@click.option("--disabled", is_flag=True, help="The disabled targets instead of the enabled ones.")
@click.option("--as-stages", "stage", default=None, help="Print STAGE@<target> for each, space-separated.")
def ci_targets(params_path: str, disabled: bool, stage: str | None) -> None:
    """The enabled (or disabled) targets as a JSON list: the build matrix comes from params.yaml, not the YAML."""

    def body() -> None:
        from pipeline.params import load_params

        p = load_params(params_path)
        names = [n for n, t in p.targets.items() if t.enabled != disabled]
        click.echo(" ".join(f"{stage}@{n}" for n in names) if stage else json.dumps(names))

    run_main(body, name="aipc ci targets")


@ci_command.command("merge-locks")
@click.argument("base", type=click.Path(dir_okay=False))
@click.argument("jobs", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--out", default="dvc.lock", show_default=True, help="Where to write the merged lock.")
def ci_merge_locks(base: str, jobs: tuple[str, ...], out: str) -> None:
    """BASE (the shared stages' dvc.lock) with each target job's own entries from JOBS — refused if a job
    changed anything but its own target's stages (BASE itself may be among JOBS: it changes nothing)."""

    def body() -> None:
        from pathlib import Path

        from pipeline.lock_merge import merge_locks, write_lock

        merged, by_job = merge_locks(Path(base), [Path(j) for j in jobs])
        write_lock(merged, Path(out))
        for job, stages in by_job.items():
            console.print(f"{job}: {', '.join(stages) or 'nothing changed'}", highlight=False)

    run_main(body, name="aipc ci merge-locks")
