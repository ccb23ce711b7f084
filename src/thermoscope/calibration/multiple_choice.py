"""Multiple-choice calibration from option log-likelihoods (the lm-evaluation-harness setting).

An evaluation harness scores each answer option of a question by the model's
log-likelihood of its text; the prediction is the best-scoring option. The
model's probability of option ``j`` is then ``softmax(scores / T)_j`` over the
question's options, and calibration asks whether those probabilities match
how often the chosen option is right. Questions may have different numbers of
options: give ragged lists, or a padded array with a ``mask``. Missing options
become ``-inf`` logits (probability exactly 0 at every temperature), so every
metric and the exact temperature fit of this package apply unchanged.

Examples
--------
>>> r = multiple_choice_calibration([[-1.0, -3.0], [-2.0, -2.5, -9.0]], [0, 1])
>>> r.n_questions, r.before.accuracy
(2, 0.5)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from thermoscope._tables import format_table
from thermoscope._typing import FloatArray
from thermoscope._validation import check_labels
from thermoscope.calibration._results import CalibrationSummary
from thermoscope.calibration.fit import TemperatureFit, fit_temperature
from thermoscope.calibration.metrics import calibration_summary

__all__ = ["MultipleChoiceCalibration", "multiple_choice_calibration", "option_logits"]


def _ragged(scores: Any, name: str) -> tuple[FloatArray, np.ndarray]:
    """Padded float64 scores and their mask from a sequence of per-question sequences."""
    rows = []
    for i, row in enumerate(scores):
        try:
            arr = np.asarray(row, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"`{name}` must hold numbers (one sequence per question), got {row!r:.60} "
                f"at question {i}."
            ) from None
        if arr.ndim != 1:
            raise ValueError(
                f"`{name}` must hold one flat sequence per question, got shape {arr.shape} "
                f"at question {i}."
            )
        rows.append(arr)
    width = max((len(r) for r in rows), default=0)
    out = np.zeros((len(rows), width))
    mask = np.zeros((len(rows), width), dtype=bool)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
        mask[i, : len(r)] = True
    return out, mask


def _padded(scores: Any, mask: Any, name: str) -> tuple[FloatArray, np.ndarray]:
    try:
        arr = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a 2-D array of numbers, got {scores!r:.60}.") from None
    if arr.ndim != 2:
        raise ValueError(
            f"`{name}` must be a 2-D array (questions, options) with `mask`, got shape {arr.shape}."
        )
    m = np.asarray(mask)
    if m.dtype != bool:
        raise TypeError(f"`mask` must be a boolean array (True = option present), got {m.dtype}.")
    if m.shape != arr.shape:
        raise ValueError(f"`mask` must have the shape of `{name}`, {arr.shape}, got {m.shape}.")
    return arr, m


def option_logits(
    scores: Any, *, mask: Any = None, lengths: Any = None, name: str = "scores"
) -> FloatArray:
    """Per-option scores as a padded ``(questions, options)`` logit array, ``-inf`` where absent.

    Parameters
    ----------
    scores : sequence of sequences, or 2-D array with ``mask``
        Each question's option scores, typically summed token log-likelihoods.
    mask : array_like of bool, optional
        With a padded ``scores``: True where an option exists. Values where it
        is False are ignored (NaN allowed there).
    lengths : same layout as ``scores``, optional
        Divide each score by its option's length first (lm-evaluation-harness's
        ``acc_norm`` uses the byte length of the option's text). Positive.
    name : str, default "scores"
        The argument's name in error messages.

    Returns
    -------
    ndarray, shape (n_questions, max_options)
        float64 logits, ``-inf`` for missing options.

    Raises
    ------
    ValueError
        No question, a question with fewer than 2 options, a non-finite score
        of a present option, a bad shape, a length <= 0.
    TypeError
        Non-numeric scores, a non-boolean mask.

    Examples
    --------
    >>> option_logits([[-1.0, -2.0], [-0.5, -4.0, -6.0]])
    array([[-1. , -2. , -inf],
           [-0.5, -4. , -6. ]])
    >>> option_logits([[-4.0, -3.0]], lengths=[[2, 1]])
    array([[-2., -3.]])
    """
    z: FloatArray
    present: np.ndarray
    if mask is None:
        if isinstance(scores, np.ndarray) and scores.ndim == 2:
            z, present = np.asarray(scores, dtype=np.float64), np.ones(scores.shape, dtype=bool)
        elif isinstance(scores, (str, bytes)) or not isinstance(scores, (Sequence, np.ndarray)):
            raise TypeError(
                f"`{name}` must be a sequence of per-question score sequences or a 2-D array, "
                f"got {type(scores).__name__}."
            )
        else:
            z, present = _ragged(scores, name)
    else:
        z, present = _padded(scores, mask, name)
    if z.shape[0] == 0:
        raise ValueError(f"`{name}` must hold at least one question, got none.")
    counts = present.sum(axis=1)
    if np.any(counts < 2):
        i = int(np.argmax(counts < 2))
        raise ValueError(
            f"`{name}` must give every question at least 2 options, got {int(counts[i])} "
            f"at question {i}."
        )
    bad = present & ~np.isfinite(z)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(
            f"`{name}` must be finite for every present option, got {z[i, j]} at "
            f"question {i}, option {j}."
        )
    if lengths is not None:
        if mask is None and not (isinstance(lengths, np.ndarray) and lengths.ndim == 2):
            size, size_mask = _ragged(lengths, "lengths")
        else:
            size, size_mask = np.asarray(lengths, dtype=np.float64), present
        if size.shape != z.shape or np.any(size_mask != present):
            raise ValueError(f"`lengths` must have the layout of `{name}` (one per option).")
        if np.any(present & ~(size > 0)):
            raise ValueError("`lengths` must be > 0 for every present option.")
        z = np.divide(z, size, out=np.zeros_like(z), where=present)
    return np.where(present, z, -np.inf)


@dataclass(frozen=True, eq=False)
class MultipleChoiceCalibration:
    """The result of :func:`multiple_choice_calibration`.

    Attributes
    ----------
    temperature : float
        The fitted temperature.
    fit : TemperatureFit
        The certified NLL fit.
    before, after : CalibrationSummary
        Metrics (top-label ECE, MCE, smooth ECE, NLL, Brier, accuracy, curve)
        at ``T = 1`` and at ``temperature``.
    n_questions : int
    max_options : int

    Examples
    --------
    >>> r = multiple_choice_calibration([[0.0, -1.0], [0.0, -2.0], [-1.0, 0.0]], [0, 0, 0])
    >>> round(r.temperature, 4) > 0, r.after.accuracy == r.before.accuracy
    (True, True)
    """

    temperature: float
    fit: TemperatureFit
    before: CalibrationSummary
    after: CalibrationSummary
    n_questions: int
    max_options: int

    def __str__(self) -> str:
        rows: list[list[object]] = []
        for label, key in (
            ("ECE", "ece"),
            ("MCE", "mce"),
            ("smooth ECE", "smece"),
            ("NLL (nats)", "nll"),
            ("Brier", "brier"),
            ("accuracy", "accuracy"),
        ):
            b, a = getattr(self.before, key, None), getattr(self.after, key, None)
            rows.append([label, "-" if b is None else float(b), "-" if a is None else float(a)])
        head = (
            f"temperature T = {self.temperature:.6g} over {self.n_questions} questions "
            f"(up to {self.max_options} options)"
        )
        table = format_table(["metric", "before (T = 1)", f"after (T = {self.temperature:.4g})"],
                             rows)  # fmt: skip
        return f"{head}\n\n{table}"


def multiple_choice_calibration(
    scores: Any,
    answers: Any,
    *,
    mask: Any = None,
    lengths: Any = None,
    n_bins: int = 15,
    temperature: float | None = None,
) -> MultipleChoiceCalibration:
    """Calibration of multiple-choice predictions from option scores; fit one temperature.

    Parameters
    ----------
    scores : sequence of sequences, or 2-D array with ``mask``
        Per-option log-likelihoods (see :func:`option_logits`).
    answers : array_like of int, shape (n_questions,)
        Index of the right option of each question.
    mask, lengths
        As for :func:`option_logits`.
    n_bins : int, default 15
        Equal-width bins for ECE, MCE and the reliability curve.
    temperature : float, optional
        Use this temperature (fitted elsewhere, on a validation split) instead
        of fitting one on these questions.

    Returns
    -------
    MultipleChoiceCalibration

    Raises
    ------
    ValueError
        Bad scores (:func:`option_logits`), an answer that is not a present
        option of its question, a wrong number of answers.
    TypeError
        Non-integer answers.

    Notes
    -----
    ``P(option j) = softmax(scores / T)_j`` over the question's options. The
    fit is :func:`~thermoscope.calibration.fit_temperature` on the padded
    logits: the exact minimiser of the mean NLL (it warns when the optimum is
    beyond its bounds, e.g. when every answer is its question's best score).

    Examples
    --------
    >>> import numpy as np
    >>> scores = np.array([[-1.0, -4.0, np.nan], [-3.0, -2.0, -2.5]])
    >>> mask = np.array([[True, True, False], [True, True, True]])
    >>> r = multiple_choice_calibration(scores, [1, 1], mask=mask, temperature=2.0)
    >>> r.temperature, r.before.accuracy
    (2.0, 0.5)
    """
    z = option_logits(scores, mask=mask, lengths=lengths)
    y = check_labels(answers, z.shape[1], (z.shape[0],), "answers")
    absent = np.isneginf(z[np.arange(z.shape[0]), y])
    if absent.any():
        i = int(np.argmax(absent))
        raise ValueError(
            f"`answers` must name a present option of each question, got {int(y[i])} at "
            f"question {i}, which has {int(np.isfinite(z[i]).sum())} options."
        )
    if temperature is None:
        fit = fit_temperature(z, y)
    else:
        from thermoscope._validation import check_temperature

        t = float(check_temperature(temperature))
        if not 0.0 < t < np.inf:
            raise ValueError(f"`temperature` must be a finite number > 0, got {temperature!r}.")
        from thermoscope.calibration._nll import nll_derivatives

        at_t, at_one = nll_derivatives(z, y, 1.0 / t), nll_derivatives(z, y, 1.0)
        fit = TemperatureFit(t, at_t.nll_sum / at_t.n, at_one.nll_sum / at_one.n, 0, None)
    t = fit.temperature
    before = calibration_summary(z, y, n_bins=n_bins, from_logits=True)
    after = calibration_summary(z / t, y, n_bins=n_bins, from_logits=True)
    return MultipleChoiceCalibration(t, fit, before, after, int(z.shape[0]), int(z.shape[1]))
