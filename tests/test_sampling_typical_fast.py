"""Typical sampling's fast first cut: the head of largest tokens (``_bands.head_keep``).

Every fused result is compared with the plain chain (the full-sort kernel):
bit for bit for the kept logits and the draws, to 1e-6 for the probabilities.
The moment sums are checked against a float64 transcription of their
definition, within the bound the certification relies on. Knife edges (ties
at the cut, ties across the centre, -inf, float16, per-row parameters,
min_tokens_to_keep, 1 row and many rows, rows the head cannot certify next
to rows it can) are built on purpose.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import needs_torch, torch
from thermoscope.sampling import Sampler, Temperature, Typical, _bands, _fused
from thermoscope.sampling import _kernels as K
from thermoscope.sampling._input import prepare


def plain(warpers, x):
    rows = prepare(x)
    z = rows.z
    for w in warpers:
        z = w.apply(z, rows.batch_shape)
    return z


def logits(kind: str, rows: int = 4, vocab: int = 9000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rank = rng.permuted(np.tile(np.arange(1, vocab + 1), (rows, 1)), axis=1)
    x = -1.5 * np.log(rank) + 0.1 * rng.standard_normal((rows, vocab))
    if kind == "flat":  # a wide typical set: the head cannot hold it
        x = 0.5 * rng.standard_normal((rows, vocab))
    if kind == "mixed":  # LM-shaped and flat rows in one batch
        x[::2] = 0.5 * rng.standard_normal((len(x[::2]), vocab))
    if kind == "ties":  # many equal logits, at the top and in the tail
        x = np.round(x * 2) / 2
    if kind == "masked":
        x[rng.random(x.shape) < 0.5] = -np.inf
        x[:, 0] = 0.5
    if kind == "centre_tie":  # equal scores on both sides of the centre
        row = np.log(np.array([0.3, 0.3, 0.1, 0.1, 0.1, 0.1] + [1e-9] * (vocab - 6)))
        x = np.tile(row, (rows, 1))
    return x


KINDS = ["zipf", "flat", "mixed", "ties", "masked", "centre_tie"]


def check_same(warpers, x):
    s = Sampler(warpers)
    assert _fused.plan(s.warpers, prepare(x)) is not None  # the fused path is taken
    ref = plain(s.warpers, x)
    got = s.logits(x)
    np.testing.assert_array_equal(got, ref.astype(got.dtype))
    ref_probs = np.where(np.isfinite(ref), np.exp(ref - ref.max(axis=-1, keepdims=True)), 0.0)
    ref_probs = ref_probs / ref_probs.sum(axis=-1, keepdims=True)
    tol = 1e-6 if x.dtype != np.float16 else 1e-3
    np.testing.assert_allclose(s.probs(x), ref_probs, rtol=tol, atol=tol * 1e-3)
    draws = Sampler([]).sample(ref, n=64, seed=3)
    np.testing.assert_array_equal(s.sample(x, n=64, seed=3), draws)


def head_of(z, mass, keep, head=64):
    """The head's verdict on numpy rows ``z`` (already tempered)."""
    m = z.max(axis=-1, keepdims=True)
    cand, floor = _fused._top_k_candidates(z, min(head, z.shape[1]))
    edge = _fused._below(floor, z.dtype)
    got, ok = _bands.head_keep(
        cand.vals, cand.valid, edge, m, mass, keep, _bands.fast_moments(z, m), z.shape[1]
    )
    dense = np.zeros(z.shape, dtype=bool)
    r, c = np.nonzero(got)
    dense[r, cand.ids[r, c]] = True
    return dense, ok


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mass", [0.2, 0.5, 0.9, 0.99, 1.0])
def test_typical_first_cut_is_the_plain_chain(kind, dtype, mass):
    check_same([Temperature(0.7), Typical(mass)], logits(kind, seed=len(kind)).astype(dtype))


@pytest.mark.parametrize("vocab", [300, 5000, 2 * 4096, 20000])
def test_vocabulary_sizes_around_the_fold(vocab):
    # Fewer than two partial sums (one float64 sum), exactly two, a tail past them.
    check_same([Temperature(0.7), Typical(0.9)], logits("zipf", vocab=vocab, seed=vocab))


@pytest.mark.parametrize("keep", [1, 2, 5, 100])
def test_min_tokens_to_keep(keep):
    check_same([Temperature(0.7), Typical(0.5, min_tokens_to_keep=keep)], logits("zipf", seed=4))


def test_per_row_parameters_and_float16():
    x = logits("mixed", rows=3, seed=5).astype(np.float16)
    check_same([Temperature(np.array([0.5, 0.7, 1.3])), Typical(np.array([0.2, 0.9, 0.99]))], x)
    assert Sampler([Temperature(0.7), Typical(0.9)]).logits(x).dtype == np.float16


@pytest.mark.parametrize("rows", [1, 64])
def test_one_row_and_many_rows(rows):
    check_same([Temperature(0.7), Typical(0.9)], logits("mixed", rows=rows, seed=rows))


