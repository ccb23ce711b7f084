"""Debiased calibration error: Kumar, Liang and Ma's (2019) plugin and debiased estimators.

With equal-mass bins ``B_k`` (``n_k`` samples, mean confidence ``c_k``,
accuracy ``a_k``), the plugin l_p estimate is
``(sum_k n_k / n * |c_k - a_k|^p)^(1/p)``. For p = 2 the plugin squares are
biased upwards by the sampling variance of ``a_k``; the debiased estimator
subtracts it:
``sqrt(max(0, sum_k n_k / n * ((c_k - a_k)^2 - a_k (1 - a_k) / (n_k - 1))))``,
a bin with fewer than 2 samples contributing 0 ("Verified Uncertainty
Calibration", NeurIPS 2019, section 5).

Equal to ``calibration.get_calibration_error`` / ``lower_bound_scaling_ce``
of the ``uncertainty-calibration`` package (0.1.4) for continuous
confidences, and to its ``get_ece`` with ``strategy="uniform"``, ``norm="l1"``,
``debias=False``. Its bins, reproduced here:

* ``"quantile"``: the sorted confidences are split into ``n_bins`` runs as
  ``np.array_split`` does (the first ``n % n_bins`` one longer; fewer bins
  than samples never); each inner edge is the midpoint of the last value of
  one run and the first of the next, duplicates dropped, the last edge 1.0.
* ``"uniform"``: edges ``k / n_bins``.

A confidence goes to the first bin whose upper edge is ``>=`` it
(``searchsorted(..., side="left")``): a value equal to an edge belongs to the
lower bin, unlike :func:`~thermoscope.calibration.expected_calibration_error`
(whose bins are closed on the left).

Two differences, both deliberate: the reference decides between these bins
and per-value bins for discrete confidences with a heuristic (fewer distinct
values than a quarter of the samples); here the bins are always the ones
asked for. And its default ``mode`` is marginal (class-wise); here top-label,
like every metric of this package (``classwise=True`` gives its marginal mode).
The reference's debiased l1 estimator resamples with numpy's global random
state; it is not offered (``debias=True`` needs ``norm="l2"``).

Examples
--------
>>> import numpy as np
>>> from thermoscope.calibration.debiased import debiased_calibration_error
>>> rng = np.random.default_rng(0)
>>> f = rng.uniform(size=5000)
>>> y = (rng.uniform(size=5000) < f).astype(int)
>>> plugin = debiased_calibration_error(f, y, debias=False)
>>> debiased_calibration_error(f, y) < plugin  # the plugin estimate is biased upwards
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import numpy.typing as npt

from thermoscope._backend import is_torch
from thermoscope._typing import FloatArray, IntArray
from thermoscope.calibration._inputs import (
    STRATEGIES,
    Strategy,
    check_choice,
    check_from_logits,
    check_n_bins,
    prepare,
)
from thermoscope.calibration.intervals import (
    MetricInterval,
    bootstrap_bin_sums,
    cell_stats,
    check_interval_options,
    percentile_interval,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "DebiasedNorm",
    "debiased_calibration_error",
    "kumar_edges",
    "top_label_debiased_error",
]

DebiasedNorm = Literal["l1", "l2"]
_NORMS = ("l1", "l2")


def kumar_edges(values: FloatArray, n_bins: int, strategy: str) -> FloatArray:
    """Upper bin edges of Kumar et al.'s binning (the last is 1.0), see the module docs.

    Examples
    --------
    >>> import numpy as np
    >>> kumar_edges(np.array([0.1, 0.2, 0.3, 0.4]), 2, "quantile").tolist()
    [0.25, 1.0]
    >>> kumar_edges(np.array([0.1]), 4, "uniform").tolist()
    [0.25, 0.5, 0.75, 1.0]
    """
    if strategy == "uniform":
        return np.arange(1, n_bins + 1) / n_bins
    n = values.shape[0]
    k = min(n_bins, n)
    q, r = divmod(n, k)
    ends = np.arange(1, k) * q + np.minimum(np.arange(1, k), r)  # first index of runs 1..k-1
    picks = np.unique(np.concatenate([ends - 1, ends]))
    part = np.partition(values, picks) if picks.size else values
    inner = (part[ends - 1] + part[ends]) / 2.0
    return np.unique(np.concatenate([inner, [1.0]]))


def _bin_index(values: FloatArray, upper: FloatArray) -> IntArray:
    return np.asarray(np.searchsorted(upper, values, side="left"))


def _error(count: Any, conf: Any, hit: Any, norm: str, debias: bool) -> FloatArray:
    """The estimate along the last axis of per-bin (count, confidence sum, correct sum)."""
    n = count.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):  # empty bins: 0 / 0, masked next
        gap = np.where(count > 0, (conf - hit) / count, 0.0)
        if norm == "l1":
            return np.asarray((count * np.abs(gap)).sum(axis=-1) / n)
        if not debias:
            return np.asarray(np.sqrt((count * gap**2).sum(axis=-1) / n))
        acc = np.where(count > 0, hit / count, 0.0)
        var = np.where(count > 1, acc * (1 - acc) / (count - 1), 0.0)
    terms = np.where(count > 1, gap**2 - var, 0.0)
    return np.asarray(np.sqrt(np.maximum((count * terms).sum(axis=-1) / n, 0.0)))


def _sums(
    conf: FloatArray, hit: FloatArray, n_bins: int, strategy: str
) -> tuple[IntArray, int, FloatArray, FloatArray, FloatArray]:
    upper = kumar_edges(conf, n_bins, strategy)
    idx = _bin_index(conf, upper)
    size = int(upper.shape[0])
    count: FloatArray = np.bincount(idx, minlength=size).astype(np.float64)
    conf_sum: FloatArray = np.bincount(idx, weights=conf, minlength=size).astype(np.float64)
    hit_sum: FloatArray = np.bincount(idx, weights=hit, minlength=size).astype(np.float64)
    return idx, size, count, conf_sum, hit_sum


@overload
def debiased_calibration_error(
    probs: torch.Tensor,
    labels: Any,
    *,
    n_bins: int = ...,
    strategy: Strategy = ...,
    norm: DebiasedNorm = ...,
    debias: bool = ...,
    classwise: bool = ...,
    from_logits: bool = ...,
    interval: None = ...,
    n_bootstrap: int = ...,
    seed: int = ...,
) -> torch.Tensor: ...


@overload
def debiased_calibration_error(
    probs: npt.ArrayLike,
    labels: Any,
    *,
    n_bins: int = ...,
    strategy: Strategy = ...,
    norm: DebiasedNorm = ...,
    debias: bool = ...,
    classwise: bool = ...,
    from_logits: bool = ...,
    interval: None = ...,
    n_bootstrap: int = ...,
    seed: int = ...,
) -> float: ...


@overload
def debiased_calibration_error(
    probs: Any,
    labels: Any,
    *,
    n_bins: int = ...,
    strategy: Strategy = ...,
    norm: DebiasedNorm = ...,
    debias: bool = ...,
    classwise: bool = ...,
    from_logits: bool = ...,
    interval: float,
    n_bootstrap: int = ...,
    seed: int = ...,
) -> MetricInterval: ...


def debiased_calibration_error(
    probs: Any,
    labels: Any,
    *,
    n_bins: int = 15,
    strategy: Strategy = "quantile",
    norm: DebiasedNorm = "l2",
    debias: bool = True,
    classwise: bool = False,
    from_logits: bool = False,
    interval: float | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> Any:
    """Kumar, Liang and Ma's calibration error: debiased l2 (default) or plugin estimates.

    Parameters
    ----------
    probs : array_like or torch.Tensor
        ``(n_samples, n_classes)`` probabilities or 1-D ``P(y = 1)``; logits
        with ``from_logits=True``.
    labels : array_like of int, shape (n_samples,)
        True class indices.
    n_bins : int, default 15
        Number of bins (at most the number of samples is used, as in the reference).
    strategy : {"quantile", "uniform"}, default "quantile"
        Equal-mass bins (the reference's ``get_equal_bins``) or ``k / n_bins``.
    norm : {"l2", "l1"}, default "l2"
        The ``p`` of the l_p calibration error.
    debias : bool, default True
        Subtract the bins' sampling variance (l2 only); False gives the plugin estimate.
    classwise : bool, default False
        False: top-label. True: the reference's "marginal" mode,
        ``(mean_c CE_c^p)^(1/p)`` over the classes ``c`` of ``p_c`` against ``[y == c]``.
    from_logits : bool, default False
        Apply a stable softmax (sigmoid for 1-D) first.
    interval : float or None, default None
        A confidence level in (0, 1) for a percentile-bootstrap interval
        (top-label only; bins fixed at those of the data, see
        :mod:`thermoscope.calibration.intervals`).
    n_bootstrap : int, default 1000
        Bootstrap resamples.
    seed : int, default 0
        Seed of the resampling.

    Returns
    -------
    float, torch.Tensor or MetricInterval
        A torch ``probs`` is worked on its device and gives a 0-d tensor of
        its floating dtype there (no ``interval`` for tensors).

    Examples
    --------
    >>> from thermoscope.calibration.debiased import debiased_calibration_error
    >>> p, y = [0.2, 0.3, 0.7, 0.9], [0, 1, 1, 1]  # bins {0.2, 0.3} and {0.7, 0.9}
    >>> round(debiased_calibration_error(p, y, n_bins=2, debias=False), 4)  # sqrt(.0625/2 + .04/2)
    0.2264
    >>> round(debiased_calibration_error(p, y, n_bins=2, norm="l1", debias=False), 4)
    0.225
    """
    n_bins = check_n_bins(n_bins)
    check_choice(strategy, "strategy", STRATEGIES)
    check_choice(norm, "norm", _NORMS)
    if not isinstance(debias, (bool, np.bool_)):
        raise TypeError(f"`debias` must be True or False, got {debias!r}.")
    if debias and norm != "l2":
        raise ValueError(
            f"`debias` must be False with `norm={norm!r}` (the debiased estimator is l2's), "
            "got True."
        )
    if not isinstance(classwise, (bool, np.bool_)):
        raise TypeError(f"`classwise` must be True or False, got {classwise!r}.")
    from_logits = check_from_logits(from_logits)
    level, n_boot, seed = check_interval_options(interval, n_bootstrap, seed, probs)
    if level is not None and classwise:
        raise ValueError(
            f"`interval` must be None with `classwise=True` (top-label only), got {interval!r}."
        )
    if is_torch(probs):
        return _torch_error(
            probs, labels, n_bins, strategy, norm, bool(debias), bool(classwise), from_logits
        )
    batch = prepare(probs, labels, from_logits)
    if classwise:
        p = 1 if norm == "l1" else 2
        probs64 = batch.class_probs()
        per_class = [
            _error(
                *_sums(probs64[:, c], (batch.labels == c).astype(np.float64), n_bins, strategy)[2:],
                norm,
                bool(debias),
            )
            ** p
            for c in range(probs64.shape[1])
        ]
        return float(np.mean(per_class) ** (1.0 / p))
    conf, hit = batch.top_label()
    return top_label_debiased_error(
        conf, hit, n_bins, strategy, norm, bool(debias), level, n_boot, seed
    )


def top_label_debiased_error(
    conf: FloatArray,
    hit: FloatArray,
    n_bins: int = 15,
    strategy: str = "quantile",
    norm: str = "l2",
    debias: bool = True,
    level: float | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> Any:
    """The estimate (a float, or a MetricInterval with ``level``) of checked float64 input.

    Examples
    --------
    >>> import numpy as np
    >>> conf, hit = np.array([0.2, 0.3, 0.7, 0.9]), np.array([0.0, 1.0, 1.0, 1.0])
    >>> round(top_label_debiased_error(conf, hit, 2, norm="l1", debias=False), 4)
    0.225
    """
    idx, size, count, conf_sum, hit_sum = _sums(conf, hit, n_bins, strategy)
    value = float(_error(count, conf_sum, hit_sum, norm, debias))
    if level is None:
        return value
    cells = cell_stats(idx, conf, hit, size)
    boot = bootstrap_bin_sums(cells, size, n_bootstrap, np.random.default_rng(seed))
    return percentile_interval(value, _error(*boot, norm, debias), level)


def _torch_error(
    probs: Any,
    labels: Any,
    n_bins: int,
    strategy: str,
    norm: str,
    debias: bool,
    classwise: bool,
    from_logits: bool,
) -> Any:
    """The tensor path: edges, bins and sums on the device; the few per-bin sums finish there."""
    import torch

    from thermoscope.calibration import _torch_metrics as native

    batch = native.prepare(probs, labels, from_logits)
    wide = torch.float64

    def one(conf: torch.Tensor, hit: torch.Tensor) -> torch.Tensor:
        n = int(conf.shape[0])
        if strategy == "uniform":
            upper = torch.arange(1, n_bins + 1, dtype=wide, device=conf.device) / n_bins
        else:
            k = min(n_bins, n)
            q, r = divmod(n, k)
            ends = [i * q + min(i, r) for i in range(1, k)]
            ordered = torch.sort(conf).values
            idx_t = torch.as_tensor(ends, dtype=torch.int64, device=conf.device)
            inner = (ordered[idx_t - 1] + ordered[idx_t]) / 2.0
            one_t = torch.ones(1, dtype=wide, device=conf.device)
            upper = torch.unique(torch.cat([inner, one_t]))
        idx = torch.searchsorted(upper, conf.contiguous(), right=False)
        size = int(upper.shape[0])
        zeros = torch.zeros(size, dtype=wide, device=conf.device)
        count = torch.bincount(idx, minlength=size).to(wide)
        conf_sum = zeros.index_add(0, idx, conf)
        hit_sum = zeros.index_add(0, idx, hit)
        nn = count.sum()
        safe = count.clamp(min=1)
        gap = torch.where(count > 0, (conf_sum - hit_sum) / safe, zeros)
        if norm == "l1":
            return (count * gap.abs()).sum() / nn
        if not debias:
            return torch.sqrt((count * gap**2).sum() / nn)
        acc = torch.where(count > 0, hit_sum / safe, zeros)
        var = torch.where(count > 1, acc * (1 - acc) / (count - 1).clamp(min=1), zeros)
        terms = torch.where(count > 1, gap**2 - var, zeros)
        return torch.sqrt(((count * terms).sum() / nn).clamp(min=0.0))

    if classwise:
        p = 1 if norm == "l1" else 2
        probs64 = batch.probs.to(wide)
        if batch.binary:
            probs64 = torch.stack([1.0 - probs64, probs64], dim=1)
        per_class = torch.stack(
            [
                one(probs64[:, c].contiguous(), (batch.labels == c).to(wide)) ** p
                for c in range(int(probs64.shape[1]))
            ]
        )
        return batch.back(per_class.mean() ** (1.0 / p))
    conf, hit = batch.top_label()
    return batch.back(one(conf.contiguous(), hit.to(wide)))
