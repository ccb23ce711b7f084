"""The bandit policies: Boltzmann (softmax) exploration and its baselines.

A policy turns action-value estimates ``Q`` into a choice. Boltzmann
exploration picks action ``a`` with probability ``softmax(Q / T)_a``: at
``T -> 0`` it is greedy, at ``T -> inf`` uniform, and an annealing schedule
moves from the second towards the first as the estimates improve.
Epsilon-greedy and UCB1 are the baselines that give its regret a meaning.

All policies share one interface, :meth:`BanditPolicy.select`, batched over
rows (one row per independent run), so the simulator
(:func:`thermoscope.rl.run_bandit`) moves thousands of runs at once.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, overload

import numpy as np
from numpy.typing import ArrayLike

from thermoscope import _temperature as kernel
from thermoscope._backend import is_torch
from thermoscope._typing import FloatArray, IntArray
from thermoscope._validation import (
    as_float,
    as_generator,
    check_fraction,
    check_integer,
    check_logits,
    check_temperature,
)
from thermoscope.rl._inputs import counts_like, counts_rows, host, q_native, q_rows, single_int
from thermoscope.sampling.schedules import Constant, as_schedule

if TYPE_CHECKING:
    import torch

__all__ = ["UCB1", "BanditPolicy", "BoltzmannPolicy", "EpsilonGreedy"]


class BanditPolicy(abc.ABC):
    """The shared interface: ``select(q_values, counts, step, rng)`` -> one action per row.

    Subclasses implement :meth:`_select` on clean ``(runs, arms)`` arrays;
    :func:`run_bandit` calls it directly, so a simulation validates once.

    Examples
    --------
    >>> isinstance(EpsilonGreedy(0.1), BanditPolicy)
    True
    """

    #: Whether ``-inf`` action values (unavailable actions) are accepted.
    masked_actions: ClassVar[bool] = False

    def select(
        self,
        q_values: Any,
        counts: Any = None,
        *,
        step: int = 0,
        rng: np.random.Generator | int | None = None,
    ) -> int | IntArray:
        """Choose an action per row.

        Parameters
        ----------
        q_values : array_like or torch.Tensor, shape (arms,) or (runs, arms)
            Action-value estimates.
        counts : array_like of int, same shape, optional
            How often each action was taken so far (needed by :class:`UCB1`;
            zeros when omitted).
        step : int, default 0
            The time step (drives a temperature schedule).
        rng : numpy.random.Generator or int, optional
            Random source or seed; OS entropy when omitted.

        Returns
        -------
        int for 1-D ``q_values``, an int64 array of shape (runs,) for 2-D.

        Notes
        -----
        The draws use a numpy Generator, so they run on the host: a torch
        tensor ``q_values`` (or ``counts``) is read once through the explicit
        host conversion ``thermoscope._arrays.to_numpy``, and the actions are
        numpy integers.

        Examples
        --------
        >>> EpsilonGreedy(0.0).select([[0.1, 0.7], [0.3, 0.2]], rng=0).tolist()
        [1, 0]
        """
        q, single = q_rows(q_values, allow_masked=self.masked_actions)
        n = counts_rows(host(counts, "counts"), q.shape)
        s = single_int(host(step, "step"), "step", 0)
        actions = self._select(q, n, s, as_generator(rng))
        return int(actions[0]) if single else actions

    @abc.abstractmethod
    def _select(
        self, q: FloatArray, counts: IntArray, step: int, rng: np.random.Generator
    ) -> IntArray:
        """Actions (int64, shape (B,)) for clean rows ``q`` and ``counts`` of shape (B, K)."""

    @property
    @abc.abstractmethod
    def label(self) -> str:
        """A short name for tables and plot legends."""


def _inverse_cdf(weights: FloatArray, u: FloatArray) -> IntArray:
    """One draw per row of non-negative ``weights`` (B, K) from one uniform per row ``u`` (B,).

    Arm ``a`` is drawn when ``cdf[a - 1] <= u * total < cdf[a]``, so arms of
    weight 0 are never drawn. ``u * total`` can round up to ``total``; it is
    capped just below it, so the last arm with a positive weight catches it.
    """
    cdf = np.cumsum(weights, axis=-1)
    total = cdf[:, -1]
    target = np.minimum(u * total, np.nextafter(total, 0.0))
    out: IntArray = np.count_nonzero(cdf <= target[:, None], axis=-1).astype(np.int64)
    return out


@dataclass(frozen=True, eq=False)
class BoltzmannPolicy(BanditPolicy):
    """Softmax exploration: pick action ``a`` with probability ``softmax(Q / T)_a``.

    Parameters
    ----------
    temperature : float or schedule
        A fixed ``T >= 0`` (``0``: greedy, ties shared uniformly; ``inf``:
        uniform), or a schedule ``f(step) -> T`` such as
        :class:`~thermoscope.sampling.schedules.ExponentialDecay`. The useful
        range is set by the gaps between action values: ``T`` well below the
        typical gap exploits, well above it explores.

    Notes
    -----
    ``P(a | Q, step) = exp(Q_a / T_step) / sum_b exp(Q_b / T_step)``. ``-inf``
    action values mark unavailable actions (probability 0).

    Examples
    --------
    >>> import numpy as np
    >>> pi = BoltzmannPolicy(0.5)
    >>> np.round(pi.probs([1.0, 0.0, 0.5]), 4)
    array([0.6652, 0.09  , 0.2447])
    >>> pi.sample([[1.0, 0.0, 0.5], [0.0, 3.0, 0.0]], rng=0)
    array([0, 1])
    """

    temperature: float | Callable[[Any], Any]
    #: ``temperature`` as a callable ``step -> T`` (a Constant for a number).
    schedule: Callable[[Any], Any] = field(init=False, repr=False)
    masked_actions: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedule", as_schedule(self.temperature))
        if isinstance(self.schedule, Constant):
            object.__setattr__(self, "temperature", self.schedule.t)

    @property
    def label(self) -> str:
        """``Boltzmann T=0.1`` for a constant, the schedule's repr otherwise."""
        if isinstance(self.schedule, Constant):
            return f"Boltzmann T={self.schedule.t:g}"
        return f"Boltzmann {self.schedule!r}"

    def temperature_at(self, step: Any) -> Any:
        """The temperature at ``step`` (int or array), checked to be >= 0.

        Examples
        --------
        >>> from thermoscope.sampling.schedules import Linear
        >>> BoltzmannPolicy(Linear(1.0, 0.0, steps=10)).temperature_at(5)
        0.5
        """
        step = host(step, "step")
        check_integer(step, "step", minimum=0)
        t = check_temperature(self.schedule(step), "temperature")
        # A schedule returning a tensor (a learnable temperature) keeps it, on its graph.
        return t if is_torch(t) or t.ndim != 0 else float(t)

    @overload
    def probs(self, q_values: torch.Tensor, *, step: Any = 0) -> torch.Tensor: ...
    @overload
    def probs(self, q_values: ArrayLike, *, step: Any = 0) -> FloatArray: ...
    def probs(self, q_values: Any, *, step: Any = 0) -> Any:
        """Action probabilities ``softmax(q_values / T(step))`` along the last axis.

        Parameters
        ----------
        q_values : array_like or torch.Tensor, shape (arms,) or (runs, arms)
            ``-inf`` marks an unavailable action (probability 0).
        step : int or array_like of int, default 0
            A single step, or one per row (shape (runs,)).

        Returns
        -------
        The input's kind and dtype: a numpy array for numpy input; for a
        tensor, a tensor computed with torch operations on its device,
        differentiable with respect to ``q_values``.

        Examples
        --------
        >>> BoltzmannPolicy(0.0).probs([1.0, 3.0, 3.0])
        array([0. , 0.5, 0.5])
        """
        q, back = as_float(q_values, "q_values")
        s = check_integer(host(step, "step"), "step", minimum=0)
        batch = tuple(q.shape[:-1])
        if s.ndim != 0 and s.shape != batch:
            raise ValueError(
                f"`step` must be a single integer or one per row, shape {batch}, "
                f"got shape {s.shape}."
            )
        t = self.temperature_at(s)
        check_logits(q, "q_values")
        return back(kernel.softmax(q, t, -1))

    def sample(
        self,
        q_values: Any,
        *,
        step: Any = 0,
        rng: np.random.Generator | int | None = None,
    ) -> int | IntArray:
        """Draw one action per row from :meth:`probs`.

        Parameters
        ----------
        q_values : array_like or torch.Tensor, shape (arms,) or (runs, arms)
        step : int or array_like of int, default 0
        rng : numpy.random.Generator or int, optional
            Random source or seed; OS entropy when omitted.

        Returns
        -------
        int for 1-D ``q_values``, int64 array of shape (runs,) for 2-D.

        Notes
        -----
        One uniform number per row (``rng.random(runs)``) goes through the
        inverse CDF of the row's probabilities in ascending action order.
        The draws use a numpy Generator, so they run on the host: a torch
        tensor is read once through the explicit host conversion
        ``thermoscope._arrays.to_numpy`` (use :meth:`probs` for on-device,
        differentiable probabilities).

        Examples
        --------
        >>> BoltzmannPolicy(1e-3).sample([0.2, 0.9, 0.1], rng=1)
        1
        """
        q, single = q_rows(q_values, allow_masked=True)
        p = np.atleast_2d(self.probs(q[0] if single else q, step=step))
        actions = _inverse_cdf(p, as_generator(rng).random(q.shape[0]))
        return int(actions[0]) if single else actions

    def _select(
        self, q: FloatArray, counts: IntArray, step: int, rng: np.random.Generator
    ) -> IntArray:
        # The simulator's hot loop: the rows are clean, so the kernel is called
        # directly (no re-validation); it handles T = 0, T = inf and tiny T.
        p = kernel.softmax(q, self.temperature_at(step), -1)
        return _inverse_cdf(p, rng.random(q.shape[0]))


