"""Decode speed of an artifact against the memory-bandwidth bound, through the validation runners.

Median time per output token (warm: one generation first, then a timed one of exactly ``new_tokens``), with
the runtime properties validation uses (``tuned``) or the runtime's own defaults. With one compute thread a
memory-bound decode barely slows down (one core reads nearly the full bandwidth), a compute-bound one slows
down by the core count — which is how the benchmark tells the two apart. The bound is "bytes of every MatMul
weight read per token ÷ read bandwidth", both measured on this machine in the same run.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

GiB = 2**30


def memory_bandwidth(gib: float = 2.0, repeats: int = 7, threads: int | None = None) -> float:
    """Read bandwidth in bytes/s: the best of ``repeats`` full reads of a large array, all cores (or ``threads``)."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        x = torch.ones(int(gib * GiB) // 4, dtype=torch.float32)
        x.sum()  # fault the pages in
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            x.sum()
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return x.numel() * 4 / best


def weight_bytes_per_token_ov(xml: Path) -> int:
    """Bytes of every MatMul weight (with scales/zero points) an OpenVINO decode step reads."""
    import openvino as ov

    from pipeline.openvino_ir.inspect import decompression_constants

    model = ov.Core().read_model(xml)
    seen: set[str] = set()
    total = 0
    for op in model.get_ops():
        if op.get_type_name() != "MatMul":
            continue
        for c in decompression_constants(op.input_value(1).get_node()):
            name = c.get_friendly_name()
            if name not in seen:
                seen.add(name)
                total += c.get_byte_size()
    return total


def weight_bytes_per_token_onnx(model_path: Path) -> int:
    """Bytes of every MatMul/MatMulNBits initializer an ONNX decode step reads (embeddings excluded)."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    sizes = {}
    for init in model.graph.initializer:
        length = next((int(e.value) for e in init.external_data if e.key == "length"), None)
        sizes[init.name] = length if length is not None else len(init.raw_data)
    total = 0
    for node in model.graph.node:
        if node.op_type in ("MatMulNBits", "MatMul"):
            total += sum(sizes.get(i, 0) for i in node.input[1:])
    return total


def weight_bytes_per_token(family: Any, folder: Path) -> int:
    if family.RUNTIME == "openvino-genai":
        return weight_bytes_per_token_ov(folder / "openvino_model.xml")
    return weight_bytes_per_token_onnx(folder / "model.onnx")


def decode_ms_per_token(
    family: Any,
    settings: Any,
    model_dir: Path,
    options: Any | None,
    new_tokens: int = 64,
    prompt_len: int = 32,
) -> float:
    """Median ms per output token, warm, on the CPU: with ``options`` (``RuntimeOptions``, validation's runtime
    properties) or, when None, with the runtime's own defaults."""
    import numpy as np

    from pipeline.runners.base import DeviceChoice

    prompt = [int(x) for x in np.random.default_rng(0).integers(300, 2000, size=prompt_len)]
    props = family.runtime_properties(settings, model_dir, "CPU", options) if options is not None else {}
    choice = DeviceChoice(device="CPU", intended="CPU")
    if family.RUNTIME == "openvino-genai":
        from pipeline.runners.ov_genai import OpenVINOGenAIRunner

        runner: Any = OpenVINOGenAIRunner(model_dir, choice, props)
    else:
        from pipeline.runners.ort_genai import OrtGenAIRunner

        runner = OrtGenAIRunner(model_dir, choice, props)
    try:
        runner.generate(prompt, new_tokens, ignore_eos=True)
        timed = runner.generate(prompt, new_tokens, ignore_eos=True)
    finally:
        runner.close()
    return statistics.median(timed.step_ms)
