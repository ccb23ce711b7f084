"""Calibration metrics: ECE (l1, l2, max), MCE, Brier score, NLL and reliability curves.

Every metric here reduces to sums: per-bin counts, confidence sums and
correct-prediction sums for the binned metrics, per-sample losses for NLL and
Brier. The same private kernels therefore serve the in-memory functions, the
streaming :class:`~thermoscope.calibration.accumulator.CalibrationAccumulator`
and the Dask map-reduce in :mod:`thermoscope.calibration.distributed`; a Dask
array passed to any public function here is routed there without copying it
into memory.

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
``thermoscope._arrays.to_numpy``: :func:`nll_derivatives` (the input of a
host-side Newton solver) and the streaming
:class:`~thermoscope.calibration.accumulator.CalibrationAccumulator`, which
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

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from thermoscope import _temperature as kernel
from thermoscope._arrays import to_numpy
from thermoscope._backend import input_eps, is_torch
from thermoscope._validation import as_float_array, check_logits, check_probabilities

__all__ = [
    "CalibrationSummary",
    "NLLDerivatives",
    "ReliabilityCurve",
    "brier_score",
    "calibration_summary",
    "expected_calibration_error",
    "maximum_calibration_error",
    "negative_log_likelihood",
    "nll_derivatives",
    "reliability_curve",
]

Strategy = Literal["uniform", "quantile"]
Norm = Literal["l1", "l2", "max"]

STRATEGIES: tuple[str, ...] = ("uniform", "quantile")
NORMS: tuple[str, ...] = ("l1", "l2", "max")


# ----------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------


def check_n_bins(n_bins: Any) -> int:
    """Return ``n_bins`` as an int >= 1; reject bools, floats and arrays."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)):
        raise TypeError(f"`n_bins` must be an integer >= 1, got {n_bins!r}.")
    if n_bins < 1:
        raise ValueError(f"`n_bins` must be an integer >= 1, got {int(n_bins)}.")
    return int(n_bins)


