"""Attention demo: how spread out attention is, as a function of its temperature.

Random queries and keys with independent standard normal entries, for head
sizes ``d`` in {16, 64, 256}. For each ``d`` and each temperature
``T = r * sqrt(d)`` the demo computes ``thermoscope.attention.attention_entropy``
of every query and averages it. A dot product of two such vectors has
variance ``d``, so the scores divided by ``T = r sqrt(d)`` have standard
deviation about ``1 / r`` for every ``d``: plotted against ``r`` the curves of
all head sizes coincide, and ``r = 1`` (the default ``T = sqrt(d)``) is the
same point on each. At ``T = 1`` (no scaling) attention collapses more the
larger the head, which is why the Transformer divides by ``sqrt(d)``.

For small score spread ``s = 1 / r`` and many keys, the softmax of ``Lk``
scores ``s g_j`` (``g_j`` standard normal) has entropy about
``ln Lk - s^2 / 2``: the normaliser is ``Lk E[e^{s g}] = Lk e^{s^2 / 2}`` and
the mean score under the weights is ``s^2``. The table prints that
approximation beside the measured values for ``r >= 1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from thermoscope._tables import format_table
from thermoscope._typing import Array
from thermoscope._validation import check_seed
from thermoscope.demos._output import prepare_out_dir, save_outputs

__all__ = [
    "AttentionEntropyCurve",
    "attention_demo",
    "attention_entropy_curve",
    "attention_table",
    "plot_attention_entropy",
]

FIGURE_NAME = "attention_entropy.png"
TABLE_NAME = "attention.txt"
RATIOS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


@dataclass(frozen=True)
class AttentionEntropyCurve:
    """Mean attention entropy (nats) per head size and temperature ratio ``T / sqrt(d)``."""

    dims: tuple[int, ...]
    ratios: tuple[float, ...]
    entropy: Array  # (len(dims), len(ratios))
    entropy_unscaled: Array  # (len(dims),): at T = 1
    n_queries: int
    n_keys: int

    def theory(self) -> Array:
        """The small-spread approximation ``ln Lk - 1 / (2 r^2)`` for each ratio."""
        return math.log(self.n_keys) - 0.5 / np.asarray(self.ratios) ** 2


def attention_entropy_curve(
    *,
    dims: Sequence[int] = (16, 64, 256),
    ratios: Sequence[float] = RATIOS,
    n_queries: int = 512,
    n_keys: int = 256,
    seed: int = 0,
) -> AttentionEntropyCurve:
    """Average attention entropy of random Gaussian queries/keys at ``T = r sqrt(d)``.

    Examples
    --------
    >>> c = attention_entropy_curve(dims=(8,), ratios=(1.0, 1e6), n_queries=4, n_keys=16)
    >>> c.entropy.shape
    (1, 2)
    >>> round(float(c.entropy[0, 1]), 6) == round(float(np.log(16)), 6)  # T huge: uniform
    True
    """
    from thermoscope.attention import attention_entropy

    rng = np.random.default_rng(check_seed(seed))
    h = np.empty((len(dims), len(ratios)))
    h1 = np.empty(len(dims))
    for i, d in enumerate(dims):
        q = rng.standard_normal((n_queries, d))
        k = rng.standard_normal((n_keys, d))
        for j, r in enumerate(ratios):
            h[i, j] = float(np.mean(attention_entropy(q, k, temperature=r * math.sqrt(d))))
        h1[i] = float(np.mean(attention_entropy(q, k, temperature=1.0)))
    return AttentionEntropyCurve(
        tuple(int(d) for d in dims), tuple(float(r) for r in ratios), h, h1, n_queries, n_keys
    )


def attention_table(curve: AttentionEntropyCurve) -> str:
    """Mean entropy per ratio ``T / sqrt(d)`` (rows) and head size (columns), plus theory.

    Examples
    --------
    >>> c = attention_entropy_curve(dims=(4,), ratios=(2.0,), n_queries=2, n_keys=8)
    >>> print(attention_table(c).splitlines()[0])
    T / sqrt(d)   d=4  ln Lk - 1/(2 r^2)
    """
    theory = curve.theory()
    # The approximation is for a small score spread 1 / r; below r = 1 it goes
    # negative, so the table leaves it out there.
    rows: list[list[object]] = [
        [f"{r:g}", *map(float, curve.entropy[:, j]), f"{theory[j]:.4f}" if r >= 1 else ""]
        for j, r in enumerate(curve.ratios)
    ]
    rows.append(["T = 1 (unscaled)", *map(float, curve.entropy_unscaled), ""])
    headers = ["T / sqrt(d)", *(f"d={d}" for d in curve.dims), "ln Lk - 1/(2 r^2)"]
    return format_table(headers, rows)


def plot_attention_entropy(curve: AttentionEntropyCurve) -> Any:
    """Entropy vs ``T / sqrt(d)`` (left, with theory) and vs raw ``T`` (right).

    Line ``i`` of each axes is head size ``curve.dims[i]``; the left axes then
    hold the theory curve and the ``ln Lk`` ceiling.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> c = attention_entropy_curve(dims=(4,), ratios=(1.0, 2.0), n_queries=2, n_keys=8)
    >>> fig = plot_attention_entropy(c)
    >>> bool(np.array_equal(fig.axes[0].lines[0].get_ydata(), c.entropy[0]))
    True
    """
    # A bare Figure renders with Agg and leaves pyplot and the backend alone.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    ratios = np.asarray(curve.ratios)
    for i, d in enumerate(curve.dims):
        left.plot(ratios, curve.entropy[i], marker="o", label=f"d = {d}")
    valid = ratios >= 1  # where the small-spread approximation applies
    left.plot(ratios[valid], curve.theory()[valid], "k--", label="ln Lk - 1/(2 r²)")
    left.axhline(math.log(curve.n_keys), color="gray", lw=0.8, label=f"ln Lk (Lk = {curve.n_keys})")
    left.axvline(1.0, color="gray", lw=0.8, ls=":")
    left.set_xscale("log", base=2)
    left.set_xlabel("T / sqrt(d)   (1 = the default T = sqrt(d))")
    left.set_ylabel("mean attention entropy (nats)")
    left.set_title("Scaled by sqrt(d): one curve for every head size")
    left.legend(fontsize=8)
    for i, d in enumerate(curve.dims):
        right.plot(ratios * math.sqrt(d), curve.entropy[i], marker="o", label=f"d = {d}")
    right.axvline(1.0, color="gray", lw=0.8, ls=":")
    right.set_xscale("log", base=2)
    right.set_xlabel("T  (dotted: T = 1, no scaling)")
    right.set_title("Against raw T: larger heads need a hotter softmax")
    right.legend(fontsize=8)
    return fig


def attention_demo(out_dir: Path | None = None, *, seed: int = 0, quick: bool = False) -> str:
    """Attention entropy vs temperature: return the report, write the table and figure.

    Parameters
    ----------
    out_dir : pathlib.Path, optional
        Folder for ``attention.txt`` and ``attention_entropy.png``; created if
        missing. ``None`` writes nothing.
    seed : int, default 0
        Seed of the random queries and keys.
    quick : bool, default False
        64 queries instead of 512 (same keys, same temperatures).

    Examples
    --------
    >>> print(attention_demo(quick=True).splitlines()[4])  # doctest: +ELLIPSIS
    Attention entropy vs temperature: 64 random queries, 256 keys, ...
    """
    seed = check_seed(seed)
    out = prepare_out_dir(out_dir)
    curve = attention_entropy_curve(n_queries=64 if quick else 512, seed=seed)
    table = attention_table(curve)
    at_default = curve.entropy[:, curve.ratios.index(1.0)]
    lines = [
        "What you see: how spread out attention weights are (their entropy) as the "
        "softmax temperature of attention changes, for heads of size d = 16, 64 and 256.",
        "Why it matters: transformers divide attention scores by sqrt(d) exactly so that "
        "this entropy does not collapse as heads grow; without it (T = 1) large heads "
        "attend to a single key.",
        "Try it: read the last row (T = 1, unscaled) against the row T / sqrt(d) = 1.",
        "",
        f"Attention entropy vs temperature: {curve.n_queries} random queries, "
        f"{curve.n_keys} keys, N(0, 1) entries, seed {seed}; mean entropy in nats "
        f"(uniform: ln {curve.n_keys} = {math.log(curve.n_keys):.4f}).",
        "",
        table,
        "",
        f"At the default T = sqrt(d) the entropy is {np.min(at_default):.3f}-"
        f"{np.max(at_default):.3f} nats for every head size; at T = 1 it falls from "
        f"{curve.entropy_unscaled[0]:.3f} (d={curve.dims[0]}) to "
        f"{curve.entropy_unscaled[-1]:.3f} (d={curve.dims[-1]}).",
    ]
    if out is not None:
        save_outputs(
            out,
            table,
            TABLE_NAME,
            plot_attention_entropy(curve),
            FIGURE_NAME,
            caption="With T = sqrt(d) the curves for every head size coincide; "
            "at T = 1 larger heads "
            "lose their entropy.",
        )
        lines.append(f"wrote {out / TABLE_NAME} and {out / FIGURE_NAME}")
    return "\n".join(lines)
