"""The CI workflows run the README's commands, and the README's commands exist."""

from __future__ import annotations

import re

import yaml
from click.testing import CliRunner

from pipeline.cli import main
from tests.conftest import ROOT

# The workflows pass inputs through env (zizmor: no template expansion inside `run:`) and pick the runner's
# interpreter (PYTHON=python): both are spelled out here as the README writes them.
PLACEHOLDERS = {'"$MODEL"': "phi-3-mini-4k", '"package@$TARGET"': "package@<target>", " PYTHON=python": "",
                '"$HF_REPO_PREFIX"': "org/name"}  # fmt: skip


def workflow_commands() -> list[str]:
    cmds = []
    for wf in sorted((ROOT / ".github/workflows").glob("*.yml")):
        data = yaml.safe_load(wf.read_text())
        for job in data["jobs"].values():
            for step in job.get("steps", []):
                for line in str(step.get("run", "")).splitlines():
                    line = line.strip().replace(".venv/bin/", "").replace("PATH=$PWD/:$PATH ", "")
                    line = re.sub(r"^PATH=\S+ ", "", line)
                    for k, v in PLACEHOLDERS.items():
                        line = line.replace(k, v)
                    if line.startswith(("make ", "aipc ", "dvc repro")):
                        cmds.append(line)
    return cmds


def test_workflows_use_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    cmds = workflow_commands()
    assert {
        "make test",
        "make lint",
        "aipc use-model phi-3-mini-4k",
        "aipc publish --hf --hf-repo-prefix org/name",
    } <= set(cmds)
    for cmd in cmds:
        assert cmd in readme, f"workflow command not in the README: {cmd}"


def test_ci_run_calls_the_readme_test_command():
    script = (ROOT / ".ci/run").read_text()
    assert "make test" in script and "make test" in (ROOT / "README.md").read_text()
    assert "rm -rf .venv" in script  # installs from scratch


def test_every_command_has_help():
    runner = CliRunner()
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    commands = re.findall(r"^  ([a-z][a-z-]+)\s", result.output.split("Commands:")[1], re.M)
    assert {"params", "use-model", "doctor", "report", "publish", "pull", "check", "bench"} <= set(commands)
    readme = (ROOT / "README.md").read_text()
    for cmd in commands:
        sub = runner.invoke(main, [cmd, "--help"])
        assert sub.exit_code == 0 and "Usage:" in sub.output, cmd
        assert f"`aipc {cmd}" in readme, f"aipc {cmd} is not documented in the README"
