"""η-sampling, top-H and p-less against their references, properties and bad input.

Eta and TopH are checked against transformers' own ``EtaLogitsWarper`` and
``TopHLogitsWarper`` on random logits with planted ties, -inf entries and
float16 values; where transformers' cut falls on tied values it keeps an
arbitrary subset of the ties and thermoscope keeps them all, which is checked
as the documented tie policy instead of equality. PLess is checked against a
float64 transcription of the paper's rule written here.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from backends import needs_torch, on_every_backend, torch
from thermoscope.sampling import Sampler, Temperature, TopK
from thermoscope.sampling._fused import plan
from thermoscope.sampling._input import prepare
from thermoscope.sampling.entropy_cuts import Eta, PLess, TopH

INF = np.inf


# -- helpers ---------------------------------------------------------------------


def make_logits(seed: int, dtype: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, vocab = int(rng.integers(1, 6)), int(rng.choice([7, 50, 300]))
    x = rng.standard_normal((rows, vocab)) * rng.choice([0.5, 2.0, 4.0])
    src = rng.integers(0, vocab, size=max(1, vocab // 10))
    x[:, rng.integers(0, vocab, size=src.size)] = x[:, src]  # planted ties
    if seed % 3 == 0:
        x[rng.random(x.shape) < 0.2] = -INF
        x[:, int(rng.integers(vocab))] = 1.0
    return x.astype(dtype)


def theirs(warper, x: np.ndarray) -> np.ndarray:
    # thermoscope computes float16 input in float32: transformers gets those float32 values.
    scores = torch.from_numpy(x.astype(np.float32))
    return warper(torch.zeros((x.shape[0], 1), dtype=torch.long), scores).numpy()


def softmax64(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def agree(ours: np.ndarray, ref: np.ndarray, values: np.ndarray) -> bool:
    """Assert parity with transformers; False when its cut fell on tied values (policy checked)."""
    ours_kept, ref_kept = np.isfinite(ours), np.isfinite(ref)
    on_tie = False
    for r in range(values.shape[0]):
        finite = np.isfinite(values[r])
        kept = set(values[r][ref_kept[r]].tolist())
        on_tie |= bool(kept & set(values[r][finite & ~ref_kept[r]].tolist()))
    if on_tie:
        assert np.all(ours_kept[ref_kept])
        for r in range(values.shape[0]):
            extra = ours_kept[r] & ~ref_kept[r]
            assert set(values[r][extra].tolist()) <= set(values[r][ref_kept[r]].tolist())
        return False
    np.testing.assert_array_equal(ours_kept, ref_kept)
    np.testing.assert_allclose(softmax64(ours), softmax64(ref), rtol=0, atol=1e-6)
    return True


def host(out, like) -> np.ndarray:
    if torch is not None and isinstance(like, torch.Tensor):
        assert isinstance(out, torch.Tensor)
        assert out.dtype == like.dtype
        return out.to(torch.float64).numpy()
    assert isinstance(out, np.ndarray)
    assert out.dtype == like.dtype
    return np.asarray(out, dtype=np.float64)


# -- parity with transformers ----------------------------------------------------

lp = pytest.importorskip("transformers.generation.logits_process") if torch is not None else None

CASES = [
    ("eta", lambda: Eta(0.02), lambda: lp.EtaLogitsWarper(0.02)),
    ("eta_small", lambda: Eta(3e-4), lambda: lp.EtaLogitsWarper(3e-4)),
    (
        "eta_min_keep",
        lambda: Eta(0.3, min_tokens_to_keep=3),
        lambda: lp.EtaLogitsWarper(0.3, min_tokens_to_keep=3),
    ),
    ("top_h", lambda: TopH(0.4), lambda: lp.TopHLogitsWarper(0.4)),
    ("top_h_low", lambda: TopH(0.1), lambda: lp.TopHLogitsWarper(0.1)),
    ("top_h_high", lambda: TopH(0.9), lambda: lp.TopHLogitsWarper(0.9)),
]


@needs_torch
@pytest.mark.parametrize("lib", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize(("name", "ours", "ref"), CASES, ids=[c[0] for c in CASES])
def test_parity_with_transformers(name, ours, ref, dtype, lib):
    exact = 0
    for seed in range(24):
        x = make_logits(seed, dtype)
        xin = torch.from_numpy(x.copy()) if lib == "torch" else x
        warper = ours()
        warped = host(warper(xin), xin)
        if dtype == "float16":
            # float16 out, computed in float32: compare the float32 result itself.
            rows = prepare(xin)
            inner = warper.apply(rows.z, rows.batch_shape)
            inner = inner.numpy() if lib == "torch" else inner
            np.testing.assert_array_equal(np.isfinite(warped), np.isfinite(inner))
            warped = np.asarray(inner, dtype=np.float64)
        exact += agree(warped, theirs(ref(), x), x.astype(np.float64))
    assert exact >= 15  # most cuts fall between distinct values: equality was exercised


@needs_torch
def test_top_h_caps_candidates_at_100_like_transformers():
    # A flat row of 300 tokens: transformers only ever considers the 100 largest.
    x = np.linspace(0.0, 0.3, 300)[None, :]
    ours, ref = TopH(1.0)(x), theirs(lp.TopHLogitsWarper(1.0), x)
    assert np.isfinite(ours).sum() == 100
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(ref))


@needs_torch
@pytest.mark.parametrize(
    ("ours", "ref"),
    [
        (lambda: Eta(0.01), lambda: lp.EtaLogitsWarper(0.01)),
        (lambda: TopH(0.5), lambda: lp.TopHLogitsWarper(0.5)),
    ],
)
def test_in_a_sampler_after_temperature_like_transformers(ours, ref):
    for seed in range(1, 30, 3):
        x = make_logits(seed, "float64")
        s = Sampler([ours(), Temperature(0.7)])  # transformers' order: temperature first
        assert next(w.name for w in s.warpers) == "temperature"
        scores = lp.TemperatureLogitsWarper(0.7)(None, torch.from_numpy(x))
        want = ref()(None, scores).numpy()
        if agree(s.logits(x), want, scores.numpy()):
            np.testing.assert_allclose(s.probs(x), softmax64(want), rtol=0, atol=1e-12)


# -- Eta -------------------------------------------------------------------------


def test_eta_cut_by_hand():
    p = np.array([0.45, 0.25, 0.16, 0.1, 0.04])
    h = -(p * np.log(p)).sum()
    eps = 0.2
    eta = min(eps, np.sqrt(eps) * np.exp(-h))
    assert eta < 0.16 < eps  # the entropy term decides, and keeps a token epsilon drops
    kept = np.isfinite(Eta(eps)(np.log(p)))
    np.testing.assert_array_equal(kept, [True, True, True, False, False])


def test_eta_keeps_min_tokens_and_their_ties():
    z = np.log(np.array([0.9, 0.04, 0.04, 0.02]))
    np.testing.assert_array_equal(
        np.isfinite(Eta(0.5, min_tokens_to_keep=2)(z)), [True, True, True, False]
    )


def test_eta_per_row():
    z = np.log(np.array([[0.6, 0.3, 0.1], [0.6, 0.3, 0.1]]))
    out = Eta(np.array([0.05, 0.9]))(z)
    np.testing.assert_array_equal(np.isfinite(out), [[True, True, True], [True, False, False]])


# -- TopH ------------------------------------------------------------------------


def top_h_by_hand(p: np.ndarray, top_h: float) -> np.ndarray:
    """Direct float64 transcription of transformers' rule on a short, tie-free row."""
    order = np.argsort(-p)
    q = p[order] / p[order].sum()
    running = np.cumsum(-q * np.log(q))
    keep_sorted = running <= top_h * -(q * np.log(q)).sum()
    keep_sorted[0] = True
    keep = np.zeros(p.size, dtype=bool)
    keep[order] = keep_sorted
    return keep


