"""Stage `check-params`: params.yaml checked as every stage checks it, before DVC removes any stage's outputs.

DVC removes a stage's outputs before it runs the stage's command, and reads the params a stage declares only
then: a typo such as ``model: no-such-model`` cost the uncached source folder before anything could object.
This stage depends on every value in params.yaml and sits first in the DAG (the source stage depends on its
record), so a bad value stops ``dvc repro`` here with the project's one line, and no other output is touched.
"""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from pipeline import dvc_params, layout
from pipeline.errors import ParamsError
from pipeline.records import ParamsChecked
from pipeline.stage import run_output_stage

CHECKS = [
    "every key known and every value typed (schema of params.yaml and of each target family's settings)",
    "`model` names an entry of `models`",
    "each enabled target's build settings fit the model's dimensions (the family's preflight)",
    "every key a stage's `params:` in dvc.yaml names is written in params.yaml",
]


def check(params_path: str, out: Path) -> None:
    """The schema's checks ran when the stage loaded params; here, the keys DVC itself will read."""
    raw = yaml.safe_load(Path(params_path).read_text(encoding="utf-8"))
    lines = dvc_params.missing(raw, source=params_path)
    if lines:
        raise ParamsError(lines)
    ParamsChecked(checks=CHECKS).write(out)


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True)
def main(params_path: str) -> None:
    run_output_stage(
        "check-params", params_path, lambda p: layout.checked_params_dir(), lambda p, out: check(params_path, out)
    )


if __name__ == "__main__":
    main()
