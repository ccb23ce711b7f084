"""The theory plots: the data drawn are checked against scipy, never pixels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from scipy.special import logsumexp
from scipy.special import softmax as sp_softmax
from scipy.stats import chisquare
from scipy.stats import entropy as sp_entropy

from thermoscope.plots import (
    plot_distributions,
    plot_entropy_vs_temperature,
    plot_free_energy,
    plot_sampling_vs_theory,
)
from thermoscope.sampling import Sampler

Z = np.array([5.0, 2.2, 2.0, 4.5, 3.0, 2.7])
NAMES = ["day", "space", "furniture", "experience", "problem", "challenge"]


def heights(container: Any) -> np.ndarray:
    return np.array([bar.get_height() for bar in container])


def legend_texts(ax: Any) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def is_png(path: Path) -> bool:
    return path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


# plot_distributions ---------------------------------------------------------


def test_distribution_bars_are_scipy_softmax(tmp_path: Path) -> None:
    temps = (0.1, 0.5, 1, 2, 5)
    fig = plot_distributions(Z, temperatures=temps, labels=NAMES, save=tmp_path / "d.png")
    (ax,) = fig.axes
    assert len(ax.containers) == len(temps)
    for t, container in zip(temps, ax.containers, strict=True):
        np.testing.assert_allclose(heights(container), sp_softmax(Z / t), rtol=1e-12, atol=1e-15)
        assert container.get_label() == f"T = {t:g}"
    assert [t.get_text() for t in ax.get_xticklabels()] == NAMES
    assert ax.get_xlabel() == "token"
    assert ax.get_ylabel() == "probability"
    assert ax.get_title()
    assert legend_texts(ax) == [f"T = {t:g}" for t in temps]
    assert is_png(tmp_path / "d.png")


def test_distribution_bars_of_one_token_sit_side_by_side() -> None:
    fig = plot_distributions([1.0, 0.0], temperatures=(0.5, 1.0, 2.0))
    centers = [[b.get_x() + b.get_width() / 2 for b in c] for c in fig.axes[0].containers]
    # Token 0's bars, one per temperature, are left-to-right within [-0.4, 0.4].
    first = [c[0] for c in centers]
    assert first == sorted(first)
    assert first[0] > -0.4
    assert first[-1] < 0.4
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0", "1"]


def test_distribution_greedy_and_masked_limits() -> None:
    fig = plot_distributions([1.0, 3.0, -np.inf], temperatures=(0.0, np.inf))
    greedy, uniform = fig.axes[0].containers
    np.testing.assert_array_equal(heights(greedy), [0.0, 1.0, 0.0])
    np.testing.assert_allclose(heights(uniform), [0.5, 0.5, 0.0])


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"logits": [[1.0, 2.0]]}, ValueError, "`logits` must be one row"),
        ({"logits": [1.0, np.nan]}, ValueError, "`logits` must not contain NaN"),
        ({"logits": [1.0, 2.0], "labels": ["a"]}, ValueError, "`labels` must be a sequence of 2"),
        ({"logits": [1.0, 2.0], "labels": "ab"}, ValueError, "`labels` must be a sequence of 2"),
        ({"logits": [1.0, 2.0], "temperatures": (-1.0,)}, ValueError, "`temperatures` must be"),
        ({"logits": [1.0, 2.0], "temperatures": [[1.0]]}, ValueError, "`temperatures` must be"),
    ],
)
def test_distribution_bad_input(kwargs: dict[str, Any], exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        plot_distributions(**kwargs)


# plot_entropy_vs_temperature --------------------------------------------------


def test_entropy_lines_are_scipy_entropy_and_max_probability(tmp_path: Path) -> None:
    temps = np.geomspace(0.05, 50.0, 40)
    fig = plot_entropy_vs_temperature(Z, temperatures=temps, save=tmp_path / "e.png")
    upper, lower = fig.axes
    h_line, ln_k = upper.get_lines()
    p_line, inv_k = lower.get_lines()
    expect = np.array([sp_softmax(Z / t) for t in temps])
    np.testing.assert_allclose(h_line.get_xdata(), temps)
    np.testing.assert_allclose(h_line.get_ydata(), sp_entropy(expect, axis=1), rtol=1e-10)
    np.testing.assert_allclose(p_line.get_ydata(), expect.max(axis=1), rtol=1e-12)
    np.testing.assert_allclose(ln_k.get_ydata(), np.log(6))
    np.testing.assert_allclose(inv_k.get_ydata(), 1 / 6)
    assert lower.get_xscale() == "log"
    assert lower.get_xlabel().startswith("temperature")
    assert (upper.get_ylabel(), lower.get_ylabel()) == ("entropy (nats)", "max probability")
    assert upper.get_title()
    assert legend_texts(upper) == ["entropy H", "ln K = ln 6 = 1.792"]
    assert legend_texts(lower) == ["max probability", "1 / K = 0.167"]
    # The ln K line sits below the top of its own panel, apart from the other curve.
    assert np.log(6) < upper.get_ylim()[1] * 0.9
    assert is_png(tmp_path / "e.png")


def test_entropy_default_grid_spans_both_limits() -> None:
    fig = plot_entropy_vs_temperature(Z)
    h = np.asarray(fig.axes[0].get_lines()[0].get_ydata())
    assert h[0] < 1e-6
    assert abs(h[-1] - np.log(6)) < 1e-3
    assert np.all(np.diff(h) > 0)


def test_entropy_ln_k_counts_only_finite_logits() -> None:
    fig = plot_entropy_vs_temperature([1.0, 0.0, -np.inf], temperatures=[1.0, 2.0])
    np.testing.assert_allclose(fig.axes[0].get_lines()[1].get_ydata(), np.log(2))
    np.testing.assert_allclose(fig.axes[1].get_lines()[1].get_ydata(), 1 / 2)


@pytest.mark.parametrize("bad", [[0.0, 1.0], [1.0, np.inf], [-1.0]])
def test_entropy_rejects_temperatures_a_log_axis_cannot_show(bad: list[float]) -> None:
    with pytest.raises(ValueError, match="`temperatures` must be"):
        plot_entropy_vs_temperature(Z, temperatures=bad)


# plot_sampling_vs_theory ------------------------------------------------------


def test_sampling_bars_and_chi_square_match_scipy(tmp_path: Path) -> None:
    sampler = Sampler.from_options(temperature=0.8)
    n, seed = 5000, 7
    fig = plot_sampling_vs_theory(sampler, Z, n=n, seed=seed, labels=NAMES, save=tmp_path / "s.png")
    (ax,) = fig.axes
    theory, sampled = ax.containers
    p = sp_softmax(Z / 0.8)
    np.testing.assert_allclose(heights(theory), p, rtol=1e-12)
    counts = np.bincount(sampler.sample(Z, n=n, seed=seed), minlength=Z.size)
    np.testing.assert_allclose(heights(sampled), counts / n)
    p_value = chisquare(counts, n * p).pvalue
    assert f"chi-square p = {p_value:.3g}" in ax.get_title()
    # A correct sampler, a fixed seed: the draws pass the test at the 0.1 % level.
    assert p_value > 1e-3
    assert legend_texts(ax) == ["theory", "sampled"]
    assert [t.get_text() for t in ax.get_xticklabels()] == NAMES
    assert ax.get_xlabel() == "token"
    assert "frequency" in ax.get_ylabel()
    assert is_png(tmp_path / "s.png")


def test_sampling_tests_only_the_kept_tokens() -> None:
    sampler = Sampler.from_options(temperature=1.0, top_k=3)
    n, seed = 3000, 1
    fig = plot_sampling_vs_theory(sampler, Z, n=n, seed=seed)
    theory, _sampled = fig.axes[0].containers
    kept = np.argsort(Z)[-3:]
    p = np.zeros(Z.size)
    p[kept] = sp_softmax(Z[kept])
    np.testing.assert_allclose(heights(theory), p, rtol=1e-12, atol=0)
    counts = np.bincount(sampler.sample(Z, n=n, seed=seed), minlength=Z.size)
    assert counts.sum() == counts[kept].sum()
    expect = chisquare(counts[kept], n * p[kept]).pvalue
    assert f"chi-square p = {expect:.3g}" in fig.axes[0].get_title()


class _Liar:
    """Claims softmax(z) but draws from softmax(2 z): the plot must expose it."""

    def probs(self, z: Any) -> np.ndarray:
        return np.asarray(sp_softmax(np.asarray(z)))

    def sample(self, z: Any, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.choice(len(z), size=n, p=sp_softmax(2 * np.asarray(z)))


def test_sampling_exposes_a_sampler_that_does_not_follow_its_probabilities() -> None:
    fig = plot_sampling_vs_theory(_Liar(), Z, n=2000, seed=0)
    title = fig.axes[0].get_title()
    p_value = float(title.rsplit("p = ", 1)[1])
    assert p_value < 1e-6


def test_sampling_with_one_kept_token_has_nothing_to_test() -> None:
    fig = plot_sampling_vs_theory(Sampler.from_options(temperature=0.0), Z, n=50, seed=0)
    assert "nothing to test" in fig.axes[0].get_title()
    np.testing.assert_array_equal(heights(fig.axes[0].containers[1]), [1, 0, 0, 0, 0, 0])


def test_sampling_bad_n_is_the_samplers_error() -> None:
    with pytest.raises(ValueError, match="`n` must be an integer >= 1"):
        plot_sampling_vs_theory(Sampler.from_options(), Z, n=0, seed=0)


# plot_free_energy ---------------------------------------------------------------


def test_free_energy_lines_match_closed_forms(tmp_path: Path) -> None:
    temps = np.geomspace(0.1, 10.0, 30)
    fig = plot_free_energy(Z, temperatures=temps, save=tmp_path / "f.png")
    e_ax, s_ax, f_ax = fig.axes
    ((e_line,), (s_line,), (f_line,)) = (ax.get_lines() for ax in fig.axes)
    p = np.array([sp_softmax(Z / t) for t in temps])
    np.testing.assert_allclose(e_line.get_xdata(), temps)
    np.testing.assert_allclose(e_line.get_ydata(), -(p @ Z), rtol=1e-12)
    np.testing.assert_allclose(s_line.get_ydata(), sp_entropy(p, axis=1), rtol=1e-10)
    # F at the softmax is the log-partition minimum -T log sum exp(z / T).
    closed = np.array([-t * logsumexp(Z / t) for t in temps])
    np.testing.assert_allclose(f_line.get_ydata(), closed, rtol=1e-10)
    assert [legend_texts(ax)[0].split()[0] for ax in fig.axes] == ["E", "S", "F"]
    # Each quantity on its own scale: E and S span their panel, not a sliver of F's range.
    for ax, line in ((e_ax, e_line), (s_ax, s_line)):
        lo, hi = ax.get_ylim()
        y = np.asarray(line.get_ydata())
        assert (y.max() - y.min()) / (hi - lo) > 0.8
    assert f_ax.get_xscale() == "log"
    assert f_ax.get_xlabel().startswith("temperature")
    assert all(ax.get_ylabel() for ax in fig.axes)
    assert e_ax.get_title()
    assert is_png(tmp_path / "f.png")


def test_free_energy_with_a_masked_logit_stays_finite() -> None:
    fig = plot_free_energy([2.0, 1.0, -np.inf], temperatures=[0.5, 1.0, 4.0])
    for ax in fig.axes:
        for line in ax.get_lines():
            assert np.all(np.isfinite(line.get_ydata()))
    closed = [-t * logsumexp(np.array([2.0, 1.0]) / t) for t in (0.5, 1.0, 4.0)]
    np.testing.assert_allclose(fig.axes[2].get_lines()[0].get_ydata(), closed, rtol=1e-10)


class _Leaky:
    """Claims top-1 but sometimes draws a removed token: the title must count those draws."""

    def probs(self, z: Any) -> np.ndarray:
        return np.array([1.0] + [0.0] * (len(z) - 1))

    def sample(self, z: Any, n: int, seed: int) -> np.ndarray:
        return np.array([0] * (n - 3) + [1, 1, 2])


def test_sampling_counts_draws_of_removed_tokens() -> None:
    fig = plot_sampling_vs_theory(_Leaky(), Z, n=100, seed=0)
    assert "3 draws of removed tokens" in fig.axes[0].get_title()


def test_plot_options_are_keyword_only() -> None:
    with pytest.raises(TypeError, match="positional"):
        plot_distributions(Z, (0.5, 1.0))  # type: ignore[misc]
    with pytest.raises(TypeError, match="positional"):
        plot_sampling_vs_theory(Sampler.from_options(), Z, 100, 0)  # type: ignore[misc]
