"""`aipc`: the command line around the DVC pipeline.

`dvc repro` builds and validates; `aipc` is for everything around it: checking the machine, reading
params, printing the report, publishing, pulling and checking artifacts. Every command has `--help`,
reads params.yaml from the current folder unless told otherwise, and turns known failures into one line.
"""

from __future__ import annotations

import json

import click
from rich.table import Table

from pipeline.bench.command import bench_command
from pipeline.ci_command import ci_command
from pipeline.console import out_console as console
from pipeline.console import params_option, run_main
from pipeline.npu_lib.cli import npu_lib_env_command
from pipeline.runs_command import runs_command
from pipeline.search.command import search_command

STATUS_STYLE = {"ok": "green", "info": "cyan", "warn": "yellow", "fail": "bold red"}


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
            data["resolved_build_settings"] = {n: t.build.model_dump(mode="json") for n, t in p.targets.items()}
            click.echo(json.dumps(data, indent=2))
            return
        console.print(f"model: [bold]{p.model}[/] ({p.source.kind}) {getattr(p.source, 'repo', '')}")
        table = Table("target", "family", "enabled", "build settings")
        for name, t in p.targets.items():
            table.add_row(name, t.family, "yes" if t.enabled else "no", _short(t.build.model_dump()))
        console.print(table)

    run_main(body, name="aipc params")


def _short(settings: dict) -> str:
    parts = []
    for k, v in settings.items():
        if isinstance(v, dict):
            continue
        parts.append(f"{k}={v}")
    return " ".join(parts)


@main.command("use-model")
@click.argument("name")
@params_option
def use_model(name: str, params_path: str) -> None:
    """Point params.yaml's `model:` at another entry of `models:` (e.g. phi-3-mini-4k), checked first."""

    def body() -> None:
        import re
        from pathlib import Path

        import yaml

        from pipeline.params import validate_params

        path = Path(params_path)
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text)
        raw["model"] = name
        validate_params(raw)  # unknown name, or a target that does not fit the model: one line, nothing written
        new, n = re.subn(r"(?m)^model:.*$", f"model: {name}", text, count=1)
        if n != 1:
            from pipeline.errors import ParamsError

            raise ParamsError([f"{path}: no top-level `model:` line to change"])
        path.write_text(new, encoding="utf-8")
        console.print(f"{path}: model: {name} — `dvc repro` now builds it")

    run_main(body, name="aipc use-model")


@main.group()
def env() -> None:
    """Isolated environments for targets whose dependencies clash with the main one."""


env.add_command(npu_lib_env_command, "npu-lib")


@main.command()
@params_option
def doctor(params_path: str) -> None:
    """Check toolkits, devices (NPU? DirectML?), RAM and disk for the configured model; non-zero exit on failure."""

    def body() -> None:
        from pathlib import Path

        from pipeline import doctor as doc
        from pipeline.errors import PipelineError
        from pipeline.params import load_params

        # a deployment machine has no project: the toolkit and device checks still apply
        here = Path(params_path).is_file() or params_path != "params.yaml"
        checks = doc.run(load_params(params_path) if here else None)
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
        ref = data.reference
        if ref:
            console.print(
                f"reference: transformers fp32 on {ref.device}, held-out perplexity {ref.heldout_perplexity:.3f}"
            )
        short = [c for c in rep.COLUMNS if c.short]
        table = Table("target", "device", *(c.short for c in short), title=f"validation — model {data.model}")
        notes = []
        for t, row in zip(data.targets, rep.table_rows(data), strict=True):
            r = t.measured
            device = r.device if r else row["device"]
            if r and r.proxy:
                device += " *"
                notes.append(f"* {t.name}: intended for {r.intended_device}; ran on {r.device} — {r.proxy}")
            style = {"pass": "green", "FAIL": "bold red"}.get(row["gates"], "")
            cells = [row[c.key] if c.key != "gates" or not style else f"[{style}]{row[c.key]}[/]" for c in short]
            table.add_row(t.name, str(device), *cells)
        console.print(table)
        for note in notes:
            console.print(note, highlight=False)
        failed = [row["target"] for row in rep.table_rows(data) if row["gates"] == "FAIL"]
        if failed:
            console.print(f"[bold red]gates failed:[/] {', '.join(failed)}")

    run_main(body, name="aipc report")


@main.command()
@params_option
@click.option("--target", "targets", multiple=True, help="Target to publish (repeatable; default: every enabled one).")
@click.option("--remote", default=None, help="DVC remote (default: params publish.dvc_remote).")
@click.option("--hf", "to_hf", is_flag=True, help="Also upload each package to a Hugging Face repo.")
@click.option("--hf-repo-prefix", default=None, help="org/name → org/name-<target> (default: params).")
@click.option("--no-dvc", is_flag=True, help="Skip the DVC push (Hugging Face only).")
def publish(
    params_path: str,
    targets: tuple[str, ...],
    remote: str | None,
    to_hf: bool,
    hf_repo_prefix: str | None,
    no_dvc: bool,
) -> None:
    """Push validated packages (artifacts/packages/<target>) to the DVC remote and optionally to the Hub.

    Refuses any target whose validation did not pass for exactly the bytes in its package."""

    def body() -> None:
        from pipeline import publish as pub
        from pipeline.params import load_params

        records = pub.publish(
            load_params(params_path), list(targets) or None, remote=remote, to_hf=to_hf,
            hf_prefix=hf_repo_prefix, push_dvc=not no_dvc,
        )  # fmt: skip
        for r in records:
            signed = f"signed by {r.signed_by}" if r.signed_by else "unsigned"
            console.print(f"published [bold]{r.target}[/] ({r.fingerprint}, {signed}) → {r.where()}")

    run_main(body, name="aipc publish")


