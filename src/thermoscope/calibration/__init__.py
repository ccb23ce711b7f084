"""Calibration: honest metrics and exact temperature scaling.

Metrics (:mod:`.metrics`) reduce to per-bin sums, so they also stream
(:mod:`.streaming`) and run on Dask arrays (:mod:`.dask`). The temperature
fit (:mod:`.fit`) solves the convex 1-D problem in ``beta = 1/T`` exactly;
:mod:`.scaler` wraps it as a scikit-learn estimator and :mod:`.classifier`
around a fitted classifier. ``TemperatureScaled`` (a ``torch.nn.Module``,
:mod:`.torch_module`) loads torch only when first used.

Modules import downwards only: ``_binning`` <- ``_inputs`` <- ``_nll``,
``_results``, ``_torch_metrics``, ``_chunks`` <- ``streaming``, ``dask`` <-
``metrics`` <- ``fit`` <- ``scaler`` <- ``classifier``, ``torch_module``.
"""

from __future__ import annotations

from typing import Any

from thermoscope.calibration.classifier import TemperatureScaledClassifier
from thermoscope.calibration.fit import (
    SeparableDataWarning,
    TemperatureBoundWarning,
    TemperatureFit,
    fit_temperature,
    temperature_for_confidence,
)
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
from thermoscope.calibration.scaler import TemperatureScaler
from thermoscope.calibration.streaming import CalibrationAccumulator, accumulate_npy

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
