"""NNCF's scale estimation in cache-sized slices of whole quantization groups: the same bytes, sooner.

The int4 recipes chosen on a real trained checkpoint (AWQ + scale estimation, README "Int4 recipes") made the
calibrating OpenVINO builds the longest stages of the main job at Phi-3-mini size, and scale estimation is most of
their compression: NNCF's ``ScaleEstimation.calculate_quantization_params`` runs fifteen rounds of a dozen
element-wise NumPy operations and OpenVINO helper models over the whole weight, each making a full-size
temporary (one gate_up weight: 50 M floats, 200 MB each), so the weight streams through RAM hundreds of times.

Every value it computes belongs to one quantization group (an output channel's ``group_size`` consecutive input
channels) and depends only on that group's weights and the activations of its input channels: the importance
is normalised within the group, the scales are searched per group, the error is the group's partial product
with its own activations. So the weight can be cut along the input channels into slices of whole groups, each
slice estimated by NNCF's own function with the statistics of its channels, and the results put back in
order. Cutting along the *output* channels instead was measured to change bytes: the partial products are a
batched matrix product whose row count decides OpenBLAS's kernel (16 or 32 rows differed from 3072 in the
last bit); cut along groups, every batch of that product keeps its rows and its shape, and NNCF's helper
models see the same row count too. Each slice is kept at or above the size under which NNCF leaves its
OpenVINO helpers for plain NumPy (another implementation). ``tests/targets/test_scale_estimation.py`` holds
the bytes equal to the whole weight's, directly and through NNCF's own compression of an IR.

Measured on this project's 2-core build machine, one weight at a time at Phi-3-mini shapes: gate_up
(16384 x 3072, asym group 64) 17.2 s -> 9.0 s, qkv 9.4 -> 5.3 s, down 8.2 -> 4.3 s, o 2.9 -> 1.7 s; symmetric
group 128 (the NPU recipe) 13.0 -> 6.4 s for gate_up; the same scales and zero points, byte for byte. Whole
stages on a Phi-3-mini-shaped model, the statistics read from the build cache: ``build@ov-int4`` 557 s at
5.01 GiB -> 345 s at 4.38 GiB, ``build@ov-npu-int4`` 772 s at 5.11 GiB -> 518 s at 4.58 GiB, each with the same
model .bin, .xml and build record (sha256).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Weight elements per slice: 512 Ki float32 (2 MiB) keeps a slice's temporaries near the core's cache.
# Measured on a 3072 x 8192 weight: 1 group 4.65 s, 512 Ki 4.34 s, 2 Mi 4.61 s, the whole weight 8.2 s.
SLICE_ELEMENTS = 1 << 19


def group_slices(n_groups: int, groups_per_slice: int) -> list[tuple[int, int]]:
    """``n_groups`` cut into as many runs of consecutive groups as hold ``groups_per_slice`` each, sizes
    differing by at most one (so no short remainder slice falls under NNCF's size threshold)."""
    count = max(1, n_groups // max(1, groups_per_slice))
    base, extra = divmod(n_groups, count)
    bounds, start = [], 0
    for i in range(count):
        end = start + base + (1 if i < extra else 0)
        bounds.append((start, end))
        start = end
    return bounds


def sliced(original: Any, slice_elements: int = SLICE_ELEMENTS) -> Any:
    """``original`` (``ScaleEstimation.calculate_quantization_params``) applied to slices of whole groups."""
    from nncf.common.tensor_statistics.statistics import WCTensorStatistic
    from nncf.quantization.algorithms.weight_compression.constants import MIN_INPUT_SIZE_FOR_OPTIMIZED_COMPRESSION
    from nncf.tensor import Tensor, TensorBackend, TensorDataType

    def calculate_quantization_params(
        statistics: Any,
        weight: Any,
        reduction_axes: tuple[int, ...],
        config: Any,
        act_ch_axis: int = -1,
        subset_size: int = 32,
        initial_steps: int = 5,
        scale_steps: int = 10,
        weight_penalty: float = -1.0,
    ) -> tuple[Any, Any]:
        args = (reduction_axes, config, act_ch_axis, subset_size, initial_steps, scale_steps, weight_penalty)
        axis = reduction_axes[0] if len(reduction_axes) == 1 else None
        group = config.group_size
        means = statistics.mean_values
        if (
            weight.backend != TensorBackend.numpy
            or weight.ndim != 2
            or axis not in (0, 1)
            or group <= 0
            or weight.shape[axis] % group
            or not means
            or any(m.backend != TensorBackend.numpy or m.ndim != 1 or m.shape[0] != weight.shape[axis] for m in means)
        ):
            return original(statistics, weight, *args)  # shapes this cut was not proven on: NNCF's own run
        outputs = weight.shape[1 - axis]
        per_slice = max(slice_elements // (outputs * group), 1)
        if weight.size >= MIN_INPUT_SIZE_FOR_OPTIMIZED_COMPRESSION:
            per_slice = max(per_slice, math.ceil(MIN_INPUT_SIZE_FOR_OPTIMIZED_COMPRESSION / (outputs * group)))
        bounds = group_slices(weight.shape[axis] // group, per_slice)
        if len(bounds) == 1:
            return original(statistics, weight, *args)
        full = weight.astype(TensorDataType.float32).data  # the original's own first step on the weight
        parts = []
        for start, end in bounds:
            lo, hi = start * group, end * group
            part = full[lo:hi] if axis == 0 else full[:, lo:hi]
            stats = WCTensorStatistic(
                mean_values=[Tensor(m.data[lo:hi]) for m in means], shape_values=statistics.shape_values
            )
            parts.append(original(stats, Tensor(np.ascontiguousarray(part)), *args))
        # The scales come back [outputs, groups, 1] for a weight reduced along axis 1, [groups, 1, outputs] along 0.
        joined = 1 if axis == 1 else 0
        scale = Tensor(np.concatenate([p[0].data for p in parts], axis=joined))
        zero_point = None if parts[0][1] is None else Tensor(np.concatenate([p[1].data for p in parts], axis=joined))
        return scale, zero_point

    return calculate_quantization_params


def install() -> None:
    """Make NNCF's scale estimation the sliced one, in this process (idempotent)."""
    from nncf.quantization.algorithms.weight_compression.scale_estimation import ScaleEstimation

    current = ScaleEstimation.calculate_quantization_params
    if getattr(current, "aipc_sliced", False):
        return
    fast = sliced(current, SLICE_ELEMENTS)
    fast.aipc_sliced = True  # type: ignore[attr-defined]
    ScaleEstimation.calculate_quantization_params = staticmethod(fast)  # type: ignore[method-assign]
    log.debug("scale estimation: slices of whole groups (%d elements)", SLICE_ELEMENTS)
