"""`aipc`: the command line around the DVC pipeline.

`dvc repro` builds and validates; `aipc` is for everything around it: checking the machine, reading
params, printing the report, publishing, pulling and checking artifacts. Every command has `--help`,
reads params.yaml from the current folder unless told otherwise, and turns known failures into one line.
"""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from pipeline.console import run_main

console = Console()
STATUS_STYLE = {"ok": "green", "info": "cyan", "warn": "yellow", "fail": "bold red"}

params_option = click.option(
    "--params", "params_path", default="params.yaml", show_default=True, help="The params file to read."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aipc-pipeline")
def main() -> None:
    """Convert, quantize, validate and ship Phi-3 for AI PCs (OpenVINO CPU/GPU/NPU, ONNX Runtime GenAI DirectML/CPU).

    The pipeline itself runs with `dvc repro`; these commands surround it.
    """


@main.command()
@params_option
@click.option("--json", "as_json", is_flag=True, help="Print the fully resolved params as JSON.")
def params(params_path: str, as_json: bool) -> None:
    """Validate params.yaml and show what will be built (defaults filled in)."""

    def body() -> None:
        from pipeline.params import load_params

        p = load_params(params_path)
        if as_json:
            data = p.model_dump(mode="json")
            data["resolved_build_settings"] = {n: p.settings(n).model_dump(mode="json") for n in p.targets}
            click.echo(json.dumps(data, indent=2))
            return
        console.print(f"model: [bold]{p.model}[/] ({p.source.kind}) {getattr(p.source, 'repo', '')}")
        table = Table("target", "family", "enabled", "build settings")
        for name, t in p.targets.items():
            s = p.settings(name).model_dump(exclude_defaults=False)
            table.add_row(name, t.family, "yes" if t.enabled else "no", _short(s))
        console.print(table)

    run_main(body, name="aipc params")


def _short(settings: dict) -> str:
    parts = []
    for k, v in settings.items():
        if isinstance(v, dict):
            continue
        parts.append(f"{k}={v}")
    return " ".join(parts)


@main.command()
@params_option
def doctor(params_path: str) -> None:
    """Check toolkits, devices (NPU? DirectML?), RAM and disk for the configured model; non-zero exit on failure."""

    def body() -> None:
        from pipeline import doctor as doc
        from pipeline.errors import PipelineError
        from pipeline.params import load_params

        checks = doc.run(load_params(params_path))
        table = Table("check", "status", "detail", title="aipc doctor")
        for c in checks:
            table.add_row(c.name, f"[{STATUS_STYLE[c.status]}]{c.status}[/]", c.detail)
        console.print(table)
        failed = [c for c in checks if c.status == "fail"]
        if failed:
            raise PipelineError(f"{len(failed)} check(s) failed: {', '.join(c.name for c in failed)}")

    run_main(body, name="aipc doctor")


@main.command()
@params_option
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON instead of a table.")
def report(params_path: str, as_json: bool) -> None:
    """Print every target's validation (device, gates, quality, speed) from artifacts/."""

    def body() -> None:
        from pipeline import report as rep
        from pipeline.params import load_params

        data = rep.collect(load_params(params_path))
        if as_json:
            click.echo(json.dumps(rep.flat_metrics(data), indent=2))
            return
        ref = data["reference"]
        if ref:
            console.print(
                f"reference: transformers fp32 on {ref.get('device')}, held-out perplexity "
                f"{ref.get('heldout_perplexity', float('nan')):.3f}"
            )
        short = [("gates", "gates"), ("exact", "exact"), ("tf", "TF top-1"), ("ppl", "ppl (Δ)"), ("sim", "sim"),
                 ("tok", "tok ids"), ("ttft", "TTFT ms"), ("tpot", "ms/tok"), ("size", "MB")]  # fmt: skip
        table = Table("target", "device", *(h for _, h in short), title=f"validation — model {data['model']}")
        notes = []
        for row in rep.table_rows(data):
            r = data["targets"][row["target"]]
            device = r.get("device", row["device"]) if r.get("status") == "measured" else row["device"]
            if r.get("proxy"):
                device += " *"
                notes.append(
                    f"* {row['target']}: intended for {r['intended_device']}; ran on {r['device']} — {r['proxy']}"
                )
            style = {"pass": "green", "FAIL": "bold red"}.get(row["gates"], "")
            cells = [row[k] if k != "gates" or not style else f"[{style}]{row[k]}[/]" for k, _ in short]
            table.add_row(row["target"], device, *cells)
        console.print(table)
        for note in notes:
            console.print(note, highlight=False)
        failed = [r["target"] for r in rep.table_rows(data) if r["gates"] == "FAIL"]
        if failed:
            console.print(f"[bold red]gates failed:[/] {', '.join(failed)}")

    run_main(body, name="aipc report")


@main.command()
@click.option("--work", default=".bench", show_default=True, help="Scratch folder (needs ~70 GB free).")
@click.option("--docs", default="docs", show_default=True, help="Where benchmarks.md/json are written.")
@click.option("--keep", is_flag=True, help="Keep the model and artifacts made (default: remove them).")
@click.option("--no-decode", is_flag=True, help="Skip the decode-speed measurements.")
def bench(work: str, docs: str, keep: bool, no_decode: bool) -> None:
    """Full-size benchmark: Phi-3-mini-shaped model, anchor commands vs the project's stages (~30-40 min)."""

    def body() -> None:
        from pathlib import Path

        from pipeline import bench as b

        command = "aipc bench" + (" --no-decode" if no_decode else "")
        results = b.run_bench(Path("."), Path(work), keep=keep, decode=not no_decode)
        b.write_results(results, Path(docs), command)
        console.print(b.markdown(results, command))

    run_main(body, name="aipc bench")


if __name__ == "__main__":
    main()
