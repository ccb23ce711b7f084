"""Class-wise calibration error streamed by CalibrationAccumulator: any chunking, any merge order.

The streamed value equals the in-memory ``expected_calibration_error(...,
classwise=True)`` to 1e-12 and a direct float64 transcription of the
definition (Kull et al., 2019) written here; equal-mass bins are refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from thermoscope.calibration import CalibrationAccumulator, expected_calibration_error

NORMS = ("l1", "l2", "max")


def reference_classwise(probs: np.ndarray, labels: np.ndarray, n_bins: int, norm: str) -> float:
    """Class-wise ECE by definition: bins [k/n, (k+1)/n), the last closed; mean over classes."""
    p2 = probs if probs.ndim == 2 else np.stack([1.0 - probs, probs], axis=1)
    edges = np.arange(n_bins + 1) / n_bins
    errors = []
    for c in range(p2.shape[1]):
        p = p2[:, c].astype(np.float64)
        hit = (labels == c).astype(np.float64)
        which = np.searchsorted(edges[1:-1], p, side="right")
        gaps, weights = [], []
        for k in range(n_bins):
            inside = which == k
            if inside.any():
                gaps.append(abs(hit[inside].mean() - p[inside].mean()))
                weights.append(inside.sum() / p.size)
        g, w = np.array(gaps), np.array(weights)
        errors.append({"l1": (w * g).sum(), "l2": np.sqrt((w * g**2).sum()), "max": g.max()}[norm])
    return float(np.mean(errors))


@st.composite
def chunked_data(draw: Any) -> tuple[np.ndarray, np.ndarray, list[int], int]:
    n = draw(st.integers(1, 60))
    c = draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):
        # Probabilities on a grid k / M: many fall exactly on bin edges.
        m = draw(st.sampled_from([4, 10, 12, 30]))
        counts = rng.multinomial(m, np.full(c, 1.0 / c), size=n)
        probs = counts / m
    else:
        probs = rng.dirichlet(np.full(c, draw(st.sampled_from([0.1, 1.0, 5.0]))), size=n)
    labels = rng.integers(0, c, size=n)
    cuts = sorted(draw(st.lists(st.integers(1, max(n - 1, 1)), max_size=5, unique=True)))
    cuts = [k for k in cuts if 0 < k < n]
    n_bins = draw(st.integers(1, 20))
    return probs, labels, cuts, n_bins


def stream(probs: Any, labels: np.ndarray, cuts: list[int], **kwargs: Any) -> Any:
    acc = CalibrationAccumulator(classwise=True, **kwargs)
    for part, lab in zip(np.split(probs, cuts), np.split(labels, cuts), strict=True):
        acc.update(part, lab)
    return acc


@settings(max_examples=200)
@given(chunked_data(), st.sampled_from(NORMS))
def test_streamed_equals_in_memory(data: Any, norm: str) -> None:
    probs, labels, cuts, n_bins = data
    acc = stream(probs, labels, cuts, n_bins=n_bins)
    got = acc.calibration_error(norm=norm, classwise=True)
    expected = expected_calibration_error(probs, labels, n_bins=n_bins, norm=norm, classwise=True)
    assert got == pytest.approx(expected, abs=1e-12, rel=0)
    assert got == pytest.approx(reference_classwise(probs, labels, n_bins, norm), abs=1e-12, rel=0)
    # The top-label error of the same accumulator is unchanged by classwise=True.
    top = expected_calibration_error(probs, labels, n_bins=n_bins, norm=norm)
    assert acc.calibration_error(norm=norm) == pytest.approx(top, abs=1e-12, rel=0)


@settings(max_examples=100)
@given(chunked_data(), st.randoms(use_true_random=False))
def test_merge_in_any_order(data: Any, shuffler: Any) -> None:
    probs, labels, cuts, n_bins = data
    parts = [
        CalibrationAccumulator(n_bins=n_bins, classwise=True).update(p, y)
        for p, y in zip(np.split(probs, cuts), np.split(labels, cuts), strict=True)
    ]
    shuffler.shuffle(parts)
    merged = CalibrationAccumulator(n_bins=n_bins, classwise=True)
    for part in parts:
        merged.merge(part)
    expected = expected_calibration_error(probs, labels, n_bins=n_bins, classwise=True)
    assert merged.calibration_error(classwise=True) == pytest.approx(expected, abs=1e-12, rel=0)
    assert merged.n_samples == probs.shape[0]


@settings(max_examples=100)
@given(chunked_data())
def test_streamed_logits_and_binary(data: Any) -> None:
    probs, labels, cuts, n_bins = data
    z = np.log(probs + 1e-3)
    acc = stream(z, labels, cuts, n_bins=n_bins, from_logits=True)
    expected = expected_calibration_error(
        z, labels, n_bins=n_bins, classwise=True, from_logits=True
    )
    assert acc.calibration_error(classwise=True) == pytest.approx(expected, abs=1e-12, rel=0)
    p1 = probs[:, 1] / (probs[:, 0] + probs[:, 1] + 1e-300)
    y1 = (labels == 1).astype(np.int64)
    acc = stream(p1, y1, cuts, n_bins=n_bins)
    expected = expected_calibration_error(p1, y1, n_bins=n_bins, classwise=True)
    assert acc.calibration_error(classwise=True) == pytest.approx(expected, abs=1e-12, rel=0)
    assert expected == pytest.approx(reference_classwise(p1, y1, n_bins, "l1"), abs=1e-12)


def test_streamed_with_temperature() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(5000, 7)) * 3.0
    y = rng.integers(0, 7, size=5000)
    acc = CalibrationAccumulator(n_bins=15, from_logits=True, classwise=True)
    for lo in range(0, 5000, 777):
        acc.update(z[lo : lo + 777], y[lo : lo + 777], temperature=2.5)
    expected = reference_classwise(special.softmax(z / 2.5, axis=1), y, 15, "l1")
    assert acc.calibration_error(classwise=True) == pytest.approx(expected, abs=1e-12, rel=0)


def test_torch_chunks_match_numpy() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    probs = rng.dirichlet(np.ones(5), size=300)
    labels = rng.integers(0, 5, size=300)
    acc = CalibrationAccumulator(n_bins=10, classwise=True)
    for lo in range(0, 300, 64):
        acc.update(torch.from_numpy(probs[lo : lo + 64]), torch.from_numpy(labels[lo : lo + 64]))
    expected = expected_calibration_error(probs, labels, n_bins=10, classwise=True)
    assert acc.calibration_error(classwise=True) == pytest.approx(expected, abs=1e-12, rel=0)


# ---------------------------------------------------------------------------
# Refusals


def test_equal_mass_bins_refused_naming_strategy() -> None:
    with pytest.raises(ValueError, match=r"^`strategy` must be 'uniform' for streaming"):
        CalibrationAccumulator(strategy="quantile", classwise=True)


def test_classwise_not_kept_refused() -> None:
    acc = CalibrationAccumulator().update([[0.9, 0.1]], [0])
    with pytest.raises(ValueError, match=r"^`classwise` must be False for an accumulator built"):
        acc.calibration_error(classwise=True)


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match=r"^`classwise` must be True or False, got 'yes'\.$"):
        CalibrationAccumulator(classwise="yes")  # type: ignore[arg-type]
    acc = CalibrationAccumulator(classwise=True)
    with pytest.raises(ValueError, match=r"must have seen at least one sample"):
        acc.calibration_error(classwise=True)
    acc.update([[0.9, 0.1]], [0])
    with pytest.raises(ValueError, match=r"^`norm` must be"):
        acc.calibration_error(norm="l3")
    with pytest.raises(ValueError, match=r"^`other` must have .*classwise=True"):
        acc.merge(CalibrationAccumulator().update([[0.9, 0.1]], [0]))


def test_failed_chunk_leaves_no_trace() -> None:
    acc = CalibrationAccumulator(n_bins=4, classwise=True).update([[0.9, 0.1]], [0])
    before = acc.calibration_error(classwise=True)
    with pytest.raises(ValueError, match=r"`probs`"):
        acc.update([[0.9, 0.2]], [0])  # a row that does not sum to 1
    with pytest.raises(ValueError, match=r"`probs` must have n_classes=2"):
        acc.update([[0.5, 0.25, 0.25]], [0])
    assert acc.n_samples == 1
    assert acc.calibration_error(classwise=True) == before


def test_cuda_chunks_match_numpy_without_host_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    rng = np.random.default_rng(5)
    z = rng.normal(size=(3000, 11)) * 2.0
    y = rng.integers(0, 11, size=3000)
    expected = CalibrationAccumulator(n_bins=15, from_logits=True, classwise=True)
    got = CalibrationAccumulator(n_bins=15, from_logits=True, classwise=True)
    zc, yc = torch.from_numpy(z).cuda(), torch.from_numpy(y).cuda()
    for lo in range(0, 3000, 512):
        expected.update(z[lo : lo + 512], y[lo : lo + 512], temperature=1.5)
    # The chunk itself never comes to the host: only the packed sums do, through to_numpy.
    for name in ("__array__", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, lambda *a, **k: pytest.fail("host copy"))
    for lo in range(0, 3000, 512):
        got.update(zc[lo : lo + 512], yc[lo : lo + 512], temperature=1.5)
    monkeypatch.undo()
    assert got.calibration_error(classwise=True) == pytest.approx(
        expected.calibration_error(classwise=True), abs=1e-12, rel=0
    )
    assert got.compute().ece == pytest.approx(expected.compute().ece, abs=1e-12, rel=0)
