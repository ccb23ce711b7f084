"""Temperature scaling, fitted exactly: one convex 1-D problem solved to machine precision.

Temperature scaling (Guo et al., 2017) replaces a classifier's probabilities
``softmax(z)`` by ``softmax(z / T)`` with one ``T > 0`` fitted on held-out
data. ``T > 1`` softens an overconfident model, ``T < 1`` sharpens an
underconfident one; the predicted class (the argmax) never changes.

The classic recipe runs a fixed number of LBFGS steps on ``T``. Here the fit is
exact: in ``beta = 1 / T`` the mean negative log-likelihood

    NLL(beta) = (1/N) sum_i [ logsumexp(beta z_i) - beta z_{i, y_i} ]

is convex, with closed-form derivatives
(:mod:`thermoscope.calibration._nll`)

    NLL'(beta)  = (1/N) sum_i ( E_p[z_i] - z_{i, y_i} ),
    NLL''(beta) = (1/N) sum_i Var_p(z_i) >= 0,   p = softmax(beta z_i),

so a safeguarded Newton iteration (Newton steps inside a shrinking bracket,
bisection in ``log beta`` when a step leaves it or stalls) converges
quadratically to the unique minimiser. Each iteration is one pass over the
data: chunked in memory, streamed for memory-mapped ``.npy`` files, and one
map-reduce for Dask arrays (:mod:`thermoscope.calibration.dask`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from thermoscope import _temperature as kernel
from thermoscope._validation import as_float_array, check_logits
from thermoscope.calibration._inputs import is_dask_array, logits_and_labels
from thermoscope.calibration._nll import Derivatives
from thermoscope.calibration.dask import DaskDerivatives

__all__ = [
    "MAX_TEMPERATURE",
    "MIN_TEMPERATURE",
    "SeparableDataWarning",
    "TemperatureBoundWarning",
    "TemperatureFit",
    "fit_temperature",
    "temperature_for_confidence",
]

#: Default bounds on the fitted temperature (see `fit_temperature`).
MIN_TEMPERATURE = 1e-4
MAX_TEMPERATURE = 1e4


class TemperatureBoundWarning(UserWarning):
    """The NLL optimum lies outside ``[min_temperature, max_temperature]``; a bound was returned."""


class SeparableDataWarning(TemperatureBoundWarning):
    """Every label is its row's strict argmax, so the NLL falls all the way to ``T -> 0``."""


def _check_bounds(min_temperature: float, max_temperature: float) -> tuple[float, float]:
    for name, value in (("min_temperature", min_temperature), ("max_temperature", max_temperature)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise TypeError(f"`{name}` must be a finite number > 0, got {value!r}.")
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"`{name}` must be a finite number > 0, got {value!r}.")
    if not min_temperature < max_temperature:
        raise ValueError(
            f"`min_temperature` must be < `max_temperature` ({max_temperature!r}), "
            f"got {min_temperature!r}."
        )
    return float(min_temperature), float(max_temperature)


def _check_max_iter(max_iter: Any) -> int:
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)):
        raise TypeError(f"`max_iter` must be an integer >= 1, got {max_iter!r}.")
    if max_iter < 1:
        raise ValueError(f"`max_iter` must be an integer >= 1, got {max_iter!r}.")
    return int(max_iter)


def _safeguarded_newton(
    derivs: Callable[[float], tuple[float, float, float]],
    lo: float,
    hi: float,
    start: float,
    max_iter: int,
) -> tuple[float, int, str | None, float]:
    """Minimise a convex function of ``beta`` on ``[lo, hi]``; return ``(beta, evals, bound, f)``.

    Keeps a bracket ``[a, b]`` with NLL' < 0 at ``a`` and > 0 at ``b``. Newton
    steps are taken in ``u = log beta`` (``du = -g / (beta h)``), which keeps
    ``beta > 0`` and is scale-free; a step is accepted when it lands inside the
    bracket and at most halves the previous step (the classic ``rtsafe``
    safeguard), otherwise the bracket is bisected in ``log beta``. A bound is
    evaluated only when the iteration heads for it, so an interior optimum
    costs Newton steps only. Converged when a Newton step moves ``beta`` by
    at most 4 ulps.
    """
    eps = float(np.finfo(np.float64).eps)
    a, b = lo, hi
    a_checked = b_checked = False  # whether the sign of NLL' is known at the bound
    beta = min(max(start, lo), hi)
    du_old = math.inf
    f = math.nan
    for it in range(1, max_iter + 1):
        f, g, h = derivs(beta)
        # At a bound, a zero slope may be an underflow of a slope pointing outwards.
        if beta >= hi and g <= 0:
            return hi, it, "upper", f
        if beta <= lo and g >= 0:
            return lo, it, "lower", f
        if g == 0.0:
            return beta, it, None, f
        if g < 0:
            a = beta
            a_checked = True
            if beta >= hi:
                return hi, it, "upper", f
        else:
            b = beta
            b_checked = b_checked or beta == hi
            if beta <= lo:
                return lo, it, "lower", f
        # beta * h can underflow to 0 while h > 0 (a tiny curvature at a tiny beta).
        curvature = beta * h
        du = -g / curvature if curvature > 0 else math.nan
        if math.isfinite(du) and abs(du) <= 4 * eps:
            return beta, it, None, f
        nxt = beta * math.exp(du) if math.isfinite(du) and abs(du) < 700 else math.nan
        if not (a < nxt < b and abs(du) <= 0.5 * abs(du_old)):
            # Safeguard. Test an unevaluated bound first: it ends a run towards a
            # bound (nearly separable data) at once instead of by bisection.
            if g < 0 and b == hi and not b_checked:
                nxt = hi
            elif g > 0 and a == lo and not (a_checked and a == lo):
                nxt = lo
            else:
                nxt = math.sqrt(a) * math.sqrt(b)  # a * b may underflow
            du = math.log(nxt / beta)
        du_old = du
        if (b - a) <= 4 * eps * b:
            return nxt, it, None, f
        beta = nxt
    return beta, max_iter, None, f


