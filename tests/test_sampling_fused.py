"""The fused path gives the plain chain's kept set, probabilities and same-seed draws.

numpy's fused path against numpy's plain chain, torch's fused path against
torch's plain chain (bit for bit, on CPU), and the two libraries against each
other (same kept tokens and draws, probabilities to float rounding).
"""

from __future__ import annotations

import numpy as np
import pytest

from backends import needs_torch, torch
from thermoscope._temperature import row_weights, softmax_rows
from thermoscope.sampling import (
    Epsilon,
    MinP,
    Sampler,
    Temperature,
    TopK,
    TopNSigma,
    TopP,
    Typical,
    _fused,
)
from thermoscope.sampling import _kernels as K
from thermoscope.sampling._context import Context
from thermoscope.sampling._counter import uniforms
from thermoscope.sampling._draw import draw, fixed_point_bits
from thermoscope.sampling._input import prepare
from thermoscope.sampling._rowdraw import bits_for, draw_rows

if torch is not None:  # the torch paths import torch at module level
    from thermoscope.sampling import _fused_torch
    from thermoscope.sampling import _kernels_torch as KT


def plain(sampler: Sampler, x):
    """The plain chain: every warper on the whole vocabulary, one after the other."""
    rows = prepare(x)
    z = rows.z
    for w in sampler.warpers:
        z = w.apply(z, rows.batch_shape)
    return z


def seeded(rows: int, n: int, seed: int) -> np.ndarray:
    """The uniforms ``Sampler.sample(..., seed=seed)`` draws with (step 0)."""
    return uniforms(np.full(rows, seed), 0, n)


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    rows = int(rng.integers(1, 6))
    vocab = int(rng.choice([3, 40, 700, 6000, 20000]))
    shape = str(rng.choice(["normal", "zipf", "ties", "masked"]))
    if shape == "zipf":
        rank = rng.permuted(np.tile(np.arange(1, vocab + 1), (rows, 1)), axis=1)
        x = -rng.uniform(0.8, 2.0) * np.log(rank) + 0.1 * rng.standard_normal((rows, vocab))
    else:
        x = rng.standard_normal((rows, vocab)) * rng.choice([0.3, 1.0, 3.0, 8.0])
    if shape == "ties":
        x = np.round(x)
    if shape == "masked":
        x[rng.random(x.shape) < rng.uniform(0.1, 0.99)] = -np.inf
        x[np.arange(rows), rng.integers(0, vocab, rows)] = 0.5
    x = x.astype(rng.choice([np.float32, np.float64]))

    def per_row(value):
        return value if rng.random() < 0.5 else np.asarray(value) * np.ones(rows)

    kinds = rng.permutation(4)[: int(rng.integers(1, 5))]
    steps = []
    for kind in kinds:
        if kind == 0:
            steps.append(Temperature(per_row(rng.uniform(0.2, 2.5))))
        elif kind == 1:
            k = rng.integers(1, 80, size=rows) if rng.random() < 0.3 else int(rng.integers(1, 80))
            steps.append(TopK(k))
        elif kind == 2:
            steps.append(TopP(per_row(rng.uniform(0.05, 1.0))))
        else:
            steps.append(MinP(per_row(rng.uniform(0.0, 0.6))))
    order = str(rng.choice(["transformers", "llama.cpp", "as_given"]))
    return x, Sampler(steps, order=order)


@pytest.mark.parametrize("seed", range(300))
def test_fused_equals_plain(seed):
    x, sampler = random_case(seed)
    rows = prepare(x)
    chain = _fused.plan(sampler.warpers, rows)
    if any(not isinstance(w, Temperature) for w in sampler.warpers):
        assert chain is not None
    else:
        assert chain is None  # temperature alone: the plain path is already one pass
        return
    ref = plain(sampler, x)
    fused = _fused.run(chain, rows, Context(rows.batch_shape))
    np.testing.assert_array_equal(np.isfinite(fused.dense_logits()), np.isfinite(ref))
    np.testing.assert_array_equal(fused.dense_logits(), ref)
    np.testing.assert_allclose(fused.dense_probs(), softmax_rows(ref), rtol=0, atol=1e-6)
    # Same uniforms -> the same tokens, through the one shared draw routine.
    u = np.random.default_rng(seed).random((ref.shape[0], 16))
    bits = bits_for(ref.shape[1])
    np.testing.assert_array_equal(fused.sample(u, bits), draw_rows(row_weights(ref)[0], u, bits))


