"""`summarize_sampling`: checked against a from-scratch reference and transformers' warpers.

The reference below is written from the documented rules only: temperature
first (T = 0 greedy with ties kept, T = inf uniform), then top-k, top-p and
min-p, each a threshold on the value (every token tied with the last kept one
is kept); top-p keeps a token when the mass of the strictly more likely tokens
is below p.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special, stats

from backends import torch
from thermoscope.sampling import Sampler, summarize_sampling

needs_transformers = pytest.mark.skipif(
    torch is None or importlib.util.find_spec("transformers") is None,
    reason="needs torch and transformers",
)

INF = np.inf


def reference(
    z: Any, temperature: float, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0
) -> dict[str, Any]:
    """Sort-based temper / truncate / renormalise, independent of thermoscope's kernels."""
    z = np.asarray(z, dtype=np.float64)
    finite = np.isfinite(z)
    if temperature == 0:
        w = np.where(z == z.max(), 0.0, -INF)
    elif np.isinf(temperature):
        w = np.where(finite, 0.0, -INF)
    else:
        w = z / temperature
    tempered = special.softmax(w)
    keep = np.isfinite(w)
    if top_k:
        kth = np.sort(w)[::-1][min(top_k, w.size) - 1]
        keep &= w >= kth
    if top_p < 1.0:
        q = special.softmax(np.where(keep, w, -INF))
        order = np.argsort(-np.where(keep, w, -INF), kind="stable")
        nucleus = np.zeros_like(keep)
        for i in order:
            if not keep[i]:
                continue
            above = q[keep & (w > w[i])].sum()
            nucleus[i] = above < top_p
        keep &= nucleus
    if min_p > 0.0:
        q = special.softmax(np.where(keep, w, -INF))
        keep &= q >= min_p * q.max()
    probs = special.softmax(np.where(keep, w, -INF))
    return {
        "tempered": tempered,
        "probabilities": probs,
        "kept": keep,
        "entropy": float(special.entr(probs).sum()),
        "nucleus_mass": float(tempered[keep].sum()),
        "kept_count": int(keep.sum()),
        "max_probability": float(probs.max()),
    }


def assert_matches(s: Any, ref: dict[str, Any], tol: float = 1e-12) -> None:
    np.testing.assert_array_equal(s.kept, ref["kept"])
    assert s.kept_count == ref["kept_count"]
    np.testing.assert_allclose(s.tempered, ref["tempered"], rtol=1e-9, atol=tol)
    np.testing.assert_allclose(s.probabilities, ref["probabilities"], rtol=1e-9, atol=tol)
    assert s.entropy == pytest.approx(ref["entropy"], rel=1e-9, abs=tol)
    assert s.nucleus_mass == pytest.approx(ref["nucleus_mass"], rel=1e-9, abs=tol)
    assert s.max_probability == pytest.approx(ref["max_probability"], rel=1e-9, abs=tol)


