"""Temperature scaling, fitted exactly: one convex 1-D problem solved to machine precision.

Temperature scaling (Guo et al., 2017) replaces a classifier's probabilities
``softmax(z)`` by ``softmax(z / T)`` with one ``T > 0`` fitted on held-out
data. ``T > 1`` softens an overconfident model, ``T < 1`` sharpens an
underconfident one; the predicted class (the argmax) never changes.

The classic recipe runs a fixed number of LBFGS steps on ``T``. Here the fit is
exact: in ``beta = 1 / T`` the mean negative log-likelihood

    NLL(beta) = (1/N) sum_i [ logsumexp(beta z_i) - beta z_{i, y_i} ]

is convex, with closed-form derivatives

    NLL'(beta)  = (1/N) sum_i ( E_p[z_i] - z_{i, y_i} ),
    NLL''(beta) = (1/N) sum_i Var_p(z_i) >= 0,   p = softmax(beta z_i),

so a safeguarded Newton iteration (Newton steps inside a shrinking bracket,
bisection in ``log beta`` when a step leaves it or stalls) converges
quadratically to the unique minimiser. Each iteration is one pass over the
data: chunked in memory, streamed for memory-mapped ``.npy`` files, and one
map-reduce for Dask arrays.
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from thermoscope import _temperature as kernel
from thermoscope._arrays import to_numpy
from thermoscope._backend import is_torch
from thermoscope._files import write_text_atomic
from thermoscope._validation import as_float, as_float_array, check_logits

__all__ = [
    "NotFittedError",
    "SeparableDataWarning",
    "TemperatureBoundWarning",
    "TemperatureFit",
    "TemperatureScaler",
    "fit_temperature",
    "temperature_for_confidence",
]

#: Default bounds on the fitted temperature (see `fit_temperature`).
MIN_TEMPERATURE = 1e-4
MAX_TEMPERATURE = 1e4
#: Rows per chunk: a (4096, C) float64 buffer stays in cache for typical C.
_CHUNK_ROWS = 4096
#: JSON format tag and version written by `TemperatureScaler.to_json`.
JSON_FORMAT = "thermoscope.temperature"
JSON_VERSION = 1
# Masked (-inf) logits are stored as this finite value in the shifted copy, so
# exp(beta * s) is exactly 0 there and the products 0 * s stay 0 (0 * -inf is NaN).
_MASKED = -1e300


class TemperatureBoundWarning(UserWarning):
    """The NLL optimum lies outside ``[min_temperature, max_temperature]``; a bound was returned."""


class SeparableDataWarning(TemperatureBoundWarning):
    """Every label is its row's strict argmax, so the NLL falls all the way to ``T -> 0``."""


class NotFittedError(ValueError, AttributeError):
    """A `TemperatureScaler` was used before ``fit`` (same bases as scikit-learn's)."""


def _has_tqdm() -> bool:
    """tqdm is optional (the "progress" extra)."""
    import importlib.util

    return importlib.util.find_spec("tqdm") is not None


def _is_dask(x: object) -> bool:
    """True for a Dask array, without importing dask."""
    return type(x).__module__.split(".")[0] == "dask" and hasattr(x, "chunks")


# --------------------------------------------------------------------------- inputs


def check_labels(labels: Any, n_rows: int, n_classes: int, name: str = "labels") -> np.ndarray:
    """Class indices as an int64 array of shape ``(n_rows,)`` with values in ``[0, n_classes)``.

    Integral floats (``3.0``, as CSV files give) are accepted; anything else
    non-integer is a TypeError, an index out of range a ValueError.

    Examples
    --------
    >>> check_labels([0, 2.0, 1], 3, 3)
    array([0, 2, 1])
    """
    arr, _ = to_numpy(labels, name)
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-D array of class indices, got shape {arr.shape}.")
    if arr.shape[0] != n_rows:
        raise ValueError(
            f"`{name}` must have one label per row of logits ({n_rows}), got {arr.shape[0]}."
        )
    if arr.dtype == np.bool_:
        raise TypeError(f"`{name}` must be integer class indices, got dtype bool.")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if np.any(bad):
            raise TypeError(
                f"`{name}` must be integer class indices, got {float(arr[bad][0])!r} "
                f"at index {int(np.argmax(bad))}."
            )
    out = arr.astype(np.int64)
    wrong = (out < 0) | (out >= n_classes)
    if np.any(wrong):
        i = int(np.argmax(wrong))
        raise ValueError(
            f"`{name}` must be class indices in [0, {n_classes}), got {int(out[i])} at index {i}."
        )
    return out


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


