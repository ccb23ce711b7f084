"""Vector and matrix scaling (Guo et al. 2017): calibrated logits ``W z + b``, fitted by NLL.

``VectorScaler`` has a diagonal ``W``, ``MatrixScaler`` a full one with the
optional off-diagonal and intercept regularisation (ODIR) of Kull et al.
(2019). Both are scikit-learn estimators on logits, like ``TemperatureScaler``.
The fit (shared with `DirichletCalibrator`, which applies the same map to
log-probabilities) is trust-region Newton on exact derivatives, from the
exact temperature fit, on whitened inputs: deterministic, and stopped on a
gradient norm (`fit_affine`).
"""

from __future__ import annotations

import functools
import json
import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

import numpy as np
import numpy.typing as npt

from thermoscope import _temperature as kernel
from thermoscope._backend import is_torch
from thermoscope._files import write_text_atomic
from thermoscope._params import Params
from thermoscope._typing import Array, FloatArray, IntArray
from thermoscope._validation import (
    as_float,
    check_finite,
    check_integer,
    check_logits,
    check_scalar,
)
from thermoscope.calibration._inputs import logits_and_labels
from thermoscope.calibration.scaler import check_dense, check_fit_target, not_fitted_error

if TYPE_CHECKING:
    import torch

__all__ = ["CalibratorConvergenceWarning", "MatrixScaler", "VectorScaler"]

_C = TypeVar("_C", bound="_LinearCalibrator")


class CalibratorConvergenceWarning(UserWarning):
    """A calibrator's fit has no finite optimum or its solver stopped short of ``tol``.

    Raised for data that the fitted map separates (the NLL falls towards 0
    as the weights grow) and for a gradient norm above ``tol`` at ``max_iter``.
    """


# ----------------------------------------------------------------------------
# Parameter checks (small and private: only the calibrators take these)
# ----------------------------------------------------------------------------


def check_nonnegative(value: Any, name: str) -> float:
    """A finite number >= 0 as a float.

    Examples
    --------
    >>> check_nonnegative(0.5, "reg_lambda")
    0.5
    """
    x = check_scalar(value, name, "a finite number >= 0")
    if not (math.isfinite(x) and x >= 0):
        raise ValueError(f"`{name}` must be a finite number >= 0, got {value!r}.")
    return x


def check_tol(value: Any) -> float:
    """The solver's gradient tolerance: a finite number > 0.

    Examples
    --------
    >>> check_tol(1e-8)
    1e-08
    """
    x = check_scalar(value, "tol", "a finite number > 0")
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"`tol` must be a finite number > 0, got {value!r}.")
    return x


def check_max_iter(value: Any) -> int:
    """The solver's iteration cap: an integer >= 1.

    Examples
    --------
    >>> check_max_iter(50)
    50
    """
    return int(check_integer(value, "max_iter", 1))


def check_fit_input(logits: Any, y: Any, owner: str) -> None:
    """Refuse sparse ``logits``, a missing ``y`` and fewer than 2 columns, in words sklearn knows.

    scikit-learn's estimator checks recognise a refusal by phrases such as
    "requires y to be passed" and "1 feature(s)"; the messages carry them.

    Examples
    --------
    >>> check_fit_input([[0.0, 1.0]], [1], "VectorScaler")
    """
    check_dense(logits, "logits")
    check_fit_target(y, owner)
    # Only arrays are looked at here: other array-likes are converted (and checked) later.
    shape = tuple(logits.shape) if isinstance(logits, np.ndarray) or is_torch(logits) else ()
    if len(shape) == 2 and shape[1] < 2:
        raise ValueError(
            f"`logits` must have at least 2 columns (classes), got {shape[1]} feature(s) "
            f"(shape={shape}) while a minimum of 2 is required."
        )


def finite_logits(
    logits: Any, y: Any, owner: str = "the calibrator"
) -> tuple[FloatArray, IntArray]:
    """float64 (N, K) logits, all finite, and int64 labels in [0, K - 1].

    A linear map mixes classes, so a masked ``-inf`` entry has no image:
    it is refused with the rest of the non-finite values.

    Examples
    --------
    >>> z, y = finite_logits([[1.0, 0.0]], [0])
    >>> z.dtype, y.tolist()
    (dtype('float64'), [0])
    """
    check_fit_input(logits, y, owner)
    z, labels = logits_and_labels(logits, y, "y")
    z = np.asarray(z, dtype=np.float64)
    check_finite(z, "logits")
    return z, labels


