"""Gumbel-top-k item sampling and exposure metrics, against exact and independent references."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special

from thermoscope.recommend import coverage, exposure, gini, long_tail_share, sample_items
from thermoscope.sampling import goodness_of_fit

SCORES = np.array([1.2, 0.3, -0.4, 0.9, -np.inf, 0.0])


def ordered_subset_probs(p: np.ndarray, k: int) -> dict[tuple[int, ...], float]:
    """Exact probability of every ordered k-tuple under sequential sampling without replacement."""
    items = [i for i in range(p.size) if p[i] > 0]
    out = {}
    for tup in itertools.permutations(items, k):
        prob, left = 1.0, 1.0
        for i in tup:
            prob *= p[i] / left
            left -= p[i]
        out[tup] = prob
    return out


def chi_square_on_tuples(draws: np.ndarray, exact: dict[tuple[int, ...], float]) -> float:
    seen = Counter(map(tuple, draws.tolist()))
    assert set(seen) <= set(exact), "a tuple of probability 0 was drawn"
    keys = sorted(exact)
    observed = np.array([seen.get(key, 0) for key in keys])
    probs = np.array([exact[key] for key in keys])
    assert math.isclose(probs.sum(), 1.0, rel_tol=1e-9)
    fit = goodness_of_fit(observed, probs)
    assert fit.removed_draws == 0
    assert fit.p_value is not None
    return fit.p_value


# --- distribution ------------------------------------------------------------------------------


@pytest.mark.parametrize(("t", "k"), [(0.5, 2), (1.0, 3), (2.5, 2), (1.0, 5)])
def test_gumbel_top_k_matches_sequential_sampling(t: float, k: int) -> None:
    n = 40_000
    draws = sample_items(np.tile(SCORES, (n, 1)), t, k=k, rng=np.random.default_rng(2024))
    exact = ordered_subset_probs(special.softmax(SCORES / t), k)
    assert chi_square_on_tuples(draws, exact) > 1e-3


def test_per_row_temperatures_each_match_their_distribution() -> None:
    n = 20_000
    temps = np.repeat([0.4, 3.0], n)
    draws = sample_items(np.tile(SCORES, (2 * n, 1)), temps, k=2, rng=5)
    for half, t in ((draws[:n], 0.4), (draws[n:], 3.0)):
        assert (
            chi_square_on_tuples(half, ordered_subset_probs(special.softmax(SCORES / t), 2)) > 1e-3
        )


def test_infinite_temperature_is_uniform_over_unmasked_items() -> None:
    n = 24_000
    draws = sample_items(np.tile(SCORES, (n, 1)), math.inf, k=2, rng=9)
    uniform = np.where(np.isfinite(SCORES), 1 / 5, 0.0)
    assert chi_square_on_tuples(draws, ordered_subset_probs(uniform, 2)) > 1e-3


def test_zero_temperature_gives_the_top_k_in_order() -> None:
    z = np.random.default_rng(0).normal(size=(20, 30))
    expected = np.argsort(-z, axis=1)[:, :7]
    np.testing.assert_array_equal(sample_items(z, 0.0, k=7, rng=1), expected)
    np.testing.assert_array_equal(sample_items(z, 1e-12, k=7, rng=1), expected)
    np.testing.assert_array_equal(sample_items(z[0], 0.0, k=30, rng=1), np.argsort(-z[0]))


def test_zero_temperature_breaks_ties_uniformly() -> None:
    # Tied maxima come first in random order, then the tied runners-up: 4 equally likely tuples.
    z = np.array([3.0, 1.0, 3.0, 1.0, 0.0])
    n = 20_000
    draws = sample_items(np.tile(z, (n, 1)), 0.0, k=3, rng=3)
    exact = {tup: 0.25 for tup in [(0, 2, 1), (0, 2, 3), (2, 0, 1), (2, 0, 3)]}
    assert chi_square_on_tuples(draws, exact) > 1e-3


def test_huge_score_spread_takes_the_exact_path() -> None:
    # (max - min) / T = 1e9: float64 keys would swamp the noise; ties must still be fair.
    z = np.array([1e9, 1e9, 0.0, 0.0])
    n = 20_000
    draws = sample_items(np.tile(z, (n, 1)), 1.0, k=3, rng=4)
    exact = {tup: 0.25 for tup in [(0, 1, 2), (0, 1, 3), (1, 0, 2), (1, 0, 3)]}
    assert chi_square_on_tuples(draws, exact) > 1e-3


@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
        elements=st.one_of(st.floats(-50, 50), st.just(-np.inf)),
    ),
    st.one_of(st.floats(0.0, 20.0), st.just(math.inf)),
    st.integers(1, 12),
    st.integers(0, 2**32 - 1),
)
def test_never_returns_duplicates(z: np.ndarray, t: float, k: int, seed: int) -> None:
    z[:, 0] = 0.0  # every row keeps a finite score
    available = int(np.isfinite(z).sum(axis=1).min())
    if k > available:
        with pytest.raises(ValueError, match="`k` must be <="):
            sample_items(z, t, k=k, rng=seed)
        return
    out = sample_items(z, t, k=k, rng=seed)
    assert out.shape == (z.shape[0], k)
    assert out.dtype == np.int64
    for row, picked in zip(z, out, strict=True):
        assert len(set(picked.tolist())) == k
        assert np.all(np.isfinite(row[picked]))


def test_reproducible_with_a_seed_and_accepts_a_generator() -> None:
    z = np.random.default_rng(0).normal(size=(10, 50))
    a = sample_items(z, 1.0, k=5, rng=11)
    np.testing.assert_array_equal(a, sample_items(z, 1.0, k=5, rng=np.random.default_rng(11)))
    assert not np.array_equal(a, sample_items(z, 1.0, k=5, rng=12))
    assert sample_items(z[0], 1.0, k=5, rng=11).shape == (5,)


# --- metrics -----------------------------------------------------------------------------------


def gini_double_sum(x: np.ndarray) -> float:
    """The definition: sum_ij |x_i - x_j| / (2 n^2 mean) = sum_ij |x_i - x_j| / (2 n sum)."""
    x = np.asarray(x, dtype=float)
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * x.size * x.sum()))


@given(hnp.arrays(np.float64, st.integers(1, 60), elements=st.floats(0, 1e6)))
def test_gini_equals_the_double_sum_definition(x: np.ndarray) -> None:
    if x.sum() == 0:
        return
    assert gini(x) == pytest.approx(gini_double_sum(x), abs=1e-12)


@pytest.mark.parametrize("n", [1, 2, 5, 100])
def test_gini_closed_forms(n: int) -> None:
    assert gini(np.full(n, 3)) == 0.0
    assert gini(np.eye(n)[0] * 7) == pytest.approx((n - 1) / n)
    assert gini(np.arange(1, n + 1)) == pytest.approx((n - 1) / (3 * n))  # 1, 2, ..., n


def test_exposure_coverage_and_long_tail() -> None:
    recs = np.array([[0, 3], [3, 1], [4, 3]])
    e = exposure(recs, 6)
    np.testing.assert_array_equal(e, [1, 1, 0, 3, 1, 0])
    assert coverage(e) == pytest.approx(4 / 6)
    popularity = np.array([50, 40, 30, 5, 2, 1])
    # head = ceil(0.2 * 6) = 2 most popular items (0 and 1): tail exposure 4 of 6.
    assert long_tail_share(e, popularity) == pytest.approx(4 / 6)
    assert long_tail_share(e, popularity, head_fraction=0.0) == 1.0
    assert long_tail_share(e, popularity, head_fraction=1.0) == 0.0
    # Ties in popularity: the lower index counts as more popular.
    assert long_tail_share([1, 1, 0], [2, 2, 1], head_fraction=1 / 3) == pytest.approx(0.5)
    assert coverage(np.zeros(4)) == 0.0


def test_exposure_counts_match_counter() -> None:
    recs = np.random.default_rng(3).integers(0, 40, size=(25, 4))
    counts = Counter(recs.ravel().tolist())
    np.testing.assert_array_equal(exposure(recs, 40), [counts.get(i, 0) for i in range(40)])


def test_temperature_spreads_exposure() -> None:
    pop = 1.0 / np.arange(1, 101)
    z = np.log(pop) + np.random.default_rng(0).normal(size=(300, 100))
    g, cov = [], []
    for t in (0.0, 1.0, math.inf):
        e = exposure(sample_items(z, t, k=5, rng=1), 100)
        g.append(gini(e))
        cov.append(coverage(e))
    assert g[0] > g[1] > g[2]
    assert cov[0] < cov[1] <= cov[2]


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "exc", "message"),
    [
        (
            lambda: sample_items(SCORES, -1.0, k=2),
            ValueError,
            "`temperature` must be >= 0, got -1.0",
        ),
        (lambda: sample_items(SCORES, math.nan, k=2), ValueError, "`temperature` must be a number"),
        (
            lambda: sample_items(np.zeros((3, 4)), [1.0, 2.0], k=2),
            ValueError,
            "`temperature` must be a scalar or have one value per row, shape (3,)",
        ),
        (
            lambda: sample_items([1.0, 2.0, 3.0], 1.0, k=4),
            ValueError,
            "`k` must be <= the number of items (3), got 4.",
        ),
        (
            lambda: sample_items(SCORES, 1.0, k=6),
            ValueError,
            "`k` must be <= the number of items with a finite score in every row (5 in row 0)",
        ),
        (lambda: sample_items(SCORES, 1.0, k=0), ValueError, "`k` must be an integer >= 1, got 0."),
        (lambda: sample_items(SCORES, 1.0, k=1.5), TypeError, "`k` must be an integer >= 1"),
        (lambda: sample_items(SCORES, 1.0, k=[1, 2]), TypeError, "`k` must be a single integer"),
        (lambda: sample_items([], 1.0, k=1), ValueError, "`scores` must not be empty"),
        (
            lambda: sample_items(np.empty((2, 0)), 1.0, k=1),
            ValueError,
            "`scores` must not be empty",
        ),
        (
            lambda: sample_items([1.0, np.nan], 1.0, k=1),
            ValueError,
            "`scores` must not contain NaN",
        ),
        (lambda: sample_items(np.zeros((2, 2, 2)), 1.0, k=1), ValueError, "`scores` must be 1-D"),
        (lambda: sample_items(SCORES, 1.0, k=1, rng="seed"), TypeError, "`rng` must be a numpy"),
        (lambda: gini([]), ValueError, "`exposure` must not be empty"),
        (lambda: gini([0, 0]), ValueError, "`exposure` must have a positive total"),
        (lambda: gini([1, -1]), ValueError, "`exposure` must be >= 0, got -1.0."),
        (lambda: gini([[1, 2]]), ValueError, "`exposure` must be 1-D"),
        (lambda: coverage([1, np.nan]), ValueError, "`exposure` must be finite"),
        (
            lambda: long_tail_share([1, 2, 3], [3, 2]),
            ValueError,
            "`popularity` must have the shape of `exposure` (3,), got shape (2,).",
        ),
        (
            lambda: long_tail_share([1, 2], [3, 2], head_fraction=1.5),
            ValueError,
            "`head_fraction` must be in [0, 1], got 1.5.",
        ),
        (lambda: exposure([[0, 5]], 5), ValueError, "`recommendations` must be item indices in"),
        (lambda: exposure([0, -1], 5), ValueError, "`recommendations` must be item indices in"),
        (lambda: exposure([0.0, 1.0], 5), TypeError, "`recommendations` must be integer"),
        (lambda: exposure([], 5), ValueError, "`recommendations` must not be empty"),
        (lambda: exposure([0], 0), ValueError, "`n_items` must be an integer >= 1, got 0."),
    ],
)
def test_bad_input_names_the_argument(call: object, exc: type, message: str) -> None:
    with pytest.raises(exc) as info:
        call()  # type: ignore[operator]
    assert message in str(info.value)
    assert type(info.value) is exc
