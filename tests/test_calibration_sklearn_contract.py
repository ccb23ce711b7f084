"""The scikit-learn estimator contract for TemperatureScaler and TemperatureScaledClassifier.

scikit-learn's own checks run on both estimators (``parametrize_with_checks``).
The few that cannot apply are declared below with a one-line reason each and
run as strict xfails, so a declared check that starts passing is reported.
The real bugs the checks found have regression tests named after them.
"""

from __future__ import annotations

import pickle
import warnings
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import get_scorer, roc_auc_score
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from thermoscope.calibration.classifier import TemperatureScaledClassifier
from thermoscope.calibration.scaler import NotFittedError, TemperatureScaler

# The checks fit on random data, where the NLL optimum may lie beyond a bound:
# that is the documented TemperatureBoundWarning, not a failure of the contract.
pytestmark = pytest.mark.filterwarnings(
    "ignore::thermoscope.calibration.fit.TemperatureBoundWarning"
)

_WORDING = "raises the right exception type, in thermoscope's wording (`name` must be ..., got ...)"
_LABELS_BEYOND_COLUMNS = (
    "X holds one logit column per class; this check's y has a class index >= X's column count"
)
SCALER_EXPECTED_FAILURES = {
    "check_estimators_overwrite_params": _LABELS_BEYOND_COLUMNS,
    "check_estimators_fit_returns_self": _LABELS_BEYOND_COLUMNS,
    "check_readonly_memmap_input": _LABELS_BEYOND_COLUMNS,
    "check_fit2d_1feature": "one column is one class; y has labels 1, 2 that it cannot hold",
    "check_complex_data": "complex logits are a TypeError naming `logits`, not its ValueError",
    "check_dtype_object": "object arrays are refused (TypeError naming `logits`), never guessed",
    "check_estimators_empty_data_messages": "empty logits are a ValueError; " + _WORDING,
    "check_n_features_in_after_fitting": "a column-count mismatch is a ValueError; " + _WORDING,
}
CLASSIFIER_EXPECTED_FAILURES = {
    "check_supervised_y_2d": "a column-vector y is a ValueError naming `y`, not raveled silently",
}


def _expected_failures(estimator: Any) -> dict[str, str]:
    if isinstance(estimator, TemperatureScaler):
        return SCALER_EXPECTED_FAILURES
    return CLASSIFIER_EXPECTED_FAILURES


with warnings.catch_warnings():
    # thermoscope's estimators follow the protocol through `_params.Params` instead of
    # inheriting BaseEstimator, so that `import thermoscope` never imports scikit-learn.
    warnings.filterwarnings("ignore", "Estimator .* does not inherit from", UserWarning)
    _checks = parametrize_with_checks(
        [
            TemperatureScaler(),
            TemperatureScaledClassifier(LogisticRegression(), validation_fraction=0.3),
        ],
        expected_failed_checks=_expected_failures,
        xfail_strict=True,
    )


@_checks
def test_sklearn_estimator_checks(estimator: Any, check: Any) -> None:
    check(estimator)


# ---------------------------------------------------------------------------
# Regression tests, one per bug the checks found


def _binary_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = (X @ np.array([1.5, -1.0, 0.5]) + rng.logistic(size=400) > 0).astype(int)
    return X, y


def test_binary_decision_function_shape_n() -> None:
    X, y = _binary_data()
    model = LogisticRegression().fit(X[:200], y[:200])
    clf = TemperatureScaledClassifier(model).fit(X[200:], y[200:])
    d = clf.decision_function(X[200:])
    assert d.shape == (200,)
    # The calibrated log-odds: sigmoid(d) is predict_proba's second column, independently.
    p1 = clf.predict_proba(X[200:])[:, 1]
    np.testing.assert_allclose(1.0 / (1.0 + np.exp(-d)), p1, rtol=1e-12)
    # and d is the model's own decision value divided by T.
    np.testing.assert_allclose(d, model.decision_function(X[200:]) / clf.temperature_, rtol=1e-12)


def test_binary_decision_function_roc_auc_scorer() -> None:
    X, y = _binary_data()
    model = LogisticRegression().fit(X[:200], y[:200])
    clf = TemperatureScaledClassifier(model).fit(X[200:], y[200:])
    scorer = get_scorer("roc_auc")
    # T > 0 is monotone: the AUC is the model's own, computed independently.
    assert scorer(clf, X[200:], y[200:]) == pytest.approx(
        roc_auc_score(y[200:], model.decision_function(X[200:])), rel=1e-12
    )
    scores = cross_val_score(
        TemperatureScaledClassifier(LogisticRegression(), validation_fraction=0.3),
        X,
        y,
        scoring="roc_auc",
        cv=3,
    )
    assert scores.shape == (3,)
    assert np.all(scores > 0.7)


def test_multiclass_decision_function_keeps_columns() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    y = np.argmax(X[:, :3] + rng.gumbel(size=(300, 3)), axis=1)
    model = LogisticRegression().fit(X[:150], y[:150])
    clf = TemperatureScaledClassifier(model).fit(X[150:], y[150:])
    d = clf.decision_function(X[150:])
    assert d.shape == (150, 3)
    np.testing.assert_allclose(d, model.decision_function(X[150:]) / clf.temperature_)


@pytest.mark.parametrize("make", [TemperatureScaler, lambda: TemperatureScaledClassifier(abs)])
def test_fit_y_none_clear_error(make: Any) -> None:
    est = make()
    with pytest.raises(ValueError, match=r"^`y` must be the labels.*got None\.$"):
        est.fit(np.array([[1.0, 0.0], [0.0, 1.0]]), None)


