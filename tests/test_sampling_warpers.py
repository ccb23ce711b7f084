"""Each warper against closed forms on small literal arrays, plus shapes, kinds and immutability."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from thermoscope.sampling import (
    EntropyTemperature,
    Epsilon,
    MinP,
    Temperature,
    TopK,
    TopNSigma,
    TopP,
    Typical,
)

INF = np.inf


def kept(z: np.ndarray) -> np.ndarray:
    return np.isfinite(z)


# -- Temperature ---------------------------------------------------------------


def test_temperature_divides():
    z = np.array([2.0, -1.0, -INF])
    np.testing.assert_array_equal(Temperature(0.5)(z), [4.0, -2.0, -INF])


def test_temperature_zero_is_greedy_keeping_ties():
    z = np.array([[1.0, 3.0, 3.0, -INF], [5.0, 0.0, 1.0, 2.0]])
    out = Temperature(0.0)(z)
    np.testing.assert_array_equal(
        kept(out), [[False, True, True, False], [True, False, False, False]]
    )


def test_temperature_inf_is_uniform_over_finite():
    out = Temperature(np.inf)(np.array([3.0, -2.0, -INF, 0.5]))
    np.testing.assert_array_equal(out, [0.0, 0.0, -INF, 0.0])


def test_temperature_per_row():
    z = np.array([[2.0, 4.0], [2.0, 4.0], [2.0, 4.0]])
    out = Temperature(np.array([1.0, 2.0, 0.0]))(z)
    np.testing.assert_array_equal(out, [[2.0, 4.0], [1.0, 2.0], [-INF, 0.0]])


def test_float32_stays_float32_and_float16_round_trips():
    z32 = np.array([1.0, 2.0], dtype=np.float32)
    assert Temperature(0.7)(z32).dtype == np.float32
    z16 = np.array([1.0, 2.0, 0.5], dtype=np.float16)
    out = TopK(2)(z16)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(kept(out), [True, True, False])


# -- TopK ----------------------------------------------------------------------


def test_top_k_keeps_k_largest():
    out = TopK(2)(np.array([0.5, 2.0, 1.0, -1.0]))
    np.testing.assert_array_equal(out, [-INF, 2.0, 1.0, -INF])


def test_top_k_keeps_ties_at_the_cut():
    out = TopK(2)(np.array([3.0, 1.0, 1.0, 1.0, 0.0]))
    np.testing.assert_array_equal(kept(out), [True, True, True, True, False])


def test_top_k_capped_at_vocab_size():
    z = np.array([1.0, 2.0, -INF])
    np.testing.assert_array_equal(TopK(10)(z), z)


def test_top_k_per_row_and_min_tokens_to_keep():
    z = np.array([[4.0, 3.0, 2.0, 1.0], [4.0, 3.0, 2.0, 1.0]])
    out = TopK(np.array([1, 3]))(z)
    np.testing.assert_array_equal(kept(out).sum(axis=1), [1, 3])
    assert kept(TopK(1, min_tokens_to_keep=3)(z[0])).sum() == 3


# -- TopP ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "expected"),
    [(0.4, 1), (0.49, 1), (0.51, 2), (0.79, 2), (0.81, 3), (0.94, 3), (0.96, 4), (1.0, 4)],
)
def test_top_p_smallest_set_reaching_p(p, expected):
    z = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    # Mass above the k-th token: 0, 0.5, 0.8, 0.95; kept while below p (p avoids exact ties).
    assert kept(TopP(p)(z)).sum() == expected


def test_top_p_keeps_ties_at_the_cut():
    z = np.log(np.array([0.4, 0.2, 0.2, 0.2]))
    np.testing.assert_array_equal(kept(TopP(0.5)(z)), [True, True, True, True])


def test_top_p_min_tokens_to_keep():
    z = np.log(np.array([0.9, 0.05, 0.03, 0.02]))
    assert kept(TopP(0.5, min_tokens_to_keep=3)(z)).sum() == 3


def test_top_p_ignores_masked_tokens():
    z = np.array([np.log(0.6), -INF, np.log(0.4)])
    np.testing.assert_array_equal(kept(TopP(0.7)(z)), [True, False, True])


# -- MinP ----------------------------------------------------------------------


def test_min_p_closed_form():
    probs = np.array([0.6, 0.3, 0.08, 0.02])
    out = MinP(0.1)(np.log(probs))
    np.testing.assert_array_equal(kept(out), probs >= 0.1 * 0.6)


def test_min_p_zero_keeps_everything_and_one_keeps_the_top():
    z = np.array([1.0, 0.0, -5.0, 1.0])
    np.testing.assert_array_equal(MinP(0.0)(z), z)
    np.testing.assert_array_equal(kept(MinP(1.0)(z)), [True, False, False, True])


# -- Typical ---------------------------------------------------------------------


def test_typical_can_drop_the_most_likely_token():
    z = np.log(np.array([0.4, 0.2, 0.2, 0.2]))
    np.testing.assert_array_equal(kept(Typical(0.5)(z)), [False, True, True, True])


def test_typical_closed_form_ranking():
    probs = np.array([0.55, 0.25, 0.12, 0.05, 0.03])
    ent = -np.sum(probs * np.log(probs))
    order = np.argsort(np.abs(-np.log(probs) - ent))
    cum = np.cumsum(probs[order])
    n_keep = int(np.searchsorted(cum, 0.6) + 1)
    expected = np.zeros(5, dtype=bool)
    expected[order[:n_keep]] = True
    np.testing.assert_array_equal(kept(Typical(0.6)(np.log(probs))), expected)


# -- Epsilon -------------------------------------------------------------------


def test_epsilon_threshold_and_floor():
    z = np.log(np.array([0.6, 0.3, 0.0999, 0.0001]))
    np.testing.assert_array_equal(kept(Epsilon(0.001)(z)), [True, True, True, False])
    flat = np.zeros(10)  # every probability 0.1 < 0.5: the ties at the top all stay
    np.testing.assert_array_equal(Epsilon(0.5)(flat), flat)
    assert kept(Epsilon(0.5, min_tokens_to_keep=2)(z)).sum() == 2


# -- TopNSigma -------------------------------------------------------------------


def test_top_n_sigma_closed_form():
    z = np.array([3.0, 2.5, 0.0, -1.0, -INF])
    finite = z[np.isfinite(z)]
    cut = finite.max() - 1.0 * finite.std()
    np.testing.assert_array_equal(kept(TopNSigma(1.0)(z)), np.isfinite(z) & (z >= cut))


def test_top_n_sigma_limits_and_temperature_invariance():
    z = np.array([3.0, 2.5, 0.0, -1.0])
    np.testing.assert_array_equal(kept(TopNSigma(0.0)(z)), [True, False, False, False])
    np.testing.assert_array_equal(TopNSigma(np.inf)(z), z)
    np.testing.assert_array_equal(kept(TopNSigma(1.0)(z / 0.3)), kept(TopNSigma(1.0)(z)))


# -- EntropyTemperature --------------------------------------------------------


def test_entropy_temperature_matches_llama_cpp_formula():
    z = np.array([2.0, 1.0, 0.0, -1.0, -INF])
    finite = z[:4]
    probs = np.exp(finite) / np.exp(finite).sum()
    ent = -np.sum(probs * np.log(probs))
    t = 0.3 + (1.3 - 0.3) * (ent / np.log(4)) ** 2.0
    np.testing.assert_allclose(
        EntropyTemperature(0.3, 1.3, exponent=2.0)(z)[:4], finite / t, rtol=1e-12
    )


def test_entropy_temperature_equal_bounds_is_plain_temperature():
    z = np.array([[0.5, 2.0, -1.0], [3.0, 3.0, 0.0]])
    np.testing.assert_allclose(EntropyTemperature(0.7, 0.7)(z), Temperature(0.7)(z))


def test_entropy_temperature_single_candidate_unchanged():
    z = np.array([4.0, -INF, -INF])
    np.testing.assert_array_equal(EntropyTemperature(0.0, 2.0)(z), z)


# -- shared behaviour ----------------------------------------------------------

ALL = [
    Temperature(0.7),
    TopK(3),
    TopP(0.8),
    MinP(0.05),
    Typical(0.9),
    Epsilon(0.01),
    TopNSigma(1.5),
    EntropyTemperature(0.5, 1.5),
]


@pytest.mark.parametrize("warper", ALL, ids=lambda w: type(w).__name__)
def test_does_not_mutate_input_and_keeps_the_top(warper):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 20))
    z[:, 3] = -INF
    before = z.copy()
    out = warper(z)
    np.testing.assert_array_equal(z, before)
    assert out is not z
    assert out.shape == z.shape
    assert np.all(np.isneginf(out[:, 3]))
    assert np.all(kept(out).sum(axis=1) >= 1)


@pytest.mark.parametrize("warper", ALL, ids=lambda w: type(w).__name__)
def test_frozen(warper):
    field = dataclasses.fields(warper)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(warper, field, 1)


def test_per_row_array_parameters_are_read_only_copies():
    p = np.array([0.5, 0.9])
    w = TopP(p)
    p[0] = 0.1
    assert w.top_p[0] == 0.5
    with pytest.raises(ValueError, match="read-only"):
        w.top_p[0] = 0.2


def test_batch_shape_beyond_two_dims():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((2, 3, 6))
    k = np.array([[1, 2, 3], [4, 5, 6]])
    out = TopK(k)(z)
    np.testing.assert_array_equal(kept(out).sum(axis=-1), k)


def test_list_input_gives_numpy():
    out = TopK(1)([1.0, 2.0])
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, [-INF, 2.0])


@pytest.mark.parametrize("warper", ALL, ids=lambda w: type(w).__name__)
def test_torch_in_torch_out(warper):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    z = rng.standard_normal((3, 12)).astype(np.float32)
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        t = torch.from_numpy(z).to(dtype)
        out = warper(t)
        assert isinstance(out, torch.Tensor)
        assert out.dtype == dtype
        ref = warper(t.to(torch.float32).numpy())
        np.testing.assert_array_equal(torch.isfinite(out).numpy(), np.isfinite(ref))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "warper",
    [
        *ALL,
        TopK(np.array([1, 3, 5, 2])),
        TopP(0.3, min_tokens_to_keep=3),
        Epsilon(0.2, min_tokens_to_keep=2),
        Temperature(np.array([0.0, np.inf, 0.5, 1e-30])),
    ],
    ids=repr,
)
def test_torch_warpers_equal_numpy(warper, dtype):
    """torch kernels keep numpy's tokens with numpy's values (ties, masks, limits included)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    z = np.round(rng.standard_normal((4, 40)) * 3, 1).astype(dtype)  # ties
    z[0, ::3] = -INF
    z[3, 5] = 40.0
    out = warper(torch.from_numpy(z.copy()))
    assert out.dtype == getattr(torch, dtype)
    ref = warper(z)
    np.testing.assert_array_equal(np.isfinite(out.numpy()), np.isfinite(ref))
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6 if dtype == "float32" else 1e-12)
