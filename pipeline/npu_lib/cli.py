"""`aipc env npu-lib`: build or check the legacy route's isolated environment (registered by ``pipeline.cli``)."""

from __future__ import annotations

import click
from rich.console import Console

from pipeline.console import run_main


@click.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True, help="The params file to read.")
@click.option("--rebuild", is_flag=True, help="Build it again even if it exists.")
def npu_lib_env_command(params_path: str, rebuild: bool) -> None:
    """Build (offline but for the package index) or check intel-npu-acceleration-library's environment."""

    def body() -> None:
        import shutil

        from pipeline.npu_lib import env as npu_lib_env
        from pipeline.params import load_params

        params = load_params(params_path)
        names = [n for n, t in params.targets.items() if t.family == "npu_lib"]
        setting = params.target(names[0]).build.env_dir if names else None
        env_dir = npu_lib_env.resolve_env_dir(setting)
        if rebuild and env_dir.exists():
            shutil.rmtree(env_dir)
        rec = npu_lib_env.ensure_env(env_dir)
        Console().print(
            f"{env_dir}: {rec['library']} with {rec['openvino']}, torch {rec['torch']}, transformers {rec['transformers']}; "
            f"built in {rec['build_seconds']:.0f} s, {rec['size_bytes'] / 1e9:.2f} GB; "
            + ("NPU found" if rec["npu_available"] else "no NPU: the library will run on the CPU (fallback)")
        )

    run_main(body, name="aipc env npu-lib")
