"""Input preparation shared by the core functions: convert, check, normalise the axis.

Each public function converts its input to the caller's own array library
(numpy or torch, see :mod:`thermoscope._backend`), checks it in the one
wording of :mod:`thermoscope._validation`, and hands clean arrays to the
kernel (:mod:`thermoscope._temperature`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from thermoscope._backend import input_eps, is_torch
from thermoscope._validation import (
    as_float,
    check_axis,
    check_logits,
    check_probabilities,
    check_temperature,
    per_row,
)


def temperature_along(t: Any, shape: tuple[int, ...], axis: int) -> Any:
    """Check a scalar or per-slice temperature against the batch shape (``shape`` less ``axis``)."""
    batch = shape[:axis] + shape[axis + 1 :]
    return per_row(check_temperature(t), batch, "temperature")


def prepare_logits(
    logits: Any, temperature: Any, axis: int
) -> tuple[Any, Any, int, Callable[[Any], Any]]:
    """Logits in their compute dtype, the per-slice temperature, the axis and the cast back."""
    z, back = as_float(logits, "logits")
    axis = check_axis(axis, z.ndim)
    check_logits(z, "logits", axis)
    return z, temperature_along(temperature, tuple(z.shape), axis), axis, back


def prepare_probs(
    probs: Any, axis: int, name: str = "probs"
) -> tuple[Any, int, Callable[[Any], Any]]:
    """A checked distribution along ``axis`` in its compute dtype, the axis and the cast back."""
    p, back = as_float(probs, name)
    axis = check_axis(axis, p.ndim)
    check_probabilities(p, name, axis, eps=input_eps(probs))
    return p, axis, back


def as_array(x: Any) -> Any:
    """A numpy reduction's 0-d result as an array (a tensor as is)."""
    return x if is_torch(x) else np.asarray(x)