@pytest.mark.parametrize("y", [[0.5, 1.2, 0.0, 1.0], [0.0, 1.0, np.nan, 1.0]])
def test_classifier_continuous_y_clear_error(y: list[float]) -> None:
    X, _ = _binary_data()
    clf = TemperatureScaledClassifier(LogisticRegression().fit(X, _))
    with pytest.raises(ValueError, match=r"^`y` must be class labels .*continuous"):
        clf.fit(X[:4], y)


def test_classifier_whole_float_labels_still_work() -> None:
    X, y = _binary_data()
    model = LogisticRegression().fit(X[:200], y[:200])
    a = TemperatureScaledClassifier(model).fit(X[200:], y[200:].astype(float))
    b = TemperatureScaledClassifier(model).fit(X[200:], y[200:])
    assert a.temperature_ == b.temperature_


def test_n_features_in() -> None:
    z = np.array([[2.0, 0.0, 1.0], [0.0, 1.0, 3.0], [1.0, 0.5, 0.0]])
    scaler = TemperatureScaler().fit(z, [0, 2, 1])
    assert scaler.n_features_in_ == 3
    for method in (scaler.transform, scaler.predict_proba, scaler.predict):
        with pytest.raises(ValueError, match=r"^`logits` must have 3 columns"):
            method(z[:, :2])
    X, y = _binary_data()
    clf = TemperatureScaledClassifier(LogisticRegression(), validation_fraction=0.5).fit(X, y)
    assert clf.n_features_in_ == 3


def test_n_features_in_survives_json(tmp_path: Any) -> None:
    z = np.array([[2.0, 0.0, 1.0], [0.0, 1.0, 3.0], [1.0, 0.5, 0.0]])
    scaler = TemperatureScaler().fit(z, [0, 2, 1])
    loaded = TemperatureScaler.from_json(scaler.to_json(tmp_path / "t.json"))
    assert loaded.n_features_in_ == 3


def test_scaler_fit_transform() -> None:
    z = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    out = TemperatureScaler().fit_transform(z, [0, 1, 1])
    # T = 1 / ln 2 in closed form (sigmoid(1 / T) = 2 / 3).
    np.testing.assert_allclose(out, z * np.log(2.0), rtol=1e-12)
    out32 = TemperatureScaler().fit_transform(z.astype(np.float32), [0, 1, 1])
    assert out32.dtype == np.float32


@pytest.mark.parametrize("method", ["transform", "predict_proba", "predict"])
def test_scaler_1d_logits_refused(method: str) -> None:
    scaler = TemperatureScaler().fit(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), [0, 1, 1])
    with pytest.raises(ValueError, match=r"^`logits` must be 2-D .*Reshape your data"):
        getattr(scaler, method)(np.array([1.0, 0.0]))


def test_scaler_sparse_refused() -> None:
    sparse = pytest.importorskip("scipy.sparse")
    z = sparse.csr_array(np.array([[1.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(TypeError, match=r"^`logits` must be a dense array .*sparse"):
        TemperatureScaler().fit(z, [0, 1])


def test_classifier_sparse_tag_follows_estimator() -> None:
    from sklearn.utils import get_tags

    sparse = pytest.importorskip("scipy.sparse")
    assert get_tags(TemperatureScaledClassifier(LogisticRegression())).input_tags.sparse
    assert not get_tags(TemperatureScaledClassifier(abs)).input_tags.sparse
    X, y = _binary_data()
    Xs = sparse.csr_array(X)
    clf = TemperatureScaledClassifier(LogisticRegression(), validation_fraction=0.3).fit(Xs, y)
    dense = TemperatureScaledClassifier(LogisticRegression(), validation_fraction=0.3).fit(X, y)
    assert clf.temperature_ == pytest.approx(dense.temperature_, rel=1e-6)
    with pytest.raises(TypeError, match=r"^`X` must be a dense array"):
        TemperatureScaledClassifier(lambda X: np.asarray(X)).fit(Xs, y)


@pytest.mark.parametrize(
    "est", [TemperatureScaler(), TemperatureScaledClassifier(LogisticRegression())]
)
def test_not_fitted_is_sklearns_not_fitted(est: Any) -> None:
    with pytest.raises(SklearnNotFittedError) as info:
        est.predict_proba(np.array([[0.0, 1.0]]))
    assert isinstance(info.value, NotFittedError)
    # It pickles (joblib workers send exceptions back) as thermoscope's class.
    back = pickle.loads(pickle.dumps(info.value))
    assert type(back) is NotFittedError
    assert str(back) == str(info.value)


def test_scaler_predict_refuses_bad_rows_like_predict_proba() -> None:
    scaler = TemperatureScaler().fit(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), [0, 1, 1])
    for row in ([np.nan, 0.0], [np.inf, 0.0], [-np.inf, -np.inf]):
        for method in (scaler.predict, scaler.predict_proba, scaler.transform):
            with pytest.raises(ValueError, match=r"^`logits` must"):
                method(np.array([row]))


def test_in_pipeline_with_clone() -> None:
    X, y = _binary_data()
    pipe = make_pipeline(
        StandardScaler(), TemperatureScaledClassifier(LogisticRegression(), validation_fraction=0.3)
    )
    fitted = clone(pipe).fit(X, y)
    assert fitted.predict_proba(X).shape == (400, 2)
    assert fitted.decision_function(X).shape == (400,)


def test_scaler_continuous_y_clear_error() -> None:
    with pytest.raises(TypeError, match=r"^`y` must be integer class indices, got dtype float64"):
        TemperatureScaler().fit(np.array([[1.0, 0.0], [0.0, 1.0]]), [0.5, 1.0])
