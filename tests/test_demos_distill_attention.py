"""The distillation and attention demos: numbers recomputed independently, files, CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from thermoscope.cli import build_parser
from thermoscope.demos.attention import (
    attention_entropy_curve,
    attention_table,
    plot_attention_entropy,
)
from thermoscope.demos.distill import (
    HARD,
    DistillConfig,
    distill_experiment,
    distill_table,
    plot_soft_targets,
)

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ distill
@pytest.fixture(scope="module")
def quick_result():
    return distill_experiment(DistillConfig.quick())


@pytest.fixture(scope="module")
def quick_cli_run(tmp_path_factory):
    """``thermoscope demo distill --quick`` through the command's parser, with torch's global
    state recorded around it."""
    out = tmp_path_factory.mktemp("distill")
    args = build_parser().parse_args(["demo", "distill", "--quick", "--out", str(out)])
    threads, rng = torch.get_num_threads(), torch.random.get_rng_state()
    text = args.run(args)
    return out, text, (threads, rng), (torch.get_num_threads(), torch.random.get_rng_state())


def test_run_metrics_match_sklearn(quick_result):
    from sklearn.metrics import accuracy_score, log_loss

    assert len(quick_result.runs) == 3 * 6
    for run in quick_result.runs:
        assert run.test_probs.shape == (len(run.test_labels), 10)
        np.testing.assert_allclose(run.test_probs.sum(axis=1), 1.0, rtol=1e-6)
        pred = np.argmax(run.test_probs, axis=1)
        assert run.accuracy == pytest.approx(accuracy_score(run.test_labels, pred), abs=1e-12)
        ref = log_loss(run.test_labels, run.test_probs, labels=np.arange(10))
        assert run.nll == pytest.approx(ref, rel=1e-6)


def test_settings_share_each_seeds_test_set(quick_result):
    by_seed = {}
    for run in quick_result.runs:
        by_seed.setdefault(run.seed, []).append(run)
    assert sorted(by_seed) == [0, 1, 2]
    for runs in by_seed.values():
        assert [r.setting for r in runs] == quick_result.settings()
        for r in runs[1:]:
            np.testing.assert_array_equal(r.test_labels, runs[0].test_labels)
    # Half of the 1797 digits, stratified: 899 test digits, a different half per seed.
    assert len(by_seed[0][0].test_labels) == 899


def test_teacher_learns_even_in_the_quick_run(quick_result):
    # Chance is 0.1; a 15-epoch teacher on 300 digits is well above 0.8 on every seed.
    assert np.all(quick_result.metric("teacher", "accuracy") > 0.8)


def test_table_is_mean_and_sample_sd(quick_result):
    lines = distill_table(quick_result).splitlines()
    assert lines[0].split()[:2] == ["setting", "params"]
    hard = quick_result.metric(HARD, "accuracy")
    for name, line in zip(quick_result.settings(), lines[2:], strict=True):
        assert line.startswith(name)
        acc = quick_result.metric(name, "accuracy")
        nll = quick_result.metric(name, "nll")
        assert f"{np.mean(acc):.4f} ± {np.std(acc, ddof=1):.4f}" in line
        assert f"{np.mean(nll):.4f} ± {np.std(nll, ddof=1):.4f}" in line
        if name not in ("teacher", HARD):
            gain = 100 * (acc - hard)
            assert f"{np.mean(gain):+.2f} ± {np.std(gain, ddof=1):.2f}" in line
    assert " 85002 " in lines[2]  # 64*256+256 + 256*256+256 + 256*10+10
    assert " 610 " in lines[3]  # 64*8+8 + 8*10+10


def test_soft_target_figure_plots_tempered_teacher_probabilities(quick_result):
    z = quick_result.example_logits
    assert int(np.argmax(z)) == quick_result.example_label  # a correctly classified digit
    temps = quick_result.config.figure_temperatures
    fig = plot_soft_targets(
        z,
        temperatures=temps,
        label=quick_result.example_label,
        image=quick_result.example_image,
    )
    image_ax, bar_ax = fig.axes
    np.testing.assert_array_equal(image_ax.images[0].get_array(), quick_result.example_image)
    assert len(bar_ax.containers) == len(temps)
    for temp, bars in zip(temps, bar_ax.containers, strict=True):
        heights = np.array([b.get_height() for b in bars])
        np.testing.assert_allclose(heights, special.softmax(z / temp), rtol=1e-12)
    # Raising T moves probability to the wrong classes: the "dark knowledge".
    tops = [max(b.get_height() for b in bars) for bars in bar_ax.containers]
    assert tops == sorted(tops, reverse=True)


def test_cli_demo_writes_table_and_png(quick_cli_run, quick_result):
    out, text, _, _ = quick_cli_run
    table = distill_table(quick_result)  # the same seeds: the same numbers
    assert table in text
    assert (out / "distill.txt").read_text() == table + "\n"
    assert (out / "distill_soft_targets.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "[quick run]" in text
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_demo_leaves_torch_global_state_alone(quick_cli_run):
    _, _, (threads_before, rng_before), (threads_after, rng_after) = quick_cli_run
    assert threads_after == threads_before
    assert torch.equal(rng_after, rng_before)


@pytest.mark.slow
def test_full_demo_kd_beats_hard_labels_paired_over_seeds():
    """The demo's claim, tested: at T = 4 the student's test NLL is lower than with hard
    labels alone, paired by seed (same split, initial weights, batch order); one-sided
    paired t-test over the five seeds."""
    result = distill_experiment(DistillConfig.full())
    hard = result.metric(HARD, "nll")
    kd = result.metric("KD T=4", "nll")
    assert stats.ttest_rel(kd, hard, alternative="less").pvalue < 0.05
    assert np.mean(result.metric("KD T=4", "accuracy")) > np.mean(result.metric(HARD, "accuracy"))


def test_distill_demo_bad_arguments(tmp_path):
    from thermoscope.demos.distill import distill_demo

    with pytest.raises(ValueError, match="`seed` must be an integer >= 0, got -1"):
        distill_demo(seed=-1, quick=True)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="`out_dir` must be a writable folder"):
        distill_demo(blocker / "sub", quick=True)


# ------------------------------------------------------------------ attention
@pytest.fixture(scope="module")
def curve():
    return attention_entropy_curve(n_queries=64, seed=0)


def test_entropies_match_scipy_recomputation(curve):
    rng = np.random.default_rng(0)  # the demo's draw order: per d, queries then keys
    for i, d in enumerate(curve.dims):
        q = rng.standard_normal((64, d))
        k = rng.standard_normal((256, d))
        for j, r in enumerate(curve.ratios):
            w = special.softmax(q @ k.T / (r * math.sqrt(d)), axis=1)
            assert curve.entropy[i, j] == pytest.approx(stats.entropy(w, axis=1).mean(), rel=1e-10)
        w1 = special.softmax(q @ k.T, axis=1)
        assert curve.entropy_unscaled[i] == pytest.approx(
            stats.entropy(w1, axis=1).mean(), rel=1e-10
        )


def test_entropy_against_small_spread_theory(curve):
    theory = curve.theory()
    for j, r in enumerate(curve.ratios):
        if r >= 4:
            np.testing.assert_allclose(curve.entropy[:, j], theory[j], atol=5e-3)
        elif r >= 2:
            np.testing.assert_allclose(curve.entropy[:, j], theory[j], atol=2e-2)


def test_sqrt_d_scaling_removes_the_head_size(curve):
    at_default = curve.entropy[:, curve.ratios.index(1.0)]
    assert np.ptp(at_default) < 0.1
    # Without scaling the entropy falls with d; with it, the curves rise with T.
    assert np.all(np.diff(curve.entropy_unscaled) < 0)
    assert np.all(np.diff(curve.entropy, axis=1) > 0)
    assert np.all(curve.entropy < math.log(curve.n_keys))


def test_attention_figure_data(curve):
    fig = plot_attention_entropy(curve)
    left, right = fig.axes
    for i, d in enumerate(curve.dims):
        np.testing.assert_array_equal(left.lines[i].get_xdata(), curve.ratios)
        np.testing.assert_array_equal(left.lines[i].get_ydata(), curve.entropy[i])
        np.testing.assert_allclose(
            right.lines[i].get_xdata(), np.array(curve.ratios) * math.sqrt(d)
        )
        np.testing.assert_array_equal(right.lines[i].get_ydata(), curve.entropy[i])
    ratios = np.array(curve.ratios)
    theory_line = left.lines[len(curve.dims)]
    np.testing.assert_allclose(
        theory_line.get_ydata(), math.log(256) - 0.5 / ratios[ratios >= 1] ** 2
    )


def test_attention_cli_writes_table_and_png(tmp_path, curve):
    args = build_parser().parse_args(["demo", "attention", "--quick", "--out", str(tmp_path)])
    text = args.run(args)
    table = attention_table(curve)
    assert table in text
    assert (tmp_path / "attention.txt").read_text() == table + "\n"
    assert (tmp_path / "attention_entropy.png").read_bytes().startswith(PNG_SIGNATURE)


# ------------------------------------------------------------------ CLI errors
@pytest.mark.parametrize("name", ["distill", "attention"])
def test_cli_rejects_a_non_integer_seed(name, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["demo", name, "--seed", "abc"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "--seed" in err


@pytest.mark.parametrize("name", ["distill", "attention"])
def test_cli_negative_seed_is_refused_naming_seed(name, capsys):
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["demo", name, "--seed", "-3", "--quick"])
    assert refused.value.code == 2
    assert "`--seed` must be an integer >= 0, got -3" in capsys.readouterr().err
