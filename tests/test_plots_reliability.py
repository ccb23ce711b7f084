"""plot_reliability: the plotted data are the computed curve (checked as data, not pixels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from thermoscope.calibration.metrics import reliability_curve
from thermoscope.plots import plot_reliability


def data(seed: int = 0, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(5, 0.4), size=n)
    y = rng.integers(0, 5, size=n)
    return probs, y


def by_hand(probs: np.ndarray, y: np.ndarray, n_bins: int) -> tuple[np.ndarray, ...]:
    """Top-label bins [k/n, (k+1)/n), last closed: independent of thermoscope."""
    conf, hit = probs.max(axis=1), probs.argmax(axis=1) == y
    idx = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    keep = count > 0
    mean_conf = np.bincount(idx, conf, n_bins)[keep] / count[keep]
    acc = np.bincount(idx, hit.astype(float), n_bins)[keep] / count[keep]
    return mean_conf, acc, count / len(y)


def test_lines_and_bars_are_the_curve(tmp_path: Path) -> None:
    probs, y = data()
    sharp = probs**3 / (probs**3).sum(axis=1, keepdims=True)
    fig = plot_reliability(
        {"before": sharp, "after": probs}, y, n_bins=10, title="T", save=tmp_path / "r.png"
    )
    curve_ax, hist_ax = fig.axes
    assert (curve_ax.get_xlabel(), curve_ax.get_ylabel()) == ("", "accuracy")
    assert hist_ax.get_xlabel() == "confidence (max probability)"
    assert hist_ax.get_ylabel() == "fraction of samples"
    assert curve_ax.get_title() == "T"
    lines = {line.get_label(): line for line in curve_ax.get_lines()}
    legend = [t.get_text() for t in curve_ax.get_legend().get_texts()]
    assert legend[0] == "perfect calibration"
    bars = hist_ax.patches
    assert len(bars) == 20  # 10 bins x 2 models
    for i, (name, p) in enumerate((("before", sharp), ("after", probs))):
        conf, acc, frac = by_hand(p, y, 10)
        (label,) = [k for k in lines if k.startswith(name)]
        np.testing.assert_allclose(lines[label].get_xdata(), conf, rtol=1e-12)
        np.testing.assert_allclose(lines[label].get_ydata(), acc, rtol=1e-12)
        ece = np.sum(np.abs(conf - acc) * frac[frac > 0])
        assert label == f"{name} (ECE {ece:.3f})"
        heights = [b.get_height() for b in bars[10 * i : 10 * (i + 1)]]
        np.testing.assert_allclose(heights, frac, rtol=1e-12)
        lefts = [b.get_x() for b in bars[10 * i : 10 * (i + 1)]]
        np.testing.assert_allclose(lefts, np.arange(10) / 10 + i * 0.05, atol=1e-12)
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_accepts_precomputed_curves_and_sequences() -> None:
    probs, y = data(1, 500)
    curve = reliability_curve(probs, y, n_bins=15)
    fig = plot_reliability(curve)
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("model")]
    np.testing.assert_array_equal(line.get_ydata(), curve.accuracy[curve.count > 0])
    fig = plot_reliability([probs, probs], y)
    assert len(fig.axes[1].patches) == 30


def test_errors() -> None:
    probs, _ = data(2, 10)
    with pytest.raises(ValueError, match="`labels` must be given when `curves` holds probability"):
        plot_reliability(probs)
    with pytest.raises(ValueError, match="`curves` must hold at least one"):
        plot_reliability({})