@dataclass(frozen=True)
class TemperatureFit:
    """The result of `fit_temperature`.

    Attributes
    ----------
    temperature : float
        The fitted ``T`` (``1 / beta``).
    nll : float
        Mean negative log-likelihood (nats) at the last evaluated iterate.
    nll_at_one : float
        Mean NLL at ``T = 1`` (the unscaled model), for the before/after story.
    n_iter : int
        Passes over the data made by the solver (each one map-reduce on Dask).
    bound : str or None
        ``"lower"`` when ``T`` was clipped at ``min_temperature``, ``"upper"`` at
        ``max_temperature``, None for an interior optimum.

    Examples
    --------
    >>> TemperatureFit(2.0, 0.5, 0.7, 5, None).temperature
    2.0
    """

    temperature: float
    nll: float
    nll_at_one: float
    n_iter: int
    bound: str | None


def fit_temperature(
    logits: Any,
    labels: Any,
    *,
    min_temperature: float = MIN_TEMPERATURE,
    max_temperature: float = MAX_TEMPERATURE,
    max_iter: int = 100,
    progress: bool = False,
) -> TemperatureFit:
    """The temperature minimising mean NLL of ``softmax(logits / T)`` on ``labels``, exactly.

    Parameters
    ----------
    logits : array_like, torch.Tensor, numpy.memmap or dask.array.Array, shape (N, C)
        Validation logits, ``C >= 2``. ``-inf`` marks a masked class, but never
        at a row's label (the NLL would be infinite at every ``T``). A
        memory-mapped array is streamed in chunks; a Dask array is reduced on
        its scheduler, one map-reduce per Newton step.
    labels : array_like of int, shape (N,)
        True class indices in ``[0, C)``.
    min_temperature, max_temperature : float, default 1e-4 and 1e4
        The documented bounds of the search. When the optimum lies outside
        (``T -> 0`` on perfectly separable data, ``T -> inf`` on logits no
        better than uniform) the bound is returned with a warning.
    max_iter : int, default 100
        Cap on passes over the data (Newton typically needs 4 to 8).
    progress : bool, default False
        Show a progress bar (stderr, only on a terminal) for streamed inputs.

    Returns
    -------
    TemperatureFit

    Warns
    -----
    SeparableDataWarning
        Every label is its row's unique argmax: NLL decreases all the way to
        ``T -> 0``, so ``min_temperature`` is returned. Fit on more (or harder)
        validation data, or use ``objective="ece"``.
    TemperatureBoundWarning
        The optimum lies beyond a bound otherwise.

    Notes
    -----
    With ``beta = 1 / T`` and ``p_i = softmax(beta z_i)``, mean NLL is convex in
    ``beta`` with ``NLL' = mean_i(E_p[z_i] - z_{i,y_i})`` and
    ``NLL'' = mean_i Var_p(z_i)``. The safeguarded Newton iteration (see the
    module docstring) stops when a step changes ``beta`` by less than 4 ulps,
    which is machine precision. The certificate, fuzzed in the test suite
    over separable, one-class, constant, huge (1e30), tiny-N, tied and masked
    data against a 60-digit gradient: ``T > 0`` and ``|NLL'(1 / T)| < 1e-10``
    at an interior optimum, or a bound with its warning where ``NLL'`` does
    not point inwards by more than 1e-10. Computation is in float64 whatever
    the input dtype. The solver runs on the host: a torch tensor is read once through
    the explicit conversion ``thermoscope._arrays.to_numpy`` (the answer is a
    number; for a differentiable loss of ``T`` on the device, see
    ``negative_log_likelihood(..., temperature=T)``).

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # right 2 times in 3
    >>> fit = fit_temperature(z, [0, 1, 1])
    >>> round(fit.temperature, 12), fit.bound  # sigmoid(1 / T) = 2 / 3, so T = 1 / ln 2
    (1.442695040889, None)
    >>> z[1] = [1.0, 0.0]  # now every label is its row's argmax: separable
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     fit = fit_temperature(z, [0, 0, 0])
    >>> fit.temperature, fit.bound, caught[0].category.__name__
    (0.0001, 'lower', 'SeparableDataWarning')
    """
    return _fit_nll(
        logits,
        labels,
        "labels",
        min_temperature=min_temperature,
        max_temperature=max_temperature,
        max_iter=max_iter,
        progress=progress,
    )