def check_choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``allowed``; else a ValueError naming ``name``."""
    if not isinstance(value, str) or value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"`{name}` must be one of {options}, got {value!r}.")
    return value


def is_dask_array(x: object) -> bool:
    """True for a Dask array, decided by its module so that Dask is never imported."""
    return type(x).__module__.split(".", 1)[0] == "dask" and hasattr(x, "chunks")


def _check_labels(
    labels: Any, n_samples: int, n_classes: int, shape: tuple[int, ...]
) -> np.ndarray:
    arr, _ = to_numpy(labels, "labels")
    if arr.shape != (n_samples,):
        raise ValueError(
            f"`labels` must have shape ({n_samples},) to match `probs` of shape {shape}, "
            f"got shape {arr.shape}."
        )
    if arr.dtype == np.bool_:
        raise TypeError("`labels` must be integer class indices, got dtype bool.")
    if arr.dtype.kind == "f":
        whole = np.isfinite(arr) & (arr == np.round(arr))
        if not np.all(whole):
            bad = arr[~whole][0].tolist()
            raise TypeError(f"`labels` must be integer class indices, got {bad!r}.")
    out = arr.astype(np.int64, copy=False)
    # Two fast reductions decide; the mask that finds the first offender is
    # built only on the error path.
    if out.min() < 0 or out.max() >= n_classes:
        bad_range = (out < 0) | (out >= n_classes)
        raise ValueError(
            f"`labels` must be class indices in [0, {n_classes - 1}], got {int(out[bad_range][0])}."
        )
    return out


# ----------------------------------------------------------------------------
# Clean inputs
# ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Batch:
    """Validated probabilities, int64 labels and, for logits, the exact log of the true class.

    ``probs`` is ``(n, n_classes)``, or ``(n,)`` holding ``P(y = 1)`` for binary
    input, in float32 or float64 as given (float32 widens to float64 exactly,
    per use, so a float32 matrix is never copied whole for top-label metrics).
    ``log_p_true`` is ``log p(y_i)`` computed in log space from logits, so that
    it stays finite where the probability underflows to 0; ``None`` for
    probability input. ``conf`` and ``hit`` are the top-label confidence (in
    the dtype of ``probs``) and correctness of 2-D probability input, found by
    the same blocked pass that validates it; ``None`` where not computed yet.
    """

    probs: np.ndarray
    labels: np.ndarray
    log_p_true: np.ndarray | None = None
    conf: np.ndarray | None = None
    hit: np.ndarray | None = None

    @property
    def binary(self) -> bool:
        return self.probs.ndim == 1

    @property
    def n_classes(self) -> int:
        return 2 if self.binary else int(self.probs.shape[1])

    def log_true(self) -> np.ndarray:
        """``log p(y_i)`` in float64; ``-inf`` where a probability of 0 was given."""
        if self.log_p_true is not None:
            return self.log_p_true
        if self.binary:
            p = self.probs.astype(np.float64)
            p_true = np.where(self.labels == 1, p, 1.0 - p)
        else:
            p_true = self.probs[np.arange(self.labels.shape[0]), self.labels].astype(np.float64)
        # A zero probability on the observed label is an infinite loss, not an
        # error: that is the honest value of -log 0, and it is documented.
        with np.errstate(divide="ignore"):
            return np.log(p_true)


def check_from_logits(from_logits: Any) -> None:
    """Reject anything but a bool for ``from_logits``."""
    if not isinstance(from_logits, (bool, np.bool_)):
        raise TypeError(f"`from_logits` must be True or False, got {from_logits!r}.")


def check_temperature_rows(temperature: Any, n_samples: int) -> None:
    """A scalar temperature, or one per row: shape ``()`` or ``(n_samples,)``."""
    shape = tuple(temperature.shape) if is_torch(temperature) else np.shape(temperature)
    if shape not in ((), (n_samples,)):
        raise ValueError(
            "`temperature` must be a scalar or have one value per row, "
            f"shape ({n_samples},), got shape {shape}."
        )


def prepare(probs: Any, labels: Any, from_logits: bool, temperature: Any = 1.0) -> _Batch:
    """Validate ``probs`` (or logits) and ``labels``; return clean data for the kernels.

    ``temperature`` (a checked number, or one per row) divides the logits:
    the log-probabilities are the kernel's ``log_softmax(z / T)``.
    """
    check_from_logits(from_logits)
    x, y = _scores_and_labels(probs, labels, "probs", "binary: P(y = 1)")
    binary = x.ndim == 1
    if from_logits:
        check_temperature_rows(temperature, x.shape[0])
        x = _two_column_logits(x, "probs")
        logp = kernel.log_softmax(x, temperature, 1)
        log_p_true = logp[np.arange(x.shape[0]), y]
        p = np.exp(logp)
        return _Batch(p[:, 1] if binary else p, y, log_p_true)
    if binary:
        if not np.all(np.isfinite(x)):
            raise ValueError("`probs` must be finite probabilities, got NaN or inf.")
        outside = (x < 0) | (x > 1)
        if np.any(outside):
            raise ValueError(f"`probs` must lie in [0, 1], got {x[outside][0].tolist()!r}.")
        return _Batch(x, y)
    conf, hit = _check_probability_rows(x, y, input_eps(probs))
    return _Batch(x, y, conf=conf, hit=hit)


# A block of the blocked scan holds this many bytes of probabilities: its
# transposed copy and comparison mask then stay in a core's L2 cache.
_BLOCK_BYTES = 1 << 18
# From this many classes on, float32 rows are transposed in 8-byte pairs (see
# _blocked_top_label); below it, the extra passes that undo the pairing cost
# more than the halved transposition saves.
_PAIRED_MIN_CLASSES = 16
# Samples per block when binning top-label confidences.
_BIN_BLOCK = 1 << 14


def _blocked_top_label(
    x: np.ndarray, y: np.ndarray, acc_dtype: np.dtype[Any] | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float] | None]:
    """Row maximum, "first arg-max equals the label" and, with ``acc_dtype``, screening stats.

    numpy reduces a short trailing axis one row at a time, at tens of
    nanoseconds a row (``max(axis=1)`` of a ``(10**6, 10)`` array takes about
    40 ms). Copying a block of rows transposed into a buffer that stays in
    cache turns every row-wise step into a few vectorised passes over
    contiguous columns. ``hit`` is exactly ``argmax(x, axis=1) == y``
    (first maximum on ties): in a block where every row has a single maximum
    it is read off the equality mask at the label; a block with a tie falls
    back to ``argmax``.

    A float32 matrix with an even number of aligned columns is transposed in
    pairs of columns, moved as 8-byte words: half as many strided moves, the
    cost that dominates. Each buffer row then holds two columns interleaved,
    and the row-wise results are the elementwise maximum (or sum) of the even
    and odd entries.

    With ``acc_dtype`` it also returns ``(smallest entry, smallest row sum,
    largest row sum)``, the sums accumulated in ``acc_dtype``; NaN propagates
    into all three. The caller silences floating-point warnings: a row
    holding NaN or inf is rejected afterwards, from these stats.
    """
    n, k = x.shape
    paired = (
        x.dtype == np.float32
        and k % 2 == 0
        and k >= _PAIRED_MIN_CLASSES
        and x.strides[1] == 4
        and x.strides[0] % 8 == 0
        and x.ctypes.data % 8 == 0
    )
    g = 2 if paired else 1  # columns per moved word
    words = x.view(np.uint64) if paired else x
    rows = min(n, max(64, _BLOCK_BYTES // (k * x.itemsize)))
    conf = np.empty(n, dtype=x.dtype)
    hit = np.empty(n, dtype=np.bool_)
    n_blocks = -(-n // rows)
    # Per block: smallest entry, smallest and largest row sum (NaN propagates).
    stats = None if acc_dtype is None else np.empty((3, n_blocks), dtype=np.float64)
    for i, start in enumerate(range(0, n, rows)):
        stop = min(start + rows, n)
        r = stop - start
        if i == 0 or r != rows:  # a shorter last block gets buffers of its own shape
            buf = np.empty((k // g, r), dtype=words.dtype)
            cols = buf.view(x.dtype)  # (k // g, g * r): row j holds columns g*j .. g*j+g-1
            mask = np.empty(cols.shape, dtype=np.bool_)
            flat = np.empty(r, dtype=np.intp)
            base = np.arange(0, g * r, g, dtype=np.intp)
            sums = np.empty(r, dtype=acc_dtype or x.dtype)
            if paired:
                pair = np.empty(2 * r, dtype=x.dtype)
                pair_sums = np.empty(2 * r, dtype=acc_dtype or x.dtype)
        np.copyto(buf, words[start:stop].T)
        top = conf[start:stop]
        if paired:
            np.maximum.reduce(cols, axis=0, out=pair)
            np.maximum(pair[0::2], pair[1::2], out=top)
            pair[0::2] = top  # the row maximum, repeated for both columns of a pair
            pair[1::2] = top
        else:
            np.maximum.reduce(cols, axis=0, out=top)
        if stats is not None:
            if paired:
                np.add.reduce(cols, axis=0, dtype=acc_dtype, out=pair_sums)
                np.add(pair_sums[0::2], pair_sums[1::2], out=sums)
            else:
                np.add.reduce(cols, axis=0, dtype=acc_dtype, out=sums)
            stats[:, i] = cols.min(), sums.min(), sums.max()
        np.equal(cols, pair if paired else top, out=mask)
        labels = y[start:stop]
        if np.count_nonzero(mask) == r:  # one maximum per row: hit = mask at (label, row)
            # label c of row i sits at [c // g, g * i + c % g] of `cols`.
            if paired:
                np.right_shift(labels, 1, out=flat)
                flat *= 2 * r - 2
                flat += labels
            else:
                np.multiply(labels, r, out=flat)
            flat += base
            mask.ravel().take(flat, out=hit[start:stop], mode="clip")
        else:
            np.equal(np.argmax(x[start:stop], axis=1), labels, out=hit[start:stop])
    if stats is None:
        return conf, hit, None
    return conf, hit, (float(stats[0].min()), float(stats[1].min()), float(stats[2].max()))


def _sum_error_bound(n_terms: int, unit_roundoff: float) -> float:
    """Bound on the relative error of any float sum of ``n_terms`` non-negative numbers."""
    m = (n_terms - 1) * unit_roundoff
    return m / (1.0 - m) if m < 0.5 else np.inf


def _check_probability_rows(
    x: np.ndarray, y: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Validate 2-D probabilities like ``check_probabilities`` and return (conf, hit).

    One blocked pass screens the data: its smallest entry, its row maxima and
    its row sums. Data that pass the screen pass ``check_probabilities``;
    anything else (NaN, inf, an entry outside [0, 1], a row sum near or past
    the tolerance) goes to ``check_probabilities`` itself, which raises its
    usual error -- or accepts the data, when only the screen's safety margin
    was crossed. The margin covers rounding: ``check_probabilities`` sums each
    row in the array's dtype, in an order of numpy's choosing; the screen sums
    in ``acc`` (float64 where the array's dtype leaves too little room), and
    two float sums of ``k`` non-negative terms differ by at most the sum of
    their error bounds.
    """
    k = x.shape[1]
    tol = eps + 1e-6 * max(1.0, float(np.sqrt(k)))  # check_probabilities' tolerance
    unit = float(np.finfo(x.dtype).eps) / 2
    acc = x.dtype
    margin = 2 * _sum_error_bound(k, unit)
    if margin > tol / 2:
        acc = np.dtype(np.float64)
        margin = _sum_error_bound(k, unit) + _sum_error_bound(k, 2.0**-53)
    margin *= 1.01 * (1.0 + tol)  # the row sums themselves are at most about 1 + tol
    # NaN and inf only reach the stats checked below, which send them on to
    # check_probabilities for the error message; silence their warnings here.
    with np.errstate(invalid="ignore", over="ignore"):
        conf, hit, stats = _blocked_top_label(x, y, acc)
        assert stats is not None
        low, sum_low, sum_high = stats
        passed = (
            low >= 0
            and float(conf.max()) <= 1
            and 1.0 - sum_low <= tol - margin
            and sum_high - 1.0 <= tol - margin
        )
    if not passed:
        # check_probabilities sums the rows before it looks for NaN and inf;
        # the error it raises for them is the message, not a warning.
        with np.errstate(invalid="ignore", over="ignore"):
            check_probabilities(x, "probs", axis=1, eps=eps)
    return conf, hit


