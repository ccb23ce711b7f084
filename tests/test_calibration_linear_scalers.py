"""VectorScaler and MatrixScaler: the fit against a direct scipy minimisation, and the contract."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import optimize
from scipy.special import log_softmax, logsumexp, softmax

from thermoscope.calibration.linear_scalers import (
    CalibratorConvergenceWarning,
    MatrixScaler,
    VectorScaler,
)

# --------------------------------------------------------------------------- data


def simulated(n: int, k: int, seed: int, temperature: float = 2.5) -> tuple[Any, Any]:
    """Logits whose labels follow softmax(z / T) with a class bias: over-confident for T > 1."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 3.0
    bias = np.linspace(-0.5, 0.5, k)
    p = softmax(z / temperature + bias, axis=1)
    y = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return z, y


def digits_logits() -> tuple[Any, Any, Any, Any]:
    """An over-confident model on real data: naive Bayes on scikit-learn's digits.

    Returns calibration logits and labels, then held-out test logits and labels.
    """
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    from sklearn.naive_bayes import GaussianNB

    x, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(0).permutation(y.size)
    train, cal, test = idx[:500], idx[500:1150], idx[1150:]
    z = GaussianNB(var_smoothing=1e-2).fit(x[train], y[train]).predict_joint_log_proba(x)
    return z[cal], y[cal], z[test], y[test]


def nll(p: Any, y: Any) -> float:
    return float(-np.mean(np.log(p[np.arange(y.size), y])))


# --------------------------------------------------------------------------- the reference


def direct_objective(x: Any, y: Any, *, diagonal: bool, lam: float, mu: float) -> Any:
    """Mean NLL of softmax(W x + b) plus Kull et al.'s normalised ODIR, written out plainly."""
    n, k = x.shape

    def unpack(theta: Any) -> tuple[Any, Any]:
        w = np.diag(theta[:k]) if diagonal else theta[: k * k].reshape(k, k)
        return w, theta[-k:]

    def f(theta: Any) -> tuple[float, Any]:
        w, b = unpack(theta)
        logits = x @ w.T + b
        value = float(np.mean(logsumexp(logits, axis=1) - logits[np.arange(n), y]))
        off = w - np.diag(np.diag(w))
        value += lam / (k * (k - 1)) * float(np.sum(off**2)) + mu / k * float(np.sum(b**2))
        r = (softmax(logits, axis=1) - np.eye(k)[y]) / n
        gw = r.T @ x + 2 * lam / (k * (k - 1)) * off
        gb = r.sum(axis=0) + 2 * mu / k * b
        return value, np.concatenate([np.diag(gw) if diagonal else gw.ravel(), gb])

    return f, unpack


def scipy_fit(x: Any, y: Any, *, diagonal: bool, lam: float, mu: float) -> tuple[Any, Any]:
    f, unpack = direct_objective(x, y, diagonal=diagonal, lam=lam, mu=mu)
    k = x.shape[1]
    theta0 = np.concatenate([np.ones(k) if diagonal else np.eye(k).ravel(), np.zeros(k)])
    res = optimize.minimize(
        f, theta0, jac=True, method="BFGS", options={"gtol": 1e-11, "maxiter": 10_000}
    )
    return unpack(res.x)


def canonical(w: Any, b: Any) -> tuple[Any, Any]:
    """The representative with zero off-diagonal column sums and sum(b) = 0 (same softmax)."""
    k = w.shape[0]
    off = ~np.eye(k, dtype=bool)
    shift = np.where(off, w, 0.0).sum(axis=0) / (k - 1)
    return w - shift[None, :], b - b.mean()


ESTIMATORS = [
    pytest.param(VectorScaler(), True, 0.0, 0.0, id="vector"),
    pytest.param(MatrixScaler(), False, 0.0, 0.0, id="matrix"),
    pytest.param(MatrixScaler(reg_lambda=0.5, reg_mu=0.2), False, 0.5, 0.2, id="matrix-odir"),
    pytest.param(MatrixScaler(reg_lambda=3.0, reg_mu=0.0), False, 3.0, 0.0, id="matrix-lambda"),
]


