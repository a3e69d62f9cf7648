"""`aipc bench` and `aipc bench main-job`: the full-size benchmarks' commands (kept apart so the CLI module
stays one screenful; registered by ``pipeline.cli``)."""

from __future__ import annotations

import click

from pipeline.console import out_console as console
from pipeline.console import run_main


@click.group("bench", invoke_without_command=True)
@click.pass_context
@click.option("--work", default=".bench", show_default=True, help="Scratch folder (needs ~70 GB free).")
@click.option("--docs", default="docs", show_default=True, help="Where benchmarks.md/json are written.")
@click.option("--keep", is_flag=True, help="Keep the model and artifacts made (default: remove them).")
@click.option("--no-decode", is_flag=True, help="Skip the decode-speed measurements.")
@click.option("--resume", is_flag=True, help="Reuse the steps an earlier --keep run of the same --work measured.")
def bench_command(ctx: click.Context, work: str, docs: str, keep: bool, no_decode: bool, resume: bool) -> None:
    """Full-size benchmark: Phi-3-mini-shaped model, anchor commands vs the project's stages (~30-40 min).

    `aipc bench main-job` runs the whole `dvc repro` at that size instead."""
    if ctx.invoked_subcommand is not None:
        return

    def body() -> None:
        from pathlib import Path

        from pipeline.bench.render import markdown, write_results
        from pipeline.bench.run import run_bench

        command = "aipc bench" + (" --no-decode" if no_decode else "")
        results = run_bench(Path("."), Path(work), keep=keep, decode=not no_decode, resume=resume)
        write_results(results, Path(docs), command)
        console.print(markdown(results, command))

    run_main(body, name="aipc bench")


@bench_command.command("main-job")
@click.option("--work", default=".bench-main", show_default=True, help="Scratch folder (needs ~75 GB free).")
@click.option("--model", "model_dir", default=None, help="An existing Phi-3-mini-shaped folder (default: make one).")
@click.option("--docs", default="docs", show_default=True, help="Where benchmarks.md/json are written.")
@click.option("--keep", is_flag=True, help="Keep the project copy, its artifacts and the model made.")
@click.option(
    "--results",
    "results_path",
    default=None,
    help="Render a saved run (WORK/main-job.json) beside the plan of the code as it is now; runs nothing.",
)
@click.option("--resume", is_flag=True, help="Continue the kept run in --work: stages DVC finds up to date keep "
              "their measurements; the others run.")  # fmt: skip
def bench_main_job(
    work: str, model_dir: str | None, docs: str, keep: bool, results_path: str | None, resume: bool
) -> None:
    """The whole `dvc repro` at Phi-3-mini size, stage by stage: wall, CPU, peak RSS, disk, beside the plan."""

    def body() -> None:
        import json
        from pathlib import Path

        import yaml

        from pipeline.bench.main_job import full_size_params, repredict
        from pipeline.bench.render import write_main_job
        from pipeline.bench.run import run_main_job_bench

        # the page says how to reproduce the run; a re-render's --model is where this copy's model is, not that
        command = "aipc bench main-job" + (f" --model {model_dir}" if model_dir and not results_path else "")
        if results_path:
            if not Path(results_path).is_file():
                from pipeline.errors import PipelineError

                raise PipelineError(
                    f"--results {results_path}: no such file",
                    fix="pass the main-job.json of an earlier run (in its --work folder, kept with --keep)",
                )
            saved = json.loads(Path(results_path).read_text())
            # the run's own model, kept beside its main-job.json, unless another folder is named
            model = Path(model_dir) if model_dir else Path(results_path).parent / "phi3-mini-shaped"
            if not (model / "config.json").is_file():
                from pipeline.errors import PipelineError

                raise PipelineError(
                    f"--results: the plan needs the run's model and {model / 'config.json'} is missing",
                    fix="pass --model with the Phi-3-mini-shaped folder the run used (kept with --keep)",
                )
            raw = full_size_params(yaml.safe_load(Path("params.yaml").read_text()), model)
            ws = Path(results_path).parent / "project"
            results = repredict(saved, raw, model, ws if ws.is_dir() else Path("."))
            if "validation" not in results and ws.is_dir():  # a run saved before the breakdown was recorded
                from pipeline.bench.main_job import validation_breakdown

                results["validation"] = validation_breakdown(ws)
            if "machine" not in results:
                from pipeline.bench.run import machine_facts

                results["machine"] = machine_facts()  # rendered on the machine that ran it
        else:
            results = run_main_job_bench(
                Path("."), Path(work), Path(model_dir) if model_dir else None, keep=keep, resume=resume
            )
        console.print(write_main_job(results, Path(docs), command))
        if results.get("failed"):
            from pipeline.errors import PipelineError

            raise PipelineError(f"the main job failed at {results['failed']} (log in {work}/logs)")

    run_main(body, name="aipc bench main-job")
