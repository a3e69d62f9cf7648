"""Stage `report`: metrics.json (DVC metrics), plots.json (DVC plots), report.md and report.html."""

from __future__ import annotations

import click

from pipeline import layout
from pipeline.console import run_main
from pipeline.params import load_params
from pipeline.report import write_report


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
def main(params_path: str) -> None:
    run_main(lambda: write_report(load_params(params_path), layout.report_dir()), name="report")


if __name__ == "__main__":
    main()
