"""The faster η, top-nσ and top-p cuts (issue 13): the plain chain's kept set, values, draws.

Covered: η's cut from raw rows tempered a slice at a time and gathered from
a raw floor (numpy), top-p's cut from the top of the row (numpy and torch),
the torch top-nσ and η statistics summed a slice of columns at a time, and
the torch sparse upper-set gather. Each is checked bit for bit against the
plain chain (the warpers' own ``apply`` in turn) and, for the statistics,
against a direct float64 transcription of the formula written here.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import needs_torch, torch
from thermoscope._temperature import row_weights, softmax_rows
from thermoscope.sampling import (
    Eta,
    MinP,
    Sampler,
    Temperature,
    TopK,
    TopNSigma,
    TopP,
    _fused,
    entropy_cuts,
)
from thermoscope.sampling import _kernels as K
from thermoscope.sampling._context import Context
from thermoscope.sampling._input import prepare
from thermoscope.sampling._rowdraw import bits_for, draw_rows

if torch is not None:
    from thermoscope.sampling import _fused_torch
    from thermoscope.sampling import _kernels_torch as KT

KINDS = ("zipf", "normal", "ties", "masked", "flat")


def logits(seed: int, rows: int = 4, vocab: int = 9001, dtype: type = np.float32) -> np.ndarray:
    """Rows of one kind: LM-shaped, normal, rounded (ties), mostly -inf, or nearly flat."""
    rng = np.random.default_rng(seed)
    kind = KINDS[seed % len(KINDS)]
    if kind == "zipf":
        rank = rng.permuted(np.tile(np.arange(1, vocab + 1), (rows, 1)), axis=1)
        x = -1.5 * np.log(rank) + 0.1 * rng.standard_normal((rows, vocab))
    elif kind == "flat":
        x = 0.01 * rng.standard_normal((rows, vocab))
    else:
        x = 2.0 * rng.standard_normal((rows, vocab))
    if kind == "ties":
        x = np.round(x)
    if kind == "masked":
        x[rng.random(x.shape) < 0.7] = -np.inf
        x[:, 0] = 0.5
    return x.astype(dtype)


def plain(warpers, x):
    rows = prepare(x)
    z = rows.z
    for w in warpers:
        z = w.apply(z, rows.batch_shape)
    return z


def chains(seed: int, rows: int) -> list:
    rng = np.random.default_rng(seed)
    t = float(rng.uniform(0.3, 1.5))
    t_rows = rng.uniform(0.3, 1.5, rows)
    p_rows = rng.uniform(0.5, 1.0, rows)
    p_rows[0] = 1.0  # a row that keeps every finite token
    eps = float(rng.uniform(1e-4, 0.05))
    return [
        [Temperature(t), Eta(eps)],
        [Temperature(t_rows), Temperature(0.9), Eta(rng.uniform(1e-4, 0.05, rows))],
        [Eta(eps), MinP(0.05)],
        [Temperature(t), Eta(eps, min_tokens_to_keep=3), TopK(5)],
        [Temperature(t), TopP(0.9)],
        [Temperature(t_rows), TopP(p_rows)],
        [TopP(0.7), Temperature(t), MinP(0.1)],
        [Temperature(t), Temperature(1.3), TopP(0.95), TopK(3)],
        [Temperature(t), TopNSigma(1.0)],
        [TopNSigma(rng.uniform(0.0, 3.0, rows)), Temperature(t_rows)],
    ]


def check_numpy(warpers, x, seed):
    rows = prepare(x)
    chain = _fused.plan(tuple(warpers), rows)
    assert chain is not None
    ref = plain(warpers, x)
    got = _fused.run(chain, rows, Context(rows.batch_shape))
    np.testing.assert_array_equal(got.dense_logits(), ref)
    np.testing.assert_allclose(got.dense_probs(), softmax_rows(ref), rtol=0, atol=1e-6)
    u = np.random.default_rng(seed).random((ref.shape[0], 16))
    bits = bits_for(ref.shape[1])
    np.testing.assert_array_equal(got.sample(u, bits), draw_rows(row_weights(ref)[0], u, bits))


def check_torch(warpers, x, seed):
    xt = torch.from_numpy(x)
    rows = prepare(xt)
    chain = _fused.plan(tuple(warpers), rows)
    assert chain is not None
    ref = plain(warpers, xt)
    got = _fused_torch.run(chain, rows, Context(rows.batch_shape))
    assert torch.equal(got.dense_logits(), ref)
    u = torch.from_numpy(np.random.default_rng(seed).random((ref.shape[0], 16)))
    bits = bits_for(ref.shape[1])
    want = draw_rows(row_weights(ref)[0], u, bits)
    assert torch.equal(got.token_ids(got.positions(u, bits)), want)


@pytest.mark.parametrize("rows", [1, 4, 37])
@pytest.mark.parametrize("seed", range(10))
def test_numpy_fused_equals_plain(seed, rows):
    dtype = np.float64 if seed % 3 == 2 else np.float32
    vocab = 9001 if rows < 37 else 300
    x = logits(seed, rows, vocab, dtype)
    for warpers in chains(seed, rows):
        check_numpy(warpers, x, seed)


@needs_torch
@pytest.mark.parametrize("rows", [1, 4, 37])
@pytest.mark.parametrize("seed", range(10))
def test_torch_fused_equals_torch_plain(seed, rows):
    dtype = np.float64 if seed % 3 == 2 else np.float32
    vocab = 9001 if rows < 37 else 300
    x = logits(seed, rows, vocab, dtype)
    for warpers in chains(seed, rows):
        check_torch(warpers, x, seed)


@pytest.mark.parametrize("seed", range(5))
def test_lm_rows_take_the_head_and_raw_routes(seed, monkeypatch):
    """On LM-shaped rows top-p is decided from the top of the row; flat rows search a band."""
    x = logits(0, 6, 16384)  # zipf
    calls = []
    real = _fused._top_p_first
    monkeypatch.setattr(_fused, "_top_p_first", lambda *a, **k: calls.append(1) or real(*a, **k))
    check_numpy([Temperature(0.7), TopP(0.9)], x, seed)
    assert not calls
    check_numpy([Temperature(0.7), TopP(0.9)], logits(4, 6, 16384), seed)  # flat
    assert calls


@needs_torch
def test_torch_lm_rows_take_the_head_route(monkeypatch):
    x = logits(0, 6, 16384)  # zipf
    calls = []
    real = _fused_torch._band_cut
    monkeypatch.setattr(_fused_torch, "_band_cut", lambda *a: calls.append(1) or real(*a))
    check_torch([Temperature(0.7), TopP(0.9)], x, 0)
    assert not calls
    check_torch([Temperature(0.7), TopP(0.9)], logits(4, 6, 16384), 0)  # flat
    assert calls


def test_float16_and_integer_logits_through_the_sampler():
    x = logits(0, 3, 9001)
    for warpers in ([Temperature(0.7), Eta(0.001)], [Temperature(0.7), TopP(0.9)]):
        s = Sampler(warpers)
        x16 = x.astype(np.float16)
        got = s.logits(x16)
        assert got.dtype == np.float16
        np.testing.assert_array_equal(got, plain(warpers, x16).astype(np.float16))
        xi = np.round(4 * x).astype(np.int64)
        np.testing.assert_array_equal(s.logits(xi), plain(warpers, xi))
        np.testing.assert_array_equal(s.sample(x16, seed=3, n=4), s.sample(x16, seed=3, n=4))


# -- the statistics against float64 transcriptions ---------------------------------


def eta_threshold_reference(z: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """η's cut in float64: ``log(min(eps, sqrt(eps) exp(-H))) + log-sum-exp``."""
    z64 = z.astype(np.float64)
    m = z64.max(axis=-1, keepdims=True)
    w = np.exp(z64 - m)
    s = w.sum(axis=-1, keepdims=True)
    p = w / s
    logp = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), 0.0)
    ent = -(p * logp).sum(axis=-1)
    eta = np.minimum(eps, np.sqrt(eps) * np.exp(-ent))
    return np.log(eta) + m[:, 0] + np.log(s[:, 0])