@dataclass(frozen=True, eq=False)
class EpsilonGreedy(BanditPolicy):
    """With probability ``epsilon`` a uniformly random action, otherwise the greedy one.

    Parameters
    ----------
    epsilon : float
        Exploration rate in [0, 1]; typical values 0.01-0.1. ``0`` is greedy.

    Notes
    -----
    ``P(a) = epsilon / K + (1 - epsilon) [a = argmax Q]``. Ties for the
    maximum go to the lowest index (as :func:`numpy.argmax`). Each call to
    :meth:`select` draws ``rng.random(runs)`` (explore when ``< epsilon``)
    and then ``rng.integers(0, K, runs)`` (the random action), in that order.

    Examples
    --------
    >>> EpsilonGreedy(0.3).probs([0.0, 2.0, 1.0])
    array([0.1, 0.8, 0.1])
    """

    epsilon: float

    def __post_init__(self) -> None:
        eps = check_fraction(self.epsilon, "epsilon", low_open=False)
        if eps.ndim != 0:
            raise TypeError(f"`epsilon` must be a single number in [0, 1], got shape {eps.shape}.")
        object.__setattr__(self, "epsilon", float(eps))

    @property
    def label(self) -> str:
        """``epsilon-greedy 0.1``."""
        return f"epsilon-greedy {self.epsilon:g}"

    @overload
    def probs(self, q_values: torch.Tensor) -> torch.Tensor: ...
    @overload
    def probs(self, q_values: ArrayLike) -> FloatArray: ...
    def probs(self, q_values: Any) -> Any:
        """Action probabilities, shape of ``q_values`` (1-D or 2-D).

        The input's kind and dtype: a numpy array for numpy input, a tensor on
        the input's device for a tensor (piecewise constant in ``q_values``, so
        without a gradient).

        Examples
        --------
        >>> EpsilonGreedy(0.0).probs([[1.0, 1.0], [0.0, 1.0]])
        array([[1., 0.],
               [0., 1.]])
        """
        q, single, back = q_native(q_values, allow_masked=False)
        k = int(q.shape[1])
        low, high = self.epsilon / k, self.epsilon / k + (1.0 - self.epsilon)
        p: Any
        if is_torch(q):
            import torch

            best = torch.arange(k, device=q.device) == q.argmax(dim=1, keepdim=True)
            p = torch.where(best, high, low).to(q.dtype)
        else:
            best = np.arange(k) == np.argmax(q, axis=1)[:, None]
            p = np.where(best, high, low)
        return back(p[0] if single else p)

    def _select(
        self, q: FloatArray, counts: IntArray, step: int, rng: np.random.Generator
    ) -> IntArray:
        explore = rng.random(q.shape[0]) < self.epsilon
        random_arm = rng.integers(0, q.shape[1], size=q.shape[0])
        out: IntArray = np.where(explore, random_arm, np.argmax(q, axis=1)).astype(np.int64)
        return out


