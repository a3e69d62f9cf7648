"""One CPU math profile for every stage, so that what a stage computes does not depend on which x86 machine ran it.

PyTorch's CPU kernels pick a code path by instruction set at run time (ATen's AVX-512 or AVX2 kernels) and
Intel MKL splits a matrix-vector product's reduction across threads. Measured on the embedded model's
reference (greedy generation with the KV cache, scored): one thread against two changed the reference's
log-probs by up to 3e-6, and ATen's AVX2 kernels against its AVX-512 ones changed them too — so a 16-core
CI runner, an AVX-512 laptop and this 2-core machine each computed a different reference (and trained a
different embedded model). MKL's conditional numerical reproducibility in strict AVX2 mode and ATen pinned to
its AVX2 kernels gave the same bytes for 1 and 2 threads, with oneDNN capped at AVX2 and with NumPy's AVX-512
kernels disabled; every x86-64 CPU of the last decade has AVX2. Measured cost here (AMD EPYC, AVX-512):
none for a 1024×3072×8192 fp32 matmul or a matrix-vector product (within run-to-run noise).

The variables are read when PyTorch and MKL load, so the stage entry points set them before any import
(``stages/__init__.py``); a value already set in the environment is replaced, because a stage's output must
be a function of its inputs, not of the shell it was started from.
"""

from __future__ import annotations

import os
import sys

PORTABLE_CPU_MATH = {
    "MKL_CBWR": "AVX2,STRICT",  # MKL: the AVX2 code path, results independent of the thread count
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch: ATen's AVX2 kernels on every x86-64 CPU that has them
}


def use_portable_cpu_math() -> None:
    """Set the profile for this process and its children; must run before PyTorch is imported."""
    if "torch" in sys.modules:
        raise RuntimeError("use_portable_cpu_math() must run before torch is imported (stages/__init__.py)")
    os.environ.update(PORTABLE_CPU_MATH)
