"""Distillation demo: a big teacher, a tiny student, and the temperature of the soft targets.

scikit-learn's handwritten digits (8x8 images, 10 classes, bundled with the
library: nothing is downloaded). Each seed draws a stratified half of the
data as the test set and a small labelled training set from the other half
(300 digits: with little data the teacher's soft targets have the most to
add), trains a teacher MLP (64-256-256-10, 85k parameters) and then the same
tiny student (64-8-10, 610 parameters) five ways: on the hard labels alone,
and with ``thermoscope.distill.kd_loss`` at ``T`` in {1, 2, 4, 8}. Every
number is the test set's accuracy and NLL (the student's own probabilities,
at T = 1), mean and sample standard deviation over the seeds.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from thermoscope._progress import progress_bar
from thermoscope._tables import format_table
from thermoscope._typing import Array
from thermoscope._validation import check_seed
from thermoscope.demos._output import prepare_out_dir, save_outputs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DistillConfig",
    "DistillResult",
    "DistillRun",
    "distill_demo",
    "distill_experiment",
    "distill_table",
    "plot_soft_targets",
]

#: The file names the demo writes under ``out_dir``.
FIGURE_NAME = "distill_soft_targets.png"
TABLE_NAME = "distill.txt"
HARD = "hard labels"


@dataclass(frozen=True)
class DistillConfig:
    """What the experiment trains; the defaults are the full demo.

    Examples
    --------
    >>> DistillConfig.quick().seeds
    (0, 1, 2)
    >>> DistillConfig(seeds=(5, 6, 7)).temperatures
    (1.0, 2.0, 4.0, 8.0)
    """

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    temperatures: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    alpha: float = 0.9
    n_train: int = 300
    teacher_hidden: tuple[int, ...] = (256, 256)
    student_hidden: int = 8
    teacher_epochs: int = 60
    student_epochs: int = 200
    batch_size: int = 128
    teacher_lr: float = 1e-3
    student_lr: float = 1e-2
    figure_temperatures: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)

    @classmethod
    def quick(cls, *, seed: int = 0) -> DistillConfig:
        """Three seeds and short training: every code path, a few seconds."""
        return cls(seeds=(seed, seed + 1, seed + 2), teacher_epochs=15, student_epochs=40)

    @classmethod
    def full(cls, *, seed: int = 0) -> DistillConfig:
        """The demo's setting: five seeds starting at ``seed``."""
        return cls(seeds=tuple(range(seed, seed + 5)))


@dataclass(frozen=True)
class DistillRun:
    """One trained model evaluated on its seed's test set."""

    setting: str
    seed: int
    accuracy: float
    nll: float
    test_probs: Array = field(repr=False)
    test_labels: Array = field(repr=False)


@dataclass(frozen=True)
class DistillResult:
    """All runs, plus the teacher's logits for the figure's example digit."""

    config: DistillConfig
    runs: tuple[DistillRun, ...]
    example_logits: Array
    example_label: int
    example_image: Array

    def settings(self) -> list[str]:
        """The settings in table order: teacher, hard labels, then KD by temperature."""
        return ["teacher", HARD, *(_kd_name(t) for t in self.config.temperatures)]

    def metric(self, setting: str, name: str) -> Array:
        """``accuracy`` or ``nll`` of every seed's run of ``setting``."""
        return np.array([getattr(r, name) for r in self.runs if r.setting == setting])


def _kd_name(t: float) -> str:
    return f"KD T={t:g}"


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch threads and restore the caller's setting afterwards.

    The networks are tiny: thread start-up costs more than it saves, and on a
    busy 2-core machine two threads per step made the demo 7x slower.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _mlp(sizes: Sequence[int], seed: int) -> Any:
    import torch
    from torch import nn

    layers: list[Any] = []
    # Seed the initialisation without touching the caller's global torch RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _train(
    model: Any,
    x: Any,
    y: Any,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    teacher_logits: Any = None,
    temperature: float = 1.0,
    alpha: float = 1.0,
) -> Any:
    """Adam on shuffled mini-batches; KD loss when ``teacher_logits`` is given, else CE."""
    import torch
    import torch.nn.functional as F

    from thermoscope.distill import kd_loss

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=order)
        for start in range(0, len(x), batch_size):
            idx = perm[start : start + batch_size]
            out = model(x[idx])
            loss: Any  # Tensor.backward is untyped in torch's own annotations
            if teacher_logits is None:
                loss = F.cross_entropy(out, y[idx])
            else:
                loss = kd_loss(
                    out, teacher_logits[idx], temperature=temperature, labels=y[idx], alpha=alpha
                )
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


