"""Smooth ECE against relplot (Blasiok and Nakkiran's reference code) and its own invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import on_torch_backends, torch
from thermoscope.calibration.intervals import MetricInterval
from thermoscope.calibration.smooth import smooth_calibration_error

relplot = pytest.importorskip("relplot")


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("seed", range(12))
def test_binary_matches_relplot_smece(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 4000))
    f = rng.beta(rng.uniform(0.3, 5), rng.uniform(0.3, 5), size=n)
    y = (rng.uniform(size=n) < f ** rng.uniform(0.3, 3)).astype(int)
    assert smooth_calibration_error(f, y) == pytest.approx(relplot.smECE(f, y), abs=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_top_label_matches_relplot_on_multiclass_logits(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n, c = int(rng.integers(2, 3000)), int(rng.integers(2, 12))
    z = rng.normal(size=(n, c)) * rng.uniform(0.5, 5)
    y = rng.integers(0, c, size=n)
    f, hit = relplot.multiclass_logits_to_confidences(z, y)
    expected = relplot.smECE(f, hit)
    assert smooth_calibration_error(z, y, from_logits=True) == pytest.approx(expected, abs=1e-6)
    assert smooth_calibration_error(_softmax(z), y) == pytest.approx(expected, abs=1e-6)


def _adversarial() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    u = rng.uniform(size=300)
    return {
        "all correct": (u, np.ones(300, dtype=int)),
        "all wrong": (u, np.zeros(300, dtype=int)),
        "constant confidence": (np.full(200, 0.7), rng.integers(0, 2, 200)),
        "constant at 0": (np.zeros(50), rng.integers(0, 2, 50)),
        "constant at 1": (np.ones(50), rng.integers(0, 2, 50)),
        "one sample": (np.array([0.3]), np.array([1])),
        "one sample at 1": (np.array([1.0]), np.array([1])),
        "two samples": (np.array([0.0, 1.0]), np.array([1, 0])),
        "zeros and ones": (np.array([0.0, 1.0, 0.0, 1.0, 0.5]), np.array([0, 1, 1, 0, 1])),
        "ties": (np.repeat([0.2, 0.5, 0.9], 40), rng.integers(0, 2, 120)),
        "perfect": (np.repeat([0.0, 1.0], 30), np.repeat([0, 1], 30)),
        "near edges": (np.array([1e-12, 1 - 1e-12, 0.5, 1e-300]), np.array([0, 1, 0, 1])),
        "large n": (rng.uniform(size=200_000), rng.integers(0, 2, 200_000)),
    }


@pytest.mark.parametrize("case", list(_adversarial()))
def test_adversarial_cases_match_relplot(case: str) -> None:
    f, y = _adversarial()[case]
    expected = relplot.smECE(f.astype(np.float64), y.astype(np.float64))
    assert smooth_calibration_error(f, y) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("bandwidth", [1.0, 0.3, 0.05, 0.01, 0.002, 2.5])
def test_fixed_bandwidth_matches_relplot_smece_sigma(bandwidth: float) -> None:
    rng = np.random.default_rng(3)
    f = rng.uniform(size=1500)
    y = (rng.uniform(size=1500) < f**2).astype(int)
    expected = relplot.smECE_sigma(f, y.astype(float), bandwidth)
    got = smooth_calibration_error(f, y, bandwidth=bandwidth)
    assert got == pytest.approx(expected, abs=1e-6)


def test_float32_input_is_its_float64_value() -> None:
    rng = np.random.default_rng(4)
    p = _softmax(rng.normal(size=(500, 4)) * 2).astype(np.float32)
    y = rng.integers(0, 4, 500)
    f, hit = relplot.multiclass_logits_to_confidences(p.astype(np.float64), y, probs=True)
    assert smooth_calibration_error(p, y) == pytest.approx(relplot.smECE(f, hit), abs=1e-6)


def test_integer_logits_work() -> None:
    z = np.array([[3, 0, 1], [0, 2, 0], [1, 1, 4], [0, 0, 0]])
    y = np.array([0, 2, 2, 1])
    f, hit = relplot.multiclass_logits_to_confidences(z.astype(np.float64), y)
    expected = relplot.smECE(f, hit)
    assert smooth_calibration_error(z, y, from_logits=True) == pytest.approx(expected, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 1)), min_size=1, max_size=60),
)
def test_in_unit_interval_and_order_free(pairs: list[tuple[float, int]]) -> None:
    f = np.array([p for p, _ in pairs])
    y = np.array([label for _, label in pairs])
    value = smooth_calibration_error(f, y)
    assert 0.0 <= value <= 1.0
    perm = np.random.default_rng(len(pairs)).permutation(len(pairs))
    assert smooth_calibration_error(f[perm], y[perm]) == pytest.approx(value, abs=1e-12)


def test_one_column_view_of_binary_is_the_positive_class() -> None:
    # 1-D input is P(y = 1) against y, relplot's own convention.
    f = np.array([0.1, 0.4, 0.8, 0.95])
    y = np.array([0, 1, 1, 1])
    assert smooth_calibration_error(f, y) == pytest.approx(relplot.smECE(f, y), abs=1e-6)


# ----------------------------------------------------------------------------
# Intervals
# ----------------------------------------------------------------------------


def test_interval_is_seeded_and_holds_the_value() -> None:
    rng = np.random.default_rng(5)
    f = rng.uniform(size=3000)
    y = (rng.uniform(size=3000) < f**1.5).astype(int)  # miscalibrated: smECE well above 0
    a = smooth_calibration_error(f, y, interval=0.95, n_bootstrap=300, seed=1)
    b = smooth_calibration_error(f, y, interval=0.95, n_bootstrap=300, seed=1)
    c = smooth_calibration_error(f, y, interval=0.95, n_bootstrap=300, seed=2)
    assert isinstance(a, MetricInterval)
    assert a == b
    assert a != c
    assert a.value == smooth_calibration_error(f, y)
    assert a.low < a.value < a.high
    assert (a.level, a.method) == (0.95, "bootstrap")


def test_interval_agrees_with_a_naive_resampling_bootstrap() -> None:
    # The independent computation: resample the samples themselves and compute the exact
    # smECE of each resample (equal to relplot's, tested above; relplot itself takes 25 s).
    rng = np.random.default_rng(6)
    n = 800
    f = rng.uniform(size=n)
    y = (rng.uniform(size=n) < f**1.3).astype(int)
    boot = np.random.default_rng(11)
    naive = []
    for _ in range(300):
        i = boot.integers(0, n, n)
        naive.append(smooth_calibration_error(f[i], y[i]))
    low, high = np.quantile(naive, [0.05, 0.95])
    ours = smooth_calibration_error(f, y, interval=0.9, n_bootstrap=2000, seed=3)
    width = high - low
    assert ours.low == pytest.approx(low, abs=0.15 * width)
    assert ours.high == pytest.approx(high, abs=0.15 * width)


def test_warm_search_of_resamples_equals_relplots_bisection() -> None:
    from thermoscope.calibration import smooth

    rng = np.random.default_rng(13)
    f = rng.uniform(size=5000)
    y = (rng.uniform(size=5000) < f**1.2).astype(np.float64)
    cells = np.minimum((f * 512).astype(np.intp), 511) * 2 + y.astype(np.intp)
    count = np.bincount(cells, minlength=1024)
    keep = np.flatnonzero(count)
    mean_f = np.bincount(cells, f, 1024)[keep] / count[keep]
    weights = np.vstack([count[keep], rng.multinomial(5000, count[keep] / 5000, size=60)])
    grids = smooth._cell_grids(mean_f, (keep % 2).astype(np.float64), weights.astype(float))
    bisection, sigmas = smooth.smooth_ece_from(grids, 61, None)
    warm = smooth._warm_search(grids, np.arange(1, 61), float(sigmas[0]))
    np.testing.assert_allclose(warm, bisection[1:], rtol=0, atol=1e-12)
    # The search is not idle: the resamples do not all share the data's bandwidth.
    assert np.unique(sigmas).size > 1


# ----------------------------------------------------------------------------
# Torch and bad input
# ----------------------------------------------------------------------------


@on_torch_backends
def test_torch_matches_numpy_on_its_device(backend: object) -> None:
    rng = np.random.default_rng(8)
    z = rng.normal(size=(700, 5)) * 3
    y = rng.integers(0, 5, 700)
    t = backend.array(z)  # type: ignore[attr-defined]
    got = smooth_calibration_error(t, torch.as_tensor(y, device=t.device), from_logits=True)
    backend.check(got)  # type: ignore[attr-defined]
    expected = smooth_calibration_error(z, y, from_logits=True)
    assert float(got) == pytest.approx(expected, rel=backend.rtol, abs=1e-6)  # type: ignore[attr-defined]


@on_torch_backends
def test_torch_refuses_interval_naming_it(backend: object) -> None:
    t = backend.array([[0.9, 0.1], [0.2, 0.8]])  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="`interval`"):
        smooth_calibration_error(t, [0, 1], interval=0.95)


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"bandwidth": 0.0}, ValueError, "bandwidth"),
        ({"bandwidth": -1.0}, ValueError, "bandwidth"),
        ({"bandwidth": 1e-5}, ValueError, "bandwidth"),
        ({"bandwidth": float("nan")}, ValueError, "bandwidth"),
        ({"bandwidth": "wide"}, TypeError, "bandwidth"),
        ({"bandwidth": True}, TypeError, "bandwidth"),
        ({"interval": 1.0}, ValueError, "interval"),
        ({"interval": 0.0}, ValueError, "interval"),
        ({"interval": 95}, ValueError, "interval"),
        ({"interval": "0.95"}, TypeError, "interval"),
        ({"interval": [0.9]}, TypeError, "interval"),
        ({"interval": 0.9, "n_bootstrap": 0}, ValueError, "n_bootstrap"),
        ({"interval": 0.9, "n_bootstrap": 2.5}, TypeError, "n_bootstrap"),
        ({"interval": 0.9, "seed": -1}, ValueError, "seed"),
        ({"interval": 0.9, "seed": 1.5}, TypeError, "seed"),
        ({"from_logits": 1}, TypeError, "from_logits"),
    ],
)
def test_bad_options_name_the_argument(kwargs: dict, exc: type, name: str) -> None:
    with pytest.raises(exc, match=f"`{name}`"):
        smooth_calibration_error([0.2, 0.7], [0, 1], **kwargs)


@pytest.mark.parametrize(
    ("probs", "labels", "name"),
    [
        ([0.2, 1.5], [0, 1], "probs"),
        ([0.2, float("nan")], [0, 1], "probs"),
        ([[0.5, 0.6]], [0], "probs"),
        ([0.2, 0.7], [0, 2], "labels"),
        ([0.2, 0.7], [0], "labels"),
    ],
)
def test_bad_data_name_the_argument(probs: list, labels: list, name: str) -> None:
    with pytest.raises(ValueError, match=f"`{name}`"):
        smooth_calibration_error(probs, labels)
