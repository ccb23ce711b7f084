"""TemperatureScaledClassifier: the same T as scikit-learn's CalibratedClassifierCV, and more."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import special

pytest.importorskip("sklearn")

from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB

from thermoscope.calibration.classifier import TemperatureScaledClassifier
from thermoscope.calibration.fit import fit_temperature
from thermoscope.calibration.scaler import NotFittedError

#: scikit-learn stops bounded Brent at about sqrt(eps) relative in log beta;
#: thermoscope solves to machine precision. 1e-6 covers that with margin.
SKLEARN_RTOL = 1e-6


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, ...]:
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return tuple(train_test_split(X, y, test_size=0.4, random_state=0, stratify=y))


def sklearn_temperature(model: Any, X: np.ndarray, y: np.ndarray) -> tuple[float, Any]:
    cal = CalibratedClassifierCV(FrozenEstimator(model), method="temperature").fit(X, y)
    return 1.0 / float(cal.calibrated_classifiers_[0].calibrators[0].beta_), cal


@pytest.mark.parametrize(
    "model",
    [LogisticRegression(C=1.0, max_iter=5000), LogisticRegression(C=0.01, max_iter=5000)],
    ids=["logreg-C1", "logreg-C0.01"],
)
def test_same_temperature_as_sklearn_decision_function(
    digits: tuple[np.ndarray, ...], model: Any
) -> None:
    X_train, X_val, y_train, y_val = digits
    model.fit(X_train, y_train)
    ours = TemperatureScaledClassifier(model).fit(X_val, y_val)
    t_sk, cal = sklearn_temperature(model, X_val, y_val)
    assert ours.temperature_ == pytest.approx(t_sk, rel=SKLEARN_RTOL)
    np.testing.assert_allclose(ours.predict_proba(X_val), cal.predict_proba(X_val), atol=1e-6)
    np.testing.assert_array_equal(ours.predict(X_val), model.predict(X_val))


def test_same_temperature_as_sklearn_predict_proba(digits: tuple[np.ndarray, ...]) -> None:
    X_train, X_val, y_train, y_val = digits
    model = GaussianNB().fit(X_train, y_train)  # predict_proba only, with exact zeros
    ours = TemperatureScaledClassifier(model).fit(X_val, y_val)
    t_sk, _ = sklearn_temperature(model, X_val, y_val)
    assert ours.temperature_ == pytest.approx(t_sk, rel=SKLEARN_RTOL)
    # Independent: the same T from log(p + 1e-12) and fit_temperature.
    z = np.log(model.predict_proba(X_val) + 1e-12)
    assert ours.temperature_ == fit_temperature(z, y_val).temperature


def test_binary_decision_function_is_half_sklearns_temperature(
    digits: tuple[np.ndarray, ...],
) -> None:
    X_train, X_val, y_train, y_val = digits
    keep_train, keep_val = np.isin(y_train, (3, 8)), np.isin(y_val, (3, 8))
    # Labels 0/1: scikit-learn 1.9 does not encode integer labels for temperature scaling.
    yb_train, yb_val = (y_train[keep_train] == 8).astype(int), (y_val[keep_val] == 8).astype(int)
    model = LogisticRegression(C=1e-3, max_iter=5000).fit(X_train[keep_train], yb_train)
    ours = TemperatureScaledClassifier(model).fit(X_val[keep_val], yb_val)
    t_sk, cal = sklearn_temperature(model, X_val[keep_val], yb_val)
    # thermoscope's logits are (0, d), scikit-learn's (-d, d): twice the gap, twice the T.
    assert t_sk == pytest.approx(2 * ours.temperature_, rel=SKLEARN_RTOL)
    np.testing.assert_allclose(
        ours.predict_proba(X_val[keep_val]), cal.predict_proba(X_val[keep_val]), atol=1e-6
    )
    d = model.decision_function(X_val[keep_val])
    expected = special.expit(d / ours.temperature_)
    np.testing.assert_allclose(ours.predict_proba(X_val[keep_val])[:, 1], expected, rtol=1e-12)


def test_string_classes_and_held_out_split(digits: tuple[np.ndarray, ...]) -> None:
    X_train, _, y_train, _ = digits
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    y = names[y_train]
    base = LogisticRegression(C=0.1, max_iter=5000)
    clf = TemperatureScaledClassifier(base, validation_fraction=0.3, random_state=1).fit(X_train, y)
    assert not hasattr(base, "coef_")  # the given estimator is cloned, never fitted
    X_fit, X_val, y_fit, y_val = train_test_split(
        X_train, y, test_size=0.3, stratify=y, random_state=1
    )
    model = LogisticRegression(C=0.1, max_iter=5000).fit(X_fit, y_fit)
    z = model.decision_function(X_val)
    ref = fit_temperature(z, np.searchsorted(model.classes_, y_val)).temperature
    assert clf.temperature_ == pytest.approx(ref, rel=1e-12)
    assert set(clf.predict(X_val)) <= set(names)
    assert clf.score(X_val, y_val) == pytest.approx(model.score(X_val, y_val))


def test_callable_torch_model_returns_logits() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 5)).astype(np.float32)
    W = rng.standard_normal((5, 3)).astype(np.float32) * 3
    y = np.argmax(X @ W / 3 + rng.gumbel(size=(400, 3)), axis=1)
    net = torch.nn.Linear(5, 3, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.from_numpy(W.T))
    clf = TemperatureScaledClassifier(lambda x: net(torch.from_numpy(np.asarray(x))))
    clf.fit(X, y)
    assert clf.temperature_ == pytest.approx(fit_temperature(X @ W, y).temperature, rel=1e-5)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    probs = clf.predict_proba(X)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(np.argmax(probs, axis=1), np.argmax(X @ W, axis=1))


def test_errors(digits: tuple[np.ndarray, ...]) -> None:
    X_train, X_val, y_train, y_val = digits
    model = GaussianNB().fit(X_train, y_train)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        TemperatureScaledClassifier(model).predict(X_val)
    with pytest.raises(
        ValueError, match=r"`y` must contain only the estimator's classes .* got 11"
    ):
        TemperatureScaledClassifier(model).fit(X_val[:3], [0, 1, 11])
    with pytest.raises(ValueError, match="`response` must be one of 'auto'"):
        TemperatureScaledClassifier(model, response="proba").fit(X_val, y_val)
    with pytest.raises(ValueError, match="GaussianNB has no decision_function"):
        TemperatureScaledClassifier(model, response="decision_function").fit(X_val, y_val)
    with pytest.raises(ValueError, match=r"`validation_fraction` must be None or in \(0, 1\)"):
        TemperatureScaledClassifier(model, validation_fraction=1.5).fit(X_val, y_val)
    with pytest.raises(ValueError, match="`validation_fraction` must be None when `estimator`"):
        TemperatureScaledClassifier(np.asarray, validation_fraction=0.2).fit(X_val, y_val)
    with pytest.raises(TypeError, match="`estimator` must be a scikit-learn classifier"):
        TemperatureScaledClassifier(42).fit(X_val, y_val)
    with pytest.raises(ValueError, match=r"`y` must be class indices in \[0, 1\], got 2"):
        TemperatureScaledClassifier(np.asarray).fit([[1.0, 0.0], [0.0, 1.0]], [0, 2])
    with pytest.raises(ValueError, match=r"`X` must give one row of logits per label \(3\)"):
        TemperatureScaledClassifier(np.asarray).fit([[1.0, 0.0], [0.0, 1.0]], [0, 1, 1])
    with pytest.raises(ValueError, match="`bogus` must be one of the parameters"):
        TemperatureScaledClassifier(model).set_params(bogus=1)
