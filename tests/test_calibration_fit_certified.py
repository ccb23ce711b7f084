"""The certified temperature fit: a fuzz over hard data, each answer checked by an exact gradient.

For every case -- random, separable, one-class, constant, huge-logit (1e30),
tiny-N (1 or 2 samples), with ties and masked (-inf) classes -- the fit must
return a finite ``T > 0`` and either

- an interior optimum: ``|d NLL / d beta| < 1e-10`` at ``beta = 1 / T``, the
  gradient computed independently in 60-digit arithmetic (mpmath), no warning; or
- a documented bound: ``T`` equal to ``min_temperature`` (``max_temperature``)
  with the NLL still falling towards it (the exact gradient ``<= 1e-10`` at
  the largest ``beta``, ``>= -1e-10`` at the smallest: the projected-gradient
  optimality condition), and a ``TemperatureBoundWarning`` -- a
  ``SeparableDataWarning`` exactly when every label is its row's unique arg-max.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermoscope.calibration.fit import (
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
    SeparableDataWarning,
    TemperatureBoundWarning,
    fit_temperature,
)

#: The certificate: |d NLL / d beta| below this at an interior optimum.
GRADIENT_TOL = 1e-10
KINDS = (
    "random",
    "separable",
    "near_separable",
    "one_class",
    "constant",
    "huge",
    "huge_entries",
    "tiny",
    "ties",
)


def exact_gradient(z: np.ndarray, y: np.ndarray, beta: float) -> mpmath.mpf:
    """Mean ``E_p[z_i] - z_{i, y_i}`` at ``p = softmax(beta z_i)``, in 60-digit arithmetic."""
    with mpmath.workdps(60):
        b = mpmath.mpf(beta)
        total = mpmath.mpf(0)
        for row, label in zip(z.astype(np.float64), y, strict=True):
            kept = [mpmath.mpf(float(v)) for v in row if v != -np.inf]
            top = max(kept)
            w = [mpmath.exp(b * (v - top)) for v in kept]
            total += mpmath.fsum(wi * v for wi, v in zip(w, kept, strict=True)) / mpmath.fsum(w)
            total -= mpmath.mpf(float(row[label]))
        return total / len(y)


def is_separable(z: np.ndarray, y: np.ndarray) -> bool:
    """Every label is its row's unique maximum (written without the library)."""
    for row, label in zip(z, y, strict=True):
        if any(row[j] >= row[label] for j in range(len(row)) if j != label):
            return False
    return True


@st.composite
def fit_cases(draw: Any) -> tuple[np.ndarray, np.ndarray, str]:
    kind = draw(st.sampled_from(KINDS))
    n = draw(st.integers(1, 2)) if kind == "tiny" else draw(st.integers(1, 10))
    c = draw(st.integers(2, 5))
    if kind == "ties":
        values = st.sampled_from([-1.0, 0.0, 1.0, 2.0])
    else:
        values = st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False)
    z = np.array(draw(st.lists(st.lists(values, min_size=c, max_size=c), min_size=n, max_size=n)))
    scale = draw(st.sampled_from([1e-3, 1.0, 10.0, 100.0, 1e4]))
    z = z * scale
    if kind == "huge":  # whole rows scaled to 1e30
        rows = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        z[rows] *= 1e30 / scale
    if kind == "huge_entries":  # single entries at +-1e30 beside ordinary ones
        hot = np.array(draw(st.lists(st.booleans(), min_size=n * c, max_size=n * c)))
        z.ravel()[hot] = np.sign(z.ravel()[hot] + 0.5) * 1e30
    if kind == "constant":
        z = np.repeat(z[:, :1], c, axis=1)
    labels = st.integers(0, c - 1)
    y = np.array(draw(st.lists(labels, min_size=n, max_size=n)))
    if kind == "one_class":
        y[:] = y[0]
    if kind in ("separable", "near_separable"):
        y = np.argmax(z, axis=1)
        z[np.arange(n), y] += scale  # a unique maximum at the label
        if kind == "near_separable":  # one row wrong by a small margin
            y[0] = (y[0] + 1) % c
            z[0, y[0]] = z[0].max() - scale * draw(st.sampled_from([1e-6, 1e-3, 0.1]))
    if c > 2 and draw(st.booleans()):  # mask one class that is not the label
        col = draw(st.integers(0, c - 1))
        z[y != col, col] = -np.inf
    if draw(st.booleans()):
        z = z.astype(np.float32)
    return z, y, kind


