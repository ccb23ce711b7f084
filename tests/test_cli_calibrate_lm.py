"""``thermoscope calibrate-lm``: the embedded model on a small held-out corpus, and bad input.

Every case runs the real command in a subprocess (``python -m thermoscope``).
The corpus is part of a standard-library file that the embedded model never
trained on (its ``training.json`` lists the held-out files), capped at a few
hundred tokens so the run takes seconds.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from thermoscope.models import embedded_model_path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "thermoscope", "calibrate-lm", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _held_out_file() -> Path:
    info = json.loads((embedded_model_path() / "training.json").read_text())
    root = Path(sysconfig.get_paths()["stdlib"])
    for name in ("fnmatch.py", "operator.py", "struct.py"):
        if name in info["data"]["val_file_names"] and (root / name).is_file():
            return root / name
    pytest.skip("no held-out standard-library file of the embedded model on this Python")


def _one_error_line(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("thermoscope calibrate-lm: error: ")
    assert needle in lines[0]


def test_embedded_model_on_a_small_held_out_corpus(tmp_path):
    path = _held_out_file()
    plot = tmp_path / "rel.png"
    common = ["--text", str(path), "--max-tokens", "400", "--window", "64", "--seed", "3"]
    proc = _cli(*common, "--json", "--plot", str(plot))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["n_fit_tokens"] + out["n_eval_tokens"] == 400
    assert out["window"] == 64
    assert out["n_texts"] == 1
    assert out["temperature"] > 0
    assert out["fit_nll_after"] <= out["fit_nll_before"]
    before, after = out["before"], out["after"]
    assert before["accuracy"] == after["accuracy"]
    for side in (before, after):
        assert side["perplexity"] == pytest.approx(math.exp(side["nll"]))
        for key in ("ece", "mce", "classwise_ece", "brier"):
            assert 0.0 <= side[key] <= 2.0
    assert plot.stat().st_size > 1000
    # The table is the same run (same seed): its numbers are the JSON's.
    text = _cli(*common)
    assert text.returncode == 0, text.stderr
    assert f"T = {out['temperature']:.6g}" in text.stdout
    ece_row = next(line for line in text.stdout.splitlines() if line.startswith("ECE "))
    assert ece_row.split()[1:] == [f"{before['ece']:.4f}", f"{after['ece']:.4f}"]


def test_missing_file(tmp_path):
    _one_error_line(_cli("--text", str(tmp_path / "nope.txt")), "`--text` must be existing")


def test_binary_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    _one_error_line(_cli("--text", str(path)), "`--text` must be text files")


def test_empty_text(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n   \n")
    _one_error_line(_cli("--text", str(path)), "`--text` must be files with some text")


def test_bad_model_folder(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("x = 1\n" * 50)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    _one_error_line(_cli("--text", str(path), "--model", str(folder)), "`--model` must be")
    _one_error_line(
        _cli("--text", str(path), "--model", str(tmp_path / "none")), "no such directory"
    )


def test_bad_option_values(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("x = 1\n")
    proc = _cli("--text", str(path), "--batch-size", "0")
    assert proc.returncode == 2
    assert "`--batch-size` must be an integer >= 1" in proc.stderr
    assert "Traceback" not in proc.stderr