@pytest.mark.parametrize(("est", "diagonal", "lam", "mu"), ESTIMATORS)
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_direct_scipy_minimisation(
    est: Any, diagonal: bool, lam: float, mu: float, seed: int
) -> None:
    z, y = simulated(400, 4, seed)
    est.fit(z, y)
    w_ref, b_ref = scipy_fit(z, y, diagonal=diagonal, lam=lam, mu=mu)
    p_ref = softmax(z @ w_ref.T + b_ref, axis=1)
    np.testing.assert_allclose(est.predict_proba(z), p_ref, atol=2e-7)
    # Parameters: exactly identified with a penalty; up to the softmax's gauge without one.
    w_ref, b_ref = canonical(w_ref, b_ref) if lam == 0 else (w_ref, b_ref)
    b_ref = b_ref - b_ref.mean() if mu == 0 else b_ref
    np.testing.assert_allclose(est.coef_, w_ref, atol=2e-6)
    np.testing.assert_allclose(est.intercept_, b_ref, atol=2e-6)
    # Our optimum is at least as good, and the written-out gradient vanishes there.
    f, _ = direct_objective(z, y, diagonal=diagonal, lam=lam, mu=mu)
    k = z.shape[1]
    theta = np.concatenate([np.diag(est.coef_) if diagonal else est.coef_.ravel(), est.intercept_])
    theta_ref = np.concatenate([np.diag(w_ref) if diagonal else w_ref.ravel(), b_ref])
    assert f(theta)[0] <= f(theta_ref)[0] + 1e-12
    assert np.linalg.norm(f(theta)[1]) < 1e-8
    assert est.n_classes_ == est.n_features_in_ == k


def test_unregularised_matrix_equals_reference_row_parametrisation() -> None:
    """dirichletcal fixes the last row of (W, b) to zero; the softmax is the same."""
    z, y = simulated(500, 3, 4)
    k = 3

    def f(theta: Any) -> float:
        m = np.vstack([theta.reshape(k - 1, k + 1), np.zeros(k + 1)])
        logits = z @ m[:, :k].T + m[:, k]
        return float(np.mean(logsumexp(logits, axis=1) - logits[np.arange(y.size), y]))

    theta0 = np.hstack([np.eye(k), np.zeros((k, 1))])[: k - 1].ravel()
    res = optimize.minimize(f, theta0, method="BFGS", options={"gtol": 1e-10})
    m = np.vstack([res.x.reshape(k - 1, k + 1), np.zeros(k + 1)])
    p_ref = softmax(z @ m[:, :k].T + m[:, k], axis=1)
    np.testing.assert_allclose(MatrixScaler().fit(z, y).predict_proba(z), p_ref, atol=1e-6)


def test_vector_scaling_of_equal_scales_is_temperature_scaling() -> None:
    """Labels drawn from softmax(z / T) with no bias: a fits 1/T, b fits 0 (large N)."""
    rng = np.random.default_rng(3)
    z = rng.normal(size=(40_000, 3)) * 2.0
    p = softmax(z / 2.0, axis=1)
    y = (p.cumsum(axis=1) > rng.random((z.shape[0], 1))).argmax(axis=1)
    s = VectorScaler().fit(z, y)
    np.testing.assert_allclose(np.diag(s.coef_), 0.5, atol=0.02)
    np.testing.assert_allclose(s.intercept_, 0.0, atol=0.03)


@pytest.mark.parametrize(
    "est", [VectorScaler(), MatrixScaler(reg_lambda=1e-2, reg_mu=1e-2)], ids=["vector", "matrix"]
)
def test_improves_nll_on_digits(est: Any) -> None:
    z_cal, y_cal, z_test, y_test = digits_logits()
    before = nll(softmax(z_test, axis=1), y_test)
    after = nll(est.fit(z_cal, y_cal).predict_proba(z_test), y_test)
    assert after < 0.5 * before  # naive Bayes is badly over-confident: 2.48 before


