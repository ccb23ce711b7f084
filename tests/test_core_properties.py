"""Property-based tests (hypothesis) for the core invariants."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.special as sc
import scipy.stats as ss
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from backends import needs_torch, torch
from thermoscope.core import (
    effective_temperature,
    entropy,
    free_energy,
    log_softmax,
    reweight,
    softmax,
    temperature_for_entropy,
)

pytestmark = pytest.mark.filterwarnings("error")

FAST = settings(max_examples=60, deadline=None)

finite_values = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
positive_t = st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False)
any_t = st.one_of(positive_t, st.sampled_from([0.0, math.inf]))


@st.composite
def logit_rows(draw, min_k=1, max_k=12, masked=True):
    """1-D logits, optionally with some -inf (masked) entries; at least one finite."""
    k = draw(st.integers(min_k, max_k))
    z = draw(hnp.arrays(np.float64, k, elements=finite_values))
    if masked and k > 1:
        mask = draw(hnp.arrays(np.bool_, k))
        mask[draw(st.integers(0, k - 1))] = False
        z = np.where(mask, -np.inf, z)
    return z


@st.composite
def logit_batches(draw):
    b = draw(st.integers(1, 5))
    k = draw(st.integers(1, 8))
    z = draw(hnp.arrays(np.float64, (b, k), elements=finite_values))
    return z


def probs_from(draw, k_min=1, k_max=10, zeros=True):
    k = draw(st.integers(k_min, k_max))
    w = draw(hnp.arrays(np.float64, k, elements=st.floats(0.0, 1.0)))
    if not zeros or w.sum() == 0:
        w = w + 0.01
    return w / w.sum()


@st.composite
def prob_rows(draw, zeros=True):
    return probs_from(draw, zeros=zeros)


# ------------------------------------------------------------------------- distributions
@FAST
@given(z=logit_rows(), t=any_t)
def test_softmax_is_a_distribution(z, t):
    p = softmax(z, t)
    assert p.shape == z.shape
    assert p.dtype == np.float64
    assert np.all(p >= 0)
    assert np.all(p <= 1)
    assert math.fsum(p) == pytest.approx(1.0, abs=4e-15 * z.size)
    assert np.all(p[np.isneginf(z)] == 0)
    lp = log_softmax(z, t)
    assert np.all(lp <= 0)
    assert np.all(lp[np.isneginf(z)] == -np.inf)
    assert not np.any(np.isnan(lp))


@FAST
@given(z=logit_batches(), t=st.data())
def test_batch_rows_are_independent(z, t):
    temps = t.draw(hnp.arrays(np.float64, z.shape[0], elements=any_t))
    p = softmax(z, temps)
    for i in range(z.shape[0]):
        np.testing.assert_array_equal(p[i], softmax(z[i], temps[i]))


@FAST
@given(z=logit_rows(masked=False), t=st.floats(1e-2, 1e3))
def test_softmax_matches_scipy(z, t):
    np.testing.assert_allclose(softmax(z, t), sc.softmax(z / t), rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(log_softmax(z, t), sc.log_softmax(z / t), rtol=1e-9, atol=1e-9)


@FAST
@given(z=logit_rows(), t=positive_t)
def test_log_softmax_consistent_with_softmax(z, t):
    p = softmax(z, t)
    lp = log_softmax(z, t)
    np.testing.assert_allclose(np.exp(lp), p, rtol=1e-10, atol=1e-300)


# ------------------------------------------------------------------------- order and invariances
@FAST
@given(z=logit_rows(), t=positive_t)
def test_order_preserved(z, t):
    p = softmax(z, t)
    # z_i > z_j  =>  p_i >= p_j (ties allowed where both round to the same float)
    zi, zj = np.meshgrid(z, z, indexing="ij")
    pi, pj = np.meshgrid(p, p, indexing="ij")
    assert np.all(pi[zi > zj] >= pj[zi > zj])
    assert np.all(pi[zi == zj] == pj[zi == zj])
    # sorting by the logits sorts the probabilities too
    assert np.all(np.diff(p[np.argsort(z, kind="stable")]) >= 0)
    assert p[np.argmax(z)] == p.max()


@FAST
@given(z=logit_rows(), t=st.floats(0.1, 1e3), c=st.floats(-1e3, 1e3))
def test_shift_invariance(z, t, c):
    # adding c rounds z + c by up to eps * 2e3; that moves log p by ~ 2 * 4.5e-13 / T
    tol = 2 * np.finfo(float).eps * 2e3 / t * 4
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(log_softmax(z + c, t), log_softmax(z, t), rtol=0, atol=tol)
    np.testing.assert_allclose(softmax(z + c, t), softmax(z, t), rtol=tol * 2, atol=1e-300)


@FAST
@given(z=logit_rows(), t=any_t, data=st.data())
def test_permutation_equivariance(z, t, data):
    perm = data.draw(st.permutations(list(range(z.size))))
    np.testing.assert_allclose(softmax(z[perm], t), softmax(z, t)[perm], rtol=1e-12, atol=1e-300)


@FAST
@given(z=logit_rows(), t=positive_t, alpha=st.floats(1e-2, 1e2))
def test_weight_scale_symmetry(z, t, alpha):
    a = softmax(alpha * z, t)
    b = softmax(z, effective_temperature(alpha, t))
    # alpha * z and z / (t / alpha) round differently: an error of a few eps * |alpha z / t|
    # in the exponent is the same relative error in p
    finite = np.isfinite(z)
    rtol = 16 * np.finfo(float).eps * (1 + np.max(np.abs(alpha * z[finite])) / t)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-300)


@FAST
@given(z=logit_rows(), t=positive_t)
def test_temperature_is_division(z, t):
    np.testing.assert_allclose(softmax(z, t), softmax(z / t, 1.0), rtol=1e-9, atol=1e-300)


# ------------------------------------------------------------------------- entropy vs T
@FAST
@given(z=logit_rows(min_k=2), t1=any_t, t2=any_t)
def test_entropy_monotone_in_temperature(z, t1, t2):
    lo, hi = sorted([t1, t2])
    h_lo = float(entropy(softmax(z, lo)))
    h_hi = float(entropy(softmax(z, hi)))
    assert h_lo <= h_hi + 1e-12
    k_finite = int(np.isfinite(z).sum())
    assert h_lo >= -1e-15
    assert h_hi <= math.log(k_finite) + 1e-12


@FAST
@given(p=prob_rows())
def test_entropy_matches_scipy(p):
    assert float(entropy(p)) == pytest.approx(float(ss.entropy(p)), rel=1e-12, abs=1e-15)
    assert float(entropy(p, base=2)) == pytest.approx(
        float(ss.entropy(p, base=2)), rel=1e-12, abs=1e-15
    )


@settings(max_examples=40, deadline=None)
@given(
    z=hnp.arrays(np.float64, st.integers(2, 10), elements=st.floats(-20, 20)),
    u=st.floats(0.01, 0.99),
)
def test_temperature_for_entropy_round_trip(z, u):
    m = int(np.sum(z == z.max()))
    assume(m < z.size)
    lo, hi = math.log(m), math.log(z.size)
    target = lo + u * (hi - lo)
    t = temperature_for_entropy(z, target)
    assert 0 < t < math.inf
    # Shift first: (z - max) / t <= 0 may overflow only to -inf for tiny t (p = 0 there).
    with np.errstate(over="ignore"):
        p = sc.softmax((z - z.max()) / t)  # independent evaluation of the answer
    assert float(ss.entropy(p)) == pytest.approx(target, abs=1e-8)


@settings(max_examples=40, deadline=None)
@given(
    z=hnp.arrays(np.float64, st.integers(2, 8), elements=st.floats(-5, 5)), t=st.floats(0.2, 5.0)
)
def test_temperature_for_entropy_recovers_temperature(z, t):
    assume(np.ptp(z) > 0.5)
    h = float(ss.entropy(sc.softmax(z / t)))
    m = int(np.sum(z == z.max()))
    # away from both ends the inverse is well conditioned
    assume(math.log(m) + 1e-3 < h < math.log(z.size) - 1e-3)
    assert temperature_for_entropy(z, h) == pytest.approx(t, rel=1e-4)


# ------------------------------------------------------------------------- reweight
@FAST
@given(p=prob_rows(), t=any_t)
def test_reweight_equals_softmax_of_log(p, t):
    with np.errstate(divide="ignore"):
        ref = softmax(np.log(p), t)
    q = reweight(p, t)
    np.testing.assert_allclose(q, ref, rtol=1e-12, atol=1e-300)
    assert np.all(q[p == 0] == 0)
    assert math.fsum(q) == pytest.approx(1.0, abs=1e-14)


# ------------------------------------------------------------------------- free energy
@FAST
@given(z=logit_rows(min_k=2, masked=False), t=st.floats(0.05, 20.0), data=st.data())
def test_softmax_minimises_free_energy(z, t, data):
    p = softmax(z, t)
    f_star = float(free_energy(p, z, t))
    assert f_star == pytest.approx(float(-t * sc.logsumexp(z / t)), rel=1e-10, abs=1e-10)
    w = data.draw(hnp.arrays(np.float64, z.size, elements=st.floats(0.0, 1.0)))
    assume(w.sum() > 0)
    q = w / w.sum()
    assert float(free_energy(q, z, t)) >= f_star - 1e-9 * (1 + abs(f_star))


# ------------------------------------------------------------------------- torch
@needs_torch
@settings(max_examples=30, deadline=None)
@given(
    z=hnp.arrays(np.float64, (3, 6), elements=st.floats(-30, 30)),
    t=st.floats(0.1, 10.0),
    dtype=st.sampled_from(["float64", "float32", "float16", "bfloat16"]),
)
def test_torch_and_numpy_agree(z, t, dtype):
    tdtype = getattr(torch, dtype)
    x = torch.from_numpy(z).to(tdtype)
    p = softmax(x, t)
    lp = log_softmax(x, t)
    assert isinstance(p, torch.Tensor)
    assert p.dtype == tdtype
    assert lp.dtype == tdtype
    # numpy on the same (rounded) input values
    ref = softmax(x.to(torch.float64).numpy(), t)
    tol = {"float64": 1e-15, "float32": 2e-6, "float16": 1e-3, "bfloat16": 8e-3}[dtype]
    np.testing.assert_allclose(p.to(torch.float64).numpy(), ref, rtol=tol, atol=tol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_t = torch.softmax(x.to(torch.float64) / t, dim=-1).numpy()
    np.testing.assert_allclose(p.to(torch.float64).numpy(), ref_t, rtol=tol, atol=tol)


@FAST
@given(z=logit_rows(), t1=st.floats(0.05, 20.0), t2=st.floats(0.05, 20.0))
def test_reweighting_composes_temperatures(z, t1, t2):
    # (p^(1/T1))^(1/T2) renormalised = p^(1/(T1 T2)): temperatures multiply
    p = softmax(z, t1)
    q = reweight(p, t2)
    ref = log_softmax(z, t1 * t2)
    assert np.all(q[p == 0] == 0)
    # compare in log space where both are normal numbers; p carries an error of
    # ~eps |log p| in its exponent, which reweighting divides by T2
    # (subnormal p has lost relative precision: leave those entries out)
    ok = (q > 1e-280) & (np.exp(ref) > 1e-280) & (p > 1e-300)
    lp_max = np.max(np.abs(np.log(p[p > 1e-300]))) if np.any(p > 1e-300) else 0.0
    scale = 1 + lp_max / min(t2, 1.0) + np.max(np.abs(ref[ok]), initial=0.0)
    tol = 16 * np.finfo(float).eps * scale
    np.testing.assert_allclose(np.log(q[ok]), ref[ok], rtol=0, atol=tol)
