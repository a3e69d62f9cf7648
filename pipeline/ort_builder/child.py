"""Child-process entry that runs onnxruntime-genai's model builder, stock or low-memory.

``python -m pipeline.ort_builder.child --mode stock|low-memory --tmp DIR -- <builder args>``
"""

from __future__ import annotations

import argparse
import runpy
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["stock", "low-memory"], default="stock")
    parser.add_argument("--tmp", required=True)
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    ns = parser.parse_args(argv)
    args = ns.rest[1:] if ns.rest and ns.rest[0] == "--" else ns.rest
    pin_build_stamp()
    window_every_layer_as_transformers_does()
    from pipeline.ort_builder import kquant

    kquant.install()  # same bytes as the builder's own k-quant, in cache-sized slices on every core
    if ns.mode == "low-memory":
        from pipeline.ort_builder import lowmem

        lowmem.install(ns.tmp)
    sys.argv = ["onnxruntime_genai.models.builder", *args]
    # The builder has no main(); run its __main__ block exactly as `python -m` would.
    runpy.run_module("onnxruntime_genai.models.builder", run_name="__main__", alter_sys=True)


def pin_build_stamp() -> None:
    """The builder stamps ``producer_version`` with "+<commit>" from ``git rev-parse HEAD`` run five folders above
    its own file — meant for its source tree, but with a virtual environment inside a project (``make install``
    makes ``.venv`` here) that is the *project's* commit: measured, the same ORT model built at two commits of
    this repository differed in that stamp alone, so every commit (and every teammate's clone at another one)
    rebuilt the ORT targets' bytes. The stamp is the installed wheel's own commit, as the builder does when no
    git repository is around it."""
    import importlib

    import onnxruntime_genai
    import onnxruntime_genai.models  # puts the builder's folder on sys.path

    commit = getattr(onnxruntime_genai, "__commit__", None) or None
    # builder.py imports its classes as the top-level package `builders` (see lowmem): patch the one it uses
    base = importlib.import_module("builders.base")
    base.Model.get_genai_commit = classmethod(lambda cls: commit)


def window_every_layer_as_transformers_does() -> None:
    """Give the builder the attention window of a Phi-3 config on every layer, as transformers applies it.

    Phi-3-mini-4k's config has ``sliding_window: 2047`` and no ``layer_types``. transformers masks every layer to
    that window; the builder (onnxruntime-genai 0.18) reads the missing ``layer_types`` as "all full attention",
    so its graphs attend to the whole sequence (``local_window_size -1``) — while on the CPU it still writes a
    window-sized KV cache into genai_config.json. Measured on a model of that geometry: past 2047 tokens the
    DirectML graph agreed with the reference's top-1 on 60 % of positions (89 % before), and the CPU graph
    failed any prefill longer than 2063 tokens ("total_sequence_length must equal past_sequence_length +
    kv_sequence_length"). With every layer marked ``sliding_attention`` both graphs apply the window and agree
    as well past 2047 as before it (the CPU build also asks for a full-length cache: ``windowed_kv_cache=false``
    in ``targets.ortgenai.builder_command``). A window as long as the context (the 128k models: 262144) changes
    nothing and is left alone."""
    from transformers import AutoConfig

    load = AutoConfig.from_pretrained

    def from_pretrained(*args, **kwargs):
        config = load(*args, **kwargs)
        window = getattr(config, "sliding_window", None)
        if (
            getattr(config, "model_type", None) == "phi3"
            and window
            and window < config.max_position_embeddings
            and getattr(config, "layer_types", None) is None
        ):
            config.layer_types = ["sliding_attention"] * config.num_hidden_layers
        return config

    AutoConfig.from_pretrained = from_pretrained


if __name__ == "__main__":
    main()
