"""Boltzmann exploration, its baselines and the bandit simulator, against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special, stats

from thermoscope.rl import UCB1, BanditPolicy, BoltzmannPolicy, EpsilonGreedy, run_bandit
from thermoscope.sampling.schedules import ExponentialDecay, Linear, Piecewise

Q = np.array([1.0, 0.5, 0.0, -0.5, 2.0])


# --- Boltzmann probabilities -------------------------------------------------------------------


@pytest.mark.parametrize("t", [0.05, 0.3, 1.0, 4.0, 100.0])
def test_probs_equal_scipy_softmax(t: float) -> None:
    q = np.random.default_rng(1).normal(size=(7, 6)) * 3
    np.testing.assert_allclose(
        BoltzmannPolicy(t).probs(q), special.softmax(q / t, axis=-1), rtol=1e-12, atol=1e-300
    )
    np.testing.assert_allclose(
        BoltzmannPolicy(t).probs(q[0]), special.softmax(q[0] / t), rtol=1e-12
    )


def test_schedule_is_applied_per_step() -> None:
    sched = Linear(2.0, 0.1, steps=10)
    pi = BoltzmannPolicy(sched)
    for step in (0, 3, 10, 25):
        np.testing.assert_allclose(
            pi.probs(Q, step=step), special.softmax(Q / sched(step)), rtol=1e-12
        )
    rows = np.tile(Q, (4, 1))
    steps = np.array([0, 3, 10, 25])
    expected = np.stack([special.softmax(Q / sched(s)) for s in steps])
    np.testing.assert_allclose(pi.probs(rows, step=steps), expected, rtol=1e-12)
    assert pi.temperature_at(5) == pytest.approx(2.0 - 1.9 * 0.5)


def test_custom_callable_schedule() -> None:
    pi = BoltzmannPolicy(lambda step: 1.0 / (1.0 + step))
    np.testing.assert_allclose(pi.probs(Q, step=3), special.softmax(Q * 4.0), rtol=1e-12)


def test_greedy_and_uniform_limits() -> None:
    np.testing.assert_array_equal(BoltzmannPolicy(0.0).probs(Q), [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(BoltzmannPolicy(0.0).probs([1.0, 3.0, 3.0]), [0, 0.5, 0.5])
    np.testing.assert_allclose(BoltzmannPolicy(1e-6).probs(Q), [0, 0, 0, 0, 1], atol=1e-300)
    np.testing.assert_allclose(BoltzmannPolicy(math.inf).probs(Q), np.full(5, 0.2))
    np.testing.assert_allclose(BoltzmannPolicy(1e9).probs(Q), np.full(5, 0.2), rtol=1e-8)
    # Unavailable actions (-inf) stay at probability 0 in both limits.
    np.testing.assert_array_equal(
        BoltzmannPolicy(math.inf).probs([0.0, -math.inf, 5.0]), [0.5, 0.0, 0.5]
    )
    assert BoltzmannPolicy(0.0).sample(np.tile(Q, (100, 1)), rng=0).tolist() == [4] * 100


@given(
    hnp.arrays(np.float64, st.integers(2, 8), elements=st.floats(-20, 20)),
    st.floats(0.01, 50.0),
    st.floats(1.01, 10.0),
)
def test_probs_keep_order_and_entropy_rises_with_temperature(
    q: np.ndarray, t: float, factor: float
) -> None:
    cold, hot = BoltzmannPolicy(t).probs(q), BoltzmannPolicy(t * factor).probs(q)
    assert cold.sum() == pytest.approx(1.0)
    order = np.argsort(q, kind="stable")
    assert np.all(np.diff(cold[order]) >= -1e-15)
    assert stats.entropy(hot) >= stats.entropy(cold) - 1e-12


# --- Boltzmann sampling ------------------------------------------------------------------------


def _chi_square_p(actions: np.ndarray, probs: np.ndarray) -> float:
    counts = np.bincount(actions, minlength=probs.size)
    keep = probs > 0
    assert counts[~keep].sum() == 0
    return float(stats.chisquare(counts[keep], probs[keep] * actions.size).pvalue)


@pytest.mark.parametrize("t", [0.3, 1.0, 3.0])
def test_sampling_frequencies_match_probs(t: float) -> None:
    pi = BoltzmannPolicy(t)
    draws = pi.sample(np.tile(Q, (40_000, 1)), rng=np.random.default_rng(123))
    assert _chi_square_p(draws, pi.probs(Q)) > 1e-3


def test_sampling_follows_the_schedule_step() -> None:
    sched = Piecewise(boundaries=(10,), values=(5.0, 0.2))
    pi = BoltzmannPolicy(sched)
    rows = np.tile(Q, (30_000, 1))
    rng = np.random.default_rng(7)
    early, late = pi.sample(rows, step=0, rng=rng), pi.sample(rows, step=10, rng=rng)
    assert _chi_square_p(early, special.softmax(Q / 5.0)) > 1e-3
    assert _chi_square_p(late, special.softmax(Q / 0.2)) > 1e-3
    # Per-row steps: half the rows early, half late.
    steps = np.repeat([0, 10], 15_000)
    mixed = pi.sample(rows, step=steps, rng=rng)
    assert _chi_square_p(mixed[:15_000], special.softmax(Q / 5.0)) > 1e-3
    assert _chi_square_p(mixed[15_000:], special.softmax(Q / 0.2)) > 1e-3


def test_masked_actions_are_never_sampled() -> None:
    q = np.array([0.0, -np.inf, 0.0, -np.inf])
    draws = BoltzmannPolicy(1.0).sample(np.tile(q, (5000, 1)), rng=0)
    assert set(draws.tolist()) == {0, 2}


def test_sampling_is_reproducible() -> None:
    pi = BoltzmannPolicy(1.0)
    rows = np.tile(Q, (50, 1))
    a = pi.sample(rows, rng=3)
    assert np.array_equal(a, pi.sample(rows, rng=np.random.default_rng(3)))
    assert not np.array_equal(a, pi.sample(rows, rng=4))
    assert isinstance(pi.sample(Q, rng=3), int)


# --- baselines ---------------------------------------------------------------------------------


def test_epsilon_greedy_probs_and_sampling() -> None:
    eg = EpsilonGreedy(0.2)
    np.testing.assert_allclose(eg.probs(Q), [0.04, 0.04, 0.04, 0.04, 0.84])
    draws = eg.select(np.tile(Q, (40_000, 1)), rng=11)
    assert _chi_square_p(draws, eg.probs(Q)) > 1e-3
    np.testing.assert_array_equal(EpsilonGreedy(0.0).probs([2.0, 2.0, 1.0]), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(EpsilonGreedy(1.0).probs(Q), np.full(5, 0.2))


def test_ucb1_index_closed_form() -> None:
    q, n = np.array([0.2, 0.8, 0.5]), np.array([4, 10, 6])
    expected = q + 2.0 * np.sqrt(np.log(20) / n)
    np.testing.assert_allclose(UCB1(c=2.0).index(q, n), expected, rtol=1e-14)
    assert UCB1(c=2.0).select(q, n) == int(np.argmax(expected))
    assert UCB1().index([0.1, 0.2], [3, 0])[1] == np.inf
    assert UCB1().select([[0.1, 0.2, 0.3], [5.0, 0.0, 0.0]], [[1, 0, 0], [2, 2, 2]]).tolist() == [
        1,
        0,
    ]


# --- the simulator against a per-run reference ------------------------------------------------


def _reference(policy: str, k: int, steps: int, runs: int, seed: int, param: float):
    """A plain per-run, per-step loop fed the simulator's documented random streams."""
    env, noise_rng, pol_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    means = env.standard_normal((runs, k))
    noise = np.empty((steps, runs))
    u = np.empty((steps, runs))
    arm = np.zeros((steps, runs), dtype=int)
    for t in range(steps):
        noise[t] = noise_rng.standard_normal(runs)
        if policy == "boltzmann":
            u[t] = pol_rng.random(runs)
        elif policy == "epsilon":
            u[t] = pol_rng.random(runs)
            arm[t] = pol_rng.integers(0, k, size=runs)
    actions = np.zeros((runs, steps), dtype=int)
    regret = np.zeros((runs, steps))
    for r in range(runs):
        sums, pulls = [0.0] * k, [0] * k
        total = 0.0
        for t in range(steps):
            qhat = [sums[a] / pulls[a] if pulls[a] else 0.0 for a in range(k)]
            if policy == "boltzmann":
                cdf = np.cumsum(special.softmax(np.array(qhat) / param))
                a = int(np.searchsorted(cdf, u[t, r] * cdf[-1], side="right"))
            elif policy == "epsilon":
                a = int(arm[t, r]) if u[t, r] < param else int(np.argmax(qhat))
            else:  # UCB1: every arm once, then the largest upper confidence bound
                if 0 in pulls:
                    a = pulls.index(0)
                else:
                    bounds = [qhat[b] + param * math.sqrt(math.log(t) / pulls[b]) for b in range(k)]
                    a = int(np.argmax(bounds))
            sums[a] += means[r, a] + noise[t, r]
            pulls[a] += 1
            total += means[r].max() - means[r, a]
            actions[r, t], regret[r, t] = a, total
    return actions, regret


