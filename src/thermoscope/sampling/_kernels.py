"""Row kernels shared by the warpers, the plain chain and the fused path.

Every kernel takes clean 2-D arrays: ``z`` of shape (B, L) in the compute
dtype (float32 or float64), ``-inf`` marking removed tokens, at least one
finite entry per row, and per-row parameters of shape (B,). Kernels never
validate and never write into their inputs.

The truncation rules are *thresholds*: each returns one value per row and the
tokens kept are exactly those with ``z >= threshold``. That is the tie policy
(tokens tied at the cut are kept together) and it is what lets the fused path
run the same kernel on a compacted candidate set and get the same answer.

Temperature division, softmax and the row weights ``exp(z - max)`` are the
temperature kernel's (:mod:`thermoscope._temperature`); torch tensors have
their own versions of these kernels, same names and semantics, in
:mod:`thermoscope.sampling._kernels_torch`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thermoscope._temperature import entropy_of_logits, log_softmax, row_weights
from thermoscope._typing import Array

__all__ = [
    "apply_mask",
    "apply_threshold",
    "entropy_temperature",
    "epsilon_mask",
    "floor_in",
    "floor_threshold",
    "kth_largest",
    "min_p_threshold",
    "top_n_sigma_threshold",
    "top_p_scan",
    "top_p_threshold",
    "typical_mask",
]


_ROWS_CHUNK = 1 << 17  # elements per slice of rows in the float64 row statistics


def floor_in(thr: Array, dtype: np.dtype[Any]) -> Array:
    """Per-row ``t`` in ``dtype`` with ``z >= t`` exactly when ``z >= thr`` (float64).

    Comparing float32 logits with a float64 threshold converts every logit
    to float64 (about four times the cost of a float32 compare); rounding the
    threshold up to the next float32 gives the same answer.
    """
    t = thr.astype(dtype)
    return np.where(t < thr, np.nextafter(t, dtype.type(np.inf)), t)


def apply_threshold(z: Array, thr: Array) -> Array:
    """Keep ``z >= thr`` per row, set the rest to -inf (a new array)."""
    keep = z >= floor_in(thr, z.dtype)[:, None]
    return np.where(keep, z, -np.inf).astype(z.dtype, copy=False)


def apply_mask(z: Array, keep: Array) -> Array:
    """Keep the entries where ``keep`` is true, set the rest to -inf (a new array)."""
    return np.where(keep, z, -np.inf).astype(z.dtype, copy=False)


def kth_largest(z: Array, k: Array | int) -> Array:
    """The k-th largest value of each row (one k, or one per row; 1 <= k; capped at the row length).

    With one k for every row the per-row bookkeeping (``unique``,
    ``take_along_axis``), which costs more than the partition itself on a
    short batch, is skipped; the value found is the same.
    """
    n = z.shape[-1]
    if np.ndim(k) == 0 or np.all(k == np.asarray(k).flat[0]):
        col = n - min(int(np.asarray(k).flat[0]), n)
        return np.partition(z, col, axis=-1)[:, col].astype(np.float64)
    cols = n - np.minimum(k, n)
    part = np.partition(z, np.unique(cols), axis=-1)
    return np.take_along_axis(part, cols[:, None], axis=-1)[:, 0].astype(np.float64)


def floor_threshold(z: Array, thr: Array, min_keep: int) -> Array:
    """Lower ``thr`` so that at least ``min_keep`` tokens (and all their ties) survive."""
    if min_keep == 1:
        top = z.max(axis=-1).astype(np.float64)
    else:
        top = kth_largest(z, np.full(z.shape[0], min_keep, dtype=np.int64))
    lowered: Array = np.minimum(thr, top)
    return lowered


def top_p_threshold(z: Array, p: Array, total: Array | None = None) -> Array:
    """Nucleus cut: the smallest value ``v`` whose strictly-larger mass is below ``p``.

    A token with value ``v`` is kept when the probability mass of the tokens
    with a strictly larger value is below ``p``; every token tied with it then
    shares the decision. ``total`` is the row mass ``sum(exp(z - max))`` when
    ``z`` holds only a candidate subset (the fused path). ``p >= 1`` keeps
    every finite token.
    """
    return top_p_scan(z, p, total)[0]


def top_p_scan(z: Array, p: Array, total: Array | None = None) -> tuple[Array, Array]:
    """:func:`top_p_threshold` and, per row, whether ``z`` holds mass ``>= p * total``.

    When it does, the cut lies inside ``z`` and is exactly the cut over the
    full row: the running sum from the top is the same numbers in the same order.
    """
    m = z.max(axis=-1, keepdims=True)
    if total is None:
        total = np.exp(z - m).sum(axis=-1, dtype=np.float64)
    desc = np.ascontiguousarray(np.sort(z, axis=-1)[:, ::-1])
    mass_through = np.cumsum(np.exp(desc - m), axis=-1, dtype=np.float64)
    target = p * total
    n_keep = 1 + np.count_nonzero(mass_through[:, :-1] < target[:, None], axis=-1)
    thr = desc[np.arange(z.shape[0]), n_keep - 1].astype(np.float64)
    return np.where(p >= 1.0, -np.inf, thr), mass_through[:, -1] >= target


def min_p_threshold(z: Array, p: Array, top: Array | None = None) -> Array:
    """Keep tokens whose probability is at least ``p`` times the top probability.

    ``top``: the row maxima of ``z``, shape (B,), when already known.
    """
    if top is None:
        top = z.max(axis=-1)
    with np.errstate(divide="ignore"):
        # log(0) = -inf on purpose: min_p = 0 keeps every finite token.
        return top.astype(np.float64) + np.log(p)


def epsilon_mask(z: Array, eps: Array) -> Array:
    """Tokens whose probability is at least ``eps``."""
    w, _ = row_weights(z)
    probs = w.astype(np.float64) / w.sum(axis=-1, dtype=np.float64, keepdims=True)
    keep: Array = probs >= eps[:, None]
    return keep


def _ranked(score: Array, probs: Array) -> tuple[Array, Array]:
    """``score`` and ``probs`` ordered by ``np.argsort(score, kind="stable")`` along rows.

    The default (vectorised) sort is several times faster but orders equal
    scores arbitrarily. That changes nothing here where tied scores carry
    equal probabilities (equal logits): the running sum then adds the same
    numbers in the same order. Rows where a tie joins different
    probabilities (``log p`` on either side of ``-H`` at the same distance)
    are sorted again, stably.
    """
    order = np.argsort(score, axis=-1)
    ranked = np.take_along_axis(score, order, axis=-1)
    mass = np.take_along_axis(probs, order, axis=-1)
    tie = (ranked[:, 1:] == ranked[:, :-1]) & (mass[:, 1:] != mass[:, :-1])
    redo = np.flatnonzero(tie.any(axis=-1))
    if redo.size:
        again = np.argsort(score[redo], axis=-1, kind="stable")
        ranked[redo] = np.take_along_axis(score[redo], again, axis=-1)
        mass[redo] = np.take_along_axis(probs[redo], again, axis=-1)
    return ranked, mass


def typical_mask(z: Array, mass: Array, min_keep: int) -> Array:
    """Locally typical set (Meister et al. 2022), as transformers computes it.

    Tokens are ranked by ``|-log p - H|``; the smallest prefix of that ranking
    whose mass reaches ``mass`` is kept, together with every token whose
    score ties the last one kept.
    """
    logp = log_softmax(z.astype(np.float64))
    with np.errstate(under="ignore"):
        probs = np.exp(logp)
    finite = np.isfinite(logp)
    ent = -np.sum(
        np.where(finite, probs * np.where(finite, logp, 0.0), 0.0), axis=-1, keepdims=True
    )
    score = np.where(finite, np.abs(-logp - ent), np.inf)
    sorted_score, ranked_probs = _ranked(score, probs)
    cum = np.cumsum(ranked_probs, axis=-1)
    last = np.minimum(np.count_nonzero(cum < mass[:, None], axis=-1), z.shape[-1] - 1)
    cut = sorted_score[np.arange(z.shape[0]), last]
    floor = sorted_score[:, min(min_keep, z.shape[-1]) - 1]
    keep: Array = score <= np.maximum(cut, floor)[:, None]
    return keep


def top_n_sigma_threshold(z: Array, n: Array) -> Array:
    """``max - n * std`` over the finite logits of each row (population std).

    Mean and variance are float64 row sums over the whole row (0 for a
    masked entry). A cache-sized slice of rows at a time is widened once and
    reused in place; each row gets the very same float64 operations in the
    same order, so the sums are those of one pass over the batch.
    """
    rows, length = z.shape
    var = np.empty(rows)
    step = max(1, _ROWS_CHUNK // max(length, 1))
    buf = np.empty((min(step, rows), length))
    for r0 in range(0, rows, step):
        part = z[r0 : r0 + step]
        k = part.shape[0]
        z64 = buf[:k]
        z64[...] = part  # float32 -> float64 is exact
        finite = np.isfinite(z64)
        whole = bool(finite.all())
        cnt = np.full(k, length) if whole else finite.sum(axis=-1)
        if not whole:
            z64[~finite] = 0.0
        mu = z64.sum(axis=-1) / cnt
        np.subtract(z64, mu[:, None], out=z64)
        if not whole:
            z64[~finite] = 0.0  # squared below: exactly the 0 a masked entry adds
        np.square(z64, out=z64)
        var[r0 : r0 + k] = z64.sum(axis=-1) / cnt
    # n = inf with std = 0 would give inf * 0 = nan; every finite token stays.
    with np.errstate(invalid="ignore"):  # that nan is expected and replaced just below
        spread = n * np.sqrt(var)
    spread = np.where(np.isnan(spread), np.inf, spread)
    thr: Array = z.max(axis=-1).astype(np.float64) - spread
    return thr


def entropy_temperature(
    z: Array, min_t: Array, max_t: Array, exponent: Array, count: Array | None = None
) -> Array:
    """Per-row temperature from the normalised entropy, as llama.cpp's dynatemp.

    ``T = min_t + (max_t - min_t) * (H / log(n)) ** exponent`` where ``H`` is the
    entropy of ``softmax(z)`` and ``n`` is ``count`` (B,) or, when None, the
    number of finite tokens; rows with ``n <= 1`` get ``T = 1`` (nothing to scale).
    """
    ent = entropy_of_logits(z.astype(np.float64))
    if count is None:
        count = np.isfinite(z).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Rows with one finite token divide 0 by log(1) = 0; they are replaced below.
        norm = np.clip(ent / np.log(count), 0.0, 1.0)
        t = min_t + (max_t - min_t) * norm**exponent
    return np.where(count <= 1, 1.0, t)
