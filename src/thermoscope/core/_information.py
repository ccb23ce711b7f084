"""What a distribution holds: entropy, perplexity, confidence and free energy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, overload

import numpy as np
import numpy.typing as npt

from thermoscope import _temperature as kernel
from thermoscope._backend import is_torch
from thermoscope._typing import FloatArray
from thermoscope._validation import as_float, check_log_base, check_logits
from thermoscope.core._input import as_array, prepare_probs, temperature_along

if TYPE_CHECKING:
    import torch

__all__ = ["entropy", "free_energy", "max_probability", "perplexity"]


@overload
def entropy(probs: torch.Tensor, *, axis: int = ..., base: float | None = ...) -> torch.Tensor: ...
@overload
def entropy(probs: npt.ArrayLike, *, axis: int = ..., base: float | None = ...) -> FloatArray: ...
def entropy(probs: Any, *, axis: int = -1, base: float | None = None) -> Any:
    """Shannon entropy ``H(p) = -sum p_i log p_i`` (with ``0 log 0 = 0``).

    Parameters
    ----------
    probs : array_like or torch.Tensor
        A distribution along ``axis``.
    axis : int, default -1
        The axis over which the distribution is normalised.
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
    p, axis, back = prepare_probs(probs, axis)
    h = kernel.entropy(p, axis)
    if base is not None:
        h = h / float(np.log(check_log_base(base)))
    return back(as_array(h))


@overload
def perplexity(probs: torch.Tensor, *, axis: int = ...) -> torch.Tensor: ...
@overload
def perplexity(probs: npt.ArrayLike, *, axis: int = ...) -> FloatArray: ...
def perplexity(probs: Any, *, axis: int = -1) -> Any:
    """Perplexity ``exp(H(p))``: the effective number of equally likely choices.

    Parameters
    ----------
    probs : array_like or torch.Tensor
        A distribution along ``axis``.
    axis : int, default -1
        The axis over which the distribution is normalised.

    Returns
    -------
    The perplexity of every slice, of the input's kind.

    Examples
    --------
    >>> from thermoscope import perplexity
    >>> round(float(perplexity([0.25, 0.25, 0.25, 0.25])), 6)
    4.0
    >>> round(float(perplexity([1.0, 0.0, 0.0])), 6)
    1.0
    """
    p, axis, back = prepare_probs(probs, axis)
    h = kernel.entropy(p, axis)
    return back(h.exp() if is_torch(h) else np.asarray(np.exp(h)))


@overload
def max_probability(probs: torch.Tensor, *, axis: int = ...) -> torch.Tensor: ...
@overload
def max_probability(probs: npt.ArrayLike, *, axis: int = ...) -> FloatArray: ...
def max_probability(probs: Any, *, axis: int = -1) -> Any:
    """The largest probability of each slice (the model's confidence).

    Parameters
    ----------
    probs : array_like or torch.Tensor
        A distribution along ``axis``.
    axis : int, default -1
        The axis over which the distribution is normalised.

    Returns
    -------
    The maximum of every slice, of the input's kind.

    Examples
    --------
    >>> from thermoscope import max_probability
    >>> float(max_probability([0.2, 0.7, 0.1]))
    0.7
    """
    p, axis, back = prepare_probs(probs, axis)
    return back(p.amax(dim=axis) if is_torch(p) else np.asarray(np.max(p, axis=axis)))


@overload
def free_energy(
    q: torch.Tensor, logits: torch.Tensor, temperature: npt.ArrayLike, *, axis: int = ...
) -> torch.Tensor: ...
@overload
def free_energy(
    q: npt.ArrayLike, logits: npt.ArrayLike, temperature: npt.ArrayLike, *, axis: int = ...
) -> FloatArray: ...
def free_energy(q: Any, logits: Any, temperature: Any, *, axis: int = -1) -> Any:
    """Helmholtz free energy ``F(q) = sum_i q_i E_i - T S(q)`` with energies ``E = -logits``.

    ``softmax(logits, T)`` is the unique minimiser of ``F`` over the simplex
    and the minimum is ``-T log sum_j exp(z_j / T)``: the softmax is the
    distribution that best trades low energy (high logits) against entropy,
    at an exchange rate set by ``T``.

    Parameters
    ----------
    q : array_like or torch.Tensor
        Candidate distribution(s) along ``axis``.
    logits : array_like or torch.Tensor
        Scores of the same shape and kind; ``-inf`` (infinite energy) is
        allowed where ``q`` is 0, and makes ``F = inf`` where ``q > 0``.
    temperature : float or array_like
        ``T >= 0``; ``T = 0`` gives the mean energy.
    axis : int, default -1
        The axis over which the distribution is normalised.

    Returns
    -------
    The free energy of every slice, of the input's kind.

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
    p, axis, back = prepare_probs(q, axis, "q")
    z, _ = as_float(logits, "logits")
    if tuple(z.shape) != tuple(p.shape):
        raise ValueError(
            f"`logits` must have the shape of `q`, {tuple(p.shape)}, got {tuple(z.shape)}."
        )
    if is_torch(z) != is_torch(p):
        raise TypeError("`q` and `logits` must both be torch tensors or both be arrays.")
    check_logits(z, "logits", axis)
    t = temperature_along(temperature, tuple(p.shape), axis)
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
    with np.errstate(invalid="ignore"):  # inf * 0 where T = inf meets S = 0; replaced by 0
        heat_np = np.where(s == 0, 0.0, t * s)
    return back(np.asarray(mean_energy - heat_np))
