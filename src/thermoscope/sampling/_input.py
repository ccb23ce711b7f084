"""Turn user logits into clean (B, V) rows and per-row parameters into (B,) arrays.

numpy input (and lists) gives numpy rows; a torch tensor gives torch rows on
its device, in its compute dtype (see :mod:`thermoscope._backend`), never
copied to the host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from thermoscope._backend import is_torch
from thermoscope._typing import Array
from thermoscope._validation import as_float, check_logits, per_row

__all__ = ["Rows", "on_device", "prepare", "rows_param"]


class Rows:
    """Validated logits as 2-D rows, with what is needed to give results back.

    ``z`` is (B, V) in the compute dtype (float16 input computes in float32),
    a numpy array or a torch tensor on the input's device; ``batch_shape`` is
    the input shape without its last axis; ``back`` converts a result to the
    input's kind and floating dtype; ``row_max`` is ``z.max(axis=-1)``, shape
    (B,), computed once by validation.
    """

    __slots__ = ("back", "batch_shape", "pending", "row_max", "source", "z")

    def __init__(
        self,
        z: Any,
        batch_shape: tuple[int, ...],
        back: Callable[[Any], Any],
        row_max: Any = None,
    ):
        self.z = z
        self.batch_shape = batch_shape
        self.back = back
        if row_max is None:
            row_max = z.amax(dim=-1) if is_torch(z) else z.max(axis=-1)
        self.row_max = row_max
        # Deferred torch validation: a device flag (true: bad logits) and the input.
        self.pending: Any = None
        self.source: Any = None

    def validate(self, *checks: tuple[Any, Callable[[], None]], name: str = "logits") -> None:
        """Raise for bad logits, then for the first failed ``(flag, raise_error)`` check.

        With torch rows prepared with ``check=False``, the logits' flag and the
        device flags of ``checks`` come to the host as one boolean: a single
        read of the device for all the validation of a call.
        """
        flags = [flag for flag, _ in checks]
        if self.pending is not None:
            flags.insert(0, self.pending)
        if not flags:
            return
        import torch

        if not bool(torch.stack([f.reshape(()) for f in flags]).any()):
            return
        if self.pending is not None and bool(self.pending):
            check_logits(self.source, name)  # locates the offending entry and raises
        for flag, raise_error in checks:
            if bool(flag):
                raise_error()

    @property
    def torch(self) -> bool:
        """True when the rows are a torch tensor."""
        return is_torch(self.z)

    def restore(self, result: Any) -> Any:
        """Reshape a (B, V) or (B, n) result to the input's batch shape and kind."""
        return self.back(result.reshape(self.batch_shape + tuple(result.shape[1:])))


def prepare(logits: Any, name: str = "logits", *, check: bool = True) -> Rows:
    """Validate ``logits`` (numeric, non-empty, no NaN / +inf / all -inf row) into rows.

    A torch tensor is checked on its device: one boolean (are all row maxima
    finite?) comes back to the host. With ``check=False`` that boolean stays
    on the device until :meth:`Rows.validate`, which reads it together with
    the call's other checks (numpy input is always checked at once).
    """
    arr, back = as_float(logits, name, min_ndim=1)
    if arr.shape[-1] == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {tuple(arr.shape)}.")
    z = arr.reshape(-1, arr.shape[-1])
    # NaN, +inf and an all -inf row each make that row's maximum non-finite: one
    # reduction clears valid input, and its maxima are reused by the fused path.
    if is_torch(z):
        import torch

        row_max = z.amax(dim=-1)
        if not check:
            rows = Rows(z, tuple(arr.shape[:-1]), back, row_max)
            rows.pending, rows.source = ~torch.isfinite(row_max).all(), arr
            return rows
        valid = bool(torch.isfinite(row_max).all())
    else:
        row_max = z.max(axis=-1)
        valid = bool(np.isfinite(row_max).all())
    if not valid:
        check_logits(arr, name)  # locates the offending entry and raises
    return Rows(z, tuple(arr.shape[:-1]), back, row_max)


def rows_param(value: float | Array, batch_shape: tuple[int, ...], name: str) -> Array:
    """A scalar or per-row parameter as a flat (B,) numpy array matching the rows.

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


def on_device(value: Any, like: Any) -> Any:
    """A host parameter (number or numpy array) as an array of ``like``'s kind.

    numpy ``like``: ``value`` as a numpy array, unchanged. torch ``like``: a
    tensor on ``like``'s device (one small host-to-device copy), float64 for
    floating values and int64 for integers, so per-row parameters keep the
    precision the numpy kernels use.

    Examples
    --------
    >>> on_device([1, 2], np.zeros(2))
    array([1, 2])
    """
    if not is_torch(like):
        return np.asarray(value)
    import torch

    if is_torch(value):
        return value.to(like.device)
    arr = np.array(value)  # a writable copy: frozen parameters are read-only
    dtype = torch.float64 if arr.dtype.kind == "f" else torch.int64
    return torch.as_tensor(arr, dtype=dtype, device=like.device)