def checked_logits(logits: Any, n_classes: int, owner: str, *, finite: bool) -> tuple[Any, Any]:
    """Logits for a fitted calibrator: 2-D, ``n_classes`` columns, no NaN or +inf.

    ``finite``: refuse ``-inf`` too. Returns ``(z, back)`` as `as_float`
    does: numpy stays numpy, a tensor stays on its device.

    Examples
    --------
    >>> z, back = checked_logits([[0.0, 1.0]], 2, "VectorScaler", finite=True)
    >>> z.shape
    (1, 2)
    """
    check_dense(logits, "logits")
    z, back = as_float(logits, "logits")
    if z.ndim != 2:
        raise ValueError(
            f"`logits` must be 2-D (n_samples, {n_classes}), got shape {tuple(z.shape)}; "
            "Reshape your data with logits[None, :] for one row."
        )
    if int(z.shape[1]) != n_classes:
        raise ValueError(
            f"`logits` must have {n_classes} columns, one per class (X has {int(z.shape[1])} "
            f"features, but {owner} is expecting {n_classes} features as input), "
            f"got shape {tuple(z.shape)}."
        )
    check_logits(z, "logits")  # NaN and +inf, named as such
    if finite:
        check_finite(z, "logits")
    return z, back


def not_fitted(est: object, attribute: str) -> None:
    """Raise a not-fitted error (also scikit-learn's, when installed) unless ``est`` has it.

    Examples
    --------
    >>> try:
    ...     not_fitted(VectorScaler(), "coef_")
    ... except ValueError as exc:
    ...     print(str(exc)[:35])
    This VectorScaler is not fitted yet
    """
    if hasattr(est, attribute):
        return
    name = type(est).__name__
    raise not_fitted_error(
        f"This {name} is not fitted yet: call `fit(logits, y)` "
        f"or load one with `{name}.from_json(path)`."
    )


def calibrator_tags(est: Any) -> Any:
    """scikit-learn tags of a calibrator on logits: a transformer that needs labels.

    Examples
    --------
    >>> calibrator_tags(VectorScaler()).target_tags.required
    True
    """
    from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

    return Tags(
        estimator_type=None,
        target_tags=TargetTags(required=True),
        transformer_tags=TransformerTags(preserves_dtype=["float64", "float32"]),
        input_tags=InputTags(two_d_array=True, allow_nan=False),
    )


# ----------------------------------------------------------------------------
# JSON (one reader for every calibrator file)
# ----------------------------------------------------------------------------


