"""The contract every target family fulfils, and what the pipeline hands a family.

A family is one module in this package (``openvino``, ``npu``, ``ortgenai``; the legacy ``npu_lib`` route is
its own package) registered in ``pipeline.targets.FAMILIES``. ``TargetFamily`` lists every member the
pipeline uses; a test holds each registered module against it. Settings are typed once, in params
(``Target`` is a union discriminated on ``family``), so a family receives its own validated ``Settings``.

A family owns the files it adds to an artifact (e.g. the NPU run config): it writes them in ``build`` and
is the only one that reads them back (``runtime_properties``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from pipeline.records import BuildFacts


class StrictSettings(BaseModel):
    """Base for build settings: unknown keys are errors (a typo must not silently become a default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ModelDims:
    """What a model's shape means for the targets: the channel sizes quantization groups must divide, the
    attention layout runtimes have kernels for, and the positions where RoPE changes behaviour."""

    hidden_size: int
    intermediate_size: int
    num_layers: int | None = None
    vocab_size: int | None = None
    num_heads: int | None = None
    num_kv_heads: int | None = None
    partial_rotary_factor: float = 1.0
    max_position_embeddings: int | None = None
    original_max_position_embeddings: int | None = None
    longrope: bool = False  # LongRoPE: other rotary factors once a sequence is longer than the original context

    @property
    def head_dim(self) -> int | None:
        return self.hidden_size // self.num_heads if self.num_heads else None

    @property
    def rotary_dim(self) -> int | None:
        return int(self.head_dim * self.partial_rotary_factor) if self.head_dim else None

    @property
    def input_channels(self) -> dict[str, int]:
        """Input-channel size of each linear layer kind (the axis int4 groups run along)."""
        return {
            "qkv_proj/o_proj/gate_up_proj/lm_head (hidden_size)": self.hidden_size,
            "down_proj (intermediate_size)": self.intermediate_size,
        }

    @classmethod
    def from_config(cls, config_path: Path) -> ModelDims:
        """The dims of an HF ``config.json``; a file that is not one is one line naming it and what is wrong
        (an empty ``{}`` once ended in "internal error: KeyError: 'hidden_size'")."""
        cfg = read_model_config(config_path)
        rope = cfg.get("rope_scaling") or cfg.get("rope_parameters") or {}
        rope_type = rope.get("rope_type") or rope.get("type")
        heads = int(cfg.get("num_attention_heads", 0)) or None
        return cls(
            hidden_size=int(cfg["hidden_size"]),
            intermediate_size=int(cfg["intermediate_size"]),
            num_layers=int(cfg.get("num_hidden_layers", 0)) or None,
            vocab_size=int(cfg.get("vocab_size", 0)) or None,
            num_heads=heads,
            num_kv_heads=int(cfg.get("num_key_value_heads") or heads or 0) or None,
            partial_rotary_factor=float(cfg.get("partial_rotary_factor") or rope.get("partial_rotary_factor") or 1.0),
            max_position_embeddings=int(cfg.get("max_position_embeddings", 0)) or None,
            original_max_position_embeddings=int(
                cfg.get("original_max_position_embeddings") or rope.get("original_max_position_embeddings") or 0
            )
            or None,
            longrope=rope_type in ("longrope", "su"),
        )


# The keys every stage reads from a Phi-3-family config (ModelDims, the builders, the runners).
CONFIG_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


def read_model_config(config_path: Path) -> dict[str, Any]:
    """``config.json`` as a mapping holding a positive integer at each of ``CONFIG_KEYS``, or ``SourceError``."""
    from pipeline.errors import SourceError

    fix = "point the models entry at an HF-format model folder (its config.json comes from the model's repository)"
    try:
        cfg = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceError(f"{config_path} is missing", fix=fix) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"{config_path} is not valid JSON ({exc})", fix=fix) from None
    if not isinstance(cfg, dict):
        raise SourceError(f"{config_path} holds a JSON {type(cfg).__name__}, not the config mapping", fix=fix)
    missing = [k for k in CONFIG_KEYS if k not in cfg]
    if missing:
        raise SourceError(f"{config_path} lacks {', '.join(missing)} (a model config has them)", fix=fix)
    bad = [f"{k} = {cfg[k]!r}" for k in CONFIG_KEYS if not (isinstance(cfg[k], int) and cfg[k] > 0)]
    if bad:
        raise SourceError(f"{config_path}: {', '.join(bad)} — must be positive integers", fix=fix)
    return cfg


