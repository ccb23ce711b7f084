"""Typical sampling as the fused path's first cut: a band search instead of a full sort.

The plain kernel (:func:`thermoscope.sampling._kernels.typical_mask`) ranks
every token by ``|-log p - H|`` with a full sort. With ``d = z - max`` and
``c = log Z - H = E_p[d]`` (the mean of ``d`` under ``p``), that score is
``|d - c|``: the kept set is an *interval* of logit values around
``max + c``, the smallest one, grown from the centre, whose mass reaches
``typical_p``. So:

1. one pass over the row gives ``W = sum w``, ``S = sum w d`` and
   ``Q = sum w d**2`` (``d`` and ``w = exp(d)`` in float64, so the bounds are
   float64 rounding, far below one token's probability even on flat rows);
   ``c' = S / W`` estimates ``c`` and a rounding-error bound ``e_c`` covers
   both this estimate and the plain kernel's own float64 rounding;
2. a strided subsample, ranked by ``|d - c'|``, estimates the radius where
   the mass crosses ``typical_p``; the tokens strictly inside a slightly
   smaller radius (the *inner* set) are only summed, the tokens in the band
   between it and a slightly larger radius are gathered and sorted;
3. the crossing is found in the band and accepted only when it cannot move
   under any ``c`` within ``e_c`` of ``c'`` nor under the rounding of the
   probabilities (bound ``delta``): the kept token's score is more than
   ``2 e_c`` away from every other score except exact ties (equal logits),
   and the running mass clears ``typical_p`` by ``delta`` on both sides.
   Rows whose band misses the crossing retry with a band moved towards it.

Rows that fail any check (a tie across the centre, a band that misses the
crossing, a probability sum within rounding of ``typical_p``, fewer kept
tokens than ``min_tokens_to_keep``) take the plain kernel. The kept set is
therefore always the plain kernel's, tie policy included.

The head first
--------------
On LM-shaped rows the typical set is a handful of the largest tokens. So
before any band, :func:`head_keep` tries the ``_HEAD`` largest tokens (the
fused top-k's candidates, every other token at most a known ``edge``) with
moments from :func:`fast_moments`: ``exp`` in the compute dtype (float32),
each sum taken as ``_FOLD`` partial sums of about ``V / _FOLD`` terms in
that dtype, then in float64, so the summation error is at most
``(V / _FOLD) u`` relative for any order of the partial sums, a few
millionths for float32: far below the gaps between the scores and
probabilities of a handful of tokens. A token outside the head has
``d <= edge - max``, so its score is at least ``c - (edge - max)``; a crossing
found among the head below that score, by the same checks as the band's,
is the plain kernel's. Rows it cannot certify take the band search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from thermoscope._typing import Array
from thermoscope.sampling import _kernels as K

__all__ = ["band_search", "fast_moments", "head_keep", "typical_keep"]

_CHUNK = 1 << 17  # elements per cache-sized slice of rows in the moment pass
_SUBSAMPLE = 2048  # subsample length per row for the radius estimate
_SLACK = 8  # subsample positions either side of the estimate, plus
_SIGMAS = 3.0  # this many square roots of the positions counted
_HEAVY = 4096  # tokens with at least this share of the row mass are taken exactly
_RETRIES = 3  # further bands tried on rows whose band missed the crossing
_GROW = 1.0  # each retry moves this many band widths towards the crossing
_MIN_WIDTH = 0.05  # the least width a retry assumes, relative to the inner radius + 1
_EXP_ULPS = 8.0  # allowance for the library exp's error, in units of the dtype's rounding
_FOLD = 4096  # partial sums per row in fast_moments (each of about V / _FOLD terms)
_FAST_CHUNK = 1 << 16  # elements per slice of rows in fast_moments (a few buffers in L2)
_D_MAX = 64.0  # |d| split for the bound on sum w d**2 in fast_moments


def _moments(z: Array, m: Array) -> tuple[Array, Array, Array, Array, Array]:
    """``w = exp(z - m)``, the heavy tokens, and the float64 row sums of ``w``, ``w d``, ``w d**2``.

    ``d = z - m`` and ``w`` are computed in float64 (``d`` exact but for one
    rounding, ``w`` within a few float64 ulps): the bounds then stay near
    float64 rounding, far below one token's probability at the cut even on
    flat rows of a large vocabulary, where float32 weights made them fail.
    A token is heavy when its weight is at least ``1 / _HEAVY`` of the row's:
    there are at most ``_HEAVY`` of them, and the radius estimate takes them
    exactly rather than from the subsample (a peaked row's mass is a few tokens).
    """
    rows, vocab = z.shape
    w = np.empty(z.shape)
    heavy = np.empty(z.shape, dtype=bool)
    sums = np.empty((3, rows))
    step = max(1, _CHUNK // max(vocab, 1))
    d_buf = np.empty((min(step, rows), vocab))
    t_buf = np.empty_like(d_buf)
    low = np.finfo(np.float64).min
    for r0 in range(0, rows, step):
        k = min(step, rows - r0)
        part = slice(r0, r0 + k)
        d, t = d_buf[:k], t_buf[:k]
        np.subtract(z[part], m[part], out=d, dtype=np.float64)
        np.exp(d, out=w[part])
        np.sum(w[part], axis=-1, out=sums[0, part])
        np.greater_equal(w[part], (sums[0, part] / _HEAVY)[:, None], out=heavy[part])
        # A -inf entry has w = 0; clamping its d keeps the products 0, not nan.
        np.maximum(d, low, out=d)
        np.multiply(w[part], d, out=t)
        np.sum(t, axis=-1, out=sums[1, part])
        np.multiply(t, d, out=t)
        np.sum(t, axis=-1, out=sums[2, part])
    return w, heavy, sums[0], sums[1], sums[2]


def _bounds(
    dtype: np.dtype[np.floating],
    n: int,
    big_w: Array,
    s: Array,
    q: Array,
    sum_err: float | None = None,
) -> tuple[Array, Array, Array]:
    """``c'``, the bound ``e_c`` on ``|c' - c_plain|`` and the bound on relative mass errors.

    Each weight carries a relative error of at most ``u (|d| + 1) + exp_err``
    (``d`` rounded in ``dtype``, then the library's exp; float64 here), each
    ``w d`` one ``u`` more; float64 sums of ``n`` non-negative terms add at
    most ``n u64`` relative. The plain kernel's float64 ``log Z`` and entropy
    are within ``(n + 10) u64`` relative of theirs (sums of non-negative
    terms), which the last term covers with room to spare. ``sum_err``: the
    relative error of the row sums when not ``n u64`` (:func:`fast_moments`).
    """
    u = float(np.finfo(dtype).eps) / 2
    u64 = 2.0**-53
    exp_err = _EXP_ULPS * u
    acc = n * u64 if sum_err is None else sum_err
    c = s / big_w
    sw = -s / big_w  # E|d| (d <= 0)
    qw = q / big_w  # E d**2
    rel_w = u * sw + u + exp_err + acc  # |W' - W| / W
    err_s = u * qw + (3 * u + exp_err + acc) * sw  # |S' - S| / W
    lse = np.log(big_w)
    plain = 8.0 * (n + 10) * u64 * (np.abs(lse) + sw + 1.0)
    e_c = 2.0 * ((err_s + np.abs(c) * rel_w) / (1.0 - rel_w) + plain) + 1e-300
    delta = 2.0 * (rel_w + u * (sw + 1.0) + exp_err + u) + plain
    return c, e_c, delta


def _fold_sum(x: Array) -> Array:
    """Row sums of ``x`` (same-sign terms): ``_FOLD`` partial sums in x's dtype, then float64."""
    rows, vocab = x.shape
    parts = vocab // _FOLD
    if parts < 2:
        out: Array = x.astype(np.float64).sum(axis=-1)
        return out
    main = parts * _FOLD
    folded = x[:, :main].reshape(rows, parts, _FOLD).sum(axis=1)
    total: Array = folded.astype(np.float64).sum(axis=-1)
    if main < vocab:
        total += x[:, main:].astype(np.float64).sum(axis=-1)
    return total


def fold_error(dtype: np.dtype[np.floating], vocab: int) -> float:
    """Relative error bound of :func:`_fold_sum` on ``vocab`` same-sign terms of ``dtype``.

    Each partial sum adds at most ``vocab // _FOLD`` terms in ``dtype`` (in any
    order: at most ``k - 1`` roundings of ``u`` on a sum of ``k`` same-sign
    terms), the float64 sum of the partials and the tail ``_FOLD + vocab``
    more; ``vocab`` times the dtype's smallest normal covers weights that
    underflow (``exp`` loses its relative accuracy there; ``W >= 1``).

    Examples
    --------
    >>> fold_error(np.dtype(np.float32), 100) < 1e-6
    True
    """
    info = np.finfo(dtype)
    u = float(info.eps) / 2
    parts = vocab // _FOLD
    return (max(parts, 1) * u if parts >= 2 else 0.0) + (
        (_FOLD + vocab) * 2.0**-53 + vocab * float(info.tiny)
    )


def fast_moments(
    z: Array,
    m: Array,
    divisors: Sequence[Array] = (),
    each: Callable[[slice, Array], object] | None = None,
) -> tuple[Array, Array, Array, float]:
    """``W = sum w``, ``S = sum w d``, a bound on ``Q = sum w d**2``, the relative summation error.

    ``d = z - m`` and ``w = exp(d)`` in z's dtype (the compute dtype), each
    sum by :func:`_fold_sum`: about a third of the cost of widening every
    element to float64, with a bound (:func:`fold_error`) of a few millionths
    for float32, which :func:`_bounds` turns into bounds on ``c`` and the mass.
    ``Q`` only enters a rounding bound, so it is bounded rather than summed:
    ``d**2 w <= _D_MAX |d| w`` where ``|d| <= _D_MAX``, and each other term is
    at most ``_D_MAX**2 exp(-_D_MAX)`` (``x**2 exp(-x)`` falls beyond 2).

    ``divisors``: (B, 1) temperatures in z's dtype, applied first, slice by
    slice, as the temperature kernel divides (``m``: the tempered maxima), so
    the tempered rows are never written out; ``each(rows, raw)`` is called
    on each slice of the raw rows while it is in cache.

    Examples
    --------
    >>> z = np.log(np.array([[0.5, 0.25, 0.25]], dtype=np.float32))
    >>> big_w, s, q, err = fast_moments(z, z.max(axis=-1, keepdims=True))
    >>> bool(abs(big_w[0] - 2.0) < 1e-6), bool(err < 1e-6)
    (True, True)
    """
    rows, vocab = z.shape
    m = m.astype(z.dtype, copy=False)
    sums = np.empty((2, rows))
    step = max(1, _FAST_CHUNK // max(vocab, 1))
    d_buf = np.empty((min(step, rows), vocab), dtype=z.dtype)
    w_buf = np.empty_like(d_buf)
    with np.errstate(invalid="ignore", under="ignore"):
        for r0 in range(0, rows, step):
            k = min(step, rows - r0)
            part = slice(r0, r0 + k)
            d, w = d_buf[:k], w_buf[:k]
            src = z[part]
            if each is not None:
                each(part, src)
            for t in divisors:
                src = np.divide(src, t[part], out=d)
            np.subtract(src, m[part], out=d)
            np.exp(d, out=w)
            sums[0, part] = _fold_sum(w)
            np.multiply(w, d, out=d)
            s = _fold_sum(d)
            if np.isnan(s).any():
                # A -inf entry: w = 0 times d = -inf. Clamped, its products are 0.
                src = z[part]
                for t in divisors:
                    src = np.divide(src, t[part], out=d)
                np.subtract(src, m[part], out=d)
                np.maximum(d, np.finfo(z.dtype).min, out=d)
                np.multiply(w, d, out=d)
                s = _fold_sum(d)
            sums[1, part] = s
    big_w, s = sums[0], sums[1]
    q = _D_MAX * np.abs(s) * 1.01 + vocab * _D_MAX**2 * np.exp(-_D_MAX)
    return big_w, s, q, fold_error(z.dtype, vocab)


def head_keep(
    vals: Array,
    valid: Array,
    edge: Array,
    m: Array,
    mass: Array,
    min_keep: int,
    moments: tuple[Array, Array, Array, float],
    vocab: int,
) -> tuple[Array, Array]:
    """The typical cut among the head candidates ``vals`` (B, C), and the rows it certifies.

    ``vals``: candidate values (-inf padding where not ``valid``); every other
    token of the row is at most ``edge`` (float64, -inf: no finite one);
    ``m``: row maxima (B, 1); ``moments``: :func:`fast_moments`' result on the
    whole rows, of length ``vocab``. Returns the kept candidates (B, C) and
    ``ok`` (B,); rows not ``ok`` keep nothing here.

    Examples
    --------
    >>> z = np.log(np.array([[0.4, 0.2, 0.2, 0.2]]))
    >>> m = z.max(axis=-1, keepdims=True)
    >>> head_keep(z, np.isfinite(z), np.full(1, -np.inf), m, np.array([0.5]), 1,
    ...           fast_moments(z, m), 4)
    (array([[False,  True,  True,  True]]), array([ True]))
    """
    rows, width = vals.shape
    big_w, s, q, err = moments
    # ``vocab``: the plain kernel's own float64 rounding is over the whole row.
    c, e_c, delta = _bounds(vals.dtype, vocab, big_w, s, q, err)
    m64 = m.astype(np.float64)
    d = np.where(valid, vals.astype(np.float64) - m64, -np.inf)
    sc = np.abs(d - c[:, None])  # inf where not valid
    order = np.argsort(sc, axis=-1)
    sc = np.take_along_axis(sc, order, axis=-1)
    ds = np.take_along_axis(d, order, axis=-1)
    run = np.cumsum(np.exp(ds) / big_w[:, None], axis=-1)
    count = np.count_nonzero(np.isfinite(sc), axis=-1)
    r = np.arange(rows)
    j = np.count_nonzero(run < mass[:, None], axis=-1)  # crossing position
    jj = np.minimum(j, width - 1)
    at = sc[r, jj]
    tol = 2.0 * e_c + 64.0 * 2.0**-53 * (at + np.abs(c) + 1.0)
    # Equal values give equal scores; any other score within rounding of the
    # cut could rank either side of it in the plain kernel.
    same = ds == ds[r, jj][:, None]
    with np.errstate(invalid="ignore"):  # inf - inf where no crossing: not ok below
        near = np.abs(sc - at[:, None]) <= tol[:, None]
    clean = ~(near & ~same).any(axis=-1)
    # A token outside the head has d <= edge - max: its score is at least this.
    d_out = edge - m64[:, 0]
    s_out = np.where(np.isneginf(edge), np.inf, np.maximum(c - d_out, 0.0))
    first = np.count_nonzero(sc < at[:, None], axis=-1)
    last = np.count_nonzero(sc <= at[:, None], axis=-1) - 1
    before = np.where(first > 0, run[r, np.maximum(first - 1, 0)], 0.0)
    after = run[r, np.clip(last, 0, width - 1)]
    ok = (
        (j < count)
        & clean
        & (at + tol < s_out)
        & (before < mass - delta)
        & (after >= mass + delta)
        & (last + 1 >= min_keep)
    )
    keep = np.zeros((rows, width), dtype=bool)
    np.put_along_axis(keep, order, np.arange(width) <= np.where(ok, last, -1)[:, None], axis=-1)
    return keep, ok


def typical_keep(z: Array, m: Array, mass: Array, min_keep: int) -> Array:
    """The plain kernel's typical mask of ``z`` (B, V), computed without a full sort.

    ``m``: the row maxima (B, 1); ``mass``: ``typical_p`` per row (B,). Rows
    the band search cannot certify take the plain kernel.

    Examples
    --------
    >>> z = np.log(np.array([[0.4, 0.2, 0.2, 0.2]]))
    >>> typical_keep(z, z.max(axis=-1, keepdims=True), np.array([0.5]), 1)
    array([[False,  True,  True,  True]])
    """
    keep, ok = band_search(z, m, mass, min_keep)
    bad = np.flatnonzero(~ok)
    if bad.size:
        keep[bad] = K.typical_mask(z[bad], mass[bad], min_keep)
    return keep


def band_search(z: Array, m: Array, mass: Array, min_keep: int) -> tuple[Array, Array]:
    """The typical mask on the rows the band search certifies (``ok``); other rows: all False.

    Examples
    --------
    >>> z = np.log(np.array([[0.4, 0.2, 0.2, 0.2]]))
    >>> band_search(z, z.max(axis=-1, keepdims=True), np.array([0.5]), 1)[1]
    array([ True])
    """
    rows, vocab = z.shape
    w, heavy, big_w, s, q = _moments(z, m)
    c, e_c, delta = _bounds(np.dtype(np.float64), vocab, big_w, s, q)
    lo, hi = np.full(rows, np.inf), np.full(rows, -np.inf)
    ok = np.zeros(rows, dtype=bool)
    todo = np.arange(rows)
    r_in, r_out = _radii(z, w, heavy, m, c, big_w, mass)
    for _ in range(1 + _RETRIES):
        sel = todo if todo.size < rows else slice(None)
        part_lo, part_hi, part_ok, side = _certify(
            z[sel],
            w[sel],
            m[sel],
            c[sel],
            e_c[sel],
            delta[sel],
            big_w[sel],
            mass[sel],
            min_keep,
            r_in,
            r_out,
        )
        lo[todo], hi[todo], ok[todo] = part_lo, part_hi, part_ok
        # A band already reaching the row's ends cannot move further that way.
        can_move = np.where(side > 0, r_out < np.inf, np.where(side < 0, r_in > 0, True))
        miss = ~part_ok & can_move & ((r_out < np.inf) | (r_in > 0))
        todo = todo[miss]
        if todo.size == 0:
            break
        # A band that missed the crossing moves towards it (a partial sort
        # still) before the row is left to the plain kernel's full sort.
        r_in, r_out = _next_band(r_in[miss], r_out[miss], side[miss])
    keep = (z >= lo.astype(z.dtype)[:, None]) & (z <= hi.astype(z.dtype)[:, None])
    return keep, ok


def _certify(
    z: Array,
    w: Array,
    m: Array,
    c: Array,
    e_c: Array,
    delta: Array,
    big_w: Array,
    mass: Array,
    min_keep: int,
    r_in: Array,
    r_out: Array,
) -> tuple[Array, Array, Array, Array]:
    """``[lo, hi]`` kept on the rows whose band certifies the cut, ``ok``, and ``side``.

    ``side``: +1 where the crossing lies beyond the band, -1 where it lies in
    the inner set, 0 otherwise (found, or a row that failed another check).
    """
    rows = z.shape[0]
    centre = m[:, 0].astype(np.float64) + c
    # Inner set: strictly inside (zl_in, zh_in); band: [zl_out, zh_out] minus inner.
    zl_in = (centre - r_in).astype(z.dtype)
    zh_in = (centre + r_in).astype(z.dtype)
    zl_out = (centre - r_out).astype(z.dtype)
    zh_out = (centre + r_out).astype(z.dtype)
    inner = (z > zl_in[:, None]) & (z < zh_in[:, None])
    w_in = np.multiply(w, inner).sum(axis=-1, dtype=np.float64)
    n_in = np.count_nonzero(inner, axis=-1)
    band_mask = (z >= zl_out[:, None]) & (z <= zh_out[:, None]) & ~inner & (z > -np.inf)
    band = _band_values(z, band_mask)

    def score(x: Array) -> Array:
        return np.abs((x.astype(np.float64) - m.astype(np.float64)) - c[:, None])

    s_in = np.maximum(score(zl_in[:, None]), score(zh_in[:, None]))[:, 0]
    s_out = np.minimum(score(zl_out[:, None]), score(zh_out[:, None]))[:, 0]
    s_out = np.where(np.isneginf(zl_out) & np.isposinf(zh_out), np.inf, s_out)
    sc = score(band)  # inf for the -inf padding
    order = np.argsort(sc, axis=-1)
    sc = np.take_along_axis(sc, order, axis=-1)
    vals = np.take_along_axis(band, order, axis=-1)
    p = np.exp(vals.astype(np.float64) - m.astype(np.float64)) / big_w[:, None]
    run = w_in[:, None] / big_w[:, None] + np.cumsum(p, axis=-1)
    count = np.count_nonzero(np.isfinite(sc), axis=-1)
    j = np.count_nonzero(run < mass[:, None], axis=-1)  # crossing index in the band
    inside = w_in / big_w >= mass
    side = np.where(inside, -1, np.where(j >= count, 1, 0))
    # The checks of every row at once (a row failing any stays not ok).
    r = np.arange(rows)
    width = sc.shape[1]
    jj = np.minimum(j, width - 1)
    at = sc[r, jj]
    # Scores move by at most e_c with c, plus the float64 rounding of |d - c|.
    tol = 2.0 * e_c + 64.0 * 2.0**-53 * (at + np.abs(c) + 1.0)
    listed = np.arange(width) < count[:, None]
    group = vals == vals[r, jj][:, None]
    with np.errstate(invalid="ignore"):  # inf - inf where no crossing: not ok below
        near = (np.abs(sc - at[:, None]) <= tol[:, None]) & listed
        # Another score within rounding of the cut: the plain order decides.
        clean = ~(near & ~group).any(axis=-1) & (at - tol > s_in)
        # A token outside the band could rank before the cut.
        clean &= at + tol < s_out
    first = np.count_nonzero(sc < at[:, None], axis=-1)
    last = np.count_nonzero(sc <= at[:, None], axis=-1) - 1
    before = np.where(first > 0, run[r, np.maximum(first - 1, 0)], w_in / big_w)
    after = run[r, np.clip(last, 0, width - 1)]
    ok = (
        (j < count)
        & clean
        & (before < mass - delta)
        & (after >= mass + delta)
        & (n_in + last + 1 >= min_keep)
    )
    kept = np.arange(width) <= last[:, None]
    k_min = np.where(kept, vals, np.inf).min(axis=-1).astype(np.float64)
    k_max = np.where(kept, vals, -np.inf).max(axis=-1).astype(np.float64)
    edge_lo = np.nextafter(zl_in, z.dtype.type(np.inf)).astype(np.float64)
    edge_hi = np.nextafter(zh_in, z.dtype.type(-np.inf)).astype(np.float64)
    empty = n_in == 0
    lo = np.where(ok, np.where(empty, k_min, np.minimum(k_min, edge_lo)), np.inf)
    hi = np.where(ok, np.where(empty, k_max, np.maximum(k_max, edge_hi)), -np.inf)
    return lo, hi, ok, side


def _next_band(r_in: Array, r_out: Array, side: Array) -> tuple[Array, Array]:
    """The radii of the next band after a miss: ``_GROW`` widths towards the crossing.

    Beyond the band (``side`` +1): the old band joins the inner set; inside
    the inner set (-1): the band moves in; other failures: both edges move out.

    Examples
    --------
    >>> _next_band(np.array([1.0, 1.0, 1.0]), np.array([2.0, 2.0, 2.0]), np.array([1, -1, 0]))
    (array([2., 0., 0.]), array([3., 1., 3.]))
    """
    width = np.maximum(r_out - r_in, _MIN_WIDTH * (r_in + 1.0))
    new_in = np.where(side > 0, r_out, np.maximum(r_in - np.where(side < 0, _GROW, 1.0) * width, 0))
    new_out = np.where(side < 0, r_in, r_out + np.where(side > 0, _GROW, 1.0) * width)
    return new_in, new_out


def _radii(
    z: Array, w: Array, heavy: Array, m: Array, c: Array, big_w: Array, mass: Array
) -> tuple[Array, Array]:
    """Radii around ``max + c`` a little inside and outside the estimated crossing.

    The mass within a radius is estimated from the heavy tokens, exactly, plus
    a strided subsample of the light ones, each counted ``stride`` times.
    """
    rows, vocab = z.shape
    stride = max(1, vocab // _SUBSAMPLE)
    sub = z[:, ::stride]
    light = ~heavy[:, ::stride]
    # The heavy tokens (packed, -inf padding), then the subsample: the order
    # does not matter, the entries are ranked by score below.
    h_vals, h_w = _pack_rows(z, heavy, w)
    vals = np.concatenate([h_vals.astype(np.float64), sub], axis=1)
    mw = np.concatenate([h_w, w[:, ::stride] * light * stride], axis=1)
    width = vals.shape[1]
    sc = np.abs((vals - m) - c[:, None])  # inf for the padding
    order = np.argsort(sc, axis=-1)
    sc = np.take_along_axis(sc, order, axis=-1)
    est = np.cumsum(np.take_along_axis(mw, order, axis=-1), axis=-1) / big_w[:, None]
    n_pts = np.count_nonzero(np.isfinite(sc), axis=-1)
    at = np.count_nonzero(est < mass[:, None], axis=-1)
    spread = (_SLACK + _SIGMAS * np.sqrt(np.minimum(at, n_pts - at).clip(0) + 1)).astype(np.int64)
    r = np.arange(rows)
    i_in, i_out = at - spread, at + spread
    r_in = np.where(i_in >= 0, sc[r, np.clip(i_in, 0, width - 1)], 0.0)
    r_out = np.where(i_out < n_pts, sc[r, np.clip(i_out, 0, width - 1)], np.inf)
    r_in = np.where(np.isfinite(r_in), r_in, 0.0)
    return r_in, r_out


def _band_values(z: Array, band: Array) -> Array:
    """The band's values per row, padded with -inf (token order does not matter here)."""
    return _pack_rows(z, band)[0]


def _pack_rows(z: Array, mask: Array, extra: Array | None = None) -> tuple[Array, Array]:
    """``z``'s (and ``extra``'s) entries under ``mask``, packed to the left of each row.

    Padding: -inf in the values, 0 in the extra; one flat nonzero for the batch.

    Examples
    --------
    >>> _pack_rows(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
    ...            np.array([[True, False, True], [False, False, True]]))[0]
    array([[  1.,   3.],
           [  6., -inf]])
    """
    rows, vocab = z.shape
    flat = np.flatnonzero(mask)
    r = flat // max(vocab, 1)
    counts = np.bincount(r, minlength=rows)
    width = max(int(counts.max(initial=0)), 1)
    pos = np.arange(flat.size) - (np.cumsum(counts) - counts)[r]
    vals = np.full((rows, width), -np.inf, dtype=z.dtype)
    vals[r, pos] = z.reshape(-1)[flat]
    more = np.zeros((rows, width))
    if extra is not None:
        more[r, pos] = extra.reshape(-1)[flat]
    return vals, more
