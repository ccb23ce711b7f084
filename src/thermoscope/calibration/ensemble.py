"""Ensemble temperature scaling (Zhang, Kailkhura and Han 2020, "Mix-n-Match").

ETS mixes three predictions with weights on the simplex:
``w0 softmax(z / T) + w1 softmax(z) + w2 / K``. ``T`` is fitted first, then the
weights; both by the same loss (mean squared error, as in the authors' code,
or NLL). The weight problem is convex on a triangle and is solved exactly by
minimising on each face (vertices, edges, interior) with safeguarded Newton.

Where this departs from the authors' ``util_calibration.py``: ``T`` is not
searched in (0.05, 5) by L-BFGS-B from 1 but in [1e-4, 1e4] (a log grid
around the exact NLL temperature, then bounded Brent for ``"mse"``; the
certified fit itself for ``"nll"``), and the weights come from the face
search rather than SLSQP from (1, 0, 0), which can stop early on a face.
Their MSE averages over ``N K`` entries and renormalises the mixture; on the
simplex both leave the minimiser unchanged.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import numpy.typing as npt

from thermoscope import _temperature as kernel
from thermoscope._backend import is_torch
from thermoscope._files import write_text_atomic
from thermoscope._params import Params
from thermoscope._typing import Array, FloatArray, IntArray
from thermoscope.calibration._inputs import check_choice, logits_and_labels
from thermoscope.calibration.fit import MAX_TEMPERATURE, MIN_TEMPERATURE, _check_bounds, _fit_nll
from thermoscope.calibration.linear_scalers import (
    calibrator_tags,
    check_fit_input,
    check_max_iter,
    checked_logits,
    not_fitted,
    read_matrix,
    read_params,
    read_payload,
)

if TYPE_CHECKING:
    import torch

__all__ = ["EnsembleTemperatureScaler"]

_LOSSES = ("mse", "nll")
_FORMAT = "thermoscope.ensemble_temperature"
_VERSION = 1

Objective = Callable[[FloatArray], tuple[float, FloatArray, FloatArray]]


def _brier(z: FloatArray, y: IntArray, t: float) -> float:
    """Mean over rows of ``sum_c (softmax(z / t)_c - onehot_c)^2``."""
    p = kernel.softmax(z, t, 1)
    p[np.arange(z.shape[0]), y] -= 1.0
    return float(np.mean(np.einsum("ij,ij->i", p, p)))


def _fit_mse_temperature(
    z: FloatArray, y: IntArray, t_nll: float, lo_t: float, hi_t: float
) -> float:
    """Minimise the Brier score over ``log T``: a 25-point log grid around ``T_nll``, then Brent.

    The Brier score need not be convex in ``T``; the grid (steps of 21 % in
    ``T`` over ``[T_nll / 10, 10 T_nll]``) finds the basin, bounded Brent its
    minimum to ``1e-10`` in ``log T``.
    """
    from scipy import optimize  # loaded on first use: `import thermoscope` stays light

    center = math.log(t_nll)
    lo = max(center - math.log(10.0), math.log(lo_t))
    hi = min(center + math.log(10.0), math.log(hi_t))
    grid = np.linspace(lo, hi, 25)
    values = [_brier(z, y, math.exp(u)) for u in grid]
    k = int(np.argmin(values))
    left, right = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    best = optimize.minimize_scalar(
        lambda u: _brier(z, y, math.exp(u)),
        bounds=(left, right),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return math.exp(float(best.x) if best.fun <= values[k] else float(grid[k]))


def mse_objective(components: list[FloatArray], y: IntArray) -> Objective:
    """Brier score of ``sum_i w_i P_i``: the quadratic ``w^T A w - 2 c^T w + 1``.

    Examples
    --------
    >>> f = mse_objective([np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]])], np.array([0]))
    >>> f(np.array([1.0, 0.0]))[0]
    0.0
    """
    n = y.shape[0]
    a = np.array([[float(np.sum(p * q)) / n for q in components] for p in components])
    c = np.array([float(np.mean(p[np.arange(n), y])) for p in components])

    def objective(w: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        return float(w @ a @ w - 2.0 * c @ w + 1.0), 2.0 * (a @ w - c), 2.0 * a

    return objective


def nll_objective(components: list[FloatArray], y: IntArray) -> Objective:
    """Mean NLL of ``sum_i w_i P_i``: ``-mean log(Q w)``, ``Q[n, i] = P_i[n, y_n]``.

    Examples
    --------
    >>> f = nll_objective([np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]])], np.array([0]))
    >>> round(f(np.array([0.0, 1.0]))[0], 6)  # log 2
    0.693147
    """
    n = y.shape[0]
    q = np.stack([p[np.arange(n), y] for p in components], axis=1)

    def objective(w: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        s = q @ w
        if np.any(s <= 0):
            return math.inf, np.full(w.shape, np.nan), np.full((w.size, w.size), np.nan)
        r = q / s[:, None]
        return -float(np.mean(np.log(s))), -r.mean(axis=0), (r.T @ r) / n

    return objective


def _minimise_on_face(f: Objective, support: list[int], m: int, max_iter: int) -> FloatArray:
    """Damped Newton on the face of the simplex spanned by ``support``, kept inside it.

    The face is parametrised by the weights of all but its last vertex; the
    step is cut to stay in the face and halved until the objective decreases.
    A minimiser on the face's boundary lies on a smaller face, which is
    searched separately.
    """
    s = len(support)
    base = np.zeros(m)
    base[support[-1]] = 1.0
    e = np.zeros((m, s - 1))
    for j, i in enumerate(support[:-1]):
        e[i, j], e[support[-1], j] = 1.0, -1.0
    u = np.full(s - 1, 1.0 / s)
    value, grad, hess = f(base + e @ u)
    for _ in range(max_iter):
        g, h = e.T @ grad, e.T @ hess @ e
        if not np.all(np.isfinite(g)) or float(np.max(np.abs(g))) <= 1e-15:
            break
        step = -np.linalg.lstsq(h, g, rcond=None)[0]
        if not float(step @ g) < 0:  # not a descent direction (singular curvature): gradient
            step = -g
        # The largest step that keeps every weight of the face >= 0.
        w_now = np.concatenate([u, [1.0 - u.sum()]])
        dw = np.concatenate([step, [-step.sum()]])
        shrinking = dw < 0
        cap = float(np.min(-w_now[shrinking] / dw[shrinking])) if np.any(shrinking) else math.inf
        alpha = min(1.0, 0.999 * cap) if cap < math.inf else 1.0
        for _ in range(60):
            trial = u + alpha * step
            new = f(base + e @ trial)
            if new[0] <= value:
                break
            alpha *= 0.5
        else:
            break
        if new[0] == value and np.array_equal(trial, u):
            break
        u, (value, grad, hess) = trial, new
    out: FloatArray = base + e @ u
    return out


def simplex_minimum(f: Objective, m: int, *, max_iter: int = 100) -> FloatArray:
    """Minimise a convex ``f`` over the simplex ``{w >= 0, sum w = 1}`` in ``m`` dimensions.

    Every face (``2^m - 1`` of them: fine for ETS's ``m = 3``) is minimised in
    its relative interior; the global minimiser is in the relative interior
    of some face, so the best of the face minima is it.

    Examples
    --------
    >>> f = lambda w: (float(w @ w), 2 * w, 2 * np.eye(3))
    >>> np.round(simplex_minimum(f, 3), 9).tolist()
    [0.333333333, 0.333333333, 0.333333333]
    """
    best, best_value = np.eye(m)[0], f(np.eye(m)[0])[0]
    for mask in range(1, 2**m):
        support = [i for i in range(m) if mask >> i & 1]
        if len(support) == 1:
            w = np.eye(m)[support[0]]
        else:
            w = _minimise_on_face(f, support, m, max_iter)
        value = f(w)[0]
        if value < best_value:
            best, best_value = w, value
    clipped: FloatArray = np.clip(best, 0.0, 1.0)  # rounding at a face's edge
    out: FloatArray = clipped / clipped.sum()
    return out


class EnsembleTemperatureScaler(Params):
    """Ensemble temperature scaling (Mix-n-Match ETS), a scikit-learn estimator on logits.

    ``predict_proba(z) = w0 softmax(z / T) + w1 softmax(z) + w2 / K`` with
    ``w`` on the simplex. ``fit(logits, y)`` first fits ``T`` by ``loss``,
    then the weights by the same loss, exactly: the weight problem is convex
    (a quadratic for ``"mse"``) and every face of the triangle is searched.
    ``transform`` returns calibrated logits ``log predict_proba(z)``, whose
    softmax is the ensemble; ``predict`` is the logits' argmax, which the
    ensemble never changes.

    Parameters
    ----------
    loss : {"mse", "nll"}, default "mse"
        ``"mse"`` (the authors' choice): the Brier score; ``T`` by a 25-point
        log grid over ``[T_nll / 10, 10 T_nll]`` refined by bounded Brent. ``"nll"``: the exact
        temperature fit (`fit_temperature`) and the weights' NLL.
    min_temperature, max_temperature : float, default 1e-4 and 1e4
        Bounds on ``T``.
    max_iter : int, default 100
        Cap on Newton iterations (temperature fit and each face of the weights).

    Warns
    -----
    TemperatureBoundWarning, SeparableDataWarning
        As `fit_temperature`, when the NLL optimum of ``T`` lies at a bound.

    Attributes
    ----------
    temperature_ : float
        ``T``.
    weights_ : ndarray of shape (3,)
        ``(w0, w1, w2)``: tempered, original and uniform.
    objective_ : float
        The loss at the fitted weights.
    n_iter_ : int
        Passes over the data made by the NLL temperature solver.
    n_classes_, n_features_in_ : int
        ``K``.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[4.0, 0.0], [0.0, 4.0]] * 3)
    >>> ets = EnsembleTemperatureScaler(loss="nll").fit(z, [0, 1, 1, 0, 0, 1])  # right 2 in 3
    >>> np.round(ets.predict_proba(z[:1]), 6)  # confidence 2/3, as observed
    array([[0.666667, 0.333333]])
    """

    _PARAMS = ("loss", "min_temperature", "max_temperature", "max_iter")

    def __init__(
        self,
        *,
        loss: str = "mse",
        min_temperature: float = MIN_TEMPERATURE,
        max_temperature: float = MAX_TEMPERATURE,
        max_iter: int = 100,
    ) -> None:
        self.loss = loss
        self.min_temperature = min_temperature
        self.max_temperature = max_temperature
        self.max_iter = max_iter

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "weights_")

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's estimator tags (a transformer that needs labels), built on demand."""
        return calibrator_tags(self)

    def _check_params(self) -> tuple[float, float]:
        check_choice(self.loss, "loss", _LOSSES)
        check_max_iter(self.max_iter)
        return _check_bounds(self.min_temperature, self.max_temperature)

    def fit(self, logits: Any, y: Any) -> EnsembleTemperatureScaler:
        """Fit ``T`` then the weights on validation ``logits`` (N, K) and labels ``y``; return self.

        Examples
        --------
        >>> import numpy as np
        >>> z = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
        >>> w = EnsembleTemperatureScaler().fit(z, [0, 1, 1]).weights_  # right 2 in 3
        >>> bool(np.all(w >= 0)), round(float(w.sum()), 12)
        (True, 1.0)
        """
        lo_t, hi_t = self._check_params()
        check_fit_input(logits, y, type(self).__name__)
        z, labels = logits_and_labels(logits, y, "y")
        z = np.asarray(z, dtype=np.float64)
        fit = _fit_nll(
            z,
            labels,
            "y",
            min_temperature=lo_t,
            max_temperature=hi_t,
            max_iter=check_max_iter(self.max_iter),
            progress=False,
        )
        t = fit.temperature
        if self.loss == "mse":
            t = _fit_mse_temperature(z, labels, t, lo_t, hi_t)
        k = z.shape[1]
        components = [kernel.softmax(z, t, 1), kernel.softmax(z, 1.0, 1), np.full(z.shape, 1.0 / k)]
        make = mse_objective if self.loss == "mse" else nll_objective
        objective = make(components, labels)
        w = simplex_minimum(objective, 3, max_iter=check_max_iter(self.max_iter))
        self.temperature_ = float(t)
        self.weights_ = w
        self.objective_ = objective(w)[0]
        self.n_iter_ = int(fit.n_iter)
        self.n_classes_ = self.n_features_in_ = int(k)
        return self

    def fit_transform(self, logits: Any, y: Any) -> Any:
        """``fit(logits, y).transform(logits)``.

        Examples
        --------
        >>> import numpy as np
        >>> z = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
        >>> EnsembleTemperatureScaler().fit_transform(z, [0, 1, 1]).shape
        (3, 2)
        """
        return self.fit(logits, y).transform(logits)

    def _checked_logits(self, logits: Any) -> tuple[Any, Any]:
        not_fitted(self, "weights_")
        return checked_logits(logits, self.n_classes_, type(self).__name__, finite=False)

    def _mixture(self, z: Any) -> Any:
        w0, w1, w2 = (float(v) for v in self.weights_)
        p = w0 * kernel.softmax(z, self.temperature_, -1) + w1 * kernel.softmax(z, 1.0, -1)
        return p + w2 / self.n_classes_

    @overload
    def predict_proba(self, logits: torch.Tensor) -> torch.Tensor: ...

    @overload
    def predict_proba(self, logits: npt.ArrayLike) -> Array: ...

    def predict_proba(self, logits: Any) -> Any:
        """``w0 softmax(z / T) + w1 softmax(z) + w2 / K``, the same kind as the input.

        Examples
        --------
        >>> import numpy as np
        >>> z = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
        >>> ets = EnsembleTemperatureScaler().fit(z, [0, 1, 1])
        >>> bool(np.allclose(ets.predict_proba([[1.0, 0.0]]).sum(), 1.0))
        True
        """
        z, back = self._checked_logits(logits)
        return back(self._mixture(z))

    @overload
    def transform(self, logits: torch.Tensor) -> torch.Tensor: ...

    @overload
    def transform(self, logits: npt.ArrayLike) -> Array: ...

    def transform(self, logits: Any) -> Any:
        """Calibrated logits ``log predict_proba(z)`` (their softmax is the ensemble).

        Examples
        --------
        >>> import numpy as np
        >>> z = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
        >>> ets = EnsembleTemperatureScaler().fit(z, [0, 1, 1])
        >>> bool(np.allclose(np.exp(ets.transform([[1.0, 0.0]])).sum(), 1.0))
        True
        """
        z, back = self._checked_logits(logits)
        p = self._mixture(z)
        if is_torch(p):
            import torch

            return back(torch.log(p))
        with np.errstate(divide="ignore"):  # a masked class without uniform weight: log 0
            return back(np.log(p))

    @overload
    def predict(self, logits: torch.Tensor) -> torch.Tensor: ...

    @overload
    def predict(self, logits: npt.ArrayLike) -> Array: ...

    def predict(self, logits: Any) -> Any:
        """The predicted class, ``argmax`` of the logits (a mixture of their softmaxes keeps it).

        Examples
        --------
        >>> import numpy as np
        >>> z = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
        >>> ets = EnsembleTemperatureScaler().fit(z, [0, 1, 1])
        >>> ets.predict([[0.2, 1.0]])
        array([1])
        """
        z, _ = self._checked_logits(logits)
        return z.argmax(dim=-1) if is_torch(z) else np.argmax(z, axis=-1)

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write ``T``, the weights and the parameters to ``path`` atomically; return the path.

        Examples
        --------
        >>> import numpy as np, tempfile, pathlib
        >>> z = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
        >>> ets = EnsembleTemperatureScaler().fit(z, [0, 1, 1])
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = ets.to_json(pathlib.Path(d) / "ets.json")
        ...     EnsembleTemperatureScaler.from_json(p).temperature_ == ets.temperature_
        True
        """
        not_fitted(self, "weights_")
        payload = {
            "format": _FORMAT,
            "version": _VERSION,
            "temperature": self.temperature_,
            "weights": self.weights_.tolist(),
            "n_classes": self.n_classes_,
            "params": self.get_params(),
        }
        return write_text_atomic(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> EnsembleTemperatureScaler:
        """Load a scaler saved by `to_json`; a malformed file is a ValueError naming the field.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = pathlib.Path(d) / "ets.json"
        ...     _ = p.write_text('{"format": "thermoscope.ensemble_temperature", "version": 1, '
        ...                      '"temperature": 2.0, "weights": [1, 0, 0], "n_classes": 3}')
        ...     EnsembleTemperatureScaler.from_json(p).weights_.tolist()
        [1.0, 0.0, 0.0]
        """
        path, data = read_payload(path, _FORMAT, _VERSION)
        est = cls(**read_params(cls, path, data))
        try:
            est._check_params()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"field `params` in {path} is invalid: {exc}") from None
        t = data.get("temperature")
        if (
            isinstance(t, bool)
            or not isinstance(t, (int, float))
            or not (math.isfinite(t) and t > 0)
        ):
            raise ValueError(
                f"field `temperature` in {path} must be a finite number > 0, got {t!r}."
            )
        w = read_matrix(path, data, "weights", (3,))
        if np.any(w < 0) or abs(float(w.sum()) - 1.0) > 1e-9:
            raise ValueError(
                f"field `weights` in {path} must be 3 numbers >= 0 summing to 1, "
                f"got {w.tolist()!r}."
            )
        k = data.get("n_classes")
        if isinstance(k, bool) or not isinstance(k, int) or k < 2:
            raise ValueError(f"field `n_classes` in {path} must be an integer >= 2, got {k!r}.")
        est.temperature_, est.weights_ = float(t), w
        est.n_classes_ = est.n_features_in_ = k
        return est
