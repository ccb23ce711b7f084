"""Diversity in recommendation: sample k distinct items by temperature, measure exposure.

Ranking by score always shows the same head items; sampling ``k`` items
without replacement from ``softmax(scores / T)`` spreads exposure over the
catalogue as ``T`` rises. :func:`sample_items` does it in one vectorised pass
(Gumbel-top-k), and :func:`coverage`, :func:`long_tail_share` and :func:`gini`
measure how evenly the resulting exposure is spread.

Sampling and counting are host work (the draws use a numpy Generator): torch
tensors are read once through the explicit conversion
``thermoscope._arrays.to_numpy`` and the results are numpy.

Examples
--------
>>> import numpy as np
>>> from thermoscope.recommend import exposure, gini, sample_items
>>> scores = np.log(1.0 / np.arange(1, 51))  # Zipf popularity over 50 items
>>> recs = sample_items(np.tile(scores, (200, 1)), temperature=1.0, k=5, rng=0)
>>> recs.shape
(200, 5)
>>> cold = sample_items(np.tile(scores, (200, 1)), temperature=0.0, k=5, rng=0)
>>> bool(gini(exposure(recs, 50)) < gini(exposure(cold, 50)))
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from thermoscope import _temperature as kernel
from thermoscope._arrays import to_numpy
from thermoscope._backend import is_torch
from thermoscope._typing import FloatArray, IntArray
from thermoscope._validation import (
    as_float_array,
    as_generator,
    check_finite,
    check_fraction,
    check_integer,
    check_logits,
    check_temperature,
    per_row,
)

__all__ = ["coverage", "exposure", "gini", "long_tail_share", "sample_items"]

# Keys z / T beyond this spread lose the Gumbel noise's resolution in float64
# (ulp(2**26) is about 1.5e-8): such rows, and T = 0, take the exact sort path.
_FAST_SPREAD = 2.0**26


def sample_items(
    scores: Any,
    temperature: Any,
    *,
    k: int,
    rng: np.random.Generator | int | None = None,
) -> IntArray:
    """Sample ``k`` distinct items per row, in order, from ``softmax(scores / temperature)``.

    The result is distributed exactly as ``k`` sequential draws without
    replacement (each draw renormalises over the items not yet drawn; the
    Plackett-Luce model), computed in one pass with the Gumbel-top-k trick.

    Parameters
    ----------
    scores : array_like or torch.Tensor, shape (items,) or (users, items)
        Item scores (logits). ``-inf`` marks an item that must not be
        recommended; NaN and ``+inf`` are rejected.
    temperature : float, array_like or torch.Tensor
        ``T >= 0``, scalar or one per row. ``T = 0``: the top-k by score (ties
        in random order); ``T = inf``: a uniformly random ordered k-subset of
        the unmasked items. Useful values sit around the spread of the scores.
    k : int
        Items per row, ``1 <= k <=`` the number of unmasked items in every row.
    rng : numpy.random.Generator or int, optional
        Random source or seed; OS entropy when omitted.

    Returns
    -------
    ndarray of int64, shape (k,) or (users, k)
        Item indices, distinct within a row, in draw order (first = first draw).

    Notes
    -----
    The draws use a numpy Generator, so they run on the host: torch tensor
    ``scores`` (or ``temperature``) are read once through the explicit host
    conversion ``thermoscope._arrays.to_numpy``, and the indices are numpy.

    With ``g_i`` i.i.d. standard Gumbel, the indices of the ``k`` largest
    ``scores_i / T + g_i``, sorted by that key, are an ordered sample without
    replacement from ``softmax(scores / T)`` (Kool, van Hoof & Welling, 2019).
    Keys are computed as ``(scores - max) / T``. At ``T = 0``, and when
    ``(max - min) / T`` exceeds ``2**26`` (where float64 keys would round the
    Gumbel noise away), rows are sorted exactly by key, then score, then noise.

    Examples
    --------
    >>> sample_items([0.1, 3.0, 2.0, 0.5], temperature=0.0, k=2, rng=0)
    array([1, 2])
    >>> sample_items([[0.0, 0.0, 0.0], [5.0, 1.0, 0.0]], [float("inf"), 1.0], k=3, rng=0)
    array([[2, 1, 0],
           [0, 1, 2]])
    """
    # The host boundary: as_float_array reads a tensor through to_numpy.
    z, _ = as_float_array(scores, "scores")
    if z.ndim > 2:
        raise ValueError(
            f"`scores` must be 1-D (items,) or 2-D (users, items), got shape {z.shape}."
        )
    check_logits(z, "scores")
    if is_torch(temperature):
        temperature = to_numpy(temperature, "temperature")[0]
    t = per_row(check_temperature(temperature), z.shape[:-1], "temperature")
    kk = check_integer(k, "k")
    if kk.ndim != 0:
        raise TypeError(f"`k` must be a single integer >= 1, got shape {kk.shape}.")
    count = int(kk)
    rows = np.atleast_2d(z).astype(np.float64, copy=False)
    t = np.reshape(t, (rows.shape[0], 1))
    items = rows.shape[1]
    if count > items:
        raise ValueError(f"`k` must be <= the number of items ({items}), got {count}.")
    finite = np.isfinite(rows)
    available = finite.sum(axis=1)
    if np.any(available < count):
        r = int(np.argmax(available < count))
        raise ValueError(
            f"`k` must be <= the number of items with a finite score in every row "
            f"({int(available[r])} in row {r}), got {count}."
        )
    g = as_generator(rng).gumbel(size=rows.shape)
    top = rows.max(axis=1, keepdims=True)
    # (z - max) / T <= 0, from the temperature kernel: T = inf rows are 0 on
    # every finite item; T = 0 rows (0 on the maxima) take the exact path below.
    key = np.where(finite, kernel.scaled(rows, t, -1) + g, -np.inf)
    spread = np.where(finite, top - rows, 0.0).max(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = ((t == 0) | (spread / t > _FAST_SPREAD))[:, 0]
    out = np.empty((rows.shape[0], count), dtype=np.int64)
    fast = ~exact
    if np.any(fast):
        out[fast] = _top_k(key[fast], count)
    if np.any(exact):
        primary = np.where(t[exact] == 0, rows[exact], key[exact])
        order = np.lexsort((-g[exact], -rows[exact], -primary), axis=-1)
        out[exact] = order[:, :count]
    return out[0] if z.ndim == 1 else out


def _top_k(key: FloatArray, k: int) -> IntArray:
    """Indices of the ``k`` largest keys per row, largest first."""
    part = np.argpartition(-key, k - 1, axis=1)[:, :k]
    picked = np.take_along_axis(key, part, axis=1)
    return np.take_along_axis(part, np.argsort(-picked, axis=1, kind="stable"), axis=1)


def exposure(recommendations: Any, n_items: int) -> IntArray:
    """How often each item was recommended: counts of shape (n_items,).

    Parameters
    ----------
    recommendations : array_like of int or torch.Tensor
        Item indices in ``[0, n_items)``, any shape (e.g. (users, k)). A
        tensor is read on the host through ``thermoscope._arrays.to_numpy``:
        the counts are host values, returned as numpy.
    n_items : int
        Catalogue size, >= 1.

    Examples
    --------
    >>> exposure([[0, 2], [2, 1]], n_items=4)
    array([1, 1, 2, 0])
    """
    n = check_integer(n_items, "n_items")
    if n.ndim != 0:
        raise TypeError(f"`n_items` must be a single integer >= 1, got shape {n.shape}.")
    # Counting is host work: a tensor is read through the explicit conversion to_numpy.
    recs = (
        to_numpy(recommendations, "recommendations")[0]
        if is_torch(recommendations)
        else np.asarray(recommendations)
    )
    if recs.size == 0:
        raise ValueError(f"`recommendations` must not be empty, got shape {recs.shape}.")
    if recs.dtype.kind not in "iu":
        raise TypeError(f"`recommendations` must be integer item indices, got dtype {recs.dtype}.")
    if recs.min() < 0 or recs.max() >= int(n):
        bad = recs.min() if recs.min() < 0 else recs.max()
        raise ValueError(f"`recommendations` must be item indices in [0, {int(n) - 1}], got {bad}.")
    return np.bincount(recs.ravel(), minlength=int(n)).astype(np.int64)


def _exposure_vector(x: Any, *, positive_sum: bool) -> FloatArray:
    e, _ = as_float_array(x, "exposure")
    if e.ndim != 1:
        raise ValueError(f"`exposure` must be 1-D (one count per item), got shape {e.shape}.")
    e = e.astype(np.float64, copy=False)
    check_finite(e, "exposure")
    if np.any(e < 0):
        raise ValueError(f"`exposure` must be >= 0, got {float(e[e < 0][0])!r}.")
    if positive_sum and e.sum() == 0:
        raise ValueError("`exposure` must have a positive total, got all zeros.")
    return e


def coverage(exposure: Any) -> float:
    """Catalogue coverage: the fraction of items recommended at least once.

    Parameters
    ----------
    exposure : array_like, shape (items,)
        Non-negative exposure per item (see :func:`exposure`).

    Notes
    -----
    ``coverage = #{i : e_i > 0} / n``, in ``[0, 1]``.

    Examples
    --------
    >>> coverage([3, 0, 1, 0])
    0.5
    """
    e = _exposure_vector(exposure, positive_sum=False)
    return float(np.count_nonzero(e) / e.size)


def long_tail_share(exposure: Any, popularity: Any, *, head_fraction: float = 0.2) -> float:
    """Share of all exposure that goes to long-tail items.

    Parameters
    ----------
    exposure : array_like, shape (items,)
        Non-negative exposure per item, with a positive total.
    popularity : array_like, shape (items,)
        Any popularity measure (interaction counts, prior probability).
    head_fraction : float, default 0.2
        The head is the ``ceil(head_fraction * items)`` most popular items
        (ties: the lower index is more popular); every other item is long
        tail. In [0, 1]. With Zipf(1) popularity the top 20 % of items draw
        about 80 % of interactions: the Pareto split.

    Notes
    -----
    ``share = sum_{i in tail} e_i / sum_i e_i``, in ``[0, 1]``.

    Examples
    --------
    >>> long_tail_share([5, 3, 1, 1], popularity=[100, 50, 2, 1], head_fraction=0.5)
    0.2
    """
    e = _exposure_vector(exposure, positive_sum=True)
    pop, _ = as_float_array(popularity, "popularity")
    if pop.shape != e.shape:
        raise ValueError(
            f"`popularity` must have the shape of `exposure` {e.shape}, got shape {pop.shape}."
        )
    if np.isnan(pop).any():
        raise ValueError("`popularity` must not contain NaN.")
    frac = check_fraction(head_fraction, "head_fraction", low_open=False)
    if frac.ndim != 0:
        raise TypeError(
            f"`head_fraction` must be a single number in [0, 1], got shape {frac.shape}."
        )
    n_head = math.ceil(float(frac) * e.size)
    head = np.argsort(-pop, kind="stable")[:n_head]
    tail = np.ones(e.size, dtype=bool)
    tail[head] = False
    return float(e[tail].sum() / e.sum())


def gini(exposure: Any) -> float:
    """Gini coefficient of exposure: 0 when every item is shown equally often.

    Parameters
    ----------
    exposure : array_like, shape (items,)
        Non-negative exposure per item, with a positive total.

    Returns
    -------
    float in ``[0, (n - 1) / n]``; the maximum means one item takes everything.

    Notes
    -----
    ``G = sum_i sum_j |e_i - e_j| / (2 n^2 mean(e))``: half the relative mean
    absolute difference. Computed in O(n log n) from the ascending order
    statistics: ``G = (n + 1 - 2 sum_i C_i / C_n) / n`` with ``C`` the
    cumulative sums of the sorted exposure (the Lorenz curve).

    Examples
    --------
    >>> gini([1, 1, 1, 1])
    0.0
    >>> gini([0, 0, 0, 8])
    0.75
    """
    e = np.sort(_exposure_vector(exposure, positive_sum=True))
    cum = np.cumsum(e)
    n = e.size
    return float(max(0.0, (n + 1 - 2.0 * cum.sum() / cum[-1]) / n))