def test_handles_logits_of_size_1e3() -> None:
    """Naive Bayes' log-likelihoods (|z| ~ 1e3) converge: the solver whitens its inputs."""
    z_cal, y_cal, _, _ = digits_logits()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibratorConvergenceWarning)
        s = MatrixScaler().fit(z_cal, y_cal)
    assert s.gradient_norm_ <= 1e-8


@pytest.mark.parametrize("cls", [VectorScaler, MatrixScaler])
def test_reproducible(cls: Any) -> None:
    z, y = simulated(300, 5, 7)
    a, b = cls().fit(z, y), cls().fit(z.copy(), y.copy())
    assert np.array_equal(a.coef_, b.coef_)
    assert np.array_equal(a.intercept_, b.intercept_)
    assert np.array_equal(a.predict_proba(z), b.predict_proba(z))


@pytest.mark.parametrize("cls", [VectorScaler, MatrixScaler])
def test_json_round_trip(cls: Any, tmp_path: Path) -> None:
    z, y = simulated(300, 4, 8)
    s = cls().fit(z, y)
    loaded = cls.from_json(s.to_json(tmp_path / "s.json"))
    assert np.array_equal(loaded.predict_proba(z), s.predict_proba(z))
    assert loaded.get_params() == s.get_params()


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.update(format="thermoscope.temperature"), "format"),
        (lambda d: d.update(version=2), "version"),
        (lambda d: d.update(coef=[[1.0, 0.0]]), "coef"),
        (lambda d: d.update(intercept="x"), "intercept"),
        (lambda d: d.update(coef=[[1.0, float("nan")], [0.0, 1.0]]), "coef"),
        (lambda d: d.update(params={"bogus": 1}), "params"),
        (lambda d: d.update(params={"tol": -1.0}), "params"),
    ],
)
def test_json_malformed(edit: Any, field: str, tmp_path: Path) -> None:
    s = MatrixScaler().fit(*simulated(200, 2, 9))
    path = s.to_json(tmp_path / "s.json")
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f"`{field}`"):
        MatrixScaler.from_json(path)


def test_json_vector_refuses_off_diagonal(tmp_path: Path) -> None:
    path = MatrixScaler().fit(*simulated(200, 2, 9)).to_json(tmp_path / "m.json")
    data = json.loads(path.read_text())
    data["format"] = "thermoscope.vector_scaler"
    data["params"] = {}
    data["coef"] = [[1.0, 0.5], [0.0, 1.0]]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"`coef`.*diagonal"):
        VectorScaler.from_json(path)


def test_json_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="`path`"):
        VectorScaler.from_json(tmp_path / "absent.json")


# --------------------------------------------------------------------------- bad input

Z, Y = simulated(50, 3, 10)


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"reg_lambda": -1.0}, ValueError, "reg_lambda"),
        ({"reg_lambda": float("nan")}, ValueError, "reg_lambda"),
        ({"reg_mu": "a"}, TypeError, "reg_mu"),
        ({"max_iter": 0}, ValueError, "max_iter"),
        ({"max_iter": 1.5}, TypeError, "max_iter"),
        ({"tol": 0.0}, ValueError, "tol"),
    ],
)
def test_bad_parameters(kwargs: dict[str, Any], exc: type[Exception], name: str) -> None:
    with pytest.raises(exc, match=f"`{name}` must be"):
        MatrixScaler(**kwargs).fit(Z, Y)


