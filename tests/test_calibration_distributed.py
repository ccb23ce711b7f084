"""Metrics and NLL derivative sums on a real two-worker Dask cluster equal the in-memory ones."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from thermoscope.calibration._nll import nll_derivatives
from thermoscope.calibration.dask import nll_derivatives_dask
from thermoscope.calibration.metrics import (
    brier_score,
    calibration_summary,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_curve,
)

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    # Two single-threaded worker processes: results really travel by pickle.
    # dashboard_address=None would still bind the scheduler's HTTP server to
    # port 8787 and warn when a parallel test process holds it: ask for any
    # free loopback port instead.
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address="127.0.0.1:0",
        host="127.0.0.1",
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _data(seed: int, n: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, c)) * rng.uniform(0.5, 4.0, size=(n, 1))
    return z, rng.integers(0, c, size=n)


def _probs(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("from_logits", [False, True])
def test_summary_on_cluster_equals_in_memory(client, strategy: str, from_logits: bool) -> None:
    z, y = _data(0, 3_001, 6)
    x = z if from_logits else _probs(z)
    expected = calibration_summary(x, y, n_bins=12, strategy=strategy, from_logits=from_logits)
    with distributed.get_task_stream(client) as tasks:
        got = calibration_summary(
            da.from_array(x, chunks=(700, 6)),
            da.from_array(y, chunks=500),  # misaligned on purpose: rechunked to x's rows
            n_bins=12,
            strategy=strategy,
            from_logits=from_logits,
        )
    assert len(tasks.data) >= 5  # the blocks really ran on the cluster's workers
    assert got.n_samples == expected.n_samples
    assert got.accuracy == expected.accuracy
    np.testing.assert_array_equal(got.curve.count, expected.curve.count)
    np.testing.assert_array_equal(got.curve.edges, expected.curve.edges)
    for key in ("ece", "ece_l2", "mce", "nll", "brier"):
        assert getattr(got, key) == pytest.approx(getattr(expected, key), rel=1e-12, abs=1e-15)


def test_public_functions_accept_dask_arrays(client) -> None:
    z, y = _data(1, 2_000, 4)
    p = _probs(z)
    dp = da.from_array(p, chunks=(300, 2))  # chunked along classes too: merged first
    dy = da.from_array(y, chunks=300)
    for norm in ("l1", "l2", "max"):
        for classwise in (False, True):
            expected = expected_calibration_error(p, y, norm=norm, classwise=classwise)
            got = expected_calibration_error(dp, dy, norm=norm, classwise=classwise)
            assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert maximum_calibration_error(dp, y) == pytest.approx(maximum_calibration_error(p, y))
    q_expected = expected_calibration_error(p, y, strategy="quantile", n_bins=9)
    assert expected_calibration_error(dp, dy, strategy="quantile", n_bins=9) == pytest.approx(
        q_expected, rel=1e-12
    )
    assert brier_score(dp, dy) == pytest.approx(brier_score(p, y), rel=1e-12)
    assert negative_log_likelihood(dp, dy) == pytest.approx(
        negative_log_likelihood(p, y), rel=1e-12
    )
    dz = da.from_array(z, chunks=(450, 4))
    assert negative_log_likelihood(dz, dy, from_logits=True) == pytest.approx(
        negative_log_likelihood(z, y, from_logits=True), rel=1e-12
    )
    curve, expected_curve = reliability_curve(dp, dy, n_bins=7), reliability_curve(p, y, n_bins=7)
    np.testing.assert_array_equal(curve.count, expected_curve.count)
    np.testing.assert_allclose(curve.accuracy, expected_curve.accuracy, rtol=1e-12)


def test_binary_dask_input(client) -> None:
    rng = np.random.default_rng(2)
    p = rng.uniform(size=1_500)
    y = rng.integers(0, 2, size=1_500)
    got = calibration_summary(da.from_array(p, chunks=400), y, n_bins=10)
    expected = calibration_summary(p, y, n_bins=10)
    for key, value in expected.as_dict().items():
        assert got.as_dict()[key] == pytest.approx(value, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 3.0])
def test_nll_derivatives_on_cluster_equal_in_memory(client, beta: float) -> None:
    z, y = _data(3, 2_500, 5)
    z[::97, 1] = -np.inf  # masked classes ride along
    y[::97] = 0
    expected = nll_derivatives(z, y, beta)
    got = nll_derivatives_dask(
        da.from_array(z, chunks=(600, 5)), da.from_array(y, chunks=600), beta
    )
    assert got.n == expected.n
    for a, b in zip(got[:3], expected[:3], strict=True):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-12)


def test_errors_raised_on_workers_keep_type_and_message(client) -> None:
    z, y = _data(4, 600, 3)
    p = _probs(z)
    p[450, 0] = np.nan  # in the last block: found on a worker
    with pytest.raises(ValueError, match=r"`probs` must be finite"):
        calibration_summary(da.from_array(p, chunks=(200, 3)), y)
    y_bad = y.copy()
    y_bad[10] = 3
    with pytest.raises(ValueError, match=r"`labels` must be class indices in \[0, 2\], got 3"):
        expected_calibration_error(da.from_array(_probs(z), chunks=(200, 3)), y_bad)


def test_dask_argument_errors() -> None:
    # Raised while the graph is built, before any worker is involved.
    p = da.from_array(np.full((4, 2), 0.5), chunks=2)
    with pytest.raises(ValueError, match=r"`labels` must have shape \(4,\) to match `probs`"):
        calibration_summary(p, np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match=r"`probs` must not be empty"):
        calibration_summary(da.zeros((0, 2), chunks=1), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match=r"`probs` must be 1-D \(binary\) or 2-D"):
        calibration_summary(da.zeros((2, 2, 2), chunks=1), np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match=r"`strategy` must be 'uniform' for class-wise ECE"):
        expected_calibration_error(p, np.zeros(4, dtype=int), strategy="quantile", classwise=True)
    with pytest.raises(ValueError, match=r"`n_bins` must be an integer >= 1, got 0"):
        calibration_summary(p, np.zeros(4, dtype=int), n_bins=0)
    with pytest.raises(ValueError, match=r"`beta` must be a finite number >= 0, got -1.0"):
        nll_derivatives_dask(p, np.zeros(4, dtype=int), -1.0)
    unknown = p[p[:, 0] > 0]  # boolean indexing leaves chunk sizes unknown
    with pytest.raises(ValueError, match=r"must have known chunk sizes"):
        calibration_summary(unknown, np.zeros(4, dtype=int))
