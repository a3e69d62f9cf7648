"""What every runner offers the validation harness, and how the device is chosen.

A runner loads one artifact with its own runtime and exposes four things: greedy generation from exact
token ids (with timings), next-token logits for a whole sequence (teacher forcing, perplexity), the
artifact's own chat-template + tokenizer path (to prove it produces the reference ids), and the device
that *actually* ran. Device choice never falls back silently: "auto" picks the best device present and
says when that is a proxy (e.g. the NPU IR on the OpenVINO CPU device); an explicitly requested device
that is absent is an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from pipeline.errors import PipelineError


@dataclass
class Generation:
    tokens: list[int]
    ttft_ms: float | None = None  # time to first token (prefill + first decode)
    tpot_ms: float | None = None  # mean time per output token after the first
    seconds: float = 0.0
    step_ms: list[float] = field(default_factory=list)  # each output token after the first


@dataclass
class DeviceChoice:
    """Where a target runs in this validation, and how that relates to where it is meant to run."""

    device: str  # the device that runs it here, e.g. "CPU", "NPU", "DML", "GPU.0"
    intended: str  # where the artifact is meant to run
    proxy: str | None = None  # set when device != intended: what stands in for what
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.device} (proxy: {self.proxy})" if self.proxy else self.device


class Runner(Protocol):
    choice: DeviceChoice
    load_seconds: float
    properties: dict[str, Any]  # what was set on the runtime (recorded with the results)
    effective: dict[str, str]  # what the runtime reports using, where it tells

    def generate(self, ids: list[int], max_new_tokens: int, ignore_eos: bool = False) -> Generation:
        """Greedy tokens after ``ids`` (``ignore_eos``: exactly ``max_new_tokens``, for timing)."""
        ...

    def logits(self, ids: list[int]) -> np.ndarray: ...

    # Optional: ``logits_chunks(ids)`` yielding (first position, logits) in order, for a runtime that scores a
    # long sequence in pieces; ``logits_in_chunks`` falls back to one piece.

    def chat_ids(self, messages: list[dict[str, str]]) -> list[int]: ...

    def close(self) -> None: ...


def logits_in_chunks(runner: Runner, ids: list[int]) -> Iterator[tuple[int, np.ndarray]]:
    """A long sequence's logits piece by piece where the runner scores it so (the OpenVINO runner: a 4k run's
    f32 logits are 525 MB for Phi-3-mini, not needed whole by a caller that reduces them), else in one piece."""
    chunks = getattr(runner, "logits_chunks", None)
    if chunks is not None:
        yield from chunks(ids)
    else:
        yield 0, runner.logits(ids)


class DeviceUnavailable(PipelineError):
    pass


def cut_at_eos(tokens: list[int], eos: set[int]) -> list[int]:
    """Runtimes differ on whether the stop token is returned; compare what comes before it."""
    for i, t in enumerate(tokens):
        if t in eos:
            return list(tokens[:i])
    return list(tokens)
