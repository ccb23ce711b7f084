"""The bandit (Boltzmann exploration) and recommendation demos, and ``demo NAME`` (quick modes).

Figures are checked through their plotted data, never their pixels.
"""

from __future__ import annotations

import argparse
import math
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from thermoscope.cli import build_parser
from thermoscope.demos.bandit import (
    BanditData,
    bandit_data,
    bandit_demo,
    bandit_figure,
    bandit_policies,
    bandit_table,
)
from thermoscope.demos.recommend import (
    HEAD_FRACTION,
    RecommendData,
    recommend_data,
    recommend_demo,
    recommend_figure,
    recommend_table,
)
from thermoscope.rl import BoltzmannPolicy, run_bandit

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def bandit() -> BanditData:
    return bandit_data(seed=0, quick=True)


@pytest.fixture(scope="module")
def rec() -> RecommendData:
    return recommend_data(seed=0, quick=True)


def table_rows(text: str) -> dict[str, list[str]]:
    """A format_table table as {first cell: other cells}, split at the dashed rule's columns."""
    lines = text.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("---"))
    spans = [m.span() for m in re.finditer(r"-+", lines[rule])]
    out = {}
    for line in lines[rule + 1 :]:
        if not line.strip():
            break
        cells = [line[a:b].strip() for a, b in spans]
        out[cells[0]] = cells[1:]
    return out


# --- bandit -------------------------------------------------------------------------------


def test_bandit_curves_are_the_simulator_s(bandit: BanditData) -> None:
    assert (bandit.n_arms, bandit.n_steps, bandit.n_runs) == (10, 300, 200)
    labels = [c.label for c in bandit.curves]
    assert labels == [label for label, _, _ in bandit_policies(300)]
    for c in bandit.curves[::4]:
        r = run_bandit(c.policy, n_arms=10, n_steps=300, n_runs=200, rng=0)
        np.testing.assert_array_equal(c.mean_regret, r.mean_regret)
        np.testing.assert_array_equal(c.optimal_rate, r.optimal_rate)


def test_bandit_figure_plots_the_computed_curves(bandit: BanditData) -> None:
    fig = bandit_figure(bandit)
    regret_ax, temp_ax = fig.axes
    lines = {line.get_label(): line for line in regret_ax.lines}
    assert set(lines) == {c.label for c in bandit.curves}
    for c in bandit.curves:
        np.testing.assert_array_equal(lines[c.label].get_xdata(), np.arange(1, 301))
        np.testing.assert_allclose(lines[c.label].get_ydata(), c.mean_regret)
    schedules = [c for c in bandit.curves if c.kind == "schedule"]
    assert [line.get_label() for line in temp_ax.lines] == [c.label for c in schedules]
    for line, c in zip(temp_ax.lines, schedules, strict=True):
        assert isinstance(c.policy, BoltzmannPolicy)
        expected = [c.policy.schedule(s) for s in range(300)]
        np.testing.assert_allclose(line.get_ydata(), expected)


def test_bandit_table_shows_the_computed_numbers(bandit: BanditData) -> None:
    rows = table_rows(bandit_table(bandit))
    assert set(rows) == {c.label for c in bandit.curves}
    for c in bandit.curves:
        early, final, sem, optimal = map(float, rows[c.label])
        assert early == pytest.approx(c.mean_regret[29], abs=5e-5)
        assert final == pytest.approx(c.mean_regret[-1], abs=5e-5)
        assert sem == pytest.approx(c.regret_sem[-1], abs=5e-5)
        assert optimal == pytest.approx(100 * c.optimal_rate[-30:].mean(), abs=5e-5)


def test_bandit_demo_writes_its_table_and_plot(tmp_path: pathlib.Path, bandit: BanditData) -> None:
    text = bandit_demo(tmp_path / "out", seed=0, quick=True)
    assert bandit_table(bandit) in text  # same seed, same numbers
    saved = (tmp_path / "out" / "bandit.txt").read_text()
    assert saved == text.split("\n\nwrote ")[0] + "\n"
    assert (tmp_path / "out" / "bandit_regret.png").read_bytes().startswith(PNG_MAGIC)
    assert f"wrote {tmp_path / 'out' / 'bandit_regret.png'}" in text
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "bandit.txt",
        "bandit_regret.png",
    ]  # no temporary files left behind
    best = min(bandit.curves, key=lambda c: c.mean_regret[-1])
    assert f"({best.mean_regret[-1]:.1f})" in text


def test_bandit_demo_rejects_a_bad_seed() -> None:
    with pytest.raises(ValueError, match=r"`seed` must be an integer >= 0, got -2\."):
        bandit_demo(seed=-2, quick=True)
    with pytest.raises(ValueError, match=r"`seed` must be an integer >= 0, got -2\."):
        recommend_demo(seed=-2, quick=True)


