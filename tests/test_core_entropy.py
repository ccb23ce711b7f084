"""entropy, perplexity, max_probability and temperature_for_entropy.

References: scipy.stats.entropy, closed forms (uniform, two-class) and
scipy.optimize.brentq on an entropy computed with scipy.special.softmax.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.optimize as so
import scipy.special as sc
import scipy.stats as ss

from backends import needs_torch
from thermoscope.core import (
    entropy,
    max_probability,
    perplexity,
    reweight,
    softmax,
    temperature_for_entropy,
)

pytestmark = pytest.mark.filterwarnings("error")


def ref_entropy_of_logits(z, t) -> float:
    """Entropy in nats of softmax(z / t), computed with scipy only."""
    z = np.asarray(z, dtype=np.float64)
    finite = np.isfinite(z)
    p = sc.softmax(z[finite] / t)
    return float(ss.entropy(p))


def ref_temperature(z, target) -> float:
    """Solve H(T) = target with brentq on log T (independent of thermoscope)."""
    f = lambda u: ref_entropy_of_logits(z, math.exp(u)) - target  # noqa: E731
    lo, hi = -30.0, 30.0
    return math.exp(so.brentq(f, lo, hi, xtol=1e-14, rtol=1e-14, maxiter=500))


# ------------------------------------------------------------------------- entropy
@pytest.mark.parametrize("base", [None, 2, 10, math.e, 3.5])
def test_entropy_matches_scipy(base):
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(12, 0.3), size=20)
    got = entropy(p, base=base)
    assert got.shape == (20,)
    np.testing.assert_allclose(got, ss.entropy(p, base=base, axis=-1), rtol=1e-12)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_entropy_axis(axis):
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(5), size=(3, 4))  # shape (3, 4, 5), normalised along -1
    p = np.moveaxis(p, -1, axis)
    np.testing.assert_allclose(entropy(p, axis=axis), ss.entropy(p, axis=axis), rtol=1e-12)
    np.testing.assert_allclose(
        perplexity(p, axis=axis), np.exp(ss.entropy(p, axis=axis)), rtol=1e-12
    )
    np.testing.assert_array_equal(max_probability(p, axis=axis), np.max(p, axis=axis))


def test_entropy_zero_log_zero_is_zero():
    assert entropy([1.0, 0.0, 0.0]) == 0.0
    assert entropy([0.0, 1.0]) == 0.0
    assert entropy([0.5, 0.0, 0.5, 0.0]) == pytest.approx(math.log(2), rel=1e-15)
    assert entropy([0.5, 0.0, 0.5], base=2) == pytest.approx(1.0, rel=1e-15)


@pytest.mark.parametrize("k", [1, 2, 3, 7, 100, 1000])
def test_uniform_entropy_is_log_k(k):
    p = np.full(k, 1.0 / k)
    assert entropy(p) == pytest.approx(math.log(k), rel=1e-13, abs=1e-15)
    assert entropy(p, base=2) == pytest.approx(math.log2(k), rel=1e-13, abs=1e-15)
    assert perplexity(p) == pytest.approx(k, rel=1e-12)
    assert max_probability(p) == pytest.approx(1.0 / k, rel=1e-15)


def test_perplexity_one_hot_is_one():
    assert perplexity([0.0, 1.0, 0.0]) == 1.0


def test_binary_entropy_closed_form():
    for q in [1e-9, 0.01, 0.3, 0.5, 0.9]:
        h = -(q * math.log(q) + (1 - q) * math.log1p(-q))
        assert entropy([q, 1 - q]) == pytest.approx(h, rel=1e-12)


def test_entropy_kinds_and_dtypes():
    h = entropy([0.25, 0.75])
    assert float(h) == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), rel=1e-15)
    p32 = np.array([[0.25, 0.75], [0.5, 0.5]], dtype=np.float32)
    h32 = entropy(p32)
    assert h32.shape == (2,)
    assert h32.dtype == np.float32


@needs_torch
def test_entropy_and_max_probability_of_tensors_are_tensors():
    import torch

    ht = entropy(torch.tensor([[0.25, 0.75], [0.5, 0.5]], dtype=torch.float64))
    assert isinstance(ht, torch.Tensor)
    assert ht.dtype == torch.float64
    np.testing.assert_allclose(
        ht.numpy(), ss.entropy([[0.25, 0.75], [0.5, 0.5]], axis=-1), rtol=1e-14
    )
    mp = max_probability(torch.tensor([0.1, 0.2, 0.7]))
    assert isinstance(mp, torch.Tensor)
    assert mp.item() == pytest.approx(0.7, rel=1e-6)


# ------------------------------------------------------------------------- entropy of softmax vs T
def test_entropy_of_softmax_between_zero_and_log_k():
    rng = np.random.default_rng(2)
    z = rng.normal(scale=3, size=(50, 9))
    for t in [1e-3, 0.1, 1.0, 10.0, 1e3]:
        h = entropy(softmax(z, t))
        assert np.all(h >= -1e-15)
        assert np.all(h <= math.log(9) + 1e-12)


def test_entropy_rises_with_temperature_on_a_grid():
    z = np.array([2.0, 1.0, 0.5, -3.0, 0.0, 1.2])
    ts = np.geomspace(1e-3, 1e3, 200)
    h = np.array([float(entropy(softmax(z, t))) for t in ts])
    assert np.all(np.diff(h) >= 0)
    # strictly rising wherever the entropy is representable (not underflowed to 0)
    assert np.all(np.diff(h)[h[:-1] > 1e-250] > 0)
    # the ends: ln 1 (unique max) and ln 6
    assert h[0] == pytest.approx(0.0, abs=1e-12)
    assert h[-1] == pytest.approx(math.log(6), abs=1e-5)
    np.testing.assert_allclose(h, [ref_entropy_of_logits(z, t) for t in ts], rtol=1e-10, atol=1e-14)


def test_two_class_softmax_entropy_closed_form():
    d = 1.7
    for t in [0.2, 1.0, 5.0]:
        q = sc.expit(d / t)
        h = -(q * math.log(q) + (1 - q) * math.log(1 - q))
        assert entropy(softmax([d, 0.0], t)) == pytest.approx(h, rel=1e-12)


def test_entropy_limits_of_softmax():
    z = np.array([3.0, 3.0, 1.0, -np.inf, 3.0, 0.0])
    assert entropy(softmax(z, 0.0)) == pytest.approx(math.log(3), rel=1e-15)
    assert entropy(softmax(z, np.inf)) == pytest.approx(math.log(5), rel=1e-15)


# ------------------------------------------------------------------------- temperature_for_entropy
ROUND_TRIP_LOGITS = [
    [2.0, 1.0, 0.5],
    [5.0, 2.2, 2.0, 4.5, 3.0, 2.7],
    [0.0, -1.0, -np.inf, 3.0, 3.0],
    [1e3, -1e3, 0.0, 10.0],
    [0.1, 0.0],
]


@pytest.mark.parametrize("z", ROUND_TRIP_LOGITS, ids=str)
@pytest.mark.parametrize("frac", [1e-6, 0.01, 0.3, 0.5, 0.9, 0.999])
def test_temperature_for_entropy_round_trip(z, frac):
    z = np.array(z)
    finite = z[np.isfinite(z)]
    m = int(np.sum(finite == finite.max()))
    lo, hi = math.log(m), math.log(finite.size)
    target = lo + frac * (hi - lo)
    with warnings.catch_warnings():
        # warnings with masked logits are pinned by their own regression test below
        warnings.simplefilter("ignore", RuntimeWarning)
        t = temperature_for_entropy(z, target)
    assert isinstance(t, float)
    assert 0 < t < math.inf
    assert float(entropy(softmax(z, t))) == pytest.approx(target, abs=1e-9)
    assert ref_entropy_of_logits(z, t) == pytest.approx(target, abs=1e-9)
    if 0.01 <= frac <= 0.9:
        # well-conditioned: the temperature itself agrees with an independent root finder
        assert t == pytest.approx(ref_temperature(z, target), rel=1e-6)


def test_temperature_for_entropy_known_temperature():
    z = np.array([2.0, -0.5, 1.0, 0.3])
    for t_true in [0.05, 0.3, 1.0, 4.0, 25.0]:
        target = ref_entropy_of_logits(z, t_true)
        assert temperature_for_entropy(z, target) == pytest.approx(t_true, rel=1e-7)


def test_temperature_for_entropy_base2():
    z = np.array([2.0, 1.0, 0.5, -1.0])
    t_bits = temperature_for_entropy(z, 1.5, base=2)
    t_nats = temperature_for_entropy(z, 1.5 * math.log(2))
    assert t_bits == pytest.approx(t_nats, rel=1e-10)
    assert float(entropy(softmax(z, t_bits), base=2)) == pytest.approx(1.5, abs=1e-9)


def test_temperature_for_entropy_endpoints():
    z = np.array([1.0, 4.0, 4.0, 2.0, -np.inf])
    assert temperature_for_entropy(z, math.log(2)) == 0.0  # two maximal entries
    assert temperature_for_entropy(z, math.log(4)) == math.inf  # four finite entries
    assert temperature_for_entropy([1.0, 0.0], 0.0) == 0.0
    assert temperature_for_entropy([1.0, 0.0], math.log(2)) == math.inf
    assert temperature_for_entropy([1.0, 0.0], 1.0, base=2) == math.inf


def test_temperature_for_entropy_constant_logits():
    # H(T) = ln 3 for every T: any answer in [0, inf] must reproduce the target.
    z = np.array([1.0, 1.0, 1.0])
    t = temperature_for_entropy(z, math.log(3))
    assert 0 <= t <= math.inf
    assert float(entropy(softmax(z, t))) == pytest.approx(math.log(3), rel=1e-14)


@pytest.mark.parametrize(
    "target",
    [-0.1, math.log(2) - 1e-6, math.log(4) + 1e-6, 10.0],
)
def test_temperature_for_entropy_out_of_range(target):
    z = np.array([1.0, 4.0, 4.0, 2.0, -np.inf])  # reachable entropies: [ln 2, ln 4]
    with pytest.raises(ValueError, match="`target`"):
        temperature_for_entropy(z, target)


def test_temperature_for_entropy_near_endpoints():
    z = np.array([3.0, 0.0, -2.0])
    t_hi = temperature_for_entropy(z, math.log(3) - 1e-8)
    assert t_hi > 100
    assert ref_entropy_of_logits(z, t_hi) == pytest.approx(math.log(3) - 1e-8, abs=1e-10)
    t_lo = temperature_for_entropy(z, 1e-8)
    assert 0 < t_lo < 0.3
    assert ref_entropy_of_logits(z, t_lo) == pytest.approx(1e-8, rel=1e-4)


def test_temperature_for_entropy_batch():
    rng = np.random.default_rng(3)
    z = rng.normal(scale=2, size=(6, 5))
    targets = rng.uniform(0.2, 1.4, size=6)
    t = temperature_for_entropy(z, targets)
    assert isinstance(t, np.ndarray)
    assert t.shape == (6,)
    for i in range(6):
        assert ref_entropy_of_logits(z[i], t[i]) == pytest.approx(targets[i], abs=1e-9)
    # scalar target for every row
    t1 = temperature_for_entropy(z, 1.0)
    assert isinstance(t1, np.ndarray)
    assert t1.shape == (6,)
    for i in range(6):
        assert t1[i] == pytest.approx(ref_temperature(z[i], 1.0), rel=1e-6)


def test_temperature_for_entropy_batch_with_endpoints_and_bad_row():
    z = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 0.0]])
    t = temperature_for_entropy(z, np.array([0.0, math.log(3)]))
    np.testing.assert_array_equal(t, [0.0, math.inf])
    # row 1 has two tied maxima: it cannot go below ln 2
    with pytest.raises(ValueError, match="`target`"):
        temperature_for_entropy(z, np.array([0.5, 0.5]))


def test_temperature_for_entropy_large_logits_stable():
    z = np.array([1e4, 0.0, -1e4, 5e3])
    t = temperature_for_entropy(z, 0.8)
    assert math.isfinite(t)
    assert t > 0
    assert ref_entropy_of_logits(z, t) == pytest.approx(0.8, abs=1e-9)


def test_temperature_for_entropy_masked_logits_emit_no_runtime_warning():
    # regression: exp(-inf) * -inf = nan was computed (then discarded) for masked entries
    z = np.array([0.0, -1.0, -np.inf, 3.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = temperature_for_entropy(z, 1.0)
    assert ref_entropy_of_logits(z, t) == pytest.approx(1.0, abs=1e-9)


# ------------------------------------------------------------------------- composability
# Regression: `probs` validation used the compute dtype's (float32) epsilon, so
# distributions stored in a low-precision dtype -- thermoscope's own softmax
# outputs included -- were rejected as "must sum to 1".
def test_entropy_accepts_float16_softmax_output():
    z = np.array([-1.64, 1.285, 1.046], dtype=np.float16)
    p = softmax(z)
    assert p.dtype == np.float16
    h = entropy(p)
    ref = ss.entropy(sc.softmax(z.astype(np.float64)))
    assert float(h) == pytest.approx(ref, abs=3e-3)


@needs_torch
def test_entropy_accepts_bfloat16_softmax_output():
    import torch

    z = torch.tensor([0.0, -0.6], dtype=torch.bfloat16)
    p = softmax(z)
    assert p.dtype == torch.bfloat16
    h = entropy(p)
    ref = ss.entropy(sc.softmax(z.to(torch.float64).numpy()))
    assert float(h) == pytest.approx(ref, abs=2e-2)


@needs_torch
@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32", "float64"])
def test_every_torch_softmax_output_is_accepted_as_a_distribution(dtype):
    import torch

    rng = np.random.default_rng(11)
    tdtype = getattr(torch, dtype)
    tol = float(torch.finfo(tdtype).eps) * 8
    for k in (2, 3, 5, 10, 100):
        for _ in range(10):
            z = torch.from_numpy(rng.normal(scale=2, size=k)).to(tdtype)
            p = softmax(z, 0.8)
            stored = p.to(torch.float64).numpy()  # the values as stored in `dtype`
            h = entropy(p)
            assert h.dtype == tdtype
            assert float(h) == pytest.approx(ss.entropy(stored), abs=tol * math.log(k) + tol)
            q = reweight(p, 0.5)
            ref = stored**2 / np.sum(stored**2)
            np.testing.assert_allclose(q.to(torch.float64).numpy(), ref, atol=tol)


@needs_torch
def test_float32_probabilities_upcast_to_float64_are_accepted():
    # e.g. torch.softmax(...).double().numpy() over a GPT-2-sized vocabulary:
    # the float32 rounding (sum off by ~1e-6) must not be rejected in float64.
    import torch

    rng = np.random.default_rng(12)
    for k in (1000, 50257):
        p32 = torch.softmax(torch.from_numpy(rng.normal(scale=3, size=k).astype(np.float32)), -1)
        p64 = p32.double().numpy()
        h = float(entropy(p64))
        assert h == pytest.approx(float(ss.entropy(p64)), rel=1e-5)


@needs_torch
def test_temperature_for_entropy_torch_logits():
    import torch

    z = torch.tensor([5.0, 2.2, 2.0, 4.5, 3.0, 2.7], dtype=torch.float64)
    t = temperature_for_entropy(z, 1.0)
    assert isinstance(t, float)
    assert ref_entropy_of_logits(z.numpy(), t) == pytest.approx(1.0, abs=1e-9)