@pytest.mark.parametrize(
    ("name", "policy", "param"),
    [
        ("epsilon", EpsilonGreedy(0.1), 0.1),
        ("epsilon", EpsilonGreedy(0.0), 0.0),
        ("ucb", UCB1(c=1.5), 1.5),
        ("boltzmann", BoltzmannPolicy(0.3), 0.3),
    ],
)
def test_simulator_matches_per_run_reference(name: str, policy: BanditPolicy, param: float) -> None:
    k, steps, runs, seed = 4, 150, 6, 42
    result = run_bandit(policy, n_arms=k, n_steps=steps, n_runs=runs, rng=seed)
    actions, regret = _reference(name, k, steps, runs, seed, param)
    np.testing.assert_array_equal(result.actions, actions)
    np.testing.assert_allclose(result.regret, regret, rtol=1e-12, atol=1e-12)
    assert len(set(result.actions[:, 50:].ravel().tolist())) > 1  # the case is not trivial


def test_greedy_with_noiseless_rewards_is_stuck_closed_form() -> None:
    # Estimates start at 0 and arm 0 pays exactly 0: greedy keeps the tie and pulls arm 0.
    kw = {"arm_means": [0.0, 1.0], "reward_std": 0.0}
    r = run_bandit(EpsilonGreedy(0.0), n_arms=2, n_steps=20, n_runs=3, rng=0, **kw)
    np.testing.assert_array_equal(r.regret, np.tile(np.arange(1, 21.0), (3, 1)))
    np.testing.assert_array_equal(r.optimal_rate, np.zeros(20))


