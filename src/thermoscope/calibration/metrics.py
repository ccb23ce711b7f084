"""Calibration metrics: ECE (l1, l2, max), MCE, Brier score, NLL and reliability curves.

Every metric here reduces to sums: per-bin counts, confidence sums and
correct-prediction sums for the binned metrics, per-sample losses for NLL and
Brier. The same private kernels (:mod:`._inputs`, :mod:`._binning`)
therefore serve the in-memory functions, the streaming
:class:`~thermoscope.calibration.streaming.CalibrationAccumulator` and the
Dask map-reduce in :mod:`thermoscope.calibration.dask`; a Dask array passed
to any public function here is routed there without copying it into memory.

Inputs
------
``probs`` is either a 2-D array ``(n_samples, n_classes)`` of probabilities
(or logits with ``from_logits=True``) whose rows sum to 1, or a 1-D array of
the probability of the positive class (log-odds with ``from_logits=True``) for
a binary problem. ``labels`` are integer class indices. For 2-D input the
binned metrics are *top-label*: confidence is the largest probability and a
sample counts as correct when its arg-max (the first one on ties, as numpy and
torch pick it) equals the label. For 1-D input they follow scikit-learn's
``calibration_curve`` and torchmetrics' ``binary_calibration_error``: the
confidence is ``P(y = 1)`` and the "accuracy" of a bin is its fraction of
positives.

Array backends
--------------
numpy arrays and lists give Python floats (numpy arrays in curves). A torch
``probs`` is computed with torch operations on its own device (see
:mod:`thermoscope.calibration._torch_metrics`): the same float64 sums, edges
and numbers, returned as 0-d tensors of its dtype on that device (curves as
float64 tensors). The negative log-likelihood and the Brier score keep the
autograd graph, also through a tensor ``temperature`` of the NLL. Logits
widen to float64 on the device, as numpy widens them on the host. Two
functions go to the host on purpose, through the explicit conversion
``thermoscope._arrays.to_numpy``: the NLL derivatives of the temperature fit
(the input of a host-side Newton solver) and the streaming
:class:`~thermoscope.calibration.streaming.CalibrationAccumulator`, which
reduces a tensor chunk on its device and keeps only the per-bin sums on the
host. Dask arrays are reduced on their cluster.

Bin-edge convention
-------------------
Equal-width bins have the float64 edges ``e_k = k / n_bins`` computed by
one correctly rounded division (``np.arange(n_bins + 1) / n_bins``; note that
``np.linspace`` computes ``k * (1 / n)`` and misses ``k / n`` by one ulp for
some ``k``, e.g. ``linspace(0, 1, 11)[3] != 0.3``). Each bin is closed on the
left and open on the right, ``[e_k, e_{k+1})``, except the last, which is
closed, ``[e_{n-1}, 1]`` -- the convention of ``np.histogram``, of Guo et al.
(2017) and of netcal. So with 15 bins a confidence equal to ``1 / 15`` (the
float64 value Python gives) falls in the *second* bin ``[1/15, 2/15)``, the
next float below it in the first, ``0.0`` in the first and ``1.0`` in the
last. Comparisons are made in float64 after widening float32 input, which is
exact. Equal-mass bins (``strategy="quantile"``) take ``np.percentile`` of the
confidences as edges, exactly as scikit-learn does, with the same
left-closed rule.

Comparison with torchmetrics and netcal
---------------------------------------
torchmetrics' ``multiclass_calibration_error`` bins the same way except at
``1.0``: ``torch.bucketize(..., right=True) - 1`` sends a confidence of
exactly ``1.0`` to a hidden ``(n_bins + 1)``-th bin of its own
(Lightning-AI/torchmetrics#3510). Float32 softmax saturates to ``1.0`` for a
logit gap above about 17, so confident models hit this; thermoscope counts
those samples in the last bin. torchmetrics also casts confidences to float32
and accumulates its bins in float32, while thermoscope converts to float64
and accumulates in float64: on the same float32 confidences the two agree to
about 1e-7 (l1, l2) and 1e-6 (max) at 1e5 samples and differ by about 1e-6
(l1) to 1e-5 (max) at 1e6 samples, the rounding of float32 sums. Its edges
are float32 ``torch.linspace`` values, some of which lie below ``k / n`` (with
15 bins: the edges for 8/15, 9/15 and 10/15): a float32 confidence between
such an edge and ``k / n`` goes one bin higher there than here, where the
float64 edge ``k / n`` decides. scikit-learn's
``calibration_curve`` uses ``np.searchsorted(..., side="left")``, which puts a
value equal to an inner edge in the *lower* bin; away from exact edges it
agrees with thermoscope to the last bit.

netcal computes ECE, MCE and reliability diagrams in memory with numpy (it is
not a test dependency, so it is not compared here); thermoscope adds a
streaming accumulator over chunks and memory-mapped files, Dask clusters,
float64 sums throughout and a documented, tested bin-edge convention.

Examples
--------
>>> import numpy as np
>>> from thermoscope.calibration.metrics import expected_calibration_error
>>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
>>> labels = np.array([0, 1, 1, 1])
>>> round(expected_calibration_error(probs, labels, n_bins=5), 4)
0.25
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import numpy.typing as npt

from thermoscope._backend import is_torch
from thermoscope.calibration import dask as _dask
from thermoscope.calibration._binning import classwise_sums, error_from_sums, top_label_sums
from thermoscope.calibration._inputs import (
    NORMS,
    STRATEGIES,
    Norm,
    Strategy,
    check_choice,
    check_from_logits,
    check_n_bins,
    check_scaling_temperature,
    is_dask_array,
    prepare,
)
from thermoscope.calibration._results import CalibrationSummary, ReliabilityCurve
from thermoscope.calibration.debiased import debiased_calibration_error, top_label_debiased_error
from thermoscope.calibration.intervals import (
    MetricInterval,
    binned_interval,
    check_interval_options,
    normal_interval,
)
from thermoscope.calibration.smooth import smooth_calibration_error, top_label_smooth_error

if TYPE_CHECKING:
    import torch

__all__ = [
    "CalibrationSummary",
    "MetricInterval",
    "Norm",
    "ReliabilityCurve",
    "Strategy",
    "brier_score",
    "calibration_summary",
    "debiased_calibration_error",
    "expected_calibration_error",
    "maximum_calibration_error",
    "negative_log_likelihood",
    "reliability_curve",
    "smooth_calibration_error",
]


@overload
def expected_calibration_error(
    probs: torch.Tensor,
    labels: Any,
    *,
    n_bins: int = ...,
    strategy: Strategy = ...,
    norm: Norm = ...,
    classwise: bool = ...,
    from_logits: bool = ...,
    interval: None = ...,
    n_bootstrap: int = ...,
    seed: int = ...,
) -> torch.Tensor: ...


@overload
def expected_calibration_error(
    probs: npt.ArrayLike,
    labels: Any,
    *,
    n_bins: int = ...,
    strategy: Strategy = ...,
    norm: Norm = ...,
    classwise: bool = ...,
    from_logits: bool = ...,
    interval: None = ...,
    n_bootstrap: int = ...,
    seed: int = ...,
) -> float: ...


@overload
def expected_calibration_error(
    probs: Any,
    labels: Any,
    *,
    n_bins: int = ...,
    strategy: Strategy = ...,
    norm: Norm = ...,
    classwise: bool = ...,
    from_logits: bool = ...,
    interval: float,
    n_bootstrap: int = ...,
    seed: int = ...,
) -> MetricInterval: ...


def expected_calibration_error(
    probs: Any,
    labels: Any,
    *,
    n_bins: int = 15,
    strategy: Strategy = "uniform",
    norm: Norm = "l1",
    classwise: bool = False,
    from_logits: bool = False,
    interval: float | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> Any:
    """Expected calibration error: the gap between confidence and accuracy, averaged over bins.

    Parameters
    ----------
    probs : array_like, torch.Tensor or dask.array.Array
        ``(n_samples, n_classes)`` probabilities whose rows sum to 1, or 1-D
        ``P(y = 1)`` for a binary problem. Logits (log-odds for 1-D) with
        ``from_logits=True``; ``-inf`` logits mean "masked".
    labels : array_like of int, shape (n_samples,)
        True class indices in ``[0, n_classes - 1]`` (0 or 1 for 1-D input).
    n_bins : int, default 15
        Number of bins, >= 1.
    strategy : {"uniform", "quantile"}, default "uniform"
        Equal-width bins on [0, 1], or equal-mass bins whose edges are
        percentiles of the confidences.
    norm : {"l1", "l2", "max"}, default "l1"
        ``l1`` is the ECE of Guo et al. (2017), ``l2`` the root-mean-square
        calibration error, ``max`` the maximum calibration error (MCE).
    classwise : bool, default False
        False: top-label calibration (confidence = largest probability,
        correct = arg-max equals label). True: class-wise ECE (Kull et al.,
        2019), the mean over classes ``c`` of the error of ``p_c`` against
        ``[y == c]``, each class binned on its own.
    from_logits : bool, default False
        Treat ``probs`` as logits and apply a (stable) softmax or sigmoid.
    interval : float or None, default None
        A confidence level in (0, 1), e.g. 0.95: also compute a
        percentile-bootstrap interval (top-label only; the bins stay those of
        the data; see :mod:`thermoscope.calibration.intervals`). numpy input
        only: a tensor or Dask array with ``interval`` is a TypeError.
    n_bootstrap : int, default 1000
        Bootstrap resamples for ``interval``.
    seed : int, default 0
        Seed of the resampling (an integer >= 0).

    Returns
    -------
    float, torch.Tensor or MetricInterval
        In [0, 1]. A torch ``probs`` is binned and summed with torch
        operations on its device (float64 sums, the same edges and numbers as
        numpy) and gives a 0-d tensor of its floating dtype on that device.
        With ``interval``: a
        :class:`~thermoscope.calibration.intervals.MetricInterval`.

    Raises
    ------
    ValueError
        Bad shapes, NaN/inf, probabilities outside [0, 1] or rows not summing
        to 1, labels out of range, empty input, ``n_bins < 1``, unknown
        ``strategy`` or ``norm``.
    TypeError
        Non-integer labels, non-integer ``n_bins``.

    Notes
    -----
    With bins ``B_k``, accuracy ``acc_k`` and mean confidence ``conf_k``:
    ``ECE_l1 = sum_k |B_k| / N * |acc_k - conf_k|``,
    ``ECE_l2 = sqrt(sum_k |B_k| / N * (acc_k - conf_k)^2)``,
    ``ECE_max = max_k |acc_k - conf_k|`` over non-empty bins. Bins are
    ``[e_k, e_{k+1})`` with the last closed (module docs). Sums are float64.

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope.calibration import expected_calibration_error
    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> labels = np.array([0, 1, 1, 1])
    >>> round(expected_calibration_error(probs, labels, n_bins=5), 4)
    0.25
    >>> round(expected_calibration_error(probs, labels, n_bins=5, norm="max"), 4)
    0.35
    >>> iv = expected_calibration_error(probs, labels, n_bins=5, interval=0.9, seed=1)
    >>> iv.level, iv.method
    (0.9, 'bootstrap')
    """
    n_bins = check_n_bins(n_bins)
    check_choice(strategy, "strategy", STRATEGIES)
    check_choice(norm, "norm", NORMS)
    from_logits = check_from_logits(from_logits)
    level, n_boot, seed = check_interval_options(interval, n_bootstrap, seed, probs)
    if level is not None:
        _check_interval_input(probs, labels, classwise)
    if is_dask_array(probs) or is_dask_array(labels):
        return _dask.calibration_error(
            probs,
            labels,
            n_bins=n_bins,
            strategy=strategy,
            norm=norm,
            classwise=bool(classwise),
            from_logits=from_logits,
        )
    if is_torch(probs):
        from thermoscope.calibration import _torch_metrics as native

        return native.calibration_error(
            probs, labels, n_bins, strategy, norm, bool(classwise), from_logits
        )
    batch = prepare(probs, labels, from_logits)
    if classwise:
        sums = classwise_sums(batch.class_probs(), batch.labels, n_bins, strategy)
        return float(np.mean(error_from_sums(sums, norm)))
    conf, hit = batch.top_label_native()
    sums, edges = top_label_sums(conf, hit, n_bins, strategy)
    value = float(error_from_sums(sums, norm))
    if level is None:
        return value
    return binned_interval(conf, hit, edges, norm, value, level, n_boot, seed)


def _check_interval_input(probs: Any, labels: Any, classwise: Any) -> None:
    """Intervals are for in-memory numpy input and top-label errors."""
    if is_dask_array(probs) or is_dask_array(labels):
        raise TypeError(
            "`interval` must be None for Dask arrays (intervals need the data in memory), "
            "got a level."
        )
    if classwise:
        raise ValueError(
            "`interval` must be None with `classwise=True` (intervals are top-label), got a level."
        )


@overload
def maximum_calibration_error(
    probs: torch.Tensor,
    labels: Any,
    *,
    n_bins: int = ...,
    strategy: Strategy = ...,
    classwise: bool = ...,
    from_logits: bool = ...,
    interval: None = ...,
    n_bootstrap: int = ...,
    seed: int = ...,
) -> torch.Tensor: ...


@overload
def maximum_calibration_error(
    probs: npt.ArrayLike,
    labels: Any,
    *,
    n_bins: int = ...,
    strategy: Strategy = ...,
    classwise: bool = ...,
    from_logits: bool = ...,
    interval: None = ...,
    n_bootstrap: int = ...,
    seed: int = ...,
) -> float: ...


@overload
def maximum_calibration_error(
    probs: Any,
    labels: Any,
    *,
    n_bins: int = ...,
    strategy: Strategy = ...,
    classwise: bool = ...,
    from_logits: bool = ...,
    interval: float,
    n_bootstrap: int = ...,
    seed: int = ...,
) -> MetricInterval: ...


def maximum_calibration_error(
    probs: Any,
    labels: Any,
    *,
    n_bins: int = 15,
    strategy: Strategy = "uniform",
    classwise: bool = False,
    from_logits: bool = False,
    interval: float | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> Any:
    """Maximum calibration error: the largest ``|accuracy - confidence|`` over non-empty bins.

    The same as ``expected_calibration_error(..., norm="max")``; see it for
    the parameters (a float, a 0-d tensor for torch input, or a
    ``MetricInterval`` with ``interval``). It is always >= the (l1) ECE.

    Examples
    --------
    >>> from thermoscope.calibration import maximum_calibration_error
    >>> round(maximum_calibration_error([[0.9, 0.1], [0.2, 0.8]], [0, 0], n_bins=2), 4)
    0.35
    """
    return expected_calibration_error(
        probs,
        labels,
        n_bins=n_bins,
        strategy=strategy,
        norm="max",
        classwise=classwise,
        from_logits=from_logits,
        interval=interval,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )


@overload
def brier_score(
    probs: torch.Tensor, labels: Any, *, from_logits: bool = ..., interval: None = ...
) -> torch.Tensor: ...


@overload
def brier_score(
    probs: npt.ArrayLike, labels: Any, *, from_logits: bool = ..., interval: None = ...
) -> float: ...


@overload
def brier_score(
    probs: Any, labels: Any, *, from_logits: bool = ..., interval: float
) -> MetricInterval: ...


def brier_score(
    probs: Any, labels: Any, *, from_logits: bool = False, interval: float | None = None
) -> Any:
    """Brier score: mean squared distance between the probabilities and the one-hot label.

    Parameters
    ----------
    probs : array_like, torch.Tensor or dask.array.Array
        ``(n_samples, n_classes)`` probabilities (logits with
        ``from_logits=True``), or 1-D ``P(y = 1)`` (log-odds).
    labels : array_like of int, shape (n_samples,)
        True class indices.
    from_logits : bool, default False
        Apply a stable softmax (sigmoid for 1-D) first.
    interval : float or None, default None
        A confidence level in (0, 1): also give the normal interval of a mean
        of iid terms, ``mean +- z sd / sqrt(n)`` (``method="normal"``, no
        resampling). numpy input only.

    Returns
    -------
    float, torch.Tensor or MetricInterval
        2-D input: the multiclass sum ``mean_i sum_c (p_ic - [y_i = c])^2``,
        in [0, 2] (scikit-learn's ``brier_score_loss(..., scale_by_half=False)``).
        1-D input: ``mean_i (p_i - y_i)^2`` in [0, 1], scikit-learn's binary
        ``brier_score_loss``. Two columns ``[1 - p, p]`` give twice the 1-D value.
        A torch ``probs`` gives a 0-d tensor of its dtype on its device,
        differentiable in ``probs`` (computed in float64 on the device).

    Examples
    --------
    >>> from thermoscope.calibration import brier_score
    >>> brier_score([[0.75, 0.25], [0.5, 0.5]], [0, 1])
    0.3125
    >>> brier_score([0.25, 0.5], [0, 1])  # binary P(y = 1): half the 2-column value
    0.15625
    >>> brier_score([0.25, 0.5], [0, 1], interval=0.95).method
    'normal'
    """
    from_logits = check_from_logits(from_logits)
    level, _, _ = check_interval_options(interval, 1000, 0, probs)
    if level is not None:
        _check_interval_input(probs, labels, False)
        return normal_interval(prepare(probs, labels, from_logits).brier_terms(), level)
    if is_dask_array(probs) or is_dask_array(labels):
        summary = _dask.summary(
            probs, labels, n_bins=1, strategy="uniform", from_logits=from_logits
        )
        return summary.brier
    if is_torch(probs):
        from thermoscope.calibration import _torch_metrics as native

        return native.brier_score(probs, labels, from_logits)
    return float(np.mean(prepare(probs, labels, from_logits).brier_terms()))


@overload
def negative_log_likelihood(
    probs: torch.Tensor,
    labels: Any,
    *,
    from_logits: bool = ...,
    temperature: Any = ...,
    interval: None = ...,
) -> torch.Tensor: ...


@overload
def negative_log_likelihood(
    probs: npt.ArrayLike,
    labels: Any,
    *,
    from_logits: bool = ...,
    temperature: Any = ...,
    interval: None = ...,
) -> float: ...


@overload
def negative_log_likelihood(
    probs: Any, labels: Any, *, from_logits: bool = ..., temperature: Any = ..., interval: float
) -> MetricInterval: ...


def negative_log_likelihood(
    probs: Any,
    labels: Any,
    *,
    from_logits: bool = False,
    temperature: Any = 1.0,
    interval: float | None = None,
) -> Any:
    """Mean negative log-likelihood (cross-entropy, log loss) of the true labels, in nats.

    Parameters
    ----------
    probs : array_like, torch.Tensor or dask.array.Array
        ``(n_samples, n_classes)`` probabilities, or logits with
        ``from_logits=True``; 1-D input is ``P(y = 1)`` (log-odds).
    labels : array_like of int, shape (n_samples,)
        True class indices.
    from_logits : bool, default False
        Compute ``-log_softmax(z)[y] = logsumexp(z) - z_y`` directly from the
        logits: exact for any finite logits, even where the softmax underflows
        to 0 (a logit gap of 1e4 gives a loss of 1e4, not inf).
    temperature : float, array_like or torch.Tensor, default 1.0
        With ``from_logits=True``: the NLL of ``softmax(logits / T)``, a
        temperature-scaled model (finite, > 0; a scalar or one per sample).
        A tensor ``T`` (with torch logits) gets its gradient: this is the
        loss of the classic LBFGS temperature-scaling recipe.
    interval : float or None, default None
        A confidence level in (0, 1): also give the normal interval of the
        mean of the iid per-sample losses (``method="normal"``). numpy input
        only; an infinite loss gives bounds equal to the value.

    Returns
    -------
    float, torch.Tensor or MetricInterval
        ``mean_i -log p_i(y_i)``. From probabilities nothing is clipped: a
        probability of exactly 0 on the observed label gives ``inf`` -- the
        true value of ``-log 0`` -- where scikit-learn's ``log_loss`` clips to
        ``[eps, 1 - eps]`` (``eps`` = float64 machine epsilon) and reports about
        36.04 for that sample. Probabilities inside ``[eps, 1 - eps]`` give
        scikit-learn's value. A torch ``probs`` gives a 0-d tensor of its
        dtype on its device, computed with torch operations there (logits in
        float64) and differentiable in ``probs`` and a tensor ``temperature``.

    Examples
    --------
    >>> from thermoscope.calibration import negative_log_likelihood
    >>> round(negative_log_likelihood([[0.5, 0.5], [0.9, 0.1]], [0, 0]), 6)
    0.399254
    >>> negative_log_likelihood([[1e4, 0.0]], [1], from_logits=True)
    10000.0
    >>> negative_log_likelihood([[1.0, 0.0]], [1])
    inf
    >>> round(negative_log_likelihood([[2.0, 0.0]], [0], from_logits=True, temperature=2.0), 4)
    0.3133
    """
    from_logits = check_from_logits(from_logits)
    t = check_scaling_temperature(temperature, from_logits, probs)
    level, _, _ = check_interval_options(interval, 1000, 0, probs)
    if level is not None:
        _check_interval_input(probs, labels, False)
        return normal_interval(-prepare(probs, labels, from_logits, t).log_true(), level)
    if is_dask_array(probs) or is_dask_array(labels):
        if not isinstance(t, float):
            raise TypeError(
                f"`temperature` must be a number for Dask arrays, got {type(temperature).__name__}."
            )
        scaled = probs / t if t != 1.0 else probs
        summary = _dask.summary(
            scaled, labels, n_bins=1, strategy="uniform", from_logits=from_logits
        )
        return summary.nll
    if is_torch(probs):
        from thermoscope.calibration import _torch_metrics as native

        return native.negative_log_likelihood(probs, labels, from_logits, t)
    return float(-np.mean(prepare(probs, labels, from_logits, t).log_true()))


def reliability_curve(
    probs: Any,
    labels: Any,
    *,
    n_bins: int = 15,
    strategy: Strategy = "uniform",
    from_logits: bool = False,
) -> ReliabilityCurve:
    """Per-bin mean confidence, accuracy and count: the data of a reliability diagram.

    Parameters are those of :func:`expected_calibration_error` (top-label
    for 2-D input, positive-class for 1-D input).

    Returns
    -------
    ReliabilityCurve
        For 1-D input, ``accuracy[nonempty]`` and ``confidence[nonempty]`` are
        scikit-learn's ``calibration_curve(labels, probs, n_bins=n_bins,
        strategy=strategy)`` (away from values exactly on an inner edge).

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope.calibration import reliability_curve
    >>> c = reliability_curve(np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]]), [0, 1, 1], n_bins=2)
    >>> c.edges.tolist(), c.count.tolist(), c.confidence.round(3).tolist()
    ([0.0, 0.5, 1.0], [0, 3], [nan, 0.733])
    """
    n_bins = check_n_bins(n_bins)
    check_choice(strategy, "strategy", STRATEGIES)
    from_logits = check_from_logits(from_logits)
    if is_dask_array(probs) or is_dask_array(labels):
        return _dask.reliability_curve(
            probs, labels, n_bins=n_bins, strategy=strategy, from_logits=from_logits
        )
    if is_torch(probs):
        from thermoscope.calibration import _torch_metrics as native

        return native.reliability_curve(probs, labels, n_bins, strategy, from_logits)
    conf, hit = prepare(probs, labels, from_logits).top_label_native()
    return ReliabilityCurve.from_sums(*top_label_sums(conf, hit, n_bins, strategy))


def calibration_summary(
    probs: Any,
    labels: Any,
    *,
    n_bins: int = 15,
    strategy: Strategy = "uniform",
    from_logits: bool = False,
    interval: float | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> CalibrationSummary:
    """Accuracy, ECE (l1, l2), MCE, NLL, Brier, smECE, debiased CE and the reliability curve.

    Parameters are those of :func:`expected_calibration_error`. Dask arrays
    are reduced on their cluster (strategy "uniform" or "quantile"; no smECE,
    debiased CE or intervals there); a torch ``probs`` on its device, giving
    tensor metrics (see :class:`CalibrationSummary`). The debiased CE is
    Kumar et al.'s debiased l2 estimate with ``n_bins`` equal-mass bins, the
    smECE has its automatic bandwidth.

    ``interval`` (a level in (0, 1), numpy input only) fills
    :attr:`CalibrationSummary.intervals`: normal intervals for NLL and Brier,
    percentile-bootstrap intervals (``n_bootstrap`` resamples, ``seed``) for
    the others; see :mod:`thermoscope.calibration.intervals`.

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope.calibration import calibration_summary
    >>> logits = np.array([[4.0, 0.0], [0.0, 3.0], [2.0, 0.0]])
    >>> s = calibration_summary(logits, [0, 1, 1], n_bins=10, from_logits=True)
    >>> s.accuracy, round(s.nll, 4)
    (0.6666666666666666, 0.7312)
    >>> s = calibration_summary(logits, [0, 1, 1], from_logits=True, interval=0.9, n_bootstrap=50)
    >>> s.intervals["nll"].method, s.intervals["ece"].method
    ('normal', 'bootstrap')
    """
    n_bins = check_n_bins(n_bins)
    check_choice(strategy, "strategy", STRATEGIES)
    from_logits = check_from_logits(from_logits)
    level, n_boot, seed = check_interval_options(interval, n_bootstrap, seed, probs)
    if level is not None:
        _check_interval_input(probs, labels, False)
    if is_dask_array(probs) or is_dask_array(labels):
        return _dask.summary(
            probs, labels, n_bins=n_bins, strategy=strategy, from_logits=from_logits
        )
    if is_torch(probs):
        from thermoscope.calibration import _torch_metrics as native

        summary = native.calibration_summary(probs, labels, n_bins, strategy, from_logits)
        return dataclasses.replace(
            summary,
            smece=smooth_calibration_error(probs, labels, from_logits=from_logits),
            debiased_ce=debiased_calibration_error(
                probs, labels, n_bins=n_bins, from_logits=from_logits
            ),
        )
    batch = prepare(probs, labels, from_logits)
    conf, hit = batch.top_label_native()
    sums, edges = top_label_sums(conf, hit, n_bins, strategy)
    summary = CalibrationSummary.from_sums(
        sums,
        edges,
        batch.labels.shape[0],
        batch.n_correct(),
        float(-np.sum(batch.log_true())),
        float(np.sum(batch.brier_terms())),
    )
    conf64, hit64 = batch.top_label()
    smece = top_label_smooth_error(conf64, hit64)
    debiased = top_label_debiased_error(conf64, hit64, n_bins)
    if level is None:
        return dataclasses.replace(summary, smece=smece, debiased_ce=debiased)
    intervals = {
        "ece": binned_interval(conf, hit, edges, "l1", summary.ece, level, n_boot, seed),
        "ece_l2": binned_interval(conf, hit, edges, "l2", summary.ece_l2, level, n_boot, seed),
        "mce": binned_interval(conf, hit, edges, "max", summary.mce, level, n_boot, seed),
        "nll": normal_interval(-batch.log_true(), level),
        "brier": normal_interval(batch.brier_terms(), level),
        "smece": top_label_smooth_error(conf64, hit64, None, level, n_boot, seed),
        "debiased_ce": top_label_debiased_error(
            conf64, hit64, n_bins, level=level, n_bootstrap=n_boot, seed=seed
        ),
    }
    return dataclasses.replace(summary, smece=smece, debiased_ce=debiased, intervals=intervals)
