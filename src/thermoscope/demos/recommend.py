"""Diversity in recommendation: exposure of a Zipf catalogue vs sampling temperature.

A catalogue whose item popularity follows Zipf's law (``p_i ~ 1 / i``), and
users whose scores are ``log p_i`` plus a personal taste term ``N(0, 1)``.
Each user gets ``k`` items sampled without replacement from
``softmax(scores / T)``. At ``T = 0`` every user sees their own top-k, which
is mostly the head of the catalogue; as ``T`` rises, exposure spreads into the
long tail, at the price of recommending fewer of each user's own top-k.

Examples
--------
>>> from thermoscope.demos.recommend import recommend_demo
>>> "Gini" in recommend_demo(quick=True)
True
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from thermoscope._tables import format_table, format_temperature
from thermoscope._typing import FloatArray
from thermoscope._validation import check_seed
from thermoscope.demos._output import prepare_out_dir, save_outputs
from thermoscope.recommend import coverage, exposure, gini, long_tail_share, sample_items

__all__ = [
    "RecommendData",
    "recommend_data",
    "recommend_demo",
    "recommend_figure",
    "recommend_table",
]

#: Sampling temperatures compared (0: top-k; inf: uniform over the catalogue).
TEMPERATURES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0, float("inf"))

#: File names written under ``out_dir``.
TABLE_FILE = "recommend.txt"
FIGURE_FILE = "recommend_exposure.png"

#: Zipf exponent of popularity, spread of personal taste, items per user, head size.
ZIPF_EXPONENT = 1.0
TASTE_STD = 1.0
K = 10
HEAD_FRACTION = 0.2


@dataclass(frozen=True, eq=False)
class RecommendData:
    """The recommendation demo's measurements, one entry per temperature.

    Attributes
    ----------
    n_items, n_users, k, seed : int
    temperatures : tuple of float
    coverage, long_tail_share, gini, top_k_overlap : ndarray, shape (temperatures,)
        Catalogue coverage, share of exposure on the long tail (all but the
        most popular 20 % of items), Gini coefficient of exposure, and the mean
        fraction of a user's recommendations that are in their own top-k.
    """

    n_items: int
    n_users: int
    k: int
    seed: int
    temperatures: tuple[float, ...]
    coverage: FloatArray
    long_tail_share: FloatArray
    gini: FloatArray
    top_k_overlap: FloatArray


def _sizes(quick: bool) -> tuple[int, int]:
    """(items, users)."""
    return (200, 300) if quick else (1000, 2000)


def recommend_data(*, seed: int = 0, quick: bool = False) -> RecommendData:
    """Sample recommendations at every temperature of :data:`TEMPERATURES` and measure them.

    Every temperature uses the same users (same scores); ``quick`` uses 200
    items and 300 users instead of 1000 and 2000.

    Examples
    --------
    >>> d = recommend_data(quick=True)
    >>> float(d.top_k_overlap[0]), float(d.coverage[-1])
    (1.0, 1.0)
    """
    n_items, n_users = _sizes(quick)
    s = check_seed(seed)
    taste_seq, *draw_seqs = np.random.SeedSequence(s).spawn(1 + len(TEMPERATURES))
    popularity = np.arange(1, n_items + 1, dtype=np.float64) ** -ZIPF_EXPONENT
    popularity /= popularity.sum()
    taste = np.random.default_rng(taste_seq).standard_normal((n_users, n_items))
    scores = np.log(popularity) + TASTE_STD * taste
    own_top = np.zeros((n_users, n_items), dtype=bool)
    np.put_along_axis(own_top, np.argsort(-scores, axis=1)[:, :K], True, axis=1)
    metrics = []
    for t, seq in zip(TEMPERATURES, draw_seqs, strict=True):
        recs = sample_items(scores, temperature=t, k=K, rng=np.random.default_rng(seq))
        e = exposure(recs, n_items)
        metrics.append(
            (
                coverage(e),
                long_tail_share(e, popularity, head_fraction=HEAD_FRACTION),
                gini(e),
                float(np.take_along_axis(own_top, recs, axis=1).mean()),
            )
        )
    cov, tail, g, overlap = (np.array(col) for col in zip(*metrics, strict=True))
    return RecommendData(n_items, n_users, K, s, TEMPERATURES, cov, tail, g, overlap)


def recommend_table(data: RecommendData) -> str:
    """The metrics table, one row per temperature.

    Examples
    --------
    >>> recommend_table(recommend_data(quick=True)).split()[:2]
    ['T', 'coverage']
    """
    rows = [
        [format_temperature(t), float(c), float(lt), float(g), float(o)]
        for t, c, lt, g, o in zip(
            data.temperatures,
            data.coverage,
            data.long_tail_share,
            data.gini,
            data.top_k_overlap,
            strict=True,
        )
    ]
    return format_table(["T", "coverage", "long-tail share", "Gini", "own top-k overlap"], rows)


def _x_positions(temps: tuple[float, ...]) -> FloatArray:
    """Log-axis positions: finite T at themselves, T = 0 and T = inf just beyond them."""
    finite = [t for t in temps if 0 < t < np.inf]
    lo, hi = min(finite), max(finite)
    return np.array([lo / 3 if t == 0 else hi * 3 if np.isinf(t) else t for t in temps])


def recommend_figure(data: RecommendData) -> Any:
    """Coverage, long-tail share, Gini and top-k overlap against temperature.

    Returns a ``matplotlib.figure.Figure``; one line per metric, every
    temperature a point (``T = 0`` and ``T = inf`` at the axis ends).

    Examples
    --------
    >>> fig = recommend_figure(recommend_data(quick=True))
    >>> [line.get_label() for line in fig.axes[0].lines]
    ['coverage', 'long-tail share', 'Gini of exposure', 'own top-k overlap']
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    x = _x_positions(data.temperatures)
    for values, label, style in (
        (data.coverage, "coverage", "o-"),
        (data.long_tail_share, "long-tail share", "s-"),
        (data.gini, "Gini of exposure", "^-"),
        (data.top_k_overlap, "own top-k overlap", "k--"),
    ):
        ax.plot(x, values, style, label=label)
    ax.set_xscale("log")
    ax.set_xticks(x, [format_temperature(t) for t in data.temperatures])
    ax.minorticks_off()
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("sampling temperature T (log scale; 0 and inf at the ends)")
    ax.set_ylabel("share or index (0 to 1)")
    ax.set_title(
        f"Heating spreads exposure over the catalogue\n(Zipf catalogue: {data.n_items} items, "
        f"{data.n_users} users, k = {data.k} each)"
    )
    ax.legend(loc="center left")
    ax.grid(alpha=0.3)
    return fig


