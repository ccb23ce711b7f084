"""Multiple-choice calibration from option log-likelihoods (calibration.multiple_choice).

References: each question's softmax over its own options written out in
float64, the metrics from their definitions, scipy's scalar minimiser for the
temperature, and ``relplot.smECE`` for smooth ECE.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermoscope.calibration import TemperatureBoundWarning
from thermoscope.calibration.multiple_choice import (
    MultipleChoiceCalibration,
    multiple_choice_calibration,
    option_logits,
)


def _questions(seed: int, n: int = 300, sharp: float = 3.0) -> tuple[list[list[float]], list[int]]:
    """Ragged questions (2 to 5 options) whose answers are drawn from softmax(scores / sharp)."""
    rng = np.random.default_rng(seed)
    scores, answers = [], []
    for _ in range(n):
        k = int(rng.integers(2, 6))
        s = rng.standard_normal(k) * 3 - 5
        p = np.exp(s / sharp - np.max(s / sharp))
        answers.append(int(rng.choice(k, p=p / p.sum())))
        scores.append(s.tolist())
    return scores, answers


def _probs(scores: list[list[float]], t: float) -> list[np.ndarray]:
    out = []
    for s in scores:
        a = np.asarray(s, dtype=np.float64) / t
        e = np.exp(a - a.max())
        out.append(e / e.sum())
    return out


def _ref(scores: list[list[float]], answers: list[int], t: float, n_bins: int) -> dict[str, float]:
    ps = _probs(scores, t)
    n = len(ps)
    conf = np.array([p.max() for p in ps])
    hit = np.array([float(np.argmax(p) == y) for p, y in zip(ps, answers, strict=True)])
    ece = 0.0
    mce = 0.0
    for k in range(n_bins):
        lo, hi = k / n_bins, (k + 1) / n_bins
        inb = (conf >= lo) & ((conf <= hi) if k == n_bins - 1 else (conf < hi))
        if inb.any():
            gap = abs(hit[inb].mean() - conf[inb].mean())
            ece += inb.sum() / n * gap
            mce = max(mce, gap)
    nll = -np.mean([math.log(p[y]) for p, y in zip(ps, answers, strict=True)])
    brier = np.mean(
        [((p - np.eye(len(p))[y]) ** 2).sum() for p, y in zip(ps, answers, strict=True)]
    )
    return {
        "ece": ece,
        "mce": mce,
        "nll": float(nll),
        "brier": float(brier),
        "accuracy": float(hit.mean()),
    }


def _ref_temperature(scores: list[list[float]], answers: list[int]) -> float:
    from scipy.optimize import minimize_scalar

    def nll(u: float) -> float:
        ps = _probs(scores, math.exp(u))
        return -float(np.mean([math.log(p[y]) for p, y in zip(ps, answers, strict=True)]))

    return math.exp(
        minimize_scalar(nll, bounds=(-5, 5), method="bounded", options={"xatol": 1e-12}).x
    )


def _check(summary, want: dict[str, float]) -> None:
    for key, value in want.items():
        assert float(getattr(summary, key)) == pytest.approx(value, abs=1e-9), key


def test_ragged_scores_match_direct_computation():
    scores, answers = _questions(0)
    r = multiple_choice_calibration(scores, answers, n_bins=10)
    t = _ref_temperature(scores, answers)
    assert r.temperature == pytest.approx(t, rel=1e-7)
    assert r.temperature > 1.5  # answers drawn at T = 3: the scores are overconfident
    _check(r.before, _ref(scores, answers, 1.0, 10))
    _check(r.after, _ref(scores, answers, r.temperature, 10))
    assert r.fit.nll_at_one == pytest.approx(_ref(scores, answers, 1.0, 10)["nll"], abs=1e-12)
    assert r.n_questions == 300
    assert r.max_options == 5
    assert isinstance(r, MultipleChoiceCalibration)
    assert "smooth ECE" in str(r)


def test_smooth_ece_is_relplot():
    relplot = pytest.importorskip("relplot")
    scores, answers = _questions(1)
    r = multiple_choice_calibration(scores, answers)
    if getattr(r.before, "smece", None) is None:
        pytest.skip("calibration_summary does not compute smooth ECE here")
    ps = _probs(scores, 1.0)
    conf = np.array([p.max() for p in ps])
    hit = np.array([float(np.argmax(p) == y) for p, y in zip(ps, answers, strict=True)])
    assert float(r.before.smece) == pytest.approx(relplot.smECE(conf, hit), abs=1e-6)


def test_padded_with_mask_equals_ragged():
    scores, answers = _questions(2, n=80)
    width = max(len(s) for s in scores)
    padded = np.full((len(scores), width), np.nan)
    mask = np.zeros((len(scores), width), dtype=bool)
    for i, s in enumerate(scores):
        padded[i, : len(s)] = s
        mask[i, : len(s)] = True
    a = multiple_choice_calibration(scores, answers)
    b = multiple_choice_calibration(padded, answers, mask=mask)
    assert a.temperature == b.temperature
    assert a.after.as_dict() == b.after.as_dict()


def test_lengths_normalise_scores():
    scores, answers = _questions(3, n=60)
    rng = np.random.default_rng(0)
    lengths = [rng.integers(1, 20, len(s)).tolist() for s in scores]
    divided = [
        (np.asarray(s) / np.asarray(n)).tolist() for s, n in zip(scores, lengths, strict=True)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TemperatureBoundWarning)
        a = multiple_choice_calibration(scores, answers, lengths=lengths)
        b = multiple_choice_calibration(divided, answers)
    assert a.temperature == pytest.approx(b.temperature, rel=1e-12)
    _check(a.before, {k: float(getattr(b.before, k)) for k in ("ece", "nll", "brier")})


def test_given_temperature_is_used_not_fitted():
    scores, answers = _questions(4, n=50)
    r = multiple_choice_calibration(scores, answers, temperature=2.5)
    assert r.temperature == 2.5
    assert r.fit.n_iter == 0
    _check(r.after, _ref(scores, answers, 2.5, 15))
    assert r.fit.nll == pytest.approx(_ref(scores, answers, 2.5, 15)["nll"], abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), shift=st.floats(-100, 100, allow_nan=False))
def test_adding_a_constant_per_question_changes_nothing(seed, shift):
    scores, answers = _questions(seed, n=40)
    rng = np.random.default_rng(seed)
    shifted = [(np.asarray(s) + shift * rng.random()).tolist() for s in scores]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TemperatureBoundWarning)
        a = multiple_choice_calibration(scores, answers)
        b = multiple_choice_calibration(shifted, answers)
    assert a.temperature == pytest.approx(b.temperature, rel=1e-6)
    for key in ("ece", "nll", "brier", "accuracy"):
        assert float(getattr(a.after, key)) == pytest.approx(float(getattr(b.after, key)), abs=1e-6)
        assert 0.0 <= float(getattr(a.after, key)) <= (2.0 if key == "brier" else math.inf)


def test_option_logits_pads_with_minus_inf():
    z = option_logits([[1.0, 2.0], [3.0, 4.0, 5.0]])
    assert z.tolist() == [[1.0, 2.0, -math.inf], [3.0, 4.0, 5.0]]
    assert option_logits(np.array([[1.0, 2.0]])).tolist() == [[1.0, 2.0]]


@pytest.mark.parametrize(
    ("scores", "answers", "kw", "exc", "match"),
    [
        ([], [], {}, ValueError, "`scores` must hold at least one question"),
        ([[1.0]], [0], {}, ValueError, "`scores` must give every question at least 2 options"),
        ([[1.0, float("nan")]], [0], {}, ValueError, "`scores` must be finite"),
        ([[1.0, -math.inf]], [0], {}, ValueError, "`scores` must be finite"),
        ([["a", "b"]], [0], {}, TypeError, "`scores` must hold numbers"),
        ("abc", [0], {}, TypeError, "`scores` must be a sequence"),
        ([[1.0, 2.0], [1.0, 2.0, 3.0]], [2, 0], {}, ValueError, "`answers` must name a present"),
        ([[1.0, 2.0]], [5], {}, ValueError, "`answers` must be class indices"),
        ([[1.0, 2.0]], [0.5], {}, TypeError, "`answers` must be integer"),
        ([[1.0, 2.0]], [0, 1], {}, ValueError, "`answers` must have shape"),
        (np.zeros((2, 2)), [0, 0], {"mask": np.ones((2, 3), bool)}, ValueError, "`mask` must"),
        (np.zeros((2, 2)), [0, 0], {"mask": np.ones((2, 2))}, TypeError, "`mask` must"),
        ([[1.0, 2.0]], [0], {"lengths": [[1, 0]]}, ValueError, "`lengths` must be > 0"),
        ([[1.0, 2.0]], [0], {"lengths": [[1, 2, 3]]}, ValueError, "`lengths` must have"),
        ([[1.0, 2.0]], [0], {"temperature": 0.0}, ValueError, "`temperature`"),
        ([[1.0, 2.0]], [0], {"temperature": -1.0}, ValueError, "`temperature`"),
    ],
)
def test_bad_input_names_the_argument(scores, answers, kw, exc, match):
    with pytest.raises(exc, match=match):
        multiple_choice_calibration(scores, answers, **kw)