def _evaluate(model: Any, x: Any, y: Array, setting: str, seed: int) -> DistillRun:
    import torch

    with torch.no_grad():
        logp = torch.log_softmax(model(x).double(), dim=-1).numpy()
    probs = np.exp(logp)
    return DistillRun(
        setting=setting,
        seed=seed,
        accuracy=float(np.mean(np.argmax(logp, axis=1) == y)),
        nll=float(-np.mean(logp[np.arange(len(y)), y])),
        test_probs=probs,
        test_labels=y,
    )


def _split(seed: int, n_train: int) -> tuple[Array, ...]:
    """Stratified half as test set; ``n_train`` stratified digits of the rest for training."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_rest, x_te, y_rest, y_te = train_test_split(
        x, y, test_size=0.5, stratify=y, random_state=seed
    )
    x_tr, _, y_tr, _ = train_test_split(
        x_rest, y_rest, train_size=n_train, stratify=y_rest, random_state=seed
    )
    # Standardise with training statistics only; +1 keeps the always-blank
    # corner pixels (std 0) from dividing by zero.
    mu, sd = x_tr.mean(axis=0), x_tr.std(axis=0) + 1.0
    return (x_tr - mu) / sd, y_tr, (x_te - mu) / sd, y_te, x_te


def distill_experiment(config: DistillConfig | None = None) -> DistillResult:
    """Train the teacher and every student for each seed; evaluate on the test sets.

    Parameters
    ----------
    config : DistillConfig, optional
        Default: ``DistillConfig()``, the full demo.

    Returns
    -------
    DistillResult
        One :class:`DistillRun` per (setting, seed), and the teacher's (first
        seed) logits for the figure's example: the correctly classified test
        digit of median teacher confidence, a typical digit.

    Examples
    --------
    >>> cfg = DistillConfig(seeds=(0,), temperatures=(4.0,), teacher_epochs=2,
    ...                     student_epochs=2)
    >>> res = distill_experiment(cfg)
    >>> [r.setting for r in res.runs]
    ['teacher', 'hard labels', 'KD T=4']
    >>> res.example_logits.shape
    (10,)
    """
    import torch

    cfg = DistillConfig() if config is None else config
    runs: list[DistillRun] = []
    example: tuple[Array, int, Array] | None = None
    bar = progress_bar(
        len(cfg.seeds) * (2 + len(cfg.temperatures)), desc="distill: training", unit="model"
    )
    with _torch_threads(1), contextlib.closing(bar):
        for seed in cfg.seeds:
            x_tr, y_tr, x_te, y_te, raw_te = _split(seed, cfg.n_train)
            xt = torch.tensor(x_tr, dtype=torch.float32)
            yt = torch.tensor(y_tr, dtype=torch.int64)
            xv = torch.tensor(x_te, dtype=torch.float32)
            teacher = _train(
                _mlp((64, *cfg.teacher_hidden, 10), seed),
                xt,
                yt,
                epochs=cfg.teacher_epochs,
                lr=cfg.teacher_lr,
                batch_size=cfg.batch_size,
                seed=seed,
            )
            runs.append(_evaluate(teacher, xv, y_te, "teacher", seed))
            bar.update()
            with torch.no_grad():
                soft = teacher(xt)
                if example is None:
                    example = _pick_example(teacher(xv).double().numpy(), y_te, raw_te)
            for temp in [None, *cfg.temperatures]:
                # The same initial student and batch order for every setting of a
                # seed: the settings differ only in the loss.
                student = _train(
                    _mlp((64, cfg.student_hidden, 10), seed + 10_000),
                    xt,
                    yt,
                    epochs=cfg.student_epochs,
                    lr=cfg.student_lr,
                    batch_size=cfg.batch_size,
                    seed=seed,
                    teacher_logits=None if temp is None else soft,
                    temperature=1.0 if temp is None else temp,
                    alpha=cfg.alpha,
                )
                name = HARD if temp is None else _kd_name(temp)
                runs.append(_evaluate(student, xv, y_te, name, seed))
                bar.update()
    assert example is not None
    logits, label, image = example
    return DistillResult(cfg, tuple(runs), logits, label, image)


def _pick_example(logits: Array, labels: Array, raw: Array) -> tuple[Array, int, Array]:
    """The correctly classified test digit whose teacher confidence is the median one."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    conf = 1.0 / np.exp(shifted).sum(axis=1)
    right = np.flatnonzero(np.argmax(logits, axis=1) == labels)
    pool = right if right.size else np.arange(len(labels))
    i = pool[np.argsort(conf[pool], kind="stable")[pool.size // 2]]
    return logits[i].copy(), int(labels[i]), raw[i].reshape(8, 8)


def distill_table(result: DistillResult) -> str:
    """The results as one text table: mean ± sample sd over seeds, per setting.

    Examples
    --------
    >>> cfg = DistillConfig(seeds=(0, 1), temperatures=(2.0,), teacher_epochs=1,
    ...                     student_epochs=1)
    >>> print(distill_table(distill_experiment(cfg)).splitlines()[0])
    setting      params  test accuracy  vs hard (points)  test NLL (nats)
    """
    cfg = result.config
    teacher_params = _param_count((64, *cfg.teacher_hidden, 10))
    student_params = _param_count((64, cfg.student_hidden, 10))
    hard = result.metric(HARD, "accuracy")
    rows = []
    for name in result.settings():
        acc, nll = result.metric(name, "accuracy"), result.metric(name, "nll")
        params = teacher_params if name == "teacher" else student_params
        # Every setting of a seed shares its split (and, for students, the
        # initial weights and batch order), so differences are paired by seed.
        gain = "" if name in ("teacher", HARD) else _mean_sd(100 * (acc - hard), ".2f", signed=True)
        rows.append([name, params, _mean_sd(acc), gain, _mean_sd(nll)])
    headers = ["setting", "params", "test accuracy", "vs hard (points)", "test NLL (nats)"]
    return format_table(headers, rows)


def _param_count(sizes: Sequence[int]) -> int:
    return sum((a + 1) * b for a, b in itertools.pairwise(sizes))


def _mean_sd(values: Array, fmt: str = ".4f", signed: bool = False) -> str:
    sd = float(np.std(values, ddof=1)) if values.size > 1 else math.nan
    sign = "+" if signed else ""
    return f"{float(np.mean(values)):{sign}{fmt}} ± {sd:{fmt}}"


def plot_soft_targets(
    logits: Array,
    *,
    temperatures: Sequence[float] = (1.0, 2.0, 4.0, 8.0),
    label: int | None = None,
    image: Array | None = None,
) -> Figure:
    """Bar chart of ``softmax(logits / T)`` for several ``T``: the "dark knowledge".

    The bars of temperature ``temperatures[i]`` are ``ax.containers[i]`` of the
    last axes (the digit, when ``image`` is given, is drawn in the first).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope import softmax
    >>> z = np.array([6.0, 1.0, 3.0])
    >>> fig = plot_soft_targets(z, temperatures=[1.0, 4.0])
    >>> heights = [bar.get_height() for bar in fig.axes[-1].containers[1]]
    >>> np.allclose(heights, softmax(z, 4.0))
    True
    """
    # A bare Figure (no pyplot) renders with Agg and leaves the caller's
    # backend and pyplot state alone.
    from matplotlib.figure import Figure

    from thermoscope.core import softmax

    z = np.asarray(logits, dtype=np.float64)
    fig = Figure(figsize=(9.5, 3.6), layout="constrained")
    if image is not None:
        ax_img, ax = fig.subplots(1, 2, width_ratios=[1, 3.4])
        ax_img.imshow(image, cmap="gray_r")
        ax_img.set_xticks([])
        ax_img.set_yticks([])
        ax_img.set_title("test digit" if label is None else f"test digit (label {label})")
    else:
        ax = fig.subplots()
    classes = np.arange(z.size)
    width = 0.8 / len(temperatures)
    for i, t in enumerate(temperatures):
        ax.bar(
            classes + (i - (len(temperatures) - 1) / 2) * width,
            softmax(z, t),
            width,
            label=f"T = {t:g}",
        )
    ax.set_xticks(classes)
    ax.set_xlabel("class")
    ax.set_ylabel("teacher probability")
    ax.set_title("Teacher's soft targets: raising T reveals which wrong classes look alike")
    ax.legend()
    return fig


def distill_demo(out_dir: Path | None = None, *, seed: int = 0, quick: bool = False) -> str:
    """Run the distillation experiment; return its report and write the table and figure.

    Parameters
    ----------
    out_dir : pathlib.Path, optional
        Folder for ``distill.txt`` (the table) and ``distill_soft_targets.png``
        (the teacher's soft targets for one test digit at T = 1, 2, 4, 8);
        created if missing. ``None`` writes nothing.
    seed : int, default 0
        First seed; the runs use ``seed``, ``seed + 1``, ...
    quick : bool, default False
        Three seeds and short training (a smoke run, seconds) instead of the
        full demo (five seeds, about 10-20 s on one CPU core).

    Returns
    -------
    str
        The report: setting, the table, what it shows, the files written.

    Examples
    --------
    >>> print(distill_demo(quick=True).splitlines()[4])  # doctest: +ELLIPSIS
    Knowledge distillation on scikit-learn digits: 300 training digits, ... [quick run]
    """
    seed = check_seed(seed)
    out = prepare_out_dir(out_dir)  # before training: a bad folder fails fast
    cfg = DistillConfig.quick(seed=seed) if quick else DistillConfig.full(seed=seed)
    result = distill_experiment(cfg)
    table = distill_table(result)
    hard = float(np.mean(result.metric(HARD, "accuracy")))
    best_t = max(
        cfg.temperatures, key=lambda t: float(np.mean(result.metric(_kd_name(t), "accuracy")))
    )
    best = float(np.mean(result.metric(_kd_name(best_t), "accuracy")))
    lines = [
        "What you see: a small student network learns digits from a large teacher's "
        "probabilities softened at temperature T, against a student that sees only the "
        "hard labels.",
        "Why it matters: at T = 1 the teacher's probabilities are nearly one-hot; heating"
        " them reveals which wrong digits look alike (a 3 resembles an 8), extra signal "
        "the student can learn from.",
        "Try it: compare the KD rows below: the gain over hard labels grows from T = 1 to"
        " T = 4 and then levels off.",
        "",
        f"Knowledge distillation on scikit-learn digits: {cfg.n_train} training digits, "
        f"test set = half the data, {len(cfg.seeds)} seeds ({cfg.seeds[0]}..{cfg.seeds[-1]}); "
        f"KD weight alpha = {cfg.alpha:g}" + (" [quick run]" if quick else ""),
        "",
        table,
        "",
        f"mean ± sample sd over {len(cfg.seeds)} seeds; NLL of each model's own "
        "probabilities at T = 1;",
        "'vs hard': accuracy gain over the hard-label student of the same seed "
        "(same split, initial weights and batch order).",
        f"Best KD temperature here: T = {best_t:g}, test accuracy {best:.4f} vs "
        f"{hard:.4f} on hard labels alone ({100 * (best - hard):+.1f} points).",
    ]
    if out is not None:
        fig = plot_soft_targets(
            result.example_logits,
            temperatures=cfg.figure_temperatures,
            label=result.example_label,
            image=result.example_image,
        )
        save_outputs(
            out,
            table,
            TABLE_NAME,
            fig,
            FIGURE_NAME,
            caption="A teacher's probabilities for one digit at several temperatures: "
            "heating reveals"
            " the runner-up classes that hard labels hide.",
        )
        lines.append(f"wrote {out / TABLE_NAME} and {out / FIGURE_NAME}")
    return "\n".join(lines)
