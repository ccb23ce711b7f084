"""Typical sampling as the fused path's first cut: the band search of ``_bands`` (issue 13).

Every result is compared with the plain chain (the full-sort kernel), bit for
bit for the kept logits and the draws, to 1e-6 for the probabilities; the
knife edges (ties at the cut, ties across the centre, -inf, float16,
per-row parameters, min_tokens_to_keep) are built on purpose.
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


def logits(kind: str, rows: int = 4, vocab: int = 6000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "zipf":
        rank = rng.permuted(np.tile(np.arange(1, vocab + 1), (rows, 1)), axis=1)
        x = -1.5 * np.log(rank) + 0.1 * rng.standard_normal((rows, vocab))
    else:
        x = 2.0 * rng.standard_normal((rows, vocab))
    if kind == "ties":
        x = np.round(x)
    if kind == "masked":
        x[rng.random(x.shape) < 0.7] = -np.inf
        x[:, 0] = 0.5
    return x


KINDS = ["zipf", "normal", "ties", "masked"]


def check_same(warpers, x):
    s = Sampler(warpers)
    assert _fused.plan(s.warpers, prepare(x)) is not None  # the fused path is taken
    ref = plain(s.warpers, x)
    got = s.logits(x)
    np.testing.assert_array_equal(got, ref.astype(got.dtype))
    ref_probs = np.where(np.isfinite(ref), np.exp(ref - ref.max(axis=-1, keepdims=True)), 0.0)
    ref_probs = ref_probs / ref_probs.sum(axis=-1, keepdims=True)
    tol = 1e-6 if x.dtype != np.float16 else 1e-3  # the probabilities come back in x's dtype
    np.testing.assert_allclose(s.probs(x), ref_probs, rtol=tol, atol=tol * 1e-3)
    np.testing.assert_array_equal(s.sample(x, n=64, seed=3), _draws_plain(s.warpers, x))


def _draws_plain(warpers, x):
    """Draws of the plain chain: the warped logits fed to a sampler with no stage."""
    return Sampler([]).sample(plain(warpers, x), n=64, seed=3)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mass", [0.2, 0.5, 0.9, 0.95, 1.0])
def test_typical_first_cut_is_the_plain_chain(kind, dtype, mass):
    x = logits(kind, seed=KINDS.index(kind)).astype(dtype)
    check_same([Temperature(0.7), Typical(mass)], x)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("keep", [1, 5, 400])
def test_min_tokens_to_keep(kind, keep):
    check_same([Temperature(0.7), Typical(0.3, min_tokens_to_keep=keep)], logits(kind, seed=7))


def test_per_row_mass_and_float16():
    x = logits("zipf", rows=3, seed=11).astype(np.float16)
    check_same([Temperature(np.array([0.5, 0.7, 1.3])), Typical(np.array([0.2, 0.9, 0.99]))], x)
    assert Sampler([Typical(0.9)]).logits(x).dtype == np.float16


def test_llama_cpp_order_typical_before_temperature():
    x = logits("zipf", seed=5).astype(np.float32)
    s = Sampler([Typical(0.9), Temperature(0.7)], order="llama.cpp")
    np.testing.assert_array_equal(s.logits(x), plain(s.warpers, x).astype(np.float32))


def test_band_search_certifies_lm_shaped_rows():
    # A 128k vocabulary, LM-shaped: every row is decided without the full sort.
    z = (logits("zipf", rows=4, vocab=128256, seed=1) / 0.7).astype(np.float32)
    m = z.max(axis=-1, keepdims=True)
    keep, ok = _bands.band_search(z, m, np.full(4, 0.9), 1)
    assert ok.all()
    np.testing.assert_array_equal(keep, K.typical_mask(z, np.full(4, 0.9), 1))


def test_band_search_certifies_flat_rows():
    # i.i.d. normal logits over 128k tokens: the kept set is ~10k tokens of
    # probability ~5e-6 each at the cut. Float32 weights gave bounds of about one
    # token's probability there (most rows fell back to the full sort); the
    # float64 moments and the wider retry certify every row.
    z = (logits("normal", rows=6, vocab=128256, seed=4) / 0.7).astype(np.float32)
    m = z.max(axis=-1, keepdims=True)
    mass = np.full(6, 0.9)
    keep, ok = _bands.band_search(z, m, mass, 1)
    assert ok.all()
    np.testing.assert_array_equal(keep, K.typical_mask(z, mass, 1))


def test_rows_whose_band_misses_retry_with_a_band_moved_towards_the_crossing(monkeypatch):
    # A first band one subsample position wide misses the crossing on most
    # rows; the retries, on those rows only, certify them.
    calls = []
    certify = _bands._certify

    def spy(z, *args):
        out = certify(z, *args)
        calls.append((z.shape[0], int(out[2].sum())))
        return out

    monkeypatch.setattr(_bands, "_certify", spy)
    monkeypatch.setattr(_bands, "_SLACK", 1)
    monkeypatch.setattr(_bands, "_SIGMAS", 0.0)
    z = (logits("normal", rows=5, vocab=20000, seed=5) / 0.7).astype(np.float32)
    m = z.max(axis=-1, keepdims=True)
    mass = np.array([0.9, 0.5, 0.2, 0.95, 0.7])
    keep, ok = _bands.band_search(z, m, mass, 1)
    assert calls[0][0] == 5
    assert calls[0][1] < 5
    assert calls[1][0] == 5 - calls[0][1]  # only the rows that missed
    assert ok.all()
    np.testing.assert_array_equal(keep, K.typical_mask(z, mass, 1))


@pytest.mark.parametrize(("r_in", "r_out", "side"), [(0.0, 0.01, 1), (8.0, 8.01, -1)])
def test_a_missed_band_says_on_which_side_the_crossing_lies(r_in, r_out, side):
    # Row of 4000 flat-ish logits: radius 0.01 around the centre holds far
    # less than 0.9 of the mass (crossing beyond), radius 8 holds all of it.
    z = (logits("normal", rows=1, vocab=4000, seed=6)).astype(np.float32)
    m = z.max(axis=-1, keepdims=True)
    w, _, big_w, s, q = _bands._moments(z, m)
    c, e_c, delta = _bands._bounds(np.dtype(np.float64), z.shape[1], big_w, s, q)
    mass = np.array([0.9])
    _, _, ok, got = _bands._certify(
        z, w, m, c, e_c, delta, big_w, mass, 1, np.array([r_in]), np.array([r_out])
    )
    assert not ok[0]
    assert got[0] == side
    r_in2, r_out2 = _bands._next_band(np.array([r_in]), np.array([r_out]), got)
    assert (r_in2[0] >= r_out) if side > 0 else (r_out2[0] <= r_in)


def test_tie_across_the_centre_is_left_to_the_plain_kernel():
    # Tokens at c + r and c - r have the same score but different probabilities:
    # the plain kernel's stable order decides which is counted first.
    base = np.log(np.array([0.3, 0.3, 0.1, 0.1, 0.1, 0.1]))
    z = np.tile(base, (2, 1))
    m = z.max(axis=-1, keepdims=True)
    mass = np.array([0.5, 0.95])
    keep, ok = _bands.band_search(z, m, mass, 1)
    full = _bands.typical_keep(z, m, mass, 1)
    np.testing.assert_array_equal(full, K.typical_mask(z, mass, 1))
    np.testing.assert_array_equal(keep[ok], full[ok])


def test_ties_at_the_cut_are_kept_together():
    z = np.array([[2.0, 1.0, 1.0, 1.0, 1.0, 0.0, -1.0, -1.0]])
    for mass in (0.1, 0.3, 0.5, 0.7, 0.9):
        got = _bands.typical_keep(z, z.max(axis=-1, keepdims=True), np.array([mass]), 1)
        np.testing.assert_array_equal(got, K.typical_mask(z, np.array([mass]), 1))


@given(
    st.lists(st.floats(-20, 20, allow_nan=False, width=32), min_size=1, max_size=60),
    st.floats(0.01, 1.0),
    st.integers(1, 5),
    st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_band_search_never_disagrees(values, mass, keep, masked):
    z = np.array([values], dtype=np.float32)
    if masked and z.shape[1] > 1:
        z[0, ::3] = -np.inf
        z[0, 1] = max(float(z[0, 1]), 0.0)
    m = z.max(axis=-1, keepdims=True)
    got, ok = _bands.band_search(z, m, np.array([mass]), keep)
    ref = K.typical_mask(z, np.array([mass]), keep)
    if ok[0]:
        np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(_bands.typical_keep(z, m, np.array([mass]), keep), ref)


def test_matches_transformers_typical_warper():
    transformers = pytest.importorskip("transformers.generation.logits_process")
    pt = pytest.importorskip("torch")
    x = (logits("zipf", rows=3, vocab=20000, seed=2) / 0.7).astype(np.float32)
    ours = Sampler([Typical(0.9)]).logits(x)
    warper = transformers.TypicalLogitsWarper(0.9)
    theirs = warper(pt.zeros((3, 1), dtype=pt.long), pt.from_numpy(x.copy())).numpy()
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs))


@needs_torch
@pytest.mark.parametrize("kind", KINDS)
def test_torch_typical_first_cut_is_the_plain_chain(kind):
    x = torch.from_numpy(logits(kind, seed=3).astype(np.float32))
    s = Sampler([Temperature(0.7), Typical(0.9)])
    ref = plain(s.warpers, x)
    torch.testing.assert_close(s.logits(x), ref, rtol=0, atol=0)
    np.testing.assert_array_equal(
        s.sample(x, n=16, seed=1).tolist(), Sampler([]).sample(ref, n=16, seed=1).tolist()
    )


def _torch_typical_full_sort(z, mass, keep, monkeypatch):
    from thermoscope.sampling import _kernels_torch as KT

    with monkeypatch.context() as patch:
        patch.setattr(KT, "_TYPICAL_HEAD", z.shape[1])  # the head path never applies
        return KT.typical_mask(z, mass, keep)


@needs_torch
@pytest.mark.parametrize("kind", [*KINDS, "head_tie", "centre_tie"])
@pytest.mark.parametrize("keep", [1, 3, 300])
def test_torch_typical_head_is_the_full_sort(kind, keep, monkeypatch):
    # The plain torch kernel ranks only the 256 smallest scores when the kept set
    # lies among them: same mask as its full stable sort, ties and all.
    from thermoscope.sampling import _kernels_torch as KT

    x = logits("zipf" if kind.endswith("tie") else kind, rows=6, vocab=5000, seed=7) / 0.7
    if kind == "head_tie":
        # 300 equal logits well below the top: their equal scores straddle
        # position 256 of the ranking when the kept set reaches them.
        x[:, 100:400] = x[:, 100:101]
    if kind == "centre_tie":
        # Tokens on both sides of the centre with the same score (plain order: by id).
        x = np.tile(np.log(np.array([0.3, 0.3, 0.1, 0.1, 0.1, 0.1] + [1e-9] * 4994)), (6, 1))
    z = torch.from_numpy(x.astype(np.float32))
    mass = np.array([0.1, 0.5, 0.9, 0.95, 0.99, 1.0])
    full_sorted = []
    full_cut = KT._typical_cut

    def spy(score, *args):
        full_sorted.append(score.shape[0])
        return full_cut(score, *args)

    monkeypatch.setattr(KT, "_typical_cut", spy)
    got = KT.typical_mask(z, mass, keep)
    monkeypatch.undo()
    ref = _torch_typical_full_sort(z, mass, keep, monkeypatch)
    assert torch.equal(got, ref)
    if kind in ("zipf", "centre_tie") and keep == 1:
        # LM-shaped rows: the head decides most rows without the full sort.
        assert sum(full_sorted) < 6
