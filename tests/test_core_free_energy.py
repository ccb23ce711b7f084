"""free_energy and effective_temperature: the variational and symmetry claims.

F(q) = sum_i q_i E_i - T S(q), E = -z. References: numpy/scipy formulas,
scipy.special.logsumexp, scipy.optimize.minimize on the simplex, and the
identity F(q) - F(p*) = T KL(q || p*).
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
from thermoscope.core import effective_temperature, entropy, free_energy, softmax

pytestmark = pytest.mark.filterwarnings("error")


def ref_free_energy(q, z, t) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    energy = np.sum(np.where(q > 0, -q * np.where(np.isfinite(z), z, 0.0), 0.0), axis=-1)
    return energy - t * np.sum(sc.entr(q), axis=-1)


def ref_min_free_energy(z, t) -> float:
    return float(-t * sc.logsumexp(np.asarray(z, dtype=np.float64) / t))


Z = np.array([2.0, 1.0, 0.5, -1.0, 0.0])


# ------------------------------------------------------------------------- formula
def test_free_energy_matches_formula():
    rng = np.random.default_rng(0)
    q = rng.dirichlet(np.ones(5), size=30)
    for t in [0.0, 0.1, 1.0, 3.0]:
        got = free_energy(q, np.tile(Z, (30, 1)), t)
        assert got.shape == (30,)
        np.testing.assert_allclose(got, ref_free_energy(q, Z, t), rtol=1e-12, atol=1e-14)
        # same via scipy.stats.entropy
        np.testing.assert_allclose(
            got, q @ (-Z) - t * ss.entropy(q, axis=-1), rtol=1e-12, atol=1e-14
        )


def test_free_energy_one_hot_is_energy():
    # S(one-hot) = 0 so F = E_i = -z_i at every T
    for t in [0.0, 0.5, 10.0]:
        assert float(free_energy([0, 1.0, 0, 0, 0], Z, t)) == pytest.approx(-1.0, rel=1e-15)


def test_free_energy_uniform_closed_form():
    for t in [0.3, 2.0]:
        q = np.full(5, 0.2)
        expected = -Z.mean() - t * math.log(5)
        assert float(free_energy(q, Z, t)) == pytest.approx(expected, rel=1e-13)


def test_free_energy_axis0_and_per_row_temperature():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4, 3))
    q = rng.dirichlet(np.ones(4), size=3).T  # distributions along axis 0
    t = np.array([0.5, 1.0, 2.0])
    got = free_energy(q, z, t, axis=0)
    assert got.shape == (3,)
    for j in range(3):
        assert got[j] == pytest.approx(ref_free_energy(q[:, j], z[:, j], t[j]), rel=1e-12)


# ------------------------------------------------------------------------- minimum
@pytest.mark.parametrize("t", [1e-3, 0.1, 0.5, 1.0, 2.0, 50.0])
def test_minimum_is_minus_t_logsumexp(t):
    p = softmax(Z, t)
    assert float(free_energy(p, Z, t)) == pytest.approx(
        ref_min_free_energy(Z, t), rel=1e-12, abs=1e-12
    )


@pytest.mark.parametrize("t", [1e-2, 1.0, 100.0])
def test_minimum_large_logits(t):
    z = np.array([1e4, -1e4, 0.0, 9999.0])
    p = softmax(z, t)
    assert float(free_energy(p, z, t)) == pytest.approx(ref_min_free_energy(z, t), rel=1e-12)


@pytest.mark.parametrize("t", [0.2, 1.0, 5.0])
def test_softmax_beats_thousands_of_dirichlet_samples(t):
    rng = np.random.default_rng(2)
    k, n = 5, 5000
    f_star = float(free_energy(softmax(Z, t), Z, t))
    for alpha in [0.1, 1.0, 10.0]:
        q = rng.dirichlet(np.full(k, alpha), size=n)
        f = free_energy(q, np.tile(Z, (n, 1)), t)
        assert np.all(f >= f_star - 1e-12)
        # Gibbs: F(q) - F(p*) = T KL(q || p*) >= 0, zero only at q = p*
        kl = np.sum(sc.rel_entr(q, softmax(Z, t)), axis=-1)
        np.testing.assert_allclose(f - f_star, t * kl, rtol=1e-8, atol=1e-11)


def _minimize(objective, x0, method, k):
    if method == "trust-constr":
        constraints = [so.LinearConstraint(np.ones((1, k)), 1.0, 1.0)]
    else:
        constraints = [{"type": "eq", "fun": lambda x: x.sum() - 1.0}]
    return so.minimize(
        objective,
        x0,
        method=method,
        bounds=[(0.0, 1.0)] * k,
        constraints=constraints,
        options={"maxiter": 3000},
        tol=1e-12,
    )


@pytest.mark.parametrize("method", ["SLSQP", "trust-constr"])
@pytest.mark.parametrize("t", [0.3, 1.0, 4.0])
def test_scipy_minimize_on_simplex_finds_softmax(method, t):
    k = Z.size

    def objective(x):
        x = np.clip(x, 0.0, 1.0)
        return float(x @ (-Z) - t * np.sum(sc.entr(x)))

    x0 = np.full(k, 1.0 / k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # trust-constr's quasi-Newton chatter
        res = _minimize(objective, x0, method, k)
    x = np.clip(res.x, 0.0, 1.0)

    x = x / x.sum()
    p = softmax(Z, t)
    np.testing.assert_allclose(x, p, atol=1e-4)
    f_opt = float(free_energy(x, Z, t))
    f_star = float(free_energy(p, Z, t))
    assert f_star <= f_opt + 1e-12
    assert f_opt == pytest.approx(f_star, abs=1e-7)
    assert f_star == pytest.approx(ref_min_free_energy(Z, t), rel=1e-12)


def test_zero_temperature_minimum_is_best_energy():
    # F = <E> at T = 0: the minimum is -max z, reached by softmax(z, 0)
    assert float(free_energy(softmax(Z, 0.0), Z, 0.0)) == -2.0
    z = np.array([3.0, 1.0, 3.0])
    assert float(free_energy(softmax(z, 0.0), z, 0.0)) == -3.0


def test_derivative_of_minimum_is_minus_entropy():
    # d/dT [-T logsumexp(z/T)] = -S(p*)
    for t in [0.4, 1.0, 3.0]:
        h = 1e-5 * t
        fp = float(free_energy(softmax(Z, t + h), Z, t + h))
        fm = float(free_energy(softmax(Z, t - h), Z, t - h))
        assert (fp - fm) / (2 * h) == pytest.approx(-float(entropy(softmax(Z, t))), rel=1e-6)


def test_masked_logits_with_zero_mass():
    z = np.array([2.0, -np.inf, 1.0, 0.0])
    t = 0.7
    p = softmax(z, t)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0 * inf must not warn either
        f = float(free_energy(p, z, t))
    finite = np.isfinite(z)
    assert f == pytest.approx(ref_min_free_energy(z[finite], t), rel=1e-12)
    assert np.isfinite(f)


def test_mass_on_masked_state_has_infinite_energy():
    z = np.array([2.0, -np.inf, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = float(free_energy([0.5, 0.25, 0.25], z, 1.0))
    assert f == math.inf


def test_infinite_temperature_never_gives_nan():
    # T = inf is a valid temperature; T * S with S = 0 must not become nan silently.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            f, message = free_energy([1.0, 0.0, 0.0], [2.0, 1.0, 0.5], np.inf), ""
        except ValueError as exc:  # rejecting T = inf here is acceptable too
            f, message = None, str(exc)
    if f is None:
        assert "`temperature`" in message
    else:
        # S = 0, so T * S = 0 in the limit: F = <E> = -2
        assert not np.isnan(f), "free_energy(one-hot, z, inf) returned a silent NaN"


def test_free_energy_keeps_float32():
    p = softmax(Z.astype(np.float32), 0.5)
    f = free_energy(p, Z.astype(np.float32), 0.5)
    assert np.asarray(f).dtype == np.float32
    assert float(f) == pytest.approx(ref_min_free_energy(Z, 0.5), rel=1e-5)


@needs_torch
def test_free_energy_of_tensors_is_a_tensor():
    import torch

    ft = free_energy(torch.from_numpy(softmax(Z, 0.5)), torch.from_numpy(Z), 0.5)
    assert isinstance(ft, torch.Tensor)
    assert ft.dtype == torch.float64
    assert ft.item() == pytest.approx(ref_min_free_energy(Z, 0.5), rel=1e-12)


# ------------------------------------------------------------------------- effective temperature
@pytest.mark.parametrize("alpha", [1e-3, 0.1, 0.5, 1.0, 2.0, 37.0])
@pytest.mark.parametrize("t", [0.25, 1.0, 3.0])
def test_weight_scale_temperature_symmetry(alpha, t):
    assert effective_temperature(alpha, t) == pytest.approx(t / alpha, rel=1e-15)
    a = softmax(alpha * Z, t)
    b = softmax(Z, t / alpha)
    c = softmax(Z, effective_temperature(alpha, t))
    ref = sc.softmax(alpha * Z / t)
    np.testing.assert_allclose(a, ref, rtol=1e-12)
    np.testing.assert_allclose(b, ref, rtol=1e-12)
    np.testing.assert_allclose(c, ref, rtol=1e-12)


def test_effective_temperature_defaults_and_type():
    assert effective_temperature(0.5) == 2.0
    assert effective_temperature(4) == 0.25
    assert isinstance(effective_temperature(0.5), float)
    assert effective_temperature(2.0, 0.0) == 0.0
    assert effective_temperature(2.0, math.inf) == math.inf


def test_l2_shrunk_linear_model_equals_heated_model():
    """Scaling every weight of a bias-free linear model by alpha < 1 is temperature 1 / alpha."""
    rng = np.random.default_rng(3)
    w = rng.normal(size=(4, 10))  # 4 classes, 10 features
    x = rng.normal(size=(25, 10))
    for alpha in [0.9, 0.5, 0.1]:
        shrunk = softmax(x @ (alpha * w).T)  # T = 1 on the shrunk model
        heated = softmax(x @ w.T, effective_temperature(alpha))
        np.testing.assert_allclose(shrunk, heated, rtol=1e-12)
        np.testing.assert_allclose(heated, sc.softmax(alpha * (x @ w.T), axis=-1), rtol=1e-12)
        assert effective_temperature(alpha) > 1.0
        # heating lowers confidence and raises entropy on every example
        base = softmax(x @ w.T)
        assert np.all(np.max(heated, axis=-1) <= np.max(base, axis=-1) + 1e-15)
        assert np.all(entropy(heated) >= entropy(base) - 1e-12)
