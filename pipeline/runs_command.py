"""`aipc runs`: what each stage's last run in this checkout cost, from the run log (``pipeline.runlog``)."""

from __future__ import annotations

import json

import click
from rich.table import Table

from pipeline.console import out_console as console
from pipeline.console import run_main


@click.command("runs")
@click.option("--json", "as_json", is_flag=True, help="Print the run logs as JSON instead of a table.")
def runs_command(as_json: bool) -> None:
    """What each stage's last run in this checkout cost (wall, peak RSS, host) — from .aipc/runs.

    Kept out of the artifacts so that an artifact's bytes depend on its inputs only: two machines, or two runs,
    build the same bytes, and a re-run that changed no weight re-runs nothing after it."""

    def body() -> None:
        from pipeline import runlog

        logs = runlog.read_all()
        if as_json:
            click.echo(json.dumps([r.model_dump(mode="json") for r in logs], indent=2))
            return
        if not logs:
            console.print(f"no run logged yet in {runlog.RUNS} (run `dvc repro`)")
            return
        table = Table("stage", "started (UTC)", "wall s", "peak RSS GiB", "CPU", "parts (s)")
        for r in logs:
            parts = ", ".join(f"{k} {v:.1f}" for k, v in r.details.items())
            table.add_row(
                r.stage, r.started_at, f"{r.seconds:.1f}", f"{r.peak_rss_bytes / 2**30:.2f}", r.host.cpu, parts
            )
        console.print(table)

    run_main(body, name="aipc runs")
