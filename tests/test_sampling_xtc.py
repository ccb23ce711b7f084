"""XTC against a float64 transcription of llama.cpp's ``llama_sample_xtc_apply``, and its coin."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from backends import on_every_backend, torch
from thermoscope.sampling import Sampler, Temperature, TopK, TopP
from thermoscope.sampling.xtc import XTC


def reference_xtc(
    logits: np.ndarray, applied: bool, probability: float, threshold: float, min_keep: int
) -> np.ndarray:
    """llama.cpp's XTC on one row whose coin gave ``applied``; -inf marks removed tokens."""
    z = np.array(logits, dtype=np.float64)
    ids = np.flatnonzero(np.isfinite(z))  # the candidates cur_p holds
    if probability <= 0.0 or threshold > 0.5 or ids.size < 2 or not applied:
        return z
    # llama_sampler_softmax_impl(cur_p, true): sorted by logit, descending.
    order = ids[np.argsort(-z[ids], kind="stable")]
    p = np.exp(z[order] - z[order[0]])
    p /= p.sum()
    pos_last = 0
    for i in range(order.size):
        if p[i] >= threshold:
            pos_last = i
        else:
            break
    if order.size - pos_last >= min_keep and pos_last > 0:
        z[order[:pos_last]] = -np.inf
    return z


def distinct_logits(rng: np.random.Generator, rows: int, vocab: int) -> np.ndarray:
    """Logits without ties (llama.cpp keeps an arbitrary one of tied top choices)."""
    return np.stack(
        [rng.permutation(vocab) * 0.37 + rng.normal(0, 0.01, vocab) for _ in range(rows)]
    )


# -- against the transcription -------------------------------------------------


@pytest.mark.parametrize("seed", range(30))
def test_matches_llama_cpp_when_the_coin_comes_up(seed):
    rng = np.random.default_rng(seed)
    rows, vocab = 4, int(rng.integers(2, 12))
    z = distinct_logits(rng, rows, vocab) * rng.uniform(0.2, 3.0)
    z[rng.random(z.shape) < 0.2] = -np.inf
    z[:, 0] = 1.0  # at least one finite entry per row
    threshold = float(rng.choice([0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.51]))
    min_keep = int(rng.integers(0, 5))
    got = XTC(1.0, threshold, min_keep=min_keep)(z, seed=seed)
    want = np.stack([reference_xtc(row, True, 1.0, threshold, min_keep) for row in z])
    np.testing.assert_array_equal(got, want)


@settings(max_examples=200, deadline=None)
@given(
    probs=st.lists(st.floats(0.001, 1.0), min_size=1, max_size=8, unique=True),
    threshold=st.floats(0.0, 1.0),
    min_keep=st.integers(0, 6),
)
def test_matches_transcription_hypothesis(probs, threshold, min_keep):
    z = np.log(np.array(probs))
    p = np.exp(z - z.max())
    p /= p.sum()
    # Probabilities within rounding of the threshold may land either side.
    if np.any(np.abs(p - threshold) < 1e-9):
        return
    # Tokens within rounding of each other count as tied here (the documented tie
    # policy keeps a tie group whole) and may not be in the transcription.
    if np.any(np.diff(np.sort(z)) < 1e-12):
        return
    got = XTC(1.0, threshold, min_keep=min_keep)(z, seed=0)
    np.testing.assert_array_equal(got, reference_xtc(z, True, 1.0, threshold, min_keep))


def test_worked_examples_of_llama_cpp_tests():
    # tests/test-sampling.cpp test_xtc (p = 0.99 there; here the coin is forced with p = 1).
    z = np.log(np.array([0.4, 0.3, 0.2, 0.1]))
    for threshold, kept in [(0.09, [0.1]), (0.19, [0.2, 0.1]), (0.29, [0.3, 0.2, 0.1])]:
        out = XTC(1.0, threshold)(z, seed=0)
        p = np.exp(out[np.isfinite(out)])
        np.testing.assert_allclose(p / p.sum(), np.array(kept) / sum(kept))
    np.testing.assert_array_equal(XTC(1.0, 0.39)(z, seed=0), z)  # one top choice only