@pytest.mark.parametrize("cls", [VectorScaler, MatrixScaler])
@pytest.mark.parametrize(
    ("logits", "y", "exc", "name"),
    [
        (np.where(np.eye(50, 3, dtype=bool), np.nan, Z), Y, ValueError, "logits"),
        (np.where(np.eye(50, 3, dtype=bool), -np.inf, Z), Y, ValueError, "logits"),
        (np.where(np.eye(50, 3, dtype=bool), np.inf, Z), Y, ValueError, "logits"),
        (Z[:, :1], Y, ValueError, "logits"),
        (Z[0], Y, ValueError, "logits"),
        (Z, Y[:-1], ValueError, "y"),
        (Z, Y + 3, ValueError, "y"),
        (Z, Y + 0.5, TypeError, "y"),
        (Z, None, ValueError, "y"),
        (Z.astype(str), Y, TypeError, "logits"),
    ],
)
def test_bad_fit_input(cls: Any, logits: Any, y: Any, exc: type[Exception], name: str) -> None:
    with pytest.raises(exc, match=f"`{name}` must"):
        cls().fit(logits, y)


def test_sparse_refused() -> None:
    from scipy import sparse

    with pytest.raises(TypeError, match="`logits` must be a dense array"):
        VectorScaler().fit(sparse.csr_matrix(Z), Y)


@pytest.mark.parametrize("method", ["transform", "predict_proba", "predict"])
def test_bad_predict_input(method: str) -> None:
    s = MatrixScaler().fit(Z, Y)
    with pytest.raises(ValueError, match="`logits` must have 3 columns"):
        getattr(s, method)(Z[:, :2])
    with pytest.raises(ValueError, match="`logits` must not contain NaN"):
        getattr(s, method)(np.where(np.eye(50, 3, dtype=bool), np.nan, Z))
    with pytest.raises(ValueError, match="`logits` must be finite"):
        getattr(s, method)(np.where(np.eye(50, 3, dtype=bool), -np.inf, Z))
    with pytest.raises(ValueError, match="`logits` must be 2-D"):
        getattr(s, method)(Z[0])


@pytest.mark.parametrize("method", ["transform", "predict_proba", "predict", "to_json"])
def test_not_fitted(method: str, tmp_path: Path) -> None:
    sklearn_exceptions = pytest.importorskip("sklearn.exceptions")
    NotFittedError = sklearn_exceptions.NotFittedError

    arg = tmp_path / "x.json" if method == "to_json" else Z
    with pytest.raises(NotFittedError, match="not fitted"):
        getattr(VectorScaler(), method)(arg)


@pytest.mark.parametrize("max_iter", [3, 100])
def test_separable_data_warns(max_iter: int) -> None:
    z = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, 1.0]])
    with pytest.warns(CalibratorConvergenceWarning, match="separable|gradient norm"):
        VectorScaler(max_iter=max_iter).fit(z, [0, 1, 0, 1])


# --------------------------------------------------------------------------- dtypes and torch


def test_float32_and_integer_logits() -> None:
    s = MatrixScaler(reg_lambda=0.1).fit(Z, Y)
    out32 = s.transform(Z.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, s.transform(Z), rtol=1e-5, atol=1e-5)
    zi = np.round(Z).astype(np.int64)
    assert s.transform(zi).dtype == np.float64
    np.testing.assert_allclose(s.transform(zi), s.transform(zi.astype(np.float64)))


def test_float16_predict_proba() -> None:
    s = VectorScaler().fit(Z, Y)
    p16 = s.predict_proba(Z.astype(np.float16))
    assert p16.dtype == np.float16
    np.testing.assert_allclose(
        p16, s.predict_proba(Z.astype(np.float16).astype(np.float64)), atol=2e-3
    )


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16"])
def test_torch_matches_numpy(dtype: str) -> None:
    torch = pytest.importorskip("torch")
    s = MatrixScaler(reg_lambda=0.1).fit(Z, Y)
    zt = torch.tensor(Z, dtype=getattr(torch, dtype), requires_grad=True)
    out = s.predict_proba(zt)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == zt.dtype
    assert out.device == zt.device
    expected = s.predict_proba(zt.detach().to(torch.float64).numpy())
    tol = {"float64": 1e-12, "float32": 1e-5, "bfloat16": 2e-2}[dtype]
    np.testing.assert_allclose(out.detach().to(torch.float64).numpy(), expected, atol=tol)
    out[:, 0].sum().backward()  # the graph is kept
    assert zt.grad is not None
    assert torch.equal(s.predict(zt), torch.as_tensor(s.predict(Z)))


