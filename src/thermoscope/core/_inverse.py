"""From a wanted effect back to a temperature: a target entropy, a weight scale."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from thermoscope import _temperature as kernel
from thermoscope._typing import FloatArray
from thermoscope._validation import (
    as_float_array,
    check_log_base,
    check_logits,
    check_scalar,
    check_temperature,
    per_row,
)

__all__ = ["effective_temperature", "temperature_for_entropy"]


def _entropy_at(z: FloatArray, log_t: float) -> float:
    return float(kernel.entropy_of_logits(z, np.exp(log_t), -1))


def _solve_temperature(z: FloatArray, target: float, base: float | None) -> float:
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
    lo = hi = float(np.log(spread))
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


def temperature_for_entropy(
    logits: npt.ArrayLike, target: npt.ArrayLike, *, base: float | None = None
) -> Any:
    """The unique temperature at which ``softmax(logits, T)`` has entropy ``target``.

    Entropy rises strictly with ``T`` from ``ln m`` at ``T -> 0`` (``m`` tied
    maxima) to ``ln K`` at ``T -> inf`` (``K`` unmasked entries), so every
    target in that interval has exactly one answer, found by root bracketing
    on ``log T`` to machine precision.

    Parameters
    ----------
    logits : array_like or torch.Tensor
        ``(K,)`` or ``(B, K)`` scores along the last axis.
    target : float or array_like
        Desired entropy (scalar or one per row), in nats unless ``base`` is given.
    base : float, optional
        Unit of ``target``: ``2`` for bits.

    Returns
    -------
    float or ndarray
        A float for 1-D logits, a numpy array of ``B`` temperatures for 2-D
        logits (typed ``Any``: the kind follows ``ndim``). The interval's ends
        give ``0.0`` and ``inf``.

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
        base = check_log_base(base)
    if z.ndim == 1:
        if goal.ndim != 0:
            raise ValueError(f"`target` must be a scalar for 1-D logits, got shape {goal.shape}.")
        return _solve_temperature(z, float(goal), base)
    goals = per_row(goal, z.shape[:1], "target")
    return np.array(
        [_solve_temperature(row, float(g), base) for row, g in zip(z, goals, strict=True)]
    )


def effective_temperature(scale: float, temperature: float = 1.0) -> float:
    """The temperature at which logits ``z`` behave like logits ``scale * z`` at ``temperature``.

    ``softmax(scale * z, T) == softmax(z, T / scale)``: only the ratio of
    weight scale to temperature is identifiable. Shrinking weights (as L2
    regularisation does, ``scale < 1``) is heating the model.

    Parameters
    ----------
    scale : float
        The positive factor the weights (and so the logits) are multiplied by.
    temperature : float, default 1.0
        The temperature the scaled logits are read at, ``>= 0``.

    Returns
    -------
    float
        ``temperature / scale``.

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
    s = check_scalar(scale, "scale", "a positive number")
    if not s > 0 or not np.isfinite(s):
        raise ValueError(
            f"`scale` must be a positive finite number (a negative scale reverses the "
            f"order of the logits), got {scale!r}."
        )
    return float(check_temperature(check_scalar(temperature, "temperature", "a number >= 0"))) / s
