"""Thin DVC stage entry points: parse argv, call the library, exit non-zero on failure.

Every stage computes under one CPU math profile (``pipeline.numerics``), set here before anything imports
PyTorch: a stage's output is then the same on any x86-64 machine with AVX2, whatever its cores and vector width.
"""

from pipeline.numerics import use_portable_cpu_math

use_portable_cpu_math()
