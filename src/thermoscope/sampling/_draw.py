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
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray[Any, np.dtype[Any]]

__all__ = ["draw", "fixed_point_bits"]


def fixed_point_bits(batch: int, vocab: int) -> int:
    """Fractional bits such that a whole batch of weights sums below 2**62."""
    return int(min(40, 62 - int(np.ceil(np.log2(batch * vocab + 1)))))


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
    """
    rows, length = weights.shape
    ints = (weights * weights.dtype.type(2.0**bits)).astype(np.int64)
    # One exact running sum over the flattened batch: row r's tokens occupy
    # the interval [starts[r], ends[r]) so a single searchsorted serves every row.
    running = np.cumsum(ints.ravel())
    ends = running[length - 1 :: length]
    starts = np.concatenate(([0], ends[:-1]))
    totals = ends - starts
    offset = np.floor(u * totals[:, None].astype(np.float64)).astype(np.int64)
    target = starts[:, None] + np.minimum(offset, totals[:, None] - 1)
    pos = np.searchsorted(running, target, side="right")
    return pos - (np.arange(rows) * length)[:, None]
