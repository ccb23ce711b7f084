"""Input checks of the calibration package and the clean batch the kernels work on.

Every public function checks its options here and turns ``(probs, labels)``
into a :class:`Batch`: validated probabilities (or probabilities computed
from logits), int64 labels checked by :func:`thermoscope._validation.check_labels`
and, for logits, the exact log-probability of each true class. The kernels
of :mod:`._binning` and :mod:`._nll` then never re-check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from thermoscope import _temperature as kernel
from thermoscope._arrays import to_numpy
from thermoscope._backend import input_eps, is_torch
from thermoscope._typing import Array, FloatArray, IntArray
from thermoscope._validation import (
    as_float_array,
    check_labels,
    check_logits,
    check_probabilities,
)
from thermoscope.calibration._binning import blocked_top_label

Strategy = Literal["uniform", "quantile"]
Norm = Literal["l1", "l2", "max"]

STRATEGIES: tuple[str, ...] = ("uniform", "quantile")
NORMS: tuple[str, ...] = ("l1", "l2", "max")


# ----------------------------------------------------------------------------
# Options
# ----------------------------------------------------------------------------


#: The most bins: each costs memory (counts and sums per bin, per class for the
#: classwise metrics), and finer bins than this hold too few samples to mean anything.
MAX_BINS = 1_000_000


def check_n_bins(n_bins: Any) -> int:
    """Return ``n_bins`` as an int >= 1; reject bools, floats and arrays.

    Examples
    --------
    >>> check_n_bins(15)
    15
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)):
        raise TypeError(f"`n_bins` must be an integer >= 1, got {n_bins!r}.")
    if n_bins < 1:
        raise ValueError(f"`n_bins` must be an integer >= 1, got {int(n_bins)}.")
    if n_bins > MAX_BINS:
        raise ValueError(f"`n_bins` must be an integer <= {MAX_BINS}, got {int(n_bins)}.")
    return int(n_bins)