def test_threshold_above_one_half_is_off_and_needs_no_seed():
    z = np.log(np.array([[0.6, 0.39, 0.01], [0.5, 0.5, 1e-9]]))
    np.testing.assert_array_equal(XTC(1.0, 0.51)(z), z)
    np.testing.assert_array_equal(XTC(1.0, 0.5)(z, seed=0)[0], z[0])  # only 0.6 reaches 0.5
    np.testing.assert_array_equal(XTC(1.0, 0.5)(z, seed=0)[1], z[1])  # tied: kept together


def test_ties_at_the_least_top_choice_are_kept_together():
    z = np.log(np.array([0.4, 0.25, 0.25, 0.1]))
    out = XTC(1.0, 0.2)(z, seed=0)
    np.testing.assert_array_equal(np.isfinite(out), [False, True, True, True])
    tied_top = np.log(np.array([0.45, 0.45, 0.1]))
    np.testing.assert_array_equal(XTC(1.0, 0.4)(tied_top, seed=0), tied_top)


def test_min_keep_is_all_or_nothing():
    z = np.log(np.array([0.4, 0.3, 0.2, 0.1]))
    # Threshold 0.09: removing three leaves 1 token.
    assert np.isfinite(XTC(1.0, 0.09, min_keep=1)(z, seed=0)).sum() == 1
    np.testing.assert_array_equal(XTC(1.0, 0.09, min_keep=2)(z, seed=0), z)
    assert np.isfinite(XTC(1.0, 0.19, min_keep=2)(z, seed=0)).sum() == 2


def test_probability_zero_is_off_and_needs_no_seed():
    z = np.log(np.array([0.4, 0.3, 0.2, 0.1]))
    out = XTC(0.0, 0.1)(z)
    np.testing.assert_array_equal(out, z)
    assert out is not z


@settings(max_examples=100, deadline=None)
@given(
    logits=st.lists(st.floats(-20, 20), min_size=1, max_size=10),
    threshold=st.floats(0.0, 0.5),
)
def test_output_keeps_the_least_top_choice_and_adds_nothing(logits, threshold):
    z = np.array(logits)
    out = XTC(1.0, threshold)(z, seed=1)
    kept = np.isfinite(out)
    assert kept.any()
    np.testing.assert_array_equal(out[kept], z[kept])  # values untouched
    assert z.max() not in out[kept] or kept.all() or np.sum(z == z.max()) == kept.sum()


def test_per_row_probability_and_threshold():
    z = np.log(np.array([[0.4, 0.3, 0.2, 0.1]] * 3))
    out = XTC([1.0, 0.0, 1.0], [0.15, 0.15, 0.29])(z, seed=0)
    np.testing.assert_array_equal(np.isfinite(out).sum(axis=1), [2, 4, 3])


# -- the coin ------------------------------------------------------------------


def applied(out: np.ndarray) -> np.ndarray:
    return ~np.isfinite(out).all(axis=-1)


def test_coin_frequency_matches_probability():
    z = np.log(np.array([0.4, 0.3, 0.2, 0.1]))
    xtc = XTC(0.3, 0.1)
    steps = 2000
    hits = sum(bool(applied(xtc(z, seed=11, step=s))) for s in range(steps))
    result = stats.binomtest(hits, steps, 0.3)
    assert result.pvalue > 1e-3, (hits, result.pvalue)


def test_coin_is_seeded_and_batch_independent():
    z = np.log(np.array([[0.4, 0.3, 0.2, 0.1]] * 64))
    seeds = np.arange(64) * 7 + 3
    xtc = XTC(0.5, 0.1)
    batch = xtc(z, seed=seeds, step=5)
    for r in (0, 17, 63):
        alone = xtc(z[r], seed=int(seeds[r]), step=5)
        np.testing.assert_array_equal(batch[r], alone)
    np.testing.assert_array_equal(batch, xtc(z, seed=seeds, step=5))
    assert 0 < applied(batch).sum() < 64  # the coins differ across rows


def test_without_seed_names_seed():
    z = np.log(np.array([0.4, 0.3, 0.2, 0.1]))
    with pytest.raises(ValueError, match="`seed=`"):
        XTC(0.5, 0.1)(z)
    with pytest.raises(ValueError, match="`seed=`"):
        Sampler([XTC(0.5, 0.1)]).probs(z)


