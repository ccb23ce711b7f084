"""Debiased calibration error against the uncertainty-calibration package (Kumar et al. 2019)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import on_torch_backends, torch
from thermoscope.calibration.debiased import debiased_calibration_error, kumar_edges
from thermoscope.calibration.intervals import MetricInterval

cal = pytest.importorskip("calibration")  # uncertainty-calibration 0.1.4


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _case(seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(2, 3000)), int(rng.integers(2, 7))
    p = _softmax(rng.normal(size=(n, c)) * rng.uniform(0.5, 4))
    return p, rng.integers(0, c, size=n), int(rng.integers(1, 40))


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("debias", [True, False])
@pytest.mark.parametrize(("mode", "classwise"), [("top-label", False), ("marginal", True)])
def test_l2_equal_mass_matches_lower_bound_scaling_ce(
    seed: int, debias: bool, mode: str, classwise: bool
) -> None:
    p, y, n_bins = _case(seed)
    expected = cal.lower_bound_scaling_ce(p, y, p=2, debias=debias, num_bins=n_bins, mode=mode)
    got = debiased_calibration_error(p, y, n_bins=n_bins, debias=debias, classwise=classwise)
    assert got == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("seed", range(10))
def test_defaults_match_get_calibration_error(seed: int) -> None:
    p, y, _ = _case(seed)
    # The reference's default mode is marginal (class-wise); ours is top-label.
    assert debiased_calibration_error(p, y, classwise=True) == pytest.approx(
        cal.get_calibration_error(p, y), abs=1e-9
    )
    assert debiased_calibration_error(p, y) == pytest.approx(
        cal.get_calibration_error(p, y, mode="top-label"), abs=1e-9
    )


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize(("mode", "classwise"), [("top-label", False), ("marginal", True)])
def test_uniform_l1_plugin_matches_get_ece(seed: int, mode: str, classwise: bool) -> None:
    p, y, n_bins = _case(seed)
    expected = cal.get_ece(p, y, num_bins=n_bins, mode=mode)
    got = debiased_calibration_error(
        p, y, n_bins=n_bins, strategy="uniform", norm="l1", debias=False, classwise=classwise
    )
    assert got == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_binary_equal_mass_l1_plugin_matches_get_ece_em(seed: int) -> None:
    rng = np.random.default_rng(50 + seed)
    n = int(rng.integers(2, 2000))
    f = rng.uniform(size=n)
    y = (rng.uniform(size=n) < f).astype(int)
    expected = cal.get_ece_em(f, y, num_bins=10)
    got = debiased_calibration_error(f, y, n_bins=10, norm="l1", debias=False)
    assert got == pytest.approx(expected, abs=1e-9)


def test_more_bins_than_samples_uses_one_bin_per_sample() -> None:
    f = np.array([0.15, 0.35, 0.62, 0.81])
    y = np.array([0, 1, 1, 0])
    expected = cal.lower_bound_scaling_ce(f, y, p=2, debias=False, num_bins=10)
    assert debiased_calibration_error(f, y, n_bins=10, debias=False) == pytest.approx(
        expected, abs=1e-12
    )


def test_edges_follow_array_split_midpoints() -> None:
    # np.array_split(sorted, 3) of 7 values: runs of 3, 2, 2; edges are run midpoints.
    v = np.array([0.7, 0.1, 0.4, 0.2, 0.9, 0.3, 0.6])
    s = np.sort(v)
    expected = [(s[2] + s[3]) / 2, (s[4] + s[5]) / 2, 1.0]
    assert kumar_edges(v, 3, "quantile").tolist() == expected
    assert list(cal.get_equal_bins(list(v), num_bins=3)) == expected


def test_debiased_closed_form_on_a_tiny_case() -> None:
    # One bin (n_bins=1): conf mean 0.6, accuracy 0.5, n = 4:
    # (0.6 - 0.5)^2 - 0.5 * 0.5 / 3 < 0, so the estimate clips to 0.
    f = np.array([0.5, 0.6, 0.6, 0.7])
    y = np.array([0, 1, 0, 1])
    assert debiased_calibration_error(f, y, n_bins=1) == 0.0
    assert debiased_calibration_error(f, y, n_bins=1, debias=False) == pytest.approx(0.1)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 1)), min_size=2, max_size=80))
def test_debiased_never_exceeds_plugin(pairs: list[tuple[float, int]]) -> None:
    f = np.array([p for p, _ in pairs])
    y = np.array([label for _, label in pairs])
    debiased = debiased_calibration_error(f, y, n_bins=4)
    plugin = debiased_calibration_error(f, y, n_bins=4, debias=False)
    assert 0.0 <= debiased <= plugin + 1e-15 <= 1.0 + 1e-15


def test_interval_is_seeded_and_percentile() -> None:
    rng = np.random.default_rng(9)
    f = rng.uniform(size=4000)
    y = (rng.uniform(size=4000) < f**1.5).astype(int)
    a = debiased_calibration_error(f, y, interval=0.9, seed=4)
    assert isinstance(a, MetricInterval)
    assert a == debiased_calibration_error(f, y, interval=0.9, seed=4)
    assert a.value == debiased_calibration_error(f, y)
    assert a.low < a.value < a.high
    assert (a.level, a.method) == (0.9, "bootstrap")


@on_torch_backends
@pytest.mark.parametrize("strategy", ["quantile", "uniform"])
@pytest.mark.parametrize("classwise", [False, True])
def test_torch_matches_numpy(backend: object, strategy: str, classwise: bool) -> None:
    rng = np.random.default_rng(10)
    z = rng.normal(size=(900, 4)) * 2
    y = rng.integers(0, 4, 900)
    t = backend.array(z)  # type: ignore[attr-defined]
    got = debiased_calibration_error(
        t,
        torch.as_tensor(y, device=t.device),
        from_logits=True,
        strategy=strategy,  # type: ignore[arg-type]
        classwise=classwise,
    )
    backend.check(got)  # type: ignore[attr-defined]
    expected = debiased_calibration_error(
        z,
        y,
        from_logits=True,
        strategy=strategy,  # type: ignore[arg-type]
        classwise=classwise,
    )
    assert float(got) == pytest.approx(expected, rel=backend.rtol, abs=1e-9)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"n_bins": 0}, ValueError, "n_bins"),
        ({"n_bins": 2.0}, TypeError, "n_bins"),
        ({"strategy": "equal"}, ValueError, "strategy"),
        ({"norm": "max"}, ValueError, "norm"),
        ({"norm": "l1"}, ValueError, "debias"),
        ({"debias": "yes"}, TypeError, "debias"),
        ({"classwise": 1}, TypeError, "classwise"),
        ({"interval": 0.9, "classwise": True}, ValueError, "interval"),
        ({"interval": 1.5}, ValueError, "interval"),
        ({"interval": 0.9, "n_bootstrap": -3}, ValueError, "n_bootstrap"),
        ({"interval": 0.9, "seed": -1}, ValueError, "seed"),
    ],
)
def test_bad_options_name_the_argument(kwargs: dict, exc: type, name: str) -> None:
    with pytest.raises(exc, match=f"`{name}`"):
        debiased_calibration_error([0.2, 0.7, 0.4], [0, 1, 1], **kwargs)


def test_bad_labels_name_the_argument() -> None:
    with pytest.raises(ValueError, match="`labels`"):
        debiased_calibration_error([[0.2, 0.8]], [2])