@needs_torch
@pytest.mark.parametrize("seed", range(0, 300, 2))
def test_torch_fused_equals_torch_plain_and_numpy(seed):
    x, sampler = random_case(seed)
    xt = torch.from_numpy(x.copy())
    rows = prepare(xt)
    chain = _fused.plan(sampler.warpers, rows)
    if all(isinstance(w, Temperature) for w in sampler.warpers):
        assert chain is None
        return
    assert chain is not None
    ref = plain(sampler, xt)
    got = _fused_torch.run(chain, rows, Context(rows.batch_shape))
    assert torch.equal(got.dense_logits(), ref)
    torch.testing.assert_close(got.dense_probs(), softmax_rows(ref), rtol=0, atol=1e-6)
    u = torch.from_numpy(np.random.default_rng(seed).random((ref.shape[0], 16)))
    bits = bits_for(ref.shape[1])
    want = draw_rows(row_weights(ref)[0], u, bits)
    assert torch.equal(got.token_ids(got.positions(u, bits)), want)
    # The two libraries keep the same tokens with the same values and draw alike.
    ref_np = plain(sampler, x)
    np.testing.assert_array_equal(np.isfinite(ref.numpy()), np.isfinite(ref_np))
    np.testing.assert_array_equal(ref.numpy(), ref_np)
    np.testing.assert_array_equal(want.numpy(), draw_rows(row_weights(ref_np)[0], u.numpy(), bits))


@needs_torch
@pytest.mark.parametrize("seed", range(20))
def test_public_methods_use_fused_and_match_plain(seed):
    x, sampler = random_case(1000 + seed)
    ref = plain(sampler, x)
    np.testing.assert_array_equal(sampler.logits(x), ref.astype(x.dtype))
    np.testing.assert_allclose(sampler.probs(x), softmax_rows(ref), atol=1e-6)
    u = seeded(ref.shape[0], 3, 5)
    expected = draw_rows(row_weights(ref)[0], u, bits_for(ref.shape[1]))
    np.testing.assert_array_equal(sampler.sample(x, n=3, seed=5), expected)
    xt = torch.from_numpy(x.copy())
    np.testing.assert_array_equal(sampler.logits(xt).numpy(), ref)
    np.testing.assert_array_equal(sampler.sample(xt, n=3, seed=5).numpy(), expected)


def test_flat_rows_fall_back_per_row():
    """A nucleus wider than every candidate list still gets the exact cut."""
    rng = np.random.default_rng(3)
    x = np.concatenate(
        [rng.standard_normal((2, 60000)) * 0.05, -2.0 * np.log(np.arange(1, 60001))[None, :]]
    ).astype(np.float32)
    sampler = Sampler([TopP(0.95)])
    np.testing.assert_array_equal(sampler.logits(x), plain(sampler, x))


def test_ties_at_the_cut_are_kept_together():
    x = np.zeros((2, 10000), dtype=np.float32)
    x[:, :30] = 1.0  # 30 tokens tied at the top
    for sampler in (Sampler([TopK(5)]), Sampler([TopP(0.001)]), Sampler([MinP(0.9)])):
        assert np.isfinite(sampler.logits(x)).sum() == 60


