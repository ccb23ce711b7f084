"""Draws follow `.probs` (chi-square), masked tokens never appear, invariances hold.

On numpy and on torch CPU tensors (float64 and float32): the same
distributions, the same seeded tokens on both libraries, outputs of the
input's kind.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backends import needs_torch, torch
from thermoscope.sampling import Sampler, Temperature, TopK, TopP, Typical, goodness_of_fit

#: numpy float64, torch float64, torch float32 (those two when torch is installed).
AVAILABLE_KINDS = ["numpy"] if torch is None else ["numpy", "torch-float64", "torch-float32"]
#: The same, each torch kind skipped on its own without torch.
KINDS = [
    "numpy",
    pytest.param("torch-float64", marks=needs_torch),
    pytest.param("torch-float32", marks=needs_torch),
]


def as_kind(x: np.ndarray, kind: str):
    if kind == "numpy":
        return x
    return torch.from_numpy(np.array(x)).to(getattr(torch, kind.split("-")[1]))


def host(out) -> np.ndarray:
    if torch is not None and isinstance(out, torch.Tensor):
        return out.to(torch.float64).numpy() if out.is_floating_point() else out.numpy()
    return out


CONFIGS = {
    "temperature": Sampler([Temperature(0.8)]),
    "top_k": Sampler([Temperature(1.3), TopK(6)]),
    "top_p_min_p": Sampler.from_options(temperature=0.7, top_p=0.95, min_p=0.02),
    "llama_order": Sampler([Temperature(1.5), TopK(8), TopP(0.9)], order="llama.cpp"),
    "typical": Sampler([Typical(0.8)]),
    "greedy_tie": Sampler.greedy(),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_frequencies_match_probs(name, kind):
    sampler = CONFIGS[name]
    rng = np.random.default_rng(12345)
    x = rng.standard_normal(12) * 1.5
    x[[2, 7]] = x.max()  # a tie at the top, so greedy has two outcomes
    draws = 20_000
    xin = as_kind(x, kind)
    p = host(sampler.probs(xin))
    got = sampler.sample(xin, n=draws, seed=2024)
    if kind != "numpy":
        assert isinstance(got, torch.Tensor)
        assert got.dtype == torch.int64
        got = got.numpy()
        np.testing.assert_allclose(p, sampler.probs(x), rtol=1e-5 if "32" in kind else 1e-6)
    fit = goodness_of_fit(np.bincount(got, minlength=x.size), p)
    assert fit.removed_draws == 0
    assert fit.n == draws
    assert fit.p_value is None or fit.p_value > 1e-3  # None: one possible token


@pytest.mark.parametrize("kind", KINDS)
def test_batched_rows_each_follow_their_distribution(kind):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 8)) * 0.5
    sampler = Sampler([Temperature(np.array([0.5, 1.0, 2.0])), TopP(np.array([0.6, 0.9, 1.0]))])
    p = host(sampler.probs(as_kind(x, kind)))
    got = host(sampler.sample(as_kind(x, kind), n=15_000, seed=np.array([9, 10, 11])))
    for row in range(3):
        fit = goodness_of_fit(np.bincount(got[row], minlength=8), p[row])
        assert fit.removed_draws == 0
        assert fit.p_value is not None  # at least two possible tokens
        assert fit.p_value > 1e-3


logit_rows = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 4), st.integers(2, 40)),
    elements=st.one_of(
        st.floats(-30, 30, allow_nan=False, allow_infinity=False),
        st.just(-np.inf),
    ),
)

samplers = st.sampled_from(
    [
        Sampler([Temperature(0.7), TopK(3)]),
        Sampler.from_options(temperature=0.9, top_p=0.8, min_p=0.1),
        Sampler([TopP(0.5)], order="llama.cpp"),
        Sampler([Typical(0.6)]),
        Sampler.greedy(),
    ]
)


def _fix_dead_rows(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    dead = np.all(np.isneginf(x), axis=-1)
    x[dead, 0] = 0.0
    return x


kinds = st.sampled_from(AVAILABLE_KINDS)


@settings(max_examples=80, deadline=None)
@given(x=logit_rows, sampler=samplers, seed=st.integers(0, 2**64 - 1), kind=kinds)
def test_masked_tokens_are_never_drawn(x, sampler, seed, kind):
    x = _fix_dead_rows(x)
    got = host(sampler.sample(as_kind(x, kind), n=50, seed=seed))
    allowed = np.isfinite(host(sampler.logits(as_kind(x, kind))))
    assert np.all(np.take_along_axis(allowed, got, axis=-1))
    assert np.all(np.isfinite(np.take_along_axis(x, got, axis=-1)))
    if kind == "torch-float64":
        # Same logits, same seed: the same tokens as numpy's.
        np.testing.assert_array_equal(got, sampler.sample(x, n=50, seed=seed))


@settings(max_examples=60, deadline=None)
@given(x=logit_rows, sampler=samplers, shift=st.floats(-50, 50), kind=kinds)
def test_invariant_to_adding_a_constant(x, sampler, shift, kind):
    x = _fix_dead_rows(x)
    # Round so that x + shift - shift == x exactly and ties stay ties (float32 too).
    x = np.round(x * 4) / 4
    shift = np.round(shift * 4) / 4
    p0 = host(sampler.probs(as_kind(x, kind)))
    p1 = host(sampler.probs(as_kind(x + shift, kind)))
    np.testing.assert_array_equal(p0 > 0, p1 > 0)
    np.testing.assert_allclose(p0, p1, atol=1e-9 if "32" not in kind else 1e-5)
    np.testing.assert_array_equal(
        host(sampler.sample(as_kind(x, kind), n=5, seed=3)),
        host(sampler.sample(as_kind(x + shift, kind), n=5, seed=3)),
    )


@settings(max_examples=60, deadline=None)
@given(x=logit_rows, sampler=samplers, kind=kinds)
def test_probs_are_distributions_that_keep_the_order(x, sampler, kind):
    x = _fix_dead_rows(x)
    p = host(sampler.probs(as_kind(x, kind)))
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12 if "32" not in kind else 1e-6)
    # Surviving tokens keep the order of their logits (no warper reorders).
    for row in range(x.shape[0]):
        alive = p[row] > 0
        order = np.argsort(x[row][alive], kind="stable")
        assert np.all(np.diff(p[row][alive][order]) >= (-1e-15 if "32" not in kind else -1e-7))


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_draws_and_generator_advances(kind):
    x = as_kind(np.random.default_rng(0).standard_normal((4, 30)), kind)
    s = Sampler.from_options(temperature=0.8, top_k=10)
    np.testing.assert_array_equal(host(s.sample(x, n=20, seed=7)), host(s.sample(x, n=20, seed=7)))
    rng_a, rng_b = np.random.default_rng(11), np.random.default_rng(11)
    first = host(s.sample(x, n=20, rng=rng_a))
    np.testing.assert_array_equal(first, host(s.sample(x, n=20, rng=rng_b)))
    assert not np.array_equal(first, host(s.sample(x, n=20, rng=rng_a)))  # advanced
    # Each step draws anew, and so does each seed.
    assert not np.array_equal(host(s.sample(x, n=20, seed=7)), host(s.sample(x, n=20, seed=8)))
    assert not np.array_equal(
        host(s.sample(x, n=20, seed=7)), host(s.sample(x, n=20, seed=7, step=1))
    )


def test_rows_with_one_seed_and_one_distribution_draw_alike():
    """One seed for every row makes identical rows draw identical tokens (by design)."""
    x = np.tile(np.random.default_rng(3).standard_normal(20), (6, 1))
    s = Sampler.from_options(temperature=1.2)
    same = s.sample(x, n=10, seed=4)
    assert (same == same[0]).all()
    own = s.sample(x, n=10, seed=np.arange(6))
    assert len({tuple(row) for row in own.tolist()}) > 1


def test_sampling_does_not_touch_global_random_state():
    # The legacy global generator is used on purpose: it must stay untouched.
    np.random.seed(0)  # noqa: NPY002
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    Sampler([TopK(3)]).sample(np.arange(10.0), n=5, seed=1)
    Sampler([TopK(3)]).sample(np.arange(10.0), n=5)
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002
