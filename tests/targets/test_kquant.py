"""The fast k-quant (vectorised across groups, sliced) is onnxruntime's own, bit for bit, and it is the one the
model builder's child calls; where it would differ, the original is kept."""

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


def assert_same(want, got):
    for a, b in zip(want, got, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and a.flags.c_contiguous == b.flags.c_contiguous
        assert a.tobytes() == b.tobytes()


SHAPES = [((192, 96), 4, 16), ((128, 256), 8, 32), ((512, 64), 4, 128), ((96, 512), 4, 64), ((64, 768), 8, 256)]


@pytest.mark.parametrize(("shape", "bits", "group"), SHAPES)
@pytest.mark.parametrize("slice_groups", [1, 7, 100, 10**6])
@pytest.mark.parametrize("per_slice", ["original", "vectorised"])
def test_same_bytes_as_the_whole_weight_at_once(shape, bits, group, slice_groups, per_slice):
    quantize = {"original": ORIGINAL, "vectorised": kquant.quantize_groups}[per_slice]
    w = weights(shape, seed=sum(shape) + bits)
    for data in (w, w.T):  # the builder passes the transposed weight (a strided view)
        assert_same(ORIGINAL(data, bits, group), kquant.sliced(quantize, slice_groups, threads=2)(data, bits, group))


@pytest.mark.parametrize("group", kquant.BLOCK_SIZES)
@pytest.mark.parametrize("bits", [4, 8])
def test_vectorised_is_the_original_on_trained_scales(group, bits):
    """Weights as a trained checkpoint has them (small, heavy-tailed, bf16-rounded), many groups at once."""
    rng = np.random.default_rng(group + bits)
    w = (rng.standard_t(4, (4096, group)) * 0.02).astype(np.float32)
    w = (w.view(np.uint32) & 0xFFFF0000).view(np.float32)  # bf16 values, as the builder reads them
    with np.errstate(all="ignore"):
        assert_same(ORIGINAL(w, bits, group), kquant.quantize_groups(w, bits, group))


def test_the_probe_catches_a_replica_one_ulp_off():
    """The install-time check is what keeps a changed onnxruntime or NumPy from building other weights: a replica
    whose scale differs in one group by one ulp, or whose sums run in another order, must fail it."""
    assert kquant.same_as(ORIGINAL, kquant.quantize_groups)

    def one_ulp_off(data, bits, group):
        q, s, z = kquant.quantize_groups(data, bits, group)
        s = s.copy()
        s[5] = np.nextafter(s[5], np.inf)
        return q, s, z

    def sequential_sums(data, bits, group):
        # np.add.reduce along the slow axis: plain left-to-right sums, not NumPy's pairwise order
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(kquant, "_pairwise", lambda rows: np.add.reduce(rows, axis=0, keepdims=True))
            return kquant.quantize_groups(data, bits, group)

    assert not kquant.same_as(ORIGINAL, one_ulp_off)
    assert not kquant.same_as(ORIGINAL, sequential_sums)


def test_install_keeps_the_original_when_the_replica_differs(monkeypatch, caplog):
    """An onnxruntime whose k-quant changed (here: scales one part in ten million off) is not replaced by
    the replica of the old one: the sliced original runs, and the log says so."""

    def changed(data, bits=4, group=32):
        q, s, z = ORIGINAL(data, bits, group)
        return q, s * 1.0000001, z

    monkeypatch.setattr(weight_only, "quant_tensor_k_quant_cpu", changed)
    kquant.install()
    installed = weight_only.quant_tensor_k_quant_cpu
    assert installed.aipc_sliced and not installed.aipc_vectorised
    assert "differs" in caplog.text
    w = weights((64 * 1024, 32), seed=2)
    assert_same(changed(w.T, 4, 16), installed(w.T, 4, 16))


def test_the_builders_entry_reaches_the_sliced_one(monkeypatch):
    """rtn_quantize calls quant_tensor_k_quant_cuda, which falls back to the module's CPU function on a CPU:
    after install() that is the sliced one (looked up at call time), and it gives the original's bytes."""
    monkeypatch.setattr(weight_only, "quant_tensor_k_quant_cpu", ORIGINAL)
    kquant.install()
    installed = weight_only.quant_tensor_k_quant_cpu
    assert installed is not ORIGINAL and installed.aipc_sliced and installed.aipc_vectorised
    kquant.install()  # twice is once
    assert weight_only.quant_tensor_k_quant_cpu is installed
    w = weights((64 * 1024, 32), seed=1)  # 131072 groups of 16, 4096 to a row of w.T: 8 slices of 4 rows
    calls = []
    monkeypatch.setattr(weight_only, "quant_tensor_k_quant_cpu", lambda *a: calls.append(a) or installed(*a))
    got = weight_only.quant_tensor_k_quant_cuda(w.T, 4, 16)
    assert calls
    assert_same(ORIGINAL(w.T, 4, 16), got)
