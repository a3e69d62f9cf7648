"""onnxruntime's k-quant weight quantization, in cache-sized slices on every core: the same bytes, sooner.

The model builder's int4 recipe (``int4_algo_config: k_quant*``) quantizes each MatMul weight with
``onnxruntime.quantization.neural_compressor.weight_only.quant_tensor_k_quant_cpu``: NumPy over the whole
weight at once, twenty passes of a dozen element-wise operations, each making a full-size temporary. At
Phi-3-mini size that streams every weight matrix through RAM a few hundred times on one core: the
ort-dml-int4 build had not finished after 1140 s in the full-size main job (issue 24), where the same
builder's data-free RTN took 110 s.

Every quantization group (one row of the ``(groups, group_size)`` view) is computed from its own values only —
its scale search, its rounding, its zero point — so the weight can be cut into slices of whole groups, each
slice quantized by the original function and the results put back in order: bit for bit the original's
output (``tests/targets/test_kquant.py``: random, constant and padded weights, 4 and 8 bits, slices of
every size against the whole). The slices are small enough to stay in the CPU's cache, and NumPy releases
the GIL inside its loops, so a thread per core works on its own slice. Measured on this project's 2-core
build machine: ``build@ort-cpu-int4`` of a Phi-3-mini-shaped model took 1850 s and 7.8 GiB with the original,
875 s and 6.2 GiB sliced, with the same model.onnx and model.onnx.data bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

# Groups per slice: 8192 groups of 16-128 floats keep the dozen temporaries of one slice within a few MB.
SLICE_GROUPS = 8192

Quantize = Callable[[Any, int, int], tuple[np.ndarray, np.ndarray, np.ndarray]]


def sliced(original: Quantize, slice_groups: int = SLICE_GROUPS, threads: int | None = None) -> Quantize:
    """``original`` (``quant_tensor_k_quant_cpu``'s signature) applied slice by slice, on ``threads`` threads."""
    workers = threads or os.cpu_count() or 1

    def quantize(data: Any, num_bits: int = 4, group_size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        groups = np.reshape(data, (-1, group_size))  # the original's own first step (a copy for a transposed view)
        if groups.shape[0] <= slice_groups:
            return original(groups, num_bits, group_size)
        bounds = range(0, groups.shape[0], slice_groups)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lambda i: original(groups[i : i + slice_groups], num_bits, group_size), bounds))
        return tuple(np.concatenate([p[k] for p in parts], axis=0) for k in range(3))  # type: ignore[return-value]

    return quantize


def install() -> None:
    """Make the builder's k-quant (which the CUDA entry falls back to on a CPU) the sliced one, in this process."""
    from onnxruntime.quantization.neural_compressor import weight_only

    if getattr(weight_only.quant_tensor_k_quant_cpu, "aipc_sliced", False):
        return
    fast = sliced(weight_only.quant_tensor_k_quant_cpu)
    fast.aipc_sliced = True  # type: ignore[attr-defined]
    weight_only.quant_tensor_k_quant_cpu = fast
