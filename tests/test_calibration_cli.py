"""``thermoscope calibrate`` and ``demo calibration``: real output checked against the library.

Every test goes through the real command registry (`thermoscope.cli.main`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import special

import thermoscope.cli
from thermoscope.calibration import TemperatureScaler, calibration_summary, fit_temperature


def make_data(n: int, c: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = 3.0 * rng.standard_normal((n, c))
    p = special.softmax(z / 2.0, axis=1)
    y = np.minimum((np.cumsum(p, axis=1) < rng.random((n, 1))).sum(axis=1), c - 1)
    return z, y


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    z, y = make_data(3000)
    paths = {
        "val": tmp_path / "val.npy",
        "val_y": tmp_path / "val_y.npy",
        "test": tmp_path / "test.npy",
        "test_y": tmp_path / "test_y.npy",
    }
    np.save(paths["val"], z[:2000])
    np.save(paths["val_y"], y[:2000])
    np.save(paths["test"], z[2000:])
    np.save(paths["test_y"], y[2000:])
    return paths


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = thermoscope.cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_equals_the_library(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
) -> None:
    out_json, plot = tmp_path / "t.json", tmp_path / "rel.png"
    code, out, err = run(
        capsys,
        "calibrate",
        "--logits", str(files["val"]), "--labels", str(files["val_y"]),
        "--test-logits", str(files["test"]), "--test-labels", str(files["test_y"]),
        "--out", str(out_json), "--plot", str(plot), "--json",
    )  # fmt: skip
    assert (code, err) == (0, "")
    data = json.loads(out)
    z, y = np.load(files["val"]), np.load(files["val_y"])
    zt, yt = np.load(files["test"]), np.load(files["test_y"])
    t = fit_temperature(z, y).temperature
    assert data["temperature"] == t
    for split, (zz, yy) in (("validation", (z, y)), ("test", (zt, yt))):
        before = calibration_summary(special.softmax(zz, axis=1), yy)
        after = calibration_summary(special.softmax(zz / t, axis=1), yy)
        for key in ("ece", "mce", "nll", "brier", "accuracy"):
            assert data[split]["before"][key] == pytest.approx(getattr(before, key), rel=1e-9)
            assert data[split]["after"][key] == pytest.approx(getattr(after, key), rel=1e-9)
    assert TemperatureScaler.from_json(out_json).temperature_ == t
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_table_and_streaming_agree(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    argv = ["calibrate", "--logits", str(files["val"]), "--labels", str(files["val_y"])]
    code, table, _ = run(capsys, *argv)
    assert code == 0
    header = table.splitlines()[2].split()
    assert header[:3] == ["metric", "validation", "before"]
    assert "accuracy never changes with T" in table
    _, plain, _ = run(capsys, *argv, "--json")
    _, streamed, _ = run(capsys, *argv, "--stream", "--json")
    a, b = json.loads(plain), json.loads(streamed)
    assert b["streamed"] is True
    assert b["temperature"] == pytest.approx(a["temperature"], rel=1e-13)
    for key in ("ece", "mce", "nll", "brier", "accuracy"):
        assert b["validation"]["after"][key] == pytest.approx(
            a["validation"]["after"][key], rel=1e-9
        )


def test_csv_npz_and_probabilities(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    z, y = make_data(500, seed=1)
    np.savetxt(tmp_path / "p.csv", special.softmax(z, axis=1), delimiter=",")
    np.savetxt(tmp_path / "y.csv", y, fmt="%d")
    np.savez(tmp_path / "d.npz", logits=z, labels=y)
    code, out, _ = run(
        capsys, "calibrate", "--logits", str(tmp_path / "p.csv"), "--labels",
        str(tmp_path / "y.csv"), "--probs", "--json",
    )  # fmt: skip
    assert code == 0
    # log(softmax(z)) = z - logsumexp(z): the same T as from the logits, up to the csv's rounding.
    assert json.loads(out)["temperature"] == pytest.approx(
        fit_temperature(z, y).temperature, rel=1e-9
    )
    code, out, _ = run(
        capsys, "calibrate", "--logits", str(tmp_path / "d.npz"), "--labels",
        str(tmp_path / "d.npz"), "--json",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out)["temperature"] == fit_temperature(z, y).temperature


def _bad_files(tmp: Path) -> dict[str, tuple[list[str], str]]:
    z, y = make_data(50, c=4, seed=2)
    np.save(tmp / "z.npy", z)
    np.save(tmp / "y.npy", y)
    np.save(tmp / "y_big.npy", np.where(np.arange(50) == 7, 4, y))
    np.save(tmp / "y_frac.npy", y + 0.5)
    np.save(tmp / "y_short.npy", y[:40])
    z_nan = z.copy()
    z_nan[3, 1] = np.nan
    np.save(tmp / "z_nan.npy", z_nan)
    z_inf = z.copy()
    z_inf[5, 0] = np.inf
    np.save(tmp / "z_inf.npy", z_inf)
    np.save(tmp / "z_empty.npy", np.zeros((0, 4)))
    np.save(tmp / "y_empty.npy", np.zeros(0, dtype=int))
    np.save(tmp / "p_bad.npy", np.full((50, 4), 0.3))
    np.save(tmp / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    (tmp / "z.txt").write_text("1,2\n")
    (tmp / "z_bad.csv").write_text("1,2\nthree,4\n")
    np.savez(tmp / "two.npz", a=z, b=z)
    zz, yy = str(tmp / "z.npy"), str(tmp / "y.npy")

    def f(name: str) -> str:
        return str(tmp / name)

    return {
        "label out of range": (
            ["--logits", zz, "--labels", f("y_big.npy")],
            r"`--labels` must be class indices in \[0, 3\], got 4 at index 7\.",
        ),
        "label not integer": (
            ["--logits", zz, "--labels", f("y_frac.npy")],
            "`--labels` must be integer class indices",
        ),
        "shape mismatch": (
            ["--logits", zz, "--labels", f("y_short.npy")],
            r"`--labels` must have shape \(50,\) \(one label per row\), got shape \(40,\)\.",
        ),
        "nan": (
            ["--logits", f("z_nan.npy"), "--labels", yy],
            r"`--logits` must not contain NaN, got NaN at index \(3, 1\)",
        ),
        "inf": (
            ["--logits", f("z_inf.npy"), "--labels", yy],
            r"`--logits` must be finite or -inf \(masked\), got \+inf",
        ),
        "empty": (
            ["--logits", f("z_empty.npy"), "--labels", f("y_empty.npy")],
            r"`--logits` must not be empty, got shape \(0, 4\)",
        ),
        "probs not summing to 1": (
            ["--logits", f("p_bad.npy"), "--labels", yy, "--probs"],
            r"`--logits` must sum to 1 along axis 1, got a sum of 1\.2",
        ),
        "pickled npy": (
            ["--logits", f("obj.npy"), "--labels", yy],
            r"`--logits` must hold plain numbers, got .*obj\.npy.*needs pickle",
        ),
        "wrong extension": (
            ["--logits", f("z.txt"), "--labels", yy],
            r"`--logits` must be a \.npy, \.npz or \.csv file, got .*z\.txt",
        ),
        "missing file": (
            ["--logits", f("nope.npy"), "--labels", yy],
            r"`--logits` must be an existing file, got .*nope\.npy",
        ),
        "malformed csv": (
            ["--logits", f("z_bad.csv"), "--labels", yy],
            r"`--logits` must be a readable \.csv file",
        ),
        "ambiguous npz": (
            ["--logits", f("two.npz"), "--labels", yy],
            r"`--logits` must be a \.npz holding one array or one named 'logits'",
        ),
        "test labels missing": (
            ["--logits", zz, "--labels", yy, "--test-logits", zz],
            "`--test-labels` must be given together with `--test-logits`",
        ),
        "bins": (
            ["--logits", zz, "--labels", yy, "--n-bins", "0"],
            "`--n-bins` must be an integer >= 1, got 0",
        ),
        "streamed probs": (
            ["--logits", zz, "--labels", yy, "--probs", "--stream"],
            "`--logits` must hold logits when streamed",
        ),
    }


CASES = (
    "label out of range", "label not integer", "shape mismatch", "nan", "inf", "empty",
    "probs not summing to 1", "pickled npy", "wrong extension", "missing file", "malformed csv",
    "ambiguous npz", "test labels missing", "bins", "streamed probs",
)  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str
) -> None:
    argv, pattern = _bad_files(tmp_path)[case]
    code, out, err = run(capsys, "calibrate", *argv)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("thermoscope calibrate: error: ")
    assert re.search(pattern, err), err


def test_separable_data_warns_on_one_stderr_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    np.save(tmp_path / "z.npy", np.array([[3.0, 0.0], [0.0, 2.0], [5.0, 1.0]]))
    np.save(tmp_path / "y.npy", np.array([0, 1, 0]))
    code, out, err = run(
        capsys, "calibrate", "--logits", str(tmp_path / "z.npy"), "--labels",
        str(tmp_path / "y.npy"), "--json",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out)["temperature"] == 1e-4
    (line,) = err.splitlines()
    assert line.startswith("thermoscope calibrate: warning: the validation data are perfectly")


def test_calibration_demo_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "demo", "calibration", "--quick", "--out", str(tmp_path))
    assert (code, err) == (0, "")
    assert "fitted temperature T = " in out
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "calibration_after.png",
        "calibration_before.png",
        "calibration_reliability.png",
    ]
