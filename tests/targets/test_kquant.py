"""The sliced k-quant is onnxruntime's own, bit for bit, and it is the one the model builder's child calls."""

from __future__ import annotations

import numpy as np
import pytest
from onnxruntime.quantization.neural_compressor import weight_only

from pipeline.ort_builder import kquant

ORIGINAL = weight_only.quant_tensor_k_quant_cpu


def weights(shape: tuple[int, int], seed: int) -> np.ndarray:
    w = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    w[:, :5] = 0.25  # constant groups (rmin == rmax): the original's special case
    w[:3, :] = 0.0  # and all-zero ones, as padding makes
    w[-1, :] *= 1e4  # and a row far off the others' scale
    return w


@pytest.mark.parametrize(("shape", "bits", "group"), [((192, 96), 4, 16), ((128, 256), 8, 32), ((512, 64), 4, 128)])
@pytest.mark.parametrize("slice_groups", [1, 7, 100, 10**6])
def test_same_bytes_as_the_whole_weight_at_once(shape, bits, group, slice_groups):
    w = weights(shape, seed=sum(shape) + bits)
    for data in (w, w.T):  # the builder passes the transposed weight (a strided view)
        whole = ORIGINAL(data, bits, group)
        cut = kquant.sliced(ORIGINAL, slice_groups, threads=2)(data, bits, group)
        for a, b in zip(whole, cut, strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_the_builders_entry_reaches_the_sliced_one(monkeypatch):
    """rtn_quantize calls quant_tensor_k_quant_cuda, which falls back to the module's CPU function on a CPU:
    after install() that is the sliced one (looked up at call time), and it gives the original's bytes."""
    monkeypatch.setattr(weight_only, "quant_tensor_k_quant_cpu", ORIGINAL)
    kquant.install()
    installed = weight_only.quant_tensor_k_quant_cpu
    assert installed is not ORIGINAL and installed.aipc_sliced
    kquant.install()  # twice is once
    assert weight_only.quant_tensor_k_quant_cpu is installed
    w = weights((64 * 1024, 32), seed=1)  # 131072 groups of 16: sixteen slices
    calls = []
    monkeypatch.setattr(weight_only, "quant_tensor_k_quant_cpu", lambda *a: calls.append(a) or installed(*a))
    got = weight_only.quant_tensor_k_quant_cuda(w.T, 4, 16)
    assert calls
    for a, b in zip(ORIGINAL(w.T, 4, 16), got, strict=True):
        assert a.tobytes() == b.tobytes()
