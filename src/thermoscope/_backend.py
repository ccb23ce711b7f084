"""Array backends: compute in the caller's own array library, on the caller's device.

numpy in, numpy out; a torch tensor in (CPU, CUDA or any other device), torch
operations on that device and a tensor out, with its autograd graph kept.
Lists, tuples and Python numbers are numpy input. torch is never imported
unless the caller passed a tensor.

Why a private namespace and not ``array-api-compat``
----------------------------------------------------
thermoscope has exactly two backends, and its kernels need operations the
array API standard (2023.12) does not have: ``topk`` / ``partition`` for
the candidate search, ``logsumexp`` and ``log_softmax`` with torch's own fused
backward, ``special.entr``, integer ``searchsorted`` with ``side="right"`` on
torch, and control of the float16/bfloat16 widening. Wrapping those around
``array_api_compat`` would add a dependency and a layer of indirection while
still branching on the backend in every kernel. So each kernel branches once,
on :func:`is_torch`, and writes the numpy and the torch version side by side
(see :mod:`thermoscope._temperature`); this module holds the conversions and
the dtype policy both sides share.

Dtype policy
------------
float32 and float64 compute in their own dtype; float16 and bfloat16 compute
in float32 and are returned in their own dtype; integers and booleans compute
in float64. A torch tensor is converted with ``Tensor.to``, which is
differentiable, so gradients flow back to the caller's tensor in its dtype.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "as_compute",
    "compute_dtype",
    "input_eps",
    "is_torch",
    "like",
    "numeric_numpy",
]


def is_torch(x: object) -> bool:
    """True when ``x`` is a torch tensor, without importing torch.

    Examples
    --------
    >>> is_torch([1.0, 2.0])
    False
    """
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def input_eps(x: Any) -> float:
    """Machine epsilon of ``x``'s floating dtype (float64's for integers and lists of ints).

    This is the precision the values were stored in, before any widening for
    computation: bfloat16 gives 2**-7 even though it is computed in float32.

    Examples
    --------
    >>> input_eps(np.zeros(2, dtype=np.float32)) == 2.0**-23
    True
    """
    if is_torch(x):
        import torch

        return float(torch.finfo(x.dtype).eps) if x.dtype.is_floating_point else 2.0**-52
    dtype = np.asarray(x).dtype
    return float(np.finfo(dtype).eps) if dtype.kind == "f" else 2.0**-52


def compute_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The numpy floating dtype a computation on ``dtype`` input runs in.

    float32 and float64 stay; float16 (and anything smaller) computes in
    float32; integers and booleans compute in float64.

    Examples
    --------
    >>> compute_dtype(np.dtype(np.float16)), compute_dtype(np.dtype(np.int32))
    (dtype('float32'), dtype('float64'))
    """
    if dtype.kind == "f":
        return np.dtype(np.float32) if dtype.itemsize <= 4 else np.dtype(dtype)
    return np.dtype(np.float64)


def as_compute(x: Any, name: str) -> tuple[Any, Callable[[Any], Any]]:
    """``x`` in its compute dtype, in its own library, and a function giving results back.

    Returns ``(arr, back)``: ``arr`` is a numpy array (for numpy arrays, lists
    and numbers) or a torch tensor on ``x``'s device, in the compute dtype of
    the dtype policy above; ``back(result)`` casts a floating result to the
    input's floating dtype (float16 stays float16, bfloat16 stays bfloat16;
    integer input gives float64) and leaves integer results alone.

    Raises
    ------
    TypeError
        If ``x`` is not real and numeric (strings, objects, complex, bool tensors).

    Examples
    --------
    >>> arr, back = as_compute(np.array([1, 2], dtype=np.float16), "x")
    >>> arr.dtype, back(arr * 2).dtype
    (dtype('float32'), dtype('float16'))
    """
    if is_torch(x):
        return _torch_compute(x, name)
    arr, back = numeric_numpy(x, name)
    return arr.astype(compute_dtype(arr.dtype), copy=False), back


def numeric_numpy(x: Any, name: str) -> tuple[np.ndarray, Callable[[Any], Any]]:
    """Non-tensor ``x`` as a numpy array of its own dtype, and the cast back of floating results.

    ``back`` gives a floating result the input's floating dtype (float64 for
    integer input) and leaves integer results alone.

    Examples
    --------
    >>> arr, back = numeric_numpy([1, 2], "x")
    >>> arr.dtype, back(np.array([0.5], dtype=np.float32)).dtype
    (dtype('int64'), dtype('float64'))
    """
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"`{name}` must be a numeric array, got {type(x).__name__}: {exc}"
        ) from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must be a numeric (int or float) array, got dtype {arr.dtype}.")
    out_dtype = arr.dtype if arr.dtype.kind == "f" else compute_dtype(arr.dtype)

    def back(result: Any) -> Any:
        result = np.asarray(result)
        if result.dtype.kind == "f" and result.dtype != out_dtype:
            return result.astype(out_dtype)
        return result

    return arr, back


def _torch_compute(x: Any, name: str) -> tuple[Any, Callable[[Any], Any]]:
    import torch

    if x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"`{name}` must be a real numeric tensor, got dtype {x.dtype}.")
    dtype = x.dtype
    if not dtype.is_floating_point:
        work, out_dtype = x.to(torch.float64), torch.float64
    elif dtype in (torch.float16, torch.bfloat16):
        # Half-precision exp and sums lose digits: compute in float32, as numpy does.
        work, out_dtype = x.to(torch.float32), dtype
    else:
        work, out_dtype = x, dtype

    def back(result: Any) -> Any:
        if result.dtype.is_floating_point and result.dtype != out_dtype:
            return result.to(out_dtype)
        return result

    return work, back


def like(value: Any, ref: Any, dtype: Any = None) -> Any:
    """``value`` as an array of ``ref``'s library (and device), in ``dtype`` or ``ref``'s dtype.

    A torch tensor ``value`` already on ``ref``'s device is used as is (its
    gradient kept); a number or numpy array is moved there once.

    Examples
    --------
    >>> like(0.5, np.zeros(3, dtype=np.float32)).dtype
    dtype('float32')
    """
    if is_torch(ref):
        import torch

        target = ref.dtype if dtype is None else dtype
        if is_torch(value):
            return value.to(device=ref.device, dtype=target)
        return torch.as_tensor(np.array(value), dtype=target, device=ref.device)
    if is_torch(value):
        raise TypeError(
            "a torch tensor parameter needs torch input to compute with; got numpy input."
        )
    return np.asarray(value, dtype=ref.dtype if dtype is None else dtype)
