"""Dirichlet calibration (Kull et al. 2019): ``softmax(W log p + b)`` with ODIR regularisation.

The full-matrix Dirichlet calibrator is multinomial logistic regression on
the log-probabilities ``log p = log_softmax(z)``; it shares its solver and
estimator protocol with matrix scaling (:mod:`.linear_scalers`), which is the
same map applied to the logits themselves.
"""

from __future__ import annotations

from typing import Any

from thermoscope import _temperature as kernel
from thermoscope.calibration.linear_scalers import MatrixScaler

__all__ = ["DirichletCalibrator"]


class DirichletCalibrator(MatrixScaler):
    """Full-matrix Dirichlet calibration with ODIR, a scikit-learn estimator on logits.

    ``fit(logits, y)`` minimises the mean NLL of ``softmax(W log p + b)``,
    ``log p = log_softmax(logits)``, plus the off-diagonal and intercept
    regularisation (ODIR) of Kull et al. (2019), normalised as in the paper:

        reg_lambda / (K (K - 1)) * sum_{i != j} W_ij^2 + reg_mu / K * sum_j b_j^2

    by trust-region Newton-CG with exact Hessian-vector products, starting
    from the identity (the uncalibrated model). ``log p`` is computed exactly
    from the logits in log space, so no probability is clipped before its log.
    The reported ``W`` has zero off-diagonal column sums and ``sum(b) = 0``
    (the representative the penalty selects; without a penalty, the limit of
    a vanishing one).

    Parameters
    ----------
    reg_lambda : float, default 0.0
        ODIR weight on the off-diagonal entries of ``W``.
    reg_mu : float, default 0.0
        ODIR weight on the intercept ``b``.
    max_iter : int, default 100
        Newton iterations at most.
    tol : float, default 1e-10
        Gradient-norm tolerance; ending above it warns
        `~thermoscope.calibration.linear_scalers.CalibratorConvergenceWarning`.

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
    >>> cal = DirichletCalibrator(reg_lambda=1e-2, reg_mu=1e-2).fit(z, [0, 1, 1, 0, 0])
    >>> p = cal.predict_proba(z)
    >>> bool(np.allclose(p.sum(axis=1), 1.0)), cal.coef_.shape
    (True, (2, 2))
    """

    # MatrixScaler's parameters and solver, on log-probabilities instead of logits.
    _FORMAT = "thermoscope.dirichlet"

    @staticmethod
    def _features(z: Any) -> Any:
        """``log_softmax(z)`` along the classes, in ``z``'s own library and dtype."""
        return kernel.log_softmax(z, 1.0, -1)