def test_rng_gives_the_coins_too():
    z = np.log(np.array([[0.4, 0.3, 0.2, 0.1]] * 200))
    out = XTC(0.5, 0.1)(z, rng=np.random.default_rng(0))
    assert 50 < applied(out).sum() < 150


# -- in a sampler: plain chain and fused path -----------------------------------


@pytest.mark.parametrize("first", [TopK(20), TopP(0.9)])
def test_fused_path_equals_the_plain_chain(first):
    rng = np.random.default_rng(4)
    z = rng.normal(size=(16, 300)) * 2.0
    chain = [first, Temperature(0.8), XTC(0.6, 0.08)]
    fused = Sampler(chain)
    assert fused._plan(_rows(z)) is not None  # XTC runs on the candidates
    steps = [Temperature(0.8), first, XTC(0.6, 0.08)]
    want = z
    for w in steps:
        want = w(want, seed=9, step=2)
    np.testing.assert_allclose(
        fused.probs(z, seed=9, step=2), _softmax(want), rtol=1e-12, atol=1e-15
    )


def test_sample_draws_only_kept_tokens():
    z = np.log(np.array([0.4, 0.3, 0.2, 0.1]))
    draws = Sampler([TopK(4), XTC(1.0, 0.15)]).sample(z, n=200, seed=0)
    assert set(draws.tolist()) <= {2, 3}


def _rows(z):
    from thermoscope.sampling._input import prepare

    return prepare(z)


def _softmax(z):
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True)


# -- backends ------------------------------------------------------------------


@on_every_backend
def test_backends_agree_with_numpy(backend):
    rng = np.random.default_rng(8)
    z = distinct_logits(rng, 32, 50)
    z[:, 40:] = -np.inf
    xtc = XTC(rng.uniform(0, 1, 32), rng.uniform(0.0, 0.3, 32), min_keep=2)
    seeds = np.arange(32)
    want = xtc(z, seed=seeds, step=3)
    got = xtc(backend.array(z), seed=seeds, step=3)
    backend.check(got)
    np.testing.assert_array_equal(np.isfinite(backend.numpy(got)), np.isfinite(want))


def test_half_precision_round_trips():
    z = np.log(np.array([0.4, 0.3, 0.2, 0.1])).astype(np.float16)
    out = XTC(1.0, 0.15)(z, seed=0)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(np.isfinite(out), [False, False, True, True])
    if torch is not None:
        t = XTC(1.0, 0.15)(torch.tensor(z, dtype=torch.bfloat16), seed=0)
        assert t.dtype == torch.bfloat16
        assert torch.isfinite(t).tolist() == [False, False, True, True]


# -- bad input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "name"),
    [
        ((-0.1, 0.1), {}, ValueError, "probability"),
        ((1.1, 0.1), {}, ValueError, "probability"),
        ((np.nan, 0.1), {}, ValueError, "probability"),
        (("0.5", 0.1), {}, TypeError, "probability"),
        ((0.5, -0.1), {}, ValueError, "threshold"),
        ((0.5, 1.5), {}, ValueError, "threshold"),
        ((0.5, None), {}, TypeError, "threshold"),
        ((0.5, 0.1), {"min_keep": -1}, ValueError, "min_keep"),
        ((0.5, 0.1), {"min_keep": 1.5}, TypeError, "min_keep"),
        ((0.5, 0.1), {"min_keep": [1, 2]}, TypeError, "min_keep"),
    ],
)
def test_bad_input_names_the_argument(args, kwargs, exc, name):
    with pytest.raises(exc, match=f"`{name}`"):
        XTC(*args, **kwargs)


def test_per_row_parameter_of_the_wrong_shape_names_it():
    with pytest.raises(ValueError, match="`probability`"):
        XTC([0.5, 0.5], 0.1)(np.zeros((3, 4)), seed=0)
    with pytest.raises(ValueError, match="`threshold`"):
        XTC(0.5, [0.1, 0.2])(np.zeros((3, 4)), seed=0)