@pytest.mark.parametrize("seed", range(10))
def test_eta_threshold_against_float64(seed):
    x = logits(seed, 5, 3000)
    eps = np.random.default_rng(seed).uniform(1e-4, 0.2, 5)
    got = entropy_cuts._eta_threshold(x, eps)
    # float32 weights and products: agreement to float32 rounding, not beyond.
    np.testing.assert_allclose(got, eta_threshold_reference(x, eps), rtol=0, atol=1e-4)
    if torch is not None:
        got_t = entropy_cuts._eta_threshold(torch.from_numpy(x), eps).numpy()
        np.testing.assert_allclose(got_t, eta_threshold_reference(x, eps), rtol=0, atol=1e-4)


@pytest.mark.parametrize("seed", range(6))
def test_eta_threshold_of_raw_rows_is_that_of_tempered_rows(seed):
    """``divisors`` temper each slice: the cut is the tempered rows' bit for bit, row by row."""
    x = logits(seed, 40, 5000)  # several slices of rows, the last one short
    rng = np.random.default_rng(seed)
    eps = rng.uniform(1e-4, 0.2, 40)
    t1, t2 = rng.uniform(0.2, 2.0, 40).astype(np.float32), np.float32(0.8)
    zt = plain([Temperature(t1), Temperature(0.8)], x)
    divisors = (t1[:, None], np.full((40, 1), t2))
    m = zt.max(axis=-1)
    want = entropy_cuts._eta_threshold(zt, eps)
    np.testing.assert_array_equal(entropy_cuts._eta_threshold(x, eps, m, divisors), want)
    np.testing.assert_array_equal(entropy_cuts._eta_threshold(zt[7:8], eps[7:8]), want[7:8])