def random_case(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    vocab = int(rng.integers(1, 40))
    z = rng.standard_normal(vocab) * float(rng.choice([0.3, 1.0, 3.0]))
    if rng.random() < 0.3:
        z = np.round(z, 1)  # ties
    if rng.random() < 0.3:
        z[rng.random(vocab) < 0.25] = -INF
        z[int(rng.integers(vocab))] = float(rng.standard_normal())
    setting = {
        "temperature": float(rng.choice([0.0, 1e-3, 0.3, 0.7, 1.0, 1.5, 5.0, 1e3, INF])),
        "top_k": int(rng.integers(0, vocab + 3)) if rng.random() < 0.5 else 0,
        "top_p": float(rng.uniform(0.05, 1.0)) if rng.random() < 0.5 else 1.0,
        "min_p": float(rng.uniform(0.0, 0.9)) if rng.random() < 0.5 else 0.0,
    }
    return z, setting


def test_matches_the_reference_on_random_settings() -> None:
    rng = np.random.default_rng(2024)
    for _ in range(300):
        z, setting = random_case(rng)
        assert_matches(summarize_sampling(z, **setting), reference(z, **setting))


def test_probabilities_are_the_samplers() -> None:
    z = np.array([5, 2.2, 2, 4.5, 3, 2.7])
    s = summarize_sampling(z, temperature=0.7, top_k=4, top_p=0.9, min_p=0.05)
    expected = Sampler.from_options(temperature=0.7, top_k=4, top_p=0.9, min_p=0.05).probs(z)
    np.testing.assert_allclose(s.probabilities, expected, rtol=0, atol=1e-15)


def test_worked_example_cat_dog_fish() -> None:
    s = summarize_sampling([2.0, 1.0, 0.5], temperature=1.0, top_p=0.8)
    p = np.exp([2.0, 1.0, 0.5]) / np.exp([2.0, 1.0, 0.5]).sum()
    # p(cat) = 0.629 < 0.8, so dog is kept; cat + dog = 0.860 >= 0.8, so fish is not.
    assert s.kept.tolist() == [True, True, False]
    assert s.nucleus_mass == pytest.approx(p[0] + p[1], rel=1e-12)
    np.testing.assert_allclose(s.probabilities, [*(p[:2] / p[:2].sum()), 0.0], rtol=1e-12)


def transformers_chain(z: np.ndarray, t: float, k: int, p: float, m: float) -> Any:
    from transformers.generation import logits_process as lp

    scores = torch.from_numpy(z.copy())[None]
    ids = torch.zeros((1, 1), dtype=torch.long)
    if t != 1.0:
        scores = lp.TemperatureLogitsWarper(t)(ids, scores)
    if k:
        scores = lp.TopKLogitsWarper(k)(ids, scores)
    if p != 1.0:
        scores = lp.TopPLogitsWarper(p)(ids, scores)
    if m != 0.0:
        scores = lp.MinPLogitsWarper(m)(ids, scores)
    return scores[0]


@needs_transformers
def test_matches_transformers_warpers_on_tie_free_logits() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        vocab = int(rng.integers(2, 60))
        z = rng.standard_normal(vocab) * float(rng.choice([0.5, 2.0, 4.0]))
        assert np.unique(z).size == vocab
        t = float(rng.choice([0.25, 0.7, 1.0, 1.8]))
        k = int(rng.integers(0, vocab + 2))
        p = float(rng.choice([1.0, rng.uniform(0.05, 0.99)]))
        m = float(rng.choice([0.0, rng.uniform(0.001, 0.5)]))
        theirs = transformers_chain(z, t, k, p, m)
        s = summarize_sampling(z, temperature=t, top_k=k, top_p=p, min_p=m)
        np.testing.assert_array_equal(s.kept, torch.isfinite(theirs).numpy())
        ref_probs = torch.softmax(theirs, dim=-1).numpy()
        np.testing.assert_allclose(s.probabilities, ref_probs, rtol=0, atol=1e-12)


def test_zero_temperature_is_greedy_with_ties_kept() -> None:
    z = [3.0, 1.0, 3.0, -INF, 2.0]
    s = summarize_sampling(z, temperature=0.0)
    assert s.kept.tolist() == [True, False, True, False, False]
    np.testing.assert_array_equal(s.probabilities, [0.5, 0.0, 0.5, 0.0, 0.0])
    np.testing.assert_array_equal(s.tempered, [0.5, 0.0, 0.5, 0.0, 0.0])
    assert s.entropy == pytest.approx(np.log(2), rel=1e-15)
    assert s.kept_count == 2
    assert s.nucleus_mass == 1.0
    # top-k 1 cannot split the tie: both maxima are kept.
    assert summarize_sampling(z, temperature=0.0, top_k=1).kept_count == 2
    assert summarize_sampling(z, temperature=1.0, top_k=1).kept.tolist() == [
        True,
        False,
        True,
        False,
        False,
    ]


@pytest.mark.parametrize("t", [1e6, 1e300, INF])
def test_huge_temperature_is_uniform_over_unmasked(t: float) -> None:
    z = [4.0, -2.0, -INF, 0.5]
    s = summarize_sampling(z, temperature=t)
    np.testing.assert_allclose(s.probabilities, [1 / 3, 1 / 3, 0.0, 1 / 3], rtol=1e-5)
    assert s.probabilities[2] == 0.0
    assert s.entropy == pytest.approx(np.log(3), rel=1e-5)
    assert s.kept.tolist() == [True, True, False, True]


@pytest.mark.parametrize("t", [1e-3, 1e-100, 1e-300])
def test_tiny_temperature_is_one_hot_but_keeps_every_token(t: float) -> None:
    z = [1.0, 3.0, -INF, 2.0]
    s = summarize_sampling(z, temperature=t)
    np.testing.assert_array_equal(s.probabilities, [0.0, 1.0, 0.0, 0.0])
    # No truncation: the underflowed tokens still count as kept.
    assert s.kept.tolist() == [True, True, False, True]
    assert s.kept_count == 3
    assert s.entropy == 0.0
    assert s.max_probability == 1.0
    # Tied maxima share the mass at any small T.
    np.testing.assert_array_equal(
        summarize_sampling([3.0, 3.0, 1.0], temperature=t).probabilities, [0.5, 0.5, 0]
    )


@pytest.mark.parametrize("t", [1e-310, 5e-324])
@pytest.mark.parametrize("z", [[1.0, 3.0, 2.0], [-1.0, -3.0, -2.0], [1e300, -1e300, 0.0]])
@pytest.mark.parametrize("options", [{}, {"top_k": 2}, {"top_p": 0.5}, {"min_p": 0.1}])
def test_temperature_so_small_that_z_over_t_overflows_is_the_greedy_limit(
    t: float, z: list[float], options: dict[str, float]
) -> None:
    # z / T leaves the float64 range here; the result must be T = 0's, with no warning.
    got = Sampler.from_options(temperature=t, **options).probs(np.array(z))
    np.testing.assert_array_equal(got, np.eye(3)[int(np.argmax(z))])
    assert summarize_sampling(z, temperature=t, **options).probabilities.tolist() == got.tolist()


@pytest.mark.parametrize("t", [1e-40, 1e-46])  # float32: subnormal, and rounding to 0
def test_float32_logits_at_a_temperature_below_float32_range(t: float) -> None:
    z = np.array([1.0, 3.0, 3.0, -2.0], dtype=np.float32)
    for options in ({}, {"top_k": 3}, {"top_p": 0.9}):
        got = Sampler.from_options(temperature=t, **options).probs(z)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, [0.0, 0.5, 0.5, 0.0])