def test_the_head_certifies_lm_shaped_rows():
    # Not a fallback in disguise: on LM-shaped rows the head decides every row.
    z = (logits("zipf", rows=8, vocab=50000, seed=9) / 0.7).astype(np.float32)
    mass = np.full(8, 0.9)
    keep, ok = head_of(z, mass, 1)
    assert ok.all()
    np.testing.assert_array_equal(keep, K.typical_mask(z, mass, 1))


def test_the_head_declines_rows_it_cannot_hold():
    # A flat row's typical set is thousands of tokens: never decided from 64.
    z = logits("flat", rows=4, vocab=20000, seed=2).astype(np.float32)
    keep, ok = head_of(z, np.full(4, 0.9), 1)
    assert not ok.any()
    assert not keep.any()


def test_ties_across_the_centre_are_left_to_the_plain_kernel():
    # p = 1/2 at logit 0 and 4 x 1/8 at -log 4: the centre c = E[d] = -log(4) / 2
    # is midway, so every score is the same up to rounding, on both sides.
    row = np.concatenate([[0.0], np.full(4, -np.log(4.0)), np.full(3000, -40.0)])
    z = np.tile(row, (2, 1)).astype(np.float32)
    for mass in (0.3, 0.6, 0.9):
        _, ok = head_of(z, np.full(2, mass), 1)
        assert not ok.any()  # the plain kernel's order decides
    check_same([Typical(0.6)], z)


def test_ties_at_the_cut_are_kept_together():
    # Equal probabilities at the crossing: the plain kernel keeps all of them.
    z = np.log(np.array([[0.5, 0.1, 0.1, 0.1, 0.1, 0.1] + [1e-7] * 3000]))
    z = z.astype(np.float32)
    for mass in (0.15, 0.35, 0.55):
        keep, ok = head_of(z, np.array([mass]), 1)
        assert ok.all()
        np.testing.assert_array_equal(keep, K.typical_mask(z, np.array([mass]), 1))


def test_fast_moments_within_their_bound_of_float64_sums():
    for kind in ("zipf", "flat", "masked"):
        z = (logits(kind, rows=5, vocab=30000, seed=11) / 0.7).astype(np.float32)
        m = z.max(axis=-1, keepdims=True)
        big_w, s, q, err = _bands.fast_moments(z, m)
        # An independent float64 transcription of the definitions.
        d = z.astype(np.float64) - m
        w = np.exp(d)
        wd = np.where(w > 0, w * np.where(np.isfinite(d), d, 0.0), 0.0)
        exact_w, exact_s = w.sum(axis=-1), wd.sum(axis=-1)
        exact_q = (wd * np.where(np.isfinite(d), d, 0.0)).sum(axis=-1)
        c, e_c, delta = _bands._bounds(np.dtype(np.float32), 30000, big_w, s, q, err)
        assert np.all(q >= exact_q)
        assert np.all(np.abs(big_w - exact_w) <= delta * exact_w)
        assert np.all(np.abs(c - exact_s / exact_w) <= e_c)
        assert np.all(e_c < 1e-4)  # tight enough to separate a handful of tokens


def test_fold_error_bounds_a_worst_case_float32_sum():
    # Equal terms make every float32 addition of a partial sum round.
    x = np.full((1, 31 * 4096), 1.0 + 2.0**-20, dtype=np.float32)
    got = _bands._fold_sum(x)[0]
    exact = x.shape[1] * float(x[0, 0])
    assert abs(got - exact) <= _bands.fold_error(np.dtype(np.float32), x.shape[1]) * exact


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.sampled_from([-4.0, -2.0, -1.0, -0.5, 0.0, 0.7, 1.0, 3.0]), min_size=2),
    mass=st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 1.0]),
    keep=st.integers(1, 4),
    masked=st.booleans(),
    head=st.integers(1, 8),
)
def test_head_never_disagrees_with_the_plain_kernel(values, mass, keep, masked, head):
    z = np.array([values], dtype=np.float32)
    if masked and z.shape[1] > 2:
        z[0, 1] = -np.inf
    got, ok = head_of(z, np.array([mass]), keep, head=head)
    if ok[0]:
        np.testing.assert_array_equal(got, K.typical_mask(z, np.array([mass]), keep))


def test_matches_transformers_typical_warper():
    transformers = pytest.importorskip("transformers.generation.logits_process")
    pt = pytest.importorskip("torch")
    x = (logits("zipf", rows=3, vocab=20000, seed=2) / 0.7).astype(np.float32)
    ours = Sampler([Typical(0.9)]).logits(x)
    warper = transformers.TypicalLogitsWarper(0.9)
    theirs = warper(pt.zeros((3, 1), dtype=pt.long), pt.from_numpy(x.copy())).numpy()
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs))
    ours_t = Sampler([Typical(0.9)]).logits(pt.from_numpy(x))
    np.testing.assert_array_equal(np.isfinite(ours_t.numpy()), np.isfinite(theirs))


