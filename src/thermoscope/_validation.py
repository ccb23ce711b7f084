"""Input checks shared by every public function.

One wording for every error: "`name` must be <what is allowed>, got <value>."
Each check returns clean numpy data so the math kernels never re-check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from thermoscope._arrays import compute_dtype, to_numpy

__all__ = [
    "as_float_array",
    "as_generator",
    "check_fraction",
    "check_integer",
    "check_logits",
    "check_probabilities",
    "check_seed",
    "check_temperature",
    "logit_row",
    "per_row",
]


def _show(value: Any) -> str:
    arr = np.asarray(value)
    if arr.ndim == 0:
        return repr(arr.item())
    return np.array2string(arr, threshold=6, precision=6)


def as_float_array(
    x: Any, name: str, *, min_ndim: int = 1
) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """Convert ``x`` to a non-empty floating numpy array in its compute dtype."""
    arr, back = to_numpy(x, name)
    if arr.ndim < min_ndim:
        raise ValueError(
            f"`{name}` must have at least {min_ndim} dimension(s), got a scalar {_show(arr)}."
        )
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {arr.shape}.")
    return arr.astype(compute_dtype(arr.dtype), copy=False), back


def check_logits(arr: np.ndarray, name: str = "logits", axis: int = -1) -> None:
    """Reject NaN, +inf and slices along ``axis`` whose entries are all -inf.

    ``-inf`` entries are allowed: they mean "masked, probability exactly 0".
    """
    # Fast path: NaN, +inf and an all -inf slice each make that slice's maximum
    # non-finite, so one reduction clears valid input; only bad input pays for
    # the passes below that locate the offending entry.
    if np.isfinite(np.max(arr, axis=axis)).all():
        return
    if np.isnan(arr).any():
        where = tuple(int(i) for i in np.argwhere(np.isnan(arr))[0])
        raise ValueError(f"`{name}` must not contain NaN, got NaN at index {where}.")
    if np.isposinf(arr).any():
        where = tuple(int(i) for i in np.argwhere(np.isposinf(arr))[0])
        raise ValueError(f"`{name}` must be finite or -inf (masked), got +inf at index {where}.")
    dead = np.all(np.isneginf(arr), axis=axis)
    if np.any(dead):
        row = tuple(int(i) for i in np.argwhere(np.atleast_1d(dead))[0])
        raise ValueError(
            f"`{name}` must keep at least one finite entry per row, "
            f"got a row of all -inf at row index {row}."
        )


def logit_row(logits: Any, name: str = "logits") -> np.ndarray:
    """One row of logits, shape (V,), as float64; NaN, +inf, all -inf, empty and 2-D rejected."""
    z, _ = as_float_array(logits, name)
    if z.ndim != 1:
        raise ValueError(f"`{name}` must be one row of shape (V,), got shape {z.shape}.")
    check_logits(z, name)
    return np.asarray(z, dtype=np.float64)


def check_probabilities(
    arr: np.ndarray, name: str = "probs", axis: int = -1, eps: float | None = None
) -> None:
    """Reject entries outside [0, 1], NaN, and slices that do not sum to 1.

    ``eps`` is the machine epsilon of the precision the probabilities were
    stored in (float16 and bfloat16 arrive here already widened to float32).
    """
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be finite probabilities, got NaN or inf.")
    if np.any(arr < 0) or np.any(arr > 1):
        bad = arr[(arr < 0) | (arr > 1)][0]
        raise ValueError(f"`{name}` must lie in [0, 1], got {bad!r}.")
    totals = arr.sum(axis=axis)
    # Storing each p_i rounds it by at most p_i * eps / 2, so the stored sum is
    # off by at most eps / 2; on top, float32 arithmetic upstream (a float32
    # softmax later widened to float64 is common) adds about 1e-7 * sqrt(K).
    # Unnormalised input (counts, scores, a dropped entry) is off by far more.
    stored = float(np.finfo(arr.dtype).eps) if eps is None else eps
    tol = stored + 1e-6 * max(1.0, float(np.sqrt(arr.shape[axis])))
    off = np.abs(totals - 1.0) > tol
    if np.any(off):
        raise ValueError(
            f"`{name}` must sum to 1 along axis {axis}, got a sum of "
            f"{float(np.asarray(totals)[off].flat[0])!r}."
        )


def check_temperature(t: Any, name: str = "temperature") -> np.ndarray:
    """Return ``t`` as a float64 array; reject NaN and negative values.

    0 (the greedy limit) and +inf (the uniform limit) are valid.
    """
    try:
        arr = np.asarray(t, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a number >= 0, got {t!r}.") from None
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {arr.shape}.")
    if np.isnan(arr).any():
        raise ValueError(f"`{name}` must be a number >= 0, got nan.")
    if np.any(arr < 0):
        raise ValueError(f"`{name}` must be >= 0, got {_show(arr[arr < 0].flat[0])}.")
    return arr


def check_integer(k: Any, name: str, minimum: int = 1) -> np.ndarray:
    """Return ``k`` as an int64 array; reject non-integers and values below ``minimum``."""
    arr = np.asarray(k)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu" or arr.dtype == np.bool_:
        raise TypeError(f"`{name}` must be an integer >= {minimum}, got {_show(k)}.")
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {arr.shape}.")
    if np.any(arr < minimum):
        raise ValueError(
            f"`{name}` must be an integer >= {minimum}, got {_show(arr[arr < minimum].flat[0])}."
        )
    return arr.astype(np.int64)


def check_fraction(
    p: Any, name: str, *, low_open: bool = True, high_open: bool = False
) -> np.ndarray:
    """Return ``p`` as a float64 array inside (0, 1] (default) or [0, 1] (``low_open=False``)."""
    low, high = ("(" if low_open else "["), (")" if high_open else "]")
    interval = f"{low}0, 1{high}"
    try:
        arr = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a number in {interval}, got {p!r}.") from None
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {arr.shape}.")
    below = (arr <= 0) if low_open else (arr < 0)
    above = (arr >= 1) if high_open else (arr > 1)
    bad = below | above | np.isnan(arr)
    if np.any(bad):
        raise ValueError(f"`{name}` must be in {interval}, got {_show(arr[bad].flat[0])}.")
    return arr


def per_row(param: np.ndarray, batch_shape: tuple[int, ...], name: str) -> np.ndarray:
    """Broadcast a scalar or per-row parameter to ``batch_shape``.

    A per-row parameter must have exactly the batch shape (one value per row);
    anything else is a shape mismatch, never a silent broadcast.
    """
    if param.ndim == 0:
        return np.broadcast_to(param, batch_shape)
    if param.shape != batch_shape:
        raise ValueError(
            f"`{name}` must be a scalar or have one value per row, shape {batch_shape}, "
            f"got shape {param.shape}."
        )
    return param


def check_seed(seed: Any, name: str = "seed") -> int:
    """Return ``seed`` as a Python int; reject non-integers, arrays and negative values."""
    s = check_integer(seed, name, minimum=0)
    if s.ndim != 0:
        raise TypeError(f"`{name}` must be a single integer >= 0, got shape {s.shape}.")
    return int(s)


def as_generator(rng: Any, name: str = "rng") -> np.random.Generator:
    """A Generator from a Generator (used as is), an integer seed >= 0, or None (OS entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, bool) or not isinstance(rng, (int, np.integer)) or rng < 0:
        raise TypeError(
            f"`{name}` must be a numpy.random.Generator or an integer seed >= 0, got {rng!r}."
        )
    return np.random.default_rng(int(rng))
