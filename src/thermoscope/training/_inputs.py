"""Input checks of the training losses: feature matrices, temperatures, reductions.

The losses take torch tensors only (this package needs torch); each check
raises in the one wording of :mod:`thermoscope._validation` and does at most
one host read on valid input (a reduction's boolean), none for a
:class:`~thermoscope.training.LearnableTemperature`, whose value is in its
bounds by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from thermoscope._backend import as_compute
from thermoscope._validation import check_finite, check_scalar, per_row
from thermoscope.training.temperature import LearnableTemperature

__all__ = [
    "REDUCTIONS",
    "check_reduction",
    "features",
    "positive_temperature",
    "reduce",
    "require_tensor",
]

REDUCTIONS = ("mean", "sum", "none")


def require_tensor(x: Any, name: str) -> None:
    """Refuse anything but a torch tensor, naming the argument."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch tensor, got {type(x).__name__}.")


def features(x: Any, name: str) -> tuple[torch.Tensor, Callable[[Any], Any]]:
    """A finite (rows, dim) feature tensor in its compute dtype, and the cast back."""
    require_tensor(x, name)
    work, back = as_compute(x, name)
    if work.ndim != 2:
        raise ValueError(f"`{name}` must be 2-D (rows, dim), got shape {tuple(work.shape)}.")
    if work.shape[0] == 0 or work.shape[1] == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {tuple(work.shape)}.")
    check_finite(work, name)
    return work, back


def _bad_temperature(value: Any, name: str) -> ValueError:
    return ValueError(f"`{name}` must be finite and > 0, got {value}.")


def positive_temperature(
    value: Any, ref: torch.Tensor, batch: tuple[int, ...], name: str = "temperature"
) -> float | torch.Tensor:
    """A temperature > 0 and finite: a Python float, or a tensor on ``ref``'s device and dtype.

    ``value`` is a number, a 0-d tensor, a tensor of shape ``batch`` (one per
    row; ``batch=()`` allows only a scalar) or a ``LearnableTemperature``.
    A number stays a Python float (the kernel's fast path, no device copy);
    a tensor keeps its gradient.
    """
    if isinstance(value, LearnableTemperature):
        return value.temperature.to(dtype=ref.dtype, device=ref.device)
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"`{name}` must be a real number, got dtype {value.dtype}.")
        if value.ndim != 0:
            if not batch:
                raise ValueError(
                    f"`{name}` must be a single number, got shape {tuple(value.shape)}."
                )
            per_row(value, batch, name)
        t = value.to(dtype=ref.dtype, device=ref.device)
        ok = (t > 0) & torch.isfinite(t)
        if not bool(ok.all()):  # the one host read, a boolean
            bad = t[~ok].reshape(-1)[0]
            raise _bad_temperature(bad.tolist(), name)
        return t
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise TypeError(f"`{name}` must be a number > 0, got {value!r}.")
    arr = np.asarray(value)
    if arr.ndim == 0 or not batch:
        number = check_scalar(value, name, "a number > 0")
        if not (number > 0 and np.isfinite(number)):
            raise _bad_temperature(number, name)
        return number
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"`{name}` must be numbers > 0, got {value!r}.")
    per_row(arr, batch, name)
    bad = ~((arr > 0) & np.isfinite(arr))
    if np.any(bad):
        raise _bad_temperature(float(arr[bad].flat[0]), name)
    return torch.as_tensor(np.array(arr, dtype=np.float64), dtype=ref.dtype, device=ref.device)


def reduce(losses: torch.Tensor, reduction: str) -> torch.Tensor:
    """Mean, sum or the per-row losses themselves."""
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses


def check_reduction(reduction: Any) -> str:
    """Refuse a reduction other than 'mean', 'sum' and 'none'."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"`reduction` must be 'mean', 'sum' or 'none', got {reduction!r}.")
    return str(reduction)
