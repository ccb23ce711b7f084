"""The Dask path: calibration metrics and NLL derivatives as one map-reduce each.

Each block of rows is reduced on the workers to the small per-bin sums of
:func:`thermoscope.calibration._chunks.chunk_state` (or to NLL derivative
sums from :mod:`thermoscope.calibration._nll`); only those sums travel to
the client, where they are added and the metrics finished. The result equals
the in-memory one up to float64 summation order. The public metric functions
of :mod:`thermoscope.calibration.metrics` send a Dask array here by
themselves (detected by module name, without importing Dask); this module
takes their already checked options and imports Dask only inside functions.

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

from thermoscope._typing import Array, FloatArray, IntArray
from thermoscope.calibration._binning import (
    BinSums,
    classwise_sums,
    error_from_sums,
    quantile_edges,
    uniform_edges,
)
from thermoscope.calibration._chunks import chunk_state
from thermoscope.calibration._inputs import is_dask_array, prepare
from thermoscope.calibration._nll import NLLDerivatives, check_beta, nll_derivatives
from thermoscope.calibration._results import CalibrationSummary, ReliabilityCurve

__all__ = ["nll_derivatives_dask"]


def _dask() -> tuple[Any, Any]:
    """``(dask, dask.array)``, imported on first use (Dask is an optional extra, untyped)."""
    import dask
    import dask.array

    return dask, dask.array


def _row_blocks(x: Any, labels: Any, name: str) -> list[tuple[Any, Any]]:
    """Pair each row block of ``x`` with the matching block of ``labels`` (as delayed objects)."""
    _, da = _dask()

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
    dask, _ = _dask()

    parts = [dask.delayed(func)(b, y, *args) for b, y in blocks]
    return dask.delayed(_add_all)(parts).compute()


def _add_all(parts: list[Any]) -> Any:
    total = parts[0]
    for part in parts[1:]:
        total = tuple(a + b for a, b in zip(total, part, strict=True))
    return total


def _summary_block(
    x: Array, y: IntArray, edges: FloatArray, from_logits: bool
) -> tuple[BinSums, int, int, float, float]:
    sums, n, correct, nll, brier, _, _ = chunk_state(x, y, edges, from_logits)
    return sums, n, correct, nll, brier


def _confidence_block(x: Array, y: IntArray, from_logits: bool) -> FloatArray:
    return prepare(x, y, from_logits).top_label()[0]


def _classwise_block(x: Array, y: IntArray, n_bins: int, from_logits: bool) -> tuple[BinSums]:
    batch = prepare(x, y, from_logits)
    return (classwise_sums(batch.class_probs(), batch.labels, n_bins, "uniform"),)


def _edges_for(
    blocks: list[tuple[Any, Any]], n_bins: int, strategy: str, from_logits: bool
) -> FloatArray:
    if strategy == "uniform":
        return uniform_edges(n_bins)
    dask, _ = _dask()

    confs = dask.compute(*[dask.delayed(_confidence_block)(b, y, from_logits) for b, y in blocks])
    return quantile_edges(np.concatenate(confs), n_bins)


def summary(
    x: Any, labels: Any, *, n_bins: int, strategy: str, from_logits: bool
) -> CalibrationSummary:
    """``calibration_summary`` of Dask arrays (options already checked by the caller).

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> probs = da.from_array(np.array([[0.9, 0.1], [0.3, 0.7]]), chunks=1)
    >>> s = summary(probs, np.array([0, 0]), n_bins=4, strategy="uniform", from_logits=False)
    >>> round(s.ece, 4), s.accuracy
    (0.4, 0.5)
    """
    blocks = _row_blocks(x, labels, "probs")
    edges = _edges_for(blocks, n_bins, strategy, from_logits)
    sums, n, correct, nll, brier = _map_reduce(_summary_block, blocks, edges, from_logits)
    return CalibrationSummary.from_sums(sums, edges, n, correct, nll, brier)


def calibration_error(
    x: Any,
    labels: Any,
    *,
    n_bins: int,
    strategy: str,
    norm: str,
    classwise: bool,
    from_logits: bool,
) -> float:
    """``expected_calibration_error`` of Dask arrays (options already checked by the caller).

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> probs = da.from_array(np.array([[0.9, 0.1], [0.3, 0.7]]), chunks=1)
    >>> calibration_error(probs, [0, 0], n_bins=4, strategy="uniform", norm="max",
    ...                   classwise=False, from_logits=False)
    0.7
    """
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


def reliability_curve(
    x: Any, labels: Any, *, n_bins: int, strategy: str, from_logits: bool
) -> ReliabilityCurve:
    """``reliability_curve`` of Dask arrays (options already checked by the caller).

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> probs = da.from_array(np.array([0.2, 0.9]), chunks=1)
    >>> reliability_curve(probs, [0, 1], n_bins=2, strategy="uniform",
    ...                   from_logits=False).count.tolist()
    [1, 1]
    """
    return summary(x, labels, n_bins=n_bins, strategy=strategy, from_logits=from_logits).curve


def _derivative_block(z: Array, y: IntArray, beta: float) -> tuple[float, float, float, int]:
    nll, grad, hess, n = nll_derivatives(z, y, beta)
    return nll, grad, hess, n


def nll_derivatives_dask(logits: Any, labels: Any, beta: float) -> NLLDerivatives:
    """Summed NLL of ``softmax(beta * logits)`` and its beta-derivatives, one map-reduce.

    The per-block sums of :func:`thermoscope.calibration._nll.nll_derivatives`
    added over the cluster: everything one Newton step on ``beta = 1 / T`` needs.

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
    >>> z = da.from_array([[2.0, 0.0], [0.0, 1.0]], chunks=1)
    >>> d = nll_derivatives_dask(z, [0, 0], beta=1.0)
    >>> round(d.nll_sum, 4), round(d.grad_sum, 4), round(d.hess_sum, 4), d.n
    (1.4402, 0.4927, 0.6166, 2)
    """
    b = check_beta(beta)
    blocks = _row_blocks(logits, labels, "logits")
    nll, grad, hess, n = _map_reduce(_derivative_block, blocks, b)
    return NLLDerivatives(float(nll), float(grad), float(hess), int(n))


class DaskDerivatives:
    """Mean NLL and its beta-derivatives on Dask arrays, for the fit: one map-reduce per call.

    The input is validated in one map-reduce when constructed (bad values,
    rows of all ``-inf``, ``-inf`` at a label, separability), so that each
    Newton step afterwards only computes.

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> d = DaskDerivatives(da.from_array(np.array([[1.0, 0.0], [0.0, 1.0]]), chunks=1), [0, 0])
    >>> [round(v, 4) for v in d(1.0)], d.separable()
    ([0.8133, 0.2311, 0.1966], False)
    """

    def __init__(self, z: Any, y: Any, label_name: str = "labels") -> None:
        dask, da = _dask()

        if z.ndim != 2:
            raise ValueError(
                f"`logits` must be a 2-D array (samples, classes), got shape {tuple(z.shape)}."
            )
        if z.shape[1] < 2:
            raise ValueError(
                f"`logits` must have at least 2 classes (columns), got shape {tuple(z.shape)}."
            )
        if z.shape[0] == 0:
            raise ValueError(f"`logits` must not be empty, got shape {tuple(z.shape)}.")
        y = y if is_dask_array(y) else da.from_array(np.asarray(y), chunks=(z.chunks[0],))
        if y.ndim != 1 or y.shape[0] != z.shape[0]:
            raise ValueError(
                f"`{label_name}` must have shape ({z.shape[0]},) (one label per row), "
                f"got shape {tuple(y.shape)}."
            )
        if y.dtype.kind not in "iu":
            raise TypeError(f"`{label_name}` must be integer class indices, got dtype {y.dtype}.")
        z = z.rechunk({1: -1})
        y = y.rechunk((z.chunks[0],))
        checks = da.map_blocks(
            _block_checks, z, y[:, None], dtype=np.int64, chunks=((1,) * z.numblocks[0], (4,))
        ).sum(axis=0)
        counts, lo, hi = dask.compute(checks, y.min(), y.max())
        bad_values, bad_rows, dead_label, nonseparable = (int(v) for v in counts)
        if lo < 0 or hi >= z.shape[1]:
            got = int(lo) if lo < 0 else int(hi)
            raise ValueError(
                f"`{label_name}` must be class indices in [0, {z.shape[1] - 1}], got {got}."
            )
        if bad_values:
            raise ValueError(
                f"`logits` must be finite or -inf (masked), got {bad_values} NaN/+inf."
            )
        if bad_rows:
            raise ValueError("`logits` must keep at least one finite entry per row.")
        if dead_label:
            raise ValueError("`logits` must be finite at each row's label, got -inf there.")
        self.z, self.y = z, y
        self.n = int(z.shape[0])
        self.is_separable = nonseparable == 0

    def __call__(self, beta: float) -> tuple[float, float, float]:
        """``(NLL, NLL', NLL'')`` at ``beta``, all means over the rows."""
        nll, grad, hess, n = nll_derivatives_dask(self.z, self.y, beta)
        return nll / n, grad / n, hess / n

    def separable(self) -> bool:
        """True when every label is its row's unique maximum (NLL -> 0 as T -> 0)."""
        return self.is_separable


def _block_checks(z: Array, y: IntArray) -> IntArray:
    """Per-block counts: bad values, all -inf rows, -inf at the label, non-separable rows."""
    y = y[:, 0]
    rows = np.arange(z.shape[0])
    finite = np.isfinite(z)
    bad = int(np.count_nonzero(np.isnan(z) | np.isposinf(z)))
    dead = int(np.count_nonzero(~finite.any(axis=1)))
    safe_y = np.clip(y, 0, z.shape[1] - 1)
    true = z[rows, safe_y]
    top = z.max(axis=1) if z.size else np.zeros(0)
    unique_top = np.count_nonzero(z == top[:, None], axis=1) == 1
    nonsep = int(np.count_nonzero(~((true == top) & unique_top)))
    return np.array([[bad, dead, int(np.count_nonzero(np.isneginf(true))), nonsep]])
