"""Boltzmann (softmax) exploration, its baselines, and a vectorised multi-armed bandit.

`policies` holds the policies (:class:`BoltzmannPolicy` and the baselines
:class:`EpsilonGreedy` and :class:`UCB1`, all behind :class:`BanditPolicy`);
`bandit` holds the simulator :func:`run_bandit` and its :class:`BanditResult`.

Examples
--------
>>> from thermoscope.rl import BoltzmannPolicy, UCB1, run_bandit
>>> a = run_bandit(BoltzmannPolicy(0.1), n_arms=5, n_steps=200, n_runs=100, rng=0)
>>> b = run_bandit(UCB1(), n_arms=5, n_steps=200, n_runs=100, rng=0)
>>> bool(a.mean_regret[-1] > 0), bool(b.mean_regret[-1] > 0)
(True, True)
"""

from thermoscope.rl.bandit import BanditResult, run_bandit
from thermoscope.rl.policies import UCB1, BanditPolicy, BoltzmannPolicy, EpsilonGreedy

__all__ = [
    "UCB1",
    "BanditPolicy",
    "BanditResult",
    "BoltzmannPolicy",
    "EpsilonGreedy",
    "run_bandit",
]
