"""``thermoscope calibrate --interval``: real subprocesses, output checked against the library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import special

from thermoscope.calibration.metrics import calibration_summary


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "thermoscope", "calibrate", *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    z = 3.0 * rng.standard_normal((1500, 5))
    p = special.softmax(z / 2.0, axis=1)  # the labels follow T = 2: the fit has work to do
    y = np.minimum((np.cumsum(p, axis=1) < rng.random((1500, 1))).sum(axis=1), 4)
    folder = tmp_path_factory.mktemp("cal")
    paths = {"z": folder / "z.npy", "y": folder / "y.npy"}
    np.save(paths["z"], z)
    np.save(paths["y"], y)
    return paths


def test_json_intervals_are_the_library_s(data: dict[str, Path]) -> None:
    out = _run(
        "--logits", str(data["z"]), "--labels", str(data["y"]),
        "--interval", "0.9", "--n-bootstrap", "300", "--seed", "5", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert (report["interval"], report["n_bootstrap"], report["seed"]) == (0.9, 300, 5)
    z, y = np.load(data["z"]), np.load(data["y"])
    t = report["temperature"]
    options = {"from_logits": True, "interval": 0.9, "n_bootstrap": 300, "seed": 5}
    expected = {
        "before": calibration_summary(z, y, **options),
        "after": calibration_summary(z / t, y, **options),
    }
    split = report["validation"]
    for when, summary in expected.items():
        assert summary.intervals is not None
        assert split[when]["smece"] == pytest.approx(summary.smece, rel=1e-12)
        assert split[when]["debiased_ce"] == pytest.approx(summary.debiased_ce, rel=1e-12)
        for key in ("ece", "mce", "smece", "debiased_ce", "nll", "brier"):
            got = split["intervals"][when][key]
            iv = summary.intervals[key]
            assert (got["low"], got["high"]) == pytest.approx((iv.low, iv.high), rel=1e-12)
            assert got["method"] == iv.method
    assert split["intervals"]["before"]["nll"]["method"] == "normal"
    assert split["intervals"]["before"]["ece"]["method"] == "bootstrap"


def test_table_prints_intervals_and_the_new_metrics(data: dict[str, Path]) -> None:
    out = _run(
        "--logits", str(data["z"]), "--labels", str(data["y"]),
        "--interval", "0.95", "--n-bootstrap", "200",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = {line.split("  ")[0].strip(): line for line in out.stdout.splitlines()}
    for label in ("ECE", "MCE", "smECE", "debiased CE (l2)", "NLL (nats)", "Brier"):
        assert label in rows, out.stdout
        assert rows[label].count("[") == 2  # one interval before, one after
    assert "0.95 intervals; normal for NLL and Brier" in out.stdout
    assert "200 resamples, seed 0" in out.stdout


def test_without_interval_no_brackets_but_new_metrics(data: dict[str, Path]) -> None:
    out = _run("--logits", str(data["z"]), "--labels", str(data["y"]), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["interval"] is None
    assert "intervals" not in report["validation"]
    z, y = np.load(data["z"]), np.load(data["y"])
    plain = calibration_summary(z, y, from_logits=True)
    assert report["validation"]["before"]["smece"] == pytest.approx(plain.smece, rel=1e-12)


def test_streamed_input_prints_n_a_and_refuses_intervals(data: dict[str, Path]) -> None:
    out = _run("--logits", str(data["z"]), "--labels", str(data["y"]), "--stream")
    assert out.returncode == 0, out.stderr
    assert "n/a" in out.stdout
    refused = _run(
        "--logits", str(data["z"]), "--labels", str(data["y"]), "--stream", "--interval", "0.9"
    )
    assert refused.returncode != 0
    assert "`--interval`" in refused.stderr


@pytest.mark.parametrize(
    ("extra", "name"),
    [
        (["--interval", "1.5"], "--interval"),
        (["--interval", "0"], "--interval"),
        (["--interval", "0.9", "--n-bootstrap", "0"], "--n-bootstrap"),
        (["--interval", "0.9", "--seed", "-1"], "--seed"),
    ],
)
def test_bad_interval_options_name_the_flag(
    data: dict[str, Path], extra: list[str], name: str
) -> None:
    out = _run("--logits", str(data["z"]), "--labels", str(data["y"]), *extra)
    assert out.returncode != 0
    assert f"`{name}`" in out.stderr
