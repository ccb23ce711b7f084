"""Streaming accumulator: chunked updates and merges equal the in-memory metrics."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from thermoscope.calibration.metrics import CalibrationSummary, calibration_summary
from thermoscope.calibration.streaming import CalibrationAccumulator, accumulate_npy


def _data(seed: int, n: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, c)) * rng.uniform(0.5, 4.0, size=(n, 1))
    return z, rng.integers(0, c, size=n)


def _assert_same(got: CalibrationSummary, expected: CalibrationSummary) -> None:
    assert got.n_samples == expected.n_samples
    assert got.accuracy == expected.accuracy  # integer counts: exact
    np.testing.assert_array_equal(got.curve.count, expected.curve.count)
    np.testing.assert_array_equal(got.curve.edges, expected.curve.edges)
    for key in ("ece", "ece_l2", "mce", "nll", "brier"):
        # Only the float64 summation order differs.
        assert getattr(got, key) == pytest.approx(getattr(expected, key), rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(got.curve.confidence, expected.curve.confidence, rtol=1e-12)
    np.testing.assert_allclose(got.curve.accuracy, expected.curve.accuracy, rtol=1e-12)


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 200),
    c=st.integers(2, 6),
    cuts=st.lists(st.floats(0.0, 1.0), max_size=6),
    n_bins=st.integers(1, 20),
    from_logits=st.booleans(),
)
def test_chunked_updates_and_merges_equal_in_memory(
    seed: int, n: int, c: int, cuts: list[float], n_bins: int, from_logits: bool
) -> None:
    z, y = _data(seed, n, c)
    x = z if from_logits else np.exp(z - z.max(1, keepdims=True))
    if not from_logits:
        x /= x.sum(axis=1, keepdims=True)
    expected = calibration_summary(x, y, n_bins=n_bins, from_logits=from_logits)
    bounds = sorted({0, n, *(int(f * n) for f in cuts)})
    chunks = [(x[a:b], y[a:b]) for a, b in itertools.pairwise(bounds) if b > a]

    one = CalibrationAccumulator(n_bins=n_bins, from_logits=from_logits)
    for xc, yc in chunks:
        one.update(xc, yc)
    _assert_same(one.compute(), expected)

    # One accumulator per chunk (a worker each), merged in reverse order.
    parts = [
        CalibrationAccumulator(n_bins=n_bins, from_logits=from_logits).update(xc, yc)
        for xc, yc in chunks
    ]
    merged = CalibrationAccumulator(n_bins=n_bins, from_logits=from_logits)
    for part in reversed(parts):
        merged.merge(part)
    _assert_same(merged.compute(), expected)


def test_binary_chunks_and_temperature() -> None:
    rng = np.random.default_rng(1)
    logodds = rng.normal(size=300) * 3
    y = rng.integers(0, 2, size=300)
    acc = CalibrationAccumulator(n_bins=10, from_logits=True)
    for a in range(0, 300, 77):
        acc.update(logodds[a : a + 77], y[a : a + 77], temperature=1.7)
    _assert_same(acc.compute(), calibration_summary(logodds / 1.7, y, n_bins=10, from_logits=True))


def test_accumulate_npy_equals_in_memory(tmp_path) -> None:
    z, y = _data(3, 1_003, 7)
    z32 = z.astype(np.float32)
    np.save(tmp_path / "logits.npy", z32)
    np.save(tmp_path / "labels.npy", y)
    acc = accumulate_npy(
        tmp_path / "logits.npy", tmp_path / "labels.npy", from_logits=True, chunk_size=100
    )
    _assert_same(acc.compute(), calibration_summary(z32, y, from_logits=True))
    scaled = accumulate_npy(
        str(tmp_path / "logits.npy"),
        str(tmp_path / "labels.npy"),
        from_logits=True,
        temperature=2.0,
        chunk_size=64,
        progress=False,
        n_bins=10,
    )
    _assert_same(
        scaled.compute(),
        calibration_summary(z32.astype(np.float64) / 2.0, y, n_bins=10, from_logits=True),
    )


def test_accumulate_npy_probabilities(tmp_path) -> None:
    z, y = _data(4, 500, 3)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    acc = accumulate_npy(tmp_path / "p.npy", tmp_path / "y.npy", chunk_size=1_000, progress=False)
    _assert_same(acc.compute(), calibration_summary(p, y))


def test_state_is_small_and_picklable() -> None:
    z, y = _data(5, 2_000, 4)
    acc = CalibrationAccumulator(n_bins=15, from_logits=True)
    for a in range(0, 2_000, 250):
        acc.update(z[a : a + 250], y[a : a + 250])
    assert acc._sums.count.shape == (15,)  # O(n_bins), whatever N is
    clone = pickle.loads(pickle.dumps(acc))
    _assert_same(clone.compute(), acc.compute())
    assert acc.n_classes == 4
    assert "n_samples=2000" in repr(acc)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def test_quantile_cannot_stream() -> None:
    with pytest.raises(ValueError, match=r"`strategy` must be 'uniform' for streaming"):
        CalibrationAccumulator(strategy="quantile")
    with pytest.raises(ValueError, match=r"`strategy` must be one of 'uniform', 'quantile'"):
        CalibrationAccumulator(strategy="mass")


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"n_bins": 0}, ValueError, r"`n_bins` must be an integer >= 1, got 0"),
        ({"n_bins": 1.5}, TypeError, r"`n_bins` must be an integer >= 1"),
        ({"n_classes": 1}, ValueError, r"`n_classes` must be None or an integer >= 2, got 1"),
        ({"n_classes": 2.0}, ValueError, r"`n_classes` must be None or an integer >= 2"),
        ({"from_logits": 1}, TypeError, r"`from_logits` must be True or False"),
    ],
)
def test_bad_constructor(kwargs, exc, match) -> None:
    with pytest.raises(exc, match=match):
        CalibrationAccumulator(**kwargs)


def test_bad_updates() -> None:
    acc = CalibrationAccumulator(n_classes=3)
    with pytest.raises(ValueError, match=r"`probs` must have n_classes=3 columns, got 2"):
        acc.update([[0.5, 0.5]], [0])
    acc.update([[0.5, 0.25, 0.25]], [0])
    with pytest.raises(ValueError, match=r"`probs` must be 2-D like the earlier chunks"):
        acc.update([0.5], [0])
    with pytest.raises(ValueError, match=r"`labels` must be class indices in \[0, 2\], got 3"):
        acc.update([[0.5, 0.25, 0.25]], [3])
    with pytest.raises(ValueError, match=r"`probs` must sum to 1"):
        acc.update([[0.5, 0.25, 0.2]], [0])
    with pytest.raises(ValueError, match=r"`temperature` must be 1.0 unless `from_logits=True`"):
        acc.update([[0.5, 0.25, 0.25]], [0], temperature=2.0)
    logit_acc = CalibrationAccumulator(from_logits=True)
    with pytest.raises(ValueError, match=r"`temperature` must be a finite number > 0, got 0.0"):
        logit_acc.update([[1.0, 0.0]], [0], temperature=0.0)
    with pytest.raises(TypeError, match=r"`temperature` must be a finite number > 0"):
        logit_acc.update([[1.0, 0.0]], [0], temperature="hot")
    assert acc.n_samples == 1  # failed chunks left no trace


def test_bad_merge_and_empty_compute() -> None:
    a = CalibrationAccumulator(n_bins=10)
    with pytest.raises(ValueError, match=r"`CalibrationAccumulator` must have seen at least one"):
        a.compute()
    with pytest.raises(ValueError, match=r"`other` must have n_bins=10 and from_logits=False"):
        a.merge(CalibrationAccumulator(n_bins=5))
    with pytest.raises(TypeError, match=r"`other` must be a CalibrationAccumulator, got dict"):
        a.merge({})  # type: ignore[arg-type]
    a.update([[0.9, 0.1]], [0])
    b = CalibrationAccumulator(n_bins=10).update([[0.2, 0.3, 0.5]], [2])
    with pytest.raises(ValueError, match=r"`probs` must have n_classes=2 columns, got 3"):
        a.merge(b)
    assert a.merge(CalibrationAccumulator(n_bins=10)).n_samples == 1  # empty merge is a no-op


def test_accumulate_npy_bad_files(tmp_path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(tmp_path / "p.npy", np.array([[0.9, 0.1], [0.2, 0.8]]))
    np.save(tmp_path / "y.npy", np.array([0, 1]))
    np.save(tmp_path / "y3.npy", np.array([0, 1, 1]))
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"`path_probs` must be a .npy file of numbers"):
        accumulate_npy(tmp_path / "obj.npy", tmp_path / "y.npy")
    with pytest.raises(ValueError, match=r"`path_labels` must be a .npy file of numbers"):
        accumulate_npy(tmp_path / "p.npy", tmp_path / "obj.npy")
    with pytest.raises(ValueError, match=r"`path_labels` must hold shape \(2,\)"):
        accumulate_npy(tmp_path / "p.npy", tmp_path / "y3.npy")
    with pytest.raises(TypeError, match=r"`path_labels` must hold a numeric array, got dtype <U1"):
        accumulate_npy(tmp_path / "p.npy", tmp_path / "s.npy")
    with pytest.raises(ValueError, match=r"`chunk_size` must be an integer >= 1, got 0"):
        accumulate_npy(tmp_path / "p.npy", tmp_path / "y.npy", chunk_size=0)
    with pytest.raises(TypeError, match=r"`chunk_size` must be an integer >= 1"):
        accumulate_npy(tmp_path / "p.npy", tmp_path / "y.npy", chunk_size=2.0)
    with pytest.raises(ValueError, match=r"`temperature` must be 1.0 unless"):
        accumulate_npy(tmp_path / "p.npy", tmp_path / "y.npy", temperature=3.0)
