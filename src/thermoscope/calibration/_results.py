"""The result types of the calibration metrics, built from per-bin sums.

They live below every engine (in memory, torch, streaming, Dask) that
produces them; :mod:`thermoscope.calibration.metrics` is their public home.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from thermoscope._arrays import to_numpy
from thermoscope._backend import is_torch
from thermoscope._typing import FloatArray
from thermoscope.calibration._binning import BinSums, error_from_sums
from thermoscope.calibration.intervals import MetricInterval


@dataclass(frozen=True, eq=False)
class ReliabilityCurve:
    """Per-bin statistics of a reliability diagram.

    Attributes
    ----------
    edges : ndarray, shape (n_bins + 1,)
        Bin edges; bin ``k`` is ``[edges[k], edges[k + 1])``, the last closed.
    confidence : ndarray, shape (n_bins,)
        Mean confidence in each bin; NaN for an empty bin.
    accuracy : ndarray, shape (n_bins,)
        Fraction correct (fraction of positives for 1-D input); NaN when empty.
    count : ndarray of int64, shape (n_bins,)
        Number of samples in each bin.

    From torch input every field is a tensor on the input's device (float64,
    counts int64), like the numpy arrays; plotting code converts them with
    :meth:`as_numpy`.

    Examples
    --------
    >>> from thermoscope.calibration import reliability_curve
    >>> curve = reliability_curve([0.1, 0.2, 0.8, 0.9], [0, 1, 1, 1], n_bins=2)
    >>> curve.count.tolist(), curve.accuracy.tolist()
    ([2, 2], [0.5, 1.0])
    """

    edges: Any  # numpy arrays, or tensors for torch input
    confidence: Any
    accuracy: Any
    count: Any

    @property
    def nonempty(self) -> Any:
        """Boolean mask of the bins holding at least one sample."""
        return self.count > 0

    def as_numpy(self) -> ReliabilityCurve:
        """The curve with numpy fields (itself when it has them): for plots, files and JSON.

        The host boundary for a curve of tensors: each field is read through
        ``thermoscope._arrays.to_numpy``.

        Examples
        --------
        >>> from thermoscope.calibration import reliability_curve
        >>> curve = reliability_curve([0.1, 0.9], [0, 1], n_bins=2).as_numpy()
        >>> curve.count.tolist()
        [1, 1]
        """
        if not is_torch(self.count):
            return self
        fields = ("edges", "confidence", "accuracy", "count")
        return ReliabilityCurve(*(to_numpy(getattr(self, name), name)[0] for name in fields))

    @classmethod
    def from_sums(cls, sums: BinSums, edges: FloatArray) -> ReliabilityCurve:
        """Build the curve from per-bin sums (the state streaming and Dask reduce to).

        Examples
        --------
        >>> import numpy as np
        >>> from thermoscope.calibration._binning import BinSums
        >>> sums = BinSums(np.array([0, 2]), np.array([0.0, 1.5]), np.array([0.0, 1.0]))
        >>> ReliabilityCurve.from_sums(sums, np.array([0.0, 0.5, 1.0])).accuracy.tolist()
        [nan, 0.5]
        """
        count = sums.count.astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):  # empty bins become NaN on purpose
            conf = np.where(count > 0, sums.conf / count, np.nan)
            acc = np.where(count > 0, sums.hit / count, np.nan)
        return cls(np.asarray(edges, dtype=np.float64), conf, acc, count)


@dataclass(frozen=True, eq=False)
class CalibrationSummary:
    """Every calibration metric of one data set, computed from one set of sums.

    Attributes
    ----------
    n_samples : int
    accuracy : float
        Fraction of samples whose arg-max is the label.
    ece, ece_l2, mce : float
        Top-label ECE with the l1, l2 and max norms (MCE = ``ece`` with max).
    nll : float
        Mean negative log-likelihood (nats).
    brier : float
        Mean Brier score (multiclass sum; binary for 1-D input).
    curve : ReliabilityCurve
    smece : float or None
        Smooth ECE (:func:`~thermoscope.calibration.smooth.smooth_calibration_error`);
        None where not computed (streaming and Dask summaries).
    debiased_ce : float or None
        Kumar et al.'s debiased l2 calibration error with ``n_bins``
        equal-mass bins (:func:`~thermoscope.calibration.debiased.debiased_calibration_error`);
        None where not computed.
    intervals : mapping of str to MetricInterval, or None
        With ``calibration_summary(..., interval=level)``: an interval for
        each of ``ece``, ``ece_l2``, ``mce``, ``nll``, ``brier``, ``smece``
        and ``debiased_ce`` (normal for ``nll`` and ``brier``, percentile
        bootstrap for the others); None otherwise.

    From torch input the metrics are 0-d tensors of the input's dtype on its
    device (``nll`` and ``brier`` keep their autograd graph) and the curve
    holds tensors; :meth:`as_dict` turns them into floats.

    Examples
    --------
    >>> from thermoscope.calibration import calibration_summary
    >>> s = calibration_summary([[0.9, 0.1], [0.3, 0.7]], [0, 0], n_bins=4)
    >>> s.n_samples, s.accuracy, round(s.ece, 3), round(s.mce, 3)
    (2, 0.5, 0.4, 0.7)
    """

    n_samples: int
    accuracy: Any  # floats, or 0-d tensors for torch input
    ece: Any
    ece_l2: Any
    mce: Any
    nll: Any
    brier: Any
    curve: ReliabilityCurve
    smece: Any = None
    debiased_ce: Any = None
    intervals: Mapping[str, MetricInterval] | None = None

    def as_dict(self) -> dict[str, float]:
        """The scalar metrics as a plain dict of floats (for tables and JSON).

        This is a host boundary: tensor metrics are read through
        ``thermoscope._arrays.to_numpy``. It holds the metrics every engine
        computes (in memory, torch, streaming, Dask): ``smece``,
        ``debiased_ce`` and ``intervals`` are read as attributes.

        Examples
        --------
        >>> from thermoscope.calibration import calibration_summary
        >>> calibration_summary([[0.9, 0.1]], [0], n_bins=2).as_dict()["accuracy"]
        1.0
        """
        values = {
            "accuracy": self.accuracy,
            "ece": self.ece,
            "ece_l2": self.ece_l2,
            "mce": self.mce,
            "nll": self.nll,
            "brier": self.brier,
        }
        return {"n_samples": float(self.n_samples)} | {
            name: float(to_numpy(value, name)[0]) if is_torch(value) else float(value)
            for name, value in values.items()
        }

    @classmethod
    def from_sums(
        cls,
        sums: BinSums,
        edges: FloatArray,
        n_samples: int,
        correct: int,
        nll_sum: float,
        brier_sum: float,
    ) -> CalibrationSummary:
        """Finish the metrics from reduced sums (``nll_sum`` is the summed ``-log p(y)``).

        Examples
        --------
        >>> import numpy as np
        >>> from thermoscope.calibration._binning import BinSums
        >>> sums = BinSums(np.array([0, 2]), np.array([0.0, 1.5]), np.array([0.0, 1.0]))
        >>> s = CalibrationSummary.from_sums(sums, np.array([0.0, 0.5, 1.0]), 2, 1, 1.2, 0.5)
        >>> s.accuracy, s.ece, s.nll
        (0.5, 0.25, 0.6)
        """
        return cls(
            n_samples=int(n_samples),
            accuracy=correct / n_samples,
            ece=float(error_from_sums(sums, "l1")),
            ece_l2=float(error_from_sums(sums, "l2")),
            mce=float(error_from_sums(sums, "max")),
            nll=nll_sum / n_samples,
            brier=brier_sum / n_samples,
            curve=ReliabilityCurve.from_sums(sums, edges),
        )