def _fit_nll(
    logits: Any,
    labels: Any,
    label_name: str,
    *,
    min_temperature: float,
    max_temperature: float,
    max_iter: int,
    progress: bool = False,
) -> TemperatureFit:
    """`fit_temperature`, with the labels' argument name for error messages."""

    lo_t, hi_t = _check_bounds(min_temperature, max_temperature)
    max_iter = _check_max_iter(max_iter)
    derivs: Derivatives | DaskDerivatives
    if is_dask_array(logits):
        derivs = DaskDerivatives(logits, labels, label_name)
    else:
        z, y = logits_and_labels(logits, labels, label_name)
        derivs = Derivatives(z, y, progress=progress)
    first = derivs(1.0)
    nll_one = first[0]
    if derivs.separable():
        warnings.warn(
            "the validation data are perfectly separable (every label is its row's unique "
            "argmax), so the NLL keeps falling as T -> 0; returning the lower bound "
            f"min_temperature={lo_t:g}. Fit on more or harder validation data, or use "
            "objective='ece'.",
            SeparableDataWarning,
            stacklevel=3,
        )
        return TemperatureFit(lo_t, derivs(1.0 / lo_t)[0], nll_one, 1, "lower")
    beta, n_iter, bound, nll = _safeguarded_newton(
        lambda beta: first if beta == 1.0 else derivs(beta), 1.0 / hi_t, 1.0 / lo_t, 1.0, max_iter
    )
    # `bound` names the side in beta; report it in T (small beta = large T).
    t_bound = {"upper": "lower", "lower": "upper", None: None}[bound]
    if t_bound is not None:
        which, value = (
            ("min_temperature", lo_t) if t_bound == "lower" else ("max_temperature", hi_t)
        )
        warnings.warn(
            f"the NLL optimum lies beyond {which}={value:g}; returning that bound "
            "(the logits are nearly separable)"
            if t_bound == "lower"
            else f"the NLL optimum lies beyond {which}={value:g}; returning that bound "
            "(the logits carry no more information than a uniform guess)",
            TemperatureBoundWarning,
            stacklevel=3,
        )
    return TemperatureFit(1.0 / beta, nll, nll_one, n_iter, t_bound)


def temperature_for_confidence(
    logits: Any, target: float, *, min_temperature: float = 1e-6, max_temperature: float = 1e6
) -> float:
    """The temperature at which the mean max-probability of ``softmax(logits / T)`` is ``target``.

    Each row's largest probability falls strictly as ``T`` grows (unless all its
    logits tie), from ``1 / m`` (``m`` tied maxima) at ``T -> 0`` to ``1 / K`` at
    ``T -> inf``; so does their mean, and the answer is unique. Solved by
    bracketing on ``log T`` to machine precision.

    Parameters
    ----------
    logits : array_like, shape (N, C)
        Scores of N rows.
    target : float
        Desired mean confidence, strictly between its values at the bounds.
    min_temperature, max_temperature : float
        The search interval.

    Returns
    -------
    float
        The root finder runs on the host: a torch tensor is read once through
        the explicit conversion ``thermoscope._arrays.to_numpy``.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[2.0, 0.0], [0.0, 1.0]])
    >>> t = temperature_for_confidence(z, 0.8)
    >>> from thermoscope import softmax
    >>> round(float(softmax(z, t).max(axis=1).mean()), 12)
    0.8
    """
    z, _ = as_float_array(logits, "logits")
    if z.ndim != 2:
        raise ValueError(f"`logits` must be a 2-D array (samples, classes), got shape {z.shape}.")
    check_logits(z, "logits")
    lo_t, hi_t = _check_bounds(min_temperature, max_temperature)
    z = z.astype(np.float64)

    def conf(log_t: float) -> float:
        return float(kernel.softmax(z, math.exp(log_t), 1).max(axis=1).mean())

    c_lo, c_hi = conf(math.log(lo_t)), conf(math.log(hi_t))
    if not (isinstance(target, (int, float, np.floating)) and c_hi < target < c_lo):
        raise ValueError(
            f"`target` must be a mean confidence in ({c_hi:.6g}, {c_lo:.6g}) for these logits "
            f"(its values at max_temperature and min_temperature), got {target!r}."
        )
    from scipy import optimize

    root = optimize.brentq(
        lambda u: conf(u) - target, math.log(lo_t), math.log(hi_t), xtol=1e-14, rtol=1e-15
    )
    return math.exp(root)
