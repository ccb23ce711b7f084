"""Tempered distributions: ``softmax(z / T)``, its logarithm, and re-tempering probabilities."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, overload

import numpy as np
import numpy.typing as npt

from thermoscope import _temperature as kernel
from thermoscope._backend import is_torch
from thermoscope._typing import FloatArray
from thermoscope.core._input import prepare_logits, prepare_probs, temperature_along

if TYPE_CHECKING:
    import torch

__all__ = ["log_softmax", "reweight", "softmax"]


@overload
def log_softmax(
    logits: torch.Tensor, temperature: npt.ArrayLike = ..., *, axis: int = ...
) -> torch.Tensor: ...
@overload
def log_softmax(
    logits: npt.ArrayLike, temperature: npt.ArrayLike = ..., *, axis: int = ...
) -> FloatArray: ...
def log_softmax(logits: Any, temperature: Any = 1.0, *, axis: int = -1) -> Any:
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
    z, t, axis, back = prepare_logits(logits, temperature, axis)
    return back(kernel.log_softmax(z, t, axis))


@overload
def softmax(
    logits: torch.Tensor, temperature: npt.ArrayLike = ..., *, axis: int = ...
) -> torch.Tensor: ...
@overload
def softmax(
    logits: npt.ArrayLike, temperature: npt.ArrayLike = ..., *, axis: int = ...
) -> FloatArray: ...
def softmax(logits: Any, temperature: Any = 1.0, *, axis: int = -1) -> Any:
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
    z, t, axis, back = prepare_logits(logits, temperature, axis)
    return back(kernel.softmax(z, t, axis))


@overload
def reweight(
    probs: torch.Tensor, temperature: npt.ArrayLike, *, axis: int = ...
) -> torch.Tensor: ...
@overload
def reweight(
    probs: npt.ArrayLike, temperature: npt.ArrayLike, *, axis: int = ...
) -> FloatArray: ...
def reweight(probs: Any, temperature: Any, *, axis: int = -1) -> Any:
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
        The axis over which the distribution is normalised.

    Returns
    -------
    Same kind, shape and floating dtype as ``probs``.

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
    p, axis, back = prepare_probs(probs, axis)
    t = temperature_along(temperature, tuple(p.shape), axis)
    if is_torch(p):
        import torch

        logp = torch.log(p)
    else:
        with np.errstate(divide="ignore"):  # log 0 = -inf is the intended mask
            logp = np.log(p)
    return back(kernel.softmax(logp, t, axis))
