"""Run a GitHub Actions workflow's jobs here, one fresh clone per job, from the workflow file itself.

What a runner provides is stood in for, nothing else: ``actions/checkout`` is a ``git clone`` of the
project; ``actions/setup-python`` and the ``make install`` step are the environment the tests already run
in (a ``.venv`` link to it; installing from scratch is what ``.ci/run`` proves); ``upload-artifact`` and
``download-artifact`` copy to and from a folder (v4 semantics: by ``name`` into ``path``, by ``pattern``
into ``path/<artifact>/``); ``${{ }}`` expressions are evaluated for the few forms the workflow uses — and
anything else is an error, so the workflow cannot drift into syntax this runner would silently misread.
Every ``run:`` step runs as GitHub runs it: ``bash --noprofile --norc -eo pipefail``, with the workflow's,
the job's and the step's ``env:``, ``GITHUB_OUTPUT`` and the job's outputs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
VENV = Path(sys.executable).parent.parent


@dataclass
class JobRun:
    name: str
    folder: Path
    outputs: dict[str, str] = field(default_factory=dict)
    log: str = ""

    def stages_run(self) -> list[str]:
        """Every DVC stage this job ran (DVC prints "Running stage '<name>':" for each)."""
        return re.findall(r"Running stage '([^']+)'", self.log)


class StepFailed(AssertionError):
    pass


@dataclass
class Workflow:
    path: Path
    origin: Path  # the git repository actions/checkout clones
    work: Path  # one folder per job in here
    store: Path  # the artifact store
    vars: dict[str, str]
    secrets: dict[str, str]
    inputs: dict[str, str]
    base_env: dict[str, str]
    doc: dict[str, Any] = field(init=False)
    done: dict[str, list[JobRun]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.doc = yaml.safe_load(self.path.read_text())

    # ------------------------------------------------------------------ expressions

    def evaluate(self, expr: str, ctx: dict[str, Any]) -> Any:
        parts = [p.strip() for p in expr.split("||")]
        for part in parts:
            value = self._operand(part, ctx)
            if value not in (None, ""):
                return value
        return ""

    def _operand(self, text: str, ctx: dict[str, Any]) -> Any:
        if m := re.fullmatch(r"'([^']*)'", text):
            return m.group(1)
        if m := re.fullmatch(r"fromJSON\((.+)\)", text):
            return json.loads(self._operand(m.group(1).strip(), ctx))
        if m := re.fullmatch(r"([\w.-]+)\s*==\s*'([^']*)'", text):
            return str(self._operand(m.group(1), ctx)) == m.group(2)
        if re.fullmatch(r"[A-Za-z_][\w-]*(\.[\w-]+)+", text):
            node: Any = ctx
            for key in text.split("."):
                node = node.get(key) if isinstance(node, dict) else None
            return node
        raise ValueError(f"expression this runner does not know: {text!r}")

    def substitute(self, value: Any, ctx: dict[str, Any]) -> Any:
        if isinstance(value, str):
            whole = EXPR.fullmatch(value.strip())
            if whole:
                return self.evaluate(whole.group(1), ctx)
            return EXPR.sub(lambda m: str(self.evaluate(m.group(1), ctx)), value)
        if isinstance(value, dict):
            return {k: self.substitute(v, ctx) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v, ctx) for v in value]
        return value

    def context(self, matrix: dict[str, Any] | None = None) -> dict[str, Any]:
        needs = {name: {"outputs": runs[0].outputs, "result": "success"} for name, runs in self.done.items() if runs}
        return {
            "vars": self.vars,
            "secrets": self.secrets,
            "github": {"event": {"inputs": self.inputs}},
            "inputs": self.inputs,
            "matrix": matrix or {},
            "needs": needs,
        }

    # ------------------------------------------------------------------ jobs

    def job(self, name: str) -> dict[str, Any]:
        return self.doc["jobs"][name]

    def matrix(self, name: str) -> list[dict[str, Any]]:
        strategy = self.job(name).get("strategy")
        if not strategy:
            return [{}]
        axes = self.substitute(strategy["matrix"], self.context())
        assert len(axes) == 1, "this runner expands one matrix axis"
        ((axis, values),) = axes.items()
        return [{axis: v} for v in values]

    def run_job(self, name: str) -> list[JobRun]:
        """The job, its matrix legs side by side as GitHub runs them (each in its own clone, as many at once as
        this machine has cores): the publish workflow test's fixture, with its five target legs, took 158 s in a
        full suite on 2 cores with the legs in a row and 131 s side by side."""
        legs = list(enumerate(self.matrix(name)))
        with ThreadPoolExecutor(max_workers=min(len(legs), os.cpu_count() or 1)) as pool:
            runs = list(
                pool.map(
                    lambda leg: self._run_one(name, self.work / (f"{name}-{leg[0]}" if leg[1] else name), leg[1]), legs
                )
            )
        self.done[name] = runs
        return runs

    def _run_one(self, name: str, folder: Path, matrix: dict[str, Any]) -> JobRun:
        job = self.job(name)
        ctx = self.context(matrix)
        run = JobRun(name=name, folder=folder)
        env = dict(self.base_env)
        env.update({k: str(v) for k, v in self.substitute(self.doc.get("env", {}), ctx).items()})
        env.update({k: str(v) for k, v in self.substitute(job.get("env", {}), ctx).items()})
        step_outputs: dict[str, dict[str, str]] = {}
        for step in job["steps"]:
            ctx["steps"] = {k: {"outputs": v} for k, v in step_outputs.items()}
            if "uses" in step:
                self._uses(step, ctx, folder, run)
                continue
            script = step["run"]
            if script.strip() == "make install":
                # the environment the tests run in (installing from scratch is .ci/run's proof)
                (folder / ".venv").symlink_to(VENV, target_is_directory=True)
                continue
            out_file = self.work / f".github_output-{folder.name}"
            out_file.write_text("")
            step_env = dict(env, GITHUB_OUTPUT=str(out_file))
            step_env.update({k: str(v) for k, v in self.substitute(step.get("env", {}), ctx).items()})
            script = self.substitute(script, ctx)
            proc = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                cwd=folder, env=step_env, capture_output=True, text=True,
            )  # fmt: skip
            run.log += f"\n$ {script}\n{proc.stdout}{proc.stderr}"
            if proc.returncode != 0:
                raise StepFailed(f"{name} {matrix or ''}: step {step.get('name') or script!r} failed "
                                 f"(rc {proc.returncode}):\n{run.log[-4000:]}")  # fmt: skip
            if "id" in step:
                step_outputs[step["id"]] = dict(
                    line.split("=", 1) for line in out_file.read_text().splitlines() if "=" in line
                )
        ctx["steps"] = {k: {"outputs": v} for k, v in step_outputs.items()}
        run.outputs = {k: str(v) for k, v in self.substitute(job.get("outputs", {}), ctx).items()}
        return run

    def run_step(self, job_name: str, step_name: str, folder: Path) -> str:
        """One named ``run:`` step of a job, as written, in ``folder`` (prepared by the caller as the job's
        earlier steps would have left it), with the workflow's, the job's and the step's ``env:``; its log."""
        job = self.job(job_name)
        ctx = self.context()
        env = dict(self.base_env)
        env.update({k: str(v) for k, v in self.substitute(self.doc.get("env", {}), ctx).items()})
        env.update({k: str(v) for k, v in self.substitute(job.get("env", {}), ctx).items()})
        (step,) = [s for s in job["steps"] if s.get("name") == step_name]
        env.update({k: str(v) for k, v in self.substitute(step.get("env", {}), ctx).items()})
        script = self.substitute(step["run"], ctx)
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=folder, env=env, capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode != 0:
            raise StepFailed(f"{job_name}: step {step_name!r} failed (rc {proc.returncode}):\n"
                             f"{(proc.stdout + proc.stderr)[-4000:]}")  # fmt: skip
        return proc.stdout + proc.stderr

    def _uses(self, step: dict[str, Any], ctx: dict[str, Any], folder: Path, run: JobRun) -> None:
        action = step["uses"].split("@")[0]
        args = self.substitute(step.get("with", {}), ctx)
        if action == "actions/checkout":
            subprocess.run(["git", "clone", "-q", str(self.origin), str(folder)], check=True)
        elif action == "actions/setup-python":
            pass  # this Python
        elif action == "actions/upload-artifact":
            dest = self.store / args["name"]
            assert not dest.exists(), f"artifact {args['name']} uploaded twice"
            for rel in str(args["path"]).split():
                src = folder / rel
                if not src.exists():  # upload-artifact's default (if-no-files-found: warn)
                    run.log += f"\n[upload-artifact: no files at {rel}]"
                    continue
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                if src.is_dir():
                    shutil.copytree(src, dest / rel)
                else:
                    shutil.copy2(src, dest / rel)
            run.log += f"\n[upload-artifact {args['name']}: {args['path']}]"
        elif action == "actions/download-artifact":
            into = folder / args.get("path", ".")
            if "name" in args:
                shutil.copytree(self.store / args["name"], into, dirs_exist_ok=True)
            else:
                import fnmatch

                for art in sorted(self.store.iterdir()):
                    if fnmatch.fnmatch(art.name, args["pattern"]):
                        shutil.copytree(art, into / art.name, dirs_exist_ok=True)
            run.log += f"\n[download-artifact {args}]"
        else:
            raise ValueError(f"action this runner does not stand in for: {action}")


def runs_on_linux(job: dict[str, Any]) -> bool:
    """Jobs this machine can stand in for (a hosted Ubuntu runner); Windows and self-hosted NPU ones it cannot."""
    return isinstance(job.get("runs-on"), str) and job["runs-on"].startswith("ubuntu")


def clean_env() -> dict[str, str]:
    """The test process's environment without what would leak this checkout into the jobs' clones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "GITHUB_"))}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(VENV)))
    return env
