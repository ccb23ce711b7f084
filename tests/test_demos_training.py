"""The training demos (contrastive, Gumbel-softmax): numbers recomputed independently, files."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from thermoscope.cli import build_parser
from thermoscope.demos import DEMOS
from thermoscope.demos.contrastive import (
    LEARNED,
    ContrastiveConfig,
    alignment,
    augment_digits,
    contrastive_demo,
    contrastive_experiment,
    contrastive_figure,
    contrastive_table,
    digits_split,
    uniformity,
)
from thermoscope.demos.gumbel import (
    ANNEALED,
    GumbelConfig,
    default_costs,
    exact_gradient,
    gumbel_data,
    gumbel_demo,
    gumbel_figure,
    gumbel_table,
    objective,
    relaxed_gradients,
)

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _mean_sd(values, fmt):
    sd = np.std(values, ddof=1) if len(values) > 1 else math.nan
    return f"{np.mean(values):{fmt}} ± {sd:{fmt}}"


# ------------------------------------------------------------------ contrastive: metrics
def _unit(rng, n, d):
    z = rng.standard_normal((n, d))
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def test_alignment_and_uniformity_match_wang_isola_reference_formulas():
    # Wang & Isola's own code: (x - y).norm(dim=1).pow(2).mean() and
    # torch.pdist(x).pow(2).mul(-2).exp().mean().log(), here in float64 torch.
    rng = np.random.default_rng(0)
    z1, z2 = _unit(rng, 50, 8), _unit(rng, 50, 8)
    x, y = torch.tensor(z1), torch.tensor(z2)
    ref_align = (x - y).norm(p=2, dim=1).pow(2).mean()
    ref_uniform = torch.pdist(x, p=2).pow(2).mul(-2).exp().mean().log()
    assert alignment(z1, z2) == pytest.approx(float(ref_align), rel=1e-12)
    assert uniformity(z1) == pytest.approx(float(ref_uniform), rel=1e-12)
    # alpha and t are the exponents of the formulas, checked by a double loop.
    pairs = [np.sum((z1[i] - z1[j]) ** 2) for i in range(50) for j in range(i + 1, 50)]
    assert uniformity(z1, t=0.5) == pytest.approx(math.log(np.mean(np.exp(-0.5 * np.array(pairs)))))
    d = np.linalg.norm(z1 - z2, axis=1)
    assert alignment(z1, z2, alpha=1.0) == pytest.approx(np.mean(d))


def test_uniformity_stays_finite_where_the_plain_formula_underflows():
    # Two antipodal points with t = 200: exp(-800) underflows to 0 in float64.
    z = np.array([[1.0, 0.0], [-1.0, 0.0]])
    assert uniformity(z, t=200.0) == pytest.approx(-800.0)


@given(st.integers(min_value=2, max_value=30), st.integers(min_value=2, max_value=6))
def test_uniformity_on_the_sphere_lies_in_its_bounds(n, d):
    z = _unit(np.random.default_rng(n * 10 + d), n, d)
    assert -8.0 - 1e-12 <= uniformity(z) <= 1e-12
    assert uniformity(np.repeat(z[:1], n, axis=0)) == pytest.approx(0.0, abs=1e-12)
    assert alignment(z, z) == 0.0


# ------------------------------------------------------------------ contrastive: data, views
def test_digits_split_is_fixed_stratified_and_scaled():
    x_tr, y_tr, x_te, y_te = digits_split()
    x_tr2, _, _, y_te2 = digits_split()
    np.testing.assert_array_equal(x_tr, x_tr2)
    np.testing.assert_array_equal(y_te, y_te2)
    assert len(x_tr) + len(x_te) == 1797
    assert x_tr.min() == 0.0
    assert x_tr.max() == 1.0
    # Stratified: each class's share of the test set matches its share overall.
    overall = np.bincount(np.concatenate([y_tr, y_te]), minlength=10) / 1797
    np.testing.assert_allclose(np.bincount(y_te, minlength=10) / len(y_te), overall, atol=0.004)


def test_augment_is_seeded_and_identity_when_every_jitter_is_off():
    x = torch.tensor(digits_split()[0][:40], dtype=torch.float32)
    a = augment_digits(x, torch.Generator().manual_seed(3))
    b = augment_digits(x, torch.Generator().manual_seed(3))
    c = augment_digits(x, torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)
    off = augment_digits(x, torch.Generator(), shift=0, rotation=0, zoom=0, noise=0, dropout=0)
    torch.testing.assert_close(off, x, rtol=0, atol=1e-6)


def test_shift_moves_an_interior_pixel_by_at_most_one_pixel_and_keeps_its_mass():
    # One lit interior pixel per image; pure translation by up to 1 px with bilinear
    # weights keeps the whole mass inside the 8x8 frame and moves the centroid <= 1 px.
    n = 200
    gen = torch.Generator().manual_seed(0)
    rows = torch.randint(1, 7, (n,), generator=gen)
    cols = torch.randint(1, 7, (n,), generator=gen)
    x = torch.zeros(n, 8, 8, dtype=torch.float64)
    x[torch.arange(n), rows, cols] = 1.0
    v = augment_digits(
        x.reshape(n, 64), gen, shift=1.0, rotation=0, zoom=0, noise=0, dropout=0
    ).reshape(n, 8, 8)
    mass = v.sum(dim=(1, 2))
    torch.testing.assert_close(mass, torch.ones(n, dtype=torch.float64), rtol=0, atol=1e-12)
    grid = torch.arange(8, dtype=torch.float64)
    cy = (v.sum(dim=2) * grid).sum(dim=1)
    cx = (v.sum(dim=1) * grid).sum(dim=1)
    dy, dx = cy - rows, cx - cols
    assert float(dy.abs().max()) <= 1.0 + 1e-9
    assert float(dx.abs().max()) <= 1.0 + 1e-9
    assert float(dy.abs().max()) > 0.8  # the shifts really span about +-1 px
    assert float(dx.abs().max()) > 0.8


def test_dropout_and_noise_have_their_stated_sizes():
    x = torch.full((500, 64), 0.5, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    dropped = augment_digits(x, gen, shift=0, rotation=0, zoom=0, noise=0, dropout=0.2)
    zeros = int((dropped == 0).sum())
    # Binomial(32000, 0.2): a two-sided exact test at the 0.1 % level.
    assert stats.binomtest(zeros, x.numel(), 0.2).pvalue > 1e-3
    noisy = augment_digits(x, gen, shift=0, rotation=0, zoom=0, noise=0.1, dropout=0)
    resid = (noisy - x).numpy().ravel()
    assert stats.kstest(resid / 0.1, "norm").pvalue > 1e-3


# ------------------------------------------------------------------ contrastive: experiment
@pytest.fixture(scope="module")
def quick_contrastive():
    return contrastive_experiment(ContrastiveConfig.quick())


def test_probe_accuracy_is_far_above_chance(quick_contrastive):
    assert len(quick_contrastive.runs) == 3  # T = 0.1, 0.5 and the learned one
    for run in quick_contrastive.runs:
        assert run.accuracy > 0.8, run  # chance is 0.1
    assert quick_contrastive.raw_pixel_accuracy > 0.9
    assert quick_contrastive.random_encoder_accuracy > 0.5


def test_alignment_and_uniformity_are_on_the_unit_sphere_ranges(quick_contrastive):
    for run in quick_contrastive.runs:
        assert 0.0 < run.alignment < 4.0  # squared distance of two unit vectors
        assert -8.0 < run.uniformity < 0.0


def test_fixed_runs_keep_their_temperature_and_the_learned_one_moves(quick_contrastive):
    cfg = quick_contrastive.config
    for t in cfg.temperatures:
        (run,) = [r for r in quick_contrastive.runs if r.setting == f"T={t:g}"]
        np.testing.assert_array_equal(run.temperatures, np.full(cfg.epochs + 1, t))
    traj = quick_contrastive.trajectories()
    assert traj.shape == (1, cfg.epochs + 1)
    assert traj[0, 0] == pytest.approx(cfg.learnable_init)
    assert np.all((traj >= 0.01) & (traj <= 100.0))  # LearnableTemperature's default bounds
    assert traj[0, -1] != pytest.approx(cfg.learnable_init)


def test_contrastive_table_is_mean_and_sample_sd():
    cfg = ContrastiveConfig(seeds=(0, 1), temperatures=(0.2,), epochs=2)
    result = contrastive_experiment(cfg)
    lines = contrastive_table(result).splitlines()
    assert lines[0].split() == ["setting", "final", "T", "probe", "accuracy", "alignment",
                                "uniformity"]  # fmt: skip
    for name, line in zip(["T=0.2", LEARNED], lines[2:], strict=True):
        assert line.startswith(name)
        for metric in ("accuracy", "alignment", "uniformity"):
            values = [getattr(r, metric) for r in result.runs if r.setting == name]
            assert _mean_sd(values, ".4f") in line


def test_contrastive_is_reproducible_and_seed_dependent():
    cfg = ContrastiveConfig(seeds=(5,), temperatures=(0.3,), epochs=2)
    a, b = contrastive_experiment(cfg), contrastive_experiment(cfg)
    other = contrastive_experiment(ContrastiveConfig(seeds=(6,), temperatures=(0.3,), epochs=2))
    for ra, rb in zip(a.runs, b.runs, strict=True):
        assert (ra.accuracy, ra.alignment, ra.uniformity) == (rb.accuracy, rb.alignment,
                                                              rb.uniformity)  # fmt: skip
        np.testing.assert_array_equal(ra.temperatures, rb.temperatures)
    assert a.runs[0].alignment != other.runs[0].alignment


@pytest.mark.parametrize(
    "run",
    [
        lambda: contrastive_experiment(
            ContrastiveConfig(seeds=(0,), temperatures=(0.5,), epochs=1)
        ),
        lambda: gumbel_data(GumbelConfig.quick()),
    ],
    ids=["contrastive", "gumbel"],
)
def test_experiments_leave_torch_global_state_alone(run):
    threads, rng = torch.get_num_threads(), torch.random.get_rng_state()
    run()
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), rng)


def test_contrastive_figure_plots_the_means_on_a_log_axis(quick_contrastive):
    fig = contrastive_figure(quick_contrastive)
    ax, ax_t = fig.axes
    assert ax.get_xscale() == "log"
    fixed, learned = ax.containers
    # Errorbar lines hold object arrays: compare as floats.
    x, y = (np.asarray(v, dtype=float) for v in fixed.lines[0].get_data())
    np.testing.assert_allclose(x, quick_contrastive.config.temperatures)
    expected = [
        np.mean([r.accuracy for r in quick_contrastive.runs if r.setting == f"T={t:g}"])
        for t in quick_contrastive.config.temperatures
    ]
    np.testing.assert_allclose(y, expected)
    lx, ly = (np.asarray(v, dtype=float) for v in learned.lines[0].get_data())
    run = next(r for r in quick_contrastive.runs if r.setting == LEARNED)
    assert lx[0] == pytest.approx(run.final_temperature)
    assert ly[0] == pytest.approx(run.accuracy)
    np.testing.assert_allclose(ax_t.lines[0].get_ydata(), run.temperatures)


@pytest.fixture(scope="module")
def contrastive_cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("contrastive")
    args = build_parser().parse_args(["demo", "contrastive", "--quick", "--out", str(out)])
    return out, args.run(args)


def test_contrastive_demo_writes_table_and_png(contrastive_cli_run, quick_contrastive):
    out, text = contrastive_cli_run
    assert sorted(p.name for p in out.iterdir()) == ["contrastive.txt", "contrastive_accuracy.png"]
    assert (out / "contrastive_accuracy.png").read_bytes().startswith(PNG_SIGNATURE)
    table = contrastive_table(quick_contrastive)  # the same seed: the same numbers
    assert table in text
    assert table in (out / "contrastive.txt").read_text(encoding="utf-8")
    assert "[quick run]" in text
    assert "learned T by epoch" in text


# ------------------------------------------------------------------ gumbel: formulas
@given(st.lists(st.floats(-3, 3), min_size=2, max_size=8))
def test_exact_gradient_matches_central_finite_differences(theta):
    theta = np.array(theta)
    costs = np.array(default_costs(len(theta)))
    h = 1e-6
    fd = [
        (objective(theta + h * e, costs) - objective(theta - h * e, costs)) / (2 * h)
        for e in np.eye(len(theta))
    ]
    np.testing.assert_allclose(exact_gradient(theta, costs), fd, atol=1e-9)


def test_exact_gradient_matches_the_score_function_monte_carlo():
    # E[f(x) (onehot(x) - p)] is an unbiased estimate of the gradient: a z-test per component.
    rng = np.random.default_rng(0)
    theta = np.array([0.5, -1.0, 0.0, 1.2, -0.3])
    costs = np.array([0.3, 1.0, -0.5, 0.2, 0.8])
    p = np.exp(theta) / np.exp(theta).sum()
    x = rng.choice(5, size=400_000, p=p)
    samples = costs[x, None] * (np.eye(5)[x] - p)
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / math.sqrt(len(x))
    z = (mean - exact_gradient(theta, costs)) / se
    assert np.all(np.abs(z) < 4.0), z


def test_relaxed_gradients_are_the_closed_form_jacobian_product():
    # d(y . f)/dtheta = (1 / T) y * (f - y . f) for y = softmax((theta + g) / T).
    from thermoscope.training import gumbel_softmax

    theta = np.array([0.2, -0.4, 1.0, 0.0])
    costs = np.array([1.0, 0.5, -0.2, 0.3])
    t, n = 0.7, 1000
    grads = relaxed_gradients(theta, costs, t, n, torch.Generator().manual_seed(9))
    rows = torch.tensor(theta).repeat(n, 1)
    y = gumbel_softmax(rows, t, generator=torch.Generator().manual_seed(9)).numpy()
    expected = y * (costs - (y @ costs)[:, None]) / t
    np.testing.assert_allclose(grads, expected, rtol=1e-9, atol=1e-12)


def test_relaxed_gradient_limits_in_temperature():
    theta = np.zeros(8)
    costs = np.array(default_costs())
    exact = exact_gradient(theta, costs)
    # Hot: y ~ 1/K + (g - mean g) / (K T), so E[estimate] = exact / T + O(1 / T^2).
    hot = relaxed_gradients(theta, costs, 20.0, 20_000, torch.Generator().manual_seed(0))
    np.testing.assert_allclose(hot.mean(axis=0), exact / 20.0, atol=0.01 * np.linalg.norm(exact))
    # Cold: the estimate is unbiased in the limit; its mean is within Monte Carlo noise
    # of the exact gradient (n ||mean - exact||^2 / trace(cov) is about 1 under no bias).
    n = 200_000
    cold = relaxed_gradients(theta, costs, 0.05, n, torch.Generator().manual_seed(0))
    ratio = n * np.sum((cold.mean(axis=0) - exact) ** 2) / np.trace(np.cov(cold.T))
    assert ratio < 6.0


# ------------------------------------------------------------------ gumbel: experiment
@pytest.fixture(scope="module")
def quick_gumbel():
    return gumbel_data(GumbelConfig.quick())


def _no_significant_violation(values, se, *, increasing):
    """For every pair T_i < T_j: no violation of the order by more than 4 standard errors."""
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            gap = values[j] - values[i] if increasing else values[i] - values[j]
            assert gap > -4.0 * math.hypot(se[i], se[j]), (i, j, values)


def test_bias_falls_and_variance_rises_as_temperature_falls(quick_gumbel):
    d = quick_gumbel
    assert np.all(np.diff(d.temperatures) > 0)
    _no_significant_violation(d.bias, d.bias_se, increasing=True)
    _no_significant_violation(d.variance, d.variance_se, increasing=False)
    # And the trend itself is significant, end to end.
    assert d.bias[-1] - d.bias[0] > 10 * math.hypot(d.bias_se[-1], d.bias_se[0])
    assert d.variance[0] - d.variance[-1] > 10 * math.hypot(d.variance_se[0], d.variance_se[-1])


def test_bias_and_variance_match_direct_moments(quick_gumbel):
    cfg = quick_gumbel.config
    theta = np.zeros(len(cfg.costs))
    exact = exact_gradient(theta, np.array(cfg.costs))
    i = 2
    grads = relaxed_gradients(
        theta,
        np.array(cfg.costs),
        cfg.temperatures[i],
        cfg.n_samples,
        torch.Generator().manual_seed(cfg.seed),
    )
    cov = np.cov(grads.T)
    diff = grads.mean(axis=0) - exact
    assert quick_gumbel.variance[i] == pytest.approx(np.trace(cov), rel=1e-9)
    assert quick_gumbel.bias[i] == pytest.approx(np.linalg.norm(diff), rel=1e-9)
    u = diff / np.linalg.norm(diff)
    assert quick_gumbel.bias_se[i] == pytest.approx(math.sqrt(u @ cov @ u / cfg.n_samples))
    assert quick_gumbel.bias2[i] == pytest.approx(diff @ diff - np.trace(cov) / cfg.n_samples)


def test_optimisation_runs_start_uniform_and_improve(quick_gumbel):
    cfg = quick_gumbel.config
    labels = [c.label for c in quick_gumbel.curves]
    assert labels == [*(f"T={t:g}" for t in cfg.fixed_temperatures), ANNEALED]
    costs = np.array(cfg.costs)
    for c in quick_gumbel.curves:
        assert c.objective.shape == (cfg.runs, cfg.steps + 1)
        np.testing.assert_allclose(c.objective[:, 0], costs.mean())
        assert np.all((c.objective >= costs.min() - 1e-12) & (c.objective <= costs.max()))
        assert np.all(c.final < costs.mean())


def test_annealed_run_follows_the_library_schedule(quick_gumbel):
    from thermoscope.training import GumbelAnnealer

    cfg = quick_gumbel.config
    annealer = GumbelAnnealer.exponential(
        start=cfg.anneal_start, end=cfg.anneal_end, steps=cfg.steps
    )
    expected = []
    for _ in range(cfg.steps):
        expected.append(float(annealer.temperature))
        annealer.step()
    (annealed,) = [c for c in quick_gumbel.curves if c.label == ANNEALED]
    np.testing.assert_allclose(annealed.temperatures, expected)
    assert annealed.temperatures[0] == pytest.approx(cfg.anneal_start)
    assert np.all(np.diff(annealed.temperatures) < 0)
    for c in quick_gumbel.curves:
        if c.label != ANNEALED:
            assert np.all(c.temperatures == float(c.label.removeprefix("T=")))


def test_gumbel_table_and_figure_show_the_data(quick_gumbel):
    d = quick_gumbel
    bias_table, opt_table = gumbel_table(d).split("\n\n")
    for t, b, line in zip(d.temperatures, d.bias, bias_table.splitlines()[2:], strict=True):
        assert line.split()[:2] == [f"{t:.3g}", f"{b:.4f}"]
    for c, line in zip(d.curves, opt_table.splitlines()[2:], strict=True):
        assert _mean_sd(c.final, ".5f") in line
    fig = gumbel_figure(d)
    ax, ax_o = fig.axes
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    np.testing.assert_allclose(ax.lines[1].get_ydata(), d.variance)
    floor = d.variance / d.config.n_samples
    np.testing.assert_allclose(ax.lines[0].get_ydata(), np.maximum(d.bias2, floor))
    assert len(ax_o.lines) == len(d.curves)


def test_gumbel_is_reproducible_and_seed_dependent(quick_gumbel):
    again = gumbel_data(GumbelConfig.quick())
    other = gumbel_data(GumbelConfig.quick(seed=1))
    np.testing.assert_array_equal(again.variance, quick_gumbel.variance)
    for a, b in zip(again.curves, quick_gumbel.curves, strict=True):
        np.testing.assert_array_equal(a.objective, b.objective)
    assert not np.array_equal(other.variance, quick_gumbel.variance)


def test_gumbel_demo_writes_table_and_png(tmp_path, quick_gumbel):
    args = build_parser().parse_args(["demo", "gumbel", "--quick", "--out", str(tmp_path)])
    text = args.run(args)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gumbel.txt", "gumbel_bias_variance.png"]
    assert (tmp_path / "gumbel_bias_variance.png").read_bytes().startswith(PNG_SIGNATURE)
    table = gumbel_table(quick_gumbel)
    assert table in text
    assert table in (tmp_path / "gumbel.txt").read_text(encoding="utf-8")
    assert "[quick run]" in text


# ------------------------------------------------------------------ both: registry, bad input
@pytest.mark.parametrize("name", ["contrastive", "gumbel"])
def test_registered_in_the_demo_list(name):
    demo = DEMOS[name]
    assert demo.load().__name__ == f"{name}_demo"
    assert list(DEMOS)[-2:] == ["contrastive", "gumbel"]


@pytest.mark.parametrize("demo", [contrastive_demo, gumbel_demo])
@pytest.mark.parametrize(
    ("seed", "error"), [(-1, ValueError), (1.5, TypeError), ("0", TypeError), (True, TypeError)]
)
def test_bad_seed_is_refused_naming_the_argument(demo, seed, error):
    with pytest.raises(error, match="`seed`"):
        demo(seed=seed, quick=True)


@pytest.mark.parametrize("demo", [contrastive_demo, gumbel_demo])
def test_an_existing_file_as_out_dir_fails_before_any_work(demo, tmp_path, monkeypatch):
    import thermoscope.demos.contrastive as contrastive
    import thermoscope.demos.gumbel as gumbel

    def refuse(*args, **kwargs):
        raise AssertionError("the experiment ran before the folder was checked")

    monkeypatch.setattr(contrastive, "contrastive_experiment", refuse)
    monkeypatch.setattr(gumbel, "gumbel_data", refuse)
    target = tmp_path / "taken"
    target.write_text("keep me")
    with pytest.raises(ValueError, match="`out_dir` must be a folder"):
        demo(target, quick=True)
    assert target.read_text() == "keep me"


# ------------------------------------------------------------------ full runs
@pytest.mark.slow
def test_contrastive_full_demo(tmp_path):
    text = contrastive_demo(tmp_path, seed=0)
    assert "3 seed(s) (0, 1, 2)" in text
    assert (tmp_path / "contrastive_accuracy.png").exists()
    result_lines = [line for line in text.splitlines() if line.startswith(("T=", f"{LEARNED}  "))]
    assert len(result_lines) == 6
    for line in result_lines:
        accuracy = float(line.split()[4])
        assert accuracy > 0.9


@pytest.mark.slow
def test_gumbel_full_demo(tmp_path):
    data = gumbel_data(GumbelConfig.full())
    _no_significant_violation(data.bias, data.bias_se, increasing=True)
    _no_significant_violation(data.variance, data.variance_se, increasing=False)
    text = gumbel_demo(tmp_path, seed=0)
    assert gumbel_table(data) in text
    assert (tmp_path / "gumbel_bias_variance.png").exists()
