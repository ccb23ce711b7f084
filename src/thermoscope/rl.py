"""Boltzmann (softmax) exploration, its baselines, and a vectorised multi-armed bandit.

A policy turns action-value estimates ``Q`` into a choice. Boltzmann
exploration picks action ``a`` with probability ``softmax(Q / T)_a``: at
``T -> 0`` it is greedy, at ``T -> inf`` uniform, and an annealing schedule
moves from the second towards the first as the estimates improve.
Epsilon-greedy and UCB1 are the baselines that give its regret a meaning.

All policies share one interface, :meth:`BanditPolicy.select`, batched over
rows (one row per independent run), so :func:`run_bandit` simulates thousands
of runs at once as ``(runs, arms)`` arrays with a loop over steps only.

Examples
--------
>>> from thermoscope.rl import BoltzmannPolicy, UCB1, run_bandit
>>> a = run_bandit(BoltzmannPolicy(0.1), n_arms=5, n_steps=200, n_runs=100, seed=0)
>>> b = run_bandit(UCB1(), n_arms=5, n_steps=200, n_runs=100, seed=0)
>>> a.regret.shape, bool(a.mean_regret[-1] > 0)
((100, 200), True)
"""

from __future__ import annotations

import abc
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from thermoscope import _temperature as kernel
from thermoscope._arrays import to_numpy
from thermoscope._backend import is_torch
from thermoscope._validation import (
    _show,
    as_float,
    as_float_array,
    as_generator,
    check_fraction,
    check_integer,
    check_logits,
    check_temperature,
)
from thermoscope.sampling.schedules import Constant, as_schedule

Array = np.ndarray[Any, np.dtype[Any]]

__all__ = [
    "UCB1",
    "BanditPolicy",
    "BanditResult",
    "BoltzmannPolicy",
    "EpsilonGreedy",
    "run_bandit",
]


def _single_int(value: Any, name: str, minimum: int) -> int:
    arr = check_integer(value, name, minimum)
    if arr.ndim != 0:
        raise TypeError(f"`{name}` must be a single integer >= {minimum}, got shape {arr.shape}.")
    return int(arr)


def _host(x: Any, name: str) -> Any:
    """A torch tensor's values on the host, through the explicit boundary ``to_numpy``.

    For the functions that draw with a numpy Generator (their draws are host
    values by nature); anything else is returned as is.
    """
    return to_numpy(x, name)[0] if is_torch(x) else x


def _q_native(q_values: Any, *, allow_masked: bool) -> tuple[Any, bool, Any]:
    """``q_values`` as rows (B, K) of their own library and device, in the compute dtype;
    whether the input was 1-D; and the function casting results back to the input's dtype."""
    q, back = as_float(q_values, "q_values")
    if q.ndim > 2:
        raise ValueError(
            f"`q_values` must be 1-D (arms,) or 2-D (runs, arms), got shape {tuple(q.shape)}."
        )
    check_logits(q, "q_values")
    if not allow_masked:
        if is_torch(q):
            import torch

            masked = bool(torch.isneginf(q).any())
        else:
            masked = bool(np.isneginf(q).any())
        if masked:
            raise ValueError("`q_values` must be finite, got -inf.")
    return (q if q.ndim == 2 else q[None]), q.ndim == 1, back


def _q_rows(q_values: Any, *, allow_masked: bool) -> tuple[Array, bool]:
    """``q_values`` as float64 numpy rows (B, K) and whether the input was 1-D.

    For the draws, which run on the host: a tensor is read through ``to_numpy``
    (``as_float_array`` is that conversion plus the emptiness check).
    """
    q, _ = as_float_array(q_values, "q_values")
    rows, single, _ = _q_native(q, allow_masked=allow_masked)
    return rows.astype(np.float64, copy=False), single


def _counts_rows(counts: Any, shape: tuple[int, ...]) -> Array:
    if counts is None:
        return np.zeros(shape, dtype=np.int64)
    n = np.atleast_2d(check_integer(counts, "counts", minimum=0))
    if n.shape != shape:
        raise ValueError(
            f"`counts` must have the shape of `q_values` {shape}, got shape {n.shape}."
        )
    return n