def recommend_demo(
    out_dir: pathlib.Path | None = None, *, seed: int = 0, quick: bool = False
) -> str:
    """Exposure diversity (coverage, long-tail share, Gini) vs sampling temperature.

    Parameters
    ----------
    out_dir : pathlib.Path, optional
        Folder for ``recommend.txt`` (the report) and ``recommend_exposure.png``
        (the plot); nothing is written when omitted.
    seed : int, default 0
    quick : bool, default False
        200 items and 300 users instead of 1000 and 2000 (a smoke test).

    Examples
    --------
    >>> print(recommend_demo(quick=True).splitlines()[4])
    Recommendation diversity: a Zipf catalogue of 200 items, 300 users, k = 10 (seed 0)
    """
    out = prepare_out_dir(out_dir)
    data = recommend_data(seed=seed, quick=quick)
    i1 = data.temperatures.index(1.0)
    lines = [
        "What you see: a recommender samples k items per user from softmax(score / T) "
        "instead of showing the k best; the table and figure show who gets exposure.",
        "Why it matters: at T = 0 a few popular items take all the exposure (Gini near 1); "
        "a little heat opens the long tail while each user still sees much of their own top-k.",
        "Try it: compare T = 0.5 and T = 1 below: coverage and long-tail share rise, overlap "
        "with the user's own top-k falls.",
        "",
        f"Recommendation diversity: a Zipf catalogue of {data.n_items} items, "
        f"{data.n_users} users, k = {data.k} (seed {data.seed})",
        f"popularity ~ 1/rank^{ZIPF_EXPONENT:g}; score = log popularity + N(0, {TASTE_STD:g}) "
        f"taste; long tail = all but the top {HEAD_FRACTION:.0%} of items",
        "",
        recommend_table(data),
        "",
        f"T = 0 shows each user their own top-{data.k}: {data.coverage[0]:.1%} of the "
        f"catalogue, {data.long_tail_share[0]:.1%} of exposure on the long tail. "
        f"T = 1 reaches {data.coverage[i1]:.1%} coverage and "
        f"{data.long_tail_share[i1]:.1%} long-tail exposure while keeping "
        f"{data.top_k_overlap[i1]:.0%} of the top-{data.k}; T = inf is uniform "
        f"(long-tail share -> {1 - HEAD_FRACTION:.0%}).",
    ]
    if out is not None:
        written = save_outputs(
            out,
            "\n".join(lines),
            TABLE_FILE,
            recommend_figure(data),
            FIGURE_FILE,
            caption="Coverage and long-tail share rise with T, concentration (Gini) and "
            "overlap with each user's own top-k fall.",
        )
        lines += ["", *(f"wrote {p}" for p in written)]
    return "\n".join(lines)