def test_masked_entries_get_zero_and_are_never_kept() -> None:
    z = [-INF, 2.0, -INF, 1.0, 0.0]
    for setting in ({}, {"top_k": 10}, {"top_p": 0.999}, {"min_p": 1e-9}, {"temperature": 0.0}):
        s = summarize_sampling(z, **setting)
        assert not s.kept[0]
        assert not s.kept[2]
        assert s.probabilities[0] == s.probabilities[2] == 0.0
        assert s.tempered[0] == s.tempered[2] == 0.0
        assert_matches(s, reference(z, **{"temperature": 1.0, **setting}))


def test_headline_numbers_are_what_the_docstring_says() -> None:
    z = np.array([5, 2.2, 2, 4.5, 3, 2.7])
    s = summarize_sampling(z, temperature=0.8, top_k=3, min_p=0.1)
    tempered = special.softmax(z / 0.8)
    np.testing.assert_allclose(s.tempered, tempered, rtol=1e-12)
    # top-3 are 5, 4.5, 3; min-p 0.1 then drops 3 (its tempered ratio to 5 is e^-2.5 < 0.1).
    kept = np.array([True, False, False, True, False, False])
    np.testing.assert_array_equal(s.kept, kept)
    assert s.nucleus_mass == pytest.approx(tempered[kept].sum(), rel=1e-12)
    assert s.kept_count == 2
    probs = np.where(kept, tempered, 0.0) / tempered[kept].sum()
    np.testing.assert_allclose(s.probabilities, probs, rtol=1e-12)
    assert s.entropy == pytest.approx(stats.entropy(probs), rel=1e-12)
    assert s.max_probability == pytest.approx(probs.max(), rel=1e-12)


