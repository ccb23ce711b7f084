"""Fast path for chains of Temperature, TopK, TopP and MinP: no full-vocabulary sort.

Why it works
------------
With finite positive temperatures every step keeps an *upper set* of the
tempered logits (all tokens at or above a per-row threshold). So once the
first truncation is known, everything after it happens on a short list of
candidates, compacted in ascending token-id order, by running the very same
warper code (:mod:`thermoscope.sampling._kernels`) on that list.

How the first truncation avoids sorting the vocabulary
-----------------------------------------------------
- top-k: the vocabulary is cut into ``G`` strided groups (token ``j`` in group
  ``j mod G``); the k-th largest *group maximum* is a lower bound for the k-th
  largest logit, because k groups each hold a token at least that large. One
  elementwise max over the groups, a partition of ``G`` numbers, one compare
  over the vocabulary, and the exact k-th value is then taken among the few
  candidates.
- min-p: the cut ``max + log(p)`` is explicit; one compare.
- top-p: the row mass ``Z`` needs one exp over the vocabulary. The cut is
  searched among the top ``L`` candidates (same group trick, ``L`` = 64, then
  1024, then 16384); a row whose candidates already carry mass ``>= p * Z``
  provably has its cut inside them (the running sum from the top over the
  candidates is the same numbers, summed in the same order, as the plain
  kernel's). Rows whose nucleus is wider than that (flat distributions) fall
  back to the plain kernel, for those rows only.

Identity with the plain chain
-----------------------------
The kept set is the same: the thresholds are computed by the same kernels on
the same float values; only sums over removed tokens (exact zeros) are
associated differently, which can matter only when a cumulative mass equals
``p * Z`` to within rounding. Probabilities agree to float rounding. Draws
from the same seed are identical: both paths feed the kept tokens' weights,
in ascending token-id order, to the exact integer inverse-CDF routine of
:mod:`thermoscope.sampling._draw`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from thermoscope.sampling import _kernels as K
from thermoscope.sampling._draw import draw
from thermoscope.sampling._input import Rows, rows_param
from thermoscope.sampling.warpers import MinP, Temperature, TopK, TopP, Warper

Array = np.ndarray[Any, np.dtype[Any]]

__all__ = ["Compact", "Plan", "plan", "run"]

_SLICES = 32
_NUCLEUS_SIZES = (64, 1024, 16384)


@dataclass(frozen=True)
class Plan:
    """A chain the fused path can run: leading temperatures, first cut, the rest."""

    steps: tuple[Warper, ...]
    first_cut: int


def plan(warpers: tuple[Warper, ...], rows: Rows) -> Plan | None:
    """Return a plan when the fused path applies to ``warpers`` on ``rows``, else None."""
    first_cut = -1
    for i, w in enumerate(warpers):
        if isinstance(w, Temperature):
            t = rows_param(w.t, rows.batch_shape, "temperature")
            if not np.all((t > 0) & np.isfinite(t)):
                return None
        elif isinstance(w, TopK):
            rows_param(w.k, rows.batch_shape, "top_k")
        elif isinstance(w, (TopP, MinP)):
            rows_param(w.p, rows.batch_shape, w.name)
            if w.min_tokens_to_keep != 1 and first_cut < 0:
                return None
        else:
            return None
        if first_cut < 0 and not isinstance(w, Temperature):
            first_cut = i
    if first_cut < 0:
        return None
    return Plan(tuple(warpers), first_cut)


class Compact:
    """Kept candidates per row, padded with -inf: values, token ids, validity."""

    __slots__ = ("ids", "valid", "vals", "vocab")

    def __init__(self, vals: Array, ids: Array, valid: Array, vocab: int):
        self.vals = vals
        self.ids = ids
        self.valid = valid
        self.vocab = vocab

    def _scatter(self, values: Array, fill: float) -> Array:
        out = np.full((self.vals.shape[0], self.vocab), fill, dtype=values.dtype)
        r, c = np.nonzero(self.valid)
        out[r, self.ids[r, c]] = values[r, c]
        return out

    def dense_logits(self) -> Array:
        """Warped logits over the whole vocabulary."""
        return self._scatter(self.vals, -np.inf)

    def dense_probs(self) -> Array:
        """Probabilities over the whole vocabulary."""
        return self._scatter(K.softmax_rows(self.vals), 0.0)

    def sample(self, u: Array, bits: int) -> Array:
        """Token ids drawn with the shared inverse-CDF routine."""
        weights, _ = K.row_weights(self.vals)
        return np.take_along_axis(self.ids, draw(weights, u, bits), axis=-1)


def _compact(z: Array, keep: Array) -> Compact:
    """Gather the kept entries of each row, in ascending token-id order."""
    rows, vocab = z.shape
    flat = np.flatnonzero(keep)
    r = flat // vocab
    c = flat - r * vocab
    counts = np.bincount(r, minlength=rows)
    width = max(int(counts.max()), 1)
    pos = np.arange(flat.size) - (np.cumsum(counts) - counts)[r]
    vals = np.full((rows, width), -np.inf, dtype=z.dtype)
    ids = np.zeros((rows, width), dtype=np.int64)
    valid = np.zeros((rows, width), dtype=bool)
    vals[r, pos] = z.ravel()[flat]
    ids[r, pos] = c
    valid[r, pos] = True
    return Compact(vals, ids, valid, vocab)


def _candidate_floor(z: Array, k: int) -> Array:
    """Per-row value ``c`` with the k largest entries (and ties) inside ``z >= c``.

    The k-th largest of the strided group maxima: k groups each hold an entry
    at least that large, so the k-th largest entry is too.
    """
    rows, vocab = z.shape
    groups = vocab // _SLICES
    if groups < 4 * k:
        return K.kth_largest(z, np.full(rows, k, dtype=np.int64))
    main = _SLICES * groups
    maxima = z[:, :main].reshape(rows, _SLICES, groups).max(axis=1)
    if main < vocab:
        maxima = np.concatenate([maxima, z[:, main:]], axis=1)
    return K.kth_largest(maxima, np.full(rows, k, dtype=np.int64))


def _upper_set(z: Array, floor: Array) -> Array:
    keep = z >= floor[:, None]
    if np.isneginf(floor).any():
        keep &= z > -np.inf
    return keep


def _top_p_cut(z: Array, p: Array) -> Array:
    """The plain top-p threshold of every row, searching the top candidates first."""
    w, _ = K.row_weights(z)
    total = w.sum(axis=-1, dtype=np.float64)
    thr = np.full(z.shape[0], -np.inf)
    todo = np.flatnonzero(p < 1.0)
    for size in _NUCLEUS_SIZES:
        if todo.size == 0:
            return thr
        sub = z[todo]
        cand = _compact(sub, _upper_set(sub, _candidate_floor(sub, size)))
        cut, covered = K.top_p_scan(cand.vals, p[todo], total[todo])
        thr[todo[covered]] = cut[covered]
        todo = todo[~covered]
    if todo.size:
        thr[todo] = K.top_p_threshold(z[todo], p[todo], total[todo])
    return thr


def run(chain: Plan, rows: Rows) -> Compact:
    """Run a fused plan on validated rows; the result holds the kept tokens only."""
    z = rows.z
    steps = chain.steps
    for w in steps[: chain.first_cut]:
        z = w.apply(z, rows.batch_shape)
    first = steps[chain.first_cut]
    if isinstance(first, TopK):
        k = np.maximum(rows_param(first.k, rows.batch_shape, "top_k"), first.min_tokens_to_keep)
        floor = _candidate_floor(z, int(min(k.max(), z.shape[1])))
        cand = _compact(z, _upper_set(z, floor))
        cand.vals = first.apply(cand.vals, rows.batch_shape)
    else:
        if isinstance(first, TopP):
            thr = _top_p_cut(z, rows_param(first.p, rows.batch_shape, "top_p"))
        elif isinstance(first, MinP):
            thr = K.min_p_threshold(z, rows_param(first.p, rows.batch_shape, "min_p"))
        else:  # plan() admits only the four kinds
            raise TypeError(f"the fused path cannot start with {first!r}")
        cand = _compact(z, _upper_set(z, thr))
    for w in steps[chain.first_cut + 1 :]:
        cand.vals = w.apply(cand.vals, rows.batch_shape)
    cand.valid &= cand.vals > -np.inf
    return cand
