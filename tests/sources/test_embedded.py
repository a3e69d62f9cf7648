"""The embedded model: a real Phi-3 with Phi-3's tokenizer layout, deterministic, readable greedy output."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.sources import embedded, embedded_tokenizer
from pipeline.sources.embedded import EmbeddedSpec


def test_same_seed_gives_byte_identical_files(tmp_path):
    spec = EmbeddedSpec(train_steps=3, batch_size=2)
    a, b = tmp_path / "a", tmp_path / "b"
    embedded.build(spec, a)
    embedded.build(spec, b)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    other = tmp_path / "c"
    embedded.build(EmbeddedSpec(train_steps=3, batch_size=2, seed=1), other)
    assert (other / "model.safetensors").read_bytes() != (a / "model.safetensors").read_bytes()


def test_it_is_a_phi3_with_phi3_tokens_and_template(embedded_dir: Path):
    from transformers import AutoConfig, AutoTokenizer

    cfg = AutoConfig.from_pretrained(embedded_dir)
    assert cfg.model_type == "phi3" and cfg.architectures == ["Phi3ForCausalLM"]
    assert cfg.hidden_size % 128 == 0 and cfg.intermediate_size % 128 == 0
    assert cfg.vocab_size % 64 == 0
    tok = AutoTokenizer.from_pretrained(embedded_dir)
    for t in ("<|endoftext|>", "<|assistant|>", "<|system|>", "<|end|>", "<|user|>"):
        assert tok.convert_tokens_to_ids(t) != tok.unk_token_id
    ids = [tok.convert_tokens_to_ids(t) for t, _ in embedded_tokenizer.PHI3_ADDED_TOKENS]
    assert ids == list(range(ids[0], ids[0] + 11))  # Phi-3's order, contiguous like 32000..32010
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert text == "<|user|>\nhi<|end|>\n<|assistant|>\n"
    tj = json.loads((embedded_dir / "tokenizer.json").read_text())
    assert tj["model"]["byte_fallback"] is True and tj["normalizer"]["normalizers"][0]["type"] == "Prepend"
    gen = json.loads((embedded_dir / "generation_config.json").read_text())
    assert gen["eos_token_id"] == [tok.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|assistant|>", "<|end|>")]
    st = json.loads((embedded_dir / "config.json").read_text())
    assert st["dtype"] == "bfloat16"


def test_greedy_answers_are_readable_text(embedded_dir: Path, raw_params):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(embedded_dir)
    model = AutoModelForCausalLM.from_pretrained(embedded_dir, dtype=torch.float32)
    for prompt in raw_params["models"]["embedded"]["prompts"]:
        enc = tok.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        out = model.generate(**enc, max_new_tokens=24, do_sample=False)
        new = out[0, enc["input_ids"].shape[1] :].tolist()
        text = tok.decode(new, skip_special_tokens=True)
        assert len(set(new)) >= 6, (prompt, text)  # not one repeated token
        words = re.findall(r"[A-Za-z]{2,}", text)
        assert len(words) >= 3, (prompt, text)


@pytest.fixture(scope="module")
def og_tokenizer(embedded_dir: Path, tmp_path_factory):
    """onnxruntime-genai's tokenizer reads a GenAI model folder; a config-only builder run makes one."""
    import onnxruntime_genai as og

    out = tmp_path_factory.mktemp("og-config")
    subprocess.run(
        [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(embedded_dir), "-o", str(out),
         "-p", "fp32", "-e", "cpu", "-c", str(out / "cache"), "--extra_options", "config_only=true"],
        check=True, capture_output=True,
    )  # fmt: skip
    return og.Tokenizer(og.Config(str(out)))


@pytest.mark.parametrize(
    "text", ["Hello world", "<|user|>\nWrite a haiku.<|end|>\n<|assistant|>\n", "  ünïcödé — “q” 😀\t"]
)
def test_three_runtimes_tokenize_identically(embedded_dir: Path, og_tokenizer, text):
    """transformers, openvino-tokenizers and onnxruntime-genai's tokenizer give the same ids."""
    import openvino as ov
    from openvino_tokenizers import convert_tokenizer
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(embedded_dir)
    ov_tok = convert_tokenizer(hf, with_detokenizer=False)
    ov_ids = ov.Core().compile_model(ov_tok, "CPU")([text])["input_ids"][0].tolist()
    og_ids = og_tokenizer.encode(text).tolist()
    hf_ids = hf(text, add_special_tokens=False)["input_ids"]
    assert hf_ids == ov_ids == og_ids


def test_the_source_stage_output_is_the_same_bytes_every_time(default_params, embedded_dir, tmp_path, monkeypatch):
    """The source is a DVC output that is never cached: each queued experiment fetches it again in its own
    workspace, and only identical bytes let DVC reuse the IR, the reference and every build downstream (a
    `seconds` field once made every fetch differ). Here every reading of the clock is later by a growing step, so
    anything timed differs between the two fetches."""
    import itertools

    from pipeline.sources import fetch_source

    ticks = (float(i * i) for i in itertools.count())
    monkeypatch.setattr("pipeline.sources.time.monotonic", lambda: next(ticks))
    a, b = tmp_path / "a", tmp_path / "b"
    fetch_source(default_params, a)
    fetch_source(default_params, b)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and "source.json" in names
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