def _top_label_native(batch: _Batch) -> tuple[np.ndarray, np.ndarray]:
    """(confidence in the dtype of ``probs``, correct as bool): what :func:`top_label` widens."""
    if batch.binary:
        return batch.probs, batch.labels == 1
    if batch.conf is not None and batch.hit is not None:
        return batch.conf, batch.hit
    conf, hit, _ = _blocked_top_label(batch.probs, batch.labels)
    return conf, hit


def top_label(batch: _Batch) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, correct) per sample: top-label for 2-D, positive-class for 1-D."""
    if batch.binary:
        return batch.probs.astype(np.float64), batch.labels.astype(np.float64)
    conf, hit = _top_label_native(batch)
    return conf.astype(np.float64), hit.astype(np.float64)


def n_correct(batch: _Batch) -> int:
    """Number of samples whose predicted class (arg-max; 1 iff P(y=1) > 0.5) is right."""
    if batch.binary:
        return int(np.count_nonzero((batch.probs > 0.5).astype(np.int64) == batch.labels))
    return int(np.count_nonzero(_top_label_native(batch)[1]))


def brier_terms(batch: _Batch) -> np.ndarray:
    """Per-sample Brier loss: ``sum_c (p_c - onehot_c)^2``, or ``(p - y)^2`` for 1-D."""
    if batch.binary:
        return (batch.probs.astype(np.float64) - batch.labels) ** 2
    diff = batch.probs.astype(np.float64)  # always a copy here: float32 or float64 alike
    diff[np.arange(diff.shape[0]), batch.labels] -= 1.0
    return np.einsum("ij,ij->i", diff, diff)


# ----------------------------------------------------------------------------
# Binning kernels
# ----------------------------------------------------------------------------


def uniform_edges(n_bins: int) -> np.ndarray:
    """The float64 edges ``k / n_bins``, each one correctly rounded division."""
    return np.arange(n_bins + 1) / n_bins


def _percentiles(n_bins: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, n_bins + 1) * 100


def quantile_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-mass edges: percentiles of ``values``, computed as scikit-learn does."""
    return np.asarray(np.percentile(values, _percentiles(n_bins)))


