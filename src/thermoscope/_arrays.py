"""Array kinds: accept numpy arrays, sequences and torch tensors; give back the same kind.

numpy is the compute backend. A torch tensor is viewed as a numpy array (zero
copy on the CPU), computed on, and converted back to a tensor with the input's
dtype and device. torch is never imported unless the caller passed a tensor.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["compute_dtype", "input_eps", "is_torch_tensor", "to_numpy"]

_LOW_PRECISION = {"float16", "bfloat16"}


def is_torch_tensor(x: object) -> bool:
    """True when ``x`` is a torch tensor, without importing torch."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def input_eps(x: Any) -> float:
    """Machine epsilon of ``x``'s floating dtype (float64's for integers and lists of ints).

    This is the precision the values were stored in, before any widening for
    computation: bfloat16 gives 2**-7 even though it is computed in float32.
    """
    if is_torch_tensor(x):
        import torch

        return float(torch.finfo(x.dtype).eps) if x.dtype.is_floating_point else 2.0**-52
    dtype = np.asarray(x).dtype
    return float(np.finfo(dtype).eps) if dtype.kind == "f" else 2.0**-52


def compute_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The floating dtype a computation on ``dtype`` input runs in.

    float32 and float64 stay; float16 (and anything smaller) computes in
    float32; integers and booleans compute in float64.
    """
    if dtype.kind == "f":
        return np.dtype(np.float32) if dtype.itemsize <= 4 else np.dtype(dtype)
    return np.dtype(np.float64)


def to_numpy(x: Any, name: str) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """Convert ``x`` to a numpy array and return a function that converts results back.

    The returned converter maps a floating numpy result back to the input's
    kind: a torch tensor of the input's dtype and device for tensor input,
    a numpy array of the input's floating dtype (float16 stays float16) for
    numpy input, and a numpy array of the computed dtype for lists and ints.

    Raises
    ------
    TypeError
        If ``x`` is not numeric (strings, objects, complex numbers).
    """
    if is_torch_tensor(x):
        return _torch_to_numpy(x, name)
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"`{name}` must be a numeric array, got {type(x).__name__}: {exc}"
        ) from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must be a numeric (int or float) array, got dtype {arr.dtype}.")
    out_dtype = arr.dtype if arr.dtype.kind == "f" else compute_dtype(arr.dtype)

    def back(result: np.ndarray) -> np.ndarray:
        if result.dtype.kind == "f" and result.dtype != out_dtype:
            return result.astype(out_dtype)
        return result

    return arr, back


def _torch_to_numpy(x: Any, name: str) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    import torch

    if x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"`{name}` must be a real numeric tensor, got dtype {x.dtype}.")
    dtype, device = x.dtype, x.device
    host = x.detach().to("cpu")
    # numpy has no bfloat16 and float16 math is imprecise: compute in float32.
    if str(dtype).removeprefix("torch.") in _LOW_PRECISION:
        host = host.to(torch.float32)
    arr = host.numpy()
    out_dtype = dtype if dtype.is_floating_point else torch.float64

    def back(result: np.ndarray) -> Any:
        tensor = torch.from_numpy(np.ascontiguousarray(result))
        if tensor.dtype.is_floating_point:
            tensor = tensor.to(out_dtype)
        return tensor.to(device)

    return arr, back
