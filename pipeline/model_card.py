"""The model card (``README.md``) shipped with every package and pushed to the Hugging Face repo."""

from __future__ import annotations

from typing import Any

from pipeline.fmt import num, pct

RUNTIME_TAGS = {
    "openvino-genai": ["openvino", "openvino-genai", "nncf"],
    "onnxruntime-genai": ["onnx", "onnxruntime-genai"],
    "npu-lib": ["intel-npu-acceleration-library"],
}


def snippet(manifest: dict[str, Any], repo_hint: str = "<this folder>") -> str:
    """A runnable example for the artifact's own runtime."""
    name = manifest["name"]
    runtime = manifest["runtime"]
    if runtime == "openvino-genai" and manifest.get("family") == "npu":
        return (
            "```python\nimport json\nimport openvino_genai as ov_genai\n\n"
            f'model_dir = "{repo_hint}"\n'
            'props = json.load(open(f"{model_dir}/npu_config.json"))["properties"]\n'
            'pipe = ov_genai.LLMPipeline(model_dir, "NPU", **props)  # Intel Core Ultra NPU\n'
            'print(pipe.generate("What is an NPU?", max_new_tokens=64))\n```\n'
        )
    if runtime == "openvino-genai":
        return (
            "```python\nimport openvino_genai as ov_genai\n\n"
            "# On CPUs with AMX/AVX512-BF16, INFERENCE_PRECISION_HINT='f32' keeps int4 decoding on the fast int8 path\n"
            f'pipe = ov_genai.LLMPipeline("{repo_hint}", "CPU", INFERENCE_PRECISION_HINT="f32")  # or "GPU"\n'
            'print(pipe.generate("What is an NPU?", max_new_tokens=64))\n```\n'
        )
    if runtime == "onnxruntime-genai":
        dml = "dml" in (manifest.get("device_facts", {}).get("genai_providers") or [])
        install = (
            "pip install onnxruntime-genai-directml  # Windows, DirectML" if dml else "pip install onnxruntime-genai"
        )
        return (
            f"```bash\n{install}\n```\n\n"
            "```python\nimport onnxruntime_genai as og\n\n"
            f'model = og.Model("{repo_hint}")\ntokenizer = og.Tokenizer(model)\n'
            'prompt = tokenizer.apply_chat_template(\'[{"role": "user", "content": "What is an NPU?"}]\', add_generation_prompt=True)\n'
            "params = og.GeneratorParams(model)\nparams.set_search_options(max_length=256)\n"
            "generator = og.Generator(model, params)\ngenerator.append_tokens(tokenizer.encode(prompt))\n"
            "while not generator.is_done():\n    generator.generate_next_token()\n"
            '    print(tokenizer.decode(generator.get_next_tokens()), end="", flush=True)\n```\n'
        )
    return f"See `{name}`'s run record (`npu_lib_run.json`): this route ships no binary model.\n"


def _weights_line(manifest: dict[str, Any]) -> str:
    build = manifest.get("build") or {}
    if build.get("weights"):
        return ", ".join(f"{n} {p} layers" for p, n in build["weights"].items())
    graph = build.get("graph") or {}
    if graph:
        return f"{graph.get('quantized_matmuls', 0)} MatMulNBits ({graph.get('quantized_by_kind')})"
    return "none shipped — intel-npu-acceleration-library quantises the source model when it loads it"


