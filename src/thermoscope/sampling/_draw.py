"""One inverse-CDF draw routine, shared by the plain chain and the fused path.

Weights are turned into integers (fixed point, ``bits`` fractional bits of the
top token's weight) before they are accumulated. Integer sums are exact, so
the drawn token depends only on the kept tokens' weights in ascending token-id
order and on the uniform numbers, never on how many removed (zero-weight)
tokens sit between them or on the summation order. That is why the plain
chain, which sees the whole vocabulary, and the fused path, which sees a
compacted candidate list, draw the same tokens from the same seed.

The price is a resolution of ``2**-bits`` relative to the most likely token
(about 1e-12 for ``bits = 40``): a kept token whose probability is below that
fraction of the top token's is never drawn.

Two-level search
----------------
The token whose interval ``[cum_before, cum_before + int_weight)`` contains the
integer target is found in two steps: exact integer sums of blocks of
``_BLOCK`` consecutive tokens (a few rows at a time, in floating point where
every operation is exact, so no int64 copy of the batch is ever made), a
running sum over the blocks to pick the block, then a running sum inside the
chosen block only. Integer addition is associative, so this is the same token
as one running sum over the row.

:func:`draw_torch` is the same draw on torch tensors, on the tensors' device:
the same two levels with one running sum per row (block sums in float64
column slices, no int64 copy of the batch; with many draws per row, one
int64 running sum over the row instead). Both take the same fixed-point
integers, totals, targets and "count of running sums at or below the
target", so they return the same positions for the same weights and uniforms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from thermoscope._typing import Array

if TYPE_CHECKING:
    import torch


__all__ = ["draw", "draw_torch", "fixed_point_bits"]

_BLOCK = 512
_CHUNK = 1 << 18  # elements scaled at a time (about 1 MB, stays in cache)


def fixed_point_bits(batch: int, vocab: int) -> int:
    """Fractional bits such that a whole batch of weights sums below 2**62."""
    return int(min(40, 62 - int(np.ceil(np.log2(batch * vocab + 1)))))


def _block_sums(weights: Array, scale: Any, block: int, blocks: int) -> Array:
    """Exact per-block sums of ``int64(weights * scale)``, shape (B, blocks).

    Computed in floating point without an int64 copy: ``weights * scale`` is
    exact (a power of two), ``trunc`` of it is exactly the integer ``astype``
    would give, and a block's partial sums are integers below
    ``block * 2**bits <= 2**53``, so every float64 addition is exact too.
    """
    rows, length = weights.shape
    padded = blocks * block
    step = max(1, _CHUNK // padded)
    scaled = np.zeros((min(step, rows), padded), dtype=weights.dtype)  # tail stays 0
    out = np.empty((rows, blocks), dtype=np.float64)
    for r0 in range(0, rows, step):
        k = min(step, rows - r0)
        part = scaled[:k, :length]
        np.multiply(weights[r0 : r0 + k], scale, out=part)
        np.trunc(part, out=part)
        np.sum(
            scaled[:k].reshape(k, blocks, block), axis=-1, dtype=np.float64, out=out[r0 : r0 + k]
        )
    return out.astype(np.int64)


def draw(weights: Array, u: Array, bits: int) -> Array:
    """Column index per draw: the token whose cumulative interval contains ``u``.

    Parameters
    ----------
    weights : ndarray, shape (B, L)
        Non-negative weights in ascending token-id order, each row's largest
        equal to 1 (``exp(z - max)``); zero for removed tokens.
    u : ndarray, shape (B, n)
        Uniform numbers in [0, 1).
    bits : int
        Fixed-point resolution, from :func:`fixed_point_bits`.

    Returns
    -------
    ndarray of int64, shape (B, n)
        Positions along the last axis of ``weights``; never a zero-weight one.

    Notes
    -----
    Memory is O(B L + B n) whatever ``n``: with many draws per row
    (``n * block >= L``) the second level would gather more than the row, so
    one exact running sum over the row serves every draw instead, searched
    ``_DRAWS`` draws at a time. Both ways count the running sums at or below
    the target, so they give the same positions.

    Examples
    --------
    >>> w = np.array([[0.5, 0.0, 1.0], [1.0, 0.25, 0.0]])
    >>> draw(w, np.array([[0.1, 0.4, 0.9], [0.5, 0.8, 0.99]]), 40).tolist()
    [[0, 2, 2], [0, 1, 1]]
    """
    rows, length = weights.shape
    n = u.shape[1]
    scale = weights.dtype.type(2.0**bits)
    block = min(_BLOCK, length, 2 ** max(0, 53 - bits))  # block sums stay exact in float64
    blocks = -(-length // block)
    # Level 1: one exact running sum over every row's block sums (flattened, so
    # a single searchsorted serves every row: row r owns [starts[r], ends[r])).
    running = np.cumsum(_block_sums(weights, scale, block, blocks).ravel())
    ends = running[blocks - 1 :: blocks]
    starts = np.concatenate(([0], ends[:-1]))
    totals = ends - starts
    if n * block >= length:
        return _draw_many(weights, u, scale, starts, totals)
    offset = np.floor(u * totals[:, None].astype(np.float64)).astype(np.int64)
    target = starts[:, None] + np.minimum(offset, totals[:, None] - 1)
    flat_block = np.searchsorted(running, target, side="right")  # (B, n)
    before = np.where(flat_block > 0, running[np.maximum(flat_block - 1, 0)], 0)
    row = np.arange(rows)[:, None]
    blk = flat_block - row * blocks
    # Level 2: the running sum inside the chosen block only.
    cols = (blk * block)[..., None] + np.arange(block)
    inside = cols < length
    vals = weights[row[..., None], np.minimum(cols, length - 1)]
    ints = np.where(inside, (vals * scale).astype(np.int64), 0)
    cum = np.cumsum(ints, axis=-1)
    within = np.count_nonzero(cum <= (target - before)[..., None], axis=-1)
    picked: Array = blk * block + within
    return picked


_DRAWS = 1 << 16  # draws searched at a time by _draw_many (bounded temporaries)


def _draw_many(weights: Array, u: Array, scale: Any, starts: Array, totals: Array) -> Array:
    """:func:`draw` with many draws per row: one running sum over a few rows at a time.

    The rows' fixed-point integers (the ones the block sums add up) get one
    flattened running sum, ``_CHUNK`` elements at a time; each target, the
    row's start plus ``floor(u * total)`` as in the two-level search, is
    searched ``_DRAWS`` draws at a time, so no temporary grows with ``n``.
    """
    rows, length = weights.shape
    n = u.shape[1]
    out = np.empty((rows, n), dtype=np.int64)
    step = max(1, _CHUNK // max(length, 1))
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        cum = np.cumsum((weights[r0:r1] * scale).astype(np.int64).ravel())
        # Row r's running sums start at starts[r] - starts[r0] in this slice.
        base = (starts[r0:r1] - starts[r0])[:, None]
        first = (np.arange(r1 - r0) * length)[:, None]
        total = totals[r0:r1, None]
        for d0 in range(0, n, _DRAWS):
            d1 = min(n, d0 + _DRAWS)
            offset = np.floor(u[r0:r1, d0:d1] * total.astype(np.float64)).astype(np.int64)
            target = base + np.minimum(offset, total - 1)
            out[r0:r1, d0:d1] = np.searchsorted(cum, target, side="right") - first
    return out


_SLICE_BLOCKS = 16  # blocks per column slice of draw_torch's block sums on CPU


def _block_sums_torch(
    weights: torch.Tensor, keep: torch.Tensor | None, scale: float, block: int
) -> torch.Tensor:
    """:func:`_block_sums` on torch: int64 sums of ``block`` columns, shape (B, ceil(L / block)).

    Widened to float64 (exact), scaled by a power of two (exact), truncated
    (the integer an int64 cast gives) and summed in float64, exact while
    ``block * scale <= 2**53``. On CPU the columns go in slices of
    ``_SLICE_BLOCKS`` blocks, so the float64 copy stays in cache. ``keep``
    (or None) zeroes the weights where it is false.
    """
    import torch

    rows, length = weights.shape
    blocks = -(-length // block)
    out = torch.empty((rows, blocks), dtype=torch.float64, device=weights.device)
    step = _SLICE_BLOCKS * block if weights.device.type == "cpu" else blocks * block
    for c0 in range(0, length, step):
        c1 = min(c0 + step, length)
        part = weights[:, c0:c1].to(torch.float64, copy=True)  # scaled in place below
        if keep is not None:
            part.mul_(keep[:, c0:c1])  # w * 1 = w, w * 0 = 0: finite weights
        # floor is trunc for non-negative numbers (and vectorised, where trunc is not)
        part.mul_(scale).floor_()
        full, b0 = (c1 - c0) // block, c0 // block
        if full:
            out[:, b0 : b0 + full] = part[:, : full * block].reshape(rows, full, block).sum(dim=-1)
        if full * block < c1 - c0:  # the last, shorter block
            out[:, b0 + full] = part[:, full * block :].sum(dim=-1)
    return out.to(torch.int64)


def _target(totals: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Targets (B, n) in ``[0, total)``: ``u * total`` in float64, floored, as in :func:`draw`."""
    import torch

    offset = torch.floor(u.to(torch.float64) * totals[:, None].to(torch.float64))
    # contiguous: searchsorted warns otherwise
    return torch.minimum(offset.to(torch.int64), totals[:, None] - 1).contiguous()


