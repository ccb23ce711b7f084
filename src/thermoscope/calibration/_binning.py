"""Binning kernels on clean numpy arrays: edges, bin indices, per-bin sums, the error they give.

Every binned metric reduces to three sums per bin (count, confidence sum,
correct sum), so the in-memory metrics, the streaming accumulator and the Dask
map-reduce all call the functions here and differ only in how they add the
sums up. The bin-edge convention is documented in
:mod:`thermoscope.calibration.metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from thermoscope._typing import Array, FloatArray, IntArray

# A block of the blocked scan holds this many bytes of probabilities: its
# transposed copy and comparison mask then stay in a core's L2 cache.
_BLOCK_BYTES = 1 << 18
# From this many classes on, float32 rows are transposed in 8-byte pairs (see
# blocked_top_label); below it, the extra passes that undo the pairing cost
# more than the halved transposition saves.
_PAIRED_MIN_CLASSES = 16
# Samples per block when binning top-label confidences.
_BIN_BLOCK = 1 << 14


def blocked_top_label(
    x: Array, y: IntArray, acc_dtype: np.dtype[Any] | None = None
) -> tuple[Array, Array, tuple[float, float, float] | None]:
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

    Examples
    --------
    >>> import numpy as np
    >>> conf, hit, _ = blocked_top_label(np.array([[0.2, 0.8], [0.5, 0.5]]), np.array([1, 1]))
    >>> conf.tolist(), hit.tolist()  # a tie predicts the first maximum, as argmax does
    ([0.8, 0.5], [True, False])
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


def uniform_edges(n_bins: int) -> FloatArray:
    """The float64 edges ``k / n_bins``, each one correctly rounded division.

    Examples
    --------
    >>> uniform_edges(4).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    return np.arange(n_bins + 1) / n_bins


def _percentiles(n_bins: int) -> FloatArray:
    return np.linspace(0.0, 1.0, n_bins + 1) * 100


def quantile_edges(values: Array, n_bins: int) -> FloatArray:
    """Equal-mass edges: percentiles of ``values``, computed as scikit-learn does.

    Examples
    --------
    >>> import numpy as np
    >>> quantile_edges(np.array([0.1, 0.2, 0.3, 0.4, 0.5]), 2).tolist()
    [0.1, 0.3, 0.5]
    """
    return np.asarray(np.percentile(values, _percentiles(n_bins)))


def quantile_positions(n: int, n_bins: int) -> tuple[IntArray, IntArray, FloatArray]:
    """Where :func:`quantile_edges` reads ``n`` sorted values: (lower, upper, weight).

    numpy's ``np.percentile`` default ("linear") method, step for step: edge ``j``
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


def bin_index(values: Array, edges: FloatArray) -> IntArray:
    """Bin of each value: ``[e_k, e_{k+1})``, the last bin closed (see the metrics module).

    Examples
    --------
    >>> import numpy as np
    >>> bin_index(np.array([0.0, 0.5, 1.0]), uniform_edges(2)).tolist()
    [0, 1, 1]
    """
    n_bins = edges.shape[0] - 1
    if values.size and n_bins >= 1 and np.array_equal(edges, uniform_edges(n_bins)):
        with np.errstate(invalid="ignore"):  # NaN fails both tests and takes the general path
            inside = bool(values.min() >= 0) and bool(values.max() <= 1)
        if inside:
            return uniform_bin_index(values, n_bins)
    return np.searchsorted(edges[1:-1], values, side="right")


def uniform_bin_index(values: Array, n_bins: int) -> IntArray:
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

    Examples
    --------
    >>> import numpy as np
    >>> s = BinSums(np.array([1, 0]), np.array([0.9, 0.0]), np.array([1.0, 0.0]))
    >>> (s + s).count.tolist()
    [2, 0]
    """

    count: Any
    conf: Any
    hit: Any

    def __add__(self, other: BinSums) -> BinSums:
        return BinSums(self.count + other.count, self.conf + other.conf, self.hit + other.hit)


