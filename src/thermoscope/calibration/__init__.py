"""Calibration: honest metrics and exact temperature scaling.

Metrics (:mod:`.metrics`) reduce to per-bin sums, so they also stream
(:mod:`.streaming`) and run on Dask arrays (:mod:`.dask`); smooth ECE
(:mod:`.smooth`), the debiased calibration error (:mod:`.debiased`) and
confidence intervals for every metric (:mod:`.intervals`) sit beside them.
The temperature fit (:mod:`.fit`) solves the convex 1-D problem in
``beta = 1/T`` exactly; :mod:`.scaler` wraps it as a scikit-learn estimator
and :mod:`.classifier` around a fitted classifier. Vector and matrix scaling
(:mod:`.linear_scalers`), Dirichlet calibration (:mod:`.dirichlet`) and
ensemble temperature scaling (:mod:`.ensemble`) are the calibrators people
compare against; :mod:`.multiple_choice` calibrates option scores.
``TemperatureScaled`` (a ``torch.nn.Module``, :mod:`.torch_module`) loads
torch only when first used.

Modules import downwards only: ``_binning`` <- ``_inputs`` <- ``_nll``,
``_results``, ``_torch_metrics``, ``_chunks`` <- ``streaming``, ``dask``,
``intervals``, ``smooth``, ``debiased`` <- ``metrics`` <- ``fit`` <-
``scaler`` <- ``classifier``, ``torch_module``, ``multiple_choice``,
``linear_scalers`` <- ``dirichlet``, ``ensemble``.
"""

from __future__ import annotations

from typing import Any

from thermoscope.calibration.classifier import TemperatureScaledClassifier
from thermoscope.calibration.dirichlet import DirichletCalibrator
from thermoscope.calibration.ensemble import EnsembleTemperatureScaler
from thermoscope.calibration.fit import (
    SeparableDataWarning,
    TemperatureBoundWarning,
    TemperatureFit,
    fit_temperature,
    temperature_for_confidence,
)
from thermoscope.calibration.linear_scalers import (
    CalibratorConvergenceWarning,
    MatrixScaler,
    VectorScaler,
)
from thermoscope.calibration.metrics import (
    CalibrationSummary,
    MetricInterval,
    ReliabilityCurve,
    brier_score,
    calibration_summary,
    debiased_calibration_error,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_curve,
    smooth_calibration_error,
)
from thermoscope.calibration.multiple_choice import (
    MultipleChoiceCalibration,
    multiple_choice_calibration,
    option_logits,
)
from thermoscope.calibration.scaler import NotFittedError, TemperatureScaler
from thermoscope.calibration.streaming import CalibrationAccumulator, accumulate_npy

__all__ = [
    "CalibrationAccumulator",
    "CalibrationSummary",
    "CalibratorConvergenceWarning",
    "DirichletCalibrator",
    "EnsembleTemperatureScaler",
    "MatrixScaler",
    "MetricInterval",
    "MultipleChoiceCalibration",
    "NotFittedError",
    "ReliabilityCurve",
    "SeparableDataWarning",
    "TemperatureBoundWarning",
    "TemperatureFit",
    "TemperatureScaled",
    "TemperatureScaledClassifier",
    "TemperatureScaler",
    "VectorScaler",
    "accumulate_npy",
    "brier_score",
    "calibration_summary",
    "debiased_calibration_error",
    "expected_calibration_error",
    "fit_temperature",
    "maximum_calibration_error",
    "multiple_choice_calibration",
    "negative_log_likelihood",
    "option_logits",
    "reliability_curve",
    "smooth_calibration_error",
    "temperature_for_confidence",
]


def __getattr__(name: str) -> Any:
    # TemperatureScaled subclasses torch.nn.Module: defining it imports torch,
    # so it is looked up only when someone asks for it.
    if name == "TemperatureScaled":
        from thermoscope.calibration.torch_module import TemperatureScaled

        return TemperatureScaled
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
