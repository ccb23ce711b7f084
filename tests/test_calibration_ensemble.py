"""EnsembleTemperatureScaler: T and the simplex weights against direct scipy fits, and the contract.

The reference is Zhang, Kailkhura and Han's code (github zhang64-llnl/Mix-n-Match-Calibration,
``util_calibration.py``: ``temperature_scaling``, ``ensemble_scaling``, ``ll_w``, ``mse_w``):
its losses are transcribed here and minimised with the same SLSQP call.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import optimize
from scipy.special import log_softmax, softmax

from thermoscope.calibration.ensemble import (
    EnsembleTemperatureScaler,
    mse_objective,
    nll_objective,
    simplex_minimum,
)


def simulated(n: int, k: int, seed: int, t: float, noise: float = 0.0) -> tuple[Any, Any]:
    """Labels from softmax(z / t), a fraction ``noise`` of them replaced by uniform ones."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 3.0
    p = (1 - noise) * softmax(z / t, axis=1) + noise / k
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


def components(z: Any, t: float) -> list[Any]:
    k = z.shape[1]
    return [softmax(z / t, axis=1), softmax(z, axis=1), np.full(z.shape, 1.0 / k)]


def reference_weights(parts: list[Any], y: Any, loss: str) -> Any:
    """The authors' ensemble_scaling: SLSQP from (1, 0, 0) on their ll_w / mse_w."""
    onehot = np.eye(parts[0].shape[1])[y]

    def ll_w(w: Any) -> float:
        p = w[0] * parts[0] + w[1] * parts[1] + w[2] * parts[2]
        return float(-np.sum(onehot * np.log(p)) / p.shape[0])

    def mse_w(w: Any) -> float:
        p = w[0] * parts[0] + w[1] * parts[1] + w[2] * parts[2]
        p = p / np.sum(p, 1)[:, None]
        return float(np.mean((p - onehot) ** 2))

    res = optimize.minimize(
        ll_w if loss == "nll" else mse_w,
        (1.0, 0.0, 0.0),
        method="SLSQP",
        constraints={"type": "eq", "fun": lambda w: np.sum(w) - 1},
        bounds=((0.0, 1.0),) * 3,
        tol=1e-12,
    )
    return res.x


def kkt_gap(f: Any, w: Any) -> float:
    """Optimality on the simplex: max over vertices of grad . (w - vertex) (0 at the optimum)."""
    g = f(w)[1]
    return float(g @ w - g.min())


CASES = [
    pytest.param(2.0, 0.0, id="over-confident"),
    pytest.param(0.5, 0.0, id="under-confident"),
    pytest.param(1.0, 0.0, id="calibrated"),
    pytest.param(2.0, 0.4, id="label-noise"),
    pytest.param(1.0, 1.0, id="random-labels"),
]


@pytest.mark.parametrize(("t", "noise"), CASES)
@pytest.mark.parametrize("loss", ["nll", "mse"])
def test_weights_match_reference_slsqp(t: float, noise: float, loss: str) -> None:
    z, y = simulated(3000, 5, 1, t, noise)
    ets = EnsembleTemperatureScaler(loss=loss).fit(z, y)
    parts = components(z, ets.temperature_)
    make = nll_objective if loss == "nll" else mse_objective
    f = make(parts, y)
    w_ref = reference_weights(parts, y, loss)
    # Ours is at least as good as SLSQP's and satisfies the KKT conditions.
    assert f(ets.weights_)[0] <= f(w_ref)[0] + 1e-12
    assert kkt_gap(f, ets.weights_) < 1e-9
    assert np.all(ets.weights_ >= 0)
    assert abs(ets.weights_.sum() - 1) < 1e-12
    np.testing.assert_allclose(ets.weights_, w_ref, atol=2e-4)


@pytest.mark.parametrize("seed", range(5))
def test_simplex_minimum_quadratics(seed: int) -> None:
    """Random convex quadratics with the optimum anywhere: vertex, edge or interior."""
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(3, 3))
    a = m @ m.T + 1e-3 * np.eye(3)
    c = rng.normal(size=3) * 2

    def f(w: Any) -> tuple[float, Any, Any]:
        return float(w @ a @ w - 2 * c @ w), 2 * (a @ w - c), 2 * a

    w = simplex_minimum(f, 3)
    assert kkt_gap(f, w) < 1e-10
    best = min(
        (
            f(np.array([u, v, 1 - u - v]))[0]
            for u in np.linspace(0, 1, 201)
            for v in np.linspace(0, 1, 201)
            if u + v <= 1
        ),
    )
    assert f(w)[0] <= best + 1e-12