@pytest.mark.parametrize("top_h", [0.2, 0.5, 0.75, 0.95])
def test_top_h_by_hand(top_h):
    rng = np.random.default_rng(5)
    for _ in range(20):
        p = rng.dirichlet(np.full(12, 0.5))
        np.testing.assert_array_equal(np.isfinite(TopH(top_h)(np.log(p))), top_h_by_hand(p, top_h))


def test_top_h_one_keeps_every_candidate_and_ties_at_the_cut():
    z = np.array([2.0, 1.0, 1.0, 0.0, -INF])
    np.testing.assert_array_equal(np.isfinite(TopH(1.0)(z)), [True, True, True, True, False])
    # The first kept token's ties are all kept, never an arbitrary one of them.
    np.testing.assert_array_equal(np.isfinite(TopH(1e-9)(np.array([1.0, 3.0, 3.0]))), [0, 1, 1])


# -- PLess -----------------------------------------------------------------------


def p_less_by_hand(z: np.ndarray, norm: bool) -> np.ndarray:
    """The paper's rule in float64: keep p >= sum(p**2), or >= (V sum(p**2) - 1) / (V - 1)."""
    p = softmax64(z)
    cut = (p**2).sum(axis=-1, keepdims=True)
    if norm:
        v = z.shape[-1]
        cut = (v * cut - 1) / (v - 1)
    return p >= cut


