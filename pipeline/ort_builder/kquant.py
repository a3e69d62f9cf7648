"""onnxruntime's k-quant weight quantization, vectorised across groups and sliced on every core: the same bytes, sooner.

The model builder's int4 recipe (``int4_algo_config: k_quant*``) quantizes each MatMul weight with
``onnxruntime.quantization.neural_compressor.weight_only.quant_tensor_k_quant_cpu``: NumPy over the whole
weight at once, twenty passes of a dozen element-wise operations, each making a full-size temporary. At
Phi-3-mini size that streams every weight matrix through RAM a few hundred times on one core: the
ort-dml-int4 build had not finished after 1140 s in the full-size main job (issue 24), where the same
builder's data-free RTN took 110 s.

Two things make it faster without changing a bit:

- **Slices.** Every quantization group (one row of the ``(groups, group_size)`` view) is computed from its own
  values only — its scale search, its rounding, its zero point — so the weight can be cut into slices of whole
  groups, each quantized on its own and written into its place in the outputs. The slices stay near the CPU's
  cache, and NumPy releases the GIL inside its loops, so a thread per core works on its own slice. Measured on
  this project's 2-core build machine: ``build@ort-cpu-int4`` of a Phi-3-mini-shaped model took 1850 s and
  7.8 GiB with the original, 875 s and 6.2 GiB sliced, with the same model.onnx and model.onnx.data bytes.
- **Groups along the fast axis** (``quantize_groups``). The original keeps a group in a row of 16-128 floats,
  so each of its per-group sums, and each operation with a per-group value, runs NumPy's inner loop once per
  group on 16 elements: a slice's sums took 380 µs where a multiply took 45. Here a slice is transposed so that
  every operation runs along the groups, and each per-group sum is NumPy's own pairwise summation written out
  (``_pairwise``: the same additions in the same order, so the same float32 result). The arithmetic of every
  other step is the original's, operation for operation. One thread, 8192 groups of 16: 30 -> 16 ms.

The whole stage, same machine and session, Phi-3-mini-shaped model (``python -m stages.build ort-cpu-int4``
under GNU time): the original sliced 839 s wall, 1101 s user, 6.34 GiB; vectorised and sliced 479 s, 602 s,
5.26 GiB; model.onnx, model.onnx.data and target.json the same sha256.

Both are checked against the installed original, not assumed: ``install`` runs the vectorised function and the
original on a probe weight (random, constant, all-zero, signed-zero, far-off and non-finite groups; 4 and 8 bits;
every block size the builder takes) and keeps the original, sliced, if any byte differs — a new onnxruntime or
NumPy that changes either side falls back instead of building other weights. ``tests/targets/test_kquant.py``
holds the same bytes on larger weights and every slice size.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Groups per slice. Each thread's NumPy calls hold the GIL while they dispatch, so slices must be large enough for
# the two threads not to wait on each other (first version of this code, a 3072 x 3072 weight, 2 threads against
# 1: 2.67 vs 1.64 s in slices of 2048 groups, 1.97 vs 1.49 s in 4096). This code, a 3072 x 8192 weight, block 16,
# 2 threads, two runs each: 2.14 / 2.34 s in slices of 8192 groups, 1.97 / 2.10 s in 16384, 2.36 / 2.09 s in 32768
# (the original function, sliced by 8192: 4.95 / 4.46 s).
SLICE_GROUPS = 16384
# NumPy's pairwise summation: 8 partial sums up to this many elements, halves above it (numpy/_core/src/umath).
PW_BLOCKSIZE = 128
# Block sizes the model builder takes (pipeline.targets.ortgenai): the probe covers each.
BLOCK_SIZES = (16, 32, 64, 128, 256)

Quantize = Callable[[Any, int, int], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _pairwise_rows(rows: np.ndarray) -> np.ndarray:
    """NumPy's ``pairwise_sum`` of ``rows[0] .. rows[n-1]`` (n >= 8), for every column at once."""
    n = rows.shape[0]
    if n > PW_BLOCKSIZE:
        half = n // 2
        half -= half % 8
        return _pairwise_rows(rows[:half]) + _pairwise_rows(rows[half:])
    r = rows[:8] + rows[8:16] if n >= 16 else rows[:8].copy()  # r[j] = a[j], then r[j] += a[i + j] in turn
    i = 16 if n >= 16 else 8
    while i < n - (n % 8):
        r += rows[i : i + 8]
        i += 8
    # ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), a level of the tree per call
    pairs = r[0::2] + r[1::2]
    quads = pairs[0::2] + pairs[1::2]
    res = quads[0] + quads[1]
    while i < n:
        res = res + rows[i]
        i += 1
    return res


