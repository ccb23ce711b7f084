"""The top-nσ first cut, the one-pass temperature chain and the faster kernels (issue 13).

Each is checked bit for bit against the plain chain, or against a direct
float64 transcription of the formula written here.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import needs_torch, torch
from thermoscope._temperature import row_weights, softmax_rows
from thermoscope.sampling import Eta, MinP, Sampler, Temperature, TopK, TopNSigma, TopP, _fused
from thermoscope.sampling import _kernels as K
from thermoscope.sampling._context import Context
from thermoscope.sampling._input import prepare
from thermoscope.sampling._rowdraw import bits_for, draw_rows

if torch is not None:
    from thermoscope.sampling import _fused_torch


def plain(warpers, x):
    rows = prepare(x)
    z = rows.z
    for w in warpers:
        z = w.apply(z, rows.batch_shape)
    return z


def logits(seed: int, rows: int = 4, vocab: int = 6000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    kind = ("normal", "zipf", "ties", "masked")[seed % 4]
    if kind == "zipf":
        rank = rng.permuted(np.tile(np.arange(1, vocab + 1), (rows, 1)), axis=1)
        x = -1.3 * np.log(rank) + 0.1 * rng.standard_normal((rows, vocab))
    else:
        x = 2.0 * rng.standard_normal((rows, vocab))
    if kind == "ties":
        x = np.round(x)
    if kind == "masked":
        x[rng.random(x.shape) < 0.7] = -np.inf
        x[:, 0] = 0.5
    return x.astype(np.float32 if seed % 3 else np.float64)


def sigma_threshold_reference(z: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``max - n * std`` over the finite entries, the float64 formula in one pass."""
    finite = np.isfinite(z)
    z64 = np.where(finite, z, 0.0).astype(np.float64)
    count = finite.sum(axis=-1)
    mean = z64.sum(axis=-1) / count
    var = np.where(finite, (z64 - mean[:, None]) ** 2, 0.0).sum(axis=-1) / count
    spread = n * np.sqrt(var)
    spread = np.where(np.isnan(spread), np.inf, spread)
    return z.max(axis=-1).astype(np.float64) - spread


@pytest.mark.parametrize("seed", range(12))
def test_top_n_sigma_threshold_is_the_one_pass_formula(seed):
    # 40 rows of 6000: several slices of rows, the last one short.
    z = logits(seed, rows=40)
    n = np.random.default_rng(seed).uniform(0.0, 3.0, 40)
    n[0], n[1] = 0.0, np.inf
    np.testing.assert_array_equal(K.top_n_sigma_threshold(z, n), sigma_threshold_reference(z, n))
    finite = np.isfinite(z[2])
    direct = z[2].max() - n[2] * np.std(z[2][finite].astype(np.float64))
    assert K.top_n_sigma_threshold(z, n)[2] == pytest.approx(direct, rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, width=32), min_size=1, max_size=30),
    st.floats(-2e6, 2e6),
)
def test_floor_in_compares_float32_as_float64(values, thr):
    z = np.array([values], dtype=np.float32)
    t = np.array([thr])
    edge = K.floor_in(t, z.dtype)
    assert edge.dtype == np.float32
    np.testing.assert_array_equal(z >= edge[:, None], z.astype(np.float64) >= t[:, None])
    np.testing.assert_array_equal(
        K.apply_threshold(z, t), np.where(z.astype(np.float64) >= thr, z, -np.inf)
    )


def test_ranked_matches_a_stable_sort_also_on_mixed_ties():
    # Scores 1.0 tie with different probabilities (log p on both sides of -H):
    # the stable order, by position, must decide the running sum.
    score = np.array([[1.0, 0.5, 1.0, 2.0, 1.0], [3.0, 1.0, 1.0, 0.0, np.inf]])
    probs = np.array([[0.3, 0.1, 0.2, 0.1, 0.3], [0.1, 0.2, 0.2, 0.5, 0.0]])
    ranked, mass = K._ranked(score, probs)
    order = np.argsort(score, axis=-1, kind="stable")
    np.testing.assert_array_equal(ranked, np.take_along_axis(score, order, axis=-1))
    np.testing.assert_array_equal(mass, np.take_along_axis(probs, order, axis=-1))


def sigma_chains(seed: int) -> list:
    rng = np.random.default_rng(seed)
    n = float(rng.uniform(0.0, 2.5))
    rows = 4
    t = rng.uniform(0.3, 2.0) if seed % 2 else rng.uniform(0.3, 2.0, rows)
    return [
        [TopNSigma(n), Temperature(t)],  # llama.cpp's order
        [Temperature(t), TopNSigma(n)],  # transformers' order
        [TopNSigma(n), TopK(7), Temperature(t)],
        [TopNSigma(n), MinP(0.2), TopP(0.8)],
    ]


@pytest.mark.parametrize("seed", range(16))
def test_top_n_sigma_first_cut_equals_plain(seed):
    x = logits(seed)
    for warpers in sigma_chains(seed):
        rows = prepare(x)
        chain = _fused.plan(tuple(warpers), rows)
        assert chain is not None
        assert isinstance(chain.steps[chain.first_cut], TopNSigma | TopK | MinP | TopP)
        ref = plain(warpers, x)
        got = _fused.run(chain, rows, Context(rows.batch_shape))
        np.testing.assert_array_equal(got.dense_logits(), ref)
        np.testing.assert_allclose(got.dense_probs(), softmax_rows(ref), rtol=0, atol=1e-6)
        u = np.random.default_rng(seed).random((ref.shape[0], 32))
        bits = bits_for(ref.shape[1])
        np.testing.assert_array_equal(got.sample(u, bits), draw_rows(row_weights(ref)[0], u, bits))