def _prepare(logits: Any, labels: Any, label_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validated numpy logits (N, C), C >= 2, and labels; memmaps stay memmaps."""
    if isinstance(logits, np.memmap):
        z: np.ndarray = logits
        if z.dtype.kind != "f" and z.dtype.kind not in "iu":
            raise TypeError(f"`logits` must be a numeric array, got dtype {z.dtype}.")
        if z.size == 0:
            raise ValueError(f"`logits` must not be empty, got shape {z.shape}.")
    else:
        z, _ = as_float_array(logits, "logits")
    if z.ndim != 2:
        raise ValueError(
            f"`logits` must be a 2-D array (samples, classes), got shape {tuple(z.shape)}."
        )
    if z.shape[1] < 2:
        raise ValueError(
            f"`logits` must have at least 2 classes (columns), got shape {tuple(z.shape)}."
        )
    y = check_labels(labels, z.shape[0], z.shape[1], label_name)
    if not isinstance(z, np.memmap):
        check_logits(z, "logits")
    return z, y


# --------------------------------------------------------------------------- kernels


class _Derivatives:
    """Mean NLL and its first two derivatives in beta, one pass over the data per call.

    In memory, the shifted logits ``s = z - max_j z`` are computed once (the
    row max of ``beta z`` is ``beta max z`` for every ``beta > 0``); a
    memory-mapped input is streamed and shifted chunk by chunk on every pass,
    so memory stays independent of N.
    """

    def __init__(self, z: np.ndarray, y: np.ndarray, progress: bool = False) -> None:
        self.n = z.shape[0]
        self.y = y
        self.z = z
        self.progress = progress
        self.streaming = isinstance(z, np.memmap)
        offset = 0.0
        self.shifted: list[np.ndarray] = []
        for lo, hi in self._ranges():
            s, gap, _ = self._shift(lo, hi, validate=self.streaming)
            offset += float(gap.sum())
            if not self.streaming:
                self.shifted.append(s)
        #: c = mean_i (max_j z_ij - z_{i, y_i}) >= 0, the beta-independent part of NLL'.
        self.offset = offset / self.n

    def _ranges(self) -> Iterator[tuple[int, int]]:
        starts = range(0, self.n, _CHUNK_ROWS)
        if self.progress and self.streaming and _has_tqdm():
            from tqdm.auto import tqdm

            starts = tqdm(
                starts,
                desc="pass over logits",
                unit="chunk",
                leave=False,
                disable=not sys.stderr.isatty(),
                file=sys.stderr,
            )
        for lo in starts:
            yield lo, min(lo + _CHUNK_ROWS, self.n)

    def _shift(self, lo: int, hi: int, validate: bool) -> tuple[np.ndarray, np.ndarray, bool]:
        z = np.asarray(self.z[lo:hi], dtype=np.float64)
        if validate:
            try:
                check_logits(z, "logits")
            except ValueError as exc:
                raise ValueError(f"{exc} (rows {lo}..{hi - 1})") from None
        top = z.max(axis=1, keepdims=True)
        s = z - top
        masked = np.isneginf(s)
        if masked.any():
            s[masked] = _MASKED
        rows = np.arange(hi - lo)
        true = s[rows, self.y[lo:hi]]
        if np.any(true <= _MASKED):
            i = lo + int(np.argmax(true <= _MASKED))
            raise ValueError(
                f"`logits` must be finite at each row's label (a -inf there makes the NLL "
                f"infinite at every temperature), got -inf at row {i}, label {int(self.y[i])}."
            )
        return s, -true, bool(masked.any())

    def chunks(self) -> Iterator[np.ndarray]:
        if self.streaming:
            for lo, hi in self._ranges():
                yield self._shift(lo, hi, validate=False)[0]
        else:
            yield from self.shifted

    def __call__(self, beta: float) -> tuple[float, float, float]:
        """``(NLL, NLL', NLL'')`` at ``beta``, all means over the rows."""
        log_s0 = mean_s = var_s = 0.0
        for s in self.chunks():
            # A fused scan over logits already shifted to a row maximum of 0:
            # the kernel's unnormalised weights exp(beta * s), reduced by three
            # BLAS matrix-vector products (the full softmax would redo the row
            # maximum and normalise, 2-3x slower per Newton pass here).
            buf = kernel.tempered_weights(s, beta)
            ones = np.ones(s.shape[1])
            s0 = buf @ ones
            buf *= s
            s1 = buf @ ones
            buf *= s
            s2 = buf @ ones
            m1 = s1 / s0
            log_s0 += float(np.log(s0).sum())
            mean_s += float(m1.sum())
            # Var = E[s^2] - E[s]^2 is safe here: the largest probability sits at
            # s = 0, so E[s]^2 never dwarfs E[s^2] (no catastrophic cancellation).
            var_s += float(np.maximum(s2 / s0 - m1 * m1, 0.0).sum())
        n = self.n
        return (
            log_s0 / n + beta * self.offset,
            mean_s / n + self.offset,
            var_s / n,
        )

    def separable(self) -> bool:
        """True when every label is its row's unique maximum (NLL -> 0 as T -> 0)."""
        for lo, s in zip(range(0, self.n, _CHUNK_ROWS), self.chunks(), strict=False):
            rows = np.arange(s.shape[0])
            y = self.y[lo : lo + s.shape[0]]
            if np.any(s[rows, y] != 0) or np.any(np.count_nonzero(s == 0, axis=1) != 1):
                return False
        return True


class _DaskDerivatives:
    """The same derivatives for Dask arrays: each call is one map-reduce."""

    def __init__(self, z: Any, y: Any, label_name: str = "labels") -> None:
        import dask
        import dask.array as da

        if z.ndim != 2:
            raise ValueError(
                f"`logits` must be a 2-D array (samples, classes), got shape {tuple(z.shape)}."
            )
        if z.shape[1] < 2:
            raise ValueError(
                f"`logits` must have at least 2 classes (columns), got shape {tuple(z.shape)}."
            )
        if z.shape[0] == 0:
            raise ValueError(f"`logits` must not be empty, got shape {tuple(z.shape)}.")
        y = y if _is_dask(y) else da.from_array(np.asarray(y), chunks=(z.chunks[0],))
        if y.ndim != 1 or y.shape[0] != z.shape[0]:
            raise ValueError(
                f"`{label_name}` must have one label per row of logits ({z.shape[0]}), "
                f"got shape {tuple(y.shape)}."
            )
        if y.dtype.kind not in "iu":
            raise TypeError(f"`{label_name}` must be integer class indices, got dtype {y.dtype}.")
        z = z.rechunk({1: -1})
        y = y.rechunk((z.chunks[0],))
        checks = da.map_blocks(
            _block_checks, z, y[:, None], dtype=np.int64, chunks=((1,) * z.numblocks[0], (4,))
        ).sum(axis=0)
        counts, lo, hi = dask.compute(checks, y.min(), y.max())
        bad_values, bad_rows, dead_label, nonseparable = (int(v) for v in counts)
        if lo < 0 or hi >= z.shape[1]:
            got = int(lo) if lo < 0 else int(hi)
            raise ValueError(
                f"`{label_name}` must be class indices in [0, {z.shape[1]}), got {got}."
            )
        if bad_values:
            raise ValueError(
                f"`logits` must be finite or -inf (masked), got {bad_values} NaN/+inf."
            )
        if bad_rows:
            raise ValueError("`logits` must keep at least one finite entry per row.")
        if dead_label:
            raise ValueError("`logits` must be finite at each row's label, got -inf there.")
        self.z, self.y = z, y
        self.n = z.shape[0]
        self.is_separable = nonseparable == 0

    def __call__(self, beta: float) -> tuple[float, float, float]:
        from thermoscope.calibration.distributed import nll_derivatives_dask

        nll, grad, hess, n = nll_derivatives_dask(self.z, self.y, beta)
        return float(nll) / n, float(grad) / n, float(hess) / n

    def separable(self) -> bool:
        return self.is_separable


def _block_checks(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-block counts: bad values, all -inf rows, -inf at the label, non-separable rows."""
    y = y[:, 0]
    rows = np.arange(z.shape[0])
    finite = np.isfinite(z)
    bad = int(np.count_nonzero(np.isnan(z) | np.isposinf(z)))
    dead = int(np.count_nonzero(~finite.any(axis=1)))
    safe_y = np.clip(y, 0, z.shape[1] - 1)
    true = z[rows, safe_y]
    top = z.max(axis=1) if z.size else np.zeros(0)
    unique_top = np.count_nonzero(z == top[:, None], axis=1) == 1
    nonsep = int(np.count_nonzero(~((true == top) & unique_top)))
    return np.array([[bad, dead, int(np.count_nonzero(np.isneginf(true))), nonsep]])


# --------------------------------------------------------------------------- solver


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
        du = -g / (beta * h) if h > 0 else math.nan
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
                nxt = math.sqrt(a * b)
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
    which is machine precision. Computation is in float64 whatever the input
    dtype. The solver runs on the host: a torch tensor is read once through
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
    derivs: _Derivatives | _DaskDerivatives
    if _is_dask(logits):
        derivs = _DaskDerivatives(logits, labels, label_name)
    else:
        z, y = _prepare(logits, labels, label_name)
        derivs = _Derivatives(z, y, progress=progress)
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


def _fit_ece(
    logits: Any, labels: Any, t_nll: float, n_bins: int, lo_t: float, hi_t: float
) -> float:
    """Minimise ECE over T by a log grid around the NLL optimum, refined by bounded Brent."""
    from thermoscope.calibration.metrics import expected_calibration_error

    z, y = _prepare(logits, labels, "y")
    z = np.asarray(z, dtype=np.float64)

    def ece(log_t: float) -> float:
        probs = kernel.softmax(z, math.exp(log_t), 1)
        return float(expected_calibration_error(probs, y, n_bins=n_bins))

    center = math.log(t_nll)
    lo, hi = (
        max(center - math.log(10.0), math.log(lo_t)),
        min(center + math.log(10.0), math.log(hi_t)),
    )
    grid = np.linspace(lo, hi, 61)
    values = [ece(u) for u in grid]
    k = int(np.argmin(values))
    left, right = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    from scipy import optimize  # loaded on first use: `import thermoscope` stays light

    best = optimize.minimize_scalar(ece, bounds=(left, right), method="bounded")
    log_t = float(best.x) if best.fun <= values[k] else float(grid[k])
    return math.exp(log_t)


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


# --------------------------------------------------------------------------- estimator


_PARAMS = ("objective", "min_temperature", "max_temperature", "max_iter", "n_bins", "verbose")


class TemperatureScaler:
    """Temperature scaling as a scikit-learn-compatible estimator on logits.

    ``fit(logits, y)`` finds ``T``; ``transform`` returns ``logits / T`` and
    ``predict_proba`` returns ``softmax(logits / T)``. scikit-learn is not
    imported: the class follows its conventions (keyword-only ``__init__``
    that only stores, ``get_params``/``set_params``, trailing-underscore fitted
    attributes), so ``sklearn.base.clone`` and pipelines work.

    Parameters
    ----------
    objective : {"nll", "ece"}, default "nll"
        ``"nll"``: the exact convex fit (`fit_temperature`). ``"ece"``:
        minimise top-label ECE with ``n_bins`` equal-width bins, searched on a
        61-point log grid over ``[T_nll / 10, 10 T_nll]`` and refined with
        bounded Brent. ECE is neither smooth nor convex in ``T``: that is a
        careful search, not a certificate; NLL is the recommended objective.
    min_temperature, max_temperature : float, default 1e-4 and 1e4
        Bounds on ``T`` (see `fit_temperature`).
    max_iter : int, default 100
        Cap on solver passes over the data.
    n_bins : int, default 15
        Bins for ``objective="ece"``.
    verbose : bool, default False
        Show a progress bar (stderr, terminals only) for each pass over a
        memory-mapped input.

    Attributes
    ----------
    temperature_ : float
        The fitted temperature.
    n_iter_ : int
        Passes over the data made by the NLL solver.
    n_classes_ : int
        Number of classes (columns) seen in ``fit``.
    nll_ : float
        Mean NLL on the fit data at ``temperature_`` (for ``"nll"``).

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0]])  # confident, right 2 times in 3
    >>> scaler = TemperatureScaler().fit(z, [0, 1, 1])
    >>> round(scaler.temperature_, 6)  # 3 / ln 2
    4.328085
    >>> np.round(scaler.predict_proba(z[:1]), 4)  # confidence 2/3, as observed
    array([[0.6667, 0.3333]])
    """

    def __init__(
        self,
        *,
        objective: str = "nll",
        min_temperature: float = MIN_TEMPERATURE,
        max_temperature: float = MAX_TEMPERATURE,
        max_iter: int = 100,
        n_bins: int = 15,
        verbose: bool = False,
    ) -> None:
        self.objective = objective
        self.min_temperature = min_temperature
        self.max_temperature = max_temperature
        self.max_iter = max_iter
        self.n_bins = n_bins
        self.verbose = verbose

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, as scikit-learn's ``clone`` expects.

        Examples
        --------
        >>> TemperatureScaler(objective="ece").get_params()["objective"]
        'ece'
        """
        return {name: getattr(self, name) for name in _PARAMS}

    def set_params(self, **params: Any) -> TemperatureScaler:
        """Set constructor parameters; unknown names are a ValueError.

        Examples
        --------
        >>> TemperatureScaler().set_params(max_iter=20).max_iter
        20
        """
        for name, value in params.items():
            if name not in _PARAMS:
                raise ValueError(
                    f"`{name}` must be one of the parameters {', '.join(_PARAMS)}, got {name!r}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = TemperatureScaler()
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if v != getattr(defaults, k)]
        return f"TemperatureScaler({', '.join(changed)})"

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "temperature_")

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's estimator tags (a transformer that needs labels), built on demand."""
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=True),
            transformer_tags=TransformerTags(preserves_dtype=["float64", "float32"]),
            input_tags=InputTags(two_d_array=True, allow_nan=False),
        )

    def _check_params(self) -> None:
        if self.objective not in ("nll", "ece"):
            raise ValueError(f"`objective` must be 'nll' or 'ece', got {self.objective!r}.")
        if isinstance(self.n_bins, bool) or not isinstance(self.n_bins, (int, np.integer)):
            raise TypeError(f"`n_bins` must be an integer >= 1, got {self.n_bins!r}.")
        if self.n_bins < 1:
            raise ValueError(f"`n_bins` must be an integer >= 1, got {self.n_bins!r}.")

    def fit(self, logits: Any, y: Any) -> TemperatureScaler:
        """Fit ``T`` on validation ``logits`` (N, C) and labels ``y`` (N,); return ``self``.

        Accepts numpy arrays, torch tensors, memory-mapped arrays and Dask
        arrays (``objective="nll"`` only for Dask). The solver runs on the
        host: a tensor is read once through ``thermoscope._arrays.to_numpy``.

        Examples
        --------
        >>> import numpy as np
        >>> z = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
        >>> round(TemperatureScaler().fit(z, [0, 1, 1]).temperature_, 12)  # 1 / ln 2
        1.442695040889
        """
        self._check_params()
        if _is_dask(logits) and self.objective == "ece":
            raise ValueError("`objective` must be 'nll' for Dask arrays, got 'ece'.")
        result = _fit_nll(
            logits,
            y,
            "y",
            min_temperature=self.min_temperature,
            max_temperature=self.max_temperature,
            max_iter=self.max_iter,
            progress=bool(self.verbose),
        )
        temperature = result.temperature
        if self.objective == "ece":
            temperature = _fit_ece(
                logits,
                y,
                temperature,
                self.n_bins,
                *_check_bounds(self.min_temperature, self.max_temperature),
            )
        self.temperature_ = float(temperature)
        self.n_iter_ = result.n_iter
        self.nll_ = result.nll
        self.n_classes_ = int(np.shape(logits)[1])
        return self

    def _fitted_temperature(self) -> float:
        if not hasattr(self, "temperature_"):
            raise NotFittedError(
                "This TemperatureScaler is not fitted yet: call `fit(logits, y)` "
                "or load one with `TemperatureScaler.from_json(path)`."
            )
        return self.temperature_

    def transform(self, logits: Any) -> Any:
        """``logits / T``, the same kind (numpy, torch, Dask) as the input.

        A torch tensor is divided on its device in its dtype (float16 and
        bfloat16 are computed in float32), its autograd graph kept.

        Examples
        --------
        >>> import numpy as np
        >>> s = TemperatureScaler().fit(np.array([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0]]), [0, 1, 1])
        >>> np.round(s.transform([[1.0, 2.0]]), 4)  # divided by T = 3 / ln 2
        array([[0.231 , 0.4621]])
        """
        t = self._fitted_temperature()
        if _is_dask(logits):
            return logits / t
        z, back = as_float(logits, "logits")
        check_logits(z, "logits")
        return back(z / t)

    def predict_proba(self, logits: Any) -> Any:
        """Calibrated probabilities ``softmax(logits / T)`` along the last axis.

        The same kind as the input: a torch tensor gives a tensor computed by
        the temperature kernel on its device, differentiable in the logits.

        Examples
        --------
        >>> import numpy as np
        >>> s = TemperatureScaler().fit(np.array([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0]]), [0, 1, 1])
        >>> np.round(s.predict_proba([[0.0, 0.0]]), 4)
        array([[0.5, 0.5]])
        """
        from thermoscope.core import softmax

        t = self._fitted_temperature()
        if _is_dask(logits):
            return logits.rechunk({logits.ndim - 1: -1}).map_blocks(
                lambda block: softmax(block, t), dtype=np.float64
            )
        return softmax(logits, t)

    def predict(self, logits: Any) -> Any:
        """The predicted class, ``argmax`` of the logits (temperature never changes it).

        numpy input gives a numpy array, a torch tensor an int64 tensor on its device.

        Examples
        --------
        >>> import numpy as np
        >>> s = TemperatureScaler().fit(np.array([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0]]), [0, 1, 1])
        >>> s.predict([[0.2, 1.0]])
        array([1])
        """
        self._fitted_temperature()
        if is_torch(logits):
            return logits.argmax(dim=-1)
        z, _ = to_numpy(logits, "logits")
        return np.argmax(z, axis=-1)

    # ------------------------------------------------------------------ JSON

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted temperature and parameters to ``path`` atomically; return the path.

        The file is written to a temporary file in the same directory and
        moved into place with ``os.replace``, so a reader never sees half a file.

        Examples
        --------
        >>> import numpy as np, tempfile, pathlib
        >>> s = TemperatureScaler().fit(np.array([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0]]), [0, 1, 1])
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = s.to_json(pathlib.Path(d) / "t.json")
        ...     round(TemperatureScaler.from_json(p).temperature_, 6) == round(s.temperature_, 6)
        True
        """
        t = self._fitted_temperature()
        payload = {
            "format": JSON_FORMAT,
            "version": JSON_VERSION,
            "temperature": t,
            "params": self.get_params(),
            "n_iter": int(getattr(self, "n_iter_", 0)),
            "n_classes": int(getattr(self, "n_classes_", 0)),
        }
        return write_text_atomic(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> TemperatureScaler:
        """Load a scaler saved by `to_json`; a malformed file is a ValueError naming file and field.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = pathlib.Path(d) / "t.json"
        ...     _ = p.write_text('{"format": "thermoscope.temperature", "version": 1, '
        ...                      '"temperature": 1.5}')
        ...     TemperatureScaler.from_json(p).temperature_
        1.5
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValueError(f"`path` must be an existing JSON file, got {str(path)!r}.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"`path` must be a readable UTF-8 JSON file, got {str(path)!r}: {exc}"
            ) from None
        try:
            data = json.loads(text, parse_constant=lambda c: float(c))
        except json.JSONDecodeError as exc:
            raise ValueError(f"`{path}` must be valid JSON, got a parse error: {exc}.") from None
        if not isinstance(data, dict):
            raise ValueError(f"`{path}` must hold a JSON object, got {type(data).__name__}.")
        if data.get("format") != JSON_FORMAT:
            raise ValueError(
                f"field `format` in {path} must be {JSON_FORMAT!r}, got {data.get('format')!r}."
            )
        if data.get("version") != JSON_VERSION:
            raise ValueError(
                f"field `version` in {path} must be {JSON_VERSION}, got {data.get('version')!r}."
            )
        t = data.get("temperature")
        if (
            isinstance(t, bool)
            or not isinstance(t, (int, float))
            or not (math.isfinite(t) and t > 0)
        ):
            raise ValueError(
                f"field `temperature` in {path} must be a finite number > 0, got {t!r}."
            )
        params = data.get("params", {})
        if not isinstance(params, dict) or set(params) - set(_PARAMS):
            raise ValueError(
                f"field `params` in {path} must be an object with keys among "
                f"{', '.join(_PARAMS)}, got {params!r}."
            )
        scaler = cls(**params)
        try:
            scaler._check_params()
            _check_bounds(scaler.min_temperature, scaler.max_temperature)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"field `params` in {path} is invalid: {exc}") from None
        scaler.temperature_ = float(t)
        for key, attr in (("n_iter", "n_iter_"), ("n_classes", "n_classes_")):
            value = data.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                setattr(scaler, attr, value)
        return scaler
