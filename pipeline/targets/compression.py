"""Knobs shared by the OpenVINO families (``openvino`` and ``npu``): NNCF weight compression (a settings schema).

Both families derive their IR from the same FP IR with ``nncf.compress_weights``; these are the knobs
of that call, each explicit — optimum-intel's per-model table would otherwise silently pick asym, group
64, ratio 1.0 for Phi-3 when plain ``--weight-format int4`` is asked.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pipeline.targets.base import StrictSettings, scaled


class Calibration(StrictSettings):
    """Offline calibration text for the data-aware algorithms (no Hub dataset needed)."""

    dataset: str = Field(
        "corpus",
        description="'corpus' = the shipped training text (the embedded model's own corpus), "
        "or a path to a UTF-8 text file whose blank-line-separated paragraphs are the samples, "
        "or 'none' = data-free (AWQ only: the weights' own magnitudes, as `optimum-cli --awq` without --dataset).",
    )
    samples: int = Field(64, ge=1, le=4096)
    seq_len: int = Field(128, ge=8, le=4096)


DATA_AWARE = ("awq", "scale_estimation", "gptq", "lora_correction")
NEED_DATA = ("scale_estimation", "gptq", "lora_correction")  # AWQ alone also has a data-free form
DATA_FREE = "none"
# A calibrating build's peak RAM as a ratio to the source's bf16 weights: the calibration statistics child, NNCF
# running the FP IR in f32 (pipeline.openvino_ir.calibration_stats): 8.42 GiB on Phi-3-mini, above the int4
# compression after it (4.3 GiB for ov-int4). 14.7 GiB while the child also ran the IR to record its inputs.
CALIBRATION_RAM_RATIO = 0.97
# The same build when an earlier one collected the statistics it reads (the build cache): NNCF's compression alone,
# scale estimation sliced (pipeline.openvino_ir.scale_estimation). Measured at Phi-3-mini size with a 1.6 GiB
# floor: run by itself, ov-int4 4.38 GiB (0.39) and ov-npu-int4 4.58 GiB (0.42); ov-npu-int4 under DVC in the
# main job's run 5, 5.78 GiB (0.59). The higher one.
READING_STATISTICS_RAM_RATIO = 0.59


class Compression(StrictSettings):
    """The int4/int8 weight compression of an IR (``nncf.compress_weights`` arguments)."""

    sym: bool = Field(True, description="Symmetric int4 (no zero points); NPU requires it.")
    group_size: int = Field(128, description="Weights per quantization group along input channels; -1 = per channel.")
    ratio: float = Field(1.0, gt=0, le=1, description="Share of ratio-defining layers in int4; the rest use backup.")
    backup_precision: Literal["int8_asym", "int8_sym", "none"] = Field(
        "int8_asym", description="Precision of layers not chosen for int4 (NNCF's and optimum-cli's default)."
    )
    all_layers: bool = Field(False, description="Also put embeddings/lm_head in int4 instead of int8.")
    sensitivity_metric: (
        Literal[
            "weight_quantization_error",
            "hessian_input_activation",
            "mean_activation_variance",
            "max_activation_variance",
            "mean_activation_magnitude",
        ]
        | None
    ) = Field(None, description="How layers are ranked for the int4 ratio; null = NNCF's default for the data.")
    awq: bool = False
    scale_estimation: bool = False
    gptq: bool = False
    lora_correction: bool = False
    calibration: Calibration = Field(default_factory=Calibration)
    group_size_fallback: Literal["error", "ignore", "adjust"] = Field(
        "error",
        description="When the group size does not divide a layer: error (default), ignore (leave that layer "
        "in backup precision) or adjust (NNCF picks the closest group size that divides).",
    )

    @model_validator(mode="after")
    def _combos(self) -> Compression:
        if self.group_size == 0 or self.group_size < -1:
            raise ValueError(f"group_size = {self.group_size}: use -1 (per channel) or a positive group size")
        if self.gptq and self.lora_correction:
            raise ValueError("gptq and lora_correction cannot be combined (NNCF supports one of them)")
        if self.calibration.dataset == DATA_FREE:
            needs = [a for a in NEED_DATA if getattr(self, a)]
            if needs:
                raise ValueError(
                    f"{needs[0]} needs calibration data: set calibration.dataset to corpus or a text file "
                    f"(only awq runs data-free with calibration.dataset: {DATA_FREE})"
                )
        return self

    @property
    def data_aware(self) -> bool:
        """Whether the build calibrates on text (AWQ alone with ``calibration.dataset: none`` is data-free)."""
        return any(getattr(self, a) for a in DATA_AWARE) and self.calibration.dataset != DATA_FREE

    @property
    def shared_statistics(self) -> str | None:
        """The calibration statistics this build reads, by what they depend on besides the shared IR (the text and
        its settings), or None when NNCF needs the data itself (GPTQ, LoRA correction) or none at all. Builds with
        the same value share one collection (``pipeline.openvino_ir.calibration_stats``)."""
        if not self.data_aware or self.gptq or self.lora_correction:
            return None
        return f"calibration statistics {self.calibration.model_dump_json()}"


def statistics_sharing(settings: Compression, weights: int) -> dict[str, str | int | None]:
    """The ``Estimate`` fields of a build that shares the calibration statistics it reads (``shares``, and its
    peak when an earlier build collected them, ``ram_when_shared``); both None when it shares none."""
    shares = settings.shared_statistics
    return {"shares": shares, "ram_when_shared": scaled(1.6, READING_STATISTICS_RAM_RATIO, weights) if shares else None}