def check_same_torch(warpers, x):
    s = Sampler(warpers)
    ref = plain(s.warpers, x)
    got = s.logits(x)
    assert got.dtype == x.dtype
    torch.testing.assert_close(got, ref.to(got.dtype), rtol=0, atol=0)
    draws = Sampler([]).sample(ref, n=32, seed=1)
    assert torch.equal(s.sample(x, n=32, seed=1), draws)


@needs_torch
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mass", [0.2, 0.9, 0.99, 1.0])
def test_torch_typical_first_cut_is_the_plain_chain(kind, mass):
    x = torch.from_numpy(logits(kind, seed=3).astype(np.float32))
    check_same_torch([Temperature(0.7), Typical(mass)], x)


@needs_torch
def test_torch_per_row_float16_one_and_many_rows():
    x = torch.from_numpy(logits("mixed", rows=3, seed=5)).to(torch.float16)
    check_same_torch(
        [Temperature(np.array([0.5, 0.7, 1.3])), Typical(np.array([0.2, 0.9, 0.99]))], x
    )
    for rows in (1, 64):
        x = torch.from_numpy(logits("mixed", rows=rows, seed=rows).astype(np.float32))
        check_same_torch([Temperature(0.7), Typical(0.9, min_tokens_to_keep=3)], x)


@needs_torch
def test_torch_head_certifies_lm_shaped_rows(monkeypatch):
    from thermoscope.sampling import _bands_torch

    calls = []
    full = _bands_torch.K.typical_mask

    def spy(z, *args):
        calls.append(z.shape[0])
        return full(z, *args)

    monkeypatch.setattr(_bands_torch.K, "typical_mask", spy)
    x = torch.from_numpy(logits("zipf", rows=8, vocab=50000, seed=9).astype(np.float32))
    s = Sampler([Temperature(0.7), Typical(0.9)])
    got = s.logits(x)
    assert calls == []  # decided by the head alone
    monkeypatch.undo()
    torch.testing.assert_close(got, plain(s.warpers, x), rtol=0, atol=0)


@needs_torch
def test_torch_head_agrees_with_numpy_head():
    from thermoscope.sampling import _bands_torch, _fused_torch

    z = (logits("mixed", rows=6, vocab=20000, seed=8) / 0.7).astype(np.float32)
    mass = np.array([0.2, 0.5, 0.9, 0.95, 0.99, 0.9])
    zt = torch.from_numpy(z)
    m = zt.amax(dim=-1, keepdim=True)
    cand = _bands_torch.typical_first(zt, m, mass, 1)
    assert isinstance(cand, _fused_torch.Compact)
    np.testing.assert_array_equal(
        (cand.dense_logits() > float("-inf")).numpy(), K.typical_mask(z, mass, 1)
    )


@needs_torch
def test_torch_fast_moments_within_their_bound_of_float64_sums():
    from thermoscope.sampling import _bands_torch

    for kind in ("zipf", "flat", "masked"):
        z = (logits(kind, rows=5, vocab=30000, seed=11) / 0.7).astype(np.float32)
        zt = torch.from_numpy(z)
        m = zt.amax(dim=-1, keepdim=True)
        moments = _bands_torch.fast_moments(zt, m)
        big_w, s, q, err, _ = moments
        d = z.astype(np.float64) - z.max(axis=-1, keepdims=True)
        w = np.exp(d)
        dd = np.where(np.isfinite(d), d, 0.0)
        exact_w, exact_s, exact_q = w.sum(axis=-1), (w * dd).sum(axis=-1), (w * dd * dd).sum(-1)
        c, e_c, delta = _bands_torch._bounds(np.dtype(np.float32), 30000, big_w, s, q, err)
        c, e_c, delta = c.numpy(), e_c.numpy(), delta.numpy()
        assert np.all(q.numpy() >= exact_q)
        assert np.all(np.abs(big_w.numpy() - exact_w) <= delta * exact_w)
        assert np.all(np.abs(c - exact_s / exact_w) <= e_c)
        assert np.all(e_c < 1e-4)


@needs_torch
def test_torch_tiny_temperature_rows_the_kernel_shifts():
    # z / T overflows float32: the temperature kernel shifts these rows first.
    x = torch.from_numpy((logits("zipf", rows=3, seed=6) * 1e3).astype(np.float32))
    check_same_torch([Temperature(np.array([1e-36, 0.7, 1e-37])), Typical(0.9)], x)


def test_two_leading_temperatures():
    x = logits("mixed", rows=4, seed=12)
    check_same([Temperature(np.array([0.5, 2.0, 0.9, 1.0])), Temperature(1.4), Typical(0.9)], x)
    if torch is not None:
        xt = torch.from_numpy(x.astype(np.float32))
        check_same_torch([Temperature(0.5), Temperature(1.4), Typical(0.9)], xt)
