"""Intervals of the calibration metrics: coverage, agreement with a naive bootstrap, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from backends import on_torch_backends
from thermoscope.calibration.intervals import MetricInterval, normal_interval
from thermoscope.calibration.metrics import (
    brier_score,
    calibration_summary,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
)

REPLICATIONS = 1000


def _calibrated_binary(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple:
    """p ~ Beta(2, 2) and y ~ Bernoulli(p): a calibrated model, in ``shape`` batches."""
    p = rng.beta(2.0, 2.0, size=shape)
    y = (rng.uniform(size=shape) < p).astype(np.int64)
    return p, y


def _coverage_band() -> tuple[float, float]:
    return 0.93, 0.97


def test_normal_interval_covers_the_true_brier_score_about_95_percent() -> None:
    # True Brier of a calibrated Beta(2, 2) model: E[p (1 - p)] = 1/5 = 0.2 (closed form:
    # E[(p - y)^2 | p] = p (1 - p), and E[p - p^2] = 1/2 - 3/10).
    rng = np.random.default_rng(2024)
    n = 200
    p, y = _calibrated_binary(rng, (REPLICATIONS, n))
    covered = 0
    for i in range(REPLICATIONS):
        iv = brier_score(p[i], y[i], interval=0.95)
        covered += iv.low <= 0.2 <= iv.high
    rate = covered / REPLICATIONS
    low, high = _coverage_band()
    assert low <= rate <= high, rate


def test_normal_interval_covers_the_true_nll_about_95_percent() -> None:
    # True NLL: E[-p log p - (1 - p) log(1 - p)] under Beta(2, 2), by quadrature.
    from scipy.integrate import quad

    def integrand(x: float) -> float:
        return float(stats.beta.pdf(x, 2, 2) * -(x * np.log(x) + (1 - x) * np.log1p(-x)))

    truth = quad(integrand, 0, 1)[0]
    rng = np.random.default_rng(7)
    n = 300
    p, y = _calibrated_binary(rng, (REPLICATIONS, n))
    covered = 0
    for i in range(REPLICATIONS):
        iv = negative_log_likelihood(p[i], y[i], interval=0.95)
        covered += iv.low <= truth <= iv.high
    rate = covered / REPLICATIONS
    low, high = _coverage_band()
    assert low <= rate <= high, rate


def test_bootstrap_interval_covers_the_true_binned_ece_about_95_percent() -> None:
    # A miscalibrated model with a closed-form binned ECE: confidence f ~ U(0.5, 1),
    # P(correct | f) = f - 0.15 (over-confident by 0.15 everywhere), so with bins inside
    # [0.5, 1] every bin's gap is 0.15 and the population ECE is exactly 0.15.
    rng = np.random.default_rng(99)
    n = 400
    covered = 0
    for _ in range(REPLICATIONS):
        f = rng.uniform(0.5, 1.0, size=n)
        hit = rng.uniform(size=n) < f - 0.15
        probs = np.stack([f, 1 - f], axis=1)
        labels = np.where(hit, 0, 1)
        iv = expected_calibration_error(
            probs, labels, n_bins=5, interval=0.95, n_bootstrap=400, seed=int(rng.integers(2**31))
        )
        covered += iv.low <= 0.15 <= iv.high
    rate = covered / REPLICATIONS
    low, high = _coverage_band()
    assert low <= rate <= high, rate


def test_cell_bootstrap_agrees_with_a_naive_resampling_bootstrap() -> None:
    # Independent computation: resample whole rows and recompute the ECE each time.
    rng = np.random.default_rng(5)
    n = 1500
    z = rng.normal(size=(n, 4)) * 2.5
    y = rng.integers(0, 4, n)
    naive = np.empty(600)
    boot = np.random.default_rng(8)
    for b in range(naive.shape[0]):
        i = boot.integers(0, n, n)
        naive[b] = expected_calibration_error(z[i], y[i], from_logits=True, n_bins=10)
    low, high = np.quantile(naive, [0.05, 0.95])
    ours = expected_calibration_error(
        z, y, from_logits=True, n_bins=10, interval=0.9, n_bootstrap=4000
    )
    width = high - low
    assert ours.low == pytest.approx(low, abs=0.1 * width)
    assert ours.high == pytest.approx(high, abs=0.1 * width)


def test_normal_interval_is_the_textbook_formula() -> None:
    terms = np.array([0.1, 0.4, 0.35, 0.8, 0.05])
    iv = normal_interval(terms, 0.9)
    half = stats.norm.ppf(0.95) * terms.std(ddof=1) / np.sqrt(5)
    assert (iv.low, iv.high) == pytest.approx((terms.mean() - half, terms.mean() + half))
    assert iv.method == "normal"


def test_normal_interval_edge_cases() -> None:
    one = normal_interval(np.array([0.3]), 0.95)
    assert one.value == 0.3
    assert np.isnan(one.low)
    assert np.isnan(one.high)
    inf = negative_log_likelihood([[1.0, 0.0], [0.5, 0.5]], [1, 0], interval=0.95)
    assert inf.value == inf.low == inf.high == np.inf


@pytest.mark.parametrize(
    "metric", [expected_calibration_error, maximum_calibration_error, brier_score]
)
def test_value_is_the_plain_metric(metric: object) -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(500, 3))
    y = rng.integers(0, 3, 500)
    iv = metric(z, y, from_logits=True, interval=0.8)  # type: ignore[operator]
    assert isinstance(iv, MetricInterval)
    assert iv.value == metric(z, y, from_logits=True)  # type: ignore[operator]
    assert iv.low <= iv.high
    assert iv.level == 0.8


def test_mce_interval_uses_the_max_norm() -> None:
    rng = np.random.default_rng(4)
    z = rng.normal(size=(800, 3)) * 2
    y = rng.integers(0, 3, 800)
    ece = expected_calibration_error(z, y, from_logits=True, interval=0.9, norm="max", seed=2)
    mce = maximum_calibration_error(z, y, from_logits=True, interval=0.9, seed=2)
    assert ece == mce


def test_quantile_strategy_interval() -> None:
    rng = np.random.default_rng(6)
    z = rng.normal(size=(600, 3)) * 2
    y = rng.integers(0, 3, 600)
    iv = expected_calibration_error(z, y, from_logits=True, strategy="quantile", interval=0.9)
    assert iv.value == expected_calibration_error(z, y, from_logits=True, strategy="quantile")
    assert iv.low < iv.high


def test_summary_reports_every_interval() -> None:
    rng = np.random.default_rng(12)
    z = rng.normal(size=(700, 4)) * 2
    y = rng.integers(0, 4, 700)
    s = calibration_summary(z, y, from_logits=True, interval=0.95, n_bootstrap=200, seed=3)
    assert s.intervals is not None
    assert set(s.intervals) == {"ece", "ece_l2", "mce", "nll", "brier", "smece", "debiased_ce"}
    for name, iv in s.intervals.items():
        assert iv.value == pytest.approx(float(getattr(s, name)), abs=1e-15)
        assert iv.method == ("normal" if name in ("nll", "brier") else "bootstrap")
        assert iv.low <= iv.high
    plain = calibration_summary(z, y, from_logits=True)
    assert plain.intervals is None
    assert plain.smece == s.smece
    assert plain.debiased_ce == s.debiased_ce


@on_torch_backends
def test_torch_refuses_intervals_naming_the_argument(backend: object) -> None:
    t = backend.array([[0.9, 0.1], [0.3, 0.7]])  # type: ignore[attr-defined]
    for metric in (
        expected_calibration_error,
        maximum_calibration_error,
        brier_score,
        negative_log_likelihood,
        calibration_summary,
    ):
        with pytest.raises(TypeError, match="`interval`"):
            metric(t, [0, 1], interval=0.95)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"interval": 1.0}, ValueError, "interval"),
        ({"interval": -0.5}, ValueError, "interval"),
        ({"interval": "95%"}, TypeError, "interval"),
        ({"interval": True}, TypeError, "interval"),
        ({"interval": 0.9, "classwise": True}, ValueError, "interval"),
        ({"interval": 0.9, "n_bootstrap": 0}, ValueError, "n_bootstrap"),
        ({"interval": 0.9, "n_bootstrap": 10**7}, ValueError, "n_bootstrap"),
        ({"interval": 0.9, "seed": -2}, ValueError, "seed"),
    ],
)
def test_bad_interval_options_name_the_argument(kwargs: dict, exc: type, name: str) -> None:
    with pytest.raises(exc, match=f"`{name}`"):
        expected_calibration_error([[0.9, 0.1], [0.4, 0.6]], [0, 1], **kwargs)


def test_dask_input_refuses_intervals_naming_the_argument() -> None:
    da = pytest.importorskip("dask.array")
    p = da.from_array(np.array([[0.9, 0.1], [0.3, 0.7]]), chunks=1)
    with pytest.raises(TypeError, match="`interval`"):
        expected_calibration_error(p, [0, 1], interval=0.9)
    with pytest.raises(TypeError, match="`interval`"):
        brier_score(p, [0, 1], interval=0.9)
