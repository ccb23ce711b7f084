"""Input checks shared by every public function.

One wording for every error: "`name` must be <what is allowed>, got <value>."
Each check returns clean numpy data so the math kernels never re-check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from thermoscope._arrays import to_numpy
from thermoscope._backend import as_compute, compute_dtype, is_torch

__all__ = [
    "as_float",
    "as_float_array",
    "as_generator",
    "check_axis",
    "check_finite",
    "check_fraction",
    "check_integer",
    "check_labels",
    "check_log_base",
    "check_logits",
    "check_probabilities",
    "check_scalar",
    "check_seed",
    "check_seed_bits",
    "check_temperature",
    "logit_row",
    "per_row",
]


def _show(value: Any) -> str:
    # Error messages are a boundary: a tensor's offending values come to the host here.
    if is_torch(value):
        import torch

        single = value.dtype in (torch.float16, torch.bfloat16, torch.float32)
        arr = np.asarray(value.tolist(), dtype=np.float32 if single else None)
    else:
        arr = np.asarray(value)
    if arr.ndim == 0:
        # str of the numpy scalar: the shortest digits of its own precision (3e+38, not
        # float32's 3.0000000054977558e+38).
        return str(arr[()]) if arr.dtype.kind == "f" else repr(arr.tolist())
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


def as_float(x: Any, name: str, *, min_ndim: int = 1) -> tuple[Any, Callable[[Any], Any]]:
    """``x`` as a non-empty floating array of its own library and device, in its compute dtype.

    numpy arrays, lists and numbers give numpy; a torch tensor stays a tensor
    on its device with its gradient (see :mod:`thermoscope._backend`).
    """
    arr, back = as_compute(x, name)
    if arr.ndim < min_ndim:
        raise ValueError(
            f"`{name}` must have at least {min_ndim} dimension(s), got a scalar {_show(arr)}."
        )
    if _size(arr) == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {tuple(arr.shape)}.")
    return arr, back


def _size(arr: Any) -> int:
    return int(arr.numel()) if is_torch(arr) else int(arr.size)


def _first_index(mask: Any) -> tuple[int, ...]:
    """The index of the first true entry of a boolean array (error messages only)."""
    if is_torch(mask):
        return tuple(int(i) for i in mask.nonzero()[0].tolist())
    return tuple(int(i) for i in np.argwhere(mask)[0])


def check_logits(arr: Any, name: str = "logits", axis: int = -1) -> None:
    """Reject NaN, +inf and slices along ``axis`` whose entries are all -inf.

    ``-inf`` entries are allowed: they mean "masked, probability exactly 0".
    A torch tensor is checked with torch reductions on its device (one
    boolean comes back to the host), never copied.
    """
    if is_torch(arr):
        _check_logits_torch(arr, name, axis)
        return
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


def _check_logits_torch(arr: Any, name: str, axis: int) -> None:
    import torch

    if arr.ndim == 0 or bool(torch.isfinite(arr.amax(dim=axis)).all()):
        if arr.ndim == 0 and not bool(torch.isfinite(arr)):
            raise ValueError(f"`{name}` must be finite, got {_show(arr)}.")
        return
    if bool(torch.isnan(arr).any()):
        raise ValueError(
            f"`{name}` must not contain NaN, got NaN at index {_first_index(torch.isnan(arr))}."
        )
    if bool(torch.isposinf(arr).any()):
        where = _first_index(torch.isposinf(arr))
        raise ValueError(f"`{name}` must be finite or -inf (masked), got +inf at index {where}.")
    dead = torch.isneginf(arr).all(dim=axis)
    row = _first_index(dead.reshape(1) if dead.ndim == 0 else dead)
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
    arr: Any, name: str = "probs", axis: int = -1, eps: float | None = None
) -> None:
    """Reject entries outside [0, 1], NaN, and slices that do not sum to 1.

    ``eps`` is the machine epsilon of the precision the probabilities were
    stored in (float16 and bfloat16 arrive here already widened to float32).
    """
    finite: Any
    if is_torch(arr):
        import torch

        finite, negative, above = torch.isfinite(arr).all(), arr < 0, arr > 1
    else:
        finite, negative, above = np.all(np.isfinite(arr)), arr < 0, arr > 1
    if not bool(finite):
        raise ValueError(f"`{name}` must be finite probabilities, got NaN or inf.")
    outside = negative | above
    if bool(outside.any()):
        raise ValueError(f"`{name}` must lie in [0, 1], got {_show(arr[outside][0])}.")
    # Summed only once every entry is known to be in [0, 1]: no overflow warning.
    if is_torch(arr):
        import torch

        totals = arr.sum(dim=axis)
        stored = float(torch.finfo(arr.dtype).eps) if eps is None else eps
    else:
        totals = arr.sum(axis=axis)
        stored = float(np.finfo(arr.dtype).eps) if eps is None else eps
    # Storing each p_i rounds it by at most p_i * eps / 2, so the stored sum is
    # off by at most eps / 2; on top, float32 arithmetic upstream (a float32
    # softmax later widened to float64 is common) adds about 1e-7 * sqrt(K).
    # Unnormalised input (counts, scores, a dropped entry) is off by far more.
    tol = stored + 1e-6 * max(1.0, float(np.sqrt(arr.shape[axis])))
    off = abs(totals - 1.0) > tol
    if bool(off.any()):
        raise ValueError(
            f"`{name}` must sum to 1 along axis {axis}, got a sum of "
            f"{float(_show(totals[off].reshape(-1)[0]))!r}."
        )


def check_temperature(t: Any, name: str = "temperature") -> Any:
    """Return ``t`` as a float64 array (a tensor stays a tensor); reject NaN and negative values.

    0 (the greedy limit) and +inf (the uniform limit) are valid. A torch
    tensor temperature (a learnable one, say) is checked on its device and
    returned as is, so gradients reach it.
    """
    if is_torch(t):
        import torch

        if t.is_complex() or not t.dtype.is_floating_point:
            t = t.to(torch.float64)
        if t.numel() == 0:
            raise ValueError(f"`{name}` must not be empty, got shape {tuple(t.shape)}.")
        if bool(torch.isnan(t).any()):
            raise ValueError(f"`{name}` must be a number >= 0, got nan.")
        if bool((t < 0).any()):
            raise ValueError(f"`{name}` must be >= 0, got {_show(t[t < 0].reshape(-1)[0])}.")
        return t
    arr = _numbers(t, name, "a number >= 0").astype(np.float64)
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {arr.shape}.")
    if np.isnan(arr).any():
        raise ValueError(f"`{name}` must be a number >= 0, got nan.")
    if np.any(arr < 0):
        raise ValueError(f"`{name}` must be >= 0, got {_show(arr[arr < 0].flat[0])}.")
    return arr


_INT64_MAX = int(np.iinfo(np.int64).max)


def _numbers(x: Any, name: str, allowed: str) -> np.ndarray:
    """``x`` as a numeric numpy array (integer, float, or Python ints beyond 64 bits).

    Strings, bytes and booleans are not numbers here, wherever they appear:
    one rule for every numeric parameter (``TopP("0.5")`` and ``TopK("3")``
    are both a TypeError).
    """
    try:
        if isinstance(x, (list, tuple)):
            # numpy turns [1, 2**64 - 1] into float64 (2.0**64): keep Python ints exact.
            exact = np.asarray(x, dtype=object)
            if exact.dtype == object and all(_is_int(v) for v in exact.ravel().tolist()):
                return exact
        arr = np.asarray(x)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be {allowed}, got {x!r}.") from None
    kind = arr.dtype.kind
    if kind == "O":
        items = arr.ravel().tolist()
        if not all(
            isinstance(v, (int, float, np.integer, np.floating))
            and not isinstance(v, (bool, np.bool_))
            for v in items
        ):
            raise TypeError(f"`{name}` must be {allowed}, got {x!r}.")
        if all(isinstance(v, (int, np.integer)) for v in items):
            return arr  # Python ints beyond 64 bits: compared exactly, never wrapped
        arr = arr.astype(np.float64)
    elif kind not in "iuf":
        raise TypeError(f"`{name}` must be {allowed}, got {_show_any(x)}.")
    return arr


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _show_any(x: Any) -> str:
    if isinstance(x, (str, bytes, bool, np.bool_)):
        return repr(x)
    arr = np.asarray(x)
    return repr(arr.tolist()) if arr.dtype.kind in "bUSO" else _show(x)


def _integers(k: Any, name: str, allowed: str) -> np.ndarray:
    """``k`` as an array of exact integers: int, uint, integral float, or big Python ints."""
    arr = _numbers(k, name, allowed)
    if arr.dtype.kind == "f" and not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
        raise TypeError(f"`{name}` must be {allowed}, got {_show(k)}.")
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {arr.shape}.")
    return arr


def check_integer(k: Any, name: str, minimum: int = 1, maximum: int | None = None) -> np.ndarray:
    """Return ``k`` as an int64 array; reject non-integers and values outside the range.

    Values are compared exactly, never wrapped: ``2**63`` is not ``-2**63``.
    Without ``maximum``, a value beyond int64 becomes ``2**63 - 1``: a size
    that large means "all of them" (a top-k of ``2**64`` keeps every token).
    Strings and booleans are a TypeError.

    Examples
    --------
    >>> check_integer(3, "k").tolist(), check_integer(2**64, "k").tolist()
    (3, 9223372036854775807)
    >>> check_integer(10, "n", maximum=5)
    Traceback (most recent call last):
    ...
    ValueError: `n` must be an integer <= 5, got 10.
    """
    allowed = (
        f"an integer >= {minimum}" if maximum is None else f"an integer in [{minimum}, {maximum}]"
    )
    arr = _integers(k, name, allowed)
    for bad, bound in ((arr < minimum, f">= {minimum}"), (arr > (maximum or 0), f"<= {maximum}")):
        if bound.endswith("None") or not np.any(bad):
            continue
        raise ValueError(f"`{name}` must be an integer {bound}, got {int(arr[bad].flat[0])}.")
    big = arr >= 2**63  # not `> 2**63 - 1`: a float compares that as 2.0**63
    if not np.any(big):
        return arr.astype(np.int64)
    return np.where(big, _INT64_MAX, np.where(big, 0, arr).astype(np.int64)).astype(np.int64)


def check_scalar(x: Any, name: str, allowed: str = "a number") -> float:
    """One real number as a float: strings, booleans and arrays of more than one value refused.

    Examples
    --------
    >>> check_scalar(2, "scale")
    2.0
    >>> check_scalar([1, 2], "temperature", "a number >= 0")
    Traceback (most recent call last):
    ...
    TypeError: `temperature` must be a single number >= 0, got shape (2,).
    """
    arr = _numbers(x, name, allowed)
    if arr.size != 1 or arr.ndim > 1:
        single = allowed.replace("a number", "a single number", 1)
        raise TypeError(f"`{name}` must be {single}, got shape {arr.shape}.")
    return float(arr.reshape(-1)[0])


def check_fraction(
    p: Any, name: str, *, low_open: bool = True, high_open: bool = False
) -> np.ndarray:
    """Return ``p`` as a float64 array inside (0, 1] (default) or [0, 1] (``low_open=False``)."""
    low, high = ("(" if low_open else "["), (")" if high_open else "]")
    interval = f"{low}0, 1{high}"
    arr = _numbers(p, name, f"a number in {interval}").astype(np.float64)
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {arr.shape}.")
    below = (arr <= 0) if low_open else (arr < 0)
    above = (arr >= 1) if high_open else (arr > 1)
    bad = below | above | np.isnan(arr)
    if np.any(bad):
        raise ValueError(f"`{name}` must be in {interval}, got {_show(arr[bad].flat[0])}.")
    return arr


def per_row(param: Any, batch_shape: tuple[int, ...], name: str) -> Any:
    """Broadcast a scalar or per-row parameter to ``batch_shape``.

    A per-row parameter must have exactly the batch shape (one value per row);
    anything else is a shape mismatch, never a silent broadcast.
    """
    if param.ndim == 0:
        return param.expand(batch_shape) if is_torch(param) else np.broadcast_to(param, batch_shape)
    if tuple(param.shape) != tuple(batch_shape):
        raise ValueError(
            f"`{name}` must be a scalar or have one value per row, shape {tuple(batch_shape)}, "
            f"got shape {tuple(param.shape)}."
        )
    return param


def check_seed(seed: Any, name: str = "seed") -> int:
    """Return ``seed`` as a Python int; reject non-integers, arrays and negative values.

    Any integer >= 0 is a seed (numpy's ``SeedSequence`` takes them all), so
    none is wrapped or clipped.

    Examples
    --------
    >>> check_seed(2**70) == 2**70
    True
    >>> check_seed(-1, "--seed")
    Traceback (most recent call last):
    ...
    ValueError: `--seed` must be an integer >= 0, got -1.
    """
    arr = _integers(seed, name, "an integer >= 0")
    if arr.ndim != 0:
        raise TypeError(f"`{name}` must be a single integer >= 0, got shape {arr.shape}.")
    value = int(arr[()])
    if value < 0:
        raise ValueError(f"`{name}` must be an integer >= 0, got {value}.")
    return value


def check_seed_bits(seed: Any, name: str = "seed") -> np.ndarray:
    """64-bit seeds (one integer in [0, 2**64 - 1], or an array of them) as int64 bit patterns.

    The counter-based draws key on the seed's 64 bits: ``2**64 - 1`` is kept
    as the pattern ``-1``, and a value that needs more bits is refused rather
    than wrapped onto another seed.

    Examples
    --------
    >>> check_seed_bits([1, 2**64 - 1]).tolist()
    [1, -1]
    """
    allowed = "an integer in [0, 2**64 - 1]"
    arr = _integers(seed, name, allowed)
    for bad, bound in ((arr < 0, ">= 0"), (arr >= 2**64, "below 2**64")):
        if np.any(bad):
            raise ValueError(f"`{name}` must be an integer {bound}, got {int(arr[bad].flat[0])}.")
    return np.asarray(arr.astype(np.uint64).view(np.int64))


def as_generator(rng: Any, name: str = "rng") -> np.random.Generator:
    """A Generator from a Generator (used as is), an integer seed >= 0, or None (OS entropy).

    The wrong kind of value is a TypeError, a negative seed a ValueError, as
    for ``seed=`` (`check_seed`).
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, bool) or not isinstance(rng, (int, np.integer)):
        raise TypeError(
            f"`{name}` must be a numpy.random.Generator or an integer seed >= 0, got {rng!r}."
        )
    if rng < 0:
        raise ValueError(
            f"`{name}` must be a numpy.random.Generator or an integer seed >= 0, got {rng!r}."
        )
    return np.random.default_rng(int(rng))