def draw_torch(
    weights: torch.Tensor, u: torch.Tensor, bits: int, keep: torch.Tensor | None = None
) -> torch.Tensor:
    """:func:`draw` on torch tensors: the same positions, computed on their device.

    The same two-level search as :func:`draw`, with one running sum per row:
    exact block sums (:func:`_block_sums_torch`), an int64 running sum over
    a row's blocks and a ``searchsorted`` to pick the block, then an int64
    running sum inside the chosen block only. No int64 copy of the batch is
    made. Integer addition is associative, so the position is the one a
    single running sum over the row gives.

    Parameters
    ----------
    weights : torch.Tensor of float, shape (B, L)
        Non-negative weights in ascending token-id order, each row's largest
        equal to 1; zero for removed tokens.
    u : torch.Tensor of float64, shape (B, n)
        Uniform numbers in [0, 1), on the same device.
    bits : int
        Fixed-point resolution, from :func:`fixed_point_bits`.
    keep : torch.Tensor of bool, shape (B, L), optional
        Draw from ``torch.where(keep, weights, 0)`` without making that copy.

    Returns
    -------
    torch.Tensor of int64, shape (B, n)
        Positions along the last axis of ``weights``, equal to what
        :func:`draw` returns for the same numbers; never a zero-weight one.

    Examples
    --------
    >>> import numpy as np, torch
    >>> w = np.array([[0.5, 0.0, 1.0], [1.0, 0.25, 0.0]])
    >>> u = np.array([[0.1, 0.4, 0.9], [0.5, 0.8, 0.99]])
    >>> draw_torch(torch.from_numpy(w), torch.from_numpy(u), 40).tolist()
    [[0, 2, 2], [0, 1, 1]]
    >>> draw(w, u, 40).tolist()
    [[0, 2, 2], [0, 1, 1]]
    """
    import torch

    rows, length = weights.shape
    n = u.shape[1]
    scale = 2.0**bits
    # Every weight is widened to float64 before it is scaled: exact from any
    # float dtype, and the product truncates to the integer numpy's cast gives.
    block = min(_BLOCK, length, 2 ** max(0, 53 - bits))  # block sums stay exact in float64
    if n * block >= length:
        # Many draws per row: level 2 would gather more than the row; one
        # running sum over the whole row gives the same positions.
        ints = (weights.to(torch.float64) * scale).to(torch.int64)
        if keep is not None:
            ints = torch.where(keep, ints, 0)
        return torch.searchsorted(torch.cumsum(ints, dim=-1), _target(ints.sum(-1), u), right=True)
    # Level 1: the block holding the target, from one running sum over a row's blocks.
    running = torch.cumsum(_block_sums_torch(weights, keep, scale, block), dim=-1)
    target = _target(running[:, -1], u)
    blk = torch.searchsorted(running, target, right=True)  # (B, n)
    before = torch.where(blk > 0, running.gather(1, (blk - 1).clamp(min=0)), 0)
    # Level 2: the running sum inside the chosen block only.
    cols = (blk * block)[..., None] + torch.arange(block, device=weights.device)  # (B, n, block)
    inside = cols < length
    flat = cols.clamp(max=length - 1).reshape(rows, n * block)
    ints = (weights.gather(1, flat).to(torch.float64) * scale).to(torch.int64).reshape(inside.shape)
    if keep is not None:
        inside &= keep.gather(1, flat).reshape(inside.shape)
    cum = torch.cumsum(torch.where(inside, ints, 0), dim=-1)
    within = (cum <= (target - before)[..., None]).sum(dim=-1)
    picked: torch.Tensor = blk * block + within
    return picked
