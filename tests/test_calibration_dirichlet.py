"""DirichletCalibrator: ODIR fit against a direct scipy minimisation, and the estimator contract.

The reference implementation (``dirichletcal``, github dirichletcal/dirichlet_python,
``calib/multinomial.py``) does not build on this interpreter (it needs jax and an
old setup); its objective is transcribed below instead, in both of its forms.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import optimize
from scipy.special import log_softmax, logsumexp, softmax

from thermoscope.calibration.dirichlet import DirichletCalibrator
from thermoscope.calibration.linear_scalers import CalibratorConvergenceWarning


def simulated(n: int, k: int, seed: int) -> tuple[Any, Any]:
    """Labels from a miscalibrated, class-mixing map of the probabilities."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 3.0
    w = 0.4 * np.eye(k) + 0.05 * rng.normal(size=(k, k))
    p = softmax(log_softmax(z, axis=1) @ w.T + np.linspace(-0.3, 0.3, k), axis=1)
    y = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return z, y


def digits_logits() -> tuple[Any, Any, Any, Any]:
    """Naive Bayes on scikit-learn's digits: over-confident; calibration and test splits."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    from sklearn.naive_bayes import GaussianNB

    x, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(0).permutation(y.size)
    train, cal, test = idx[:500], idx[500:1150], idx[1150:]
    z = GaussianNB(var_smoothing=1e-2).fit(x[train], y[train]).predict_joint_log_proba(x)
    return z[cal], y[cal], z[test], y[test]


def odir_objective(logp: Any, y: Any, lam: float, mu: float) -> Any:
    """Kull et al. (2019), eq. for ODIR: NLL + lam/(K(K-1)) sum_{i!=j} W_ij^2 + mu/K sum b_j^2."""
    n, k = logp.shape

    def f(theta: Any) -> tuple[float, Any]:
        w, b = theta[: k * k].reshape(k, k), theta[k * k :]
        a = logp @ w.T + b
        off = w * (1 - np.eye(k))
        value = float(np.mean(logsumexp(a, axis=1) - a[np.arange(n), y]))
        value += lam / (k * (k - 1)) * float(np.sum(off**2)) + mu / k * float(b @ b)
        r = (softmax(a, axis=1) - np.eye(k)[y]) / n
        g = np.concatenate(
            [(r.T @ logp + 2 * lam / (k * (k - 1)) * off).ravel(), r.sum(0) + 2 * mu / k * b]
        )
        return value, g

    return f


@pytest.mark.parametrize(("lam", "mu"), [(0.5, 0.5), (2.0, 0.1), (1e-2, 1.0)])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_direct_scipy_minimisation(lam: float, mu: float, seed: int) -> None:
    z, y = simulated(500, 4, seed)
    k = 4
    cal = DirichletCalibrator(reg_lambda=lam, reg_mu=mu).fit(z, y)
    f = odir_objective(log_softmax(z, axis=1), y, lam, mu)
    theta0 = np.concatenate([np.eye(k).ravel(), np.zeros(k)])
    res = optimize.minimize(f, theta0, jac=True, method="BFGS", options={"gtol": 1e-11})
    np.testing.assert_allclose(cal.coef_, res.x[: k * k].reshape(k, k), atol=2e-6)
    np.testing.assert_allclose(cal.intercept_, res.x[k * k :], atol=2e-6)
    p_ref = softmax(log_softmax(z, axis=1) @ res.x[: k * k].reshape(k, k).T + res.x[k * k :], 1)
    np.testing.assert_allclose(cal.predict_proba(z), p_ref, atol=1e-7)
    theta = np.concatenate([cal.coef_.ravel(), cal.intercept_])
    assert f(theta)[0] <= res.fun + 1e-12
    assert np.linalg.norm(f(theta)[1]) < 1e-8


def test_unregularised_equals_reference_row_parametrisation() -> None:
    """dirichletcal's ``ref_row=True`` fixes the last row of (W, b) to 0: same probabilities."""
    z, y = simulated(600, 3, 2)
    k, logp = 3, log_softmax(z, axis=1)

    def f(theta: Any) -> float:
        m = np.vstack([theta.reshape(k - 1, k + 1), np.zeros(k + 1)])
        a = logp @ m[:, :k].T + m[:, k]
        return float(np.mean(logsumexp(a, axis=1) - a[np.arange(y.size), y]))

    theta0 = np.hstack([np.eye(k), np.zeros((k, 1))])[: k - 1].ravel()
    res = optimize.minimize(f, theta0, method="BFGS", options={"gtol": 1e-10})
    m = np.vstack([res.x.reshape(k - 1, k + 1), np.zeros(k + 1)])
    p_ref = softmax(logp @ m[:, :k].T + m[:, k], axis=1)
    cal = DirichletCalibrator().fit(z, y)
    np.testing.assert_allclose(cal.predict_proba(z), p_ref, atol=1e-6)
    # The representative reported: zero off-diagonal column sums, intercepts summing to 0.
    off = cal.coef_ * (1 - np.eye(k))
    np.testing.assert_allclose(off.sum(axis=0), 0.0, atol=1e-9)
    assert abs(cal.intercept_.sum()) < 1e-9


