"""`aipc search`: the command around ``pipeline.search`` (kept apart so the CLI module stays one screenful)."""

from __future__ import annotations

import click

from pipeline.console import out_console as console
from pipeline.console import run_main


@click.command("search")
@click.argument("target")
@click.option("--jobs", type=int, default=None, help="Points built at once (default: from the cores and free RAM).")
@click.option("--apply", "point", default=None, help="Write this point's settings into params.yaml (name, key or pN).")
@click.option("--poll", type=float, default=5.0, show_default=True, help="Seconds between progress checks.")
def search_command(target: str, jobs: int | None, point: str | None, poll: float) -> None:
    """Build and validate every point of TARGET's search space (targets.TARGET.search) as queued DVC
    experiments; write the front and the chosen point to reports/search/TARGET/. Started again, it runs only
    the points still missing. With --apply, write a point's settings into params.yaml for `dvc repro`."""

    def body() -> None:
        from pathlib import Path

        from pipeline.params import load_params
        from pipeline.search import report as search_report
        from pipeline.search.apply import apply
        from pipeline.search.run import SEARCH_DIR
        from pipeline.search.run import search as run_search

        project = Path.cwd()
        if point is not None:
            settings = apply(project, target, point)
            shown = ", ".join(f"{k}={v}" for k, v in settings.items())
            console.print(f"params.yaml: targets.{target}.build ← {shown}; now run `dvc repro`", highlight=False)
            return
        with console.status(f"search {target}: starting") as status:

            def progress(done: int, total: int, best) -> None:
                lead = f"best so far {best.label}" if best else "no passing point yet"
                status.update(f"search {target}: {done}/{total} points done; {lead}")

            result = run_search(project, target, jobs=jobs, poll=poll, progress=progress)
        gate = load_params(project / "params.yaml").target(target).gates
        bound = gate.kl_mean_max if result.quality == "kl" else gate.perplexity_increase_max
        paths = search_report.write(result, project / SEARCH_DIR / target, bound)
        chosen = next((p for p in result.points if p.name == result.chosen), None)
        line = f"chosen {chosen.name} ({chosen.label}): {result.why}" if chosen else "no point passes every gate"
        console.print(f"{len(result.points)} points, {result.ran} run now, {result.seconds:.0f} s; {line}",
                      highlight=False)  # fmt: skip
        console.print(f"report: {paths[2]}", highlight=False)

    run_main(body, name="aipc search")