@pytest.mark.parametrize("variant", ["p-less", "p-less-norm"])
def test_p_less_against_the_paper(variant):
    for seed in range(30):
        x = make_logits(seed, "float64")
        kept = np.isfinite(PLess(variant)(x))
        want = p_less_by_hand(x, variant == "p-less-norm") & np.isfinite(x)
        np.testing.assert_array_equal(kept, want)


def test_p_less_uniform_row_keeps_everything():
    # A uniform row sits exactly on the cut (p = sum(p**2) = 1/V): rounding must not empty it.
    for v in (3, 7, 1000, 50257):
        z = np.full(v, 0.123, dtype=np.float32)
        assert np.isfinite(PLess()(z)).all()
        assert np.isfinite(PLess("p-less-norm")(z)).all()


def test_p_less_single_token():
    np.testing.assert_array_equal(PLess("p-less-norm")(np.array([4.0])), [4.0])
    np.testing.assert_array_equal(PLess()(np.array([4.0, -INF])), [4.0, -INF])


# Multiples of 1/64 and integer shifts: ``x + shift`` is exact, so a shift changes no rounding.
logit_rows = arrays(
    np.float64,
    st.tuples(st.integers(1, 4), st.integers(1, 40)),
    elements=st.integers(-1920, 1920).map(lambda k: k / 64) | st.just(-INF),
).filter(lambda x: bool(np.isfinite(x).any(axis=-1).all()))
shifts = st.integers(-50, 50).map(float)


@given(logit_rows, shifts)
def test_p_less_properties(x, shift):
    for variant in ("p-less", "p-less-norm"):
        out = PLess(variant)(x)
        kept = np.isfinite(out)
        # The most likely tokens always stay; removed tokens stay removed; kept values unchanged.
        assert np.all(kept[x == x.max(axis=-1, keepdims=True)])
        assert not np.any(kept & ~np.isfinite(x))
        np.testing.assert_array_equal(out[kept], x[kept])
        # Adding a constant to a row changes nothing.
        np.testing.assert_array_equal(np.isfinite(PLess(variant)(x + shift)), kept)
    # The norm's cut is lower: it keeps a superset.
    assert np.all(np.isfinite(PLess("p-less-norm")(x))[np.isfinite(PLess()(x))])


@given(logit_rows, st.floats(0.05, 5.0), st.floats(1.01, 4.0))
def test_p_less_keeps_fewer_tokens_as_the_distribution_sharpens(x, t, factor):
    # In logit terms the cut is (LSE(2z/T) - LSE(z/T)) * T, which rises as T falls.
    hot = np.isfinite(PLess()(x / (t * factor)))
    cold = np.isfinite(PLess()(x / t))
    assert np.all(hot[cold])


# -- properties shared by the three cuts -----------------------------------------

STAGES = [Eta(0.05), Eta(0.5, min_tokens_to_keep=2), TopH(0.3), TopH(1.0), PLess()]


@given(logit_rows, shifts)
def test_cuts_keep_an_upper_set_with_the_top_token(x, shift):
    for stage in STAGES:
        kept = np.isfinite(stage(x))
        assert np.all(kept[x == x.max(axis=-1, keepdims=True)])
        assert not np.any(kept & ~np.isfinite(x))
        low = np.where(kept, x, INF).min(axis=-1, keepdims=True)
        np.testing.assert_array_equal(kept, x >= low)  # every token above a kept one is kept
        np.testing.assert_array_equal(np.isfinite(stage(x + shift)), kept)


@given(logit_rows, st.integers(0, 20))
def test_on_candidates_stages_ignore_padding(x, pad):
    # on_candidates: the result depends on the finite values only, not on -inf padding.
    padded = np.concatenate([x, np.full((x.shape[0], pad), -INF)], axis=-1)
    for stage in [*STAGES, PLess("p-less-norm")]:
        same = np.array_equal(np.isfinite(stage(padded))[:, : x.shape[1]], np.isfinite(stage(x)))
        if stage.on_candidates:
            assert same


def test_p_less_norm_is_not_on_candidates_and_says_so():
    assert PLess().on_candidates
    assert not PLess("p-less-norm").on_candidates
    assert Eta(0.1).on_candidates
    assert TopH(0.5).on_candidates
    # The norm's V counts -inf tokens: padding a row changes its cut.
    x = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    padded = np.concatenate([x, np.full((1, 96), -INF)], axis=-1)
    assert np.isfinite(PLess("p-less-norm")(x)).sum() == 2
    assert np.isfinite(PLess("p-less-norm")(padded)).sum() == 1


