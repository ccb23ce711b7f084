"""Temperature schedules: ``schedule(step) -> temperature``, shared by generation and RL.

Each schedule is a small frozen dataclass, validated when it is built, and
callable on a step (an integer >= 0, giving a float) or on an array of steps
(giving a float64 array of the same shape). Steps count from 0: the first
token of a generation, the first pull of a bandit. Schedules that run for a
fixed number of ``steps`` reach their ``end`` at step ``steps`` and stay there.

Examples
--------
>>> import numpy as np
>>> from thermoscope.sampling.schedules import Linear, Piecewise
>>> Linear(1.0, 0.0, steps=4)(np.arange(6))
array([1.  , 0.75, 0.5 , 0.25, 0.  , 0.  ])
>>> Piecewise(boundaries=(2, 4), values=(1.0, 0.5, 0.1))(3)
0.5
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from thermoscope._typing import Array
from thermoscope._validation import check_integer, check_temperature

__all__ = [
    "Constant",
    "Cosine",
    "ExponentialDecay",
    "Linear",
    "Piecewise",
    "Schedule",
    "WarmupDecay",
    "as_schedule",
]


def _temperature(value: Any, name: str, *, finite: bool = True, positive: bool = False) -> float:
    """One validated temperature: a single number >= 0 (or > 0), finite unless allowed."""
    arr = check_temperature(value, name)
    if arr.ndim != 0:
        raise TypeError(f"`{name}` must be a single number, got shape {arr.shape}.")
    t = float(arr)
    if finite and math.isinf(t):
        raise ValueError(f"`{name}` must be finite, got {t!r}.")
    if positive and t == 0:
        raise ValueError(f"`{name}` must be > 0, got {t!r}.")
    return t


def _count(value: Any, name: str, minimum: int) -> int:
    arr = check_integer(value, name, minimum)
    if arr.ndim != 0:
        raise TypeError(f"`{name}` must be a single integer >= {minimum}, got shape {arr.shape}.")
    return int(arr)


def _progress(s: Array, steps: int) -> Array:
    """Fraction of the way through ``steps``, clipped to [0, 1]."""
    return np.minimum(s, steps) / steps


class Schedule(abc.ABC):
    """Base class: validates the step, computes the temperature with :meth:`at`.

    Any callable ``f(step) -> temperature`` works where a schedule is
    accepted; subclassing ``Schedule`` adds step validation and array steps.

    Examples
    --------
    >>> isinstance(Constant(0.7), Schedule)
    True
    """

    def __call__(self, step: Any) -> Any:
        """Temperature at ``step`` (int >= 0, or an array of them).

        Returns a float for a single step, a float64 array for an array of steps.

        Examples
        --------
        >>> Linear(1.0, 0.5, 10)(5)
        0.75
        >>> Linear(1.0, 0.5, 10)([0, 10])
        array([1. , 0.5])
        """
        s = check_integer(step, "step", minimum=0)
        t = self.at(s.astype(np.float64))
        return float(t) if s.ndim == 0 else t

    @abc.abstractmethod
    def at(self, s: Array) -> Array:
        """The temperature at validated steps ``s`` (float64 array, values >= 0).

        Subclasses implement it; ``__call__`` validates the steps and calls it.

        Examples
        --------
        >>> Constant(0.7).at(np.array([0.0, 3.0]))
        array([0.7, 0.7])
        """


@dataclass(frozen=True)
class Constant(Schedule):
    """The same temperature at every step.

    Parameters
    ----------
    t : float
        Temperature >= 0; ``0`` (greedy) and ``inf`` (uniform) are allowed.

    Examples
    --------
    >>> Constant(0.5)(10)
    0.5
    """

    t: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "t", _temperature(self.t, "t", finite=False))

    def at(self, s: Array) -> Array:
        return np.full(s.shape, self.t)


@dataclass(frozen=True)
class _Ramp(Schedule):
    """A schedule from ``start`` to ``end`` over ``steps``: the fields and checks it shares."""

    start: float
    end: float
    steps: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _temperature(self.start, "start"))
        object.__setattr__(self, "end", _temperature(self.end, "end"))
        object.__setattr__(self, "steps", _count(self.steps, "steps", 1))


@dataclass(frozen=True)
class Linear(_Ramp):
    """Straight line from ``start`` to ``end`` over ``steps``, then ``end``.

    Parameters
    ----------
    start, end : float
        Finite temperatures >= 0 (``end > start`` is allowed: a rising line).
    steps : int
        Number of steps to reach ``end``, >= 1.

    Notes
    -----
    ``T(s) = start + (end - start) * min(s, steps) / steps``: monotone
    (non-increasing when ``end <= start``).

    Examples
    --------
    >>> Linear(2.0, 0.0, steps=10)(5)
    1.0
    """

    def at(self, s: Array) -> Array:
        return self.start + (self.end - self.start) * _progress(s, self.steps)


@dataclass(frozen=True)
class Cosine(_Ramp):
    """Half a cosine from ``start`` to ``end`` over ``steps``, then ``end``.

    Flat at both ends and steepest in the middle: it stays hot (exploring)
    longer than a line, then settles smoothly.

    Parameters
    ----------
    start, end : float
        Finite temperatures >= 0.
    steps : int
        Number of steps to reach ``end``, >= 1.

    Notes
    -----
    ``T(s) = end + (start - end) * (1 + cos(pi * min(s, steps) / steps)) / 2``;
    monotone, and equal to ``(start + end) / 2`` at ``s = steps / 2``.

    Examples
    --------
    >>> Cosine(1.0, 0.0, steps=4)(2)
    0.5
    """

    def at(self, s: Array) -> Array:
        weight = 0.5 * (1.0 + np.cos(np.pi * _progress(s, self.steps)))
        return self.end + (self.start - self.end) * weight


@dataclass(frozen=True)
class ExponentialDecay(Schedule):
    """Geometric annealing: multiply the temperature by a constant factor per step.

    Give either ``end`` and ``steps`` (reach ``end`` at step ``steps``, then
    hold) or ``rate`` (the factor per step), optionally with ``end`` as a
    floor that the temperature never goes below.

    Parameters
    ----------
    start : float
        Finite temperature > 0.
    end : float, optional
        Finite temperature > 0 reached at ``steps`` (with ``steps``), or the
        floor (with ``rate``; then >= 0 and <= ``start``).
    steps : int, optional
        Steps to reach ``end``, >= 1; only together with ``end``.
    rate : float, optional
        Factor per step in (0, 1]; typical values 0.99-0.9999.

    Notes
    -----
    With ``end`` and ``steps``: ``T(s) = start * (end / start) ** (min(s, steps) / steps)``.
    With ``rate``: ``T(s) = max(start * rate ** s, end)`` (``end`` defaults to 0).
    Both are monotone; ``log T`` falls linearly until it stops.

    Examples
    --------
    >>> ExponentialDecay(1.0, end=0.01, steps=2)(1)
    0.1
    >>> ExponentialDecay(1.0, rate=0.5)(3)
    0.125
    >>> ExponentialDecay(1.0, rate=0.5, end=0.2)(3)
    0.2
    """

    start: float
    end: float | None = field(default=None, kw_only=True)
    steps: int | None = field(default=None, kw_only=True)
    rate: float | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _temperature(self.start, "start", positive=True))
        if self.rate is None:
            if self.end is None or self.steps is None:
                raise ValueError(
                    "`rate` must be given, or both `end` and `steps`, "
                    f"got end={self.end!r}, steps={self.steps!r}, rate=None."
                )
            object.__setattr__(self, "end", _temperature(self.end, "end", positive=True))
            object.__setattr__(self, "steps", _count(self.steps, "steps", 1))
            return
        if self.steps is not None:
            raise ValueError(
                f"`steps` must be None when `rate` is given (use `end` as a floor), "
                f"got steps={self.steps!r}."
            )
        rate = _temperature(self.rate, "rate", positive=True)
        if rate > 1:
            raise ValueError(f"`rate` must be in (0, 1], got {rate!r}.")
        object.__setattr__(self, "rate", rate)
        floor = 0.0 if self.end is None else _temperature(self.end, "end")
        if floor > self.start:
            raise ValueError(f"`end` must be <= `start` ({self.start!r}), got {floor!r}.")
        object.__setattr__(self, "end", floor)

    def at(self, s: Array) -> Array:
        if self.rate is None:
            assert self.end is not None  # both set in __post_init__
            assert self.steps is not None
            return self.start * (self.end / self.start) ** _progress(s, self.steps)
        assert self.end is not None
        # Work in log space: rate ** s underflows to 0 for long runs, which is the
        # intended limit (the floor takes over), without an underflow warning.
        with np.errstate(under="ignore"):
            decayed = self.start * np.exp(s * math.log(self.rate))
        return np.maximum(decayed, self.end)


@dataclass(frozen=True)
class WarmupDecay(Schedule):
    """Warm up linearly from ``start`` to ``peak``, then decay to ``end``.

    Parameters
    ----------
    peak : float
        Finite temperature >= 0 reached at step ``warmup_steps``.
    warmup_steps : int
        Length of the warm-up, >= 0 (0: start at ``peak``).
    decay_steps : int
        Length of the decay after the warm-up, >= 1.
    start : float, default 0.0
        Finite temperature >= 0 at step 0.
    end : float, default 0.0
        Finite temperature >= 0 from step ``warmup_steps + decay_steps`` on.
    decay : {"cosine", "linear"}, default "cosine"
        Shape of the decay (see :class:`Cosine` and :class:`Linear`).

    Notes
    -----
    ``T(s) = Linear(start, peak, warmup_steps)(s)`` for ``s < warmup_steps``,
    then ``Decay(peak, end, decay_steps)(s - warmup_steps)``. With
    ``start <= peak >= end`` it rises, peaks once, and falls: monotone on each
    side of the peak.

    Examples
    --------
    >>> import numpy as np
    >>> w = WarmupDecay(peak=1.0, warmup_steps=2, decay_steps=2, end=0.2, decay="linear")
    >>> w(np.arange(6))
    array([0. , 0.5, 1. , 0.6, 0.2, 0.2])
    """

    peak: float
    warmup_steps: int
    decay_steps: int
    start: float = field(default=0.0, kw_only=True)
    end: float = field(default=0.0, kw_only=True)
    decay: Literal["cosine", "linear"] = field(default="cosine", kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "peak", _temperature(self.peak, "peak"))
        object.__setattr__(self, "start", _temperature(self.start, "start"))
        object.__setattr__(self, "end", _temperature(self.end, "end"))
        object.__setattr__(self, "warmup_steps", _count(self.warmup_steps, "warmup_steps", 0))
        object.__setattr__(self, "decay_steps", _count(self.decay_steps, "decay_steps", 1))
        if self.decay not in ("cosine", "linear"):
            raise ValueError(f"`decay` must be 'cosine' or 'linear', got {self.decay!r}.")

    def at(self, s: Array) -> Array:
        shape = Cosine if self.decay == "cosine" else Linear
        falling = shape(self.peak, self.end, self.decay_steps).at(
            np.maximum(s - self.warmup_steps, 0.0)
        )
        if self.warmup_steps == 0:
            return falling
        rising = Linear(self.start, self.peak, self.warmup_steps).at(s)
        return np.where(s < self.warmup_steps, rising, falling)


@dataclass(frozen=True)
class Piecewise(Schedule):
    """A step function: ``values[i]`` from ``boundaries[i - 1]`` up to ``boundaries[i]``.

    Parameters
    ----------
    boundaries : sequence of int
        Strictly increasing steps >= 1 where the temperature changes.
    values : sequence of float
        ``len(boundaries) + 1`` temperatures >= 0 (``0`` and ``inf`` allowed).

    Notes
    -----
    ``T(s) = values[#{b in boundaries : b <= s}]``: the value switches exactly
    at a boundary (step ``boundaries[0]`` already has ``values[1]``).

    Examples
    --------
    >>> Piecewise(boundaries=(10,), values=(1.0, 0.1))(9), Piecewise((10,), (1.0, 0.1))(10)
    (1.0, 0.1)
    """

    boundaries: tuple[int, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        b = np.asarray(self.boundaries)
        if b.ndim != 1:
            raise ValueError(
                f"`boundaries` must be a 1-D sequence of integers, got shape {b.shape}."
            )
        bounds = tuple(int(x) for x in check_integer(b, "boundaries", minimum=1)) if b.size else ()
        if np.any(np.diff(bounds) <= 0):
            raise ValueError(f"`boundaries` must be strictly increasing, got {list(bounds)}.")
        v = check_temperature(self.values, "values")
        if v.ndim != 1 or v.size != len(bounds) + 1:
            raise ValueError(
                f"`values` must have len(boundaries) + 1 = {len(bounds) + 1} entries, "
                f"got shape {v.shape}."
            )
        object.__setattr__(self, "boundaries", bounds)
        object.__setattr__(self, "values", tuple(float(x) for x in v))

    def at(self, s: Array) -> Array:
        index = np.searchsorted(np.asarray(self.boundaries, dtype=np.float64), s, side="right")
        return np.asarray(self.values)[index]


def as_schedule(temperature: Any, name: str = "temperature") -> Callable[[Any], Any]:
    """A schedule from a number (a :class:`Constant`) or a schedule / callable (unchanged).

    Parameters
    ----------
    temperature : float, Schedule or callable
        A fixed temperature >= 0, or any ``f(step) -> temperature``.
    name : str
        The argument name used in error messages.

    Examples
    --------
    >>> as_schedule(0.5)
    Constant(t=0.5)
    >>> as_schedule(Linear(1.0, 0.1, 10))(10)
    0.1
    """
    if callable(temperature):
        schedule: Callable[[Any], Any] = temperature
        return schedule
    if isinstance(temperature, (str, bytes)):
        raise TypeError(f"`{name}` must be a number >= 0 or a schedule, got {temperature!r}.")
    try:
        return Constant(_temperature(temperature, name, finite=False))
    except TypeError:
        raise TypeError(
            f"`{name}` must be a number >= 0 or a schedule, got {temperature!r}."
        ) from None