def test_invariant_to_a_constant_per_row() -> None:
    """It sees log-probabilities only: adding a constant to a row's logits changes nothing."""
    z, y = simulated(300, 3, 5)
    shift = np.random.default_rng(0).normal(size=(300, 1)) * 50
    a = DirichletCalibrator(reg_lambda=0.1, reg_mu=0.1).fit(z, y)
    b = DirichletCalibrator(reg_lambda=0.1, reg_mu=0.1).fit(z + shift, y)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-8)
    np.testing.assert_allclose(a.predict_proba(z), b.predict_proba(z + shift), atol=1e-9)


def test_recovers_the_generating_map() -> None:
    """Large N, labels drawn from softmax(W log p + b): the fit finds W and b."""
    rng = np.random.default_rng(11)
    k = 3
    w = np.array([[0.6, 0.1, -0.1], [0.0, 0.8, 0.1], [0.1, -0.1, 0.5]])
    w = w - (w * (1 - np.eye(k))).sum(axis=0) / (k - 1)  # the reported representative
    b = np.array([0.2, -0.3, 0.1])
    z = rng.normal(size=(60_000, k)) * 2
    p = softmax(log_softmax(z, axis=1) @ w.T + b, axis=1)
    y = (p.cumsum(axis=1) > rng.random((z.shape[0], 1))).argmax(axis=1)
    cal = DirichletCalibrator().fit(z, y)
    np.testing.assert_allclose(cal.coef_, w, atol=0.05)
    np.testing.assert_allclose(cal.intercept_, b, atol=0.05)


def test_improves_nll_on_digits() -> None:
    z_cal, y_cal, z_test, y_test = digits_logits()
    rows = np.arange(y_test.size)
    before = -np.mean(log_softmax(z_test, axis=1)[rows, y_test])
    cal = DirichletCalibrator(reg_lambda=1e-2, reg_mu=1e-2).fit(z_cal, y_cal)
    after = -np.mean(np.log(cal.predict_proba(z_test)[rows, y_test]))
    assert after < 0.5 * before