# --------------------------------------------------------------------------- property


def test_hypothesis_outputs_are_distributions() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")
    from hypothesis.extra import numpy as hnp

    s = MatrixScaler(reg_lambda=0.1, reg_mu=0.1).fit(Z, Y)

    @hypothesis.settings(max_examples=60, deadline=None)
    @hypothesis.given(
        hnp.arrays(np.float64, (4, 3), elements=st.floats(-1e4, 1e4, allow_nan=False))
    )
    def check(z: Any) -> None:
        p = s.predict_proba(z)
        assert np.all(p >= 0)
        assert np.allclose(p.sum(axis=1), 1.0)
        assert np.array_equal(s.predict(z), np.argmax(s.transform(z), axis=1))
        # Adding a constant to every logit of a row changes no prediction of the map's output.
        out = s.transform(z)
        np.testing.assert_allclose(softmax(out + 5.0, axis=1), p, atol=1e-12)
        np.testing.assert_allclose(np.exp(log_softmax(out, axis=1)), p, atol=1e-12)

    check()


# --------------------------------------------------------------------------- scikit-learn


def _expected_failures(est: Any) -> dict[str, str]:
    labels = "`y` indexes the logits' columns; this check draws 3 classes for 2 columns"
    return {
        "check_estimators_overwrite_params": labels,
        "check_estimators_fit_returns_self": labels,
        "check_readonly_memmap_input": labels,
        "check_complex_data": "complex logits are a TypeError (wrong kind of value), by convention",
        "check_dtype_object": "object arrays are refused as non-numeric (TypeError), by convention",
    }


def _sklearn_checks() -> Any:
    try:
        from sklearn.utils.estimator_checks import parametrize_with_checks
    except ImportError:  # the estimators never need scikit-learn; only this test does
        return pytest.mark.skip(reason="scikit-learn is not installed")

    with warnings.catch_warnings():
        # thermoscope's estimators follow the protocol without importing
        # scikit-learn, so they do not inherit BaseEstimator; the checks say so.
        warnings.filterwarnings("ignore", "Estimator .* does not inherit", UserWarning)
        return parametrize_with_checks(
            [VectorScaler(), MatrixScaler(reg_lambda=1e-2, reg_mu=1e-2)],
            expected_failed_checks=_expected_failures,
        )


# The checks fit on random or perfectly separable data, where an unpenalised
# logit scale grows without bound: that warning is the documented answer.
@pytest.mark.filterwarnings(
    "ignore::thermoscope.calibration.linear_scalers.CalibratorConvergenceWarning"
)
@_sklearn_checks()
def test_sklearn_compatible(estimator: Any, check: Any) -> None:
    check(estimator)


@pytest.mark.parametrize("cls", [VectorScaler, MatrixScaler])
def test_conjugate_gradient_path_agrees_with_dense(
    cls: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ill-conditioned data (naive Bayes on digits) by both solver paths: the same optimum."""
    import thermoscope.calibration.linear_scalers as module

    z_cal, y_cal, _, _ = digits_logits()
    z_cal, y_cal = z_cal[:300], y_cal[:300]
    # Conjugate gradients alone need more Newton steps here (133 against 42).
    est = cls(reg_lambda=0.1, reg_mu=0.1, max_iter=400) if cls is MatrixScaler else cls()
    dense = clone_fit(est, z_cal, y_cal)
    monkeypatch.setattr(module, "_DENSE_WORK", 0.0)  # conjugate gradients only
    sparse = clone_fit(est, z_cal, y_cal)
    assert sparse.gradient_norm_ <= sparse.tol
    np.testing.assert_allclose(sparse.predict_proba(z_cal), dense.predict_proba(z_cal), atol=1e-7)


def clone_fit(est: Any, z: Any, y: Any) -> Any:
    return type(est)(**est.get_params()).fit(z, y)