@dataclass(frozen=True, eq=False)
class UCB1(BanditPolicy):
    """Upper confidence bound: try every arm once, then maximise ``Q + c sqrt(ln n / N)``.

    Parameters
    ----------
    c : float, default sqrt(2)
        Exploration weight, finite and >= 0. ``sqrt(2)`` is Auer et al.'s UCB1
        for rewards in [0, 1]; scale it with the reward spread otherwise.

    Notes
    -----
    ``index_a = Q_a + c * sqrt(ln n / N_a)`` with ``N_a`` the pulls of arm
    ``a`` and ``n = sum_a N_a`` the pulls so far; an arm never pulled has
    index ``+inf``. The chosen arm is the argmax (lowest index on ties), so
    UCB1 is deterministic given its history and draws no random numbers.

    Examples
    --------
    >>> UCB1(c=1.0).select([0.5, 0.4], counts=[10, 1])
    1
    >>> UCB1().select([0.5, 0.4, 0.9], counts=[1, 0, 1])
    1
    """

    c: float = math.sqrt(2.0)

    def __post_init__(self) -> None:
        try:
            c = float(self.c)
        except (TypeError, ValueError):
            raise TypeError(f"`c` must be a finite number >= 0, got {self.c!r}.") from None
        if not math.isfinite(c) or c < 0:
            raise ValueError(f"`c` must be a finite number >= 0, got {c!r}.")
        object.__setattr__(self, "c", c)

    @property
    def label(self) -> str:
        """``UCB1 c=1.41``."""
        return f"UCB1 c={self.c:.3g}"

    @overload
    def index(self, q_values: torch.Tensor, counts: Any) -> torch.Tensor: ...
    @overload
    def index(self, q_values: ArrayLike, counts: Any) -> FloatArray: ...
    def index(self, q_values: Any, counts: Any) -> Any:
        """The upper confidence bound of every arm (``inf`` for arms never pulled).

        The input's kind and dtype: a numpy array for numpy ``q_values``; for
        a tensor, a tensor computed on its device (``counts`` as a tensor
        stays there; numpy counts are copied over), differentiable with
        respect to ``q_values``.

        Examples
        --------
        >>> import numpy as np
        >>> np.round(UCB1(c=1.0).index([0.5, 0.4], [3, 1]), 4)
        array([1.1797, 1.5774])
        """
        q, single, back = q_native(q_values, allow_masked=False)
        if is_torch(q):
            out = self._index_torch(q, counts_like(counts, q))
        else:
            out = self._index(q, counts_rows(host(counts, "counts"), q.shape))
        return back(out[0] if single else out)

    def _index_torch(self, q: Any, counts: Any) -> Any:
        import torch

        total = counts.sum(dim=1, keepdim=True).to(q.dtype)
        pulled = counts > 0
        zero = torch.zeros((), dtype=q.dtype, device=q.device)
        # ln n / N only where N > 0 (then n >= 1 too); never-pulled arms are +inf.
        ratio = torch.where(pulled, torch.log(torch.clamp(total, min=1.0)), zero)
        ratio = ratio / torch.where(pulled, counts.to(q.dtype), zero + 1)
        inf = torch.full((), math.inf, dtype=q.dtype, device=q.device)
        return torch.where(pulled, q + self.c * torch.sqrt(ratio), inf)

    def _index(self, q: FloatArray, counts: IntArray) -> FloatArray:
        total = counts.sum(axis=1, keepdims=True).astype(np.float64)
        pulled = counts > 0
        # ln n / N only where N > 0 (then n >= 1 too); never-pulled arms are +inf.
        ratio = np.divide(
            np.log(np.maximum(total, 1.0)), counts, out=np.zeros(q.shape), where=pulled
        )
        return np.where(pulled, q + self.c * np.sqrt(ratio), np.inf)

    def _select(
        self, q: FloatArray, counts: IntArray, step: int, rng: np.random.Generator
    ) -> IntArray:
        out: IntArray = np.argmax(self._index(q, counts), axis=1).astype(np.int64)
        return out