def test_nll_temperature_matches_direct_minimisation() -> None:
    z, y = simulated(2000, 4, 2, 2.0)
    ets = EnsembleTemperatureScaler(loss="nll").fit(z, y)
    rows = np.arange(y.size)
    res = optimize.minimize_scalar(
        lambda u: -np.mean(log_softmax(z / math.exp(u), axis=1)[rows, y]),
        bounds=(-3, 3),
        method="bounded",
        options={"xatol": 1e-12},
    )
    assert abs(math.log(ets.temperature_) - res.x) < 1e-6


def test_mse_temperature_matches_direct_minimisation() -> None:
    """The authors' mse_t (mean over N K entries) has the same minimiser as our Brier score."""
    z, y = simulated(2000, 4, 3, 2.0)
    ets = EnsembleTemperatureScaler(loss="mse").fit(z, y)
    onehot = np.eye(4)[y]
    res = optimize.minimize(
        lambda t: float(np.mean((softmax(z / t[0], axis=1) - onehot) ** 2)),
        np.array([1.0]),
        method="L-BFGS-B",
        bounds=((0.05, 5.0),),
        tol=1e-14,
    )
    assert abs(ets.temperature_ - res.x[0]) < 1e-4


def test_calibrated_model_keeps_its_probabilities() -> None:
    """Labels drawn from softmax(z): ETS stays close to it (weights near T = 1's mixture)."""
    z, y = simulated(50_000, 4, 4, 1.0)
    ets = EnsembleTemperatureScaler(loss="nll").fit(z, y)
    np.testing.assert_allclose(ets.predict_proba(z), softmax(z, axis=1), atol=0.02)


@pytest.mark.parametrize("loss", ["mse", "nll"])
def test_improves_nll_on_digits(loss: str) -> None:
    z_cal, y_cal, z_test, y_test = digits_logits()
    rows = np.arange(y_test.size)
    before = -np.mean(log_softmax(z_test, axis=1)[rows, y_test])
    p = EnsembleTemperatureScaler(loss=loss).fit(z_cal, y_cal).predict_proba(z_test)
    assert -np.mean(np.log(p[rows, y_test])) < 0.25 * before


def test_outputs() -> None:
    z, y = simulated(500, 3, 5, 2.0, 0.2)
    ets = EnsembleTemperatureScaler().fit(z, y)
    p = ets.predict_proba(z)
    w0, w1, w2 = ets.weights_
    expected = w0 * softmax(z / ets.temperature_, axis=1) + w1 * softmax(z, axis=1) + w2 / 3
    np.testing.assert_allclose(p, expected, atol=1e-15)
    np.testing.assert_allclose(softmax(ets.transform(z), axis=1), p, atol=1e-14)
    assert np.array_equal(ets.predict(z), z.argmax(axis=1))
    np.testing.assert_allclose(ets.fit_transform(z, y), ets.transform(z))


def test_masked_logits_are_allowed() -> None:
    """-inf marks a masked class: it gets only the uniform share, w2 / K."""
    z, y = simulated(500, 3, 6, 2.0, 0.2)
    ets = EnsembleTemperatureScaler().fit(z, y)
    zm = z.copy()
    zm[:, 2] = -np.inf
    p = ets.predict_proba(zm)
    np.testing.assert_allclose(p[:, 2], ets.weights_[2] / 3, atol=1e-15)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_reproducible_and_json(tmp_path: Path) -> None:
    z, y = simulated(800, 4, 7, 2.0, 0.1)
    a = EnsembleTemperatureScaler().fit(z, y)
    b = EnsembleTemperatureScaler().fit(z.copy(), y.copy())
    assert a.temperature_ == b.temperature_
    assert np.array_equal(a.weights_, b.weights_)
    loaded = EnsembleTemperatureScaler.from_json(a.to_json(tmp_path / "e.json"))
    assert np.array_equal(loaded.predict_proba(z), a.predict_proba(z))
    assert loaded.get_params() == a.get_params()


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.update(weights=[0.5, 0.6, -0.1]), "weights"),
        (lambda d: d.update(weights=[0.5, 0.5]), "weights"),
        (lambda d: d.update(temperature=0), "temperature"),
        (lambda d: d.update(n_classes=1), "n_classes"),
        (lambda d: d.update(params={"loss": "l1"}), "params"),
        (lambda d: d.update(version=0), "version"),
    ],
)
def test_json_malformed(edit: Any, field: str, tmp_path: Path) -> None:
    path = (
        EnsembleTemperatureScaler()
        .fit(*simulated(300, 3, 8, 2.0, 0.1))
        .to_json(tmp_path / "e.json")
    )
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f"`{field}`"):
        EnsembleTemperatureScaler.from_json(path)