@pytest.mark.parametrize(
    "sampler",
    [
        Sampler.from_options(temperature=0.7, top_k=50, top_p=0.9),
        Sampler([TopK(50), TopP(0.9), Temperature(0.7)], order="llama.cpp"),
        Sampler([TopK(20), MinP(0.05)]),
    ],
)
def test_top_k_never_sorts_or_partitions_the_vocabulary(sampler, monkeypatch):
    vocab = 50257
    x = np.random.default_rng(0).standard_normal((4, vocab)).astype(np.float32)
    seen: list[int] = []
    for name in ("sort", "argsort", "partition", "argpartition"):
        original = getattr(np, name)

        def spy(a, *args, _original=original, **kwargs):
            seen.append(np.shape(a)[-1])
            return _original(a, *args, **kwargs)

        monkeypatch.setattr(np, name, spy)
    sampler.sample(x, seed=0)
    sampler.probs(x)
    # Partial selection over group maxima and sorts of a few candidates only.
    assert max(seen, default=0) < vocab // 10


@pytest.mark.parametrize("seed", range(60))
def test_candidate_stages_after_the_first_cut_run_fused_and_match_plain(seed):
    """Stages that read only the kept values (typical, epsilon, top-n-sigma) run on the
    fused path's candidates after the first cut and keep what the plain chain keeps."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, 500)) * rng.uniform(0.5, 3.0)
    extra = [Typical(0.7), Epsilon(0.01), TopNSigma(1.0)][seed % 3]
    sampler = Sampler([Temperature(0.8), TopK(int(rng.integers(5, 60))), extra], order="as_given")
    rows = prepare(x)
    chain = _fused.plan(sampler.warpers, rows)
    assert chain is not None
    fused = _fused.run(chain, rows, Context(rows.batch_shape))
    ref = plain(sampler, x)
    np.testing.assert_array_equal(np.isfinite(fused.dense_logits()), np.isfinite(ref))
    np.testing.assert_allclose(fused.dense_probs(), softmax_rows(ref), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "sampler",
    [
        Sampler([Temperature(0.0), TopK(3)]),  # greedy temperature
        Sampler([Temperature(np.array([0.5, np.inf])), TopP(0.9)]),
        Sampler([Epsilon(0.01), TopK(3)], order="as_given"),  # no cut before it
        Sampler([TopP(0.9, min_tokens_to_keep=2)]),
        Sampler([Temperature(0.7)]),
    ],
)
def test_plan_declines_what_it_does_not_cover(sampler):
    rows = prepare(np.zeros((2, 5)))
    assert _fused.plan(sampler.warpers, rows) is None


def test_declined_chains_still_work():
    x = np.array([[1.0, 2.0, 3.0, 3.0], [0.0, 1.0, 0.5, -1.0]])
    s = Sampler([Temperature(np.array([0.0, np.inf])), TopP(0.9)])
    np.testing.assert_array_equal(
        np.isfinite(s.logits(x)), [[False, False, True, True], [True, True, True, True]]
    )


def reference_draw(weights: np.ndarray, u: np.ndarray, bits: int) -> np.ndarray:
    """The definition of the draw: one exact int64 running sum over each whole row."""
    ints = (weights * weights.dtype.type(2.0**bits)).astype(np.int64)
    running = np.cumsum(ints, axis=-1)
    totals = running[:, -1:]
    target = np.minimum(np.floor(u * totals.astype(np.float64)).astype(np.int64), totals - 1)
    return np.stack([np.searchsorted(running[i], target[i], side="right") for i in range(len(u))])


@pytest.mark.parametrize("seed", range(40))
def test_two_level_draw_equals_one_running_sum(seed):
    rng = np.random.default_rng(seed)
    rows, length = int(rng.integers(1, 5)), int(rng.choice([1, 2, 511, 512, 513, 3000, 70001]))
    dtype = rng.choice([np.float32, np.float64])
    w = (rng.random((rows, length)) ** rng.choice([1, 10, 40])).astype(dtype)
    w[rng.random(w.shape) < rng.uniform(0.0, 0.999)] = 0.0
    w[np.arange(rows), rng.integers(0, length, rows)] = 1.0
    u = rng.random((rows, int(rng.integers(1, 30))))
    u[:, 0] = [0.0, np.nextafter(1.0, 0.0)][seed % 2]
    bits = fixed_point_bits(rows, length)
    got = draw(w, u, bits)
    np.testing.assert_array_equal(got, reference_draw(w, u, bits))
    assert np.all(w[np.arange(rows)[:, None], got] > 0)


def fused_top_p(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Top-p as the first cut on the fused path, as dense logits."""
    return _fused._top_p_first(x, p).dense_logits()


