"""The one temperature kernel: ``softmax(z / T)``, its logarithm, entropy and their limits.

Every layer that tempers logits calls this module: core, sampling,
calibration, rl, attention, distill, recommend. Nothing else exponentiates
temperature-scaled logits. Each function takes clean arrays (finite-or-``-inf``
logits with at least one finite entry per slice, temperatures already checked
``>= 0``) and computes with the input's own library: numpy arrays with numpy,
torch tensors with torch operations on their device, autograd kept (see
:mod:`thermoscope._backend` for why there are two branches, not a namespace).

The limits, the same on both backends:

- ``T = 0`` is the greedy limit: uniform over the entries equal to the maximum.
- ``T = inf`` is the uniform limit over the finite (unmasked) entries.
- A tiny ``T`` never overflows: the logits are shifted by their maximum
  *before* dividing, so every exponent is ``<= 0`` and the only overflow left
  is towards ``-inf`` (probability 0, the exact limit).
- ``-inf`` entries are masked: probability exactly 0, log-probability ``-inf``,
  gradient exactly 0 (also with respect to a tensor temperature).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thermoscope._backend import is_torch

__all__ = [
    "divide",
    "entropy",
    "entropy_of_logits",
    "log_softmax",
    "overflows",
    "row_weights",
    "scaled",
    "softmax",
    "softmax_rows",
    "tempered_weights",
]

_CHUNK = 1 << 17  # elements per slice of rows in row_weights (about 512 kB of float32)


def _along_torch(t: Any, z: Any, axis: int) -> Any:
    """A temperature that divides ``z`` along ``axis``: a Python float when it is one number
    known on the host (no device copy), else a tensor on ``z``'s device."""
    import torch

    if is_torch(t):
        tt = t.to(device=z.device, dtype=z.dtype)
    else:
        arr = np.asarray(t, dtype=np.float64)
        if arr.size == 1 or bool(np.all(arr == arr.flat[0])):
            return float(arr.flat[0])
        tt = torch.as_tensor(np.array(arr), dtype=z.dtype, device=z.device)
    return tt.unsqueeze(axis) if tt.ndim == z.ndim - 1 else tt


def _along_numpy(t: Any, z: np.ndarray, axis: int) -> np.ndarray:
    arr = np.asarray(t, dtype=np.float64)
    return np.expand_dims(arr, axis) if arr.ndim == z.ndim - 1 else arr


def scaled(z: Any, t: Any, axis: int) -> Any:
    """``(z - max) / t`` with the ``T = 0`` and ``T = inf`` limits; each slice's maximum is 0.

    ``t`` is a scalar or holds one temperature per slice (the shape of ``z``
    without ``axis``), as a number, a numpy array or a torch tensor.

    Examples
    --------
    >>> scaled(np.array([1.0, 3.0, 3.0]), 0.0, -1)
    array([-inf,   0.,   0.])
    """
    if is_torch(z):
        return _scaled_torch(z, _along_torch(t, z, axis), axis)
    return _scaled_numpy(z, _along_numpy(t, z, axis), axis)