def _counts_like(counts: Any, q: Any) -> Any:
    """Pull counts for the tensor rows ``q`` (B, K): an int64 tensor on ``q``'s device.

    A tensor is checked there (one boolean per check comes to the host);
    numpy counts are checked as numpy and copied over once.
    """
    import torch

    shape = tuple(q.shape)
    if not is_torch(counts):
        return torch.as_tensor(_counts_rows(counts, shape), device=q.device)
    n = counts
    if n.dtype.is_floating_point and bool((torch.isfinite(n) & (n == n.round())).all()):
        n = n.to(torch.int64)
    if n.dtype.is_floating_point or n.is_complex() or n.dtype == torch.bool:
        raise TypeError(f"`counts` must be an integer >= 0, got {_show(counts)}.")
    if n.numel() == 0:
        raise ValueError(f"`counts` must not be empty, got shape {tuple(n.shape)}.")
    negative = n < 0
    if bool(negative.any()):
        raise ValueError(
            f"`counts` must be an integer >= 0, got {_show(n[negative].reshape(-1)[0])}."
        )
    n = n.to(device=q.device, dtype=torch.int64)
    n = n if n.ndim >= 2 else n.reshape(1, -1)
    if tuple(n.shape) != shape:
        raise ValueError(
            f"`counts` must have the shape of `q_values` {shape}, got shape {tuple(n.shape)}."
        )
    return n


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
        step: int = 0,
        rng: np.random.Generator | int | None = None,
    ) -> Any:
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
        """
        q, single = _q_rows(q_values, allow_masked=self.masked_actions)
        n = _counts_rows(_host(counts, "counts"), q.shape)
        s = _single_int(_host(step, "step"), "step", 0)
        actions = self._select(q, n, s, as_generator(rng))
        return int(actions[0]) if single else actions

    @abc.abstractmethod
    def _select(self, q: Array, counts: Array, step: int, rng: np.random.Generator) -> Array:
        """Actions (int64, shape (B,)) for clean rows ``q`` and ``counts`` of shape (B, K)."""

    @property
    @abc.abstractmethod
    def label(self) -> str:
        """A short name for tables and plot legends."""


def _inverse_cdf(weights: Array, u: Array) -> Array:
    """One draw per row of non-negative ``weights`` (B, K) from one uniform per row ``u`` (B,).

    Arm ``a`` is drawn when ``cdf[a - 1] <= u * total < cdf[a]``, so arms of
    weight 0 are never drawn. ``u * total`` can round up to ``total``; it is
    capped just below it, so the last arm with a positive weight catches it.
    """
    cdf = np.cumsum(weights, axis=-1)
    total = cdf[:, -1]
    target = np.minimum(u * total, np.nextafter(total, 0.0))
    return np.count_nonzero(cdf <= target[:, None], axis=-1).astype(np.int64)


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
        step = _host(step, "step")
        check_integer(step, "step", minimum=0)
        t = check_temperature(self.schedule(step), "temperature")
        # A schedule returning a tensor (a learnable temperature) keeps it, on its graph.
        return t if is_torch(t) or t.ndim != 0 else float(t)

    def probs(self, q_values: Any, step: Any = 0) -> Any:
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
        s = check_integer(_host(step, "step"), "step", minimum=0)
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
        self, q_values: Any, step: Any = 0, rng: np.random.Generator | int | None = None
    ) -> Any:
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
        q, single = _q_rows(q_values, allow_masked=True)
        p = np.atleast_2d(np.asarray(self.probs(q[0] if single else q, step)))
        actions = _inverse_cdf(p, as_generator(rng).random(q.shape[0]))
        return int(actions[0]) if single else actions

    def _select(self, q: Array, counts: Array, step: int, rng: np.random.Generator) -> Array:
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
        q, single, back = _q_native(q_values, allow_masked=False)
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

    def _select(self, q: Array, counts: Array, step: int, rng: np.random.Generator) -> Array:
        explore = rng.random(q.shape[0]) < self.epsilon
        random_arm = rng.integers(0, q.shape[1], size=q.shape[0])
        return np.where(explore, random_arm, np.argmax(q, axis=1)).astype(np.int64)


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
        q, single, back = _q_native(q_values, allow_masked=False)
        if is_torch(q):
            out = self._index_torch(q, _counts_like(counts, q))
        else:
            out = self._index(q, _counts_rows(_host(counts, "counts"), q.shape))
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

    def _index(self, q: Array, counts: Array) -> Array:
        total = counts.sum(axis=1, keepdims=True).astype(np.float64)
        pulled = counts > 0
        # ln n / N only where N > 0 (then n >= 1 too); never-pulled arms are +inf.
        ratio = np.divide(
            np.log(np.maximum(total, 1.0)), counts, out=np.zeros(q.shape), where=pulled
        )
        return np.where(pulled, q + self.c * np.sqrt(ratio), np.inf)

    def _select(self, q: Array, counts: Array, step: int, rng: np.random.Generator) -> Array:
        return np.argmax(self._index(q, counts), axis=1).astype(np.int64)


@dataclass(frozen=True, eq=False)
class BanditResult:
    """What :func:`run_bandit` measured, per run and per step.

    Attributes
    ----------
    label : str
        The policy's label.
    means : ndarray, shape (runs, arms)
        The arms' true mean rewards in each run.
    actions : ndarray of int64, shape (runs, steps)
        The arm pulled at each step.
    regret : ndarray, shape (runs, steps)
        Cumulative pseudo-regret ``sum_{s <= t} (max_a mu_a - mu_{a_s})``.

    Examples
    --------
    >>> r = run_bandit(UCB1(), n_arms=3, n_steps=5, n_runs=2, seed=0)
    >>> r.actions[:, :3].tolist()  # UCB1 tries each arm once first
    [[0, 1, 2], [0, 1, 2]]
    """

    label: str
    means: Array
    actions: Array
    regret: Array

    @property
    def mean_regret(self) -> Array:
        """Cumulative regret averaged over runs, shape (steps,)."""
        return np.asarray(self.regret.mean(axis=0))

    @property
    def regret_sem(self) -> Array:
        """Standard error of :attr:`mean_regret` over runs (0 for a single run)."""
        runs = self.regret.shape[0]
        if runs < 2:
            return np.zeros(self.regret.shape[1])
        return np.asarray(self.regret.std(axis=0, ddof=1) / math.sqrt(runs))

    @property
    def optimal_rate(self) -> Array:
        """Fraction of runs that pulled an optimal arm at each step, shape (steps,)."""
        rows = np.arange(self.means.shape[0])[:, None]
        best = self.means[rows, self.actions] == self.means.max(axis=1, keepdims=True)
        return np.asarray(best.mean(axis=0))


def _arm_means(arm_means: Any, n_runs: int, n_arms: int, rng: np.random.Generator) -> Array:
    if arm_means is None:
        return rng.standard_normal((n_runs, n_arms))
    # The host boundary: as_float_array reads a tensor through to_numpy.
    means, _ = as_float_array(arm_means, "arm_means")
    if means.shape not in ((n_arms,), (n_runs, n_arms)):
        raise ValueError(
            f"`arm_means` must have shape (n_arms,) = ({n_arms},) or (n_runs, n_arms) = "
            f"({n_runs}, {n_arms}), got shape {means.shape}."
        )
    if not np.all(np.isfinite(means)):
        raise ValueError("`arm_means` must be finite, got NaN or inf.")
    return np.broadcast_to(means.astype(np.float64), (n_runs, n_arms)).copy()


def _steps(n_steps: int, label: str, progress: bool) -> Iterable[int]:
    if progress and sys.stderr.isatty():
        try:
            from tqdm import tqdm
        except ImportError:  # tqdm is an optional extra: no bar, same results
            return range(n_steps)
        return tqdm(range(n_steps), desc=label, file=sys.stderr, leave=False)
    return range(n_steps)


def run_bandit(
    policy: BanditPolicy,
    n_arms: int = 10,
    n_steps: int = 1000,
    n_runs: int = 2000,
    seed: int = 0,
    *,
    arm_means: Any = None,
    reward_std: float = 1.0,
    progress: bool = False,
) -> BanditResult:
    """Simulate ``n_runs`` independent k-armed Gaussian bandits at once.

    Each run has its own arms (means drawn from N(0, 1), Sutton & Barto's
    10-armed testbed, unless ``arm_means`` is given), rewards
    ``N(mu_a, reward_std^2)``, value estimates starting at 0 and updated as
    incremental sample averages ``Q_a += (r - Q_a) / N_a``.

    Parameters
    ----------
    policy : BanditPolicy
        :class:`BoltzmannPolicy`, :class:`EpsilonGreedy`, :class:`UCB1` or your own.
    n_arms, n_steps, n_runs : int
        Arms (>= 1), pulls per run (>= 1) and independent runs (>= 1).
    seed : int
        Seed >= 0; the same seed gives the same arms and reward noise for every
        policy (common random numbers), so policies compare with less noise.
    arm_means : array_like or torch.Tensor, optional
        True means, shape (n_arms,) (the same arms in every run) or
        (n_runs, n_arms). The simulation runs on the host with numpy
        Generators: a tensor is read through the explicit host conversion
        ``thermoscope._arrays.to_numpy``.
    reward_std : float, default 1.0
        Standard deviation of the reward noise, finite and >= 0.
    progress : bool, default False
        Show a tqdm progress bar on stderr (when it is a terminal).

    Returns
    -------
    BanditResult
        Per-run actions and cumulative pseudo-regret; ``mean_regret``,
        ``regret_sem`` and ``optimal_rate`` summarise them.

    Notes
    -----
    ``numpy.random.SeedSequence(seed)`` is split into three independent
    streams: the arm means (one ``standard_normal((runs, arms))``), the reward
    noise (one ``standard_normal(runs)`` per step) and the policy's own draws
    (its ``select`` is called once per step with that generator). The loop is
    over steps only; every step updates all runs as ``(runs, arms)`` arrays.

    Examples
    --------
    >>> r = run_bandit(EpsilonGreedy(0.1), n_arms=2, n_steps=50, n_runs=3, seed=1,
    ...                arm_means=[0.0, 1.0], reward_std=0.0)
    >>> r.regret.shape, float(r.regret[0, 0]) in (0.0, 1.0)
    ((3, 50), True)
    """
    if not isinstance(policy, BanditPolicy):
        raise TypeError(
            f"`policy` must be a BanditPolicy (BoltzmannPolicy, EpsilonGreedy, UCB1), "
            f"got {type(policy).__name__}."
        )
    k = _single_int(n_arms, "n_arms", 1)
    steps = _single_int(n_steps, "n_steps", 1)
    runs = _single_int(n_runs, "n_runs", 1)
    root = np.random.SeedSequence(_single_int(seed, "seed", 0))
    env_rng, noise_rng, policy_rng = (np.random.default_rng(s) for s in root.spawn(3))
    try:
        sigma = float(reward_std)
    except (TypeError, ValueError):
        raise TypeError(f"`reward_std` must be a finite number >= 0, got {reward_std!r}.") from None
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"`reward_std` must be a finite number >= 0, got {sigma!r}.")
    means = _arm_means(arm_means, runs, k, env_rng)

    q = np.zeros((runs, k))
    counts = np.zeros((runs, k), dtype=np.int64)
    rows = np.arange(runs)
    actions = np.empty((steps, runs), dtype=np.int64)
    for t in _steps(steps, policy.label, progress):
        a = policy._select(q, counts, t, policy_rng)
        reward = means[rows, a] + sigma * noise_rng.standard_normal(runs)
        counts[rows, a] += 1
        q[rows, a] += (reward - q[rows, a]) / counts[rows, a]
        actions[t] = a
    gaps = means.max(axis=1, keepdims=True) - means
    regret = np.cumsum(gaps[rows, actions], axis=0)
    return BanditResult(label=policy.label, means=means, actions=actions.T, regret=regret.T)
