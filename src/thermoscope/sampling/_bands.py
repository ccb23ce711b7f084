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
"""

from __future__ import annotations

import numpy as np

from thermoscope._typing import Array
from thermoscope.sampling import _kernels as K

__all__ = ["band_search", "typical_keep"]

_CHUNK = 1 << 17  # elements per cache-sized slice of rows in the moment pass
_SUBSAMPLE = 2048  # subsample length per row for the radius estimate
_SLACK = 8  # subsample positions either side of the estimate, plus
_SIGMAS = 3.0  # this many square roots of the positions counted
_HEAVY = 4096  # tokens with at least this share of the row mass are taken exactly
_RETRIES = 3  # further bands tried on rows whose band missed the crossing
_GROW = 1.0  # each retry moves this many band widths towards the crossing
_MIN_WIDTH = 0.05  # the least width a retry assumes, relative to the inner radius + 1
_EXP_ULPS = 8.0  # allowance for the library exp's error, in units of the dtype's rounding


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
    dtype: np.dtype[np.floating], n: int, big_w: Array, s: Array, q: Array
) -> tuple[Array, Array, Array]:
    """``c'``, the bound ``e_c`` on ``|c' - c_plain|`` and the bound on relative mass errors.

    Each weight carries a relative error of at most ``u (|d| + 1) + exp_err``
    (``d`` rounded in ``dtype``, then the library's exp; float64 here), each
    ``w d`` one ``u`` more; float64 sums of ``n`` non-negative terms add at
    most ``n u64`` relative. The plain kernel's float64 ``log Z`` and entropy
    are within ``(n + 10) u64`` relative of theirs (sums of non-negative
    terms), which the last term covers with room to spare.
    """
    u = float(np.finfo(dtype).eps) / 2
    u64 = 2.0**-53
    exp_err = _EXP_ULPS * u
    c = s / big_w
    sw = -s / big_w  # E|d| (d <= 0)
    qw = q / big_w  # E d**2
    rel_w = u * sw + u + exp_err + n * u64  # |W' - W| / W
    err_s = u * qw + (3 * u + exp_err + n * u64) * sw  # |S' - S| / W
    lse = np.log(big_w)
    plain = 8.0 * (n + 10) * u64 * (np.abs(lse) + sw + 1.0)
    e_c = 2.0 * ((err_s + np.abs(c) * rel_w) / (1.0 - rel_w) + plain) + 1e-300
    delta = 2.0 * (rel_w + u * (sw + 1.0) + exp_err + u) + plain
    return c, e_c, delta


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
    lo, hi = np.full(rows, np.inf), np.full(rows, -np.inf)
    ok = np.zeros(rows, dtype=bool)
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
    for r in range(rows):
        jr = int(j[r])
        if jr >= count[r]:
            continue
        at = sc[r, jr]
        # Scores move by at most e_c with c, plus the float64 rounding of |d - c|.
        tol = 2.0 * e_c[r] + 64.0 * 2.0**-53 * (at + abs(c[r]) + 1.0)
        near = np.abs(sc[r, : count[r]] - at) <= tol
        group = vals[r, : count[r]] == vals[r, jr]
        if not np.array_equal(near, near & group) or at - tol <= s_in[r]:
            continue  # another score within rounding of the cut: the plain order decides
        if at + tol >= s_out[r]:
            continue  # a token outside the band could rank before the cut
        idx = np.flatnonzero(group)
        first, last = int(idx[0]), int(idx[-1])
        before = w_in[r] / big_w[r] if first == 0 else run[r, first - 1]
        if not (before < mass[r] - delta[r] and run[r, last] >= mass[r] + delta[r]):
            continue
        if n_in[r] + last + 1 < min_keep:
            continue
        kept = vals[r, : last + 1]
        lo[r] = min(float(kept.min()), float(np.nextafter(zl_in[r], np.inf)))
        hi[r] = max(float(kept.max()), float(np.nextafter(zh_in[r], -np.inf)))
        if n_in[r] == 0:
            lo[r], hi[r] = float(kept.min()), float(kept.max())
        ok[r] = True
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
    cols = [np.flatnonzero(row) for row in heavy]
    width = max(c.size for c in cols) + sub.shape[1]
    vals = np.full((rows, width), -np.inf)
    mw = np.zeros((rows, width))
    for i, col in enumerate(cols):
        n = col.size
        vals[i, :n] = z[i, col]
        mw[i, :n] = w[i, col]
        vals[i, n : n + sub.shape[1]] = sub[i]
        mw[i, n : n + sub.shape[1]] = w[i, ::stride] * light[i] * stride
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
    cols = [np.flatnonzero(row) for row in band]
    width = max(max((c.size for c in cols), default=0), 1)
    out = np.full((z.shape[0], width), -np.inf, dtype=z.dtype)
    for i, col in enumerate(cols):
        np.take(z[i], col, out=out[i, : col.size])
    return out