Z, Y = simulated(60, 3, 9, 2.0, 0.2)


@pytest.mark.parametrize(
    ("kwargs", "logits", "y", "exc", "name"),
    [
        ({"loss": "l2"}, Z, Y, ValueError, "loss"),
        ({"max_iter": 0}, Z, Y, ValueError, "max_iter"),
        ({"min_temperature": -1.0}, Z, Y, ValueError, "min_temperature"),
        ({}, np.where(np.eye(60, 3, dtype=bool), np.nan, Z), Y, ValueError, "logits"),
        ({}, Z[:, :1], Y, ValueError, "logits"),
        ({}, Z, Y[:3], ValueError, "y"),
        ({}, Z, None, ValueError, "y"),
        ({}, Z, Y + 0.5, TypeError, "y"),
    ],
)
def test_bad_input(
    kwargs: dict[str, Any], logits: Any, y: Any, exc: type[Exception], name: str
) -> None:
    with pytest.raises(exc, match=f"`{name}` must"):
        EnsembleTemperatureScaler(**kwargs).fit(logits, y)


def test_bad_predict_input() -> None:
    ets = EnsembleTemperatureScaler().fit(Z, Y)
    with pytest.raises(ValueError, match="`logits` must have 3 columns"):
        ets.predict_proba(Z[:, :2])
    with pytest.raises(ValueError, match="`logits` must be finite or -inf"):
        ets.predict(np.where(np.eye(60, 3, dtype=bool), np.inf, Z))


@pytest.mark.parametrize("dtype", ["float64", "float16"])
def test_torch_matches_numpy(dtype: str) -> None:
    torch = pytest.importorskip("torch")
    ets = EnsembleTemperatureScaler().fit(Z, Y)
    zt = torch.tensor(Z, dtype=getattr(torch, dtype), requires_grad=True)
    out = ets.predict_proba(zt)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == zt.dtype
    expected = ets.predict_proba(zt.detach().to(torch.float64).numpy())
    tol = {"float64": 1e-14, "float16": 2e-3}[dtype]
    np.testing.assert_allclose(out.detach().to(torch.float64).numpy(), expected, atol=tol)
    ets.transform(zt)[:, 0].sum().backward()
    assert zt.grad is not None


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
            [EnsembleTemperatureScaler()], expected_failed_checks=lambda est: expected
        )


# The checks fit on random or separable data, where T sits at a bound: the
# temperature fit's documented warnings are the answer there.
@pytest.mark.filterwarnings("ignore::thermoscope.calibration.fit.TemperatureBoundWarning")
@_sklearn_checks()
def test_sklearn_compatible(estimator: Any, check: Any) -> None:
    check(estimator)


def test_hypothesis_outputs_are_distributions() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")
    from hypothesis.extra import numpy as hnp

    ets = EnsembleTemperatureScaler().fit(*simulated(400, 3, 12, 2.0, 0.3))
    w2 = ets.weights_[2]

    @hypothesis.settings(max_examples=80, deadline=None)
    @hypothesis.given(
        hnp.arrays(np.float64, (4, 3), elements=st.floats(-1e4, 1e4, allow_nan=False)),
        st.floats(-1e3, 1e3),
    )
    def check(z: Any, shift: float) -> None:
        p = ets.predict_proba(z)
        assert np.all(p >= w2 / 3 - 1e-15)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
        # Every component is a softmax or uniform: a constant added to a row changes nothing.
        np.testing.assert_allclose(ets.predict_proba(z + shift), p, atol=1e-9)
        top = p.max(axis=1)
        assert np.all(p[np.arange(4), z.argmax(axis=1)] == top)

    check()
