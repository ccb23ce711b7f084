"""The calibration showcase: a network that memorised noisy labels, before and after T.

Its numbers are recomputed here with scipy and a by-hand ECE, its figures read
back as data, and the case is checked to be what it claims: large, real
miscalibration that one temperature removes most of.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from thermoscope.demos.calibration import (
    LABEL_NOISE,
    _splits,
    calibration_demo,
    mlp_logits,
    noisy_label_mlp,
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp("calibration")
    return calibration_demo(out, seed=0, quick=True), out


@pytest.fixture(scope="module")
def model() -> tuple[Any, tuple[np.ndarray, ...]]:
    return noisy_label_mlp(seed=0, quick=True)


def nll(z: np.ndarray, y: np.ndarray, t: float) -> float:
    return float(-log_softmax(z / t, axis=1)[np.arange(y.size), y].mean())


def ece(z: np.ndarray, y: np.ndarray, t: float, n_bins: int = 15) -> float:
    p = softmax(z / t, axis=1)
    conf, hit = p.max(axis=1), p.argmax(axis=1) == y
    idx = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    return (
        sum(
            (idx == b).sum() * abs(conf[idx == b].mean() - hit[idx == b].mean())
            for b in range(n_bins)
            if (idx == b).any()
        )
        / y.size
    )


def row(text: str, name: str) -> list[float]:
    (line,) = [ln for ln in text.splitlines() if ln.startswith(name)]
    return [float(v) for v in line[len(name) :].split()]


def test_labels_are_noisy_only_in_training(model: Any) -> None:
    mlp, (X_train, _, _, noisy, y_val, y_test) = model
    _, _, _, clean, clean_val, clean_test = _splits(0)
    wrong = noisy != clean
    assert abs(wrong.mean() - LABEL_NOISE) < 0.05
    np.testing.assert_array_equal(y_val, clean_val)
    np.testing.assert_array_equal(y_test, clean_test)
    assert mlp.score(X_train, noisy) > 0.98  # it memorised the wrong labels too


def test_showcase_numbers_are_right(run: tuple[str, Path], model: Any) -> None:
    text, _ = run
    mlp, (_, X_val, X_test, _, y_val, y_test) = model
    z_val, z_test = mlp_logits(mlp, X_val), mlp_logits(mlp, X_test)
    t_ref = float(
        np.exp(
            minimize_scalar(
                lambda s: nll(z_val, y_val, float(np.exp(s))),
                bounds=(-3, 4),
                method="bounded",
                options={"xatol": 1e-10},
            ).x
        )
    )
    match = re.search(r"Temperature fitted on the clean validation split .*: T = (\d+\.\d+)", text)
    assert match is not None
    assert float(match.group(1)) == pytest.approx(t_ref, abs=1e-4)
    assert row(text, "expected calibration error (ECE, 15 bins)") == pytest.approx(
        [ece(z_test, y_test, 1.0), ece(z_test, y_test, t_ref)], abs=1e-4
    )
    assert row(text, "negative log-likelihood (nats)") == pytest.approx(
        [nll(z_test, y_test, 1.0), nll(z_test, y_test, t_ref)], abs=1e-4
    )
    onehot = np.eye(10)[y_test]
    brier = [
        float(np.mean(np.sum((softmax(z_test / t, axis=1) - onehot) ** 2, axis=1)))
        for t in (1.0, t_ref)
    ]
    assert row(text, "mean squared error of the probabilities (Brier)") == pytest.approx(
        brier, abs=1e-4
    )
    acc = float(np.mean(z_test.argmax(axis=1) == y_test))
    assert row(text, "top-1 accuracy (T cannot change it)") == pytest.approx([acc, acc], abs=1e-4)


def test_the_case_convinces(run: tuple[str, Path]) -> None:
    text, _ = run
    ece_b, ece_a = row(text, "expected calibration error (ECE, 15 bins)")
    nll_b, nll_a = row(text, "negative log-likelihood (nats)")
    brier_b, brier_a = row(text, "mean squared error of the probabilities (Brier)")
    conf_b, conf_a = row(text, "average confidence")
    acc, _ = row(text, "top-1 accuracy (T cannot change it)")
    assert ece_b > 0.1  # large, real miscalibration
    assert ece_a < ece_b / 2
    assert nll_a < nll_b - 0.1
    assert brier_a < brier_b  # unlike the clean network, every score improves
    assert conf_b - acc > 0.1
    assert abs(conf_a - acc) < abs(conf_b - acc) / 2


def test_figures_show_before_then_after_and_nll_ece_against_t(
    run: tuple[str, Path], model: Any
) -> None:
    from PIL import Image

    _, out = run
    chunks = {
        name: Image.open(out / name).text  # type: ignore[attr-defined]
        for name in (
            "calibration_before.png",
            "calibration_after.png",
            "calibration_reliability.png",
        )
    }
    ranks = [int(chunks[n]["thermoscope:rank"]) for n in chunks]
    assert ranks == [1, 2, 3]  # the report shows before, after, then the metrics
    assert chunks["calibration_before.png"]["Title"].startswith("Before")
    assert chunks["calibration_after.png"]["Title"].startswith("After")
    assert "thermoscope:regions" in chunks["calibration_before.png"]
    assert "NLL and ECE" in chunks["calibration_reliability.png"]["Title"]


def test_metrics_figure_plots_nll_and_ece_of_the_logits(model: Any) -> None:
    from thermoscope.demos.calibration import _metrics_figure

    mlp, (_, _, X_test, _, _, y_test) = model
    z = mlp_logits(mlp, X_test)
    fig = _metrics_figure({"noisy": (z, y_test, 2.0)})
    ax_nll, ax_ece = fig.axes
    line_nll, line_ece = ax_nll.get_lines()[0], ax_ece.get_lines()[0]
    temps = np.asarray(line_nll.get_xdata())
    assert 1.0 in temps
    assert 2.0 in temps
    np.testing.assert_allclose(line_nll.get_ydata(), [nll(z, y_test, t) for t in temps], rtol=1e-9)
    np.testing.assert_allclose(
        line_ece.get_ydata(), [ece(z, y_test, t) for t in temps], rtol=1e-9, atol=1e-12
    )
    assert ax_nll.get_ylabel() == "test NLL (nats)"
    assert ax_ece.get_ylabel() == "test ECE (15 bins)"