def test_annealing_to_zero_passes_subnormal_temperatures_quietly() -> None:
    # rate 0.3 takes T through subnormal values to exactly 0 within 700 steps; warnings
    # are errors in this suite, so an overflow in (Q - max) / T would fail here.
    sched = ExponentialDecay(1.0, rate=0.3)
    assert 0 < sched(600) < np.finfo(float).tiny
    assert sched(699) == 0.0
    r = run_bandit(BoltzmannPolicy(sched), n_arms=4, n_steps=700, n_runs=5, rng=0)
    assert np.isfinite(r.regret).all()
    assert BoltzmannPolicy(sched).probs([1.0, 0.0], step=600).tolist() == [1.0, 0.0]


def test_result_summaries() -> None:
    r = run_bandit(UCB1(), n_arms=5, n_steps=100, n_runs=50, rng=3)
    np.testing.assert_allclose(r.mean_regret, r.regret.mean(axis=0))
    np.testing.assert_allclose(r.regret_sem, stats.sem(r.regret, axis=0))
    best = r.means.argmax(axis=1)
    np.testing.assert_allclose(r.optimal_rate, (r.actions == best[:, None]).mean(axis=0))
    assert np.all(np.diff(r.regret, axis=1) >= 0)
    # Common random numbers: the same seed gives every policy the same arms.
    other = run_bandit(BoltzmannPolicy(0.5), n_arms=5, n_steps=10, n_runs=50, rng=3)
    np.testing.assert_array_equal(other.means, r.means)
    assert (
        run_bandit(UCB1(), n_arms=5, n_steps=10, n_runs=1, rng=3).regret_sem.tolist() == [0.0] * 10
    )