def test_reproducible_and_json(tmp_path: Path) -> None:
    z, y = simulated(300, 4, 6)
    a = DirichletCalibrator(reg_lambda=0.1).fit(z, y)
    b = DirichletCalibrator(reg_lambda=0.1).fit(z.copy(), y.copy())
    assert np.array_equal(a.coef_, b.coef_)
    assert np.array_equal(a.intercept_, b.intercept_)
    loaded = DirichletCalibrator.from_json(a.to_json(tmp_path / "d.json"))
    assert np.array_equal(loaded.predict_proba(z), a.predict_proba(z))
    assert loaded.get_params() == a.get_params()
    data = json.loads((tmp_path / "d.json").read_text())
    assert data["format"] == "thermoscope.dirichlet"
    data["format"] = "thermoscope.matrix_scaler"
    (tmp_path / "d.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="`format`"):
        DirichletCalibrator.from_json(tmp_path / "d.json")


Z, Y = simulated(60, 3, 9)


@pytest.mark.parametrize(
    ("kwargs", "logits", "y", "exc", "name"),
    [
        ({"reg_lambda": -0.1}, Z, Y, ValueError, "reg_lambda"),
        ({"reg_mu": [1.0, 2.0]}, Z, Y, TypeError, "reg_mu"),
        ({"tol": float("inf")}, Z, Y, ValueError, "tol"),
        ({}, np.where(np.eye(60, 3, dtype=bool), -np.inf, Z), Y, ValueError, "logits"),
        ({}, np.where(np.eye(60, 3, dtype=bool), np.nan, Z), Y, ValueError, "logits"),
        ({}, Z, Y[:10], ValueError, "y"),
        ({}, Z, None, ValueError, "y"),
        ({}, Z, Y * 0.5 + 0.25, TypeError, "y"),
    ],
)
def test_bad_input(
    kwargs: dict[str, Any], logits: Any, y: Any, exc: type[Exception], name: str
) -> None:
    with pytest.raises(exc, match=f"`{name}` must"):
        DirichletCalibrator(**kwargs).fit(logits, y)


def test_separable_warns() -> None:
    z = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, 1.0]])
    with pytest.warns(CalibratorConvergenceWarning):
        DirichletCalibrator().fit(z, [0, 1, 0, 1])


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_torch_matches_numpy(dtype: str) -> None:
    torch = pytest.importorskip("torch")
    cal = DirichletCalibrator(reg_lambda=0.1, reg_mu=0.1).fit(Z, Y)
    zt = torch.tensor(Z, dtype=getattr(torch, dtype))
    out = cal.transform(zt)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == zt.dtype
    expected = cal.transform(zt.to(torch.float64).numpy())
    tol = {"float32": 1e-4, "float16": 5e-2}[dtype]
    np.testing.assert_allclose(out.to(torch.float64).numpy(), expected, atol=tol, rtol=tol)


def _sklearn_checks() -> Any:
    try:
        from sklearn.utils.estimator_checks import parametrize_with_checks
    except ImportError:  # the estimators never need scikit-learn; only this test does
        return pytest.mark.skip(reason="scikit-learn is not installed")

    labels = "`y` indexes the logits' columns; this check draws 3 classes for 2 columns"
    expected = {
        "check_estimators_overwrite_params": labels,
        "check_estimators_fit_returns_self": labels,
        "check_readonly_memmap_input": labels,
        "check_complex_data": "complex logits are a TypeError (wrong kind of value), by convention",
        "check_dtype_object": "object arrays are refused as non-numeric (TypeError), by convention",
    }
    with warnings.catch_warnings():
        # Protocol without inheritance: scikit-learn is never imported by the estimator.
        warnings.filterwarnings("ignore", "Estimator .* does not inherit", UserWarning)
        return parametrize_with_checks(
            [DirichletCalibrator(reg_lambda=1e-2, reg_mu=1e-2)],
            expected_failed_checks=lambda est: expected,
        )


# The checks fit on random or separable data: the convergence warning is the answer there.
@pytest.mark.filterwarnings(
    "ignore::thermoscope.calibration.linear_scalers.CalibratorConvergenceWarning"
)
@_sklearn_checks()
def test_sklearn_compatible(estimator: Any, check: Any) -> None:
    check(estimator)


def test_hypothesis_row_shift_invariance() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")
    from hypothesis.extra import numpy as hnp

    cal = DirichletCalibrator(reg_lambda=0.1, reg_mu=0.1).fit(Z, Y)

    @hypothesis.settings(max_examples=80, deadline=None)
    @hypothesis.given(
        hnp.arrays(np.float64, (4, 3), elements=st.floats(-50, 50, allow_nan=False)),
        hnp.arrays(np.float64, (4, 1), elements=st.floats(-1e3, 1e3, allow_nan=False)),
    )
    def check(z: Any, shift: Any) -> None:
        p = cal.predict_proba(z)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
        np.testing.assert_allclose(cal.predict_proba(z + shift), p, atol=1e-9)

    check()