# --- recommendation ----------------------------------------------------------------------------


def test_recommend_metrics_are_sane(rec: RecommendData) -> None:
    t = rec.temperatures
    assert t[0] == 0.0
    assert t[-1] == math.inf
    assert rec.top_k_overlap[0] == 1.0  # T = 0 recommends each user's own top-k
    assert rec.coverage[-1] == 1.0
    # T = inf: every slot is uniform over the catalogue, so the long-tail share is
    # binomial around 0.8 (3000 slots): within 6 standard deviations.
    slots = rec.n_users * rec.k
    sd = math.sqrt(0.8 * 0.2 / slots)
    assert abs(rec.long_tail_share[-1] - (1 - HEAD_FRACTION)) < 6 * sd
    assert rec.gini[0] > rec.gini[t.index(1.0)] > rec.gini[-1]
    assert np.all(np.diff(rec.top_k_overlap) <= 0)


def test_recommend_figure_plots_the_computed_metrics(rec: RecommendData) -> None:
    fig = recommend_figure(rec)
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.lines}
    expected = {
        "coverage": rec.coverage,
        "long-tail share": rec.long_tail_share,
        "Gini of exposure": rec.gini,
        "own top-k overlap": rec.top_k_overlap,
    }
    assert set(lines) == set(expected)
    x = lines["coverage"].get_xdata()
    np.testing.assert_allclose(x[1:-1], rec.temperatures[1:-1])
    assert x[0] < x[1]
    assert x[-1] > x[-2]  # T = 0 and T = inf sit at the ends
    for label, values in expected.items():
        np.testing.assert_allclose(lines[label].get_ydata(), values)
    ticks = [tick.get_text() for tick in ax.get_xticklabels()]
    assert ticks[0] == "0"
    assert ticks[-1] == "inf"


def test_recommend_table_shows_the_computed_numbers(rec: RecommendData) -> None:
    rows = table_rows(recommend_table(rec))
    labels = ["inf" if math.isinf(t) else f"{t:g}" for t in rec.temperatures]
    assert list(rows) == labels
    for i, label in enumerate(labels):
        got = list(map(float, rows[label]))
        want = [rec.coverage[i], rec.long_tail_share[i], rec.gini[i], rec.top_k_overlap[i]]
        np.testing.assert_allclose(got, want, atol=5e-5)


def test_recommend_demo_writes_its_table_and_plot(
    tmp_path: pathlib.Path, rec: RecommendData
) -> None:
    text = recommend_demo(tmp_path, seed=0, quick=True)
    assert recommend_table(rec) in text
    assert (tmp_path / "recommend.txt").read_text() == text.split("\n\nwrote ")[0] + "\n"
    assert (tmp_path / "recommend_exposure.png").read_bytes().startswith(PNG_MAGIC)
    other = recommend_data(seed=1, quick=True)
    assert not np.array_equal(other.gini, rec.gini)


# --- commands ----------------------------------------------------------------------------------


def run_command(argv: list[str]) -> str:
    args: argparse.Namespace = build_parser().parse_args(argv)
    return args.run(args)


def test_bandit_demo_command(tmp_path: pathlib.Path, bandit: BanditData) -> None:
    text = run_command(["demo", "bandit", "--out", str(tmp_path), "--quick"])
    assert bandit_table(bandit) in text
    assert (tmp_path / "bandit_regret.png").is_file()


def test_recommend_demo_command(tmp_path: pathlib.Path, rec: RecommendData) -> None:
    text = run_command(["demo", "recommend", "--out", str(tmp_path / "new" / "dir"), "--quick"])
    assert recommend_table(rec) in text
    assert (tmp_path / "new" / "dir" / "recommend.txt").is_file()


def test_command_defaults() -> None:
    args = build_parser().parse_args(["demo", "bandit"])
    assert (args.name, args.out, args.seed, args.quick) == ("bandit", pathlib.Path("out"), 0, False)


@pytest.mark.parametrize("name", ["bandit", "recommend"])
def test_command_errors_are_one_line(
    name: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["demo", name, "--seed", "-1", "--quick"])
    assert refused.value.code == 2
    assert "`--seed` must be an integer >= 0, got -1" in capsys.readouterr().err
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="`--out` must be a folder, got an existing file"):
        run_command(["demo", name, "--out", str(a_file), "--quick"])
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["demo", name, "--seed", "abc"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "`--seed`" in err
    assert "'abc'" in err


def test_importing_the_modules_loads_no_heavy_backend() -> None:
    code = (
        "import sys, thermoscope.rl, thermoscope.recommend, thermoscope.sampling.schedules, "
        "thermoscope.demos, thermoscope.demos.bandit, thermoscope.demos.recommend, "
        "thermoscope.cli.demo; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'sklearn', 'transformers', 'dask') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