def fit_with_warnings(z: np.ndarray, y: np.ndarray, **kwargs: Any) -> tuple[Any, list[Any]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = fit_temperature(z, y, **kwargs)
    return fit, [w.category for w in caught]


def assert_certified(
    z: np.ndarray,
    y: np.ndarray,
    lo_t: float = MIN_TEMPERATURE,
    hi_t: float = MAX_TEMPERATURE,
    *,
    in_log_beta: bool = False,
) -> Any:
    fit, caught = fit_with_warnings(z, y, min_temperature=lo_t, max_temperature=hi_t)
    t = fit.temperature
    assert math.isfinite(t)
    assert lo_t <= t <= hi_t
    separable = is_separable(z, y)
    if fit.bound is None:
        assert caught == []
        assert not separable
        g = exact_gradient(z, y, 1.0 / t)
        if in_log_beta:
            g = g / t  # d NLL / d log beta = beta * d NLL / d beta
        assert abs(g) < GRADIENT_TOL, (t, float(g))
    else:
        assert len(caught) == 1
        assert issubclass(caught[0], TemperatureBoundWarning)
        assert (caught[0] is SeparableDataWarning) == separable
        # The projected-gradient (KKT) certificate at a bound: the exact gradient may not
        # point inwards by more than the tolerance. It may point inwards by less: inputs
        # such as (1e-3, -1.3e-39) hold information below the resolution of the float64
        # differences z - max z that any float64 solver works with.
        unit = lo_t if fit.bound == "lower" else hi_t
        g = exact_gradient(z, y, 1.0 / unit)
        if in_log_beta:
            g = g / unit
        if fit.bound == "lower":
            assert t == lo_t
            assert g <= GRADIENT_TOL  # NLL falls (or is flat to 1e-10) as T -> 0
        else:
            assert fit.bound == "upper"
            assert t == hi_t
            assert g >= -GRADIENT_TOL  # NLL falls (or is flat to 1e-10) as T -> inf
    return fit


@settings(max_examples=400)
@given(fit_cases())
def test_fit_is_certified(case: tuple[np.ndarray, np.ndarray, str]) -> None:
    z, y, _ = case
    assert_certified(z, y)


@settings(max_examples=150)
@given(fit_cases())
def test_fit_is_certified_with_wide_bounds(case: tuple[np.ndarray, np.ndarray, str]) -> None:
    # Bounds wide enough that huge logits have interior optima near T ~ 1e30. There the
    # certificate is the gradient in log beta (scale-free): in beta itself, one ulp of
    # beta ~ 1e-30 times a curvature ~ 1e60 is ~ 1e14, so |d NLL / d beta| < 1e-10 is
    # not representable in float64 by any solver.
    z, y, _ = case
    assert_certified(z, y, 1e-8, 1e35, in_log_beta=True)


# ---------------------------------------------------------------------------
# The named cases, each with its closed form


def test_one_sample_right() -> None:
    fit, caught = fit_with_warnings(np.array([[2.0, 0.0]]), np.array([0]))
    assert (fit.temperature, fit.bound, caught) == (
        MIN_TEMPERATURE,
        "lower",
        [SeparableDataWarning],
    )


def test_one_sample_wrong() -> None:
    fit, caught = fit_with_warnings(np.array([[2.0, 0.0]]), np.array([1]))
    assert (fit.temperature, fit.bound, caught) == (
        MAX_TEMPERATURE,
        "upper",
        [TemperatureBoundWarning],
    )


def test_two_samples_closed_form() -> None:
    # One right, one wrong by the same gap: sigmoid(2 / T) = 1 / 2 only as T -> inf...
    fit, _ = fit_with_warnings(np.array([[2.0, 0.0], [2.0, 0.0]]), np.array([0, 1]))
    assert fit.bound == "upper"
    # ...while 2 right of 3 with gap g gives sigmoid(g / T) = 2 / 3: T = g / ln 2.
    fit = assert_certified(np.array([[2.0, 0.0], [2.0, 0.0], [0.0, 2.0]]), np.array([0, 1, 1]))
    assert fit.temperature == pytest.approx(2.0 / math.log(2.0), rel=1e-14)


def test_constant_logits_flat_nll() -> None:
    # softmax of a constant row is uniform at every T: the NLL is flat, its gradient exactly 0.
    z = np.full((4, 3), 7.0)
    fit = assert_certified(z, np.array([0, 1, 2, 0]))
    assert fit.bound is None


def test_huge_logits_interior_optimum() -> None:
    # 2 right of 3 with gap 1e30: T = 1e30 / ln 2, beyond the default bound, inside wide ones.
    z = np.array([[1e30, 0.0], [1e30, 0.0], [0.0, 1e30]])
    y = np.array([0, 1, 1])
    fit, caught = fit_with_warnings(z, y)
    assert (fit.bound, caught) == ("upper", [TemperatureBoundWarning])
    fit = fit_temperature(z, y, max_temperature=1e35)
    assert fit.temperature == pytest.approx(1e30 / math.log(2.0), rel=1e-14)


def test_gh_tiny_curvature_at_tiny_beta_no_zero_division() -> None:
    # Found by the fuzz: at beta ~ 1e-27 the curvature h ~ 1e-300 is > 0 but beta * h
    # underflows to 0, and the Newton step divided by it (ZeroDivisionError).
    z = np.array([[0.0, 0.0], [1e30, 0.0], [0.0, 9.70701176e-162]])
    y = np.array([0, 0, 0])
    fit = assert_certified(z, y, 1e-8, 1e35, in_log_beta=True)
    assert fit.bound is None
    assert_certified(z, y)  # the default bounds: the upper bound, with its warning


def test_gh_information_below_float64_resolution_at_bound() -> None:
    # Found by the fuzz: the exact optimum is at T ~ 8e32 because -1.3e-39 makes row 2's
    # margin larger than row 1's, but z - max z rounds both margins to 1e-3 in float64,
    # so the float64 NLL is symmetric and its optimum runs to the upper bound. The exact
    # gradient there is ~ -3e-40 (x beta = 1e-35 in log beta): flat to far below 1e-10.
    z = np.array([[0.0, 1e-3], [1e-3, -1.2936489e-39]])
    fit = assert_certified(z, np.array([0, 0]), 1e-8, 1e35, in_log_beta=True)
    assert fit.bound == "upper"