def bin_sums(conf: Array, hit: Array, edges: FloatArray) -> BinSums:
    """Count, confidence sum and correct sum per bin, vectorised with ``np.bincount``.

    Examples
    --------
    >>> import numpy as np
    >>> bin_sums(np.array([0.2, 0.9]), np.array([0.0, 1.0]), uniform_edges(2)).count.tolist()
    [1, 1]
    """
    n_bins = edges.shape[0] - 1
    idx = bin_index(conf, edges)
    return BinSums(
        np.bincount(idx, minlength=n_bins),
        np.bincount(idx, weights=conf, minlength=n_bins),
        np.bincount(idx, weights=hit, minlength=n_bins),
    )


def _indexed_sums(idx: IntArray, conf: Array, hit: Array, n_bins: int) -> BinSums:
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


def top_label_sums(
    conf: Array, hit: Array, n_bins: int, strategy: str
) -> tuple[BinSums, FloatArray]:
    """Per-bin sums of confidences ``conf`` and boolean ``hit``, and the edges they use.

    Equal to ``bin_sums(conf.astype(float64), hit.astype(float64), edges)``:
    float32 confidences are binned and summed as the exact float64 values
    they widen to, without a float64 copy of the data.

    Examples
    --------
    >>> import numpy as np
    >>> sums, edges = top_label_sums(np.array([0.9, 0.6]), np.array([True, False]), 2, "uniform")
    >>> sums.count.tolist(), sums.hit.tolist(), edges.tolist()
    ([0, 2], [0.0, 1.0], [0.0, 0.5, 1.0])
    """
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


def classwise_sums(probs: FloatArray, labels: IntArray, n_bins: int, strategy: str) -> BinSums:
    """Per-class per-bin sums, shape ``(n_classes, n_bins)``: class c's ``p_c`` vs ``y == c``.

    Examples
    --------
    >>> import numpy as np
    >>> s = classwise_sums(np.array([[0.8, 0.2], [0.4, 0.6]]), np.array([0, 0]), 2, "uniform")
    >>> s.count.tolist()
    [[1, 1], [1, 1]]
    """
    n, k = probs.shape
    if strategy == "uniform":
        idx = bin_index(probs, uniform_edges(n_bins))
    else:
        # Each class has its own quantile edges: one vectorised search per class.
        idx = np.empty((n, k), dtype=np.int64)
        for c in range(k):
            idx[:, c] = bin_index(probs[:, c], quantile_edges(probs[:, c], n_bins))
    flat = (idx + np.arange(k) * n_bins).ravel()
    size = k * n_bins
    # A row is a hit for its label's class only: count those N cells instead of
    # summing an (N, K) matrix of ones and zeros (the same exact integers).
    labelled = idx[np.arange(n), labels] + labels * n_bins
    return BinSums(
        np.bincount(flat, minlength=size).reshape(k, n_bins),
        np.bincount(flat, weights=probs.ravel(), minlength=size).reshape(k, n_bins),
        np.bincount(labelled, minlength=size).astype(np.float64).reshape(k, n_bins),
    )


def error_from_sums(sums: BinSums, norm: str) -> FloatArray:
    """Calibration error along the last axis of the sums (one value per row of bins).

    Examples
    --------
    >>> import numpy as np
    >>> s = BinSums(np.array([2, 2]), np.array([0.4, 1.8]), np.array([1.0, 2.0]))
    >>> float(error_from_sums(s, "l1")), float(error_from_sums(s, "max"))
    (0.2, 0.3)
    """
    count = sums.count.astype(np.float64)
    n = count.sum(axis=-1)
    gap_sum = np.abs(sums.hit - sums.conf)  # = count * |accuracy - confidence|
    if norm == "l1":
        return np.asarray(gap_sum.sum(axis=-1) / n)
    with np.errstate(invalid="ignore", divide="ignore"):  # empty bins: 0 / 0, masked next
        gap = np.where(count > 0, gap_sum / count, 0.0)
    if norm == "max":
        return np.asarray(gap.max(axis=-1))
    return np.asarray(np.sqrt((count * gap**2).sum(axis=-1) / n))
