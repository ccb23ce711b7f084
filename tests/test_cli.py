"""The command line: real output checked against the library, errors as one line and exit 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import special, stats

from thermoscope import __version__
from thermoscope.cli import main

LOGITS = "5,2.2,2,4.5,3,2.7"
Z = np.array([5, 2.2, 2, 4.5, 3, 2.7])


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_softmax_json_matches_scipy(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "softmax", "--logits", LOGITS, "-t", "0.1", "0.5", "1", "2", "5")
    assert [r["temperature"] for r in out["rows"]] == [0.1, 0.5, 1, 2, 5]
    for row in out["rows"]:
        ref = special.softmax(Z / row["temperature"])
        np.testing.assert_allclose(row["probs"], ref, rtol=1e-12, atol=1e-15)
        assert row["entropy"] == pytest.approx(stats.entropy(ref), rel=1e-12)
        assert row["max_probability"] == pytest.approx(ref.max(), rel=1e-12)


def test_softmax_limits_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "softmax", "--logits", "3,3,1,-inf", "-t", "0", "inf")
    assert out["rows"][0]["probs"] == [0.5, 0.5, 0.0, 0.0]
    np.testing.assert_allclose(out["rows"][1]["probs"], [1 / 3, 1 / 3, 1 / 3, 0.0])


def test_softmax_table_has_labels_and_rows(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["softmax", "--logits", "2,1,0.5", "--labels", "cat,dog,fish", "-t", "0.5", "2"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    header, _, first, second, note = text.strip().splitlines()
    assert header.split() == ["T", "cat", "dog", "fish", "entropy", "max", "p"]
    p = special.softmax(np.array([2, 1, 0.5]) / 0.5)
    assert first.split()[1:4] == [f"{v:.4f}" for v in p]
    assert second.split()[0] == "2"
    assert "ln 3" in note


def test_sample_json_frequencies_and_kept_set(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sample", "--logits", LOGITS, "-t", "0.7", "--top-k", "3", "--top-p", "0.9"]
    out = run_json(capsys, *argv, "-n", "20000", "--seed", "0")
    # Independent reference: temperature 0.7, keep the top 3, then the smallest
    # prefix whose mass reaches 0.9 (transformers' order: temperature first).
    p = special.softmax(Z / 0.7)
    top3 = np.argsort(-p)[:3]
    q = p[top3] / p[top3].sum()
    n_keep = int(np.searchsorted(np.cumsum(q), 0.9) + 1)
    kept = sorted(top3[:n_keep].tolist())
    assert [k["index"] for k in out["kept"]] == kept
    ref = p[kept] / p[kept].sum()
    np.testing.assert_allclose([k["prob"] for k in out["kept"]], ref, rtol=1e-9)
    assert out["masked_draws"] == 0
    assert sum(k["count"] for k in out["kept"]) == 20000
    assert out["chi_square_p_value"] > 1e-3


def test_sample_is_reproducible_with_a_seed(capsys: pytest.CaptureFixture[str]) -> None:
    a = run_json(capsys, "sample", "--logits", LOGITS, "-n", "500", "--seed", "7")
    b = run_json(capsys, "sample", "--logits", LOGITS, "-n", "500", "--seed", "7")
    c = run_json(capsys, "sample", "--logits", LOGITS, "-n", "500", "--seed", "8")
    assert a["kept"] == b["kept"]
    assert a["kept"] != c["kept"]


def test_sample_single_kept_token_has_no_p_value(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "sample", "--logits", LOGITS, "-t", "0", "-n", "100")
    assert [k["index"] for k in out["kept"]] == [0]
    assert out["chi_square_p_value"] is None


def test_entropy_target_reaches_the_target(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "entropy-target", "--logits", LOGITS, "--entropy", "1.0")
    t = out["temperature"]
    assert stats.entropy(special.softmax(Z / t)) == pytest.approx(1.0, abs=1e-9)
    bits = run_json(capsys, "entropy-target", "--logits", LOGITS, "--entropy", "1", "--bits")
    assert stats.entropy(special.softmax(Z / bits["temperature"]), base=2) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["softmax", "--logits", "1,abc"], "`--logits`"),
        (["softmax", "--logits", "1,nan"], "`logits`"),
        (["softmax", "--logits", "1,inf"], "`logits`"),
        (["softmax", "--logits", "-inf,-inf"], "`logits`"),
        (["softmax", "--logits", "1,2", "-t", "-1"], "`temperature`"),
        (["softmax", "--logits", "1,2", "-t", "nan"], "`temperature`"),
        (["softmax", "--logits", "1,2", "-t", "hot"], "--temperature"),
        (["softmax", "--logits", "1,2", "--labels", "a"], "`--labels`"),
        (["sample", "--logits", "1,2", "--top-k", "0"], "`--top-k`"),
        (["sample", "--logits", "1,2", "--top-p", "1.5"], "`top_p`"),
        (["sample", "--logits", "1,2", "--top-p", "0"], "`top_p`"),
        (["sample", "--logits", "1,2", "--min-p", "-0.1"], "`min_p`"),
        (["sample", "--logits", "1,2", "--typical-p", "2"], "`typical_p`"),
        (["sample", "--logits", "1,2", "-t", "nan"], "`temperature`"),
        (["sample", "--logits", "1,2", "-n", "0"], "`-n`"),
        (["entropy-target", "--logits", "1,2", "--entropy", "5"], "`target`"),
        (["softmax"], "--logits"),
        (["no-such-command"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(argv))
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert needle in lines[0]
    assert "Traceback" not in captured.err


def test_version_and_help_run_as_a_real_process() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "thermoscope", "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0
    assert version.stdout.strip() == f"thermoscope {__version__}"
    for command in ("softmax", "sample", "entropy-target", "demo"):
        helped = subprocess.run(
            [sys.executable, "-m", "thermoscope", command, "--help"],
            capture_output=True,
            text=True,
        )
        assert helped.returncode == 0
        assert "usage: thermoscope" in helped.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "thermoscope", "softmax", "--logits", "1,nan"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr


def test_import_does_not_load_heavy_backends() -> None:
    code = (
        "import sys, thermoscope, thermoscope.sampling, thermoscope.cli; "
        "heavy = [m for m in ('torch', 'matplotlib', 'transformers') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_demo_prints_every_section_and_writes_the_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["demo", "--seed", "0", "--quick", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    for n in range(1, 9):
        assert f"== {n}." in text
    assert "draws of removed tokens: 0" in text
    saved = (tmp_path / "demo.txt").read_text(encoding="utf-8")
    assert "== 8." in saved
    _check_demo_report(tmp_path, text)


def _check_demo_report(out: Path, stdout: str) -> None:
    """report.html: a section per demo, its reproduce command, its PNGs embedded."""
    import base64
    import html

    from thermoscope.demos import DEMOS
    from thermoscope.demos.theory import THEORY_FIGURES

    page = out / "report.html"
    assert f"report: {page}" in stdout
    raw = page.read_text(encoding="utf-8")
    # Base64 can spell "http" by chance: look for remote references outside the images.
    text_only = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", raw)
    assert "http" not in text_only.lower()
    assert "<script" not in text_only
    assert "<link" not in text_only
    chunks = raw.split("<section ")[1:]
    assert len(chunks) == len(DEMOS)
    for demo, chunk in zip(DEMOS.values(), chunks, strict=True):
        assert f"<h2>{html.escape(demo.title)}</h2>" in chunk
        assert html.escape(demo.reproduce(seed=0, quick=True)) in chunk
    theory = chunks[0]
    for name in THEORY_FIGURES:
        png = (out / name).read_bytes()
        assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in theory
    # Every PNG the demos wrote is embedded in exactly one section.
    for png_path in out.glob("*.png"):
        uri = base64.b64encode(png_path.read_bytes()).decode()
        assert sum(uri in chunk for chunk in chunks) == 1, png_path.name


def test_demo_refuses_a_file_as_output_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "report.txt"
    target.write_text("keep me")
    assert main(["demo", "--quick", "--out", str(target)]) == 2
    assert "`--out`" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_negative_logits_need_no_equals_sign(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "softmax", "--logits", "-1,2,-inf", "-t", "1")
    np.testing.assert_allclose(out["rows"][0]["probs"], [*special.softmax([-1.0, 2.0]), 0.0])


# --- thermoscope demo NAME, --list, and the old *-demo names ------------------------------------


def test_demo_list_and_help_name_every_demo(capsys: pytest.CaptureFixture[str]) -> None:
    from thermoscope.demos import DEMOS

    assert main(["demo", "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == list(DEMOS)
    assert list(DEMOS) == [
        "theory", "calibration", "generation", "distill", "attention", "bandit", "recommend",
        "contrastive", "gumbel",
    ]  # fmt: skip
    with pytest.raises(SystemExit) as info:
        main(["demo", "--help"])
    assert info.value.code == 0
    helped = capsys.readouterr().out
    for name, demo in DEMOS.items():
        assert f"  {name} " in helped
        assert demo.summary in helped


def test_demo_name_runs_one_demo(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from thermoscope.demos.recommend import recommend_demo

    assert main(["demo", "recommend", "--quick", "--seed", "2", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out == recommend_demo(tmp_path, seed=2, quick=True) + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recommend.txt", "recommend_exposure.png"]


def test_demo_unknown_name_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["demo", "exploration"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "invalid choice: 'exploration'" in err


def test_demo_negative_seed_names_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    # Checked while parsing (issue 16, item 9): before any work or progress bar.
    with pytest.raises(SystemExit) as info:
        main(["demo", "theory", "--seed", "-1"])
    assert info.value.code == 2
    assert "`--seed` must be an integer >= 0, got -1." in capsys.readouterr().err


@pytest.mark.parametrize(
    ("old", "name"),
    [
        ("calibrate-demo", "calibration"),
        ("distill-demo", "distill"),
        ("attention-demo", "attention"),
        ("explore-demo", "bandit"),
        ("recommend-demo", "recommend"),
    ],
)
def test_old_demo_commands_are_aliases_with_one_stderr_line(
    capsys: pytest.CaptureFixture[str], old: str, name: str
) -> None:
    import thermoscope.cli

    assert thermoscope.cli.ALIASES[old] == name
    with pytest.raises(SystemExit) as info:
        main([old, "--help"])
    assert info.value.code == 0
    captured = capsys.readouterr()
    assert captured.err == (
        f"`thermoscope {old}` is now `thermoscope demo {name}`; "
        "the old name goes in the next release\n"
    )
    assert "usage: thermoscope demo" in captured.out


def test_old_demo_command_runs_the_same_code(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["--quick", "--seed", "1", "--out"]
    assert main(["recommend-demo", *argv, str(tmp_path / "old")]) == 0
    old = capsys.readouterr()
    assert main(["demo", "recommend", *argv, str(tmp_path / "new")]) == 0
    new = capsys.readouterr()
    assert old.err.count("\n") == 1
    assert new.err == ""
    assert old.out.replace(str(tmp_path / "old"), str(tmp_path / "new")) == new.out
