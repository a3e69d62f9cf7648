"""The ORT graphs at the real Phi-3-mini-4k geometry: its 2047-token attention window, as transformers applies it.

fp32 graphs from an untrained variant of that geometry, compared logit by logit with transformers over a
3000-token sequence: a graph that ignores the window agrees up to position 2046 and not after; the CPU graph
without the builder fix failed any prefill past 2063 tokens, and with a window-sized cache any generation shorter
than the window."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from pipeline.params import Params
from pipeline.sources import embedded
from pipeline.sources.embedded import spec_from_params
from pipeline.targets import ortgenai

LENGTH = 3000


@pytest.fixture(scope="module")
def phi3_mini_4k(raw_params, tmp_path_factory):
    """(model folder, ids, transformers' fp32 logits) for an untrained model of Phi-3-mini-4k's geometry."""
    import torch
    from transformers import AutoModelForCausalLM

    entry = Params.model_validate(raw_params).models["mirror-phi-3-mini-4k"]
    src = tmp_path_factory.mktemp("mirror-4k") / "source"
    embedded.build(replace(spec_from_params(entry), train_steps=0), src)
    ids = np.random.default_rng(0).integers(300, 2000, LENGTH).tolist()
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
    assert model.config.sliding_window == 2047
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].numpy()
    return src, ids, logits


# The builder's fp32 DML graph does not load (onnxruntime-genai 0.18: "Graph output (present.0.key) does not
# exist"), with or without the window: the DML graph is checked in fp16, against its own error before the window.
@pytest.mark.parametrize(("ep", "precision"), [("cpu", "fp32"), ("dml", "fp16")])
def test_the_window_is_in_the_graph_and_a_long_prefill_runs(phi3_mini_4k, tmp_path, ep, precision):
    import onnxruntime_genai as og

    src, ids, want = phi3_mini_4k
    out = tmp_path / ep
    settings = ortgenai.Settings(precision=precision, execution_provider=ep)
    args = ortgenai.builder_command(settings, src, out, tmp_path / "cache")  # what the build stage runs
    cmd = [sys.executable, "-m", "pipeline.ort_builder.child", "--tmp", str(tmp_path), "--", *args]
    subprocess.run(cmd, check=True, capture_output=True)
    config = og.Config(str(out))
    config.clear_providers()  # the DML graph on the CPU provider, as validation proves it here
    model = og.Model(config)

    def generator(max_length: int):
        params = og.GeneratorParams(model)
        params.set_search_options(do_sample=False, max_length=max_length)
        return og.Generator(model, params)

    gen = generator(LENGTH)
    gen.append_tokens(np.array(ids, dtype=np.int32))  # one prefill, longer than the window
    got = np.asarray(gen.get_output("logits"))[0]
    short = generator(40)  # a chat prompt and a few new tokens: a cache far shorter than the window
    short.append_tokens(np.array(ids[:20], dtype=np.int32))
    while not short.is_done():
        short.generate_next_token()
    err = np.abs(got - want).max(axis=-1)
    before, past = err[:2047].max(), err[2047:].max()
    assert before < (1e-3 if precision == "fp32" else 0.05)
    assert past < 2 * before, f"past the window: max |Δlogit| {past:.3g}, before it {before:.3g}"
