"""Stage `ov-ir`: the single FP OpenVINO IR (+ tokenizers) that every OpenVINO target derives from."""

from __future__ import annotations

import time

import click

from pipeline import fsutil, layout, resources, versions
from pipeline.build import require_source
from pipeline.console import run_main
from pipeline.targets import ov_ir


def body() -> None:
    source = require_source(layout.ARTIFACTS)
    weights = resources.weights_bytes(source)
    resources.require_ram(int(1.2 * weights), "exporting the OpenVINO IR")
    out = layout.ov_ir_dir()
    fsutil.clean_stale_tmp(out.parent)
    fsutil.require_disk(out.parent, int(1.05 * weights), "the OpenVINO FP IR")
    with fsutil.atomic_dir(out) as tmp:
        t0 = time.monotonic()
        with resources.PeakRSS() as peak:
            facts = ov_ir.export_fp_ir(source, tmp)
        facts.update(
            seconds=round(time.monotonic() - t0, 2), peak_rss_bytes=peak.peak.rss, tools=versions.tool_versions()
        )
        fsutil.write_json(tmp / "ov_ir.json", facts)


@click.command()
def main() -> None:
    run_main(body, name="ov-ir")


if __name__ == "__main__":
    main()