def group_size_problems(
    key: str, group_size: int, dims: ModelDims, candidates: tuple[int, ...], also: str = ""
) -> list[str]:
    """Why ``group_size`` cannot be used on a model of shape ``dims`` (empty when it can), naming the sizes among
    ``candidates`` that divide every layer — a fixed "e.g. 128" once suggested the very value just refused (hidden
    size 576). ``also``: the family's other way out, said after them."""
    if group_size == -1:
        return []
    bad = {name: size for name, size in dims.input_channels.items() if size % group_size}
    if not bad:
        return []
    sizes = ", ".join(f"{name}={size}" for name, size in bad.items())
    fits = [c for c in candidates if all(size % c == 0 for size in dims.input_channels.values())]
    ways = [f"use one that divides them all: {', '.join(map(str, fits))}"] if fits else []
    if candidates and not fits:
        ways.append(f"none of {'/'.join(map(str, candidates))} divides them all")
    ways += [also] if also else []
    return [f"{key} = {group_size}: does not divide the input channels of {sizes}; {'; '.join(ways)}"]


GiB = 2**30


def scaled(floor_gib: float, ratio: float, weights: int) -> int:
    """A measured need: the process's floor (toolkits imported; all of it on the embedded model) plus a ratio
    to the source's bf16 weight bytes (calibrated on the Phi-3-mini-shaped model: `aipc bench main-job`)."""
    return int(floor_gib * GiB + ratio * weights)


class Estimate(NamedTuple):
    """What a target needs (bytes): the build's peak RAM, the artifact's size on disk, and the peak RAM of
    validating it (its runtime holding the artifact, with the long-context runs). ``pipeline.resource_plan``
    adds the process floor."""

    ram: int
    disk: int
    validate_ram: int
    scratch: int = 0  # temporary disk while it builds, freed when it ends (measured as the disk's peak)
    # What scoring one long sequence adds (``pipeline.resource_plan.long_context_bytes``): bytes per element of
    # the KV cache the runtime keeps during the pass (f32 unless the family says less), and the f32 copies of
    # the logits held.
    kv_element_bytes: int = 4
    logits_copies: int = 1
    # A build whose peak is collecting data it shares with other builds (the OpenVINO families' calibration
    # statistics of the shared IR): what it shares, by key, and its peak when an earlier build has collected them.
    shares: str | None = None
    ram_when_shared: int | None = None


@dataclass
class BuildContext:
    """What a family's ``build`` receives."""

    target: str
    settings: Any
    source_dir: Path
    work_dir: Path
    artifacts_dir: Path
    dims: ModelDims


@dataclass(frozen=True)
class RuntimeOptions:
    """How a runtime is configured when an artifact is run for validation or a check (not a build setting).

    ``openvino``: OpenVINO properties for CPU/GPU (``validation.runtime.openvino``; empty = the runtime's own
    defaults); ``threads``: CPU threads (None = physical cores); ``cache_root``: where compile caches go.
    """

    openvino: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None
    cache_root: Path | None = None


@dataclass
class Check:
    """One line of ``aipc doctor``: ``ok``, ``info`` (a fact), ``warn`` or ``fail``."""

    name: str
    status: str
    detail: str


@runtime_checkable
class TargetFamily(Protocol):
    """Every member the pipeline uses from a family module."""

    RUNTIME: str  # the runner (``pipeline.runners``) that generates from its artifacts
    # The distributions that run its artifacts (what a deployment installs), and the oldest version of each
    # that a test proves loads and generates them (empty: only the version validation ran).
    RUNTIME_PACKAGES: tuple[str, ...]
    OLDEST_RUNTIME: dict[str, str]
    Settings: type[StrictSettings]  # its build knobs, each explicit with a default and a description

    def preflight(self, settings: Any, dims: ModelDims | None) -> list[str]:
        """Problems with ``settings`` for a model of this shape, before any work (one line each)."""
        ...

    def estimate(self, settings: Any, weights: int) -> Estimate:
        """Build RAM, artifact disk and validation RAM for a bf16 source of ``weights`` bytes (measured ratios)."""
        ...

    def intended_device(self, settings: Any) -> str:
        """Where the artifact is meant to run (CPU/GPU, NPU, DML...)."""
        ...

    def build(self, ctx: BuildContext) -> BuildFacts:
        """Write the artifact into ``ctx.work_dir`` (moved into place by the caller only when complete)."""
        ...

    def runtime_properties(self, settings: Any, artifact: Path, device: str, options: RuntimeOptions) -> dict[str, Any]:
        """The runtime properties that run this artifact on ``device`` (everything that changes outputs)."""
        ...

    def environment_checks(self, settings: Any) -> list[Check]:
        """What ``aipc doctor`` should say about this family's own environment (usually nothing)."""
        ...

    def long_context_edges(self, settings: Any) -> list[tuple[int, str]]:
        """Lengths this family's artifacts must also be checked at (an NPU's static window), and why."""
        ...

    def max_context(self, settings: Any, artifact: Path, device: str) -> tuple[int, str] | None:
        """The longest sequence the artifact takes on ``device``, and why (None: no limit of its own)."""
        ...

    def long_context_caveat(self, settings: Any, dims: ModelDims, length: int, device: str) -> str | None:
        """What a pass of ``length`` tokens on ``device`` cannot prove about the intended device (None: nothing
        beyond the proxy that the device label already names)."""
        ...