def verify_options(fn):
    """What a signature must verify against (else AIPC_VERIFY_PUBLIC_KEY / _CERT_CHAIN; neither: "unsigned" is said)."""
    fn = click.option("--certificate-chain", "chain", multiple=True, help="The team CA's certificate(s).")(fn)
    return click.option("--public-key", help="The team's public key (PEM): refuse what it did not sign.")(fn)


@main.command()
@click.argument("target")
@click.option("--out", default=None, help="Destination folder (default: ./<target>).")
@click.option("--from", "source", type=click.Choice(["dvc", "hf"]), default="dvc", show_default=True)
@click.option(
    "--repo", default=".", show_default=True, help="Git repo (path or URL) holding the pipeline, for --from dvc."
)
@click.option("--rev", default=None, help="Git revision (dvc) or Hub revision (hf).")
@click.option("--hf-repo", default=None, help="Hugging Face repo id, for --from hf.")
@click.option("--remote", default=None, help="DVC remote to fetch from (default: the repo's default remote).")
@click.option(
    "--fingerprint", default=None, help="Refuse unless the manifest has this fingerprint (printed by publish)."
)
@click.option("--replace", is_flag=True, help="--out holds an earlier version: swap it for this one once verified.")
@verify_options
def pull(
    target: str, out: str | None, source: str, repo: str, rev: str | None, hf_repo: str | None, remote: str | None,
    fingerprint: str | None, replace: bool, public_key: str | None, chain: tuple[str, ...],
) -> None:  # fmt: skip
    """Fetch a published target, verify every file against its manifest, and show how to run it."""

    def body() -> None:
        from pathlib import Path

        from pipeline import pull as pl
        from pipeline.signing import Verifier

        dest = Path(out or target)
        m, signature = pl.pull(
            target, dest, source=source, repo=repo, rev=rev, hf_repo=hf_repo, remote=remote, fingerprint=fingerprint,
            verifier=Verifier.from_options(public_key, chain), replace=replace,
        )  # fmt: skip
        console.print(
            f"pulled [bold]{target}[/] into {dest}: {len(m.files)} files verified against manifest.json "
            f"(fingerprint {m.fingerprint}); validated on {m.validation.device_label}"
        )
        console.print(signature, markup=False, highlight=False)
        console.print(pl.how_to_run(m, dest), markup=False, highlight=False)
        console.print(f"prove it on this machine: aipc check {dest} --device <CPU|GPU|NPU|DML>", markup=False)

    run_main(body, name="aipc pull")


@main.command()
@click.argument("artifact")
@click.option("--device", default="auto", show_default=True, help="CPU, GPU, NPU, DML or auto (best present).")
@click.option("--min-exact-match", type=float, default=None, help="Fail below this share of identical answers.")
@click.option("--min-prefix-agreement", type=float, default=0.5, show_default=True,
              help="Fail below this mean share of each golden answer reproduced before the first divergence.")  # fmt: skip
@verify_options
def check(
    artifact: str, device: str, min_exact_match: float | None, min_prefix_agreement: float, public_key: str | None,
    chain: tuple[str, ...],
) -> None:  # fmt: skip
    """Re-run a package's golden prompts on a local device and compare with its golden outputs."""

    def body() -> None:
        from pathlib import Path

        from pipeline import manifest
        from pipeline import pull as pl
        from pipeline.errors import PipelineError
        from pipeline.signing import Verifier

        m = manifest.read(Path(artifact))
        res = pl.check(Path(artifact), device, verifier=Verifier.from_options(public_key, chain))
        console.print(res.signature, markup=False, highlight=False)
        table = Table("prompt", "identical", "first divergence", title=f"{m.name} on {res.device_label}")
        for r in res.rows:
            table.add_row(
                r["prompt"][:50],
                "yes" if r["match"] else "no",
                "-" if r["first_divergence"] is None else str(r["first_divergence"]),
            )
        console.print(table)
        console.print(f"exact match {res.exact_match_rate:.0%}, prefix agreement {res.prefix_agreement:.0%}")
        gates = m.validation.gates
        bound = (
            min_exact_match if min_exact_match is not None else (gates.bounds.get("exact_match_min") if gates else None)
        )
        if bound is not None and res.exact_match_rate < bound:
            raise PipelineError(f"check failed: exact match {res.exact_match_rate:.2f} < {bound} on {res.device_label}")
        if res.prefix_agreement < min_prefix_agreement:
            raise PipelineError(
                f"check failed: prefix agreement {res.prefix_agreement:.2f} < {min_prefix_agreement} on {res.device_label}"
            )

    run_main(body, name="aipc check")


main.add_command(search_command)
main.add_command(bench_command)
main.add_command(runs_command)
main.add_command(ci_command)

if __name__ == "__main__":
    main()
