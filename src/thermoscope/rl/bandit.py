"""The vectorised multi-armed bandit: thousands of independent runs as (runs, arms) arrays.

Examples
--------
>>> from thermoscope.rl import BoltzmannPolicy, UCB1, run_bandit
>>> a = run_bandit(BoltzmannPolicy(0.1), n_arms=5, n_steps=200, n_runs=100, rng=0)
>>> a.regret.shape, bool(a.mean_regret[-1] > 0)
((100, 200), True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from thermoscope._progress import progress_iter
from thermoscope._typing import FloatArray, IntArray
from thermoscope._validation import as_float_array, as_generator
from thermoscope.rl._inputs import single_int
from thermoscope.rl.policies import BanditPolicy

__all__ = ["BanditResult", "run_bandit"]


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
    >>> from thermoscope.rl import UCB1
    >>> r = run_bandit(UCB1(), n_arms=3, n_steps=5, n_runs=2, rng=0)
    >>> r.actions[:, :3].tolist()  # UCB1 tries each arm once first
    [[0, 1, 2], [0, 1, 2]]
    """

    label: str
    means: FloatArray
    actions: IntArray
    regret: FloatArray

    @property
    def mean_regret(self) -> FloatArray:
        """Cumulative regret averaged over runs, shape (steps,)."""
        return np.asarray(self.regret.mean(axis=0))

    @property
    def regret_sem(self) -> FloatArray:
        """Standard error of :attr:`mean_regret` over runs (0 for a single run)."""
        runs = self.regret.shape[0]
        if runs < 2:
            return np.zeros(self.regret.shape[1])
        return np.asarray(self.regret.std(axis=0, ddof=1) / math.sqrt(runs))

    @property
    def optimal_rate(self) -> FloatArray:
        """Fraction of runs that pulled an optimal arm at each step, shape (steps,)."""
        rows = np.arange(self.means.shape[0])[:, None]
        best = self.means[rows, self.actions] == self.means.max(axis=1, keepdims=True)
        return np.asarray(best.mean(axis=0))


def _arm_means(arm_means: Any, n_runs: int, n_arms: int, rng: np.random.Generator) -> FloatArray:
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


def _reward_std(reward_std: Any) -> float:
    try:
        sigma = float(reward_std)
    except (TypeError, ValueError):
        raise TypeError(f"`reward_std` must be a finite number >= 0, got {reward_std!r}.") from None
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"`reward_std` must be a finite number >= 0, got {sigma!r}.")
    return sigma


def run_bandit(
    policy: BanditPolicy,
    *,
    n_arms: int = 10,
    n_steps: int = 1000,
    n_runs: int = 2000,
    rng: np.random.Generator | int | None = 0,
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
    rng : numpy.random.Generator or int, default 0
        Random source, or a seed >= 0; ``None`` draws fresh OS entropy. The
        same seed gives the same arms and reward noise for every policy
        (common random numbers), so policies compare with less noise.
    arm_means : array_like or torch.Tensor, optional
        True means, shape (n_arms,) (the same arms in every run) or
        (n_runs, n_arms). The simulation runs on the host with numpy
        Generators: a tensor is read through the explicit host conversion
        ``thermoscope._arrays.to_numpy``.
    reward_std : float, default 1.0
        Standard deviation of the reward noise, finite and >= 0.
    progress : bool, default False
        Show a progress bar on stderr (when tqdm is installed and stderr is a terminal).

    Returns
    -------
    BanditResult
        Per-run actions and cumulative pseudo-regret; ``mean_regret``,
        ``regret_sem`` and ``optimal_rate`` summarise them.

    Notes
    -----
    The generator is split with ``Generator.spawn(3)`` into three independent
    streams (a seed ``s`` gives the children of ``numpy.random.SeedSequence(s)``,
    exactly as ``numpy.random.default_rng(s)`` would): the arm means (one
    ``standard_normal((runs, arms))``), the reward noise (one
    ``standard_normal(runs)`` per step) and the policy's own draws (its
    ``select`` is called once per step with that generator). The loop is over
    steps only; every step updates all runs as ``(runs, arms)`` arrays.

    Examples
    --------
    >>> from thermoscope.rl import EpsilonGreedy
    >>> r = run_bandit(EpsilonGreedy(0.1), n_arms=2, n_steps=50, n_runs=3, rng=1,
    ...                arm_means=[0.0, 1.0], reward_std=0.0)
    >>> r.regret.shape, float(r.regret[0, 0]) in (0.0, 1.0)
    ((3, 50), True)
    """
    if not isinstance(policy, BanditPolicy):
        raise TypeError(
            f"`policy` must be a BanditPolicy (BoltzmannPolicy, EpsilonGreedy, UCB1), "
            f"got {type(policy).__name__}."
        )
    k = single_int(n_arms, "n_arms", 1)
    steps = single_int(n_steps, "n_steps", 1)
    runs = single_int(n_runs, "n_runs", 1)
    env_rng, noise_rng, policy_rng = as_generator(rng, "rng").spawn(3)
    sigma = _reward_std(reward_std)
    means = _arm_means(arm_means, runs, k, env_rng)

    q = np.zeros((runs, k))
    counts = np.zeros((runs, k), dtype=np.int64)
    rows = np.arange(runs)
    actions = np.empty((steps, runs), dtype=np.int64)
    for t in progress_iter(range(steps), desc=policy.label, unit="step", enabled=progress):
        a = policy._select(q, counts, t, policy_rng)
        reward = means[rows, a] + sigma * noise_rng.standard_normal(runs)
        counts[rows, a] += 1
        q[rows, a] += (reward - q[rows, a]) / counts[rows, a]
        actions[t] = a
    gaps = means.max(axis=1, keepdims=True) - means
    regret = np.cumsum(gaps[rows, actions], axis=0)
    return BanditResult(label=policy.label, means=means, actions=actions.T, regret=regret.T)