def plain_top_p(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    return K.apply_threshold(x, K.top_p_threshold(x, p))


@pytest.mark.parametrize("seed", range(24))
def test_top_p_band_search_matches_plain_kernel(seed):
    """Wide nuclei (flat rows) take the band search; the cut is the plain kernel's."""
    rng = np.random.default_rng(seed)
    vocab = int(rng.choice([20000, 50257, 70000]))
    x = rng.standard_normal((3, vocab)) * rng.choice([0.05, 0.5, 2.0, 4.0])
    if seed % 3 == 0:
        x = np.round(x, 1)  # many ties
    if seed % 4 == 1:
        x[rng.random(x.shape) < 0.5] = -np.inf
    x = x.astype(rng.choice([np.float32, np.float64]))
    p = rng.uniform(0.05, 0.999, size=3)
    np.testing.assert_array_equal(fused_top_p(x, p), plain_top_p(x, p))
    sampler = Sampler([TopP(p)])
    np.testing.assert_array_equal(sampler.logits(x), plain(sampler, x))


def test_band_search_needs_no_full_sort_on_flat_rows(monkeypatch):
    x = (2.0 * np.random.default_rng(1).standard_normal((4, 128256))).astype(np.float32)
    p = np.full(4, 0.9)
    expected = plain_top_p(x, p)
    calls: list[int] = []
    original = K.top_p_threshold
    monkeypatch.setattr(K, "top_p_threshold", lambda z, *a: calls.append(1) or original(z, *a))
    np.testing.assert_array_equal(fused_top_p(x, p), expected)
    assert not calls  # every row verified inside its band


def test_band_search_exact_tie_with_target_falls_back():
    """Running sums hitting p * Z exactly: no margin, so the plain kernel decides."""
    x = np.zeros((2, 40000), dtype=np.float32)
    x[1, :20000] = -np.inf
    p = np.array([0.5, 0.25])
    np.testing.assert_array_equal(fused_top_p(x, p), plain_top_p(x, p))


@needs_torch
@pytest.mark.parametrize("t", [0.05, 0.7, 1.0, 3.0, 1e4, "rows"])
@pytest.mark.parametrize("vocab", [50257, 128256])
def test_top_k_first_with_deferred_temperature(t, vocab):
    rng = np.random.default_rng(vocab)
    x = (rng.standard_normal((4, vocab)) * 2).astype(np.float32)
    x[0, rng.random(vocab) < 0.9] = -np.inf
    x[1, :] = np.round(x[1, :])  # heavy ties
    x[2, : vocab - 30] = -np.inf  # fewer finite tokens than k
    temp = np.array([0.5, 2.0, 7.0, 0.9]) if t == "rows" else t
    for sampler in (
        Sampler.from_options(temperature=temp, top_k=50, top_p=0.9),
        Sampler([Temperature(temp), Temperature(0.8), TopK(np.array([1, 5, 50, 200]))]),
    ):
        ref = plain(sampler, x)
        np.testing.assert_array_equal(sampler.logits(x), ref)
        u = np.random.default_rng(0).random((4, 8))
        expected = draw_rows(row_weights(ref)[0], u, bits_for(ref.shape[1]))
        rows = prepare(x)
        got = _fused.run(
            _fused.plan(sampler.warpers, rows), rows, Context(rows.batch_shape)
        ).sample(u, bits_for(ref.shape[1]))
        np.testing.assert_array_equal(got, expected)
        xt = torch.from_numpy(x)
        assert torch.equal(sampler.logits(xt), torch.from_numpy(ref))
        rows = prepare(xt)
        got = _fused_torch.run(
            _fused.plan(sampler.warpers, rows), rows, Context(rows.batch_shape)
        ).sample(torch.from_numpy(u), bits_for(ref.shape[1]))
        np.testing.assert_array_equal(got.numpy(), expected)


def varied_wide_rows(rng: np.random.Generator, kind: int) -> np.ndarray:
    """Normal, Gumbel, power-law, rounded (ties) or masked rows, a full-size vocabulary."""
    rows, vocab = 8, int(rng.choice([32000, 50257, 128256]))
    if kind == 0:
        x = rng.standard_normal((rows, vocab)) * rng.uniform(0.3, 4.0)
    elif kind == 1:
        x = rng.gumbel(size=(rows, vocab)) * rng.uniform(0.5, 3.0)
    elif kind == 2:
        rank = rng.permuted(np.tile(np.arange(1, vocab + 1), (rows, 1)), axis=1)
        x = -rng.uniform(0.5, 2.0) * np.log(rank) + 0.3 * rng.standard_normal((rows, vocab))
    elif kind == 3:
        x = np.round(rng.standard_normal((rows, vocab)) * 2, 1)
    else:
        x = rng.standard_normal((rows, vocab)) * rng.uniform(0.3, 4.0)
        x[rng.random(x.shape) < rng.uniform(0.3, 0.95)] = -np.inf
        x[:, 0] = 1.0
    return x.astype(np.float32)


@pytest.mark.parametrize("seed", range(30))
def test_top_p_first_cut_on_varied_wide_rows(seed):
    """Bands and their refinement on many shapes of rows keep the plain kernel's set.

    (Seed 4, for one, once caught a band edge landing on -inf padding.)
    """
    rng = np.random.default_rng(seed)
    x = varied_wide_rows(rng, seed % 5)
    p = rng.uniform(0.1, 0.999, size=x.shape[0])
    np.testing.assert_array_equal(fused_top_p(x, p), plain_top_p(x, p))


def test_band_edge_on_masked_value_is_checked():
    """An upper band edge of -inf (a masked value) is a bound like any other."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3000)).astype(np.float32)
    x[1, ::2] = -np.inf
    p = np.array([0.9, 0.9])
    m, total = _fused._row_mass(x)
    target = p * total
    c_lo = np.array([-np.inf, -np.inf], dtype=np.float32)
    c_hi = np.array([np.sort(x[0])[-100], -np.inf], dtype=np.float32)
    cand = _fused._compact(x, _fused._upper_set(x, c_lo))
    weights = np.exp(cand.vals - m)
    cut, ok = _fused._band_cut(cand, weights, m, c_hi, target, total, x.shape[1])
    expected = K.top_p_threshold(x, p)
    assert np.all((cut == expected) | ~ok)


@pytest.mark.parametrize("seed", range(25))
def test_min_p_first_cut_matches_plain_kernel(seed):
    """Gathered groups (sparse cuts) and the full compare (wide cuts) keep the same set."""
    rng = np.random.default_rng(seed)
    x = varied_wide_rows(rng, seed % 5)
    if seed % 3 == 0:
        x = np.asfortranarray(x)  # not C-contiguous: gathered without np.take
    p = rng.choice([0.0, 0.001, 0.05, 0.3, 0.9, 1.0], size=x.shape[0])
    z = np.ascontiguousarray(x)
    got = _fused._min_p_first(x, x.max(axis=-1, keepdims=True), p)
    expected = K.apply_threshold(z, K.min_p_threshold(z, p))
    np.testing.assert_array_equal(got.dense_logits(), expected)
    sampler = Sampler([MinP(p), Temperature(0.8)])
    np.testing.assert_array_equal(sampler.logits(x), plain(sampler, x))


def test_min_p_first_takes_both_routes():
    """A sparse cut is gathered from the groups, a wide one compares the vocabulary."""
    x = make_zipf(np.random.default_rng(0), 4, 50257)
    m = x.max(axis=-1, keepdims=True)
    calls: list[float] = []
    original = _fused._gather_upper

    def spy(*args, **kwargs):
        calls.append(1.0)
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_fused, "_gather_upper", spy)
        for p, gathered in ((0.2, True), (1e-6, False)):
            calls.clear()
            got = _fused._min_p_first(x, m, np.full(4, p)).dense_logits()
            thr = K.min_p_threshold(x, np.full(4, p))
            np.testing.assert_array_equal(got, K.apply_threshold(x, thr))
            assert bool(calls) is gathered


def make_zipf(rng: np.random.Generator, rows: int, vocab: int) -> np.ndarray:
    rank = rng.permuted(np.tile(np.arange(1, vocab + 1), (rows, 1)), axis=1)
    return (-1.5 * np.log(rank) + 0.1 * rng.standard_normal((rows, vocab))).astype(np.float32)


@pytest.mark.parametrize("vocab", [4096, 50257, 128256])
@pytest.mark.parametrize("k", [1, 17, 66, 300])
@pytest.mark.parametrize("layout", ["C", "F", "masked"])
def test_top_k_candidates_are_the_upper_set_of_the_floor(vocab, k, layout):
    """Every token at or above the floor, in token order; the floor is below the k-th value."""
    rng = np.random.default_rng(vocab + k)
    x = make_zipf(rng, 5, vocab)
    x[1] = np.round(x[1])  # heavy ties
    if layout == "F":
        x = np.asfortranarray(x)
    if layout == "masked":
        x[0, rng.random(vocab) < 0.95] = -np.inf
        x[2, : vocab - k // 2] = -np.inf  # fewer finite tokens than k: the floor is -inf
    cand, floor = _fused._top_k_candidates(x, k)
    z = np.ascontiguousarray(x)
    expected = _fused._compact(z, _fused._upper_set(z, floor))
    np.testing.assert_array_equal(cand.dense_logits(), expected.dense_logits())
    for got in (cand, expected):
        for ids, valid, vals in zip(got.ids, got.valid, got.vals, strict=True):
            assert np.all(np.diff(ids[valid]) > 0)  # ascending token ids
            assert np.all(vals[valid] > -np.inf)  # valid entries are the kept tokens
    np.testing.assert_array_equal(cand.valid.sum(axis=1), expected.valid.sum(axis=1))
    kth = K.kth_largest(z, np.full(z.shape[0], k))
    assert np.all(floor <= kth)
    finite = np.isfinite(z).sum(axis=-1)
    assert np.all((np.count_nonzero(z >= floor[:, None], axis=-1) >= k) | (finite < k))


@pytest.mark.parametrize("rows", [1, 3, 40])
def test_row_weights_in_slices_equal_one_pass(rows):
    """Working slices of rows gives the very numbers of one whole-array exp."""
    x = (3 * np.random.default_rng(rows).standard_normal((rows, 9000))).astype(np.float32)
    x[0, ::3] = -np.inf
    w, m = row_weights(x)
    np.testing.assert_array_equal(m, x.max(axis=-1, keepdims=True))
    np.testing.assert_array_equal(w, np.exp(x - m))
    assert w.dtype == np.float32


def test_validation_row_maxima_are_reused_exactly():
    x = make_zipf(np.random.default_rng(2), 3, 5000).reshape(3, 1, 5000)
    rows = prepare(x)
    np.testing.assert_array_equal(rows.row_max, x.reshape(3, 5000).max(axis=-1))
    for bad, message in (
        (np.nan, "must not contain NaN"),
        (np.inf, r"got \+inf at index \(1, 0, 7\)"),
    ):
        y = x.copy()
        y[1, 0, 7] = bad
        with pytest.raises(ValueError, match=message):
            prepare(y)
    y = x.copy()
    y[2] = -np.inf
    with pytest.raises(ValueError, match="all -inf"):
        prepare(y)


# -- the torch fused path's own machinery -----------------------------------------


@needs_torch
@pytest.mark.parametrize("seed", range(15))
def test_torch_top_p_first_cut_on_varied_wide_rows(seed):
    """Bands, refinement and fallbacks on torch keep the torch plain kernel's set."""
    rng = np.random.default_rng(500 + seed)
    x = torch.from_numpy(varied_wide_rows(rng, seed % 5))
    p = rng.uniform(0.1, 0.999, size=x.shape[0])
    rows = prepare(x)
    sampler = Sampler([TopP(p)])
    expected = KT.apply_threshold(rows.z, KT.top_p_threshold(rows.z, p))
    assert torch.equal(sampler.logits(x), expected)
    # Followed by another step: the kept tokens are compacted instead.
    chained = Sampler([TopP(p), MinP(0.01)], order="as_given")
    assert torch.equal(chained.logits(x), plain(chained, x))


@needs_torch
def test_torch_top_p_exact_tie_with_target_falls_back():
    x = torch.zeros((2, 40000), dtype=torch.float32)
    x[1, :20000] = -torch.inf
    sampler = Sampler([TopP(np.array([0.5, 0.25]))])
    assert torch.equal(sampler.logits(x), plain(sampler, x))


@needs_torch
@pytest.mark.parametrize(
    "sampler",
    [
        Sampler.from_options(temperature=0.7, top_k=50, top_p=0.9),
        Sampler([TopK(50), TopP(0.9), Temperature(0.7)], order="llama.cpp"),
        Sampler([TopK(20), MinP(0.05)]),
    ],
)
def test_torch_top_k_never_sorts_the_vocabulary(sampler, monkeypatch):
    vocab = 50257
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((4, vocab)).astype(np.float32))
    seen: list[int] = []
    for name in ("sort", "topk", "argsort", "kthvalue"):
        original = getattr(torch, name)

        def spy(a, *args, _original=original, **kwargs):
            seen.append(a.shape[-1])
            return _original(a, *args, **kwargs)

        monkeypatch.setattr(torch, name, spy)
    sampler.sample(x, seed=0)
    sampler.probs(x)
    assert max(seen, default=0) < vocab // 10  # group maxima and candidates only