def _scaled_numpy(z: np.ndarray, t: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(z, axis=axis, keepdims=True)
    if t.size == 1 and t.flat[0] == 1:
        with np.errstate(over="ignore"):  # beyond the float range is -inf: probability 0
            return np.asarray(z - top)  # T = 1, the common case: no division pass
    greedy = t == 0
    uniform = np.isinf(t)
    # T = 0 and T = inf give 0 / 0 and inf / inf here; those slices are replaced
    # by their limits below.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        shifted = ((z - top) / t).astype(z.dtype, copy=False)
    if np.any(greedy):
        shifted = np.where(greedy, np.where(z == top, 0.0, -np.inf), shifted)
    if np.any(uniform):
        shifted = np.where(uniform, np.where(np.isfinite(z), 0.0, -np.inf), shifted)
    return np.asarray(shifted.astype(z.dtype, copy=False))


def _scaled_torch(z: Any, t: Any, axis: int) -> Any:
    import torch

    top = z.amax(dim=axis, keepdim=True)
    if isinstance(t, float):
        if 0 < t < np.inf:
            # One positive temperature known on the host: -inf entries stay -inf, the
            # maximum becomes exactly 0, and no gradient flows to a number.
            return (z - top) if t == 1 else (z - top) / t
        t = torch.full((), t, dtype=z.dtype, device=z.device)
    finite = torch.isfinite(z)
    # Masked entries are divided as 0 and put back to -inf afterwards: dividing
    # -inf itself would give the temperature an infinite (0 * inf = NaN) gradient.
    diff = torch.where(finite, z - top, torch.zeros((), dtype=z.dtype, device=z.device))
    regular = (t > 0) & torch.isfinite(t)
    safe = torch.where(regular, t, torch.ones((), dtype=t.dtype, device=t.device))
    neg_inf = torch.full((), float("-inf"), dtype=z.dtype, device=z.device)
    zero = torch.zeros((), dtype=z.dtype, device=z.device)
    out = torch.where(finite, diff / safe, neg_inf)
    # Branch-free limits: no host sync to ask whether any slice needs them.
    # A T that underflowed to 0 in float32 is the greedy limit at that precision.
    out = torch.where(t == 0, torch.where(z == top, zero, neg_inf), out)
    return torch.where(torch.isinf(t), torch.where(finite, zero, neg_inf), out)


def log_softmax(z: Any, t: Any = 1.0, axis: int = -1) -> Any:
    """``log softmax(z / t)`` along ``axis``, computed in log space.

    Examples
    --------
    >>> np.round(log_softmax(np.array([1000.0, 1.0]), 1e-3), 3)
    array([      0., -999000.])
    """
    shifted = scaled(z, t, axis)
    if is_torch(z):
        import torch

        return torch.log_softmax(shifted, dim=axis)
    # The slice maximum of `shifted` is exactly 0, so the sum of exps lies in
    # [1, K]: its log needs no further shift.
    with np.errstate(under="ignore"):
        total = np.sum(np.exp(shifted), axis=axis, keepdims=True)
    return shifted - np.log(total)


def softmax(z: Any, t: Any = 1.0, axis: int = -1) -> Any:
    """``softmax(z / t)`` along ``axis``: one exp pass over the shifted logits.

    Examples
    --------
    >>> softmax(np.array([3.0, 3.0, 1.0]), 0.0)
    array([0.5, 0.5, 0. ])
    """
    shifted = scaled(z, t, axis)
    if is_torch(z):
        import torch

        return torch.softmax(shifted, dim=axis)
    with np.errstate(under="ignore"):
        w = np.exp(shifted)
    w /= np.sum(w, axis=axis, keepdims=True)
    return w


def entropy(p: Any, axis: int = -1) -> Any:
    """``-sum p log p`` along ``axis`` with ``0 log 0 = 0``.

    On torch the gradient at ``p = 0`` is taken as 0 (not ``+inf``), so the
    entropy of a softmax with masked entries has a finite gradient.

    Examples
    --------
    >>> float(entropy(np.array([0.5, 0.5, 0.0])))  # doctest: +ELLIPSIS
    0.693147...
    """
    if is_torch(p):
        import torch

        pos = p > 0
        logp = torch.log(torch.where(pos, p, torch.ones((), dtype=p.dtype, device=p.device)))
        return -(torch.where(pos, p * logp, torch.zeros((), dtype=p.dtype, device=p.device))).sum(
            dim=axis
        )
    # scipy.special.entr, without importing scipy (a fifth of a second) for it.
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return np.sum(terms, axis=axis)


def entropy_of_logits(z: Any, t: Any = 1.0, axis: int = -1) -> Any:
    """Entropy of ``softmax(z / t)`` along ``axis``, from the log-probabilities.

    Examples
    --------
    >>> float(entropy_of_logits(np.array([0.0, 0.0]), 1.0))  # doctest: +ELLIPSIS
    0.693147...
    """
    logp = log_softmax(z, t, axis)
    if is_torch(z):
        import torch

        p = torch.exp(logp)
        finite = torch.isfinite(logp)
        zero = torch.zeros((), dtype=logp.dtype, device=logp.device)
        return -(torch.where(finite, p * torch.where(finite, logp, zero), zero)).sum(dim=axis)
    with np.errstate(under="ignore"):
        p = np.exp(logp)
    finite = np.isfinite(logp)
    return -np.sum(np.where(finite, p * np.where(finite, logp, 0.0), 0.0), axis=axis)


# -- rows: (B, V) logits and one temperature per row, for the sampling engine --


def overflows(row_max: Any, divisor: Any) -> Any:
    """Rows whose maximum divided by a tiny temperature leaves the float range (or T rounds to 0).

    ``divisor`` is T in the compute dtype; the test is done in that dtype, as
    the division itself is.

    Examples
    --------
    >>> overflows(np.array([1e30], dtype=np.float32), np.array([1e-20], dtype=np.float32))
    array([ True])
    """
    if is_torch(row_max):
        import torch

        return ~torch.isfinite(row_max.to(divisor.dtype) / divisor)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return ~np.isfinite(row_max.astype(divisor.dtype) / divisor)


def divide(z: Any, t: Any) -> Any:
    """Divide each row of ``z`` (B, V) by its temperature ``t`` (B,): the tempered logits.

    Unlike :func:`scaled` the logits are not shifted, so the values are the
    ones transformers' ``TemperatureLogitsWarper`` gives (``z / T`` in the
    compute dtype). ``T = 0`` rows become the greedy limit (0 on the maxima,
    ``-inf`` elsewhere), ``T = inf`` rows the uniform limit (0 on finite
    entries). Rows where ``z / T`` would overflow are computed as
    ``(z - max) / T``: the same softmax, no ``inf - inf``.

    Examples
    --------
    >>> divide(np.array([[2.0, 1.0], [2.0, 1.0]]), np.array([0.5, 0.0]))
    array([[  4.,   2.],
           [  0., -inf]])
    """
    if is_torch(z):
        return _divide_torch(z, t)
    return _divide_numpy(z, np.asarray(t))


def _divide_numpy(z: np.ndarray, t: np.ndarray) -> np.ndarray:
    finite = (t > 0) & np.isfinite(t)
    divisor = np.where(finite, t, 1.0).astype(z.dtype)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # Rows with T=0 or T=inf are overwritten below; their quotient is unused.
        out = z / divisor[:, None]
    small = finite & (divisor < 1)
    if small.any():
        m = z.max(axis=-1)
        over = small & overflows(m, divisor)
        if over.any():
            with np.errstate(over="ignore"):
                # (z - max) / T <= 0 in float64: overflow only towards -inf, the exact limit.
                shifted = (z[over].astype(np.float64) - m[over, None]) / t[over, None]
                out[over] = shifted.astype(z.dtype)
    if finite.all():
        return np.asarray(out)
    greedy = t == 0
    if greedy.any():
        top = z[greedy] == z[greedy].max(axis=-1, keepdims=True)
        out[greedy] = np.where(top, 0.0, -np.inf)
    hot = np.isposinf(t)
    if hot.any():
        out[hot] = np.where(np.isneginf(z[hot]), -np.inf, 0.0)
    return np.asarray(out)


def _divide_torch(z: Any, t: Any) -> Any:
    import torch

    limits = True  # whether some row may have T = 0 or T = inf (unknown for a tensor T)
    work = z.dtype
    if not is_torch(t):
        arr = np.asarray(t, dtype=np.float64)
        limits = not bool(np.all((arr > 0) & np.isfinite(arr)))
        if np.any((arr > 0) & (arr < torch.finfo(z.dtype).tiny)):
            # A positive T below the compute dtype's normal range would round to 0
            # (or lose digits) there: such calls divide in float64, as numpy does.
            work = torch.float64
        if arr.ndim == 0 or bool(np.all(arr == arr.flat[0])):
            value = float(arr.flat[0])
            # One host-known temperature >= 1: z / T cannot overflow.
            if 1.0 <= value < np.inf:
                return z / value
            tt = torch.full((z.shape[0],), value, dtype=work, device=z.device)
        else:
            tt = torch.as_tensor(np.array(arr), dtype=work, device=z.device)
    else:
        tt = t.to(device=z.device, dtype=z.dtype)
    if tt.ndim == 0:
        tt = tt.expand(z.shape[0])
    col = tt[:, None]
    source, z = z, z.to(work)
    m = z.amax(dim=-1, keepdim=True)
    one = torch.ones((), dtype=z.dtype, device=z.device)
    safe = torch.where((col > 0) & torch.isfinite(col), col, one) if limits else col
    # z / T, except rows where it would overflow (tiny T, large logits): those are
    # divided as (z - max) / T, the same softmax. (z - 0) / T is z / T bit for bit,
    # so one pass serves both kinds of row.
    zero = torch.zeros((), dtype=z.dtype, device=z.device)
    shift = torch.where(torch.isfinite((m / safe).to(source.dtype)), zero, m)
    out = (z - shift) / safe
    if limits:
        neg_inf = torch.full((), float("-inf"), dtype=z.dtype, device=z.device)
        out = torch.where(col == 0, torch.where(z == m, zero, neg_inf), out)
        out = torch.where(torch.isinf(col), torch.where(torch.isfinite(z), zero, neg_inf), out)
    return out.to(source.dtype)


def row_weights(z: Any) -> tuple[Any, Any]:
    """Unnormalised probabilities ``exp(z - max)`` of (B, V) rows, and the row maxima (B, 1).

    numpy works a cache-sized slice of rows at a time (the subtraction's
    result is still in cache for the exp); every element gets the very same
    operations.

    Examples
    --------
    >>> row_weights(np.array([[0.0, -np.inf]]))[0]
    array([[1., 0.]])
    """
    if is_torch(z):
        import torch

        m = z.amax(dim=-1, keepdim=True)
        return torch.exp(z - m), m
    m = z.max(axis=-1, keepdims=True)
    w = np.empty(z.shape, dtype=np.result_type(z, m))
    step = max(1, _CHUNK // max(z.shape[-1], 1))
    for r0 in range(0, z.shape[0], step):
        part = w[r0 : r0 + step]
        np.subtract(z[r0 : r0 + step], m[r0 : r0 + step], out=part)
        np.exp(part, out=part)
    return w, m


def softmax_rows(z: Any) -> Any:
    """Softmax of (B, V) rows at ``T = 1``; ``-inf`` entries get probability exactly 0.

    Examples
    --------
    >>> softmax_rows(np.array([[0.0, 0.0, -np.inf]]))
    array([[0.5, 0.5, 0. ]])
    """
    w, _ = row_weights(z)
    return w / w.sum(axis=-1, keepdims=True) if not is_torch(z) else w / w.sum(-1, keepdim=True)


def tempered_weights(shifted: np.ndarray, beta: float) -> np.ndarray:
    """``exp(beta * shifted)``: unnormalised ``softmax(z / T)`` weights, ``beta = 1 / T``.

    For numpy rows already shifted to a maximum of 0 (so every weight is in
    [0, 1] and the largest is exactly 1): no max pass, no normalisation, one
    new buffer written in place. The temperature-scaling solver evaluates this
    at many temperatures on the same shifted logits, where the full
    :func:`softmax` would redo the max and the division every time.

    Examples
    --------
    >>> tempered_weights(np.array([[0.0, -1.0]]), 2.0).round(4)
    array([[1.    , 0.1353]])
    """
    buf = np.multiply(shifted, beta)
    with np.errstate(under="ignore"):
        np.exp(buf, out=buf)
    return np.asarray(buf)
