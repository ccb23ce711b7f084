"""Turn user logits into clean (B, V) rows and per-row parameters into (B,) arrays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from thermoscope._validation import as_float_array, check_logits, per_row

Array = np.ndarray[Any, np.dtype[Any]]

__all__ = ["Rows", "prepare", "rows_param"]


class Rows:
    """Validated logits as 2-D rows, with what is needed to give results back.

    ``z`` is (B, V) in the compute dtype (float16 input computes in float32);
    ``batch_shape`` is the input shape without its last axis; ``back``
    converts a numpy result to the input's kind (numpy, list -> numpy, torch);
    ``row_max`` is ``z.max(axis=-1)``, shape (B,), computed once by validation.
    """

    __slots__ = ("back", "batch_shape", "row_max", "z")

    def __init__(
        self,
        z: Array,
        batch_shape: tuple[int, ...],
        back: Callable[[Array], Any],
        row_max: Array | None = None,
    ):
        self.z = z
        self.batch_shape = batch_shape
        self.back = back
        self.row_max = z.max(axis=-1) if row_max is None else row_max

    def restore(self, result: Array) -> Any:
        """Reshape a (B, V) or (B, n) result to the input's batch shape and kind."""
        return self.back(result.reshape(self.batch_shape + result.shape[1:]))


def prepare(logits: Any, name: str = "logits") -> Rows:
    """Validate ``logits`` (numeric, non-empty, no NaN / +inf / all -inf row) into rows."""
    arr, back = as_float_array(logits, name, min_ndim=1)
    if arr.shape[-1] == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {arr.shape}.")
    z = arr.reshape(-1, arr.shape[-1])
    # NaN, +inf and an all -inf row each make that row's maximum non-finite: one
    # reduction clears valid input, and its maxima are reused by the fused path.
    row_max = z.max(axis=-1)
    if not np.isfinite(row_max).all():
        check_logits(arr, name)  # locates the offending entry and raises
    return Rows(z, arr.shape[:-1], back, row_max)


def rows_param(value: float | Array, batch_shape: tuple[int, ...], name: str) -> Array:
    """A scalar or per-row parameter as a flat (B,) array matching the rows.

    Examples
    --------
    >>> rows_param(0.5, (2, 1), "top_p")
    array([0.5, 0.5])
    >>> rows_param(np.array([3, 4]), (2,), "top_k")
    array([3, 4])
    """
    kind = type(value)
    if kind is float or kind is int:
        # Warpers store scalar parameters as Python numbers: this is the per-call
        # hot path, and np.full gives what asarray + broadcast + copy would
        # (same dtype, np.asarray(value).dtype) at a quarter of the cost.
        n = 1
        for size in batch_shape:
            n *= size
        return np.array((value,)) if n == 1 else np.full(n, value)
    arr = np.asarray(value)
    return np.ascontiguousarray(per_row(arr, batch_shape, name)).reshape(-1)