def check_labels(
    labels: Any,
    n_classes: int,
    shape: tuple[int, ...],
    name: str = "labels",
    *,
    where: Any = None,
) -> Any:
    """Class indices as int64 of the input's own library, checked in one wording.

    ``shape`` is the shape the labels must have (the data's shape without the
    class axis). Integral floats (``3.0``, as CSV files give) are accepted;
    booleans, fractions, NaN and complex values are a TypeError; a wrong shape
    or an index outside ``[0, n_classes - 1]`` is a ValueError that names the
    first offender and its position. A tensor is checked with torch
    reductions on its own device and stays there. ``where`` (a boolean array
    of ``shape``, the labels' library) limits the range check to the positions
    that count: padding may hold any index, such as transformers' ``-100``.
    """
    if is_torch(labels):
        import torch

        kind_ok = not (labels.is_complex() or labels.dtype == torch.bool)
        if kind_ok and labels.dtype.is_floating_point:
            kind_ok = bool((torch.isfinite(labels) & (labels == torch.round(labels))).all())
        got_shape = tuple(labels.shape)
    else:
        labels = np.asarray(labels)
        kind_ok = labels.dtype.kind in "iuf"
        if kind_ok and labels.dtype.kind == "f":
            kind_ok = bool(np.all(np.isfinite(labels) & (labels == np.round(labels))))
        got_shape = labels.shape
    if not kind_ok:
        raise TypeError(
            f"`{name}` must be integer class indices, got dtype {labels.dtype} "
            f"with value {_show(labels.reshape(-1)[:6])}."
        )
    if got_shape != tuple(shape):
        raise ValueError(
            f"`{name}` must have shape {tuple(shape)} (one label per row), got shape {got_shape}."
        )
    out = labels.to(torch.int64) if is_torch(labels) else labels.astype(np.int64, copy=False)
    # Two reductions decide; the first offender is located only on the error path.
    counted = out if where is None else out[where]
    size = counted.numel() if is_torch(counted) else counted.size
    if size and (int(counted.min()) < 0 or int(counted.max()) >= n_classes):
        outside = (out < 0) | (out >= n_classes)
        flat = (outside if where is None else outside & where).reshape(-1)
        i = int(flat.nonzero()[0][0]) if is_torch(flat) else int(np.argmax(flat))
        raise ValueError(
            f"`{name}` must be class indices in [0, {n_classes - 1}], "
            f"got {int(out.reshape(-1)[i])} at index {i}."
        )
    return out


def check_axis(axis: Any, ndim: int, name: str = "axis") -> int:
    """Return ``axis`` as a non-negative index into ``ndim`` dimensions; reject non-integers."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"`{name}` must be an integer, got {axis!r}.")
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"`{name}` must be in [{-ndim}, {ndim - 1}] for {ndim}-D input, got {axis}."
        )
    return int(axis) % ndim


def check_log_base(base: Any, name: str = "base") -> float:
    """Return a logarithm base as a float; reject non-numbers, non-positive values and 1."""
    try:
        b = float(base)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a positive number other than 1, got {base!r}.") from None
    if not np.isfinite(b) or b <= 0 or b == 1:
        raise ValueError(f"`{name}` must be a positive number other than 1, got {base!r}.")
    return b


def check_finite(arr: Any, name: str) -> None:
    """Reject NaN and infinities, naming the first offender and its index.

    A tensor is checked with one reduction on its device; only bad input is
    searched for the entry to report.
    """
    if is_torch(arr):
        import torch

        finite = torch.isfinite(arr)
    else:
        finite = np.isfinite(arr)
    if bool(finite.all()):
        return
    where = _first_index(~finite)
    raise ValueError(f"`{name}` must be finite, got {_show(arr[where])} at index {where}.")