def test_eta_floor_refuses_divisors_with_min_tokens_to_keep():
    z = logits(0, 2, 100)
    with pytest.raises(ValueError, match="`divisors`"):
        entropy_cuts.eta_floor(Eta(0.01, min_tokens_to_keep=2), z, (2,), None, (np.ones((2, 1)),))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(-1e4, 1e4, width=32), min_size=1, max_size=40),
    st.floats(0.01, 50.0),
    st.floats(0.3, 3.0),
    st.integers(0, 39),
    st.floats(-1e-3, 1e-3),
)
def test_raw_floor_keeps_every_token_whose_tempered_value_reaches_the_cut(
    values, t1, t2, at, nudge
):
    x = np.array([values], dtype=np.float32)
    divisors = [np.array([[t1]], dtype=np.float32), np.array([[t2]], dtype=np.float32)]
    tempered = x / divisors[0] / divisors[1]
    # A cut at (or within rounding of) a tempered value: where rounding decides.
    thr = np.array([float(tempered[0, at % x.shape[1]]) * (1.0 + 1e-9 * nudge)])
    floor = _fused._raw_floor(thr, divisors, np.dtype(np.float32))
    reached = tempered >= K.floor_in(thr, np.dtype(np.float32))[:, None]
    assert np.all(x[reached] >= floor[0])
    assert floor[0] > -np.inf


def sigma_threshold_reference(z: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``max - n * std`` over the finite entries, float64."""
    out = np.empty(z.shape[0])
    for r, row in enumerate(z.astype(np.float64)):
        fin = row[np.isfinite(row)]
        spread = n[r] * np.std(fin) if np.std(fin) > 0 or np.isfinite(n[r]) else np.inf
        out[r] = fin.max() - spread
    return out


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(5))
def test_torch_top_n_sigma_threshold_against_float64(seed, dtype):
    x = logits(seed, 6, 20000, dtype)  # several column slices, the last one short
    n = np.random.default_rng(seed).uniform(0.0, 3.0, 6)
    n[1] = np.inf
    xt = torch.from_numpy(x.copy())
    got = KT.top_n_sigma_threshold(xt, n).numpy()
    assert np.array_equal(xt.numpy(), x)  # the input is never written
    np.testing.assert_allclose(got, sigma_threshold_reference(x, n), rtol=1e-12, atol=1e-12)
    alone = KT.top_n_sigma_threshold(xt[3:4], n[3:4]).numpy()
    np.testing.assert_array_equal(alone, got[3:4])  # a row's cut does not depend on the batch


@needs_torch
@pytest.mark.parametrize("seed", range(5))
def test_torch_eta_threshold_does_not_depend_on_the_batch(seed):
    x = torch.from_numpy(logits(seed, 6, 20000))
    eps = np.random.default_rng(seed).uniform(1e-4, 0.2, 6)
    got = entropy_cuts._eta_threshold(x, eps)
    np.testing.assert_array_equal(
        entropy_cuts._eta_threshold(x[2:3], eps[2:3]).numpy(), got[2:3].numpy()
    )


# -- the torch sparse gather ---------------------------------------------------------


@needs_torch
@pytest.mark.parametrize("vocab", [100, 4096, 9001])
@pytest.mark.parametrize("seed", range(10))
def test_torch_upper_first_is_the_dense_compaction(seed, vocab):
    x = torch.from_numpy(logits(seed, 5, vocab))
    rng = np.random.default_rng(seed)
    top = x.amax(dim=-1).to(torch.float64)
    # Sparse cuts (a few tokens), wide ones (most groups) and -inf (every finite token).
    for drop in (0.0, 0.5, rng.uniform(0.0, 3.0), 20.0, np.inf):
        thr = top - drop
        got = _fused_torch._upper_first(x, thr)
        want = _fused_torch.compact_mask(x, _fused_torch._upper_set(x, thr))
        assert torch.equal(got.dense_logits(), want.dense_logits())
        w = got.valid.sum(dim=-1)
        assert torch.equal(w, want.valid.sum(dim=-1))
        for r in range(x.shape[0]):  # ascending token ids, the draw's order
            ids = got.ids[r, : int(w[r])]
            assert torch.equal(ids, want.ids[r, : int(w[r])])
