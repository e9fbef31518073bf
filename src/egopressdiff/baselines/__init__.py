"""Per-frame baselines: PressureVision-style classification and regression."""

from egopressdiff.baselines.perframe import (
    BIN_MIDPOINTS_KPA,
    PRESSURE_THRESHOLDS_KPA,
    PerFrameBaseline,
    PerFrameBaselineConfig,
    decode_classes,
    quantize_pressure,
    soft_targets,
)

__all__ = [
    "BIN_MIDPOINTS_KPA",
    "PRESSURE_THRESHOLDS_KPA",
    "PerFrameBaseline",
    "PerFrameBaselineConfig",
    "decode_classes",
    "quantize_pressure",
    "soft_targets",
]
