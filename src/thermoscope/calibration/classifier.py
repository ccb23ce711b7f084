"""Temperature scaling for a fitted scikit-learn classifier, or any function returning logits.

Comparison with scikit-learn's ``CalibratedClassifierCV(method="temperature")``
------------------------------------------------------------------------------
Both fit one temperature by minimising the validation log loss of
``softmax(logits / T)``; on the same logits and labels they find the same
``T``. The differences:

- **What is fitted where.** `TemperatureScaledClassifier` wraps an already
  fitted model and fits ``T`` on the validation data given to ``fit`` (or,
  with ``validation_fraction``, fits a clone of the model on the rest and
  ``T`` on a stratified held-out split). ``CalibratedClassifierCV`` by default
  refits clones on cross-validation folds and averages an ensemble of
  (model, ``T``) pairs; the like-for-like comparison is
  ``CalibratedClassifierCV(FrozenEstimator(model), method="temperature")``.
- **Solver.** scikit-learn runs ``scipy.optimize.minimize_scalar`` (bounded
  Brent) on ``log beta`` in ``[-10, 10]``; its stopping rule is relative
  ``sqrt(eps)`` in ``log beta``, so its ``T`` is good to about 1e-8
  relative. thermoscope runs safeguarded Newton on the convex NLL in
  ``beta`` to machine precision. The tests compare them at 1e-6 relative.
- **Logits.** Both prefer ``decision_function`` and fall back to
  ``predict_proba``. For a *binary* ``decision_function`` ``d`` (one column),
  thermoscope uses the logits ``(0, d)``, so ``T = 1`` reproduces
  ``LogisticRegression.predict_proba``; scikit-learn uses ``(-d, d)``, which
  doubles the logit gap, so its fitted ``T`` is exactly twice thermoscope's
  (the calibrated probabilities are identical). For ``predict_proba`` both
  use ``log(p + 1e-12)`` (the floor keeps a zero probability finite).
- **Integer labels.** scikit-learn 1.9 label-encodes ``y`` for temperature
  scaling only when the labels are strings, so integer labels other than
  ``0 .. C-1`` (say ``{3, 8}``) give it a wrong ``T`` silently; thermoscope
  maps ``y`` through ``classes_`` whatever its type.
- thermoscope accepts any callable returning logits (a torch model, a
  function) and saves ``T`` as JSON; scikit-learn supports sample weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thermoscope._arrays import to_numpy
from thermoscope._params import Params
from thermoscope._typing import Array, IntArray
from thermoscope.calibration._inputs import check_choice, numpy_labels
from thermoscope.calibration.fit import MAX_TEMPERATURE, MIN_TEMPERATURE
from thermoscope.calibration.scaler import (
    TemperatureScaler,
    check_dense,
    check_fit_target,
    not_fitted_error,
)

__all__ = ["TemperatureScaledClassifier"]

_RESPONSES = ("auto", "decision_function", "predict_proba")


def _is_sklearn_classifier(obj: object) -> bool:
    return hasattr(obj, "fit") and (
        hasattr(obj, "decision_function") or hasattr(obj, "predict_proba")
    )


def _check_class_labels(y: Any) -> None:
    """Refuse regression targets: float labels that are not whole numbers (or not finite)."""
    arr = np.asarray(y)
    if arr.dtype.kind in "fc" and arr.size:
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(arr) & (arr == np.round(arr))
        if not np.all(whole):
            first = arr.ravel()[int(np.argmin(whole.ravel()))]
            raise ValueError(
                "`y` must be class labels (integers or strings), got continuous values "
                f"such as {first!r}; a classifier cannot be fitted on a regression target."
            )


class TemperatureScaledClassifier(Params):
    """A classifier whose probabilities are ``softmax(logits / T)``, ``T`` fitted on held-out data.

    Parameters
    ----------
    estimator : fitted scikit-learn classifier or callable
        A classifier with ``decision_function`` or ``predict_proba`` (fitted,
        unless ``validation_fraction`` is set), or any callable mapping ``X``
        to logits of shape ``(n_samples, n_classes)`` (numpy or torch), whose
        classes are then ``0 .. n_classes - 1``.
    response : {"auto", "decision_function", "predict_proba"}, default "auto"
        Where logits come from: ``decision_function`` when available
        ("auto"), else ``log(predict_proba + proba_floor)``. A binary
        ``decision_function`` ``d`` becomes the logits ``(0, d)`` (see the
        module docstring for scikit-learn's ``(-d, d)``).
    validation_fraction : float in (0, 1) or None, default None
        None: ``estimator`` is already fitted and ``fit(X, y)`` uses all of
        ``X`` as validation data. A fraction: ``fit`` clones and fits the
        estimator on the rest and fits ``T`` on a stratified split of this size.
    random_state : int, default 0
        Seed of that split.
    proba_floor : float, default 1e-12
        Added to probabilities before the log, so a zero stays finite
        (scikit-learn's value and rule, for equal temperatures).
    min_temperature, max_temperature : float
        Bounds on ``T`` (see `thermoscope.calibration.fit.fit_temperature`).

    Attributes
    ----------
    temperature_ : float
    scaler_ : TemperatureScaler
    classes_ : ndarray
    estimator_ : the fitted estimator (the given one unless refitted)

    Examples
    --------
    >>> import numpy as np
    >>> def model(X):  # any function returning logits
    ...     return np.asarray(X, dtype=float) * 3.0
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    >>> clf = TemperatureScaledClassifier(model).fit(X, [0, 1, 1])
    >>> round(clf.temperature_, 6)  # 3 / ln 2: softmax(3 x / T) gives 2/3 on the max
    4.328085
    >>> clf.predict(X).tolist()
    [0, 1, 0]
    """

    _PARAMS = (
        "estimator",
        "response",
        "validation_fraction",
        "random_state",
        "proba_floor",
        "min_temperature",
        "max_temperature",
    )

    def __init__(
        self,
        estimator: Any,
        *,
        response: str = "auto",
        validation_fraction: float | None = None,
        random_state: int = 0,
        proba_floor: float = 1e-12,
        min_temperature: float = MIN_TEMPERATURE,
        max_temperature: float = MAX_TEMPERATURE,
    ) -> None:
        self.estimator = estimator
        self.response = response
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.proba_floor = proba_floor
        self.min_temperature = min_temperature
        self.max_temperature = max_temperature

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "scaler_")

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's estimator tags (a classifier), built on demand.

        Sparse ``X`` is accepted exactly when the wrapped scikit-learn
        estimator accepts it (its ``X`` goes straight to that estimator); a
        callable is given dense input only.
        """
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags, get_tags

        sparse = False
        if _is_sklearn_classifier(self.estimator) and hasattr(self.estimator, "__sklearn_tags__"):
            sparse = bool(get_tags(self.estimator).input_tags.sparse)
        return Tags(
            estimator_type="classifier",
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags(),
            input_tags=InputTags(sparse=sparse),
        )

    # ------------------------------------------------------------------ logits

    def _check_params(self) -> None:
        check_choice(self.response, "response", _RESPONSES)
        if not (_is_sklearn_classifier(self.estimator) or callable(self.estimator)):
            raise TypeError(
                "`estimator` must be a scikit-learn classifier (with decision_function or "
                f"predict_proba) or a callable returning logits, got {type(self.estimator)!r}."
            )
        f = self.validation_fraction
        if f is not None and not (isinstance(f, (float, int)) and 0 < f < 1):
            raise ValueError(f"`validation_fraction` must be None or in (0, 1), got {f!r}.")
        floor = self.proba_floor
        if not (isinstance(floor, (float, int)) and 0 < floor < 1):
            raise ValueError(f"`proba_floor` must be in (0, 1), got {floor!r}.")

    def _method(self, estimator: Any) -> str:
        if not _is_sklearn_classifier(estimator):
            return "call"
        if self.response == "auto":
            return (
                "decision_function" if hasattr(estimator, "decision_function") else "predict_proba"
            )
        if not hasattr(estimator, self.response):
            raise ValueError(
                f"`response` must name a method of the estimator, got {self.response!r} "
                f"({type(estimator).__name__} has no {self.response})."
            )
        return self.response

    def _logits(self, estimator: Any, X: Any) -> Array:
        """Logits of ``X``: decision values, log-probabilities, or the callable's output."""
        method = self._method(estimator)
        if method == "call":
            out = estimator(X)
            out = getattr(out, "logits", out)  # e.g. a transformers model output
            z, _ = to_numpy(out, "estimator(X)")
            return np.asarray(z, dtype=np.float64)
        raw = np.asarray(getattr(estimator, method)(X), dtype=np.float64)
        if method == "predict_proba":
            return np.log(raw + self.proba_floor)
        if raw.ndim == 1 or raw.shape[1] == 1:
            # Binary decision values d are log-odds: the logits (0, d) give
            # softmax = (1 - sigmoid(d), sigmoid(d)), the model's own probabilities.
            d = raw.reshape(-1)
            return np.stack([np.zeros_like(d), d], axis=1)
        return raw

    def _encode(self, y: Any, classes: Array | None, n_classes: int) -> IntArray:
        if classes is None:
            return numpy_labels(y, n_classes, len(y), "y")
        y_arr = np.asarray(y)
        index = np.searchsorted(classes, y_arr)
        index = np.clip(index, 0, len(classes) - 1)
        unknown = classes[index] != y_arr
        if np.any(unknown):
            raise ValueError(
                f"`y` must contain only the estimator's classes {classes.tolist()}, "
                f"got {y_arr[unknown].tolist()[0]!r}."
            )
        return index.astype(np.int64)

    # ------------------------------------------------------------------ API

    def fit(self, X: Any, y: Any) -> TemperatureScaledClassifier:
        """Fit ``T`` on validation data ``(X, y)`` (or on a held-out split, see the class).

        Examples
        --------
        >>> import numpy as np
        >>> clf = TemperatureScaledClassifier(lambda X: np.asarray(X, dtype=float))
        >>> clf = clf.fit([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], [0, 1, 1])
        >>> round(clf.temperature_, 12)  # 1 / ln 2
        1.442695040889
        """
        self._check_params()
        check_fit_target(y, type(self).__name__)
        _check_class_labels(y)
        estimator = self.estimator
        if not _is_sklearn_classifier(estimator):
            check_dense(X, "X")
        X_val, y_val = X, y
        if self.validation_fraction is not None:
            if not _is_sklearn_classifier(estimator):
                raise ValueError(
                    "`validation_fraction` must be None when `estimator` is a callable "
                    f"(it cannot be refitted), got {self.validation_fraction!r}."
                )
            from sklearn.base import clone
            from sklearn.model_selection import train_test_split

            X_fit, X_val, y_fit, y_val = train_test_split(
                X,
                y,
                test_size=self.validation_fraction,
                stratify=y,
                random_state=self.random_state,
            )
            estimator = clone(estimator).fit(X_fit, y_fit)
        if len(y_val) == 0:
            raise ValueError("`y` must not be empty, got 0 labels.")
        logits = self._logits(estimator, X_val)
        if logits.ndim != 2 or logits.shape[0] != len(y_val):
            raise ValueError(
                f"`X` must give one row of logits per label ({len(y_val)}), "
                f"got logits of shape {logits.shape}."
            )
        classes = (
            getattr(estimator, "classes_", None) if _is_sklearn_classifier(estimator) else None
        )
        if classes is not None:
            classes = np.asarray(classes)
        labels = self._encode(y_val, classes, logits.shape[1])
        self.scaler_ = TemperatureScaler(
            min_temperature=self.min_temperature, max_temperature=self.max_temperature
        ).fit(logits, labels)
        self.temperature_ = self.scaler_.temperature_
        self.classes_ = classes if classes is not None else np.arange(logits.shape[1])
        self.estimator_ = estimator
        n_features = getattr(estimator, "n_features_in_", None)
        if n_features is None and len(np.shape(X_val)) == 2:
            n_features = np.shape(X_val)[1]
        if n_features is not None:
            self.n_features_in_ = int(n_features)
        return self

    def _fitted(self) -> Any:
        if not hasattr(self, "scaler_"):
            raise not_fitted_error(
                "This TemperatureScaledClassifier is not fitted yet: call `fit(X_val, y_val)`."
            )
        return self.estimator_

    def decision_function(self, X: Any) -> Array:
        """Calibrated logits ``logits / T``; for two classes, the calibrated log-odds, shape (n,).

        scikit-learn's convention for binary problems: one score per sample,
        positive for ``classes_[1]``, here ``(z_1 - z_0) / T``, the log-odds of
        `predict_proba`'s second column (so ``roc_auc`` scorers work). With
        three or more classes, the ``(n, n_classes)`` scaled logits.

        Examples
        --------
        >>> import numpy as np
        >>> clf = TemperatureScaledClassifier(lambda X: np.asarray(X, dtype=float))
        >>> clf = clf.fit([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], [0, 1, 1])
        >>> np.round(clf.decision_function([[1.0, 0.0], [0.0, 2.0]]), 4)  # times ln 2
        array([-0.6931,  1.3863])
        """
        estimator = self._fitted()
        scaled = np.asarray(self.scaler_.transform(self._logits(estimator, X)))
        if scaled.shape[1] == 2:
            binary: Array = scaled[:, 1] - scaled[:, 0]
            return binary
        return scaled

    def predict_proba(self, X: Any) -> Array:
        """Calibrated probabilities ``softmax(logits / T)``, columns in ``classes_`` order.

        Examples
        --------
        >>> import numpy as np
        >>> clf = TemperatureScaledClassifier(lambda X: np.asarray(X, dtype=float))
        >>> clf = clf.fit([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], [0, 1, 1])
        >>> np.round(clf.predict_proba([[1.0, 0.0]]), 4)
        array([[0.6667, 0.3333]])
        """
        estimator = self._fitted()
        return np.asarray(self.scaler_.predict_proba(self._logits(estimator, X)))

    def predict(self, X: Any) -> Array:
        """The predicted classes; temperature never changes them.

        Examples
        --------
        >>> import numpy as np
        >>> clf = TemperatureScaledClassifier(lambda X: np.asarray(X, dtype=float))
        >>> clf.fit([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], [0, 1, 1]).predict([[0.0, 2.0]])
        array([1])
        """
        estimator = self._fitted()
        predicted: Array = np.asarray(self.classes_)[np.argmax(self._logits(estimator, X), axis=1)]
        return predicted

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on ``(X, y)`` (scikit-learn's classifier convention).

        Examples
        --------
        >>> import numpy as np
        >>> clf = TemperatureScaledClassifier(lambda X: np.asarray(X, dtype=float))
        >>> clf.fit([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], [0, 1, 1]).score([[0.0, 2.0]], [1])
        1.0
        """
        return float(np.mean(self.predict(X) == np.asarray(y)))
