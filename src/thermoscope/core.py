"""The math of temperature: softmax_T, entropy, free energy and their limits.

Every public function here validates its input in the caller's own array
library and hands it to the one temperature kernel
(:mod:`thermoscope._temperature`): numpy in, numpy out; a torch tensor in, torch
operations on its device and a tensor out, with its gradient kept (also with
respect to a tensor temperature).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thermoscope import _temperature as kernel
from thermoscope._backend import input_eps, is_torch
from thermoscope._validation import (
    as_float,
    as_float_array,
    check_logits,
    check_probabilities,
    check_temperature,
    per_row,
)

__all__ = [
    "effective_temperature",
    "entropy",
    "free_energy",
    "log_softmax",
    "max_probability",
    "perplexity",
    "reweight",
    "softmax",
    "temperature_for_entropy",
]


def _temperature_along(t: Any, shape: tuple[int, ...], axis: int) -> Any:
    """Check a scalar or per-slice temperature against the batch shape (``shape`` less ``axis``)."""
    batch = shape[:axis] + shape[axis + 1 :]
    return per_row(t, batch, "temperature")


def _prepare_logits(logits: Any, temperature: Any, axis: int) -> tuple[Any, Any, int, Any]:
    z, back = as_float(logits, "logits")
    axis = _normalise_axis(axis, z.ndim)
    check_logits(z, "logits", axis)
    t = _temperature_along(check_temperature(temperature), tuple(z.shape), axis)
    return z, t, axis, back


def _normalise_axis(axis: int, ndim: int) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"`axis` must be an integer, got {axis!r}.")
    if not -ndim <= axis < ndim:
        raise ValueError(f"`axis` must be in [{-ndim}, {ndim - 1}] for {ndim}-D input, got {axis}.")
    return int(axis) % ndim


def log_softmax(logits: Any, temperature: Any = 1.0, axis: int = -1) -> Any:
    """Log-probabilities ``log softmax(logits / temperature)``, computed directly in log space.

    Parameters
    ----------
    logits : array_like or torch.Tensor
        Scores; ``-inf`` marks a masked entry (log-probability ``-inf``).
        NaN and ``+inf`` are rejected.
    temperature : float or array_like, default 1.0
        ``T >= 0``: a scalar, or one value per slice (the shape of ``logits``
        without ``axis``). ``T = 0`` is the greedy limit, ``T = inf`` the
        uniform limit over unmasked entries.
    axis : int, default -1
        The axis over which the distribution is normalised.

    Returns
    -------
    Same kind as ``logits`` (numpy array or torch tensor), same floating dtype;
    integer input gives float64.

    Notes
    -----
    ``log p_i = (z_i - m) / T - log sum_j exp((z_j - m) / T)`` with
    ``m = max_j z_j``. Subtracting the maximum first keeps every exponent
    ``<= 0``, so nothing overflows for any finite logits and any ``T > 0``.

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope import log_softmax
    >>> np.round(log_softmax([1000.0, 1.0], temperature=1e-3), 3)
    array([      0., -999000.])
    """
    z, t, axis, back = _prepare_logits(logits, temperature, axis)
    return back(kernel.log_softmax(z, t, axis))


def softmax(logits: Any, temperature: Any = 1.0, axis: int = -1) -> Any:
    """Probabilities ``softmax(logits / temperature)``, exact and stable for any finite logits.

    Parameters
    ----------
    logits : array_like or torch.Tensor
        Scores; ``-inf`` marks a masked entry (probability exactly 0).
        NaN and ``+inf`` are rejected.
    temperature : float or array_like, default 1.0
        ``T >= 0``: a scalar or one value per slice. ``T -> 0`` sharpens to a
        one-hot on the maximum (``T = 0`` gives that limit exactly, uniform
        over tied maxima); ``T -> inf`` flattens to uniform over the unmasked
        entries (``T = inf`` gives it exactly).
    axis : int, default -1
        The axis over which the distribution is normalised.

    Returns
    -------
    Same kind as ``logits`` (numpy array or torch tensor), same floating dtype;
    integer input gives float64, float16/bfloat16 is computed in float32.

    Notes
    -----
    ``p_i = exp(z_i / T) / sum_j exp(z_j / T)``: the Gibbs distribution with
    energies ``E_i = -z_i``. Dividing by ``T`` never changes the order of the
    entries, only how sharply the probability concentrates on the largest.

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope import softmax
    >>> np.round(softmax([2.0, 1.0, 0.5], temperature=0.5), 4)
    array([0.8438, 0.1142, 0.042 ])
    >>> softmax([1000.0, 1.0], temperature=1e-3)  # stays finite
    array([1., 0.])
    >>> softmax([3.0, 3.0, 1.0], temperature=0)  # the greedy limit, ties shared
    array([0.5, 0.5, 0. ])
    >>> softmax([3.0, -np.inf, 1.0], temperature=np.inf)
    array([0.5, 0. , 0.5])
    """
    z, t, axis, back = _prepare_logits(logits, temperature, axis)
    return back(kernel.softmax(z, t, axis))


def _prepare_probs(probs: Any, axis: int, name: str = "probs") -> tuple[Any, int, Any]:
    p, back = as_float(probs, name)
    axis = _normalise_axis(axis, p.ndim)
    check_probabilities(p, name, axis, eps=input_eps(probs))
    return p, axis, back


def reweight(probs: Any, temperature: Any, axis: int = -1) -> Any:
    """Re-temper a distribution: ``p ** (1 / T)`` renormalised, computed in log space.

    Use it when you have probabilities but not the logits they came from.

    Parameters
    ----------
    probs : array_like or torch.Tensor
        A distribution along ``axis`` (entries in [0, 1], summing to 1).
    temperature : float or array_like
        ``T >= 0``, scalar or one per slice. Zeros stay exactly zero at every
        ``T``; ``T = 0`` gives uniform over the most probable entries.
    axis : int, default -1

    Notes
    -----
    ``p_i^(1/T) / sum_j p_j^(1/T) = softmax(log p, T)_i``: tempering
    probabilities equals tempering their log-probabilities as logits, which is
    how it is computed (``log 0 = -inf`` is a masked entry).

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope import reweight, softmax
    >>> p = softmax([2.0, 1.0, 0.1])
    >>> np.allclose(reweight(p, 0.5), softmax([2.0, 1.0, 0.1], 0.5))
    True
    >>> reweight([0.5, 0.5, 0.0], 2.0)
    array([0.5, 0.5, 0. ])
    """
    p, axis, back = _prepare_probs(probs, axis)
    t = _temperature_along(check_temperature(temperature), tuple(p.shape), axis)
    if is_torch(p):
        import torch

        logp = torch.log(p)
    else:
        with np.errstate(divide="ignore"):  # log 0 = -inf is the intended mask
            logp = np.log(p)
    return back(kernel.softmax(logp, t, axis))


def _check_base(base: float) -> float:
    if not np.isfinite(base) or base <= 0 or base == 1:
        raise ValueError(f"`base` must be a positive number other than 1, got {base!r}.")
    return base


def entropy(probs: Any, axis: int = -1, base: float | None = None) -> Any:
    """Shannon entropy ``H(p) = -sum p_i log p_i`` (with ``0 log 0 = 0``).

    Parameters
    ----------
    probs : array_like or torch.Tensor
        A distribution along ``axis``.
    axis : int, default -1
    base : float, optional
        Logarithm base; ``None`` gives nats, ``2`` gives bits.

    Returns
    -------
    The entropy of every slice: a 0-d array for 1-D input (the input's kind).

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope import entropy
    >>> float(entropy([0.25, 0.25, 0.25, 0.25], base=2))
    2.0
    >>> bool(np.isclose(entropy([0.5, 0.5, 0.0]), np.log(2)))
    True
    """
    p, axis, back = _prepare_probs(probs, axis)
    h = kernel.entropy(p, axis)
    if base is not None:
        h = h / float(np.log(_check_base(base)))
    return back(_array(h))


def perplexity(probs: Any, axis: int = -1) -> Any:
    """Perplexity ``exp(H(p))``: the effective number of equally likely choices.

    Examples
    --------
    >>> from thermoscope import perplexity
    >>> round(float(perplexity([0.25, 0.25, 0.25, 0.25])), 6)
    4.0
    >>> round(float(perplexity([1.0, 0.0, 0.0])), 6)
    1.0
    """
    p, axis, back = _prepare_probs(probs, axis)
    h = kernel.entropy(p, axis)
    return back(h.exp() if is_torch(h) else np.asarray(np.exp(h)))


def max_probability(probs: Any, axis: int = -1) -> Any:
    """The largest probability of each slice (the model's confidence).

    Examples
    --------
    >>> from thermoscope import max_probability
    >>> float(max_probability([0.2, 0.7, 0.1]))
    0.7
    """
    p, axis, back = _prepare_probs(probs, axis)
    return back(p.amax(dim=axis) if is_torch(p) else np.asarray(np.max(p, axis=axis)))


def _array(x: Any) -> Any:
    """A numpy reduction's 0-d result as an array (a tensor as is)."""
    return x if is_torch(x) else np.asarray(x)


def _entropy_at(z: np.ndarray, log_t: float) -> float:
    return float(kernel.entropy_of_logits(z, np.exp(log_t), -1))


def _solve_temperature(z: np.ndarray, target: float, base: float | None) -> float:
    """The T with entropy(softmax(z, T)) == target for one 1-D row of float64 logits.

    ``target`` is in units of ``base`` (nats when None), as the caller gave it.
    """
    finite = z[np.isfinite(z)]
    top = finite.max()
    unit = 1.0 if base is None else float(np.log(base))
    h_cold = float(np.log(np.count_nonzero(finite == top))) / unit
    h_hot = float(np.log(finite.size)) / unit
    # Entropy rises strictly from h_cold (T -> 0) to h_hot (T -> inf) unless every
    # finite logit is equal, in which case both limits coincide.
    if not h_cold - 1e-12 <= target <= h_hot + 1e-12:
        name = "nats" if base is None else f"log base {base:g}"
        raise ValueError(
            f"`target` must be in [{h_cold:.6g}, {h_hot:.6g}] (entropy at T -> 0 and "
            f"T -> inf, in {name}) for these logits, got {target!r}."
        )
    if target <= h_cold:
        return 0.0
    if target >= h_hot:
        return float("inf")
    target *= unit
    # Search over log T: the logit gaps set the scale, so the bracket starts at
    # the spread and doubles outward until it straddles the target.
    spread = float(top - finite.min())
    lo = hi = np.log(spread)
    while _entropy_at(z, lo) > target:
        lo -= 8.0
        if lo < np.log(spread) - 800:
            return float(np.exp(lo))
    while _entropy_at(z, hi) < target:
        hi += 8.0
        if hi > np.log(spread) + 800:
            return float(np.exp(hi))
    from scipy import optimize  # loaded on first use: `import thermoscope` stays light

    log_t = optimize.brentq(
        lambda u: _entropy_at(z, u) - target, lo, hi, xtol=1e-13, rtol=4 * np.finfo(float).eps
    )
    return float(np.exp(log_t))


def temperature_for_entropy(logits: Any, target: Any, base: float | None = None) -> Any:
    """The unique temperature at which ``softmax(logits, T)`` has entropy ``target``.

    Entropy rises strictly with ``T`` from ``ln m`` at ``T -> 0`` (``m`` tied
    maxima) to ``ln K`` at ``T -> inf`` (``K`` unmasked entries), so every
    target in that interval has exactly one answer, found by root bracketing
    on ``log T`` to machine precision.

    Parameters
    ----------
    logits : array_like
        ``(K,)`` or ``(B, K)`` scores along the last axis.
    target : float or array_like
        Desired entropy (scalar or one per row), in nats unless ``base`` is given.
    base : float, optional
        Unit of ``target``: ``2`` for bits.

    Returns
    -------
    float for 1-D logits, an array of ``B`` temperatures for 2-D logits.
    The interval's ends give ``0.0`` and ``inf``.

    Notes
    -----
    A root finder runs on the host: a torch tensor is read once through the
    explicit host conversion (``thermoscope._arrays.to_numpy``) and the answer
    is a number, not a tensor (the root is not differentiable through brentq).

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope import entropy, softmax, temperature_for_entropy
    >>> z = [5.0, 2.2, 2.0, 4.5, 3.0, 2.7]
    >>> t = temperature_for_entropy(z, 1.0)
    >>> round(t, 6), round(float(entropy(softmax(z, t))), 9)
    (0.739005, 1.0)
    """
    z, _ = as_float_array(logits, "logits")
    if z.ndim > 2:
        raise ValueError(f"`logits` must be 1-D or 2-D, got shape {z.shape}.")
    check_logits(z, "logits", -1)
    z = z.astype(np.float64)
    try:
        goal = np.asarray(target, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"`target` must be a number, got {target!r}.") from None
    if np.isnan(goal).any():
        raise ValueError("`target` must be a number, got nan.")
    if base is not None:
        _check_base(base)
    if z.ndim == 1:
        if goal.ndim != 0:
            raise ValueError(f"`target` must be a scalar for 1-D logits, got shape {goal.shape}.")
        return _solve_temperature(z, float(goal), base)
    goals = per_row(goal, z.shape[:1], "target")
    return np.array(
        [_solve_temperature(row, float(g), base) for row, g in zip(z, goals, strict=True)]
    )


def free_energy(q: Any, logits: Any, temperature: Any, axis: int = -1) -> Any:
    """Helmholtz free energy ``F(q) = sum_i q_i E_i - T S(q)`` with energies ``E = -logits``.

    ``softmax(logits, T)`` is the unique minimiser of ``F`` over the simplex
    and the minimum is ``-T log sum_j exp(z_j / T)``: the softmax is the
    distribution that best trades low energy (high logits) against entropy,
    at an exchange rate set by ``T``.

    Parameters
    ----------
    q : array_like
        Candidate distribution(s) along ``axis``.
    logits : array_like
        Scores of the same shape; ``-inf`` (infinite energy) is allowed where
        ``q`` is 0, and makes ``F = inf`` where ``q > 0``.
    temperature : float or array_like
        ``T >= 0``; ``T = 0`` gives the mean energy.
    axis : int, default -1

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope import free_energy, softmax
    >>> z = np.array([2.0, 1.0, 0.5])
    >>> f_min = free_energy(softmax(z, 0.5), z, 0.5)
    >>> bool(np.isclose(f_min, -0.5 * np.log(np.exp(z / 0.5).sum())))
    True
    >>> bool(free_energy([1.0, 0.0, 0.0], z, 0.5) > f_min)
    True
    """
    p, axis, back = _prepare_probs(q, axis, "q")
    z, _ = as_float(logits, "logits")
    if tuple(z.shape) != tuple(p.shape):
        raise ValueError(
            f"`logits` must have the shape of `q`, {tuple(p.shape)}, got {tuple(z.shape)}."
        )
    if is_torch(z) != is_torch(p):
        raise TypeError("`q` and `logits` must both be torch tensors or both be arrays.")
    check_logits(z, "logits", axis)
    t = _temperature_along(check_temperature(temperature), tuple(p.shape), axis)
    s = kernel.entropy(p, axis)
    if is_torch(p):
        import torch

        z = z.to(torch.promote_types(z.dtype, p.dtype))
        zero = torch.zeros((), dtype=z.dtype, device=z.device)
        # 0 * inf energy is 0: a masked state that is never occupied costs nothing.
        energy = -(p * torch.where(p > 0, z, zero)).sum(dim=axis)
        tt = (
            t.to(device=p.device, dtype=s.dtype)
            if is_torch(t)
            else torch.as_tensor(np.array(t, dtype=np.float64), dtype=s.dtype, device=p.device)
        )
        # T * S with T = inf and S = 0 (a pure state) is 0 in the limit, not NaN.
        heat = torch.where(s == 0, torch.zeros((), dtype=s.dtype, device=s.device), tt * s)
        return back(energy - heat)
    z = z.astype(np.result_type(z, p), copy=False)
    mean_energy = -np.sum(p * np.where(p > 0, z, 0.0), axis=axis)
    with np.errstate(invalid="ignore"):
        heat_np = np.where(s == 0, 0.0, t * s)
    return back(np.asarray(mean_energy - heat_np))


def effective_temperature(scale: float, temperature: float = 1.0) -> float:
    """The temperature at which logits ``z`` behave like logits ``scale * z`` at ``temperature``.

    ``softmax(scale * z, T) == softmax(z, T / scale)``: only the ratio of
    weight scale to temperature is identifiable. Shrinking weights (as L2
    regularisation does, ``scale < 1``) is heating the model.

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope import effective_temperature, softmax
    >>> effective_temperature(0.5)
    2.0
    >>> z = np.array([2.0, 1.0, 0.5])
    >>> bool(np.allclose(softmax(0.5 * z), softmax(z, effective_temperature(0.5))))
    True
    """
    try:
        s = float(scale)
    except (TypeError, ValueError):
        raise TypeError(f"`scale` must be a positive number, got {scale!r}.") from None
    if not s > 0 or not np.isfinite(s):
        raise ValueError(
            f"`scale` must be a positive finite number (a negative scale reverses the "
            f"order of the logits), got {scale!r}."
        )
    t = float(check_temperature(temperature))
    return t / s
