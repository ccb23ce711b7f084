"""plot_reliability: the plotted data are the computed curve (checked as data, not pixels)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from thermoscope.calibration.metrics import reliability_curve
from thermoscope.plots import figure_png, figure_regions, plot_reliability, save_figure


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
        {"before": sharp, "after": probs},
        y,
        n_bins=10,
        min_count=1,
        title="T",
        save=tmp_path / "r.png",
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


def sparse_data() -> tuple[np.ndarray, np.ndarray]:
    """400 confident rows (bin 0.9-1) and 3 rows at confidence 0.55: one sparse bin."""
    rng = np.random.default_rng(5)
    top = np.r_[rng.uniform(0.9, 0.99, 400), [0.55, 0.56, 0.57]]
    probs = np.c_[top, 1 - top]
    return probs, (rng.random(403) > top).astype(int)


def test_sparse_bins_are_grey_points_off_the_line() -> None:
    probs, y = sparse_data()
    fig = plot_reliability({"m": probs}, y, n_bins=10, min_count=10)
    curve_ax, hist_ax = fig.axes
    lines = {ln.get_label(): ln for ln in curve_ax.get_lines()}
    (main,) = [ln for k, ln in lines.items() if k.startswith("m (ECE")]
    sparse = lines["bins with < 10 samples"]
    conf, hit = probs.max(axis=1), probs.argmax(axis=1) == y
    np.testing.assert_allclose(main.get_xdata(), [conf[:400].mean()], rtol=1e-12)
    np.testing.assert_allclose(main.get_ydata(), [hit[:400].mean()], rtol=1e-12)
    np.testing.assert_allclose(sparse.get_xdata(), [conf[400:].mean()], rtol=1e-12)
    assert sparse.get_linestyle() == "None"
    # The ECE in the legend still counts every sample, sparse bins included.
    ece = (
        400 * abs(conf[:400].mean() - hit[:400].mean())
        + 3 * abs(conf[400:].mean() - hit[400:].mean())
    ) / 403
    assert main.get_label() == f"m (ECE {ece:.3f})"
    bars = hist_ax.patches
    grey = [i for i, b in enumerate(bars) if b.get_facecolor()[:3] == (176 / 255,) * 3]
    assert [i for i in grey if bars[i].get_height() > 0] == [5]
    assert 9 not in grey
    # min_count=1 puts the sparse bin back on the line.
    fig = plot_reliability({"m": probs}, y, n_bins=10, min_count=1)
    (main,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label().startswith("m (ECE")]
    assert len(main.get_xdata()) == 2


def test_hover_regions_name_each_bin_and_its_count() -> None:
    probs, y = sparse_data()
    fig = plot_reliability({"before": probs, "after": probs}, y, n_bins=10)
    regions = figure_regions(fig)
    assert len(regions) == 20
    texts = [r[4] for r in regions]
    assert texts[5] == (
        f"before: confidence 0.50-0.60, 3 samples, accuracy {np.mean(y[400:] == 0):.3f}"
    )
    assert texts[10 + 9].startswith("after: confidence 0.90-1.00, 400 samples, accuracy ")
    assert texts[0] == "before: confidence 0.00-0.10, 0 samples"
    lefts = [r[0] for r in regions[:10]]
    assert lefts == sorted(lefts)  # bins left to right
    for left, top, width, height, _ in regions:
        assert left >= 0
        assert top >= 0
        assert left + width <= 1
        assert top + height <= 1
        assert width > 0
        assert height > 0


def png_text_chunks(data: bytes) -> dict[str, str]:
    """tEXt and uncompressed iTXt chunks of a PNG, read by hand."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, pos = {}, 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(
            kind + body
        )
        if kind == b"tEXt":
            key, value = body.split(b"\0", 1)
            out[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"iTXt":
            key, rest = body.split(b"\0", 1)
            assert rest[0] == 0  # not compressed
            _, _, text = rest[2:].split(b"\0", 2)
            out[key.decode("latin-1")] = text.decode("utf-8")
        pos += 12 + length
    return out


def test_png_carries_title_caption_and_regions(tmp_path: Path) -> None:
    probs, y = sparse_data()
    fig = plot_reliability({"m": probs}, y, n_bins=10, title="Before: T = 1")
    chunks = png_text_chunks(
        figure_png(fig, caption="The model claims 95%, gets 80% — T fixes it.")
    )
    assert chunks["Title"] == "Before: T = 1"
    assert chunks["Description"] == "The model claims 95%, gets 80% — T fixes it."
    regions = json.loads(chunks["thermoscope:regions"])
    assert [r[4] for r in regions] == [r[4] for r in figure_regions(fig)]
    assert "thermoscope:rank" not in chunks
    path = save_figure(fig, tmp_path / "x.png", rank=2)
    assert png_text_chunks(path.read_bytes())["thermoscope:rank"] == "2"
    # plot_*(save=...) writes the same chunks.
    plot_reliability({"m": probs}, y, n_bins=10, title="T", save=tmp_path / "y.png")
    assert "thermoscope:regions" in png_text_chunks((tmp_path / "y.png").read_bytes())


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3"])
def test_min_count_must_be_a_positive_integer(bad: object) -> None:
    probs, y = sparse_data()
    with pytest.raises((ValueError, TypeError), match="`min_count` must be"):
        plot_reliability({"m": probs}, y, min_count=bad)  # type: ignore[arg-type]