def _pairwise(rows: np.ndarray) -> np.ndarray:
    """``np.sum(rows.T, axis=1, keepdims=True).T``: the reduction starts from the identity (+0.0), then adds the
    sum (which turns a sum of -0.0 into +0.0, as NumPy's does)."""
    return (_pairwise_rows(rows) + rows.dtype.type(0))[None, :]


def quantize_groups(data: Any, num_bits: int = 4, group_size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``quant_tensor_k_quant_cpu`` (onnxruntime 1.32) with the groups along the fast axis: same results, bytes.

    Every line below is a line of the original on the transposed ``(group_size, groups)`` array; the per-group
    sums are ``_pairwise``. ``rmin``/``rmax`` are the original's own calls on the original layout, so even which
    of two signed zeros they return is the original's."""
    data = np.reshape(data, (-1, group_size)).astype(np.float32)
    maxq = 2**num_bits - 1
    minq = 0
    x = np.ascontiguousarray(data.T)
    rmin = np.min(data, axis=1, keepdims=True).T.copy()
    rmax = np.max(data, axis=1, keepdims=True).T.copy()
    t = np.multiply(x, x)
    sum_x2 = _pairwise(t)
    av_x = np.sqrt(sum_x2 / group_size)
    weights = np.add(av_x, np.abs(x))
    sum_w = _pairwise(weights)
    np.multiply(weights, x, out=t)
    sum_x = _pairwise(t)
    iscale = np.ones(rmax.shape, dtype=data.dtype)
    mask = rmin != rmax
    iscale[mask] = (maxq - minq) / (rmax[mask] - rmin[mask])
    scale = 1 / iscale
    quant_data = np.subtract(x, rmin)
    np.multiply(iscale, quant_data, out=quant_data)
    np.round(quant_data, out=quant_data)
    np.clip(quant_data, minq, maxq, out=quant_data)
    np.multiply(scale, quant_data, out=t)  # diff = scale * quant_data + rmin - data
    np.add(t, rmin, out=t)
    np.subtract(t, x, out=t)
    np.multiply(t, t, out=t)
    np.multiply(weights, t, out=t)
    best_mad = _pairwise(t)
    q = np.empty_like(x)
    m = np.empty_like(x)
    nstep = 20
    rdelta = 0.1
    rrmin = -1
    for is_ in range(nstep):
        iscale_new = np.ones(rmax.shape, dtype=data.dtype)
        factor = np.array([rrmin + rdelta * is_ + maxq - minq]).astype(data.dtype)[0]
        mask = rmin != rmax
        iscale_new[mask] = factor / (rmax[mask] - rmin[mask])
        np.subtract(x, rmin, out=q)
        np.multiply(iscale_new, q, out=q)
        np.round(q, out=q)
        np.clip(q, minq, maxq, out=q)
        np.multiply(weights, q, out=m)
        sum_l = _pairwise(m)
        np.multiply(m, q, out=t)
        sum_l2 = _pairwise(t)
        np.multiply(m, x, out=t)
        sum_xl = _pairwise(t)
        d = np.subtract(sum_w * sum_l2, sum_l**2)
        this_scale = (sum_w * sum_xl - sum_x * sum_l) / d
        this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d
        np.multiply(this_scale, q, out=t)
        np.add(t, this_min, out=t)
        np.subtract(t, x, out=t)
        np.multiply(t, t, out=t)
        np.multiply(weights, t, out=t)
        mad = _pairwise(t)
        idx = np.where(mad[0] < best_mad[0])[0]
        quant_data[:, idx] = q[:, idx]
        best_mad[0, idx] = mad[0, idx]
        scale[0, idx] = this_scale[0, idx]
        rmin[0, idx] = this_min[0, idx]
    zero_point = np.clip(((-rmin) / scale).round(), 0, maxq).astype("uint8")
    scale = scale.astype(np.float64)
    q_weight = np.empty_like(x, dtype=scale.dtype)
    np.divide(x, scale, out=q_weight)
    np.add(q_weight, zero_point, out=q_weight)
    np.round(q_weight, out=q_weight)
    np.clip(q_weight, minq, maxq, out=q_weight)
    return np.ascontiguousarray(q_weight.T), np.ascontiguousarray(scale.T), np.ascontiguousarray(zero_point.T)


def probe_weight(group_size: int) -> np.ndarray:
    """Groups of every kind the check should see: random at several scales, constant, all-zero, signed zeros,
    one far-off value, tiny (subnormal) values and non-finite ones."""
    rng = np.random.default_rng(group_size)
    w = rng.standard_normal((192, group_size)).astype(np.float32) * rng.uniform(1e-3, 10, (192, 1)).astype(np.float32)
    w[0] = 0.25
    w[1] = 0.0
    w[2] = -0.0
    w[3, ::2] = -0.0
    w[4, 0] *= 1e4
    w[5] = 1e-41
    w[6, 1] = np.nan
    w[7, 2] = np.inf
    w[8] = np.round(w[8])
    return w


def same_as(original: Quantize, candidate: Quantize) -> bool:
    """True when ``candidate`` returns ``original``'s arrays, byte for byte, on the probe at 4 and 8 bits."""
    with np.errstate(all="ignore"):
        for group in BLOCK_SIZES:
            w = probe_weight(group)
            for bits in (4, 8):
                for got, want in zip(candidate(w, bits, group), original(w, bits, group), strict=True):
                    if got.dtype != want.dtype or got.shape != want.shape or got.tobytes() != want.tobytes():
                        return False
    return True


def sliced(per_slice: Quantize, slice_groups: int = SLICE_GROUPS, threads: int | None = None) -> Quantize:
    """``per_slice`` (``quant_tensor_k_quant_cpu``'s signature) applied slice by slice, on ``threads`` threads.

    The slices are cut from the weight as given and each thread writes its results into the whole outputs, so
    the copies around the quantization run on every core too: the original's first step (a reshape that copies
    the transposed weight the builder passes) and the joining of the parts (float64, twice the weight's bytes)
    took 30 s and 54 s of one core in a Phi-3-mini build when done once for the whole weight."""
    workers = threads or os.cpu_count() or 1

    def quantize(data: Any, num_bits: int = 4, group_size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        arr = np.asarray(data)
        if arr.ndim != 2 or arr.shape[1] % group_size:
            arr = np.reshape(arr, (-1, group_size))  # rows that are not whole groups: cut the groups themselves
        per_row = arr.shape[1] // group_size
        n_groups = arr.shape[0] * per_row
        if n_groups <= slice_groups:
            return per_slice(np.reshape(arr, (-1, group_size)), num_bits, group_size)
        rows = max(1, slice_groups // per_row)
        first = per_slice(np.reshape(arr[:rows], (-1, group_size)), num_bits, group_size)
        outs = tuple(np.empty((n_groups, *p.shape[1:]), dtype=p.dtype) for p in first)

        def put(start: int, parts: tuple[np.ndarray, ...]) -> None:
            lo = start * per_row
            for out, part in zip(outs, parts, strict=True):
                out[lo : lo + part.shape[0]] = part

        def work(start: int) -> None:
            put(start, per_slice(np.reshape(arr[start : start + rows], (-1, group_size)), num_bits, group_size))

        put(0, first)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(work, range(rows, arr.shape[0], rows)))
        return outs  # type: ignore[return-value]

    return quantize


def install() -> None:
    """Make the builder's k-quant (which the CUDA entry falls back to on a CPU) the fast one, in this process:
    vectorised and sliced when it matches the installed original on the probe, else the original sliced."""
    from onnxruntime.quantization.neural_compressor import weight_only

    original = weight_only.quant_tensor_k_quant_cpu
    if getattr(original, "aipc_sliced", False):
        return
    per_slice: Quantize = quantize_groups
    if not same_as(original, quantize_groups):
        log.warning(
            "k-quant: the vectorised replica differs from this onnxruntime's quant_tensor_k_quant_cpu on the probe;"
            " using the original (slower, same bytes as the builder)"
        )
        per_slice = original
    fast = sliced(per_slice)
    fast.aipc_sliced = True  # type: ignore[attr-defined]
    fast.aipc_vectorised = per_slice is quantize_groups  # type: ignore[attr-defined]
    weight_only.quant_tensor_k_quant_cpu = fast