@pytest.mark.parametrize("stage", [Eta(0.02), TopH(0.5), PLess()], ids=["eta", "top_h", "p_less"])
def test_fused_path_runs_them_on_candidates_with_the_same_result(stage):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 2000)) * 3
    s = Sampler([TopK(40), stage], order="as_given")
    assert plan(s.warpers, prepare(x)) is not None  # the fused path takes this chain
    want = stage(TopK(40)(x))
    np.testing.assert_array_equal(np.isfinite(s.logits(x)), np.isfinite(want))
    np.testing.assert_allclose(s.probs(x), softmax64(want), rtol=0, atol=1e-12)


# -- backends, dtypes, per-row parameters ----------------------------------------


@on_every_backend
@pytest.mark.parametrize(
    "stage",
    [Eta(0.02), Eta(np.array([0.001, 0.2, 0.6])), TopH(np.array([0.2, 0.6, 1.0])), PLess()],
    ids=["eta", "eta_rows", "top_h_rows", "p_less"],
)
def test_every_backend_matches_numpy(backend, stage):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 500)) * 2.5
    x[0, :200] = -INF
    out = stage(backend.array(x))
    backend.check(out)
    ref = stage(x)
    np.testing.assert_array_equal(np.isfinite(backend.numpy(out)), np.isfinite(ref))
    np.testing.assert_allclose(softmax64(backend.numpy(out)), softmax64(ref), atol=1e-6)


@needs_torch
def test_bfloat16_and_integer_logits():
    z = torch.tensor([[3.0, 1.0, 0.0, -2.0]], dtype=torch.bfloat16)
    for stage in (Eta(0.1), TopH(0.5), PLess()):
        out = stage(z)
        assert out.dtype == torch.bfloat16
        np.testing.assert_array_equal(
            torch.isfinite(out).numpy(), np.isfinite(stage(np.array([[3.0, 1.0, 0.0, -2.0]])))
        )
    assert np.isfinite(PLess()(np.array([5, 1, 0]))).tolist() == [True, False, False]


def test_float16_numpy_round_trips():
    z = np.array([2.0, 1.5, 0.0, -3.0], dtype=np.float16)
    for stage in (Eta(0.1), TopH(0.5), PLess()):
        assert stage(z).dtype == np.float16


def test_from_options_builds_them_in_order():
    s = Sampler.from_options(temperature=0.8, eta=0.01, top_h=0.5, p_less=True)
    assert [w.name for w in s.warpers] == ["temperature", "top_h", "eta", "p_less"]
    norm = Sampler.from_options(p_less="p-less-norm").warpers[0]
    assert isinstance(norm, PLess)
    assert norm.variant == "p-less-norm"


# -- bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "name"),
    [
        (lambda: Eta(0.0), ValueError, "epsilon"),
        (lambda: Eta(1.0), ValueError, "epsilon"),
        (lambda: Eta(-0.1), ValueError, "epsilon"),
        (lambda: Eta(float("nan")), ValueError, "epsilon"),
        (lambda: Eta(np.array([0.1, 1.0])), ValueError, "epsilon"),
        (lambda: Eta("0.1"), TypeError, "epsilon"),
        (lambda: Eta(0.1, min_tokens_to_keep=0), ValueError, "min_tokens_to_keep"),
        (lambda: TopH(0.0), ValueError, "top_h"),
        (lambda: TopH(1.5), ValueError, "top_h"),
        (lambda: TopH(float("nan")), ValueError, "top_h"),
        (lambda: TopH(None), TypeError, "top_h"),
        (lambda: PLess("p-less-squared"), ValueError, "variant"),
        (lambda: PLess(2), TypeError, "variant"),
        (lambda: PLess(False), TypeError, "variant"),
    ],
)
def test_bad_parameters(make, error, name):
    with pytest.raises(error, match=f"`{name}` must be"):
        make()


@pytest.mark.parametrize("stage", [Eta(np.array([0.1, 0.2])), TopH(np.array([0.1, 0.2]))])
def test_per_row_parameter_of_the_wrong_shape(stage):
    with pytest.raises(ValueError, match="must be a scalar or have one value per row"):
        stage(np.zeros((3, 4)))


@pytest.mark.parametrize("stage", [Eta(0.1), TopH(0.5), PLess()])
def test_bad_logits(stage):
    with pytest.raises(ValueError, match="`logits` must not contain NaN"):
        stage(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="`logits` must keep at least one finite entry"):
        stage(np.array([[-INF, -INF]]))