@needs_torch
@pytest.mark.parametrize("t", [0.05, 1.0, 3.0, "rows"])
def test_torch_top_k_ties_outside_the_candidates_take_the_slow_route(t):
    rng = np.random.default_rng(9)
    x = np.round(rng.standard_normal((4, 50257)) * 2).astype(np.float32)  # huge ties
    x[0, : 50257 - 30] = -np.inf  # fewer finite tokens than k
    temp = np.array([0.5, 2.0, 7.0, 0.9]) if t == "rows" else t
    sampler = Sampler.from_options(temperature=temp, top_k=50, top_p=0.9)
    xt = torch.from_numpy(x)
    assert torch.equal(sampler.logits(xt), plain(sampler, xt))
    np.testing.assert_array_equal(sampler.logits(xt).numpy(), plain(sampler, x))
    np.testing.assert_array_equal(
        sampler.sample(xt, n=5, seed=2).numpy(), sampler.sample(x, n=5, seed=2)
    )


@needs_torch
def test_torch_tiny_temperature_before_a_cut_matches_plain():
    """A temperature whose z / T overflows is shifted first, on candidates and maxima alike."""
    x = torch.tensor([[1e30, 5e29, 1.0, -3.0] * 50, [2.0, 1.0, 0.5, 0.0] * 50], dtype=torch.float32)
    for sampler in (
        Sampler([Temperature(1e-20), TopK(3)]),
        Sampler([Temperature(1e-20), TopP(0.9)]),
        Sampler([Temperature(1e-20), MinP(0.5)]),
    ):
        assert torch.equal(sampler.logits(x), plain(sampler, x))


@needs_torch
def test_band_searched_first_cuts_run_the_plain_chain_on_an_accelerator():
    # A "meta" tensor stands for any accelerator: only its device kind is read.
    from thermoscope.sampling import _fused
    from thermoscope.sampling._input import prepare

    on_device = prepare(torch.zeros((2, 50), device="meta"), check=False)
    on_host = prepare(torch.zeros((2, 50)))
    for warpers, fused_there in [
        ((Temperature(0.7), TopP(0.9)), False),
        ((Typical(0.9),), False),
        ((Temperature(0.7), TopK(50), TopP(0.9)), True),
        ((MinP(0.05),), True),
    ]:
        assert (_fused.plan(warpers, on_device) is not None) is fused_there
        assert _fused.plan(warpers, on_host) is not None