def test_bandit_rng_takes_a_generator_or_its_seed() -> None:
    # A seed and a fresh Generator of that seed split into the same three streams.
    kw = {"n_arms": 4, "n_steps": 30, "n_runs": 5}
    by_seed = run_bandit(BoltzmannPolicy(0.5), rng=11, **kw)
    by_gen = run_bandit(BoltzmannPolicy(0.5), rng=np.random.default_rng(11), **kw)
    np.testing.assert_array_equal(by_seed.actions, by_gen.actions)
    np.testing.assert_array_equal(by_seed.regret, by_gen.regret)
    # One generator shared by two calls gives two different, independent simulations.
    gen = np.random.default_rng(11)
    first, second = (run_bandit(UCB1(), rng=gen, **kw) for _ in range(2))
    assert not np.array_equal(first.means, second.means)


def test_annealing_beats_fixed_cold_and_ucb_beats_greedy() -> None:
    # A statistical claim the demo makes, checked with a fixed seed and its standard errors.
    kw = {"n_arms": 10, "n_steps": 500, "n_runs": 400, "rng": 5}
    greedy = run_bandit(EpsilonGreedy(0.0), **kw)
    ucb = run_bandit(UCB1(), **kw)
    anneal = run_bandit(BoltzmannPolicy(ExponentialDecay(1.0, end=0.05, steps=250)), **kw)
    cold = run_bandit(BoltzmannPolicy(0.05), **kw)
    for better, worse in ((ucb, greedy), (anneal, cold)):
        gap = worse.mean_regret[-1] - better.mean_regret[-1]
        assert gap > 4 * math.hypot(better.regret_sem[-1], worse.regret_sem[-1])


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "exc", "message"),
    [
        (lambda: BoltzmannPolicy(-0.5), ValueError, "`temperature` must be >= 0, got -0.5."),
        (lambda: BoltzmannPolicy(math.nan), ValueError, "`temperature` must be a number >= 0"),
        (lambda: BoltzmannPolicy("hot"), TypeError, "`temperature` must be a number >= 0 or a"),
        (
            lambda: BoltzmannPolicy(lambda s: -1.0).probs(Q),
            ValueError,
            "`temperature` must be >= 0, got -1.0.",
        ),
        (lambda: BoltzmannPolicy(1.0).probs([]), ValueError, "`q_values` must not be empty"),
        (
            lambda: BoltzmannPolicy(1.0).sample(np.empty((3, 0)), rng=0),
            ValueError,
            "`q_values` must not be empty",
        ),
        (lambda: BoltzmannPolicy(1.0).sample([1.0, np.nan], rng=0), ValueError, "`q_values` must"),
        (
            lambda: BoltzmannPolicy(1.0).sample(np.zeros((2, 2, 2)), rng=0),
            ValueError,
            "`q_values` must be 1-D (arms,) or 2-D (runs, arms)",
        ),
        (lambda: BoltzmannPolicy(1.0).probs(Q, step=-1), ValueError, "`step` must be an integer"),
        (
            lambda: BoltzmannPolicy(1.0).probs(np.zeros((3, 2)), step=[0, 1]),
            ValueError,
            "`step` must be a single integer or one per row, shape (3,)",
        ),
        (lambda: BoltzmannPolicy(1.0).sample(Q, rng="x"), TypeError, "`rng` must be a numpy"),
        (lambda: BoltzmannPolicy(1.0).sample(Q, rng=-3), ValueError, "`rng` must be a numpy"),
        (lambda: EpsilonGreedy(1.5), ValueError, "`epsilon` must be in [0, 1], got 1.5."),
        (lambda: EpsilonGreedy(-0.1), ValueError, "`epsilon` must be in [0, 1], got -0.1."),
        (lambda: EpsilonGreedy(math.nan), ValueError, "`epsilon` must be in [0, 1], got nan."),
        (lambda: EpsilonGreedy("a"), TypeError, "`epsilon` must be a number in [0, 1]"),
        (lambda: EpsilonGreedy(0.1).probs([]), ValueError, "`q_values` must not be empty"),
        (
            lambda: EpsilonGreedy(0.1).select([0.0, -np.inf]),
            ValueError,
            "`q_values` must be finite, got -inf.",
        ),
        (lambda: UCB1(c=-1.0), ValueError, "`c` must be a finite number >= 0, got -1.0."),
        (lambda: UCB1(c=math.inf), ValueError, "`c` must be a finite number >= 0, got inf."),
        (lambda: UCB1(c="big"), TypeError, "`c` must be a finite number >= 0"),
        (
            lambda: UCB1().select([0.1, 0.2], counts=[1, 2, 3]),
            ValueError,
            "`counts` must have the shape of `q_values` (1, 2), got shape (1, 3).",
        ),
        (lambda: UCB1().index([0.1, 0.2], [1, -2]), ValueError, "`counts` must be an integer >= 0"),
        (lambda: UCB1().index([0.1, 0.2], [1.5, 2]), TypeError, "`counts` must be an integer"),
        (lambda: UCB1().select([0.1], step=-1), ValueError, "`step` must be an integer >= 0"),
        (lambda: run_bandit("ucb"), TypeError, "`policy` must be a BanditPolicy"),
        (lambda: run_bandit(UCB1(), n_arms=0), ValueError, "`n_arms` must be an integer >= 1"),
        (lambda: run_bandit(UCB1(), n_steps=0), ValueError, "`n_steps` must be an integer >= 1"),
        (lambda: run_bandit(UCB1(), n_runs=0), ValueError, "`n_runs` must be an integer >= 1"),
        (lambda: run_bandit(UCB1(), rng=-1), ValueError, "`rng` must be a numpy.random.Generator"),
        (lambda: run_bandit(UCB1(), rng=1.5), TypeError, "`rng` must be a numpy.random.Generator"),
        (lambda: run_bandit(UCB1(), 3), TypeError, "positional argument"),
        (
            lambda: run_bandit(UCB1(), n_arms=3, n_runs=2, arm_means=[0.0, 1.0]),
            ValueError,
            "`arm_means` must have shape (n_arms,) = (3,) or (n_runs, n_arms) = (2, 3), "
            "got shape (2,).",
        ),
        (
            lambda: run_bandit(UCB1(), n_arms=2, arm_means=[0.0, np.inf]),
            ValueError,
            "`arm_means` must be finite",
        ),
        (
            lambda: run_bandit(UCB1(), reward_std=-1.0),
            ValueError,
            "`reward_std` must be a finite number >= 0, got -1.0.",
        ),
    ],
)
def test_bad_input_names_the_argument(call: object, exc: type, message: str) -> None:
    with pytest.raises(exc) as info:
        call()  # type: ignore[operator]
    assert message in str(info.value)
    assert type(info.value) is exc