@needs_torch
@pytest.mark.parametrize("seed", range(0, 16, 3))
def test_torch_top_n_sigma_first_cut_equals_torch_plain(seed):
    x = torch.from_numpy(logits(seed))
    for warpers in sigma_chains(seed):
        rows = prepare(x)
        chain = _fused.plan(tuple(warpers), rows)
        ref = plain(warpers, x)
        got = _fused_torch.run(chain, rows, Context(rows.batch_shape))
        assert torch.equal(got.dense_logits(), ref)
        u = torch.from_numpy(np.random.default_rng(seed).random((ref.shape[0], 32)))
        bits = bits_for(ref.shape[1])
        want = draw_rows(row_weights(ref)[0], u, bits)
        assert torch.equal(got.token_ids(got.positions(u, bits)), want)


@pytest.mark.parametrize("seed", range(12))
def test_tempered_is_the_plain_temperature_chain_bit_for_bit(seed):
    x = logits(seed, rows=6)
    rng = np.random.default_rng(seed)
    temps = [Temperature(rng.uniform(0.05, 3.0, 6) if seed % 2 else rng.uniform(0.05, 3.0))]
    if seed % 3 == 0:
        temps.append(Temperature(0.7))
    rows = prepare(x)
    got = _fused.tempered(tuple(temps), rows)
    assert got is not None
    ref = plain(temps, x)
    np.testing.assert_array_equal(got.dense_logits(), ref)
    np.testing.assert_array_equal(got.masked_vals(), ref)
    np.testing.assert_array_equal(got.weights(), row_weights(ref)[0])
    np.testing.assert_array_equal(got.dense_probs(), softmax_rows(ref))
    u = rng.random((6, 40))
    bits = bits_for(x.shape[1])
    want = draw_rows(row_weights(ref)[0], u, bits)
    np.testing.assert_array_equal(got.token_ids(got.positions(u, bits)), want)


@pytest.mark.parametrize(
    "warpers",
    [
        (Temperature(0.0),),
        (Temperature(np.array([0.5, np.inf])),),
        (Temperature(0.5), TopK(3)),
        (),
        (Temperature(1e-38),),  # z / T overflows: the plain chain shifts first
    ],
)
def test_tempered_declines_what_the_plain_chain_must_do(warpers):
    rows = prepare(np.array([[1.0, 50.0, 3.0], [0.0, -1.0, 2.0]], dtype=np.float32))
    assert _fused.tempered(warpers, rows) is None


@needs_torch
def test_tempered_leaves_torch_rows_to_the_torch_chain():
    rows = prepare(torch.zeros((2, 3)))
    assert _fused.tempered((Temperature(0.7),), rows) is None


def test_sampler_draws_are_unchanged_for_temperature_alone():
    # Whichever route the Sampler takes, the draws are the plain chain's.
    x = logits(1, rows=3, vocab=5000)
    s = Sampler([Temperature(0.7)])
    rows = prepare(x)
    u = np.random.default_rng(0).random((3, 8))
    want = draw_rows(row_weights(plain(s.warpers, x))[0], u, bits_for(5000))
    got = _fused.tempered(s.warpers, rows)
    assert got is not None
    np.testing.assert_array_equal(got.positions(u, bits_for(5000)), want)


def eta_chains(seed: int) -> list:
    rng = np.random.default_rng(seed)
    eps = float(10 ** rng.uniform(-4, -1))
    t = rng.uniform(0.3, 2.0) if seed % 2 else rng.uniform(0.3, 2.0, 4)
    return [
        [Temperature(t), Eta(eps)],
        [Eta(eps), Temperature(t)],
        [Temperature(t), Eta(eps, min_tokens_to_keep=5), TopP(0.9)],
        [Eta(np.full(4, eps)), MinP(0.05)],
    ]


@pytest.mark.parametrize("seed", range(16))
def test_eta_first_cut_equals_plain(seed):
    """Eta as the fused path's first cut keeps what the plain chain keeps, draws alike."""
    x = logits(seed)
    for warpers in eta_chains(seed):
        rows = prepare(x)
        chain = _fused.plan(tuple(warpers), rows)
        assert chain is not None
        ref = plain(warpers, x)
        got = _fused.run(chain, rows, Context(rows.batch_shape))
        np.testing.assert_array_equal(got.dense_logits(), ref)
        np.testing.assert_allclose(got.dense_probs(), softmax_rows(ref), rtol=0, atol=1e-6)
        u = np.random.default_rng(seed).random((ref.shape[0], 32))
        bits = bits_for(ref.shape[1])
        np.testing.assert_array_equal(got.sample(u, bits), draw_rows(row_weights(ref)[0], u, bits))
        if torch is not None:
            xt = torch.from_numpy(x)
            rows_t = prepare(xt)
            got_t = _fused_torch.run(chain, rows_t, Context(rows_t.batch_shape))
            np.testing.assert_array_equal(
                np.isfinite(got_t.dense_logits().numpy()), np.isfinite(ref)
            )
