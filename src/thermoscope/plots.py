"""Pictures of temperature (matplotlib, imported only when a plot is drawn).

Each function computes its data with thermoscope's own tools, draws it on a
new figure (the Agg backend works; no window is ever opened) and returns the
``matplotlib.figure.Figure``; ``save=PATH`` also writes it to a file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["plot_reliability"]

_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _as_curves(curves: Any, labels: Any, n_bins: int, from_logits: bool) -> dict[str, Any]:
    """Name -> ReliabilityCurve for a curve, an array, or a sequence / mapping of them."""
    from thermoscope.calibration.metrics import ReliabilityCurve, reliability_curve

    if isinstance(curves, Mapping):
        items = list(curves.items())
    elif isinstance(curves, ReliabilityCurve) or hasattr(curves, "shape"):
        items = [("model", curves)]
    elif (
        isinstance(curves, Sequence)
        and curves
        and all(isinstance(c, ReliabilityCurve) or hasattr(c, "shape") for c in curves)
    ):
        items = [(f"model {i + 1}", c) for i, c in enumerate(curves)]
    else:
        items = [("model", curves)]
    if not items:
        raise ValueError("`curves` must hold at least one curve or probability array, got none.")
    out: dict[str, Any] = {}
    for name, item in items:
        if isinstance(item, ReliabilityCurve):
            out[str(name)] = item
            continue
        if labels is None:
            raise ValueError(
                "`labels` must be given when `curves` holds probability arrays, got None."
            )
        out[str(name)] = reliability_curve(item, labels, n_bins=n_bins, from_logits=from_logits)
    return out


def plot_reliability(
    curves: Any,
    labels: Any = None,
    *,
    n_bins: int = 15,
    from_logits: bool = False,
    title: str = "Reliability diagram",
    save: str | os.PathLike[str] | None = None,
) -> Any:
    """Reliability diagram with the confidence histogram under it; overlay several models.

    Parameters
    ----------
    curves : ReliabilityCurve, array, or a sequence or mapping of them
        What to draw. A mapping gives legend names, e.g.
        ``{"before": probs, "after": probs_scaled}``; arrays are probabilities
        of shape (N, C) (logits with ``from_logits=True``), turned into
        curves with `thermoscope.calibration.metrics.reliability_curve`.
    labels : array_like of int, optional
        True labels, required when ``curves`` holds arrays.
    n_bins : int, default 15
        Equal-width bins for arrays.
    from_logits : bool, default False
        Arrays hold logits.
    title : str
        Figure title.
    save : path, optional
        Also write the figure there (format from the extension, e.g. ``.png``).

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: ``axes[0]`` the reliability curves (accuracy against mean
        confidence per non-empty bin, one line per model, plus the diagonal
        of perfect calibration); ``axes[1]`` the fraction of samples per bin
        (one bar group per model, ``bar height = count / N``).

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> fig = plot_reliability({"model": probs}, [0, 1, 1, 0], n_bins=5)
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['accuracy', 'fraction of samples']
    """
    # A bare Figure (no pyplot) needs no GUI backend and touches no global state.
    from matplotlib.figure import Figure

    named = _as_curves(curves, labels, n_bins, from_logits)
    fig = Figure(figsize=(6.0, 6.5), layout="constrained")
    top, bottom = fig.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]}, squeeze=True
    )
    top.plot([0, 1], [0, 1], linestyle="--", color="0.5", linewidth=1, label="perfect calibration")
    n_models = len(named)
    for i, (name, curve) in enumerate(named.items()):
        color = _COLORS[i % len(_COLORS)]
        keep = curve.count > 0
        gap = float(
            np.sum(curve.count[keep] * np.abs(curve.accuracy[keep] - curve.confidence[keep]))
        )
        ece = gap / max(int(curve.count.sum()), 1)
        top.plot(
            curve.confidence[keep],
            curve.accuracy[keep],
            marker="o",
            color=color,
            label=f"{name} (ECE {ece:.3f})",
        )
        edges = np.asarray(curve.edges, dtype=np.float64)
        widths = np.diff(edges) / n_models
        left = edges[:-1] + i * widths
        total = max(int(curve.count.sum()), 1)
        bottom.bar(
            left,
            curve.count / total,
            width=widths,
            align="edge",
            color=color,
            alpha=0.7,
            label=name,
        )
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.set_title(title)
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.set_xlabel("confidence (max probability)")
    bottom.set_ylabel("fraction of samples")
    bottom.grid(alpha=0.3)
    if save is not None:
        fig.savefig(os.fspath(save), dpi=120)
    return fig
