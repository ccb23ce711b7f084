"""The digits calibration demo (quick mode): its numbers recomputed independently."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, special

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from thermoscope.demos.calibration import _mlp_logits, calibration_demo, overconfident_mlp


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp("demo")
    return calibration_demo(out, seed=0, quick=True), out


def table_row(text: str, name: str) -> list[float]:
    (line,) = [ln for ln in text.splitlines() if ln.startswith(name)]
    return [float(v) for v in line[len(name) :].split()]


def test_before_after_numbers_are_right(report: tuple[str, Path]) -> None:
    text, _ = report
    mlp, (_, X_val, X_test, _, y_val, y_test) = overconfident_mlp(seed=0)
    z_val, z_test = _mlp_logits(mlp, X_val), _mlp_logits(mlp, X_test)
    # The hand-written forward pass is the network's: its softmax is predict_proba.
    np.testing.assert_allclose(
        special.softmax(z_test, axis=1), mlp.predict_proba(X_test), rtol=1e-9, atol=1e-15
    )
    assert mlp.loss_ < 1e-2  # trained to near-zero training loss

    def nll(z: np.ndarray, y: np.ndarray, t: float) -> float:
        return float(-special.log_softmax(z / t, axis=1)[np.arange(len(y)), y].mean())

    t_ref = optimize.minimize_scalar(
        lambda t: nll(z_val, y_val, t), bounds=(0.1, 10), method="bounded",
        options={"xatol": 1e-10},
    ).x  # fmt: skip
    t_text = float(re.search(r"fitted temperature T = ([\d.]+)", text).group(1))
    assert t_text == pytest.approx(t_ref, abs=1e-4)
    assert t_ref > 1.2  # overconfident: the fit softens it

    nll_row = table_row(text, "NLL (nats)")
    assert nll_row == pytest.approx(
        [nll(z_test, y_test, 1.0), nll(z_test, y_test, t_ref)], abs=1e-4
    )
    assert nll_row[1] < nll_row[0]
    acc = float(np.mean(np.argmax(z_test, axis=1) == y_test))
    assert table_row(text, "accuracy") == pytest.approx([acc, acc], abs=1e-4)
    onehot = np.eye(10)[y_test]
    brier = [
        float(np.mean(np.sum((special.softmax(z_test / t, axis=1) - onehot) ** 2, axis=1)))
        for t in (1.0, t_ref)
    ]
    assert table_row(text, "Brier") == pytest.approx(brier, abs=1e-4)
    conf = table_row(text, "mean confidence")
    assert conf[0] > acc  # says more than it gets right
    assert abs(conf[1] - acc) < abs(conf[0] - acc)


def test_regularisation_acts_like_a_temperature(report: tuple[str, Path]) -> None:
    text, _ = report
    rows = re.findall(r"^(100|1|0\.01)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", text, flags=re.M)
    assert [r[0] for r in rows] == ["100", "1", "0.01"]
    conf = [float(r[1]) for r in rows]
    temps = [float(r[2]) for r in rows]
    ratios = [float(r[3]) for r in rows]
    assert temps[0] == 1.0
    assert conf == sorted(conf, reverse=True)  # more regularisation, less confidence
    assert temps == sorted(temps, reverse=True)
    assert ratios == sorted(ratios, reverse=True)
    assert all(t < 1 for t in temps[1:])


def test_figures_are_written(report: tuple[str, Path]) -> None:
    _, out = report
    for name in ("calibration_before.png", "calibration_after.png", "calibration_reliability.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


def test_bad_seed_and_folder_fail_before_training(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"`seed` must be an integer >= 0, got -1\."):
        calibration_demo(seed=-1, quick=True)
    taken = tmp_path / "taken"
    taken.write_text("x")
    with pytest.raises(ValueError, match="`out_dir` must be a folder, got an existing file"):
        calibration_demo(taken, quick=True)