def render(manifest: dict[str, Any], reference_perplexity: float | None = None) -> str:
    src = manifest["source"]
    v = manifest["validation"]
    q = v.get("quality") or {}
    s = v.get("speed") or {}
    license_id = (src.get("license") or "other").split()[0].lower()
    tags = ["phi3", "text-generation", "aipc", *RUNTIME_TAGS.get(manifest["runtime"], [])]
    base = src.get("repo") if src.get("kind") == "hub" else None
    front = ["---", f"license: {license_id}", "pipeline_tag: text-generation", "tags:"] + [f"  - {t}" for t in tags]
    if base:
        front.append(f"base_model: {base}")
    front.append("---")
    settings = manifest.get("settings") or {}
    settings_rows = "\n".join(f"| `{k}` | `{v}` |" for k, v in settings.items() if not isinstance(v, dict))
    gates = (v.get("gates") or {}).get("bounds") or {}
    gate_rows = "\n".join(f"| `{k}` | {_gate_bound(k, b)} |" for k, b in gates.items() if b not in (None, False))
    proxy = f" — **proxy**: {v['proxy']}" if v.get("proxy") else ""
    intended = v.get("intended_device") or "?"
    revision = src.get("resolved_revision") or "n/a"
    lines = [
        *front,
        "",
        f"# {manifest['name']} — {manifest.get('description') or manifest['runtime']}",
        "",
        f"`{src.get('repo')}` (revision `{revision}`) built for **{manifest['runtime']}** by the aipc-pipeline, "
        f"meant to run on **{intended}**. It was validated against the original model (transformers, fp32) "
        f"on **{v.get('device')}**{proxy}.",
        "",
        "## Quantization and build settings",
        "",
        "| setting | value |",
        "|---|---|",
        settings_rows,
        "",
        f"Weights in the artifact: {_weights_line(manifest)}.",
        "",
        "## Validation against the reference",
        "",
        "| metric | value |",
        "|---|---|",
        f"| gates | {'passed' if v.get('passed') else 'FAILED'} |",
        f"| device that ran the validation | {v.get('device_label')} |",
        f"| exact greedy match (prompts) | {pct(q.get('exact_match_rate'))} |",
        f"| teacher-forced top-1 agreement | {pct(q.get('teacher_forced_agreement'))} |",
        f"| held-out perplexity (reference {num(q.get('reference_perplexity') or reference_perplexity)}) | {num(q.get('perplexity'))} |",
        f"| perplexity change | {pct(q.get('perplexity_increase'), signed=True)} |",
        f"| answer similarity (MiniLM cosine) | {num(q.get('similarity'))} |",
        f"| own tokenizer + chat template give the reference ids | {pct(q.get('tokenizer_match_rate'))} |",
        f"| time to first token (median) | {num(s.get('ttft_ms_median'), 2)} ms |",
        f"| time per output token (median) | {num(s.get('tpot_ms_median'), 2)} ms |",
        f"| size on disk | {(s.get('size_bytes') or 0) / 1e6:.1f} MB |",
        "",
        "Gates it had to meet:",
        "",
        "| gate | bound |",
        "|---|---|",
        gate_rows or "| (none) | |",
        "",
        "`golden_outputs.jsonl` holds this artifact's own answers to the validation prompts: "
        "`aipc check <folder> --device <NPU|GPU|DML|CPU>` re-runs them on your device and compares.",
        "",
        "## Use it",
        "",
        snippet(manifest),
        "## Provenance",
        "",
        f"- Source: `{src.get('repo')}` at `{revision}` (requested `{src.get('requested_revision')}`), license: {src.get('license') or 'see source'}.",
        f"- Toolkits: {', '.join(f'{k} {v}' for k, v in sorted((manifest['tools'].get('build') or {}).items()))}.",
        f"- Every file's sha256 is in `manifest.json` (fingerprint `{manifest.get('fingerprint', '')}`); "
        "`aipc pull` refuses a download that does not match it.",
        "",
    ]
    return "\n".join(lines)


def _gate_bound(name: str, bound: Any) -> str:
    """A gate's bound in the units the validation table uses (params keep fractions: 0.25 = +25 %)."""
    if bound is True:
        return "required"
    if name in ("exact_match_min", "teacher_forced_agreement_min"):
        return f"≥ {100 * bound:.1f}%"
    if name == "perplexity_increase_max":
        return f"≤ +{100 * bound:.1f}%"
    if name == "ms_per_token_max":
        return f"≤ {bound} ms"
    return f"≥ {bound}" if name.endswith("_min") else f"≤ {bound}" if name.endswith("_max") else str(bound)
