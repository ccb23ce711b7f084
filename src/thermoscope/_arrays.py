"""The explicit host boundary: a torch tensor's values as a numpy array, and back.

Numeric functions compute in the caller's own library (:mod:`thermoscope._backend`).
This module is for the places that need host values by their nature: root
finders and optimisers run on the CPU (``temperature_for_entropy``, the
temperature-scaling solver), plots, files, the CLI and JSON. A tensor is
detached and copied to the host here, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from thermoscope._backend import is_torch, numeric_numpy

__all__ = ["to_numpy"]

_LOW_PRECISION = {"float16", "bfloat16"}


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
    if is_torch(x):
        return _torch_to_numpy(x, name)
    return numeric_numpy(x, name)


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
