"""Input checks of the policies: action values and pull counts as clean rows (runs, arms)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from thermoscope._arrays import to_numpy
from thermoscope._backend import is_torch
from thermoscope._typing import Array, FloatArray, IntArray
from thermoscope._validation import _show, as_float, as_float_array, check_integer, check_logits

__all__ = ["counts_like", "counts_rows", "host", "q_native", "q_rows", "single_int"]


def single_int(value: Any, name: str, minimum: int) -> int:
    """``value`` as one Python int >= ``minimum``; an array is a TypeError."""
    arr = check_integer(value, name, minimum)
    if arr.ndim != 0:
        raise TypeError(f"`{name}` must be a single integer >= {minimum}, got shape {arr.shape}.")
    return int(arr)


def host(x: Any, name: str) -> Any:
    """A torch tensor's values on the host, through the explicit boundary ``to_numpy``.

    For the functions that draw with a numpy Generator (their draws are host
    values by nature); anything else is returned as is.
    """
    return to_numpy(x, name)[0] if is_torch(x) else x


def q_native(q_values: Any, *, allow_masked: bool) -> tuple[Any, bool, Callable[[Any], Any]]:
    """``q_values`` as rows (B, K) of their own library and device, in the compute dtype;
    whether the input was 1-D; and the function casting results back to the input's dtype."""
    q, back = as_float(q_values, "q_values")
    if q.ndim > 2:
        raise ValueError(
            f"`q_values` must be 1-D (arms,) or 2-D (runs, arms), got shape {tuple(q.shape)}."
        )
    check_logits(q, "q_values")
    if not allow_masked:
        if is_torch(q):
            import torch

            masked = bool(torch.isneginf(q).any())
        else:
            masked = bool(np.isneginf(q).any())
        if masked:
            raise ValueError("`q_values` must be finite, got -inf.")
    return (q if q.ndim == 2 else q[None]), q.ndim == 1, back


def q_rows(q_values: Any, *, allow_masked: bool) -> tuple[FloatArray, bool]:
    """``q_values`` as float64 numpy rows (B, K) and whether the input was 1-D.

    For the draws, which run on the host: a tensor is read through ``to_numpy``
    (``as_float_array`` is that conversion plus the emptiness check).
    """
    q, _ = as_float_array(q_values, "q_values")
    rows, single, _ = q_native(q, allow_masked=allow_masked)
    return np.asarray(rows, dtype=np.float64), single


def counts_rows(counts: Any, shape: tuple[int, ...]) -> IntArray:
    """Pull counts as int64 numpy rows of ``shape`` (zeros when ``counts`` is None)."""
    if counts is None:
        return np.zeros(shape, dtype=np.int64)
    n: Array = np.atleast_2d(check_integer(counts, "counts", minimum=0))
    if n.shape != shape:
        raise ValueError(
            f"`counts` must have the shape of `q_values` {shape}, got shape {n.shape}."
        )
    return n


def counts_like(counts: Any, q: Any) -> Any:
    """Pull counts for the tensor rows ``q`` (B, K): an int64 tensor on ``q``'s device.

    A tensor is checked there (one boolean per check comes to the host);
    numpy counts are checked as numpy and copied over once.
    """
    import torch

    shape = tuple(q.shape)
    if not is_torch(counts):
        return torch.as_tensor(counts_rows(counts, shape), device=q.device)
    n = counts
    if n.dtype.is_floating_point and bool((torch.isfinite(n) & (n == n.round())).all()):
        n = n.to(torch.int64)
    if n.dtype.is_floating_point or n.is_complex() or n.dtype == torch.bool:
        raise TypeError(f"`counts` must be an integer >= 0, got {_show(counts)}.")
    if n.numel() == 0:
        raise ValueError(f"`counts` must not be empty, got shape {tuple(n.shape)}.")
    negative = n < 0
    if bool(negative.any()):
        raise ValueError(
            f"`counts` must be an integer >= 0, got {_show(n[negative].reshape(-1)[0])}."
        )
    n = n.to(device=q.device, dtype=torch.int64)
    n = n if n.ndim >= 2 else n.reshape(1, -1)
    if tuple(n.shape) != shape:
        raise ValueError(
            f"`counts` must have the shape of `q_values` {shape}, got shape {tuple(n.shape)}."
        )
    return n
