"""Typical sampling as the torch fused path's first cut: the head of largest tokens first.

The torch form of :func:`thermoscope.sampling._bands.head_keep` (see that
module's notes): one pass over the row gives ``W = sum w`` and
``S = sum w d`` (``d = z - max``, ``w = 2**(d log2 e)`` in the compute dtype,
each sum as ``_FOLD`` partial sums in that dtype, then float64), so
``c = S / W`` and its rounding bound; the top-k candidates of
:mod:`thermoscope.sampling._fused_torch` (every other token at most their
``edge``) are ranked by ``|d - c|`` and the crossing of ``typical_p`` is
certified there by the same checks. Rows it cannot certify take the plain
kernel (:func:`thermoscope.sampling._kernels_torch.typical_mask`). Two
booleans come back to the host per call (whether a row holds ``-inf``
entries, whether every row was certified).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from thermoscope._temperature import divide
from thermoscope.sampling import _kernels_torch as K
from thermoscope.sampling._bands import _D_MAX, _EXP_ULPS, _FOLD, fold_error
from thermoscope.sampling._compact_torch import _candidates, _order_by_id, compact_mask
from thermoscope.sampling._input import Rows, on_device, rows_param
from thermoscope.sampling.warpers import Temperature, Typical

__all__ = ["fast_moments", "head_keep", "typical_first", "typical_raw"]

_HEAD = 64  # largest tokens searched first (LM rows keep a handful)
_LOG2E = 1.0 / math.log(2.0)
_D_ULPS = 3.0  # roundings in the exponent d * log2(e): d, log2(e) in the dtype, the product
_CHUNK = 1 << 20  # elements per slice of rows in fast_moments (4 MB buffers: in L3)


def _fold_sum(x: Any) -> Any:
    """Row sums of same-sign ``x``: ``_FOLD`` partial sums in x's dtype, then float64."""
    rows, vocab = x.shape
    parts = vocab // _FOLD
    if parts < 2:
        return x.sum(dim=-1, dtype=torch.float64)
    main = parts * _FOLD
    folded = x[:, :main].reshape(rows, parts, _FOLD).sum(dim=1)
    total = folded.to(torch.float64).sum(dim=-1)
    if main < vocab:
        total = total + x[:, main:].sum(dim=-1, dtype=torch.float64)
    return total