def quantile_positions(n: int, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where :func:`quantile_edges` reads ``n`` sorted values: (lower, upper, weight).

    ``np.percentile``'s default ("linear") method, step for step: edge ``j``
    is ``lerp(v[lower_j], v[upper_j], weight_j)`` of the sorted values, with
    numpy's two-sided lerp ``a + (b - a) t`` (``t < 0.5``) or
    ``b - (b - a)(1 - t)``. The torch metrics sort on the device and
    interpolate with these host-made positions, giving the very same edges.

    Examples
    --------
    >>> lower, upper, weight = quantile_positions(5, 2)
    >>> lower.tolist(), upper.tolist(), weight.tolist()
    ([0, 2, 4], [1, 3, 4], [0.0, 0.0, 0.0])
    """
    q = np.true_divide(_percentiles(n_bins), 100)
    virtual = (n - 1) * q
    lower = np.floor(virtual)
    weight = virtual - lower
    last = virtual >= n - 1  # numpy reads the last value there
    lower_i = np.where(last, n - 1, lower).astype(np.int64)
    upper_i = np.where(last, n - 1, lower + 1).astype(np.int64)
    return lower_i, upper_i, np.where(last, 0.0, weight)


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value: ``[e_k, e_{k+1})``, the last bin closed (see module docs)."""
    n_bins = edges.shape[0] - 1
    if values.size and n_bins >= 1 and np.array_equal(edges, uniform_edges(n_bins)):
        with np.errstate(invalid="ignore"):  # NaN fails both tests and takes the general path
            inside = bool(values.min() >= 0) and bool(values.max() <= 1)
        if inside:
            return uniform_bin_index(values, n_bins)
    return np.searchsorted(edges[1:-1], values, side="right")


def uniform_bin_index(values: np.ndarray, n_bins: int) -> np.ndarray:
    """``bin_index(values, uniform_edges(n_bins))`` for values in [0, 1], by one multiplication.

    ``searchsorted`` runs a branchy binary search per value; here the bin is
    ``floor(v * n_bins)`` (capped at the last bin), which is exact for float32
    (and narrower) values when ``n_bins < 2**29``: ``v * n_bins`` is then
    exact in float64, and no float32 lies between ``k / n_bins`` and its
    float64 rounding, so ``v >= e_k`` exactly when ``v * n_bins >= k``. For
    float64 values the product and the edges are each off by at most half an
    ulp, so ``floor`` is exact unless ``v * n_bins`` lies within
    ``n_bins * 2**-52`` of an integer; those few values (with margin) are
    placed by ``searchsorted``.

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope.calibration.metrics import uniform_bin_index
    >>> uniform_bin_index(np.array([0.0, 1 / 15, np.nextafter(1 / 15, 0), 0.5, 1.0]), 15).tolist()
    [0, 1, 0, 7, 14]
    """
    scaled = np.multiply(values, float(n_bins), dtype=np.float64)
    idx = scaled.astype(np.intp)  # truncation is floor: values are >= 0
    if values.dtype.kind != "f" or values.dtype.itemsize > 4 or n_bins >= 2**29:
        frac = scaled - idx
        delta = n_bins * 2.0**-50
        near = (frac < delta) | (frac > 1.0 - delta)
        if near.any():
            idx[near] = np.searchsorted(uniform_edges(n_bins)[1:-1], values[near], side="right")
    np.minimum(idx, n_bins - 1, out=idx)
    return idx


@dataclass(frozen=True, eq=False)
class BinSums:
    """Per-bin sums; the whole state a binned metric needs. Adding two merges them.

    numpy arrays; tensors on the input's device for torch input.
    """

    count: Any
    conf: Any
    hit: Any

    def __add__(self, other: BinSums) -> BinSums:
        return BinSums(self.count + other.count, self.conf + other.conf, self.hit + other.hit)


def bin_sums(conf: np.ndarray, hit: np.ndarray, edges: np.ndarray) -> BinSums:
    """Count, confidence sum and correct sum per bin, vectorised with ``np.bincount``."""
    n_bins = edges.shape[0] - 1
    idx = bin_index(conf, edges)
    return BinSums(
        np.bincount(idx, minlength=n_bins),
        np.bincount(idx, weights=conf, minlength=n_bins),
        np.bincount(idx, weights=hit, minlength=n_bins),
    )


def _indexed_sums(idx: np.ndarray, conf: np.ndarray, hit: np.ndarray, n_bins: int) -> BinSums:
    """Per-bin sums from bin indices and boolean ``hit``; one integer bincount gives both counts."""
    key = np.multiply(hit, n_bins, dtype=np.intp)
    key += idx
    both = np.bincount(key, minlength=2 * n_bins)
    hits = both[n_bins:]
    return BinSums(
        both[:n_bins] + hits,
        np.bincount(idx, weights=conf, minlength=n_bins),
        hits.astype(np.float64),
    )


def top_label_sums(batch: _Batch, n_bins: int, strategy: str) -> tuple[BinSums, np.ndarray]:
    """Top-label (positive-class for 1-D) per-bin sums and the bin edges they use.

    Equal to ``bin_sums(*top_label(batch), edges)``: float32 confidences are
    binned and summed as the exact float64 values they widen to, without a
    float64 copy of the matrix.
    """
    conf, hit = _top_label_native(batch)
    if strategy == "uniform":
        # In blocks: whole-array temporaries (bin indices, float64 copies of
        # the weights) cost more in fresh-page faults than in arithmetic.
        step = _BIN_BLOCK
        sums = _indexed_sums(
            uniform_bin_index(conf[:step], n_bins), conf[:step], hit[:step], n_bins
        )
        for start in range(step, conf.shape[0], step):
            c, h = conf[start : start + step], hit[start : start + step]
            sums += _indexed_sums(uniform_bin_index(c, n_bins), c, h, n_bins)
        return sums, uniform_edges(n_bins)
    conf64 = conf.astype(np.float64)
    edges = quantile_edges(conf64, n_bins)
    return bin_sums(conf64, hit.astype(np.float64), edges), edges


def classwise_sums(batch: _Batch, n_bins: int, strategy: str) -> BinSums:
    """Per-class per-bin sums, shape ``(n_classes, n_bins)``: class c's ``p_c`` vs ``y == c``."""
    p = batch.probs.astype(np.float64, copy=False)
    probs = np.stack([1.0 - p, p], axis=1) if batch.binary else p
    n, k = probs.shape
    hits = (batch.labels[:, None] == np.arange(k)).astype(np.float64)
    if strategy == "uniform":
        idx = bin_index(probs, uniform_edges(n_bins))
    else:
        # Each class has its own quantile edges: one vectorised search per class.
        idx = np.empty((n, k), dtype=np.int64)
        for c in range(k):
            idx[:, c] = bin_index(probs[:, c], quantile_edges(probs[:, c], n_bins))
    flat = (idx + np.arange(k) * n_bins).ravel()
    size = k * n_bins
    return BinSums(
        np.bincount(flat, minlength=size).reshape(k, n_bins),
        np.bincount(flat, weights=probs.ravel(), minlength=size).reshape(k, n_bins),
        np.bincount(flat, weights=hits.ravel(), minlength=size).reshape(k, n_bins),
    )


def error_from_sums(sums: BinSums, norm: str) -> np.ndarray:
    """Calibration error along the last axis of the sums (one value per row of bins)."""
    count = sums.count.astype(np.float64)
    n = count.sum(axis=-1)
    gap_sum = np.abs(sums.hit - sums.conf)  # = count * |accuracy - confidence|
    if norm == "l1":
        return gap_sum.sum(axis=-1) / n
    with np.errstate(invalid="ignore", divide="ignore"):  # empty bins: 0 / 0, masked next
        gap = np.where(count > 0, gap_sum / count, 0.0)
    if norm == "max":
        return gap.max(axis=-1)
    return np.sqrt((count * gap**2).sum(axis=-1) / n)


# ----------------------------------------------------------------------------
# Public metrics
# ----------------------------------------------------------------------------


def expected_calibration_error(
    probs: Any,
    labels: Any,
    n_bins: int = 15,
    strategy: Strategy = "uniform",
    norm: Norm = "l1",
    classwise: bool = False,
    from_logits: bool = False,
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

    Returns
    -------
    float or torch.Tensor
        In [0, 1]. A torch ``probs`` is binned and summed with torch
        operations on its device (float64 sums, the same edges and numbers as
        numpy) and gives a 0-d tensor of its floating dtype on that device.

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
    >>> from thermoscope.calibration.metrics import expected_calibration_error
    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> labels = np.array([0, 1, 1, 1])
    >>> round(expected_calibration_error(probs, labels, n_bins=5), 4)
    0.25
    >>> round(expected_calibration_error(probs, labels, n_bins=5, norm="max"), 4)
    0.35
    """
    n_bins = check_n_bins(n_bins)
    check_choice(strategy, "strategy", STRATEGIES)
    check_choice(norm, "norm", NORMS)
    if is_dask_array(probs) or is_dask_array(labels):
        from thermoscope.calibration import distributed

        return distributed.dask_calibration_error(
            probs, labels, n_bins, strategy, norm, bool(classwise), from_logits
        )
    if is_torch(probs):
        from thermoscope.calibration import _torch_metrics as native

        return native.calibration_error(
            probs, labels, n_bins, strategy, norm, bool(classwise), from_logits
        )
    batch = prepare(probs, labels, from_logits)
    if classwise:
        return float(np.mean(error_from_sums(classwise_sums(batch, n_bins, strategy), norm)))
    return float(error_from_sums(top_label_sums(batch, n_bins, strategy)[0], norm))


def maximum_calibration_error(
    probs: Any,
    labels: Any,
    n_bins: int = 15,
    strategy: Strategy = "uniform",
    classwise: bool = False,
    from_logits: bool = False,
) -> Any:
    """Maximum calibration error: the largest ``|accuracy - confidence|`` over non-empty bins.

    The same as ``expected_calibration_error(..., norm="max")``; see it for
    the parameters (a float, or a 0-d tensor for torch input). It is always
    >= the (l1) ECE.

    Examples
    --------
    >>> from thermoscope.calibration.metrics import maximum_calibration_error
    >>> round(maximum_calibration_error([[0.9, 0.1], [0.2, 0.8]], [0, 0], n_bins=2), 4)
    0.35
    """
    return expected_calibration_error(
        probs, labels, n_bins, strategy, "max", classwise=classwise, from_logits=from_logits
    )


def brier_score(probs: Any, labels: Any, from_logits: bool = False) -> Any:
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

    Returns
    -------
    float or torch.Tensor
        2-D input: the multiclass sum ``mean_i sum_c (p_ic - [y_i = c])^2``,
        in [0, 2] (scikit-learn's ``brier_score_loss(..., scale_by_half=False)``).
        1-D input: ``mean_i (p_i - y_i)^2`` in [0, 1], scikit-learn's binary
        ``brier_score_loss``. Two columns ``[1 - p, p]`` give twice the 1-D value.
        A torch ``probs`` gives a 0-d tensor of its dtype on its device,
        differentiable in ``probs`` (computed in float64 on the device).

    Examples
    --------
    >>> from thermoscope.calibration.metrics import brier_score
    >>> brier_score([[0.75, 0.25], [0.5, 0.5]], [0, 1])
    0.3125
    >>> brier_score([0.25, 0.5], [0, 1])  # binary P(y = 1): half the 2-column value
    0.15625
    """
    if is_dask_array(probs) or is_dask_array(labels):
        from thermoscope.calibration import distributed

        return distributed.dask_summary(probs, labels, 1, from_logits).brier
    if is_torch(probs):
        from thermoscope.calibration import _torch_metrics as native

        return native.brier_score(probs, labels, from_logits)
    return float(np.mean(brier_terms(prepare(probs, labels, from_logits))))


def negative_log_likelihood(
    probs: Any, labels: Any, from_logits: bool = False, *, temperature: Any = 1.0
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

    Returns
    -------
    float or torch.Tensor
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
    >>> from thermoscope.calibration.metrics import negative_log_likelihood
    >>> round(negative_log_likelihood([[0.5, 0.5], [0.9, 0.1]], [0, 0]), 6)
    0.399254
    >>> negative_log_likelihood([[1e4, 0.0]], [1], from_logits=True)
    10000.0
    >>> negative_log_likelihood([[1.0, 0.0]], [1])
    inf
    >>> round(negative_log_likelihood([[2.0, 0.0]], [0], from_logits=True, temperature=2.0), 4)
    0.3133
    """
    check_from_logits(from_logits)
    t = _check_nll_temperature(temperature, bool(from_logits), probs)
    if is_dask_array(probs) or is_dask_array(labels):
        from thermoscope.calibration import distributed

        if not isinstance(t, float):
            raise TypeError(
                f"`temperature` must be a number for Dask arrays, got {type(temperature).__name__}."
            )
        scaled = probs / t if t != 1.0 else probs
        return distributed.dask_summary(scaled, labels, 1, from_logits).nll
    if is_torch(probs):
        from thermoscope.calibration import _torch_metrics as native

        return native.negative_log_likelihood(probs, labels, from_logits, t)
    return float(-np.mean(prepare(probs, labels, from_logits, t).log_true()))


def _check_nll_temperature(temperature: Any, from_logits: bool, probs: Any) -> Any:
    """A finite ``T > 0``: a float, a float64 array, or a tensor (kept as is, for its gradient)."""
    if is_torch(temperature):
        if not from_logits:
            raise ValueError(
                "`temperature` must be 1.0 unless `from_logits=True` (it divides logits), "
                "got a tensor."
            )
        if not is_torch(probs):
            raise TypeError(
                "`temperature` must be a number or a numpy array for non-tensor `probs` "
                "(a tensor temperature needs torch logits to keep its gradient), got a tensor."
            )
        import torch

        if temperature.is_complex() or not temperature.dtype.is_floating_point:
            temperature = temperature.to(torch.float64)
        bad = ~(torch.isfinite(temperature) & (temperature > 0))
        if bool(bad.any()):
            raise ValueError(
                "`temperature` must be a finite number > 0, "
                f"got {temperature[bad].reshape(-1)[0].tolist()!r}."
            )
        return temperature
    try:
        arr = np.asarray(temperature, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"`temperature` must be a finite number > 0, got {temperature!r}."
        ) from None
    bad = ~(np.isfinite(arr) & (arr > 0))
    if np.any(bad):
        raise ValueError(
            f"`temperature` must be a finite number > 0, got {float(arr[bad].flat[0])!r}."
        )
    if not from_logits and np.any(arr != 1.0):
        raise ValueError(
            "`temperature` must be 1.0 unless `from_logits=True` (it divides logits), "
            f"got {temperature!r}."
        )
    return float(arr) if arr.ndim == 0 else arr


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
    ``thermoscope._arrays.to_numpy``.

    Examples
    --------
    >>> from thermoscope.calibration.metrics import reliability_curve
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
        >>> from thermoscope.calibration.metrics import reliability_curve
        >>> curve = reliability_curve([0.1, 0.9], [0, 1], n_bins=2).as_numpy()
        >>> curve.count.tolist()
        [1, 1]
        """
        if not is_torch(self.count):
            return self
        fields = ("edges", "confidence", "accuracy", "count")
        return ReliabilityCurve(*(to_numpy(getattr(self, name), name)[0] for name in fields))

    @classmethod
    def from_sums(cls, sums: BinSums, edges: np.ndarray) -> ReliabilityCurve:
        """Build the curve from per-bin sums (the state streaming and Dask reduce to)."""
        count = sums.count.astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):  # empty bins become NaN on purpose
            conf = np.where(count > 0, sums.conf / count, np.nan)
            acc = np.where(count > 0, sums.hit / count, np.nan)
        return cls(np.asarray(edges, dtype=np.float64), conf, acc, count)


def reliability_curve(
    probs: Any,
    labels: Any,
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
    >>> from thermoscope.calibration.metrics import reliability_curve
    >>> c = reliability_curve(np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]]), [0, 1, 1], n_bins=2)
    >>> c.edges.tolist(), c.count.tolist(), c.confidence.round(3).tolist()
    ([0.0, 0.5, 1.0], [0, 3], [nan, 0.733])
    """
    n_bins = check_n_bins(n_bins)
    check_choice(strategy, "strategy", STRATEGIES)
    if is_dask_array(probs) or is_dask_array(labels):
        from thermoscope.calibration import distributed

        return distributed.dask_reliability_curve(probs, labels, n_bins, strategy, from_logits)
    if is_torch(probs):
        from thermoscope.calibration import _torch_metrics as native

        return native.reliability_curve(probs, labels, n_bins, strategy, from_logits)
    sums, edges = top_label_sums(prepare(probs, labels, from_logits), n_bins, strategy)
    return ReliabilityCurve.from_sums(sums, edges)


# ----------------------------------------------------------------------------
# All metrics at once (the state a stream or a cluster reduces to)
# ----------------------------------------------------------------------------


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

    From torch input the metrics are 0-d tensors of the input's dtype on its
    device (``nll`` and ``brier`` keep their autograd graph) and the curve
    holds tensors; :meth:`as_dict` turns them into floats.

    Examples
    --------
    >>> from thermoscope.calibration.metrics import calibration_summary
    >>> s = calibration_summary([[0.9, 0.1], [0.3, 0.7]], [0, 0], n_bins=4)
    >>> s.n_samples, s.accuracy, round(s.ece, 3), round(s.mce, 3)
    (2, 0.5, 0.4, 0.7)
    """

    n_samples: int
    accuracy: float
    ece: float
    ece_l2: float
    mce: float
    nll: float
    brier: float
    curve: ReliabilityCurve

    def as_dict(self) -> dict[str, float]:
        """The scalar metrics as a plain dict of floats (for tables and JSON).

        This is a host boundary: tensor metrics are read through
        ``thermoscope._arrays.to_numpy``.
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
            name: float(to_numpy(value, name)[0]) if is_torch(value) else value
            for name, value in values.items()
        }

    @classmethod
    def from_sums(
        cls,
        sums: BinSums,
        edges: np.ndarray,
        n_samples: int,
        correct: int,
        nll_sum: float,
        brier_sum: float,
    ) -> CalibrationSummary:
        """Finish the metrics from reduced sums (``nll_sum`` is the summed ``-log p(y)``)."""
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


def calibration_summary(
    probs: Any,
    labels: Any,
    n_bins: int = 15,
    strategy: Strategy = "uniform",
    from_logits: bool = False,
) -> CalibrationSummary:
    """Accuracy, ECE (l1, l2), MCE, NLL, Brier and the reliability curve in one pass.

    Parameters are those of :func:`expected_calibration_error`. Dask arrays
    are reduced on their cluster (strategy "uniform" or "quantile"); a torch
    ``probs`` on its device, giving tensor metrics (see :class:`CalibrationSummary`).

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope.calibration.metrics import calibration_summary
    >>> logits = np.array([[4.0, 0.0], [0.0, 3.0], [2.0, 0.0]])
    >>> s = calibration_summary(logits, [0, 1, 1], n_bins=10, from_logits=True)
    >>> s.accuracy, round(s.nll, 4)
    (0.6666666666666666, 0.7312)
    """
    n_bins = check_n_bins(n_bins)
    check_choice(strategy, "strategy", STRATEGIES)
    if is_dask_array(probs) or is_dask_array(labels):
        from thermoscope.calibration import distributed

        return distributed.dask_summary(probs, labels, n_bins, from_logits, strategy)
    if is_torch(probs):
        from thermoscope.calibration import _torch_metrics as native

        return native.calibration_summary(probs, labels, n_bins, strategy, from_logits)
    batch = prepare(probs, labels, from_logits)
    sums, edges = top_label_sums(batch, n_bins, strategy)
    return CalibrationSummary.from_sums(
        sums,
        edges,
        batch.labels.shape[0],
        n_correct(batch),
        float(-np.sum(batch.log_true())),
        float(np.sum(brier_terms(batch))),
    )


# ----------------------------------------------------------------------------
# NLL derivatives in beta = 1 / T (for an exact Newton fit)
# ----------------------------------------------------------------------------


class NLLDerivatives(NamedTuple):
    """Sums over samples of the NLL of ``softmax(beta * z)`` and its beta-derivatives."""

    nll_sum: float
    grad_sum: float
    hess_sum: float
    n: int


def nll_derivatives(logits: Any, labels: Any, beta: float) -> NLLDerivatives:
    """Summed NLL of ``softmax(beta * logits)`` and its first two derivatives in ``beta``.

    One call is everything a Newton step on ``beta = 1 / T`` needs; the sums
    add over chunks and over Dask blocks (see
    :func:`thermoscope.calibration.distributed.nll_derivatives_dask`).

    Parameters
    ----------
    logits : array_like or torch.Tensor
        ``(n_samples, n_classes)`` logits (``-inf`` = masked), or 1-D
        log-odds (treated as the two logits ``(0, z)``).
    labels : array_like of int, shape (n_samples,)
    beta : float
        Inverse temperature, finite and >= 0.

    Returns
    -------
    NLLDerivatives
        ``(nll_sum, grad_sum, hess_sum, n)``.

    Notes
    -----
    With ``s = beta * z`` and ``p = softmax(s)``:
    ``NLL_i = logsumexp(s_i) - s_{i, y_i}``,
    ``dNLL_i / dbeta = E_p[z_i] - z_{i, y_i}``,
    ``d2NLL_i / dbeta2 = Var_p(z_i) >= 0``: the NLL is convex in ``beta``.
    Moments are taken about ``z_{i, y_i}`` so that a near one-hot ``p`` loses
    no digits to cancellation.

    These sums feed a host-side Newton solver, so a torch tensor is read to
    the host once, through the explicit conversion
    ``thermoscope._arrays.to_numpy``, and the sums are Python floats. For a
    differentiable NLL on the device use :func:`negative_log_likelihood`
    (with ``temperature=``).

    Examples
    --------
    >>> from thermoscope.calibration.metrics import nll_derivatives
    >>> d = nll_derivatives([[2.0, 0.0], [0.0, 1.0]], [0, 0], beta=1.0)
    >>> round(d.nll_sum, 4), round(d.grad_sum, 4), round(d.hess_sum, 4), d.n
    (1.4402, 0.4927, 0.6166, 2)
    """
    b = _check_beta(beta)
    batch_z, y = _prepare_logits(logits, labels)
    return _nll_derivative_kernel(batch_z, y, b)


def _check_beta(beta: Any) -> float:
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise TypeError(f"`beta` must be a finite number >= 0, got {beta!r}.") from None
    if not np.isfinite(b) or b < 0:
        raise ValueError(f"`beta` must be a finite number >= 0, got {b!r}.")
    return b


def _prepare_logits(logits: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    z, y = _scores_and_labels(logits, labels, "logits", "binary log-odds")
    return _two_column_logits(z, "logits"), y


def _scores_and_labels(
    scores: Any, labels: Any, name: str, one_d: str
) -> tuple[np.ndarray, np.ndarray]:
    """Check that ``scores`` is 1-D (binary, meaning ``one_d``) or 2-D with >= 2 columns."""
    x, _ = as_float_array(scores, name)
    if x.ndim not in (1, 2):
        raise ValueError(
            f"`{name}` must be 1-D ({one_d}) or 2-D (n_samples, n_classes), got shape {x.shape}."
        )
    if x.ndim == 2 and x.shape[1] < 2:
        raise ValueError(f"`{name}` must have at least 2 classes (columns), got shape {x.shape}.")
    n_classes = 2 if x.ndim == 1 else x.shape[1]
    return x, _check_labels(labels, x.shape[0], n_classes, x.shape)


def _two_column_logits(z: np.ndarray, name: str) -> np.ndarray:
    """float64 (n, C) logits; 1-D log-odds become the two logits ``(0, z)``.

    Logits are always worked in float64: the softmax of float32 logits
    saturates to exactly 1.0 for a gap above about 17.
    """
    z = z.astype(np.float64, copy=False)
    if z.ndim == 1:
        if not np.all(np.isfinite(z)):
            raise ValueError(f"`{name}` must be finite log-odds, got NaN or inf.")
        return np.stack([np.zeros_like(z), z], axis=1)
    check_logits(z, name)
    return z


def _nll_derivative_kernel(z: np.ndarray, y: np.ndarray, beta: float) -> NLLDerivatives:
    rows = np.arange(z.shape[0])
    finite = np.isfinite(z)
    z_true = z[rows, y]
    # softmax(beta * z) is the kernel's softmax at T = 1 / beta; beta = 0 is its
    # T = inf limit (uniform over the unmasked entries). Masked (-inf) logits
    # get probability 0 at every beta, and a finite placeholder in the moments
    # below, where that weight removes them.
    logp = kernel.log_softmax(z, 1.0 / beta if beta > 0 else np.inf, 1)
    p = np.exp(logp)
    rel = np.where(finite, z - z_true[:, None], 0.0)  # z - z_y: moments about the label
    mean_rel = np.sum(p * rel, axis=1)  # E_p[z] - z_y
    var = np.sum(p * (rel - mean_rel[:, None]) ** 2, axis=1)
    nll = -logp[rows, y]
    return NLLDerivatives(
        float(nll.sum()), float(mean_rel.sum()), float(var.sum()), int(z.shape[0])
    )
