"""Log-probabilities and logits of drawn tokens, and the top entries of a row, on either backend.

The four modes are vLLM's ``logprobs_mode`` values:

- ``raw_logprobs``: ``log_softmax`` of the logits as given, before any warper;
- ``raw_logits``: the logits as given;
- ``processed_logprobs``: ``log_softmax`` of the warped logits, the
  distribution the token was drawn from (``-inf`` for removed tokens);
- ``processed_logits``: the warped logits.

Log-probabilities are computed in float64 from the compute-dtype values
(``v - max - log(sum(exp(v - max)))``, the temperature kernel's row weights)
and returned in the compute dtype, so float32 results are the float64 ones
correctly rounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from thermoscope._backend import is_torch
from thermoscope._temperature import row_weights

__all__ = ["MODES", "SampleResult", "gather", "log_shift", "top_entries"]

#: The values :meth:`~thermoscope.sampling.Sampler.sample_with_logprobs` can report.
MODES: tuple[str, ...] = ("raw_logprobs", "raw_logits", "processed_logprobs", "processed_logits")


@dataclass(frozen=True, eq=False)
class SampleResult:
    """Drawn tokens with their log-probabilities (or logits) and the row's top entries.

    Returned by :meth:`~thermoscope.sampling.Sampler.sample_with_logprobs`;
    every array is of the logits' kind (numpy, or torch on their device).

    Attributes
    ----------
    tokens : int64, shape (..., n)
        The drawn token ids, as :meth:`~thermoscope.sampling.Sampler.sample`
        returns them for the same arguments.
    logprobs : float, shape (..., n)
        The ``mode`` value of each drawn token (its log-probability or logit).
    top_ids : int64, shape (..., top)
        The ``top`` tokens with the largest ``mode`` values, largest first;
        equal values in ascending token id. Past the last finite value (a
        processed mode keeping fewer than ``top`` tokens, or masked logits)
        the id is -1 and the value ``-inf``.
    top_values : float, shape (..., top)
        Their ``mode`` values.
    mode : str
        One of :data:`MODES`.

    Notes
    -----
    Values are in the compute dtype of the logits: float32 for float16,
    bfloat16 and float32 logits, float64 for float64 and integer logits.
    """

    tokens: Any
    logprobs: Any
    top_ids: Any
    top_values: Any
    mode: str


def log_shift(vals: Any) -> Any:
    """Per row, ``max + log(sum(exp(vals - max)))`` in float64, shape (B, 1).

    ``vals - log_shift(vals)`` is the row's ``log_softmax``.

    Examples
    --------
    >>> float(log_shift(np.array([[0.0, 0.0, -np.inf]]))[0, 0])  # doctest: +ELLIPSIS
    0.693147...
    """
    if is_torch(vals):
        import torch

        w, m = row_weights(vals.to(torch.float64))
        return m + torch.log(w.sum(dim=-1, keepdim=True))
    w, m = row_weights(np.asarray(vals, dtype=np.float64))
    return m + np.log(w.sum(axis=-1, keepdims=True))


def gather(vals: Any, pos: Any) -> Any:
    """``vals[r, pos[r, j]]``, shape of ``pos``."""
    if is_torch(vals):
        return vals.gather(1, pos)
    return np.take_along_axis(vals, pos, axis=-1)


def top_entries(vals: Any, top: int) -> tuple[Any, Any]:
    """Positions and values of the ``top`` largest entries of each row of ``vals`` (B, W).

    Largest first; equal values in ascending position. Slots whose value is
    ``-inf`` (fewer finite entries than ``top``, or ``top > W``) get position
    -1 and value ``-inf``.

    Examples
    --------
    >>> pos, v = top_entries(np.array([[1.0, 3.0, 1.0, -np.inf]]), 4)
    >>> pos.tolist(), v.tolist()
    ([[1, 0, 2, -1]], [[3.0, 1.0, 1.0, -inf]])
    """
    if is_torch(vals):
        return _top_torch(vals, top)
    return _top_numpy(vals, top)


def _top_numpy(vals: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    rows, width = vals.shape
    t = min(top, width)
    if t == 0:
        pos = np.zeros((rows, 0), dtype=np.int64)
    elif t == width:
        pos = np.argsort(-vals, axis=-1, kind="stable")
    else:
        kth = -np.partition(-vals, t - 1, axis=-1)[:, t - 1 : t]  # the t-th largest value
        above = vals > kth
        # Ties at the t-th value: the smallest positions fill the remaining slots.
        need = t - above.sum(axis=-1, keepdims=True)
        tied = vals == kth
        chosen = above | (tied & (np.cumsum(tied, axis=-1) <= need))
        pos = np.nonzero(chosen)[1].reshape(rows, t)  # ascending positions
        order = np.argsort(-np.take_along_axis(vals, pos, axis=-1), axis=-1, kind="stable")
        pos = np.take_along_axis(pos, order, axis=-1)
    got = np.take_along_axis(vals, pos, axis=-1)
    pos = np.where(got > -np.inf, pos, -1)
    if t < top:
        pos = np.concatenate([pos, np.full((rows, top - t), -1, dtype=pos.dtype)], axis=1)
        got = np.concatenate([got, np.full((rows, top - t), -np.inf, dtype=got.dtype)], axis=1)
    return pos.astype(np.int64, copy=False), got


def _top_torch(vals: Any, top: int) -> tuple[Any, Any]:
    import torch

    rows, width = vals.shape
    t = min(top, width)
    got, pos = torch.topk(vals, t, dim=-1)  # largest first; ties in any order
    if 0 < t < width:
        # Ties at the t-th value: topk may pick any of them; the smallest
        # positions are the ones to report, in the slots after the strictly
        # larger values (all of which topk returned first).
        kth = got[:, -1:]
        col = torch.arange(width, device=vals.device)
        tie_key = torch.where(vals == kth, -col, -width - 1)
        first_ties = -torch.topk(tie_key, t, dim=-1).values  # smallest tied positions
        slot = torch.arange(t, device=vals.device)
        above = got > kth  # the strictly larger values come first in `got`
        n_above = above.sum(dim=-1, keepdim=True)
        tie_pos = first_ties.gather(1, (slot - n_above).clamp(min=0, max=t - 1))
        # n_above + need == t: the ties fill exactly the remaining slots.
        pos = torch.where(slot < n_above, pos, tie_pos)
        got = vals.gather(1, pos)
    if t > 0:
        # Equal values in ascending position: sort by position, then stably by value.
        pos, order = torch.sort(pos, dim=-1)
        got = got.gather(1, order)
        got, order = torch.sort(got, dim=-1, descending=True, stable=True)
        pos = pos.gather(1, order)
    pos = torch.where(got > float("-inf"), pos, -1)
    if t < top:
        pad = top - t
        pos = torch.cat([pos, pos.new_full((rows, pad), -1)], dim=1)
        got = torch.cat([got, got.new_full((rows, pad), float("-inf"))], dim=1)
    return pos, got