def test_switched_off_steps_are_left_out() -> None:
    off_values = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0}
    assert [w.name for w in Sampler.from_options(**off_values).warpers] == []
    on = Sampler.from_options(temperature=0.5, top_k=3, top_p=0.9, min_p=0.1)
    assert [w.name for w in on.warpers] == ["temperature", "top_k", "top_p", "min_p"]
    z = [1.0, 0.5, -0.3]
    off = summarize_sampling(z, **off_values)
    np.testing.assert_allclose(off.probabilities, special.softmax(z), rtol=1e-12)
    assert off.kept.all()
    assert off.nucleus_mass == pytest.approx(1.0, rel=1e-15)


# -- properties ----------------------------------------------------------------------

# Logits on a dyadic grid: adding an integer constant is exact, so invariance is exact.
grid_logits = st.lists(
    st.one_of(st.integers(-160, 160).map(lambda i: i / 8), st.just(-INF)), min_size=1, max_size=30
).filter(lambda v: any(np.isfinite(v)))
temperatures = st.sampled_from([0.0, 1e-3, 0.25, 0.7, 1.0, 2.0, 1e3, INF])
top_ps = st.floats(0.0, 1.0, exclude_min=True)
min_ps = st.floats(0.0, 1.0)


@given(z=grid_logits, t=temperatures, k=st.integers(0, 35), p=top_ps, m=min_ps)
def test_probabilities_sum_to_one_and_removed_tokens_get_zero(
    z: list[float], t: float, k: int, p: float, m: float
) -> None:
    s = summarize_sampling(z, temperature=t, top_k=k, top_p=p, min_p=m)
    assert s.probabilities.sum() == pytest.approx(1.0, abs=1e-12)
    assert s.tempered.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(s.probabilities[~s.kept] == 0.0)
    assert np.all(s.probabilities >= 0.0)
    assert 1 <= s.kept_count <= np.isfinite(z).sum()
    assert s.kept[int(np.argmax(z))]  # the most likely token always survives
    assert 0.0 < s.nucleus_mass <= 1.0 + 1e-12
    assert 0.0 <= s.entropy <= np.log(s.kept_count) + 1e-12


@given(
    z=grid_logits, t=temperatures, k=st.integers(0, 35), p=top_ps, m=min_ps, c=st.integers(-50, 50)
)
def test_adding_a_constant_to_the_logits_changes_nothing(
    z: list[float], t: float, k: int, p: float, m: float, c: int
) -> None:
    a = summarize_sampling(z, temperature=t, top_k=k, top_p=p, min_p=m)
    b = summarize_sampling(np.asarray(z) + c, temperature=t, top_k=k, top_p=p, min_p=m)
    np.testing.assert_array_equal(a.kept, b.kept)
    np.testing.assert_allclose(a.probabilities, b.probabilities, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.tempered, b.tempered, rtol=1e-9, atol=1e-12)


@given(z=grid_logits, t=temperatures, p1=top_ps, p2=top_ps)
def test_kept_set_shrinks_as_top_p_decreases(
    z: list[float], t: float, p1: float, p2: float
) -> None:
    lo, hi = sorted((p1, p2))
    small = summarize_sampling(z, temperature=t, top_p=lo).kept
    large = summarize_sampling(z, temperature=t, top_p=hi).kept
    assert np.all(large[small])


@given(z=grid_logits, t=temperatures, m1=min_ps, m2=min_ps)
def test_kept_set_shrinks_as_min_p_increases(
    z: list[float], t: float, m1: float, m2: float
) -> None:
    lo, hi = sorted((m1, m2))
    strict = summarize_sampling(z, temperature=t, min_p=hi).kept
    loose = summarize_sampling(z, temperature=t, min_p=lo).kept
    assert np.all(loose[strict])


