"""Gumbel-softmax demo: the temperature trades the relaxed gradient's bias for its variance.

A small categorical problem with an exact answer: minimise
``L(theta) = E_{x ~ softmax(theta)}[f(x)]`` over ``K = 8`` categories with
fixed costs ``f``. Its gradient has the closed form
``p * (f - p . f)`` with ``p = softmax(theta)``. The Gumbel-softmax (concrete)
estimator replaces the one-hot draw by ``y = softmax((theta + g) / T)``, ``g``
standard Gumbel noise (``thermoscope.training.gumbel_softmax``), extends ``f``
to the simplex linearly (``f(y) = y . f``) and differentiates through the
draw: a low-variance but biased estimate whose bias and variance both depend
on ``T``. The demo measures both against ``T`` with many draws, then
minimises ``L`` with Adam on those estimates at fixed temperatures and with
an annealed one (``thermoscope.training.GumbelAnnealer.exponential``), and
reports the true objective reached.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from thermoscope._progress import progress_bar
from thermoscope._tables import format_table
from thermoscope._typing import Array, FloatArray
from thermoscope._validation import check_seed
from thermoscope.demos._output import prepare_out_dir, save_outputs
from thermoscope.demos.distill import _torch_threads

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "GumbelConfig",
    "GumbelData",
    "OptimisationCurve",
    "default_costs",
    "exact_gradient",
    "gumbel_data",
    "gumbel_demo",
    "gumbel_figure",
    "gumbel_table",
    "objective",
    "relaxed_gradients",
]

#: The file names the demo writes under ``out_dir``.
TABLE_NAME = "gumbel.txt"
FIGURE_NAME = "gumbel_bias_variance.png"
#: The label of the annealed run.
ANNEALED = "annealed"


def default_costs(k: int = 8) -> tuple[float, ...]:
    """``f(x) = (x / (k - 1) - 0.3)^2``: the best category has a close runner-up.

    Examples
    --------
    >>> [round(c, 4) for c in default_costs(4)]
    [0.09, 0.0011, 0.1344, 0.49]
    """
    return tuple((i / (k - 1) - 0.3) ** 2 for i in range(k))


@dataclass(frozen=True)
class GumbelConfig:
    """The problem and the runs; the defaults are the full demo.

    Examples
    --------
    >>> cfg = GumbelConfig.quick()
    >>> len(cfg.temperatures), cfg.n_samples
    (5, 20000)
    """

    costs: tuple[float, ...] = field(default_factory=default_costs)
    temperatures: tuple[float, ...] = tuple(float(t) for t in np.geomspace(0.05, 5.0, 11))
    n_samples: int = 200_000
    fixed_temperatures: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
    anneal_start: float = 5.0
    anneal_end: float = 0.05
    steps: int = 300
    batch: int = 4
    lr: float = 0.05
    runs: int = 10
    seed: int = 0

    @classmethod
    def quick(cls, *, seed: int = 0) -> GumbelConfig:
        """Fewer draws, temperatures, steps and runs: every code path in about a second."""
        return cls(
            temperatures=(0.05, 0.158, 0.5, 1.58, 5.0),
            n_samples=20_000,
            fixed_temperatures=(0.05, 0.5, 5.0),
            steps=150,
            runs=5,
            seed=seed,
        )

    @classmethod
    def full(cls, *, seed: int = 0) -> GumbelConfig:
        """The demo's setting with the given seed."""
        return cls(seed=seed)


@dataclass(frozen=True)
class OptimisationCurve:
    """One optimisation setting: the true objective after each step, one row per run.

    ``objective[:, 0]`` is at the start (uniform ``theta``); ``temperatures[s]``
    is the temperature used at step ``s``.
    """

    label: str
    objective: FloatArray = field(repr=False)
    temperatures: FloatArray = field(repr=False)

    @property
    def final(self) -> FloatArray:
        """The true objective at the end of each run."""
        return self.objective[:, -1]


