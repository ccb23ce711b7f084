"""Temperature schedules: closed-form values, monotonicity, step handling, bad parameters."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from thermoscope.sampling.schedules import (
    Constant,
    Cosine,
    ExponentialDecay,
    Linear,
    Piecewise,
    Schedule,
    WarmupDecay,
    as_schedule,
)

temps = st.floats(0.0, 100.0, allow_nan=False)
positive = st.floats(1e-3, 100.0, allow_nan=False)
lengths = st.integers(1, 5000)


# --- closed-form values ------------------------------------------------------------------------


def test_constant_is_constant_and_allows_the_limits() -> None:
    assert Constant(0.7)(0) == 0.7
    np.testing.assert_array_equal(Constant(0.7)(np.arange(5)), np.full(5, 0.7))
    assert Constant(0.0)(3) == 0.0
    assert Constant(math.inf)(3) == math.inf


def test_linear_endpoints_midpoint_and_hold() -> None:
    s = Linear(2.0, 0.0, steps=10)
    assert s(0) == 2.0
    assert s(5) == pytest.approx(1.0, abs=1e-15)
    assert s(3) == pytest.approx(1.4, abs=1e-15)
    assert s(10) == 0.0
    assert s(10_000) == 0.0
    assert Linear(0.5, 1.5, steps=4)(2) == pytest.approx(1.0)  # rising lines are allowed


def test_cosine_endpoints_midpoint_and_quarter() -> None:
    s = Cosine(1.0, 0.2, steps=8)
    assert s(0) == pytest.approx(1.0, abs=1e-15)
    assert s(4) == pytest.approx(0.6, abs=1e-15)
    assert s(2) == pytest.approx(0.2 + 0.8 * (1 + math.cos(math.pi / 4)) / 2, abs=1e-15)
    assert s(8) == pytest.approx(0.2, abs=1e-15)
    assert s(99) == pytest.approx(0.2, abs=1e-15)


def test_exponential_to_end_is_geometric() -> None:
    s = ExponentialDecay(4.0, end=0.01, steps=10)
    assert s(0) == pytest.approx(4.0, rel=1e-15)
    assert s(5) == pytest.approx(math.sqrt(4.0 * 0.01), rel=1e-14)  # the geometric mean
    assert s(10) == pytest.approx(0.01, rel=1e-14)
    assert s(50) == pytest.approx(0.01, rel=1e-14)
    ratios = s(np.arange(1, 11)) / s(np.arange(0, 10))
    np.testing.assert_allclose(ratios, (0.01 / 4.0) ** 0.1, rtol=1e-13)


def test_exponential_with_rate_and_floor() -> None:
    s = ExponentialDecay(2.0, rate=0.9)
    np.testing.assert_allclose(s(np.arange(20)), 2.0 * 0.9 ** np.arange(20), rtol=1e-13)
    floored = ExponentialDecay(2.0, rate=0.5, end=0.3)
    assert floored(2) == pytest.approx(0.5)
    assert floored(3) == 0.3
    # A very long run underflows to the floor quietly (warnings are errors in this suite).
    assert ExponentialDecay(1.0, rate=0.5)(10**6) == 0.0


def test_warmup_decay_phases() -> None:
    s = WarmupDecay(peak=2.0, warmup_steps=4, decay_steps=10, start=0.4, end=0.1)
    assert s(0) == pytest.approx(0.4)
    assert s(2) == pytest.approx(1.2)
    assert s(4) == pytest.approx(2.0)
    assert s(9) == pytest.approx(0.1 + 1.9 * (1 + math.cos(math.pi / 2)) / 2)
    assert s(14) == pytest.approx(0.1)
    assert s(1000) == pytest.approx(0.1)
    lin = WarmupDecay(peak=1.0, warmup_steps=0, decay_steps=4, end=0.0, decay="linear")
    np.testing.assert_allclose(lin(np.arange(6)), [1.0, 0.75, 0.5, 0.25, 0.0, 0.0])


def test_piecewise_switches_exactly_at_boundaries() -> None:
    s = Piecewise(boundaries=(3, 7), values=(1.0, 0.5, 0.1))
    np.testing.assert_array_equal(s(np.arange(9)), [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.1, 0.1])
    assert Piecewise((), (0.3,))(123) == 0.3
    assert Piecewise([5], [math.inf, 0.0])(0) == math.inf


def test_scalar_step_gives_float_and_array_keeps_shape() -> None:
    s = Linear(1.0, 0.0, 10)
    assert type(s(3)) is float
    assert type(s(np.int64(3))) is float
    out = s(np.arange(6).reshape(2, 3))
    assert out.shape == (2, 3)
    assert out.dtype == np.float64
    assert s(4.0) == s(4)  # integer-valued floats are steps too


# --- properties --------------------------------------------------------------------------------


@given(temps, temps, lengths)
def test_linear_and_cosine_are_monotone_between_their_ends(a: float, b: float, n: int) -> None:
    steps = np.arange(0, n + 3)
    for sched in (Linear(a, b, n), Cosine(a, b, n)):
        d = np.diff(sched(steps))
        tol = 1e-12 * max(a, b, 1.0)
        assert np.all(d <= tol) if b <= a else np.all(d >= -tol)
        vals = sched(steps)
        assert np.all(vals >= min(a, b) - tol)
        assert np.all(vals <= max(a, b) + tol)


@given(positive, positive, lengths)
def test_exponential_decay_is_monotone_and_reaches_end(a: float, b: float, n: int) -> None:
    s = ExponentialDecay(a, end=b, steps=n)
    vals = s(np.arange(0, n + 3))
    d = np.diff(vals)
    assert np.all(d <= 1e-12 * a) if b <= a else np.all(d >= -1e-12 * b)
    assert vals[n] == pytest.approx(b, rel=1e-12)


@given(positive, st.floats(0.5, 1.0), st.floats(0.0, 1.0))
def test_exponential_rate_never_below_floor(a: float, rate: float, frac: float) -> None:
    s = ExponentialDecay(a, rate=rate, end=a * frac)
    vals = s(np.arange(0, 200))
    assert np.all(np.diff(vals) <= 0)
    assert np.all(vals >= a * frac)


@given(temps, temps, temps, st.integers(0, 50), st.integers(1, 50))
def test_warmup_decay_rises_then_falls(
    start: float, peak: float, end: float, warm: int, decay: int
) -> None:
    lo = min(start, peak)
    s = WarmupDecay(peak=peak, warmup_steps=warm, decay_steps=decay, start=lo, end=min(end, peak))
    vals = s(np.arange(0, warm + decay + 3))
    tol = 1e-12 * max(peak, 1.0)
    assert np.all(np.diff(vals[: warm + 1]) >= -tol)
    assert np.all(np.diff(vals[warm:]) <= tol)
    assert vals[warm] == pytest.approx(peak, abs=tol)


def test_schedules_are_frozen_and_hashable() -> None:
    s = Linear(1.0, 0.0, 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.start = 2.0  # type: ignore[misc]
    assert hash(s) == hash(Linear(1.0, 0.0, 10))
    assert s == Linear(1, 0, 10)


def test_as_schedule() -> None:
    assert as_schedule(0.5) == Constant(0.5)
    sched = Cosine(1.0, 0.1, 5)
    assert as_schedule(sched) is sched

    def custom(step: int) -> float:
        return 1.0 / (1.0 + step)

    assert as_schedule(custom) is custom
    assert isinstance(as_schedule(2), Schedule)


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "exc", "message"),
    [
        (lambda: Constant(-0.1), ValueError, "`t` must be >= 0, got -0.1."),
        (lambda: Constant(math.nan), ValueError, "`t` must be a number >= 0, got nan."),
        (lambda: Constant("hot"), TypeError, "`t` must be a number >= 0"),
        (lambda: Constant([0.1, 0.2]), TypeError, "`t` must be a single number"),
        (lambda: Linear(-1.0, 0.0, 10), ValueError, "`start` must be >= 0, got -1.0."),
        (lambda: Linear(1.0, math.nan, 10), ValueError, "`end` must be a number >= 0, got nan."),
        (lambda: Linear(math.inf, 0.0, 10), ValueError, "`start` must be finite, got inf."),
        (lambda: Linear(1.0, 0.0, 0), ValueError, "`steps` must be an integer >= 1, got 0."),
        (lambda: Linear(1.0, 0.0, 2.5), TypeError, "`steps` must be an integer >= 1, got 2.5."),
        (lambda: Cosine(1.0, -2.0, 5), ValueError, "`end` must be >= 0, got -2.0."),
        (lambda: ExponentialDecay(0.0, end=0.1, steps=5), ValueError, "`start` must be > 0"),
        (lambda: ExponentialDecay(1.0, end=0.0, steps=5), ValueError, "`end` must be > 0"),
        (lambda: ExponentialDecay(1.0), ValueError, "`rate` must be given"),
        (lambda: ExponentialDecay(1.0, end=0.1), ValueError, "`rate` must be given"),
        (lambda: ExponentialDecay(1.0, rate=1.5), ValueError, "`rate` must be in (0, 1], got 1.5"),
        (lambda: ExponentialDecay(1.0, rate=0.0), ValueError, "`rate` must be > 0, got 0.0."),
        (lambda: ExponentialDecay(1.0, rate=math.nan), ValueError, "`rate` must be a number"),
        (lambda: ExponentialDecay(1.0, rate=0.9, steps=3), ValueError, "`steps` must be None"),
        (lambda: ExponentialDecay(1.0, rate=0.9, end=2.0), ValueError, "`end` must be <= `start`"),
        (lambda: WarmupDecay(1.0, -1, 5), ValueError, "`warmup_steps` must be an integer >= 0"),
        (lambda: WarmupDecay(1.0, 2, 0), ValueError, "`decay_steps` must be an integer >= 1"),
        (lambda: WarmupDecay(-1.0, 2, 3), ValueError, "`peak` must be >= 0"),
        (lambda: WarmupDecay(1.0, 2, 3, decay="exp"), ValueError, "`decay` must be 'cosine' or"),
        (lambda: Piecewise((5, 5), (1.0, 0.5, 0.1)), ValueError, "`boundaries` must be strictly"),
        (lambda: Piecewise((0,), (1.0, 0.5)), ValueError, "`boundaries` must be an integer >= 1"),
        (lambda: Piecewise((2,), (1.0,)), ValueError, "`values` must have len(boundaries) + 1"),
        (lambda: Piecewise((2,), (1.0, -0.5)), ValueError, "`values` must be >= 0, got -0.5."),
        (lambda: Piecewise((2.5,), (1.0, 0.5)), TypeError, "`boundaries` must be an integer"),
        (lambda: as_schedule(-1.0), ValueError, "`temperature` must be >= 0, got -1.0."),
        (lambda: as_schedule(math.nan), ValueError, "`temperature` must be a number >= 0"),
        (lambda: as_schedule("warm"), TypeError, "`temperature` must be a number >= 0 or a"),
    ],
)
def test_bad_parameters_name_the_argument(build: object, exc: type, message: str) -> None:
    with pytest.raises(exc) as info:
        build()  # type: ignore[operator]
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("step", "exc", "message"),
    [
        (-1, ValueError, "`step` must be an integer >= 0, got -1."),
        (1.5, TypeError, "`step` must be an integer >= 0, got 1.5."),
        ([0, -3], ValueError, "`step` must be an integer >= 0, got -3."),
        ("3", TypeError, "`step` must be an integer >= 0"),
    ],
)
def test_bad_steps(step: object, exc: type, message: str) -> None:
    with pytest.raises(exc) as info:
        Linear(1.0, 0.0, 10)(step)
    assert message in str(info.value)


def test_schedule_options_are_keyword_only():
    with pytest.raises(TypeError):
        ExponentialDecay(1.0, 0.01, 10)  # type: ignore[misc]
    with pytest.raises(TypeError):
        WarmupDecay(1.0, 2, 4, 0.0)  # type: ignore[misc]