def fast_moments(
    z: Any, m: Any, temperatures: Sequence[np.ndarray] = ()
) -> tuple[Any, Any, Any, float, Any]:
    """``W``, ``S``, a bound on ``Q``, the relative summation error and the row maxima (B, 1).

    As :func:`thermoscope.sampling._bands.fast_moments`. ``temperatures``:
    per-row temperatures (B,) applied first, a slice of rows at a time, by the
    temperature kernel itself (:func:`thermoscope._temperature.divide`), so
    the tempered rows are never written out; ``m``: the tempered row maxima
    (B, 1), returned last (the kernel on the maxima column, see
    :func:`typical_raw`).

    Examples
    --------
    >>> import torch
    >>> z = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    >>> big_w, s, q, err, m = fast_moments(z, z.amax(dim=-1, keepdim=True))
    >>> round(float(big_w[0]), 5), err < 1e-6
    (2.0, True)
    """
    rows, vocab = z.shape
    # On CPU a cache-sized slice of rows at a time: the passes below then
    # read and write cache, not memory.
    step = rows if z.device.type != "cpu" else max(1, _CHUNK // max(vocab, 1))
    big_w = torch.empty(rows, dtype=torch.float64, device=z.device)
    s = torch.empty_like(big_w)
    d = torch.empty((min(step, rows), vocab), dtype=z.dtype, device=z.device)
    w = torch.empty_like(d)
    for r0 in range(0, rows, step):
        k = min(step, rows - r0)
        dk, wk = d[:k], w[:k]
        src = z[r0 : r0 + k]
        for t in temperatures:
            src = divide(src, t[r0 : r0 + k])
        torch.sub(src, m[r0 : r0 + k], out=dk)
        # exp(d) as 2**(d log2 e): several times faster than torch's exp on
        # CPU; the product's two roundings are in the bounds (_D_ULPS).
        torch.exp2(torch.mul(dk, _LOG2E, out=wk), out=wk)
        big_w[r0 : r0 + k] = _fold_sum(wk)
        s[r0 : r0 + k] = _fold_sum(dk.mul_(wk))
    bad = torch.isnan(s)
    if bool(bad.any()):
        # A -inf entry: w = 0 times d = -inf. Clamped, its product is 0.
        sel = torch.nonzero(bad)[:, 0]
        src = z[sel]
        for t in temperatures:
            src = divide(src, t[sel.tolist()])
        dk = src - m[sel]
        wk = torch.exp2(dk * _LOG2E)
        s[sel] = _fold_sum(wk.mul_(dk.clamp_(min=torch.finfo(z.dtype).min)))
    q = _D_MAX * s.abs() * 1.01 + vocab * _D_MAX**2 * float(np.exp(-_D_MAX))
    return big_w, s, q, fold_error(_np_dtype(z.dtype), vocab), m


def _np_dtype(dtype: torch.dtype) -> np.dtype[np.floating]:
    return np.dtype(np.float64) if dtype == torch.float64 else np.dtype(np.float32)


def _bounds(
    dtype: np.dtype[np.floating], n: int, big_w: Any, s: Any, q: Any, acc: float
) -> tuple[Any, Any, Any]:
    """``c``, its bound ``e_c`` and the mass bound: ``_bands._bounds`` in torch operations.

    The exponent of each weight, ``d log2 e``, carries ``_D_ULPS`` roundings
    (``d``, the float32 ``log2 e`` and the product) where ``_bands`` has one.
    """
    u = float(np.finfo(dtype).eps) / 2
    du = _D_ULPS * u  # relative error of the exponent d log2 e
    u64 = 2.0**-53
    exp_err = _EXP_ULPS * u
    c = s / big_w
    sw = -c  # E|d| (d <= 0)
    qw = q / big_w
    rel_w = du * sw + u + exp_err + acc
    err_s = du * qw + (3 * u + exp_err + acc) * sw
    plain = 8.0 * (n + 10) * u64 * (big_w.log().abs() + sw + 1.0)
    e_c = 2.0 * ((err_s + c.abs() * rel_w) / (1.0 - rel_w) + plain) + 1e-300
    delta = 2.0 * (rel_w + u * (sw + 1.0) + exp_err + u) + plain
    return c, e_c, delta


def head_keep(
    vals: Any,
    edge: Any,
    m: Any,
    mass: Any,
    min_keep: int,
    moments: tuple[Any, Any, Any, float, Any],
    vocab: int,
) -> tuple[Any, Any]:
    """The typical cut among candidates ``vals`` (B, C) and the rows it certifies (B,).

    ``vals``: candidate values (-inf where not a candidate); every other
    token of the row is at most ``edge`` (B,), -inf when there is none.
    ``m``: row maxima (B, 1); ``moments``: :func:`fast_moments` on the whole
    rows of length ``vocab``. Rows not certified keep nothing here.

    Examples
    --------
    >>> import torch
    >>> z = torch.log(torch.tensor([[0.4, 0.2, 0.2, 0.2]], dtype=torch.float64))
    >>> m = z.amax(dim=-1, keepdim=True)
    >>> keep, ok = head_keep(z, torch.full((1,), float("-inf"), dtype=torch.float64), m,
    ...                      torch.tensor([0.5], dtype=torch.float64), 1, fast_moments(z, m), 4)
    >>> keep.tolist(), ok.tolist()
    ([[False, True, True, True]], [True])
    """
    width = vals.shape[1]
    big_w, s, q, err, _ = moments
    c, e_c, delta = _bounds(_np_dtype(vals.dtype), vocab, big_w, s, q, err)
    m64 = m.to(torch.float64)
    d = vals.to(torch.float64) - m64
    sc = (d - c[:, None]).abs()
    sc = torch.where(torch.isnan(sc), float("inf"), sc)
    sc, order = torch.sort(sc, dim=-1)
    ds = d.gather(1, order)
    run = torch.cumsum(torch.exp(ds) / big_w[:, None], dim=-1)
    count = torch.isfinite(sc).sum(dim=-1)
    j = (run < mass[:, None]).sum(dim=-1)
    jj = j.clamp(max=width - 1)
    at = sc.gather(1, jj[:, None])[:, 0]
    tol = 2.0 * e_c + 64.0 * 2.0**-53 * (at + c.abs() + 1.0)
    same = ds == ds.gather(1, jj[:, None])
    near = (sc - at[:, None]).abs() <= tol[:, None]
    clean = ~(near & ~same).any(dim=-1)
    s_out = torch.where(
        torch.isneginf(edge), float("inf"), (c - (edge.to(torch.float64) - m64[:, 0])).clamp(min=0)
    )
    first = (sc < at[:, None]).sum(dim=-1)
    last = (sc <= at[:, None]).sum(dim=-1) - 1
    zero = torch.zeros((), dtype=torch.float64, device=vals.device)
    before = torch.where(first > 0, run.gather(1, (first - 1).clamp(min=0)[:, None])[:, 0], zero)
    after = run.gather(1, last.clamp(0, width - 1)[:, None])[:, 0]
    ok = (
        (j < count)
        & clean
        & (at + tol < s_out)
        & (before < mass - delta)
        & (after >= mass + delta)
        & (last + 1 >= min_keep)
    )
    ranks = torch.arange(width, device=vals.device)
    in_order = ranks <= torch.where(ok, last, -1)[:, None]
    keep = torch.zeros_like(in_order).scatter_(1, order, in_order)
    return keep, ok


def typical_first(z: Any, m: Any, mass: np.ndarray, min_keep: int) -> Any:
    """Typical as the torch fused path's first cut on tempered rows, compacted by token id.

    ``m``: the row maxima (B, 1); ``mass``: ``typical_p`` per row (numpy, (B,)).
    """

    vocab = z.shape[1]
    ids, vals, edge = _candidates(z, min(_HEAD, vocab))
    return _finish(z, vocab, mass, min_keep, fast_moments(z, m), ids, vals, edge)


def _finish(
    z: Any,
    vocab: int,
    mass: np.ndarray,
    min_keep: int,
    moments: tuple[Any, Any, Any, float, Any],
    ids: Any,
    vals: Any,
    edge: Any,
) -> Any:
    """The head's cut from the candidates (of rows of length ``vocab``), compacted.

    When some row needs the plain kernel: None, or with ``z`` (the tempered
    rows) given, those rows take the plain kernel.
    """

    if vals.shape[1] > _HEAD:
        # The candidates are whole groups: keep their _HEAD largest, the next
        # one joins the edge (every token left out is at most the new edge).
        top, at = torch.topk(vals, _HEAD + 1, dim=-1)
        edge = torch.maximum(edge, top[:, _HEAD])
        vals, ids = top[:, :_HEAD], ids.gather(1, at[:, :_HEAD])
    pm = on_device(mass, vals)
    m = moments[4]
    keep, ok = head_keep(vals, edge, m, pm, min_keep, moments, vocab)
    if bool(ok.all()):
        return _order_by_id(vals, ids, keep, vocab)
    if z is None:
        return None
    full = torch.zeros(z.shape, dtype=torch.bool, device=z.device)
    full.scatter_(1, ids, keep)
    bad = torch.nonzero(~ok)[:, 0]
    full[bad] = K.typical_mask(z[bad], pm[bad], min_keep)
    return compact_mask(z, full)


def typical_raw(chain: Any, rows: Rows) -> Any:
    """Typical as the first cut, the leading temperatures folded in; None: not decided here.

    The moments are taken on the raw rows tempered a slice at a time by the
    temperature kernel (so the tempered rows are never written out); the head
    is the raw rows' top-k candidates, their values and edge tempered by the
    same kernel (monotone: the same tokens, every token left out at most the
    tempered edge; a row the kernel shifts is shifted alike, as in the fused
    top-k). None when the head does not decide every row: the caller then
    tempers the rows and takes :func:`typical_first`.
    """

    first = chain.steps[chain.first_cut]
    assert isinstance(first, Typical)
    z = rows.z
    vocab = z.shape[1]
    temps = []
    for w in chain.steps[: chain.first_cut]:
        assert isinstance(w, Temperature)  # plan() admits only these before the cut
        temps.append(rows_param(w.temperature, rows.batch_shape, "temperature"))
    m = rows.row_max[:, None]
    for t in temps:
        m = divide(m, t)  # the kernel shifts a row here exactly when it shifts it in z
    moments = fast_moments(z, m, temps)
    ids, vals, edge = _candidates(z, min(_HEAD, vocab))
    both = torch.cat([vals, edge[:, None]], dim=1)
    for t in temps:
        both = divide(both, t)
    mass = rows_param(first.typical_p, rows.batch_shape, "typical_p")
    keep = first.min_tokens_to_keep
    return _finish(None, vocab, mass, keep, moments, ids, both[:, :-1], both[:, -1])