def check_choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``allowed``; else a ValueError naming ``name``.

    Examples
    --------
    >>> check_choice("l2", "norm", NORMS)
    'l2'
    """
    if not isinstance(value, str) or value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"`{name}` must be one of {options}, got {value!r}.")
    return value


def check_from_logits(from_logits: Any) -> bool:
    """Reject anything but a bool for ``from_logits``.

    Examples
    --------
    >>> check_from_logits(True)
    True
    """
    if not isinstance(from_logits, (bool, np.bool_)):
        raise TypeError(f"`from_logits` must be True or False, got {from_logits!r}.")
    return bool(from_logits)


def is_dask_array(x: object) -> bool:
    """True for a Dask array, decided by its module so that Dask is never imported.

    Examples
    --------
    >>> is_dask_array([1.0])
    False
    """
    return type(x).__module__.split(".", 1)[0] == "dask" and hasattr(x, "chunks")


def check_temperature_rows(temperature: Any, n_samples: int) -> None:
    """A scalar temperature, or one per row: shape ``()`` or ``(n_samples,)``."""
    shape = tuple(temperature.shape) if is_torch(temperature) else np.shape(temperature)
    if shape not in ((), (n_samples,)):
        raise ValueError(
            "`temperature` must be a scalar or have one value per row, "
            f"shape ({n_samples},), got shape {shape}."
        )


def check_scaling_temperature(temperature: Any, from_logits: bool, probs: Any) -> Any:
    """A finite ``T > 0`` dividing logits: a float, a float64 array, or a tensor (kept as is).

    ``T`` other than 1 needs ``from_logits=True``. A tensor ``T`` is kept for
    its gradient, so it needs torch ``probs``.

    Examples
    --------
    >>> check_scaling_temperature(2, True, [[1.0, 0.0]])
    2.0
    """
    if is_torch(temperature):
        if not from_logits:
            raise ValueError(
                "`temperature` must be 1.0 unless `from_logits=True` (it divides logits), "
                "got a tensor."
            )
        if not is_torch(probs):
            raise TypeError(
                "`temperature` must be a number or a numpy array for non-tensor `probs` "
                "(a tensor temperature needs torch logits to keep its gradient), got a tensor."
            )
        import torch

        if temperature.is_complex() or not temperature.dtype.is_floating_point:
            temperature = temperature.to(torch.float64)
        bad = ~(torch.isfinite(temperature) & (temperature > 0))
        if bool(bad.any()):
            raise ValueError(
                "`temperature` must be a finite number > 0, "
                f"got {temperature[bad].reshape(-1)[0].tolist()!r}."
            )
        return temperature
    try:
        arr = np.asarray(temperature, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"`temperature` must be a finite number > 0, got {temperature!r}."
        ) from None
    bad = ~(np.isfinite(arr) & (arr > 0))
    if np.any(bad):
        raise ValueError(
            f"`temperature` must be a finite number > 0, got {float(arr[bad].flat[0])!r}."
        )
    if not from_logits and np.any(arr != 1.0):
        raise ValueError(
            "`temperature` must be 1.0 unless `from_logits=True` (it divides logits), "
            f"got {temperature!r}."
        )
    return float(arr) if arr.ndim == 0 else arr


# ----------------------------------------------------------------------------
# Clean inputs
# ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Batch:
    """Validated probabilities, int64 labels and, for logits, the exact log of the true class.

    ``probs`` is ``(n, n_classes)``, or ``(n,)`` holding ``P(y = 1)`` for binary
    input, in float32 or float64 as given (float32 widens to float64 exactly,
    per use, so a float32 matrix is never copied whole for top-label metrics).
    ``log_p_true`` is ``log p(y_i)`` computed in log space from logits, so that
    it stays finite where the probability underflows to 0; ``None`` for
    probability input. ``conf`` and ``hit`` are the top-label confidence (in
    the dtype of ``probs``) and correctness of 2-D probability input, found by
    the same blocked pass that validates it; ``None`` where not computed yet.
    """

    probs: FloatArray
    labels: IntArray
    log_p_true: FloatArray | None = None
    conf: Array | None = None
    hit: Array | None = None

    @property
    def binary(self) -> bool:
        """True for 1-D ``P(y = 1)`` input."""
        return self.probs.ndim == 1

    @property
    def n_classes(self) -> int:
        """Number of classes (2 for binary input)."""
        return 2 if self.binary else int(self.probs.shape[1])

    def log_true(self) -> FloatArray:
        """``log p(y_i)`` in float64; ``-inf`` where a probability of 0 was given."""
        if self.log_p_true is not None:
            return self.log_p_true
        if self.binary:
            p = self.probs.astype(np.float64)
            p_true = np.where(self.labels == 1, p, 1.0 - p)
        else:
            p_true = self.probs[np.arange(self.labels.shape[0]), self.labels].astype(np.float64)
        # A zero probability on the observed label is an infinite loss, not an
        # error: that is the honest value of -log 0, and it is documented.
        with np.errstate(divide="ignore"):
            return np.log(p_true)

    def top_label_native(self) -> tuple[Array, Array]:
        """(confidence in the dtype of ``probs``, correct as bool); positive class for 1-D."""
        if self.binary:
            return self.probs, self.labels == 1
        if self.conf is not None and self.hit is not None:
            return self.conf, self.hit
        conf, hit, _ = blocked_top_label(self.probs, self.labels)
        return conf, hit

    def top_label(self) -> tuple[FloatArray, FloatArray]:
        """(confidence, correct) in float64: top-label for 2-D, positive-class for 1-D."""
        if self.binary:
            return self.probs.astype(np.float64), self.labels.astype(np.float64)
        conf, hit = self.top_label_native()
        return conf.astype(np.float64), hit.astype(np.float64)

    def n_correct(self) -> int:
        """Number of samples whose predicted class (arg-max; 1 iff P(y=1) > 0.5) is right."""
        if self.binary:
            return int(np.count_nonzero((self.probs > 0.5).astype(np.int64) == self.labels))
        return int(np.count_nonzero(self.top_label_native()[1]))

    def brier_terms(self) -> FloatArray:
        """Per-sample Brier loss: ``sum_c (p_c - onehot_c)^2``, or ``(p - y)^2`` for 1-D."""
        if self.binary:
            return np.asarray((self.probs.astype(np.float64) - self.labels) ** 2)
        diff = self.probs.astype(np.float64)  # always a copy here: float32 or float64 alike
        diff[np.arange(diff.shape[0]), self.labels] -= 1.0
        return np.asarray(np.einsum("ij,ij->i", diff, diff))

    def class_probs(self) -> FloatArray:
        """float64 ``(n, n_classes)`` probabilities; binary ``p`` becomes ``[1 - p, p]``."""
        p = self.probs.astype(np.float64, copy=False)
        return np.stack([1.0 - p, p], axis=1) if self.binary else p


def prepare(probs: Any, labels: Any, from_logits: bool, temperature: Any = 1.0) -> Batch:
    """Validate ``probs`` (or logits) and ``labels``; return clean data for the kernels.

    ``temperature`` (a checked number, or one per row) divides the logits:
    the log-probabilities are the kernel's ``log_softmax(z / T)``.

    Examples
    --------
    >>> prepare([[0.25, 0.75]], [1], False).n_correct()
    1
    """
    check_from_logits(from_logits)
    x, y = scores_and_labels(probs, labels, "probs", "binary: P(y = 1)")
    binary = x.ndim == 1
    if from_logits:
        check_temperature_rows(temperature, x.shape[0])
        x = two_column_logits(x, "probs")
        logp = kernel.log_softmax(x, temperature, 1)
        log_p_true = logp[np.arange(x.shape[0]), y]
        p = np.exp(logp)
        return Batch(p[:, 1] if binary else p, y, log_p_true)
    if binary:
        if not np.all(np.isfinite(x)):
            raise ValueError("`probs` must be finite probabilities, got NaN or inf.")
        outside = (x < 0) | (x > 1)
        if np.any(outside):
            raise ValueError(f"`probs` must lie in [0, 1], got {x[outside][0].tolist()!r}.")
        return Batch(x, y)
    conf, hit = _check_probability_rows(x, y, input_eps(probs))
    return Batch(x, y, conf=conf, hit=hit)


def scores_and_labels(scores: Any, labels: Any, name: str, one_d: str) -> tuple[Array, IntArray]:
    """``scores`` as 1-D (binary, meaning ``one_d``) or 2-D (>= 2 columns) numpy, and labels.

    Examples
    --------
    >>> x, y = scores_and_labels([[0.0, 1.0]], [1.0], "logits", "log-odds")
    >>> x.shape, y.tolist()
    ((1, 2), [1])
    """
    x, _ = as_float_array(scores, name)
    if x.ndim not in (1, 2):
        raise ValueError(
            f"`{name}` must be 1-D ({one_d}) or 2-D (n_samples, n_classes), got shape {x.shape}."
        )
    if x.ndim == 2 and x.shape[1] < 2:
        raise ValueError(f"`{name}` must have at least 2 classes (columns), got shape {x.shape}.")
    n_classes = 2 if x.ndim == 1 else x.shape[1]
    return x, numpy_labels(labels, n_classes, x.shape[0])


def numpy_labels(labels: Any, n_classes: int, n_rows: int, name: str = "labels") -> IntArray:
    """Labels as a checked int64 numpy array of shape ``(n_rows,)`` (a tensor is read to the host).

    Examples
    --------
    >>> numpy_labels([0, 2.0, 1], 3, 3)
    array([0, 2, 1])
    """
    arr, _ = to_numpy(labels, name)
    out: IntArray = check_labels(arr, n_classes, (n_rows,), name)
    return out


def two_column_logits(z: Array, name: str) -> FloatArray:
    """float64 (n, C) logits; 1-D log-odds become the two logits ``(0, z)``.

    Logits are always worked in float64: the softmax of float32 logits
    saturates to exactly 1.0 for a gap above about 17.

    Examples
    --------
    >>> two_column_logits(np.array([2.0]), "logits").tolist()
    [[0.0, 2.0]]
    """
    z = z.astype(np.float64, copy=False)
    if z.ndim == 1:
        if not np.all(np.isfinite(z)):
            raise ValueError(f"`{name}` must be finite log-odds, got NaN or inf.")
        return np.stack([np.zeros_like(z), z], axis=1)
    check_logits(z, name)
    return z


def logits_and_labels(logits: Any, labels: Any, label_name: str) -> tuple[Array, IntArray]:
    """Validated 2-D logits (N, C), C >= 2, and labels for a fit; a memmap stays a memmap.

    A memory-mapped array is not scanned here (that would read the whole
    file): its values are checked chunk by chunk as the solver streams them.

    Examples
    --------
    >>> z, y = logits_and_labels([[1.0, 0.0]], [0], "labels")
    >>> z.shape, y.tolist()
    ((1, 2), [0])
    """
    if isinstance(logits, np.memmap):
        z: Array = logits
        if z.dtype.kind not in "iuf":
            raise TypeError(f"`logits` must be a numeric array, got dtype {z.dtype}.")
        if z.size == 0:
            raise ValueError(f"`logits` must not be empty, got shape {z.shape}.")
    else:
        z, _ = as_float_array(logits, "logits")
    if z.ndim != 2:
        raise ValueError(
            f"`logits` must be a 2-D array (samples, classes), got shape {tuple(z.shape)}."
        )
    if z.shape[1] < 2:
        raise ValueError(
            f"`logits` must have at least 2 classes (columns), got shape {tuple(z.shape)}."
        )
    y = numpy_labels(labels, z.shape[1], z.shape[0], label_name)
    if not isinstance(z, np.memmap):
        check_logits(z, "logits")
    return z, y


def _sum_error_bound(n_terms: int, unit_roundoff: float) -> float:
    """Bound on the relative error of any float sum of ``n_terms`` non-negative numbers."""
    m = (n_terms - 1) * unit_roundoff
    return m / (1.0 - m) if m < 0.5 else np.inf


def _check_probability_rows(x: Array, y: IntArray, eps: float) -> tuple[Array, Array]:
    """Validate 2-D probabilities like ``check_probabilities`` and return (conf, hit).

    One blocked pass screens the data: its smallest entry, its row maxima and
    its row sums. Data that pass the screen pass ``check_probabilities``;
    anything else (NaN, inf, an entry outside [0, 1], a row sum near or past
    the tolerance) goes to ``check_probabilities`` itself, which raises its
    usual error -- or accepts the data, when only the screen's safety margin
    was crossed. The margin covers rounding: ``check_probabilities`` sums each
    row in the array's dtype, in an order of numpy's choosing; the screen sums
    in ``acc`` (float64 where the array's dtype leaves too little room), and
    two float sums of ``k`` non-negative terms differ by at most the sum of
    their error bounds.
    """
    k = x.shape[1]
    tol = eps + 1e-6 * max(1.0, float(np.sqrt(k)))  # check_probabilities' tolerance
    unit = float(np.finfo(x.dtype).eps) / 2
    acc = x.dtype
    margin = 2 * _sum_error_bound(k, unit)
    if margin > tol / 2:
        acc = np.dtype(np.float64)
        margin = _sum_error_bound(k, unit) + _sum_error_bound(k, 2.0**-53)
    margin *= 1.01 * (1.0 + tol)  # the row sums themselves are at most about 1 + tol
    # NaN and inf only reach the stats checked below, which send them on to
    # check_probabilities for the error message; silence their warnings here.
    with np.errstate(invalid="ignore", over="ignore"):
        conf, hit, stats = blocked_top_label(x, y, acc)
        assert stats is not None
        low, sum_low, sum_high = stats
        passed = (
            low >= 0
            and float(conf.max()) <= 1
            and 1.0 - sum_low <= tol - margin
            and sum_high - 1.0 <= tol - margin
        )
    if not passed:
        # check_probabilities sums the rows before it looks for NaN and inf;
        # the error it raises for them is the message, not a warning.
        with np.errstate(invalid="ignore", over="ignore"):
            check_probabilities(x, "probs", axis=1, eps=eps)
    return conf, hit
