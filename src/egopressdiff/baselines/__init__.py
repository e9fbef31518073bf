"""Per-frame baselines: PressureVision-style classification and regression, and PressureFormer-style."""

from egopressdiff.baselines.perframe import (
    BIN_MIDPOINTS_KPA,
    PRESSURE_THRESHOLDS_KPA,
    PerFrameBaseline,
    PerFrameBaselineConfig,
    decode_classes,
    quantize_pressure,
    soft_targets,
)
from egopressdiff.baselines.pressureformer import PressureFormerBaseline, PressureFormerConfig

__all__ = [
    "BIN_MIDPOINTS_KPA",
    "PRESSURE_THRESHOLDS_KPA",
    "PerFrameBaseline",
    "PerFrameBaselineConfig",
    "PressureFormerBaseline",
    "PressureFormerConfig",
    "decode_classes",
    "quantize_pressure",
    "soft_targets",
]
