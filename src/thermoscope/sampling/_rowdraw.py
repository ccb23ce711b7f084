"""Draws whose resolution and result depend on the row alone, never on the batch.

:func:`~thermoscope.sampling._draw.fixed_point_bits` sizes the fixed point so
that a whole batch's weights sum below 2**62; a batch-wide size would make a
row's draw depend on how many rows it was drawn with. Here the bits depend on
the vocabulary only (:func:`bits_for`), and the numpy draw, which keeps one
running sum over every row it is given, is given few enough rows at a time.
torch's draw keeps one running sum per row and takes the whole batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thermoscope._backend import is_torch
from thermoscope.sampling._draw import draw, draw_torch, fixed_point_bits

__all__ = ["bits_for", "draw_rows"]

_TOTAL_BITS = 62  # a running sum of integer weights stays below 2**62


def bits_for(vocab: int) -> int:
    """Fixed-point bits of a draw over ``vocab`` tokens: one row's weights sum below 2**62.

    Examples
    --------
    >>> bits_for(128256), bits_for(2**30)
    (40, 31)
    """
    return fixed_point_bits(1, vocab)


def draw_rows(weights: Any, u: Any, bits: int, keep: Any = None) -> Any:
    """:func:`~thermoscope.sampling._draw.draw` (numpy) or ``draw_torch``, row by row in effect.

    Positions along the last axis of ``weights`` (B, L); each row's result
    depends only on that row's weights and uniforms. ``keep`` (bool, (B, L),
    optional): draw from the weights where it is true, as if the others were 0.

    Examples
    --------
    >>> draw_rows(np.array([[1.0, 0.0, 1.0]]), np.array([[0.2, 0.7]]), 40)
    array([[0, 2]])
    """
    if is_torch(weights):
        return draw_torch(weights, u, bits, keep)
    if keep is not None:
        weights = np.where(keep, weights, 0.0).astype(weights.dtype, copy=False)
    rows, length = weights.shape
    # The numpy draw runs one sum over all the rows it is given: at most
    # 2**(62 - bits) / L rows at a time keep that sum below 2**62.
    chunk = max(1, (1 << (_TOTAL_BITS - bits)) // max(length, 1))
    if rows <= chunk:
        return draw(weights, u, bits)
    return np.concatenate(
        [draw(weights[r0 : r0 + chunk], u[r0 : r0 + chunk], bits) for r0 in range(0, rows, chunk)]
    )
