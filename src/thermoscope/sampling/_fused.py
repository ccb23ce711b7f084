"""Fast path for chains of Temperature, TopK, TopP, MinP, TopNSigma: no full-vocabulary sort.

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
  elementwise max over the groups, a fold of those maxima into about ``8 k``
  coarser sets and a partition of those few numbers give the floor; only the
  groups whose maximum reaches it (about k of them) are gathered, and the
  exact k-th value is taken among those few candidates. Leading temperatures
  are applied to the candidates only (see :func:`_top_k_first` for why that
  keeps the same set).
- min-p and top-nσ: the cut (``max + log(p)``, the row maxima from input
  validation; ``max - n * std``, the plain kernel's float64 row statistics)
  is explicit; a sparse cut gathers the groups that reach it, a wide one is
  one compare over the vocabulary.
- η and top-p: the leading temperatures are folded into the one pass over
  the vocabulary that their cut needs (η's entropy, top-p's row mass ``Z``),
  a slice of rows at a time, and the kept tokens are gathered from the raw
  logits (see :func:`_raw_first`). Top-p's running sum from the top is
  finished among the top-k candidates when it crosses ``p * Z`` there
  (LM-shaped rows). Otherwise, a strided
  subsample, sorted, estimates where the running mass crosses ``p * Z``; the
  tokens in a value band around that estimate are gathered, sorted, and the
  running sum is finished from the (masked-sum) mass above the band. The cut
  is accepted only when it provably equals the plain kernel's (see
  :func:`_band_cut`); otherwise the band is widened, and then the plain kernel
  runs, for those rows only.

Identity with the plain chain
-----------------------------
The kept set is the same: the thresholds are computed by the same kernels on
the same float values, and where a sum is associated differently from the
plain kernel's (the mass above a top-p band, the row mass of a top-p step
after another cut) the result is used only when a rounding-error bound shows
it cannot change the cut; otherwise the plain kernel's sum is recomputed.
Probabilities agree to float rounding. Draws from the same seed are identical:
both paths feed the kept tokens' weights, in ascending token-id order, to the
exact integer inverse-CDF routine of :mod:`thermoscope.sampling._draw`.

Torch tensors take :mod:`thermoscope.sampling._fused_torch`, the same plan
computed with torch operations on the tensors' device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from thermoscope._temperature import overflows, row_weights
from thermoscope._typing import Array
from thermoscope.sampling import _kernels as K
from thermoscope.sampling._bands import fast_moments, head_keep, typical_keep
from thermoscope.sampling._context import Context
from thermoscope.sampling._input import Rows, rows_param
from thermoscope.sampling._rowdraw import draw_rows
from thermoscope.sampling.entropy_cuts import Eta, eta_floor
from thermoscope.sampling.warpers import MinP, Temperature, TopK, TopNSigma, TopP, Typical, Warper

__all__ = ["FIRST_CUTS", "Compact", "Plan", "Tempered", "plan", "run", "tempered"]

_SLICES = 32
_COARSE = 8  # coarse sets per requested token for the top-k floor
_SUBSAMPLE = 2048  # subsample length per row for the top-p band estimate
_BAND_TRIES = 3
_BAND_SLACK = 8  # subsample positions either side of the estimate, plus
_BAND_SIGMAS = 2.0  # this many square roots of the positions counted
_TOP_K_SPARE = 16  # extra top-k candidates when the temperature is applied after the cut
_REFINE_WIDTH = 2048  # bands wider than this are narrowed by _refine
_REFINE_SUBSAMPLE = 512
_REFINE_SLACK = 8
_REFINE_SIGMAS = 2.0
_CHUNK = 1 << 19  # elements per cache-sized slice of rows
_TEMPERED_CHUNK = 1 << 17  # elements per slice of rows in Tempered.weights (as row_weights)
_ROW_LOOP_VOCAB = 4096  # _compact loops over rows from this vocabulary size on
_TOP_P_HEAD = 64  # top tokens taken before a top-p first cut searches a band
_GATHER_LIMIT = 0.01  # min-p cuts reaching more of the groups compare the whole vocabulary


#: The stages that may make the fused path's first cut (the Sampler runs the
#: stages before the first of these, or of Temperature, on the whole vocabulary).
FIRST_CUTS: tuple[type[Warper], ...] = (TopK, TopP, MinP, TopNSigma, Typical, Eta)


@dataclass(frozen=True)
class Plan:
    """A chain the fused path can run: leading temperatures, first cut, the rest."""

    steps: tuple[Warper, ...]
    first_cut: int


def plan(warpers: tuple[Warper, ...], rows: Rows) -> Plan | None:
    """Return a plan when the fused path applies to ``warpers`` on ``rows``, else None.

    Decided from the warpers' host parameters and the batch shape only (no
    device value is read), for numpy and torch rows alike, so a sampler may
    keep the answer per batch shape and device kind (on an accelerator a
    top-p or typical first cut runs the plain chain, see ``_SEARCHED``). For
    numpy rows :func:`tempers_safely` checks the logits themselves on every
    call; torch rows need no such check, their leading division is the
    temperature kernel's, which handles overflow itself.
    """
    first_cut = -1
    for i, w in enumerate(warpers):
        if isinstance(w, Temperature):
            t = rows_param(w.temperature, rows.batch_shape, "temperature")
            if not np.all((t > 0) & np.isfinite(t)):
                return None
        elif isinstance(w, TopK):
            rows_param(w.top_k, rows.batch_shape, "top_k")
        elif isinstance(w, TopNSigma) and first_cut < 0:
            # An upper set of the values: max - n * std, over the whole row.
            rows_param(w.top_n_sigma, rows.batch_shape, "top_n_sigma")
        elif isinstance(w, Eta) and first_cut < 0:
            # An upper set: p >= eta is a logit threshold (entropy_cuts._eta_threshold).
            rows_param(w.epsilon, rows.batch_shape, "epsilon")
        elif isinstance(w, Typical) and first_cut < 0:
            # An interval of the values around max + E[z - max] (see _bands).
            rows_param(w.typical_p, rows.batch_shape, "typical_p")
        elif isinstance(w, (TopP, MinP)):
            rows_param(getattr(w, w.name), rows.batch_shape, w.name)
            if w.min_tokens_to_keep != 1 and first_cut < 0:
                return None
        elif first_cut < 0 or not w.on_candidates:
            # After the first cut, any stage that reads only the kept values runs
            # on the compact candidates (XTC, typical, eta, ...).
            return None
        if first_cut < 0 and not isinstance(w, Temperature):
            first_cut = i
    if first_cut < 0:
        return None
    if isinstance(warpers[first_cut], _SEARCHED) and not host_rows(rows):
        return None
    return Plan(tuple(warpers), first_cut)


#: First cuts whose fused form searches a band of values in several rounds.
#: Each round is a few kernel launches and a read of a size on an accelerator,
#: where the plain chain's sort costs less: measured on an H200 at 32 x 128256
#: (``scripts/cuda_profile.py``), top-p 0.9 took 6.4 ms fused and 2.5 ms plain,
#: typical 0.9 3.6 ms and 2.8 ms. The other cuts are one threshold, cheaper fused.
_SEARCHED = (TopP, Typical)


def host_rows(rows: Rows) -> bool:
    """True for numpy rows and torch rows in host memory (a CPU tensor).

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope.sampling._input import prepare
    >>> host_rows(prepare(np.zeros((1, 3))))
    True
    """
    return not rows.torch or rows.z.device.type == "cpu"


class Tempered:
    """A chain of finite positive temperatures only, on numpy rows: tempered logits, weights.

    The plain chain divides the whole batch (one pass that writes it), then
    the draw's :func:`~thermoscope._temperature.row_weights` reads it back,
    takes its row maxima (another pass) and exponentiates. Here each
    cache-sized slice of rows is divided, shifted and exponentiated while in
    cache, with the tempered row maxima taken from validation's maxima: a
    division by a positive temperature is monotone and correctly rounded, so
    the tempered maximum is the maximum of the tempered row. Every element
    gets the very operations of the plain chain (the temperature kernel's
    ``z / T`` in the compute dtype, then ``exp(z - max)``), so the weights, the
    draws and the probabilities are the plain chain's bit for bit.
    """

    __slots__ = ("_divisors", "_m", "_weights", "_z")

    def __init__(self, z: Array, divisors: list[Array], m: Array):
        self._z = z
        self._divisors = divisors
        self._m = m
        self._weights: Array | None = None

    def dense_logits(self) -> Array:
        """The tempered logits (the plain chain's ``logits``)."""
        out = self._z
        for d in self._divisors:
            out = out / d
        return out

    def weights(self) -> Array:
        """``exp(z / T - max)`` per row: the plain chain's draw weights."""
        if self._weights is None:
            z = self._z
            rows, vocab = z.shape
            w = np.empty_like(z)
            step = max(1, _TEMPERED_CHUNK // max(vocab, 1))
            for r0 in range(0, rows, step):
                part = w[r0 : r0 + step]
                src = z[r0 : r0 + step]
                for d in self._divisors:
                    np.divide(src, d[r0 : r0 + step], out=part)
                    src = part
                np.subtract(src, self._m[r0 : r0 + step], out=part)
                np.exp(part, out=part)
            self._weights = w
        return self._weights

    def dense_probs(self) -> Array:
        """``softmax_rows`` of the tempered logits."""
        w = self.weights()
        out: Array = w / w.sum(axis=-1, keepdims=True)
        return out

    def masked_vals(self) -> Array:
        """The tempered logits (nothing is removed)."""
        return self.dense_logits()

    def token_ids(self, pos: Array) -> Array:
        """Positions are token ids."""
        return pos

    def positions(self, u: Array, bits: int) -> Array:
        """Token ids drawn with the shared inverse-CDF routine."""
        pos: Array = draw_rows(self.weights(), u, bits)
        return pos


def tempered(warpers: tuple[Warper, ...], rows: Rows) -> Tempered | None:
    """The chain as a :class:`Tempered` when it is only finite positive temperatures.

    None otherwise: other stages, ``T = 0`` or ``T = inf`` on some row, torch
    rows, or a row whose ``z / T`` overflows (the plain chain shifts first).
    """
    if rows.torch or not warpers or not all(isinstance(w, Temperature) for w in warpers):
        return None
    z = rows.z
    top = rows.row_max.astype(z.dtype)[:, None]
    divisors = []
    for w in warpers:
        assert isinstance(w, Temperature)
        t = rows_param(w.temperature, rows.batch_shape, "temperature")
        if not np.all((t > 0) & np.isfinite(t)):
            return None
        d = t.astype(z.dtype)[:, None]  # the temperature kernel's divisor
        if np.any(overflows(top[:, 0], d[:, 0])):
            return None
        top = top / d
        divisors.append(d)
    return Tempered(z, divisors, top)


def tempers_safely(chain: Plan, rows: Rows) -> bool:
    """False when a temperature before the first cut overflows ``z / T`` on some row.

    Such a row (a tiny T) takes the plain chain, whose division shifts first.
    """
    top = rows.row_max
    for w in chain.steps[: chain.first_cut]:
        assert isinstance(w, Temperature)
        divisor = rows_param(w.temperature, rows.batch_shape, "temperature").astype(rows.z.dtype)
        if np.any(overflows(top, divisor)):
            return False
        top = top.astype(rows.z.dtype) / divisor
    return True


class Compact:
    """Kept candidates per row, padded with -inf: values, token ids, validity.

    ``weights`` (``exp(vals - row max)``, 0 for entries not valid) may be
    given when already known; then the values of entries that are not valid
    are never read. Assigning ``vals`` drops them.
    """

    __slots__ = ("_vals", "_weights", "ids", "valid", "vocab")

    def __init__(
        self, vals: Array, ids: Array, valid: Array, vocab: int, weights: Array | None = None
    ):
        self._vals = vals
        self._weights = weights
        self.ids = ids
        self.valid = valid
        self.vocab = vocab

    @property
    def vals(self) -> Array:
        """Values, ``-inf`` where not valid (unless ``weights`` were given)."""
        return self._vals

    @vals.setter
    def vals(self, values: Array) -> None:
        self._vals = values
        self._weights = None

    def weights(self) -> Array:
        """The plain chain's weights of the candidates (the temperature kernel's row weights)."""
        if self._weights is None:
            self._weights = row_weights(self._vals)[0]
        return self._weights

    def _scatter(self, values: Array, fill: float) -> Array:
        out = np.full((self._vals.shape[0], self.vocab), fill, dtype=values.dtype)
        r, c = np.nonzero(self.valid)
        out[r, self.ids[r, c]] = values[r, c]
        return out

    def dense_logits(self) -> Array:
        """Warped logits over the whole vocabulary."""
        return self._scatter(self._vals, -np.inf)

    def dense_probs(self) -> Array:
        """Probabilities over the whole vocabulary (as the kernel's ``softmax_rows``)."""
        w = self.weights()
        return self._scatter(w / w.sum(axis=-1, keepdims=True), 0.0)

    def masked_vals(self) -> Array:
        """Values, ``-inf`` where not valid."""
        return np.where(self.valid, self._vals, -np.inf).astype(self._vals.dtype, copy=False)

    def token_ids(self, pos: Array) -> Array:
        """Token ids at candidate positions ``pos`` (B, n)."""
        return np.take_along_axis(self.ids, pos, axis=-1).astype(np.int64, copy=False)

    def positions(self, u: Array, bits: int) -> Array:
        """Candidate positions drawn with the shared inverse-CDF routine."""
        pos: Array = draw_rows(self.weights(), u, bits)
        return pos

    def sample(self, u: Array, bits: int) -> Array:
        """Token ids drawn with the shared inverse-CDF routine."""
        return self.token_ids(self.positions(u, bits))


def _compact(z: Array, keep: Array) -> Compact:
    """Gather the kept entries of each row, in ascending token-id order."""
    rows, vocab = z.shape
    if vocab < _ROW_LOOP_VOCAB:
        flat = np.flatnonzero(keep)
        r = flat // vocab
        c = flat - r * vocab
        counts = np.bincount(r, minlength=rows)
        width = max(int(counts.max()), 1)
        pos = np.arange(flat.size) - (np.cumsum(counts) - counts)[r]
        vals = np.full((rows, width), -np.inf, dtype=z.dtype)
        ids = np.zeros((rows, width), dtype=np.int64)
        vals[r, pos] = z.ravel()[flat]
        ids[r, pos] = c
    else:
        # Long rows: one flatnonzero per row avoids int64 divisions and 2-D
        # scatters over every kept entry of the batch.
        cols = [np.flatnonzero(row) for row in keep]
        counts = np.array([c.size for c in cols], dtype=np.int64)
        width = max(int(counts.max()), 1)
        # Each entry is written once: the gathered part, then the padding.
        vals = np.empty((rows, width), dtype=z.dtype)
        ids = np.empty((rows, width), dtype=np.int32 if vocab < 2**31 else np.int64)
        for i, c in enumerate(cols):
            ids[i, : c.size] = c
            ids[i, c.size :] = 0
            np.take(z[i], c, out=vals[i, : c.size])
            vals[i, c.size :] = -np.inf
    valid = np.arange(width) < counts[:, None]
    return Compact(vals, ids, valid, vocab)


_floor_in = K.floor_in


def _group_maxima(z: Array) -> tuple[Array, int]:
    """Maxima of the strided groups (token ``j`` in group ``j mod groups``), and ``groups``.

    Tokens past ``_SLICES * groups`` (the tail) are groups of their own, after the others.
    """
    return _fold_max(z, z.shape[1] // _SLICES), z.shape[1] // _SLICES


def _fold_max(a: Array, n: int) -> Array:
    """Maxima of the ``n`` strided sets ``{j : j mod n = q}`` of ``a[:, :m]``, ``m`` the
    largest multiple of ``n``; the entries past ``m`` follow as sets of their own."""
    rows, length = a.shape
    main = n * (length // n)
    out: Array = a[:, :main].reshape(rows, length // n, n).max(axis=1)
    if main < length:
        out = np.concatenate([out, a[:, main:]], axis=1)
    return out


def _floor_of_maxima(maxima: Array, k: int) -> Array:
    """A per-row value with at least ``k`` tokens at or above it, from group maxima.

    The k-th largest of the maxima of any ``n`` disjoint token sets is such a
    value (k sets each hold a token at least that large). Partitioning every
    group maximum would cost more than the rest of a top-k call, so the groups
    are folded into about ``_COARSE * k`` coarser sets first; the floor sits
    a little lower (a few more candidates), which the exact top-k step on the
    candidates absorbs.
    """
    n = maxima.shape[1]
    fold = n // (_COARSE * k)
    if fold >= 2:
        maxima = _fold_max(maxima, n // fold)
    return K.kth_largest(maxima, k)


def _candidate_floor(z: Array, k: int) -> Array:
    """Per-row value ``c`` with the k largest entries (and ties) inside ``z >= c``."""
    vocab = z.shape[1]
    if vocab // _SLICES < 4 * k:
        return K.kth_largest(z, k)
    return _floor_of_maxima(_group_maxima(z)[0], k)


def _pack(r: Array, c: Array, v: Array, rows: int, vocab: int) -> Compact:
    """A Compact from entries sorted by row, then token id: rows ``r``, ids ``c``, values ``v``."""
    counts = np.bincount(r, minlength=rows)
    width = max(int(counts.max(initial=0)), 1)
    pos = np.arange(r.size) - (np.cumsum(counts) - counts)[r]
    vals = np.full((rows, width), -np.inf, dtype=v.dtype)
    ids = np.zeros((rows, width), dtype=np.int32 if vocab < 2**31 else np.int64)
    vals[r, pos] = v
    ids[r, pos] = c
    return Compact(vals, ids, np.arange(width) < counts[:, None], vocab)


def _top_k_candidates(z: Array, k: int) -> tuple[Compact, Array]:
    """``_compact(z, z >= floor)`` and the floor, reading only groups that reach the floor.

    The floor comes from the strided group maxima (:func:`_floor_of_maxima`);
    only the groups whose maximum reaches it, about k of them, are read again
    (:func:`_gather_upper`).
    """
    vocab = z.shape[1]
    if vocab // _SLICES < 4 * k:
        floor = K.kth_largest(z, k)
        return _compact(z, _upper_set(z, floor)), floor
    maxima, groups = _group_maxima(z)
    floor = _floor_of_maxima(maxima, k)
    cand = _gather_upper(z, maxima, groups, floor, limit=None)
    assert cand is not None  # no limit: never declined
    return cand, floor


def _gather_upper(
    z: Array, maxima: Array, groups: int, floor: Array, limit: float | None
) -> Compact | None:
    """``_compact(z, _upper_set(z, floor))`` from the groups whose maximum reaches the floor.

    A token at or above the floor lies in such a group, so only those groups'
    ``_SLICES`` tokens are gathered (one flat ``take``) and compared, instead
    of the whole vocabulary; the few tokens kept are put in ascending token-id
    order by sorting their flat positions. Returns None when more than
    ``limit`` (a fraction) of the groups would be gathered: a plain compare
    over the vocabulary is cheaper then.
    """
    rows, vocab = z.shape
    edge = _floor_in(floor, z.dtype)[:, None]
    dead = bool(np.isneginf(floor).any())  # the floor is -inf: keep the finite tokens
    main = _SLICES * groups
    hit = maxima[:, :groups] >= edge
    if dead:
        hit &= maxima[:, :groups] > -np.inf
    # flatnonzero: a 2-D nonzero is about ten times slower here.
    sel = np.flatnonzero(hit)
    if limit is not None and sel.size > limit * hit.size:
        return None
    r = sel // groups
    g = sel - r * groups
    # Flat positions of the selected groups' tokens, one row of _SLICES per group.
    flat = (r * vocab + g)[:, None] + groups * np.arange(_SLICES)
    # np.take reads a C-contiguous array in place; any other layout it would copy.
    contiguous = z.flags.c_contiguous
    vals = np.take(z, flat) if contiguous else z[r[:, None], flat - (r * vocab)[:, None]]
    keep = vals >= edge[r]
    if dead:
        keep &= vals > -np.inf
    pick = np.flatnonzero(keep)
    pos, v = flat.reshape(-1)[pick], vals.reshape(-1)[pick]
    if main < vocab:  # tail tokens: each its own group, compared directly
        tail = z[:, main:]
        tkeep = tail >= edge
        if dead:
            tkeep &= tail > -np.inf
        tr, tc = np.divmod(np.flatnonzero(tkeep), vocab - main)
        pos = np.concatenate([pos, tr * vocab + main + tc])
        v = np.concatenate([v, tail[tr, tc]])
    order = np.argsort(pos)
    pos, v = pos[order], v[order]
    rr = pos // vocab
    return _pack(rr, pos - rr * vocab, v, rows, vocab)


def _min_p_first(z: Array, m: Array, p: Array) -> Compact:
    """Min-p as the first cut: the tokens at or above ``max + log(p)``, compacted.

    ``m``: the row maxima of ``z``, shape (B, 1). The threshold is the plain
    kernel's (:func:`K.min_p_threshold`).
    """
    return _upper_first(z, K.min_p_threshold(z, p, m[:, 0]))


def _upper_first(z: Array, thr: Array) -> Compact:
    """The first cut ``z >= thr`` (float64 ``thr`` per row), compacted.

    A small kept set is gathered from the groups that reach ``thr``; a cut
    that keeps much of the vocabulary (a small min-p) is one compare over it,
    which is cheaper then.
    """
    vocab = z.shape[1]
    if vocab >= _ROW_LOOP_VOCAB:
        # A strided subsample estimates the share of groups holding a kept token
        # (about _SLICES times the kept share) before the groups are read.
        sub = z[:, :: max(1, vocab // _SUBSAMPLE)]
        share = np.count_nonzero(sub >= _floor_in(thr, z.dtype)[:, None]) / sub.size
        if share * _SLICES <= _GATHER_LIMIT:
            maxima, groups = _group_maxima(z)
            cand = _gather_upper(z, maxima, groups, thr, limit=4 * _GATHER_LIMIT)
            if cand is not None:
                return cand
    return _compact(z, _upper_set(z, thr))


def _upper_set(z: Array, floor: Array) -> Array:
    keep = z >= _floor_in(floor, z.dtype)[:, None]
    if np.isneginf(floor).any():
        keep &= z > -np.inf
    return keep


def _rows(a: Array, idx: Array) -> Array:
    """``a[idx]`` without a copy when ``idx`` is every row in order."""
    return a if idx.size == a.shape[0] else a[idx]


def _row_mass(
    z: Array, m: Array | None = None, divisors: tuple[Array, ...] = ()
) -> tuple[Array, Array]:
    """Row maxima (keepdims) and the plain kernel's row mass ``sum(exp(z - max))``.

    ``m``: the row maxima (keepdims), when already known. ``divisors``: the
    leading temperatures (B, 1), applied to each slice first (the temperature
    kernel's ``z / T``); ``m`` is then the tempered maxima, required.

    Each row's mass is computed by the same calls on the same row
    (``exp(z - max)``, then ``sum(dtype=float64)`` along the row), so it is bit
    for bit the plain kernel's; working a cache-sized slice of rows at a time
    in one reused buffer only saves memory traffic.
    """
    rows, vocab = z.shape
    if m is None:
        m = z.max(axis=-1, keepdims=True)
    step = max(1, _CHUNK // vocab)
    buf = np.empty((min(step, rows), vocab), dtype=z.dtype)
    total = np.empty(rows)
    for r0 in range(0, rows, step):
        k = min(step, rows - r0)
        w = buf[:k]
        src = z[r0 : r0 + k]
        for d in divisors:
            np.divide(src, d[r0 : r0 + k], out=w)
            src = w
        np.subtract(src, m[r0 : r0 + k], out=w)
        np.exp(w, out=w)
        np.sum(w, axis=-1, dtype=np.float64, out=total[r0 : r0 + k])
    return m, total


def _top_p_first(
    z: Array, p: Array, last: bool = False, m: Array | None = None, total: Array | None = None
) -> Compact:
    """Top-p as the first cut: the kept tokens of every row, compacted.

    A strided subsample, sorted, estimates where the running mass crosses
    ``p * Z``; the tokens at or above ``c_lo``, a little below that estimate,
    are gathered (one compare and one gather over the vocabulary). Among them
    the band ``[c_lo, c_hi)`` around the estimate is sorted and the running
    sum is finished from the mass above ``c_hi``; :func:`_band_cut` verifies
    the cut. When every row passes at once, the gathered tokens are the
    result; rows that fail get a wider band, then the plain kernel. ``last``:
    no step follows (the dropped candidates' values need not be set to -inf).
    ``m``: the row maxima (keepdims), when already known; ``total``: then
    also the row mass, when already known.
    """
    rows, vocab = z.shape
    if m is None or total is None:
        m, total = _row_mass(z, m)
    target = p * total
    thr = np.full(rows, -np.inf)
    todo = np.flatnonzero(p < 1.0)
    if todo.size == 0:
        return _compact(z, _upper_set(z, thr))
    stride = max(1, vocab // _SUBSAMPLE)
    asc = np.sort(z[:, ::stride][todo], axis=-1)
    # Estimate the mass *below* each subsample value (many small weights, a
    # steady estimate) rather than above it (dominated by a few top tokens).
    below = np.cumsum(np.exp(asc - m[todo]), axis=-1, dtype=np.float64) * stride
    under = np.count_nonzero(below < (total - target)[todo, None], axis=-1)
    sub = asc[:, ::-1]
    at = sub.shape[1] - under  # subsample values estimated above the cut
    spread = (_BAND_SLACK + _BAND_SIGMAS * np.sqrt(np.minimum(at, under))).astype(np.int64)
    for attempt in range(_BAND_TRIES):
        if todo.size == 0:
            break
        hi_i, lo_i = at - spread, at + spread
        r = np.arange(todo.size)
        c_hi = np.where(hi_i >= 0, sub[r, np.maximum(hi_i, 0)], np.inf)
        c_lo = np.where(lo_i < sub.shape[1], sub[r, np.minimum(lo_i, sub.shape[1] - 1)], -np.inf)
        zt = _rows(z, todo)
        cand = _compact(zt, _upper_set(zt, c_lo))
        # exp is elementwise: these are the very weights of the full rows.
        weights = np.exp(cand.vals - m[todo])
        cut, ok = _band_cut(cand, weights, m[todo], c_hi, target[todo], total[todo], vocab)
        if attempt == 0 and ok.all() and todo.size == rows:
            keep = cand.vals >= _floor_in(cut, z.dtype)[:, None]
            cand.valid &= keep
            weights *= keep  # exact: w or 0
            if last:  # nothing reads the dropped entries' values again
                return Compact(cand.vals, cand.ids, cand.valid, vocab, weights)
            cand.vals[~keep] = -np.inf
            return cand
        thr[todo[ok]] = cut[ok]
        keep = ~ok
        todo, sub, at, spread = todo[keep], sub[keep], at[keep], 4 * spread[keep]
    if todo.size:
        thr[todo] = K.top_p_threshold(z[todo], p[todo], total[todo])
    return _compact(z, _upper_set(z, thr))


def _band_cut(
    cand: Compact, weights: Array, m: Array, c_hi: Array, target: Array, total: Array, n: int
) -> tuple[Array, Array]:
    """The plain top-p threshold of rows whose cut provably lies in ``[c_lo, c_hi)``.

    ``cand`` holds every token at or above ``c_lo``, ``weights`` their weights
    (``m``: the row maxima, ``n``: the full row length). The plain kernel walks the row sorted
    descending, ``S_j`` = float64 running sum of the first ``j`` weights, and
    cuts at the first ``j`` with ``S_j >= target``. Here the band's tokens
    (below ``c_hi``) are sorted and summed the same way, starting from ``M``,
    the sum of the weights at or above ``c_hi`` (the tokens the plain kernel
    visits first, summed in token order).

    - ``c_hi = inf``: ``M = 0`` and the running sums are the plain kernel's very
      numbers (same values, same order); the row is exact once the band's
      mass reaches ``target``.
    - otherwise ``M`` is summed in another order, so the running sums differ
      from the plain ones by rounding only: both are within ``gamma_n * Z`` of
      the exact partial sums (``gamma_n = n u / (1 - n u)``, ``u = 2**-53``,
      for any order of summing non-negative numbers). The cut is accepted
      only when the running sums just before and at the crossing clear
      ``target`` by ``delta = 8 n u Z``, more than twice that; then the plain
      kernel crosses at the same token. Otherwise (including a tie with
      ``target`` or a band that misses the crossing) the row is not ok.
    """
    vals = cand.vals
    ge_hi = vals >= _floor_in(c_hi, vals.dtype)[:, None]
    bounded = c_hi < np.inf  # c_hi = -inf (a masked value) is bounded too
    above = np.zeros(vals.shape[0])
    if bounded.any():
        above = np.multiply(weights, ge_hi).sum(axis=-1, dtype=np.float64)
    band = _compact(vals, cand.valid & ~ge_hi).vals
    if band.shape[1] <= _REFINE_WIDTH:
        return _cut_in_band(band, above, bounded, m, target, total, n)
    inner, above2, bounded2 = _refine(band, m, above, bounded, target)
    cut, ok = _cut_in_band(inner, above2, bounded2, m, target, total, n)
    redo = np.flatnonzero(~ok)  # the inner band missed: use the whole band
    if redo.size:
        cut[redo], ok[redo] = _cut_in_band(
            band[redo], above[redo], bounded[redo], m[redo], target[redo], total[redo], n
        )
    return cut, ok


def _cut_in_band(
    band: Array, above: Array, bounded: Array, m: Array, target: Array, total: Array, n: int
) -> tuple[Array, Array]:
    """Sort ``band``, run the sums from ``above``, and check the crossing (see _band_cut)."""
    band = np.sort(band, axis=-1)
    desc = band[:, ::-1]  # descending; the -inf padding comes last
    running = np.cumsum(
        np.concatenate([above[:, None], np.exp(desc - m).astype(np.float64)], axis=1), axis=1
    )
    width = desc.shape[1]
    j = 1 + np.count_nonzero(running[:, 1:] < target[:, None], axis=1)  # 1-based in band
    found = j <= width
    jj = np.minimum(j, width)
    r = np.arange(band.shape[0])
    at, before = running[r, jj], running[r, jj - 1]
    delta = 8.0 * n * 2.0**-53 * total
    clear = (at >= target + delta) & (before < target - delta)
    ok = found & np.where(bounded, clear, True)
    return desc[r, jj - 1].astype(np.float64), ok


def _refine(
    band: Array, m: Array, above: Array, bounded: Array, target: Array
) -> tuple[Array, Array, Array]:
    """Narrow a wide band with a second, denser subsample estimate (sorting less).

    The inner band ``[c_lo2, c_hi2)`` replaces the band and the mass above
    ``c_hi2`` is added to ``above`` (a sum in yet another order, so such rows
    become ``bounded``: :func:`_band_cut` then checks them with its margin).
    """
    rows, width = band.shape
    weights = np.exp(band - m)
    stride = max(1, width // _REFINE_SUBSAMPLE)
    asc = np.sort(band[:, ::stride], axis=-1)  # the -inf padding first
    # As in _top_p_first: estimate the band's mass below each value.
    below = np.cumsum(np.exp(asc - m), axis=-1, dtype=np.float64) * stride
    need = above + weights.sum(axis=-1, dtype=np.float64) - target
    under = np.count_nonzero(below < need[:, None], axis=-1)
    sub = asc[:, ::-1]
    at = sub.shape[1] - under
    spread = (_REFINE_SLACK + _REFINE_SIGMAS * np.sqrt(np.minimum(at, under))).astype(np.int64)
    hi_i, lo_i = at - spread, at + spread
    r = np.arange(rows)
    c_hi = np.where(hi_i >= 0, sub[r, np.maximum(hi_i, 0)], np.inf)
    c_lo = np.where(lo_i < sub.shape[1], sub[r, np.minimum(lo_i, sub.shape[1] - 1)], -np.inf)
    ge_hi = band >= _floor_in(c_hi, band.dtype)[:, None]
    inner = ~ge_hi & (band >= _floor_in(c_lo, band.dtype)[:, None])
    above = above + np.multiply(weights, ge_hi).sum(axis=-1, dtype=np.float64)
    return _compact(band, inner).vals, above, bounded | (c_hi < np.inf)


def run(chain: Plan, rows: Rows, ctx: Context) -> Compact:
    """Run a fused plan on validated rows; the result holds the kept tokens only."""
    z = rows.z
    steps = chain.steps
    first = steps[chain.first_cut]
    cand = _top_k_first(chain, rows) if isinstance(first, TopK) else _raw_first(chain, rows)
    # Row maxima from validation. A positive temperature's division is monotone
    # and correctly rounded, so the tempered row maximum is the tempered maximum.
    m = rows.row_max[:, None]
    if cand is None:
        for w in steps[: chain.first_cut]:
            z = w.apply(z, rows.batch_shape)
            m = w.apply(m, rows.batch_shape)
    if isinstance(first, TopK):
        if cand is None:
            k = np.maximum(
                rows_param(first.top_k, rows.batch_shape, "top_k"), first.min_tokens_to_keep
            )
            floor = _candidate_floor(z, int(min(k.max(), z.shape[1])))
            cand = _compact(z, _upper_set(z, floor))
            cand.vals = first.apply(cand.vals, rows.batch_shape)
    elif cand is None:
        if isinstance(first, TopP):
            p = rows_param(first.top_p, rows.batch_shape, "top_p")
            cand = _top_p_first(z, p, last=chain.first_cut == len(steps) - 1, m=m)
        elif isinstance(first, MinP):
            cand = _min_p_first(z, m, rows_param(first.min_p, rows.batch_shape, "min_p"))
        elif isinstance(first, TopNSigma):
            n = rows_param(first.top_n_sigma, rows.batch_shape, "top_n_sigma")
            cand = _upper_first(z, K.top_n_sigma_threshold(z, n))
        elif isinstance(first, Typical):
            mass = rows_param(first.typical_p, rows.batch_shape, "typical_p")
            cand = _typical_first(z, m, mass, first.min_tokens_to_keep)
        elif isinstance(first, Eta):
            cand = _upper_first(z, eta_floor(first, z, rows.batch_shape))
        else:  # plan() admits only the kinds of FIRST_CUTS
            raise TypeError(f"the fused path cannot start with {first!r}")
    for step in steps[chain.first_cut + 1 :]:
        cand.vals = step.apply_in(cand.vals, ctx)
    return _finish(cand)


def _raw_first(chain: Plan, rows: Rows) -> Compact | None:
    """The first cut on the raw logits, leading temperatures folded in; None: not this kind.

    η (with ``min_tokens_to_keep == 1``): its cut is computed from the raw
    rows tempered a slice at a time (:func:`eta_floor` with ``divisors``), so
    the tempered vocabulary is never written out; then the tokens whose raw
    value reaches a floor just below the cut, brought back through the
    divisions (:func:`_raw_floor`), are gathered, tempered, and cut exactly.
    """
    first = chain.steps[chain.first_cut]
    if isinstance(first, TopP):
        return _top_p_raw(chain, rows)
    if isinstance(first, Typical):
        return _typical_raw(chain, rows)
    if not isinstance(first, Eta) or first.min_tokens_to_keep != 1:
        return None
    z = rows.z
    divisors = _divisors(chain, rows)
    m = rows.row_max
    for d in divisors:
        m = m.astype(z.dtype) / d[:, 0]  # the tempered maxima (a monotone division)
    thr = eta_floor(first, z, rows.batch_shape, m, tuple(divisors))
    cand = _upper_first(z, _raw_floor(thr, divisors, z.dtype))
    vals = cand.vals
    for d in divisors:
        vals = vals / d  # the temperature kernel's division, on the candidates only
    cand.valid &= vals >= _floor_in(thr, z.dtype)[:, None]
    cand.vals = np.where(cand.valid, vals, -np.inf).astype(vals.dtype, copy=False)
    return cand


def _top_p_raw(chain: Plan, rows: Rows) -> Compact:
    """Top-p as the first cut, the leading temperatures folded in (see :func:`_raw_first`).

    The row mass is summed from the raw rows tempered a slice at a time
    (:func:`_row_mass`, bit for bit the plain kernel's). The plain kernel then
    sorts the row and runs a float64 sum from the top; here the tokens at or
    above a floor with ``_TOP_P_HEAD`` tokens above it (:func:`_top_k_candidates`,
    on the raw rows) are tempered and sorted instead: they are the top of the
    plain kernel's sorted row, so the running sums are its very numbers. A row
    is done when its sum crosses ``p * Z`` there (:func:`K.top_p_scan`) at a
    value above every token outside the candidates (``edge``, as in
    :func:`_top_k_first`). Otherwise (a wide nucleus) the tempered rows take
    the band search of :func:`_top_p_first`, with the mass already summed.
    """
    z = rows.z
    first = chain.steps[chain.first_cut]
    assert isinstance(first, TopP)
    p = rows_param(first.top_p, rows.batch_shape, "top_p")
    divisors = _divisors(chain, rows)
    m = rows.row_max[:, None]
    for d in divisors:
        m = m.astype(z.dtype) / d  # the tempered maxima (a monotone division)
    m, total = _row_mass(z, m, tuple(divisors))
    head = min(_TOP_P_HEAD, z.shape[1])
    cand, floor = _top_k_candidates(z, head)
    # The largest value a non-candidate can have: just below the floor.
    edge = np.nextafter(floor.astype(z.dtype), z.dtype.type(-np.inf))
    vals = cand.vals
    for d in divisors:
        vals = vals / d  # the temperature kernel's division, on the candidates only
        edge = edge / d[:, 0]
    thr, holds = K.top_p_scan(vals, p, total)
    if np.all(holds & (thr > edge) & (p < 1.0)):
        cand.valid &= vals >= _floor_in(thr, z.dtype)[:, None]
        cand.vals = np.where(cand.valid, vals, -np.inf).astype(vals.dtype, copy=False)
        return cand
    zt = z
    for d in divisors:
        zt = zt / d
    return _top_p_first(zt, p, chain.first_cut == len(chain.steps) - 1, m, total)


def _divisors(chain: Plan, rows: Rows) -> list[Array]:
    """The leading temperatures, (B, 1) each in the compute dtype (the kernel's divisors)."""
    out = []
    for w in chain.steps[: chain.first_cut]:
        assert isinstance(w, Temperature)  # plan() admits only these before the cut
        t = rows_param(w.temperature, rows.batch_shape, "temperature")
        out.append(t.astype(rows.z.dtype)[:, None])
    return out


def _raw_floor(thr: Array, divisors: list[Array], dtype: np.dtype[Any]) -> Array:
    """A raw value ``L`` per row: every ``x`` whose tempered value reaches ``thr`` has ``x >= L``.

    Each division ``q = fl(y / t)`` is correctly rounded, so ``q >= e``
    implies ``y >= t * (e - eps |e| - tiny)``; the bound is taken back through
    the divisions in reverse, with a float64 margin for its own rounding.
    """
    info = np.finfo(dtype)
    e = _floor_in(thr, dtype).astype(np.float64)
    for d in reversed(divisors):
        t = d[:, 0].astype(np.float64)
        with np.errstate(invalid="ignore"):  # -inf stays -inf (keep every finite token)
            y = t * (e - float(info.eps) * np.abs(e) - float(info.smallest_subnormal))
            e = y - 4.0 * 2.0**-53 * np.abs(y)
        e = np.where(np.isnan(e), -np.inf, e)
    return e


def _finish(cand: Compact) -> Compact:
    cand.valid &= cand.vals > -np.inf
    return cand


def _top_k_first(chain: Plan, rows: Rows) -> Compact | None:
    """Top-k on the raw logits' candidates, then the leading temperatures on those only.

    Dividing by a positive temperature is monotone (correctly rounded), so a
    token outside the candidates (raw value below the floor) has a tempered
    value at most the tempered ``nextafter(floor, -inf)``. When that is below the k-th tempered
    candidate, no such token could tie into the top k and the result is the
    plain chain's. Otherwise (a rounding tie) returns None: the caller tempers
    the whole vocabulary first.
    """
    first = chain.steps[chain.first_cut]
    assert isinstance(first, TopK)
    z = rows.z
    k = np.maximum(rows_param(first.top_k, rows.batch_shape, "top_k"), first.min_tokens_to_keep)
    # A few spare candidates put the floor strictly below the k-th value, so the
    # check below holds for any moderate temperature.
    cand, floor = _top_k_candidates(z, min(int(k.max()) + _TOP_K_SPARE, z.shape[1]))
    # The largest value a non-candidate can have: just below the floor.
    edge = np.nextafter(floor.astype(z.dtype), z.dtype.type(-np.inf))[:, None]
    for w in chain.steps[: chain.first_cut]:
        # plan() admits only finite positive temperatures here, for which the
        # temperature kernel's divide is this very division (in the compute dtype).
        assert isinstance(w, Temperature)
        t = rows_param(w.temperature, rows.batch_shape, "temperature").astype(z.dtype)[:, None]
        cand.vals = cand.vals / t
        edge = edge / t
    if k.size and (k == k[0]).all():
        # TopK.apply with one k for every row, minus its per-row bookkeeping.
        cand.vals = K.apply_threshold(cand.vals, K.kth_largest(cand.vals, int(k[0])))
    else:
        cand.vals = first.apply(cand.vals, rows.batch_shape)
    kth = np.where(np.isfinite(cand.vals), cand.vals, np.inf).min(axis=1)
    if np.all(np.isneginf(floor) | (edge[:, 0] < kth)):
        return cand
    return None


_TYPICAL_HEAD = 64  # largest tokens searched first for a typical cut (LM rows keep a few)


def _typical_first(z: Array, m: Array, mass: Array, min_keep: int) -> Compact:
    """Typical as the first cut: among the head of largest tokens, else the band search.

    ``m``: the row maxima (B, 1). The head is the top-k candidates (every other
    token below their floor); :func:`thermoscope.sampling._bands.head_keep`
    certifies the rows whose cut lies among them, the others take
    :func:`~thermoscope.sampling._bands.typical_keep` (band search, then the
    plain kernel).
    """
    vocab = z.shape[1]
    cand, floor = _top_k_candidates(z, min(_TYPICAL_HEAD, vocab))
    edge = _below(floor, z.dtype)
    keep, ok = head_keep(cand.vals, cand.valid, edge, m, mass, min_keep, fast_moments(z, m), vocab)
    return _typical_finish(z, m, mass, min_keep, cand, keep, ok)


def _below(floor: Array, dtype: np.dtype[Any]) -> Array:
    """The largest value of ``dtype`` below ``floor`` (float64): tokens left out are at most it."""
    f = _floor_in(floor, dtype)
    out: Array = np.nextafter(f, dtype.type(-np.inf)).astype(np.float64)
    return out


def _typical_finish(
    z: Array, m: Array, mass: Array, min_keep: int, cand: Compact, keep: Array, ok: Array
) -> Compact:
    """The head's kept candidates; rows it did not certify take the band search on ``z``."""
    if ok.all():
        cand.valid &= keep
        cand.vals = np.where(keep, cand.vals, -np.inf).astype(z.dtype, copy=False)
        return cand
    full = np.zeros(z.shape, dtype=bool)
    good = np.flatnonzero(ok)
    r, c = np.nonzero(keep[good])
    full[good[r], cand.ids[good[r], c]] = True
    bad = np.flatnonzero(~ok)
    full[bad] = typical_keep(z[bad], m[bad], mass[bad], min_keep)
    return _compact(z, full)


def _typical_raw(chain: Plan, rows: Rows) -> Compact | None:
    """Typical as the first cut, the leading temperatures folded in (see :func:`_raw_first`).

    The moments are taken on the raw rows tempered a slice at a time
    (:func:`~thermoscope.sampling._bands.fast_moments` with ``divisors``),
    which also takes the group maxima of each raw slice; the head is the
    raw rows' top-k candidates, tempered (a monotone division: the same
    tokens, and every token left out is at most the tempered edge). When the
    head does not decide every row, the whole rows are tempered and cut as
    without this shortcut. None for short rows (their top-k reads the row).
    """
    first = chain.steps[chain.first_cut]
    assert isinstance(first, Typical)
    z = rows.z
    vocab = z.shape[1]
    head = min(_TYPICAL_HEAD, vocab)
    if vocab // _SLICES < 4 * head:
        return None
    mass = rows_param(first.typical_p, rows.batch_shape, "typical_p")
    divisors = _divisors(chain, rows)
    m = rows.row_max[:, None].astype(z.dtype)
    for d in divisors:
        m = m / d  # the tempered maxima (a monotone division)
    groups = vocab // _SLICES
    maxima = np.empty((z.shape[0], groups + vocab - _SLICES * groups), dtype=z.dtype)

    def fold(part: slice, raw: Array) -> None:
        maxima[part] = _group_maxima(raw)[0]

    moments = fast_moments(z, m, divisors, fold)
    floor = _floor_of_maxima(maxima, head)
    cand = _gather_upper(z, maxima, groups, floor, limit=None)
    assert cand is not None  # no limit: never declined
    edge = _below(floor, z.dtype).astype(z.dtype)
    vals = cand.vals
    for d in divisors:
        vals = vals / d  # the temperature kernel's division, on the candidates only
        edge = edge / d[:, 0]
    cand.vals = vals
    keep, ok = head_keep(
        vals, cand.valid, edge.astype(np.float64), m, mass, first.min_tokens_to_keep, moments, vocab
    )
    if ok.all():
        return _typical_finish(z, m, mass, first.min_tokens_to_keep, cand, keep, ok)
    for w in chain.steps[: chain.first_cut]:
        z = w.apply(z, rows.batch_shape)
    return _typical_first(z, m, mass, first.min_tokens_to_keep)
