"""`aipc bench`: the pipeline against the anchor commands on a Phi-3-mini-shaped model, in one run.

The real weights cannot be downloaded here, so the benchmark makes a model with Phi-3-mini-4k's exact
shapes and random weights (``synthetic``), then times, each in its own process with the whole process tree
measured (``measure``):

1. the anchors, each alone (``anchors``): ``optimum-cli export openvino`` and onnxruntime-genai's builder
   with the flags the project's target settings translate to;
2. the project's own stages for the same five targets (``source``, ``ov-ir``, ``build@<target>``);
3. decode speed of every INT4 artifact on CPU through the validation runners (``decode``), beside the bound
   "weight bytes read per token ÷ memory read bandwidth", the bandwidth measured in the same run.

It checks that each project artifact holds the same weights as its anchor (sha256), so a speed-up is not
bought with a different model; ``render`` writes docs/benchmarks.md against the goals in ``GOALS``.
"""

from __future__ import annotations

from dataclasses import dataclass

GiB = 2**30
TARGETS = ("ov-fp16", "ov-int4", "ov-npu-int4", "ort-cpu-int4", "ort-dml-int4")


@dataclass(frozen=True)
class Goals:
    """What the project promises at full size (rendered beside the measurements)."""

    build_wall_ratio: float = 0.6  # the project's five builds (shared IR included) against the anchors'
    peak_rss_gib: float = 12.0  # every project step
    decode_ratio: float = 1.2  # ms/token against the memory-bandwidth bound


GOALS = Goals()