def read_payload(
    path: str | os.PathLike[str], fmt: str, version: int
) -> tuple[Path, dict[str, Any]]:
    """Read a calibrator JSON file; a malformed one is a ValueError naming the file and field.

    Examples
    --------
    >>> read_payload("absent.json", "thermoscope.vector_scaler", 1)
    Traceback (most recent call last):
    ...
    ValueError: `path` must be an existing JSON file, got 'absent.json'.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"`path` must be an existing JSON file, got {str(path)!r}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"`path` must be a readable UTF-8 JSON file, got {str(path)!r}: {exc}"
        ) from None
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise ValueError(f"`{path}` must be valid JSON, got a parse error: {exc}.") from None
    if not isinstance(data, dict):
        raise ValueError(f"`{path}` must hold a JSON object, got {type(data).__name__}.")
    if data.get("format") != fmt:
        raise ValueError(f"field `format` in {path} must be {fmt!r}, got {data.get('format')!r}.")
    if data.get("version") != version:
        raise ValueError(
            f"field `version` in {path} must be {version}, got {data.get('version')!r}."
        )
    return path, data


def read_params(cls: type[Params], path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """The ``params`` object of a calibrator file, keys checked against ``cls._PARAMS``.

    Examples
    --------
    >>> read_params(VectorScaler, Path("v.json"), {"params": {"tol": 1e-9}})
    {'tol': 1e-09}
    """
    params = data.get("params", {})
    if not isinstance(params, dict) or set(params) - set(cls._PARAMS):
        raise ValueError(
            f"field `params` in {path} must be an object with keys among "
            f"{', '.join(cls._PARAMS)}, got {params!r}."
        )
    return params


def read_matrix(path: Path, data: dict[str, Any], field: str, shape: tuple[int, ...]) -> FloatArray:
    """A finite float64 array of ``shape`` from field ``field`` of a calibrator file.

    Examples
    --------
    >>> read_matrix(Path("v.json"), {"intercept": [0, 1]}, "intercept", (2,))
    array([0., 1.])
    """
    try:
        arr = np.asarray(data.get(field), dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.asarray(np.nan)
    if arr.shape != shape or not np.all(np.isfinite(arr)):
        raise ValueError(
            f"field `{field}` in {path} must be finite numbers of shape {shape}, "
            f"got {data.get(field)!r:.80}."
        )
    return arr


# ----------------------------------------------------------------------------
# The solver: softmax regression  y ~ softmax(W x + b)  with ODIR
# ----------------------------------------------------------------------------


class _AffineProblem:
    """Mean NLL of ``softmax(x W^T + b)`` plus ODIR, as a function of the solver's parameters.

    The objective, in the calibrator's own ``(W, b)``, is

        mean_n -log softmax(W x_n + b)[y_n]
        + reg_lambda / (K (K - 1)) * sum_{i != j} W_ij^2 + reg_mu / K * sum_j b_j^2

    (Kull et al.'s normalised ODIR), plus gauge terms ``(sum_j b_j)^2 / 2`` and,
    for full ``W``, ``sum_j (sum_{i != j} W_ij)^2 / 2``. The softmax does not
    change when a constant is added to ``b`` or to a column of ``W`` (the
    logits of every class move together): the gauge terms pick one
    representative, the one the penalty itself picks when ``reg_lambda,
    reg_mu > 0`` (both sums are zero at that optimum), so they never move a
    regularised optimum and make an unregularised one unique.

    The solver sees whitened inputs ``u = (x - mean) A`` (``A`` diagonal for
    a diagonal ``W``, the inverse square root of the covariance otherwise)
    and parameters ``W' = W A^-T``, ``b' = b + W mean``: logits of size 1e3
    with a shared offset per row (naive Bayes, log-probabilities) would
    otherwise leave Newton's system badly conditioned. ``theta`` holds
    ``(diag W', b')`` or ``(W'.ravel(), b')``.

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    >>> problem = _AffineProblem(x, np.array([0, 1, 1]), diagonal=True, reg_lambda=0, reg_mu=0)
    >>> round(problem.value_and_grad(problem.initial(0.0))[0], 6)  # uniform: log 2
    0.693147
    """

    def __init__(
        self, x: FloatArray, y: IntArray, *, diagonal: bool, reg_lambda: float, reg_mu: float
    ) -> None:
        self.n, self.k = x.shape
        k = self.k
        self.y, self.diagonal = y, diagonal
        self.mean = x.mean(axis=0)
        xc = x - self.mean
        if diagonal:
            sd = np.sqrt(np.mean(xc * xc, axis=0))
            self.a = np.diag(1.0 / np.where(sd > 0, sd, 1.0))
        else:
            evals, evecs = np.linalg.eigh(xc.T @ xc / self.n)
            # Collinear inputs (two classes' log-probabilities, say) leave directions of
            # zero variance: they are scaled like a variance 1e-6 of the largest, so that
            # the penalty's curvature there is not blown up by the whitening.
            top = float(evals[-1])
            self.a = evecs / np.sqrt(np.maximum(evals, top * 1e-6)) if top > 0 else np.eye(k)
        self.u = xc @ self.a
        self.shift = self.a.T @ self.mean  # b = b' - W' shift
        self.lam = reg_lambda / (k * (k - 1))
        self.mu = reg_mu / k
        self.off = ~np.eye(k, dtype=bool)
        self._theta: FloatArray | None = None
        self._p: FloatArray = np.empty((0, 0))
        self._best: tuple[float, FloatArray] = (math.inf, np.empty(0))
        self.products = 0
        self.max_products: int | None = None

    def split(self, theta: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``(W', b')`` from the free parameters."""
        k = self.k
        w = np.diag(theta[:k]) if self.diagonal else theta[: k * k].reshape(k, k)
        return w, theta[-k:]

    def _map(self, w1: FloatArray, b1: FloatArray) -> FloatArray:
        """``u W'^T + b'``; a diagonal ``W'`` scales columns (``N K`` work, not ``N K^2``)."""
        if self.diagonal:
            out: FloatArray = self.u * np.diag(w1) + b1
            return out
        return np.asarray(self.u @ w1.T + b1)

    def _pack(self, gw: FloatArray, gb: FloatArray) -> FloatArray:
        return np.concatenate([np.diag(gw) if self.diagonal else gw.ravel(), gb])

    def original(self, theta: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The calibrator's ``(W, b)``, acting on the raw inputs, from the free parameters."""
        w1, b1 = self.split(theta)
        return w1 @ self.a.T, b1 - w1 @ self.shift

    def initial(self, beta: float) -> FloatArray:
        """Temperature scaling, ``W = beta I`` and ``b = 0``, in the solver's parameters."""
        w1 = beta * np.linalg.inv(self.a).T
        return self._pack(w1, w1 @ self.shift)

    def _penalty_grad(self, w: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Gradient of the (quadratic) penalty and gauge terms in ``(W, b)``; linear in them."""
        gb = 2.0 * self.mu * b + b.sum()
        if self.diagonal:
            return np.zeros_like(w), gb
        offw = np.where(self.off, w, 0.0)
        return 2.0 * self.lam * offw + np.where(self.off, offw.sum(axis=0)[None, :], 0.0), gb

    def _pull_back(self, gw: FloatArray, gb: FloatArray) -> tuple[FloatArray, FloatArray]:
        """A gradient in ``(W, b)`` as one in ``(W', b')`` (chain rule through `original`)."""
        return gw @ self.a - np.outer(gb, self.shift), gb

    def value_and_grad(self, theta: FloatArray) -> tuple[float, FloatArray]:
        """Objective and gradient at ``theta``."""
        w1, b1 = self.split(theta)
        logp = kernel.log_softmax(self._map(w1, b1), 1.0, 1)
        rows = np.arange(self.n)
        nll = -float(np.mean(logp[rows, self.y]))
        p = np.exp(logp)
        self._p, self._theta = p, theta.copy()
        w, b = self.original(theta)
        r = p.copy()
        r[rows, self.y] -= 1.0
        r /= self.n
        gw = np.diag((r * self.u).sum(axis=0)) if self.diagonal else r.T @ self.u
        gb = r.sum(axis=0)
        offw = np.where(self.off, w, 0.0)
        value = nll + self.mu * float(b @ b) + 0.5 * float(b.sum()) ** 2
        if not self.diagonal:
            col = offw.sum(axis=0)
            value += self.lam * float(np.sum(offw**2)) + 0.5 * float(col @ col)
        pw, pb = self._pull_back(*self._penalty_grad(w, b))
        if value < self._best[0]:
            self._best = (value, self._theta)
        return value, self._pack(gw + pw, gb + pb)

    def best(self) -> FloatArray:
        """The parameters of the lowest objective evaluated so far."""
        return self._best[1].copy()

    def hessp(self, theta: FloatArray, d: FloatArray) -> FloatArray:
        """Hessian of the objective at ``theta`` times the direction ``d``."""
        self.products += 1
        if self.max_products is not None and self.products > self.max_products:
            raise _TooManyProducts
        if self._theta is None or not np.array_equal(theta, self._theta):
            self.value_and_grad(theta)
        p = self._p
        dw1, db1 = self.split(d)
        s = p * self._map(dw1, db1)
        t = (s - p * s.sum(axis=1, keepdims=True)) / self.n
        hw = np.diag((t * self.u).sum(axis=0)) if self.diagonal else t.T @ self.u
        hb = t.sum(axis=0)
        pw, pb = self._pull_back(*self._penalty_grad(*self.original(d)))
        return self._pack(hw + pw, hb + pb)

    def hess(self, theta: FloatArray) -> FloatArray:
        """The dense Hessian at ``theta`` (for small problems: ``p^2`` numbers, ``N p^2`` work)."""
        if self._theta is None or not np.array_equal(theta, self._theta):
            self.value_and_grad(theta)
        k, n = self.k, self.n
        # Each parameter acts on one class's logit through one feature column:
        # W'[i, j] through u[:, j], b'[i] through a column of ones.
        if self.diagonal:
            cls = np.concatenate([np.arange(k), np.arange(k)])
            col = np.concatenate([np.arange(k), np.full(k, k)])
        else:
            cls = np.concatenate([np.repeat(np.arange(k), k), np.arange(k)])
            col = np.concatenate([np.tile(np.arange(k), k), np.full(k, k)])
        same = cls[:, None] == cls[None, :]
        h = np.zeros((cls.size, cls.size))
        for start in range(0, n, _HESS_BLOCK):
            p = self._p[start : start + _HESS_BLOCK]
            f = np.concatenate([self.u[start : start + _HESS_BLOCK], np.ones((p.shape[0], 1))], 1)
            f = f[:, col]
            g = p[:, cls] * f  # d logit_cls / d theta, weighted by p
            h += np.where(same, g.T @ f, 0.0) - g.T @ g
        h /= n
        eye = np.eye(cls.size)
        for j in range(cls.size):
            h[:, j] += self._pack(*self._pull_back(*self._penalty_grad(*self.original(eye[j]))))
        return h


#: Newton steps at most when polishing the trust region's answer.
_POLISH_STEPS = 8


class _TooManyProducts(Exception):
    """Conjugate gradients used their budget of Hessian-vector products."""


#: Mean NLL below which the fitted map is taken to separate the data.
_SEPARABLE_NLL = 1e-6
#: Rows per block when the dense Hessian is accumulated (bounds its temporaries).
_HESS_BLOCK = 16384
#: Largest ``N p^2`` (and ``p``) for which the dense Hessian and ``trust-exact`` are used.
_DENSE_WORK, _DENSE_PARAMS = 2e10, 2000


def _polish(problem: _AffineProblem, theta: FloatArray, tol: float, dense: bool) -> FloatArray:
    """Full Newton steps while they shrink the gradient norm, until it is at most ``tol``.

    Near the optimum the objective's changes fall below its rounding, and a
    trust region, which judges steps by them, stops early; the gradient
    still measures progress, and Newton converges quadratically there.
    """
    from scipy.sparse.linalg import LinearOperator, cg

    grad = problem.value_and_grad(theta)[1]
    gnorm = float(np.linalg.norm(grad))
    for _ in range(_POLISH_STEPS):
        if not (math.isfinite(gnorm) and gnorm > tol):
            break
        if dense:
            step = np.linalg.lstsq(problem.hess(theta), -grad, rcond=None)[0]
        else:
            op = LinearOperator(
                (theta.size, theta.size), matvec=functools.partial(problem.hessp, theta)
            )
            step = cg(op, -grad, rtol=1e-12, maxiter=10 * theta.size)[0]
        new = theta + step
        new_grad = problem.value_and_grad(new)[1]
        new_norm = float(np.linalg.norm(new_grad))
        if not new_norm < gnorm:
            break
        theta, grad, gnorm = new, new_grad, new_norm
    return theta


def fit_affine(
    x: FloatArray,
    y: IntArray,
    *,
    diagonal: bool,
    reg_lambda: float,
    reg_mu: float,
    max_iter: int,
    tol: float,
    owner: str,
) -> tuple[FloatArray, FloatArray, int, float, float]:
    """Minimise `_AffineProblem`; return ``(W, b, n_iter, objective, gradient norm)``.

    Trust-region Newton with exact derivatives: scipy's ``trust-ncg`` on
    Hessian-vector products (no dense Hessian in memory; ``p`` parameters,
    ``2 K`` for vector scaling, ``K (K + 1)`` for a full matrix), switching
    to ``trust-exact`` on the dense Hessian after ``4 p + 200`` products
    when ``N p^2 <= 2e10`` (ill-conditioned, near-separable data), then
    polished by full Newton steps judged on the gradient norm. It starts from the exact
    temperature fit of the features (``W = I / T``), which is also the
    answer whenever the data want no more than a temperature. The gradient
    norm is that of the solver's (whitened) parameters. Warns
    `CalibratorConvergenceWarning` when it ends above ``tol``, or when the
    fitted map separates the data (mean NLL below 1e-6).

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    >>> w, b, *_ = fit_affine(x, np.array([0, 1, 1, 0]), diagonal=True, reg_lambda=0.0,
    ...                       reg_mu=0.0, max_iter=50, tol=1e-10, owner="doc")
    >>> np.round(kernel.softmax(x[:1] @ w.T + b, 1.0, 1), 6)  # right 1 time in 2
    array([[0.5, 0.5]])
    """
    from scipy import optimize  # loaded on first use: `import thermoscope` stays light

    from thermoscope.calibration.fit import fit_temperature

    problem = _AffineProblem(x, y, diagonal=diagonal, reg_lambda=reg_lambda, reg_mu=reg_mu)
    with warnings.catch_warnings():
        # Only a starting point: separable data (T at its bound) are reported below.
        warnings.simplefilter("ignore")
        beta = 1.0 / fit_temperature(x, y, max_iter=max_iter).temperature
    with warnings.catch_warnings():
        # scipy warns when the trust region cannot shrink further at machine
        # precision; convergence is judged below on the gradient itself.
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", optimize.OptimizeWarning)
        theta0 = problem.initial(beta)
        dense = theta0.size <= _DENSE_PARAMS and x.shape[0] * theta0.size**2 <= _DENSE_WORK
        # Conjugate gradients are cheapest on well-conditioned data; near-separable
        # data make them crawl, and past a budget of products the dense Newton
        # system (where affordable) takes over from the last point.
        problem.max_products = 4 * theta0.size + 200 if dense else None
        try:
            res = optimize.minimize(
                problem.value_and_grad,
                theta0,
                jac=True,
                hessp=problem.hessp,
                method="trust-ncg",
                options={"gtol": tol, "maxiter": max_iter},
            )
        except _TooManyProducts:
            res = optimize.minimize(
                problem.value_and_grad,
                problem.best(),
                jac=True,
                hess=problem.hess,
                method="trust-exact",
                options={"gtol": tol, "maxiter": max_iter},
            )
    problem.max_products = None
    theta = _polish(problem, np.asarray(res.x, dtype=np.float64), tol, dense)
    value, grad = problem.value_and_grad(theta)
    gnorm = float(np.linalg.norm(grad))
    data_nll = -float(np.mean(np.log(problem._p[np.arange(x.shape[0]), y])))
    if data_nll < _SEPARABLE_NLL:
        # The gradient decays like exp(-|W|) on separable data, so it can pass
        # `tol` while the weights are still growing: the NLL itself tells.
        warnings.warn(
            f"{owner}: the calibration data are separable by the map (mean NLL "
            f"{data_nll:.3g} after {int(res.nit)} iterations): the NLL keeps falling as the "
            "weights grow, so the fit is only where the solver stopped; use more "
            "validation data or regularisation (reg_lambda, reg_mu).",
            CalibratorConvergenceWarning,
            stacklevel=3,
        )
    elif not gnorm <= tol:
        warnings.warn(
            f"{owner} stopped after {int(res.nit)} iterations with gradient norm {gnorm:.3g} "
            f"> `tol` = {tol:g}: separable data or a class absent from `y` let the weights "
            "grow without bound; add regularisation (reg_lambda, reg_mu) or raise `max_iter`.",
            CalibratorConvergenceWarning,
            stacklevel=3,
        )
    w, b = problem.original(theta)
    return w, b, int(res.nit), value, gnorm


# ----------------------------------------------------------------------------
# The estimators
# ----------------------------------------------------------------------------


class _LinearCalibrator(Params):
    """Shared protocol of the affine calibrators: ``features(z) -> W features + b``."""

    _FORMAT: ClassVar[str] = ""
    _DIAGONAL: ClassVar[bool] = False
    _JSON_VERSION: ClassVar[int] = 1
    reg_lambda: float
    reg_mu: float
    max_iter: int
    tol: float

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "coef_")

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's estimator tags (a transformer that needs labels), built on demand."""
        return calibrator_tags(self)

    def _regularisation(self) -> tuple[float, float]:
        return (
            check_nonnegative(getattr(self, "reg_lambda", 0.0), "reg_lambda"),
            check_nonnegative(getattr(self, "reg_mu", 0.0), "reg_mu"),
        )

    def _check_params(self) -> None:
        self._regularisation()
        check_max_iter(self.max_iter)
        check_tol(self.tol)

    @staticmethod
    def _features(z: Any) -> Any:
        """The inputs of the affine map (the logits themselves; log-probabilities for Dirichlet)."""
        return z

    def fit(self: _C, logits: Any, y: Any) -> _C:
        """Fit ``W`` and ``b`` on validation ``logits`` (N, K) and labels ``y`` (N,); return self.

        The solver runs on the host in float64 (a tensor is read once).

        Examples
        --------
        >>> import numpy as np
        >>> z = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
        >>> s = VectorScaler().fit(z, [0, 1, 1, 0, 0])
        >>> s.n_classes_, s.gradient_norm_ <= s.tol
        (2, True)
        """
        self._check_params()
        lam, mu = self._regularisation()
        z, labels = finite_logits(logits, y, type(self).__name__)
        w, b, n_iter, value, gnorm = fit_affine(
            self._features(z),
            labels,
            diagonal=self._DIAGONAL,
            reg_lambda=lam,
            reg_mu=mu,
            max_iter=check_max_iter(self.max_iter),
            tol=check_tol(self.tol),
            owner=type(self).__name__,
        )
        self.coef_, self.intercept_ = w, b
        self.n_iter_, self.objective_, self.gradient_norm_ = n_iter, value, gnorm
        self.n_classes_ = self.n_features_in_ = int(z.shape[1])
        return self

    def fit_transform(self, logits: Any, y: Any) -> Any:
        """``fit(logits, y).transform(logits)``.

        Examples
        --------
        >>> import numpy as np
        >>> z = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
        >>> VectorScaler().fit_transform(z, [0, 1, 1, 0, 0]).shape
        (5, 2)
        """
        return self.fit(logits, y).transform(logits)

    @overload
    def transform(self, logits: torch.Tensor) -> torch.Tensor: ...

    @overload
    def transform(self, logits: npt.ArrayLike) -> Array: ...

    def transform(self, logits: Any) -> Any:
        """Calibrated logits ``features(logits) @ W.T + b``, the same kind as the input.

        A torch tensor is mapped on its device in its dtype (float16 and
        bfloat16 computed in float32), its autograd graph kept.

        Examples
        --------
        >>> import numpy as np
        >>> z = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
        >>> s = VectorScaler().fit(z, [0, 1, 1, 0, 0])
        >>> bool(np.allclose(s.transform(z), z @ s.coef_.T + s.intercept_))
        True
        """
        out, back = self._calibrated(logits)
        return back(out)

    def _calibrated(self, logits: Any) -> tuple[Any, Any]:
        """Calibrated logits in the compute dtype, and the cast back to the input's dtype."""
        not_fitted(self, "coef_")
        z, back = checked_logits(logits, self.n_classes_, type(self).__name__, finite=True)
        x = self._features(z)
        if is_torch(x):
            import torch

            w = torch.as_tensor(self.coef_, dtype=x.dtype, device=x.device)
            b = torch.as_tensor(self.intercept_, dtype=x.dtype, device=x.device)
            return x @ w.T + b, back
        # float64 arithmetic, the compute dtype back: float32 logits would saturate early.
        out = np.asarray(x, dtype=np.float64) @ self.coef_.T + self.intercept_
        return out.astype(x.dtype, copy=False), back

    @overload
    def predict_proba(self, logits: torch.Tensor) -> torch.Tensor: ...

    @overload
    def predict_proba(self, logits: npt.ArrayLike) -> Array: ...

    def predict_proba(self, logits: Any) -> Any:
        """Calibrated probabilities, ``softmax`` of `transform` along the last axis.

        Examples
        --------
        >>> import numpy as np
        >>> z = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
        >>> s = VectorScaler().fit(z, [0, 1, 1, 0, 0])
        >>> bool(np.allclose(s.predict_proba(z).sum(axis=1), 1.0))
        True
        """
        out, back = self._calibrated(logits)
        return back(kernel.softmax(out, 1.0, -1))

    @overload
    def predict(self, logits: torch.Tensor) -> torch.Tensor: ...

    @overload
    def predict(self, logits: npt.ArrayLike) -> Array: ...

    def predict(self, logits: Any) -> Any:
        """The calibrated prediction, ``argmax`` of `transform` (it can differ from the logits').

        Examples
        --------
        >>> import numpy as np
        >>> z = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
        >>> s = VectorScaler().fit(z, [0, 1, 1, 0, 0])
        >>> s.predict([[3.0, 0.0]])
        array([0])
        """
        out, _ = self._calibrated(logits)  # before any cast to half precision: no new ties
        return out.argmax(dim=-1) if is_torch(out) else np.argmax(out, axis=-1)

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted weights and parameters to ``path`` atomically; return the path.

        Examples
        --------
        >>> import numpy as np
        >>> z = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
        >>> s = VectorScaler().fit(z, [0, 1, 1, 0, 0])
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = s.to_json(pathlib.Path(d) / "v.json")
        ...     bool(np.array_equal(VectorScaler.from_json(p).coef_, s.coef_))
        True
        """
        not_fitted(self, "coef_")
        payload = {
            "format": self._FORMAT,
            "version": self._JSON_VERSION,
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_.tolist(),
            "params": self.get_params(),
            "n_iter": int(getattr(self, "n_iter_", 0)),
        }
        return write_text_atomic(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")

    @classmethod
    def from_json(cls: type[_C], path: str | os.PathLike[str]) -> _C:
        """Load a calibrator saved by `to_json`; a malformed file is a ValueError naming a field.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = pathlib.Path(d) / "m.json"
        ...     _ = p.write_text('{"format": "thermoscope.matrix_scaler", "version": 1, '
        ...                      '"coef": [[1, 0], [0, 2]], "intercept": [0, 0]}')
        ...     MatrixScaler.from_json(p).transform([[1.0, 1.0]])
        array([[1., 2.]])
        """
        path, data = read_payload(path, cls._FORMAT, cls._JSON_VERSION)
        params = read_params(cls, path, data)
        est = cls(**params)
        try:
            est._check_params()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"field `params` in {path} is invalid: {exc}") from None
        intercept = np.asarray(data.get("intercept"), dtype=object)
        k = intercept.shape[0] if intercept.ndim == 1 and intercept.shape[0] >= 2 else 0
        if k == 0:
            raise ValueError(
                f"field `intercept` in {path} must be a list of at least 2 numbers, "
                f"got {data.get('intercept')!r:.80}."
            )
        coef = read_matrix(path, data, "coef", (k, k))
        if cls._DIAGONAL and np.any(coef[~np.eye(k, dtype=bool)] != 0):
            raise ValueError(
                f"field `coef` in {path} must be a diagonal matrix, got off-diagonal entries."
            )
        est.coef_ = coef
        est.intercept_ = read_matrix(path, data, "intercept", (k,))
        est.n_classes_ = est.n_features_in_ = k
        n_iter = data.get("n_iter")
        if isinstance(n_iter, int) and not isinstance(n_iter, bool) and n_iter >= 0:
            est.n_iter_ = n_iter
        return est


class VectorScaler(_LinearCalibrator):
    """Vector scaling (Guo et al. 2017): calibrated logits ``a * z + b``, one scale per class.

    ``fit(logits, y)`` minimises the mean NLL of ``softmax(a * z + b)`` over
    ``a`` and ``b`` (``2 K`` numbers) by trust-region Newton; ``b`` is
    reported with ``sum(b) = 0`` (adding a constant to every logit changes no
    probability). Finite logits only: ``-inf`` (masked) entries are refused,
    since a scale of a masked logit has no meaning.

    Parameters
    ----------
    max_iter : int, default 100
        Newton iterations at most.
    tol : float, default 1e-10
        Stop when the gradient's Euclidean norm is at most ``tol``; ending
        above it warns `CalibratorConvergenceWarning` (separable data).

    Attributes
    ----------
    coef_ : ndarray of shape (K, K)
        ``diag(a)``.
    intercept_ : ndarray of shape (K,)
        ``b``, summing to 0.
    n_iter_, objective_, gradient_norm_, n_classes_, n_features_in_
        Newton iterations, final objective, its gradient norm, ``K``, ``K``.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0],
    ...               [2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]])
    >>> s = VectorScaler().fit(z, [0, 1, 2, 1, 2, 0])  # argmax right half the time
    >>> np.round(s.predict_proba(z[:1]), 4)  # 1/2 on the top class, as observed
    array([[0.5 , 0.25, 0.25]])
    """

    _PARAMS = ("max_iter", "tol")
    _FORMAT = "thermoscope.vector_scaler"
    _DIAGONAL = True

    def __init__(self, *, max_iter: int = 100, tol: float = 1e-10) -> None:
        self.max_iter = max_iter
        self.tol = tol


class MatrixScaler(_LinearCalibrator):
    """Matrix scaling (Guo et al. 2017): calibrated logits ``W z + b`` with a full ``W``.

    ``fit(logits, y)`` minimises the mean NLL of ``softmax(W z + b)`` plus
    Kull et al.'s ODIR penalty

        reg_lambda / (K (K - 1)) * sum_{i != j} W_ij^2 + reg_mu / K * sum_j b_j^2

    by trust-region Newton-CG (``K (K + 1)`` parameters, Hessian-vector
    products only). The reported ``W`` and ``b`` have zero off-diagonal
    column sums and ``sum(b) = 0``: the one representative of the fitted map
    that the penalty also selects. Finite logits only.

    Parameters
    ----------
    reg_lambda : float, default 0.0
        Weight on the off-diagonal entries of ``W`` (0: Guo's matrix scaling).
    reg_mu : float, default 0.0
        Weight on the intercept ``b``.
    max_iter : int, default 100
        Newton iterations at most.
    tol : float, default 1e-10
        Gradient-norm tolerance; ending above it warns `CalibratorConvergenceWarning`.

    Attributes
    ----------
    coef_ : ndarray of shape (K, K)
        ``W``.
    intercept_ : ndarray of shape (K,)
        ``b``.
    n_iter_, objective_, gradient_norm_, n_classes_, n_features_in_
        Newton iterations, final objective, its gradient norm, ``K``, ``K``.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    >>> s = MatrixScaler(reg_lambda=1.0, reg_mu=1.0).fit(z, [0, 1, 1, 0, 0])
    >>> s.coef_.shape, s.predict([[3.0, -1.0]])
    ((2, 2), array([0]))
    """

    _PARAMS = ("reg_lambda", "reg_mu", "max_iter", "tol")
    _FORMAT = "thermoscope.matrix_scaler"

    def __init__(
        self,
        *,
        reg_lambda: float = 0.0,
        reg_mu: float = 0.0,
        max_iter: int = 100,
        tol: float = 1e-10,
    ) -> None:
        self.reg_lambda = reg_lambda
        self.reg_mu = reg_mu
        self.max_iter = max_iter
        self.tol = tol