@dataclass(frozen=True)
class GumbelData:
    """Everything the demo measured; the table and figure are drawn from it.

    ``bias`` is ``||mean estimate - exact||``, ``bias_se`` its standard error
    (delta method), ``bias2`` the unbiased estimate of the squared bias
    (``||mean - exact||^2 - variance / n``, which can dip below zero where the
    bias is lost in Monte Carlo noise), ``variance`` the trace of the
    estimate's covariance and ``variance_se`` its standard error.
    """

    config: GumbelConfig
    exact: FloatArray
    temperatures: FloatArray
    bias: FloatArray
    bias_se: FloatArray
    bias2: FloatArray
    variance: FloatArray
    variance_se: FloatArray
    curves: tuple[OptimisationCurve, ...]


def objective(theta: Array, costs: Array) -> FloatArray:
    """The true objective ``softmax(theta) . f``, per row of ``theta``.

    Examples
    --------
    >>> import numpy as np
    >>> float(objective(np.zeros(2), np.array([0.0, 1.0])))
    0.5
    """
    t = np.asarray(theta, np.float64)
    p = np.exp(t - t.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    out: FloatArray = p @ np.asarray(costs, np.float64)
    return out


def exact_gradient(theta: Array, costs: Array) -> FloatArray:
    """``d/dtheta E_{x ~ softmax(theta)}[f(x)] = p * (f - p . f)``, ``p = softmax(theta)``.

    Examples
    --------
    >>> import numpy as np
    >>> exact_gradient(np.zeros(2), np.array([0.0, 1.0]))
    array([-0.25,  0.25])
    """
    t = np.asarray(theta, np.float64)
    f = np.asarray(costs, np.float64)
    p = np.exp(t - t.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    out: FloatArray = p * (f - (p @ f)[..., None])
    return out


def relaxed_gradients(
    theta: Array, costs: Array, temperature: float, n: int, generator: Any
) -> FloatArray:
    """``n`` Gumbel-softmax gradient estimates at ``theta``, shape ``(n, K)``, float64.

    Each row is the gradient of ``y . f`` with respect to ``theta`` for one draw
    ``y = gumbel_softmax(theta, temperature)``, by autograd through
    ``thermoscope.training.gumbel_softmax`` with the torch ``generator``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> g = relaxed_gradients(np.zeros(3), np.array([0.0, 1.0, 2.0]), 0.5, 4,
    ...                       torch.Generator().manual_seed(0))
    >>> g.shape, bool(np.allclose(g.sum(axis=1), 0.0))  # softmax is shift-invariant
    ((4, 3), True)
    """
    import torch

    from thermoscope.training import gumbel_softmax

    k = len(costs)
    f = torch.as_tensor(np.asarray(costs, np.float64))
    # One leaf row per draw: autograd then gives each draw's own gradient.
    rows = torch.as_tensor(np.asarray(theta, np.float64)).reshape(1, k).repeat(n, 1)
    rows.requires_grad_(True)
    y = gumbel_softmax(rows, temperature, generator=generator)
    (grad,) = torch.autograd.grad((y @ f).sum(), rows)
    out: FloatArray = grad.numpy()
    return out


def _moments(grads: FloatArray, exact: FloatArray) -> tuple[float, float, float, float, float]:
    """(bias, its s.e., unbiased bias^2, trace of covariance, its s.e.) of the draws."""
    n = grads.shape[0]
    mean = grads.mean(axis=0)
    centred = grads - mean
    sq = np.sum(centred**2, axis=1)
    variance = float(sq.sum() / (n - 1))
    diff = mean - exact
    bias = float(np.linalg.norm(diff))
    # Delta method: the error of ||mean - exact|| is the error of the mean along diff.
    u = diff / bias if bias > 0 else np.zeros_like(diff)
    bias_se = float(np.std(centred @ u, ddof=1) / math.sqrt(n))
    return bias, bias_se, bias**2 - variance / n, variance, float(np.std(sq, ddof=1) / math.sqrt(n))


def _optimise(
    cfg: GumbelConfig, label: str, annealer: Any, fixed: float | None
) -> OptimisationCurve:
    """``cfg.runs`` Adam runs from uniform theta; common random numbers across settings."""
    import torch

    from thermoscope.training import gumbel_softmax

    f = torch.tensor(cfg.costs, dtype=torch.float64)
    k = f.numel()
    gen = torch.Generator().manual_seed(cfg.seed)
    theta = torch.zeros(cfg.runs, k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=cfg.lr)
    objective_path = [torch.softmax(theta.detach(), dim=1) @ f]
    temps = []
    for _ in range(cfg.steps):
        t = fixed if fixed is not None else float(annealer.temperature)
        y = gumbel_softmax(theta[:, None, :].expand(cfg.runs, cfg.batch, k), t, generator=gen)
        loss: Any = (y @ f).mean(dim=1).sum()  # runs are independent: sum their losses
        opt.zero_grad()
        loss.backward()
        opt.step()
        if annealer is not None:
            annealer.step()
        temps.append(t)
        with torch.no_grad():
            objective_path.append(torch.softmax(theta, dim=1) @ f)
    path = torch.stack(objective_path, dim=1).numpy()
    return OptimisationCurve(label, path, np.array(temps))


def _fixed_label(t: float) -> str:
    return f"T={t:g}"


def gumbel_data(config: GumbelConfig | None = None) -> GumbelData:
    """Bias and variance of the relaxed gradient against T, then the optimisation runs.

    The bias and variance are measured at the starting point (uniform
    ``theta``) from ``n_samples`` draws per temperature, with the same Gumbel
    noise at every temperature (common random numbers).

    Examples
    --------
    >>> d = gumbel_data(GumbelConfig.quick())
    >>> d.variance.shape, [c.label for c in d.curves][-1]
    ((5,), 'annealed')
    """
    import torch

    cfg = GumbelConfig() if config is None else config
    theta0 = np.zeros(len(cfg.costs))
    exact = exact_gradient(theta0, np.array(cfg.costs))
    temps = np.array(cfg.temperatures, dtype=np.float64)
    stats = []
    bar = progress_bar(len(temps) + len(cfg.fixed_temperatures) + 1, desc="gumbel", unit="setting")
    with _torch_threads(1), contextlib.closing(bar):
        for t in temps:
            gen = torch.Generator().manual_seed(cfg.seed)
            grads = relaxed_gradients(theta0, np.array(cfg.costs), float(t), cfg.n_samples, gen)
            stats.append(_moments(grads, exact))
            bar.update()
        curves = []
        for t in cfg.fixed_temperatures:
            curves.append(_optimise(cfg, _fixed_label(t), None, t))
            bar.update()
        from thermoscope.training import GumbelAnnealer

        annealer = GumbelAnnealer.exponential(
            start=cfg.anneal_start, end=cfg.anneal_end, steps=cfg.steps
        )
        curves.append(_optimise(cfg, ANNEALED, annealer, None))
        bar.update()
    bias, bias_se, bias2, variance, variance_se = (np.array(c) for c in zip(*stats, strict=True))
    return GumbelData(cfg, exact, temps, bias, bias_se, bias2, variance, variance_se, tuple(curves))


def _mean_sd(values: Array, fmt: str = ".5f") -> str:
    sd = float(np.std(values, ddof=1)) if values.size > 1 else math.nan
    return f"{float(np.mean(values)):{fmt}} ± {sd:{fmt}}"


def gumbel_table(data: GumbelData) -> str:
    """Two tables: bias and variance against T; the final true objective per setting.

    Examples
    --------
    >>> print(gumbel_table(gumbel_data(GumbelConfig.quick())).splitlines()[0])
    T      bias     s.e.     bias^2 (unbiased)  variance (trace)  s.e.
    """
    rows = [
        [f"{t:.3g}", float(b), float(se), f"{b2:.3e}", f"{v:.3e}", f"{vse:.1e}"]
        for t, b, se, b2, v, vse in zip(
            data.temperatures,
            data.bias,
            data.bias_se,
            data.bias2,
            data.variance,
            data.variance_se,
            strict=True,
        )
    ]
    first = format_table(
        ["T", "bias", "s.e.", "bias^2 (unbiased)", "variance (trace)", "s.e."], rows
    )
    best = min(data.config.costs)
    cfg = data.config
    schedule = f"{ANNEALED} {cfg.anneal_start:g} -> {cfg.anneal_end:g}"
    opt_rows = [
        [
            schedule if c.label == ANNEALED else c.label,
            _mean_sd(c.final),
            _mean_sd(c.final - best, ".2e"),
        ]
        for c in data.curves
    ]
    second = format_table(
        ["setting", f"final objective ({data.config.runs} runs)", "gap to the optimum"],
        opt_rows,
    )
    return f"{first}\n\n{second}"


def gumbel_figure(data: GumbelData) -> Figure:
    """Squared bias and variance against T (left, log-log), optimisation curves (right).

    The left axes hold two lines, ``bias^2`` and ``variance``, and the Monte
    Carlo noise floor of the squared bias (``variance / n``) dashed; the right
    axes one line per optimisation setting: the mean gap ``L - min f`` per step.

    Examples
    --------
    >>> fig = gumbel_figure(gumbel_data(GumbelConfig.quick()))
    >>> [line.get_label() for line in fig.axes[0].lines]
    ['bias^2', 'variance (trace)', 'noise floor of bias^2']
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    cfg = data.config
    fig = Figure(figsize=(12, 4.6), layout="constrained")
    ax, ax_o = fig.subplots(1, 2)
    # Below the noise floor the squared bias is not resolved: plot the floor there.
    floor = data.variance / cfg.n_samples
    ax.plot(data.temperatures, np.maximum(data.bias2, floor), "o-", label="bias^2")
    ax.plot(data.temperatures, data.variance, "s-", label="variance (trace)")
    ax.plot(data.temperatures, floor, "k:", label="noise floor of bias^2")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Gumbel-softmax temperature T")
    ax.set_ylabel("squared error of the gradient estimate")
    ax.set_title(f"Relaxed gradient at uniform theta, K = {len(cfg.costs)}, {cfg.n_samples} draws")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    best = min(cfg.costs)
    steps = np.arange(cfg.steps + 1)
    fixed = [c for c in data.curves if c.label != ANNEALED]
    for i, c in enumerate(fixed):
        color = colormaps["viridis"](i / max(len(fixed) - 1, 1))
        ax_o.plot(steps, np.mean(c.objective - best, axis=0), color=color, label=f"fixed {c.label}")
    for c in data.curves:
        if c.label == ANNEALED:
            ax_o.plot(
                steps,
                np.mean(c.objective - best, axis=0),
                "r--",
                lw=2,
                label=f"annealed {cfg.anneal_start:g} -> {cfg.anneal_end:g}",
            )
    ax_o.set_yscale("log")
    ax_o.set_xlabel("Adam step")
    ax_o.set_ylabel(f"true objective - optimum (mean of {cfg.runs} runs)")
    ax_o.set_title(f"Minimising E[f(x)], {cfg.batch} relaxed draws per step")
    ax_o.legend(fontsize=8, ncols=2)
    ax_o.grid(alpha=0.3, which="both")
    return fig


def _summary(data: GumbelData) -> list[str]:
    """What the numbers show, computed from them."""
    cfg = data.config
    finals = {c.label: float(np.mean(c.final)) for c in data.curves}
    fixed = [c.label for c in data.curves if c.label != ANNEALED]
    best = min(fixed, key=lambda name: finals[name])
    worst = max(fixed, key=lambda name: finals[name])
    beaten = sum(finals[ANNEALED] < finals[name] for name in fixed)
    lo, hi = 0, len(data.temperatures) - 1
    return [
        f"From T = {data.temperatures[hi]:.3g} down to T = {data.temperatures[lo]:.3g} the "
        f"bias falls from {data.bias[hi]:.4f} to {data.bias[lo]:.4f} (the exact gradient's norm "
        f"is {np.linalg.norm(data.exact):.4f}) while the variance grows "
        f"{data.variance[lo] / data.variance[hi]:.0f}-fold, from {data.variance[hi]:.2e} to "
        f"{data.variance[lo]:.2e}.",
        f"Optimisation: best fixed temperature {best} ({finals[best]:.5f}), worst {worst} "
        f"({finals[worst]:.5f}); the annealed schedule {cfg.anneal_start:g} -> "
        f"{cfg.anneal_end:g} reached {finals[ANNEALED]:.5f}, better than {beaten} of the "
        f"{len(fixed)} fixed temperatures (optimum {min(cfg.costs):.5f}).",
    ]


def gumbel_demo(out_dir: Path | None = None, *, seed: int = 0, quick: bool = False) -> str:
    """Bias and variance of the Gumbel-softmax gradient against T, and annealing vs fixed T.

    Parameters
    ----------
    out_dir : pathlib.Path, optional
        Folder for ``gumbel.txt`` (the tables) and ``gumbel_bias_variance.png``
        (bias^2 and variance against T, and the optimisation curves); created
        if missing. ``None`` writes nothing.
    seed : int, default 0
        Seeds every Gumbel draw (the same noise at every temperature).
    quick : bool, default False
        20 000 draws at 5 temperatures and 5 runs of 150 steps (a smoke run)
        instead of 200 000 draws at 11 temperatures and 10 runs of 300 steps.

    Returns
    -------
    str
        The report: the problem, the tables, what they show, the files written.

    Examples
    --------
    >>> print(gumbel_demo(quick=True).splitlines()[4])  # doctest: +ELLIPSIS
    Gumbel-softmax gradients on a K = 8 categorical problem... [quick run]
    """
    seed = check_seed(seed)
    out = prepare_out_dir(out_dir)  # before the runs: a bad folder fails fast
    cfg = GumbelConfig.quick(seed=seed) if quick else GumbelConfig.full(seed=seed)
    data = gumbel_data(cfg)
    table = gumbel_table(data)
    costs = ", ".join(f"{c:.3f}" for c in cfg.costs)
    lines = [
        "What you see: the bias and variance of Gumbel-softmax gradient estimates as the "
        "relaxation temperature T changes, and what that does to optimisation.",
        "Why it matters: a low T gives nearly discrete samples (little bias) but noisy "
        "gradients; a high T gives smooth, biased ones. Annealing T trades one for the "
        "other.",
        "Try it: find the temperature where bias squared and variance cross in the first table.",
        "",
        f"Gumbel-softmax gradients on a K = {len(cfg.costs)} categorical problem, seed {seed}"
        + (" [quick run]" if quick else ""),
        f"minimise L(theta) = E_(x ~ softmax(theta))[f(x)], f = ({costs}); exact gradient "
        "p * (f - p . f); the estimate differentiates y . f through y = gumbel_softmax(theta, T)",
        "",
        table,
        "",
        f"bias and variance at uniform theta from {cfg.n_samples} draws per T; optimisation: "
        f"Adam (lr {cfg.lr:g}) from uniform theta, {cfg.steps} steps of {cfg.batch} draws, "
        f"mean ± sample sd over {cfg.runs} runs.",
        *_summary(data),
    ]
    if out is not None:
        save_outputs(
            out,
            table,
            TABLE_NAME,
            gumbel_figure(data),
            FIGURE_NAME,
            caption="Bias falls and variance grows as T falls: no single temperature wins both.",
        )
        lines.append(f"wrote {out / TABLE_NAME} and {out / FIGURE_NAME}")
    return "\n".join(lines)
