"""Calibration: honest metrics and exact temperature scaling.

Metrics (:mod:`.metrics`) reduce to per-bin sums, so they also stream
(:mod:`.accumulator`) and run on Dask arrays (:mod:`.distributed`).
Temperature scaling (:mod:`.scaling`) solves the convex 1-D problem in
``beta = 1/T`` exactly. ``TemperatureScaled`` (a ``torch.nn.Module``) loads
torch only when first used.
"""

from __future__ import annotations

from typing import Any

from thermoscope.calibration.accumulator import CalibrationAccumulator, accumulate_npy
from thermoscope.calibration.classifier import TemperatureScaledClassifier
from thermoscope.calibration.metrics import (
    CalibrationSummary,
    ReliabilityCurve,
    brier_score,
    calibration_summary,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_curve,
)
from thermoscope.calibration.scaling import (
    SeparableDataWarning,
    TemperatureBoundWarning,
    TemperatureFit,
    TemperatureScaler,
    fit_temperature,
    temperature_for_confidence,
)

__all__ = [
    "CalibrationAccumulator",
    "CalibrationSummary",
    "ReliabilityCurve",
    "SeparableDataWarning",
    "TemperatureBoundWarning",
    "TemperatureFit",
    "TemperatureScaled",
    "TemperatureScaledClassifier",
    "TemperatureScaler",
    "accumulate_npy",
    "brier_score",
    "calibration_summary",
    "expected_calibration_error",
    "fit_temperature",
    "maximum_calibration_error",
    "negative_log_likelihood",
    "reliability_curve",
    "temperature_for_confidence",
]


def __getattr__(name: str) -> Any:
    # TemperatureScaled subclasses torch.nn.Module: defining it imports torch,
    # so it is looked up only when someone asks for it.
    if name == "TemperatureScaled":
        from thermoscope.calibration.torch_module import TemperatureScaled

        return TemperatureScaled
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
