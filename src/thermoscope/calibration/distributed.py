"""Calibration metrics and temperature-fit derivatives on Dask arrays (one map-reduce each).

Each block of rows is reduced to the small per-bin sums of
:mod:`thermoscope.calibration.accumulator` (or to NLL derivative sums) on the
workers; only those sums travel to the client, where they are added and the
metrics finished. The result equals the in-memory one up to float64
summation order. Dask is imported only inside these functions, and the public
metric functions of :mod:`thermoscope.calibration.metrics` route Dask arrays
here by themselves (detected by module name, without importing Dask).

The computation runs on whatever scheduler is active: a
``dask.distributed.Client`` if one is connected, Dask's threads otherwise.
Rows may be chunked freely; chunks along the class axis are merged first
(every row must be whole to take a softmax or a max). Equal-mass bins need
the percentiles of all confidences: they are computed exactly with a first
pass that brings the ``N`` top-label confidences (one float per row, not the
``N x C`` matrix) to the client.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thermoscope.calibration.accumulator import chunk_state
from thermoscope.calibration.metrics import (
    STRATEGIES,
    BinSums,
    CalibrationSummary,
    NLLDerivatives,
    ReliabilityCurve,
    _check_beta,
    _nll_derivative_kernel,
    _prepare_logits,
    check_choice,
    check_n_bins,
    classwise_sums,
    error_from_sums,
    is_dask_array,
    prepare,
    quantile_edges,
    top_label,
    uniform_edges,
)

__all__ = ["calibration_metrics_dask", "nll_derivatives_dask"]


def _row_blocks(x: Any, labels: Any, name: str) -> list[tuple[Any, Any]]:
    """Pair each row block of ``x`` with the matching block of ``labels`` (as delayed objects)."""
    import dask.array as da

    x = x if is_dask_array(x) else da.asarray(x)
    labels = labels if is_dask_array(labels) else da.asarray(labels)
    if x.ndim not in (1, 2):
        raise ValueError(
            f"`{name}` must be 1-D (binary) or 2-D (n_samples, n_classes), got shape {x.shape}."
        )
    if any(np.isnan(c) for c in x.chunks[0]) or any(np.isnan(c) for c in labels.chunks[0]):
        raise ValueError(
            f"`{name}` and `labels` must have known chunk sizes, got unknown ones; "
            "call .compute_chunk_sizes() first."
        )
    if x.shape[0] == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {x.shape}.")
    if labels.shape != (x.shape[0],):
        raise ValueError(
            f"`labels` must have shape ({x.shape[0]},) to match `{name}` of shape {x.shape}, "
            f"got shape {labels.shape}."
        )
    if x.ndim == 2 and x.numblocks[1] != 1:
        x = x.rechunk({1: -1})
    labels = labels.rechunk((x.chunks[0],))
    return list(zip(x.to_delayed().ravel(), labels.to_delayed().ravel(), strict=True))


def _map_reduce(func: Any, blocks: list[tuple[Any, Any]], *args: Any) -> Any:
    """Apply ``func(block, labels, *args)`` to every block and add the results on the cluster."""
    import dask

    parts = [dask.delayed(func)(b, y, *args) for b, y in blocks]
    return dask.delayed(_add_all)(parts).compute()


def _add_all(parts: list[Any]) -> Any:
    total = parts[0]
    for part in parts[1:]:
        total = tuple(a + b for a, b in zip(total, part, strict=True))
    return total


def _summary_block(
    x: np.ndarray, y: np.ndarray, edges: np.ndarray, from_logits: bool
) -> tuple[BinSums, int, int, float, float]:
    sums, n, correct, nll, brier, _, _ = chunk_state(x, y, edges, from_logits)
    return sums, n, correct, nll, brier


def _confidence_block(x: np.ndarray, y: np.ndarray, from_logits: bool) -> np.ndarray:
    return top_label(prepare(x, y, from_logits))[0]


def _classwise_block(
    x: np.ndarray, y: np.ndarray, n_bins: int, from_logits: bool
) -> tuple[BinSums]:
    return (classwise_sums(prepare(x, y, from_logits), n_bins, "uniform"),)


def _edges_for(
    blocks: list[tuple[Any, Any]], n_bins: int, strategy: str, from_logits: bool
) -> np.ndarray:
    if strategy == "uniform":
        return uniform_edges(n_bins)
    import dask

    confs = dask.compute(*[dask.delayed(_confidence_block)(b, y, from_logits) for b, y in blocks])
    return quantile_edges(np.concatenate(confs), n_bins)


def calibration_metrics_dask(
    x: Any,
    labels: Any,
    n_bins: int = 15,
    strategy: str = "uniform",
    from_logits: bool = False,
) -> CalibrationSummary:
    """All top-label calibration metrics of a Dask array, computed as one map-reduce.

    Parameters
    ----------
    x : dask.array.Array (or array_like)
        ``(n_samples, n_classes)`` probabilities or logits, or 1-D binary
        input; chunked along rows.
    labels : dask.array.Array or array_like of int, shape (n_samples,)
        Rechunked to match ``x``'s rows.
    n_bins : int, default 15
    strategy : {"uniform", "quantile"}, default "uniform"
        ``"quantile"`` adds a first pass gathering the ``N`` confidences.
    from_logits : bool, default False

    Returns
    -------
    CalibrationSummary
        The same numbers as
        :func:`~thermoscope.calibration.metrics.calibration_summary` in
        memory (to float64 summation order).

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> from thermoscope.calibration.distributed import calibration_metrics_dask
    >>> probs = da.from_array(np.array([[0.9, 0.1], [0.3, 0.7]]), chunks=1)
    >>> s = calibration_metrics_dask(probs, np.array([0, 0]), n_bins=4)
    >>> round(s.ece, 4), s.accuracy
    (0.4, 0.5)
    """
    n_bins = check_n_bins(n_bins)
    check_choice(strategy, "strategy", STRATEGIES)
    return dask_summary(x, labels, n_bins, from_logits, strategy)


def dask_summary(
    x: Any, labels: Any, n_bins: int, from_logits: bool, strategy: str = "uniform"
) -> CalibrationSummary:
    """:func:`calibration_metrics_dask` without the argument checks."""
    blocks = _row_blocks(x, labels, "probs")
    edges = _edges_for(blocks, n_bins, strategy, from_logits)
    sums, n, correct, nll, brier = _map_reduce(_summary_block, blocks, edges, from_logits)
    return CalibrationSummary.from_sums(sums, edges, n, correct, nll, brier)


def dask_calibration_error(
    x: Any,
    labels: Any,
    n_bins: int,
    strategy: str,
    norm: str,
    classwise: bool,
    from_logits: bool,
) -> float:
    """``expected_calibration_error`` on Dask arrays (arguments already checked)."""
    blocks = _row_blocks(x, labels, "probs")
    if classwise:
        if strategy != "uniform":
            raise ValueError(
                "`strategy` must be 'uniform' for class-wise ECE on Dask arrays (each "
                "class would need its own percentiles of all the data), got 'quantile'."
            )
        (sums,) = _map_reduce(_classwise_block, blocks, n_bins, from_logits)
        return float(np.mean(error_from_sums(sums, norm)))
    edges = _edges_for(blocks, n_bins, strategy, from_logits)
    sums = _map_reduce(_summary_block, blocks, edges, from_logits)[0]
    return float(error_from_sums(sums, norm))


def dask_reliability_curve(
    x: Any, labels: Any, n_bins: int, strategy: str, from_logits: bool
) -> ReliabilityCurve:
    """``reliability_curve`` on Dask arrays (arguments already checked)."""
    return dask_summary(x, labels, n_bins, from_logits, strategy).curve


def _derivative_block(z: np.ndarray, y: np.ndarray, beta: float) -> tuple[float, float, float, int]:
    zz, yy = _prepare_logits(z, y)
    return tuple(_nll_derivative_kernel(zz, yy, beta))  # type: ignore[return-value]


def nll_derivatives_dask(logits: Any, labels: Any, beta: float) -> NLLDerivatives:
    """Summed NLL of ``softmax(beta * logits)`` and its beta-derivatives, one map-reduce.

    The per-block sums of
    :func:`~thermoscope.calibration.metrics.nll_derivatives` added over the
    cluster: everything one Newton step on ``beta = 1 / T`` needs.

    Parameters
    ----------
    logits : dask.array.Array (or array_like)
        ``(n_samples, n_classes)`` logits or 1-D log-odds.
    labels : dask.array.Array or array_like of int, shape (n_samples,)
    beta : float
        Inverse temperature, finite and >= 0.

    Returns
    -------
    NLLDerivatives
        ``(nll_sum, grad_sum, hess_sum, n)``.

    Examples
    --------
    >>> import dask.array as da
    >>> from thermoscope.calibration.distributed import nll_derivatives_dask
    >>> z = da.from_array([[2.0, 0.0], [0.0, 1.0]], chunks=1)
    >>> d = nll_derivatives_dask(z, [0, 0], beta=1.0)
    >>> round(d.nll_sum, 4), round(d.grad_sum, 4), round(d.hess_sum, 4), d.n
    (1.4402, 0.4927, 0.6166, 2)
    """
    b = _check_beta(beta)
    blocks = _row_blocks(logits, labels, "logits")
    nll, grad, hess, n = _map_reduce(_derivative_block, blocks, b)
    return NLLDerivatives(float(nll), float(grad), float(hess), int(n))