@given(z=grid_logits, t=temperatures, k1=st.integers(1, 35), k2=st.integers(1, 35))
def test_kept_set_shrinks_as_top_k_decreases(z: list[float], t: float, k1: int, k2: int) -> None:
    lo, hi = sorted((k1, k2))
    small = summarize_sampling(z, temperature=t, top_k=lo).kept
    large = summarize_sampling(z, temperature=t, top_k=hi).kept
    off = summarize_sampling(z, temperature=t, top_k=0).kept
    assert np.all(large[small])
    assert np.all(off[large])
    assert small.sum() >= min(lo, off.sum())


# -- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("logits", "kwargs", "exc", "name"),
    [
        ([1.0, np.nan], {}, ValueError, "`logits`"),
        ([1.0, INF], {}, ValueError, "`logits`"),
        ([-INF, -INF], {}, ValueError, "`logits`"),
        ([], {}, ValueError, "`logits`"),
        ([[1.0, 2.0], [0.0, 1.0]], {}, ValueError, "`logits`"),
        (3.0, {}, ValueError, "`logits`"),
        ([1.0, 2.0], {"temperature": -0.5}, ValueError, "`temperature`"),
        ([1.0, 2.0], {"temperature": np.nan}, ValueError, "`temperature`"),
        ([1.0, 2.0], {"top_p": 0.0}, ValueError, "`top_p`"),
        ([1.0, 2.0], {"top_p": 1.5}, ValueError, "`top_p`"),
        ([1.0, 2.0], {"min_p": -0.1}, ValueError, "`min_p`"),
        ([1.0, 2.0], {"min_p": 1.1}, ValueError, "`min_p`"),
        ([1.0, 2.0], {"top_k": -1}, ValueError, "`top_k`"),
        ([1.0, 2.0], {"top_k": 1.5}, TypeError, "`top_k`"),
    ],
)
def test_bad_input_raises_naming_the_argument(
    logits: Any, kwargs: dict[str, Any], exc: type[Exception], name: str
) -> None:
    with pytest.raises(exc) as info:
        summarize_sampling(logits, **kwargs)
    assert type(info.value) is exc
    assert name in str(info.value)


def test_settings_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        summarize_sampling([1.0, 2.0], 0.7)  # type: ignore[misc]


def test_negative_top_k_message_says_zero_is_allowed() -> None:
    # 0 switches top-k off here, so the floor the message states must be 0, not 1.
    with pytest.raises(ValueError, match=r"`top_k` must be an integer >= 0, got -1"):
        summarize_sampling([1.0, 2.0], top_k=-1)


@pytest.mark.parametrize(
    "z",
    [
        [1.7976931348623157e308, -9.9792015476736e291],
        [1e308, -1e308, 0.0],
        [-1e308, 1e308, 5.0, 1e308],
    ],
)
@pytest.mark.parametrize("options", [{}, {"top_k": 2}, {"top_p": 0.5}, {"min_p": 0.2}])
def test_logits_spanning_more_than_the_float_range_work_without_warnings(
    z: list[float], options: dict[str, float]
) -> None:
    # z - max overflows to -inf for the small entries: weight exactly 0, the true limit.
    # filterwarnings=error makes any numpy overflow warning fail this test.
    top = np.max(z)
    expected = np.array([1.0 if v == top else 0.0 for v in z])
    expected /= expected.sum()
    s = summarize_sampling(z, **options)
    np.testing.assert_array_equal(s.probabilities, expected)
    sampler = Sampler.from_options(
        top_k=options.get("top_k"), top_p=options.get("top_p"), min_p=options.get("min_p")
    )
    draws = sampler.sample(np.array(z), n=50, seed=0)
    assert set(draws.tolist()) <= set(np.flatnonzero(expected).tolist())
