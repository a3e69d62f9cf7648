"""Stage `report`: metrics.json (DVC metrics), plots.json (DVC plots), report.md and report.html."""

from __future__ import annotations

import click

from pipeline import layout
from pipeline.report import write_report
from pipeline.stage import run_output_stage


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
def main(params_path: str) -> None:
    run_output_stage("report", params_path, lambda p: layout.report_dir(), write_report)


if __name__ == "__main__":
    main()
