"""Pictures of temperature (matplotlib, imported only when a plot is drawn).

Each function computes its data with thermoscope's own tools, draws it on a
new figure (the Agg backend works; no window is ever opened) and returns the
``matplotlib.figure.Figure``; ``save=PATH`` also writes it to a file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from thermoscope._typing import FloatArray
from thermoscope._validation import check_integer, check_temperature, logit_row
from thermoscope.core import entropy, free_energy, softmax

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "figure_png",
    "figure_regions",
    "plot_distributions",
    "plot_entropy_vs_temperature",
    "plot_free_energy",
    "plot_reliability",
    "plot_sampling_vs_theory",
    "save_figure",
]

_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _as_curves(curves: Any, labels: Any, n_bins: int, from_logits: bool) -> dict[str, Any]:
    """Name -> ReliabilityCurve for a curve, an array, or a sequence / mapping of them."""
    from thermoscope.calibration import ReliabilityCurve, reliability_curve

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
            out[str(name)] = item.as_numpy()
            continue
        if labels is None:
            raise ValueError(
                "`labels` must be given when `curves` holds probability arrays, got None."
            )
        curve = reliability_curve(item, labels, n_bins=n_bins, from_logits=from_logits)
        out[str(name)] = curve.as_numpy()  # tensor input gives tensor curves; plots need host
    return out


def plot_reliability(
    curves: Any,
    labels: Any = None,
    *,
    n_bins: int = 15,
    from_logits: bool = False,
    min_count: int = 10,
    title: str = "Reliability diagram",
    save: str | os.PathLike[str] | None = None,
) -> Figure:
    """Reliability diagram with the confidence histogram under it; overlay several models.

    A bin holding a handful of samples says little: its accuracy swings
    between 0 and 1 from one sample to the next. Bins with fewer than
    ``min_count`` samples are drawn as grey, unconnected points (and grey
    bars), so the line only runs through bins that can be trusted. Every
    histogram bar carries a hover text (bin, sample count, accuracy) that
    `figure_regions` reads back for the HTML report.

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
    min_count : int, default 10
        Bins with fewer samples (but at least one) are greyed and left out of
        the line; ``1`` connects every non-empty bin.
    title : str
        Figure title.
    save : path, optional
        Also write the figure there (format from the extension, e.g. ``.png``).

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: ``axes[0]`` the reliability curves (accuracy against mean
        confidence per bin with at least ``min_count`` samples, one line per
        model, plus the diagonal of perfect calibration; sparse bins as grey
        points); ``axes[1]`` the confidence density: the fraction of samples
        per bin (one bar group per model, ``bar height = count / N``).

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> fig = plot_reliability({"model": probs}, [0, 1, 1, 0], n_bins=5, min_count=1)
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['accuracy', 'fraction of samples']
    """
    # A bare Figure (no pyplot) needs no GUI backend and touches no global state.
    from matplotlib.figure import Figure

    min_count = int(check_integer(min_count, "min_count", minimum=1))
    named = _as_curves(curves, labels, n_bins, from_logits)
    fig = Figure(figsize=(6.0, 6.5), layout="constrained")
    top, bottom = fig.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]}, squeeze=True
    )
    top.plot([0, 1], [0, 1], linestyle="--", color="0.5", linewidth=1, label="perfect calibration")
    n_models = len(named)
    sparse_shown = False
    for i, (name, curve) in enumerate(named.items()):
        color = _COLORS[i % len(_COLORS)]
        count = np.asarray(curve.count)
        keep = count >= min_count
        sparse = (count > 0) & ~keep
        total = max(int(count.sum()), 1)
        nonempty = count > 0
        gap = float(
            np.sum(count[nonempty] * np.abs(curve.accuracy[nonempty] - curve.confidence[nonempty]))
        )
        top.plot(
            curve.confidence[keep],
            curve.accuracy[keep],
            marker="o",
            color=color,
            label=f"{name} (ECE {gap / total:.3f})",
        )
        if sparse.any():
            top.plot(
                curve.confidence[sparse],
                curve.accuracy[sparse],
                linestyle="none",
                marker="o",
                markerfacecolor="none",
                color=_SPARSE,
                label=f"bins with < {min_count} samples" if not sparse_shown else "_nolegend_",
            )
            sparse_shown = True
        edges = np.asarray(curve.edges, dtype=np.float64)
        widths = np.diff(edges) / n_models
        left = edges[:-1] + i * widths
        bars = bottom.bar(
            left,
            count / total,
            width=widths,
            align="edge",
            color=[color if k else _SPARSE for k in keep],
            alpha=0.7,
            label=name,
        )
        for k, bar in enumerate(bars):
            acc = "" if count[k] == 0 else f", accuracy {float(curve.accuracy[k]):.3f}"
            bar.set_gid(
                f"{_TIP}{name}: confidence {edges[k]:.2f}-{edges[k + 1]:.2f}, "
                f"{int(count[k])} samples{acc}"
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
    return _finish(fig, save)


#: Prefix of an artist's gid that holds its hover text (see `figure_regions`).
_TIP = "tip:"
#: Colour of bins too sparse to trust.
_SPARSE = "#b0b0b0"


def figure_regions(fig: Figure) -> list[tuple[float, float, float, float, str]]:
    """Hover regions of a figure: ``(left, top, width, height, text)`` as fractions of its size.

    Plots mark an artist as hoverable by giving it a gid ``"tip:<text>"``
    (`plot_reliability` does it for each histogram bar). A region spans the
    artist's horizontal extent and the full height of its axes, so a bar of
    one sample is as easy to hover as a tall one. The origin is the top-left
    corner, as in HTML; the report turns each region into a hover box.

    Examples
    --------
    >>> import numpy as np
    >>> fig = plot_reliability({"m": np.array([[0.9, 0.1], [0.4, 0.6]])}, [0, 1], n_bins=2)
    >>> regions = figure_regions(fig)
    >>> len(regions), regions[0][4]
    (2, 'm: confidence 0.00-0.50, 0 samples')
    >>> all(0 <= r[0] and r[0] + r[2] <= 1 for r in regions)
    True
    """
    fig.draw_without_rendering()  # runs the layout, so positions are final
    width, height = float(fig.bbox.width), float(fig.bbox.height)
    out = []
    for artist in fig.findobj():
        gid = artist.get_gid()
        axes = getattr(artist, "axes", None)
        if not (isinstance(gid, str) and gid.startswith(_TIP)) or axes is None:
            continue
        box = artist.get_window_extent()
        frame = axes.bbox
        out.append(
            (
                float(box.x0) / width,
                1.0 - float(frame.y1) / height,
                max(float(box.x1 - box.x0), 0.0) / width,
                float(frame.y1 - frame.y0) / height,
                gid[len(_TIP) :],
            )
        )
    return out


def figure_png(
    fig: Figure, *, caption: str = "", rank: int = 0, place: str = "", dpi: int = 120
) -> bytes:
    """The figure as PNG bytes that carry what the HTML report needs to show it.

    The PNG holds text chunks: ``Title`` (the figure's or first axes' title),
    ``Description`` (``caption``, the sentence the report prints under the
    figure), ``thermoscope:regions`` (JSON of `figure_regions`, the hover
    boxes) and, when ``rank`` is not 0, ``thermoscope:rank``: the report
    shows a section's figures by increasing rank (stable), whatever their
    file names, so "before" can come before "after"; when ``place`` is set,
    ``thermoscope:place``: the report puts the figure at the end of the
    part of the text whose ``== heading`` starts with it.

    Examples
    --------
    >>> fig = plot_distributions([1.0, 0.0], temperatures=(1.0,))
    >>> figure_png(fig, caption="Two tokens.")[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    import io
    import json

    metadata = {"Title": _figure_title(fig), "Description": caption}
    regions = figure_regions(fig)
    if regions:
        metadata["thermoscope:regions"] = json.dumps(
            [[round(v, 5) for v in r[:4]] + [r[4]] for r in regions]
        )
    if rank:
        metadata["thermoscope:rank"] = str(int(rank))
    if place:
        metadata["thermoscope:place"] = place
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata=metadata)
    return buf.getvalue()


def save_figure(
    fig: Figure,
    path: str | os.PathLike[str],
    *,
    caption: str = "",
    rank: int = 0,
    place: str = "",
) -> Path:
    """Write `figure_png` bytes to ``path`` atomically; return the path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "d.png"
    >>> save_figure(plot_distributions([1.0, 0.0]), out, caption="c").read_bytes()[:4]
    b'\\x89PNG'
    """
    from thermoscope._files import write_bytes_atomic

    data = figure_png(fig, caption=caption, rank=rank, place=place)
    return write_bytes_atomic(Path(path), data)


def _figure_title(fig: Figure) -> str:
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and suptitle.get_text():
        return str(suptitle.get_text())
    for ax in fig.axes:
        if ax.get_title():
            return str(ax.get_title())
    return ""


def _tick_labels(labels: Sequence[Any] | None, k: int) -> list[str]:
    if labels is None:
        return [str(i) for i in range(k)]
    if isinstance(labels, str) or len(labels) != k:
        raise ValueError(
            f"`labels` must be a sequence of {k} names (one per logit), got {labels!r}."
        )
    return [str(label) for label in labels]


def _temperature_grid(temperatures: Any, default: tuple[float, float]) -> FloatArray:
    """Sorted positive finite temperatures (a log axis cannot show 0 or inf)."""
    if temperatures is None:
        return np.geomspace(default[0], default[1], 121)
    t = check_temperature(temperatures, "temperatures")
    if t.ndim != 1:
        raise ValueError(f"`temperatures` must be a 1-D sequence, got shape {t.shape}.")
    bad = t[(t <= 0) | ~np.isfinite(t)]
    if bad.size:
        raise ValueError(
            f"`temperatures` must be finite and > 0 (a log axis), got {float(bad[0])!r}."
        )
    return np.sort(t)


def _finish(fig: Figure, save: str | os.PathLike[str] | None) -> Figure:
    if save is not None:
        import io

        from thermoscope._files import write_bytes_atomic

        # Rendered in memory, then written atomically: an interrupted save
        # never leaves half an image. No suffix means PNG, as savefig does.
        path = Path(os.fspath(save))
        if not path.suffix:
            path = path.with_name(path.name + ".png")
        if path.suffix.lower() == ".png":
            write_bytes_atomic(path, figure_png(fig))
        else:
            buf = io.BytesIO()
            fig.savefig(buf, format=path.suffix[1:].lower(), dpi=120)
            write_bytes_atomic(path, buf.getvalue())
    return fig


def plot_distributions(
    logits: Any,
    *,
    temperatures: Sequence[float] = (0.1, 0.5, 1, 2, 5),
    labels: Sequence[Any] | None = None,
    title: str = "softmax(z / T) at several temperatures",
    save: str | os.PathLike[str] | None = None,
) -> Figure:
    """Grouped bars: the softmax of one row of logits at each temperature.

    Parameters
    ----------
    logits : array_like, shape (K,)
        One row of scores; ``-inf`` marks a masked token.
    temperatures : sequence of float, default (0.1, 0.5, 1, 2, 5)
        ``T >= 0`` each (0 is the greedy limit, ``inf`` the uniform one).
    labels : sequence, optional
        A name per token for the x axis (default: the indices).
    title : str
        Figure title.
    save : path, optional
        Also write the figure there.

    Returns
    -------
    matplotlib.figure.Figure
        One axis with one bar container per temperature, in the order given,
        labelled ``T = <t>``; bar ``i`` of a container has height
        ``softmax(logits, t)[i]``.

    Examples
    --------
    >>> fig = plot_distributions([2.0, 1.0, 0.0], temperatures=(0.5, 2.0), labels=["a", "b", "c"])
    >>> [c.get_label() for c in fig.axes[0].containers]
    ['T = 0.5', 'T = 2']
    """
    from matplotlib.figure import Figure

    z = logit_row(logits)
    names = _tick_labels(labels, z.size)
    temps = check_temperature(temperatures, "temperatures")
    if temps.ndim != 1:
        raise ValueError(f"`temperatures` must be a 1-D sequence, got shape {temps.shape}.")
    fig = Figure(figsize=(max(6.0, 0.9 * z.size + 2.0), 4.0), layout="constrained")
    ax = fig.subplots()
    x = np.arange(z.size, dtype=np.float64)
    width = 0.8 / temps.size
    for j, t in enumerate(temps):
        p = np.asarray(softmax(z, float(t)))
        ax.bar(
            x - 0.4 + (j + 0.5) * width,
            p,
            width=width,
            color=_COLORS[j % len(_COLORS)],
            label=f"T = {float(t):g}",
        )
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1)
    ax.set_xlabel("token")
    ax.set_ylabel("probability")
    ax.set_title(title)
    ax.legend(loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    return _finish(fig, save)


def plot_entropy_vs_temperature(
    logits: Any,
    *,
    temperatures: Any = None,
    title: str = "Entropy and max probability against temperature",
    save: str | os.PathLike[str] | None = None,
) -> Figure:
    """Entropy (nats) and the largest probability of ``softmax(z / T)`` on a log T axis.

    Entropy rises from 0 (one winner) towards ``ln K`` (uniform over the K
    finite logits); the max probability falls from 1 towards ``1 / K``.

    Parameters
    ----------
    logits : array_like, shape (K,)
    temperatures : array_like, optional
        Positive finite temperatures (default 121 points from 0.01 to 100).
    title : str
    save : path, optional

    Returns
    -------
    matplotlib.figure.Figure
        Two panels sharing a log x axis: ``axes[0]`` the entropy line and a
        dashed horizontal line at ``ln K``; ``axes[1]`` the max probability
        and a dotted line at ``1 / K``.

    Examples
    --------
    >>> fig = plot_entropy_vs_temperature([1.0, 0.0], temperatures=[0.5, 1.0, 2.0])
    >>> fig.axes[1].get_xscale(), fig.axes[0].get_ylabel(), fig.axes[1].get_ylabel()
    ('log', 'entropy (nats)', 'max probability')
    """
    from matplotlib.figure import Figure

    z = logit_row(logits)
    t = _temperature_grid(temperatures, (0.01, 100.0))
    p = np.asarray(softmax(np.broadcast_to(z, (t.size, z.size)), t))
    h = np.asarray(entropy(p))
    top = p.max(axis=1)
    k = int(np.isfinite(z).sum())
    # Two panels, not two y axes on one: a twin axis put the ln K line on the
    # max-probability plateau, where the eye reads them as one curve.
    fig = Figure(figsize=(6.5, 5.0), layout="constrained")
    ax, low = fig.subplots(2, 1, sharex=True, squeeze=True)
    (h_line,) = ax.plot(t, h, color=_COLORS[1], label="entropy H")
    ln_k = ax.axhline(
        np.log(k),
        color="0.4",
        linestyle="--",
        linewidth=1,
        label=f"ln K = ln {k} = {np.log(k):.3f}",
    )
    low.plot(t, top, color=_COLORS[0], label="max probability")
    low.axhline(1.0 / k, color="0.4", linestyle=":", linewidth=1, label=f"1 / K = {1.0 / k:.3f}")
    ax.set_xscale("log")
    low.set_xlabel("temperature T (log scale)")
    ax.set_ylim(0, max(np.log(k), 1e-3) * 1.15)
    ax.set_ylabel("entropy (nats)")
    low.set_ylabel("max probability")
    low.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend(handles=[h_line, ln_k], loc="upper left")
    low.legend(loc="upper right")
    ax.grid(alpha=0.3)
    low.grid(alpha=0.3)
    return _finish(fig, save)


def plot_sampling_vs_theory(
    sampler: Any,
    logits: Any,
    *,
    n: int = 10_000,
    seed: int = 0,
    labels: Sequence[Any] | None = None,
    title: str = "Sampled frequencies against theory",
    save: str | os.PathLike[str] | None = None,
) -> Figure:
    """Empirical frequencies of ``n`` draws beside the sampler's probabilities.

    The title carries the verdict of `thermoscope.sampling.goodness_of_fit`:
    Pearson's chi-square p-value over the tokens the sampler keeps (a small
    p-value, say below 0.001, means the draws do not follow the
    distribution), or the number of draws of removed tokens.

    Parameters
    ----------
    sampler : thermoscope.sampling.Sampler
        Any object with ``probs(logits)`` and ``sample(logits, n=, seed=)``.
    logits : array_like, shape (K,)
    n : int, default 10000
        Number of draws, >= 1.
    seed : int, default 0
        Seed for the draws.
    labels : sequence, optional
        Token names for the x axis.
    title : str
    save : path, optional

    Returns
    -------
    matplotlib.figure.Figure
        One axis with two bar containers: ``theory`` (``sampler.probs``) and
        ``sampled`` (``count / n``); the title ends with ``chi-square p = ...``
        (or says that a single possible token leaves nothing to test).

    Examples
    --------
    >>> from thermoscope.sampling import Sampler
    >>> s = Sampler.from_options(temperature=1.0, top_k=2)
    >>> fig = plot_sampling_vs_theory(s, [2.0, 1.0, 0.0], n=200, seed=0)
    >>> [c.get_label() for c in fig.axes[0].containers]
    ['theory', 'sampled']
    >>> float(fig.axes[0].containers[0][2].get_height())
    0.0
    """
    from matplotlib.figure import Figure

    from thermoscope.sampling import goodness_of_fit

    z = logit_row(logits)
    names = _tick_labels(labels, z.size)
    probs = np.asarray(sampler.probs(z), dtype=np.float64)
    draws = np.asarray(sampler.sample(z, n=n, seed=seed)).ravel()
    count = np.bincount(draws, minlength=z.size)
    total = int(count.sum())
    freq = count / total
    verdict = goodness_of_fit(count, probs).describe()
    fig = Figure(figsize=(max(6.0, 0.9 * z.size + 2.0), 4.0), layout="constrained")
    ax = fig.subplots()
    x = np.arange(z.size, dtype=np.float64)
    ax.bar(x - 0.2, probs, width=0.4, color=_COLORS[1], label="theory")
    ax.bar(x + 0.2, freq, width=0.4, color=_COLORS[4], alpha=0.8, label="sampled")
    ax.set_xticks(x, names)
    ax.set_xlabel("token")
    ax.set_ylabel("probability / frequency")
    ax.set_title(f"{title}\n{total} draws, seed {seed}: {verdict}")
    ax.legend(loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    return _finish(fig, save)


def plot_free_energy(
    logits: Any,
    *,
    temperatures: Any = None,
    title: str = "Energy, entropy and free energy of softmax(z / T)",
    save: str | os.PathLike[str] | None = None,
) -> Figure:
    """Mean energy E, entropy S and free energy F = E - T S at the softmax, against T.

    With energies ``E_i = -z_i`` and ``p = softmax(z, T)``: ``E = -sum p z``,
    ``S = -sum p ln p`` and ``F = E - T S = -T ln sum exp(z / T)``, the minimum
    of the free energy over all distributions.

    Parameters
    ----------
    logits : array_like, shape (K,)
    temperatures : array_like, optional
        Positive finite temperatures (default 121 points from 0.05 to 20).
    title : str
    save : path, optional

    Returns
    -------
    matplotlib.figure.Figure
        Three panels sharing a log x axis, one line each, labelled
        ``E``..., ``S``... and ``F``..., in that order (each on its own
        scale: F falls like ``-T ln K`` and would flatten the other two).

    Examples
    --------
    >>> fig = plot_free_energy([1.0, 0.0], temperatures=[0.5, 1.0])
    >>> [ax.get_lines()[0].get_label().split()[0] for ax in fig.axes]
    ['E', 'S', 'F']
    """
    from matplotlib.figure import Figure

    z = logit_row(logits)
    t = _temperature_grid(temperatures, (0.05, 20.0))
    zz = np.broadcast_to(z, (t.size, z.size))
    p = np.asarray(softmax(zz, t))
    # 0 * (-inf) is 0: a masked token is never occupied.
    e = -np.sum(p * np.where(p > 0, zz, 0.0), axis=1)
    s = np.asarray(entropy(p))
    f = np.asarray(free_energy(p, zz, t))
    # One panel each: F falls like -T ln K and would flatten E and S on a shared axis.
    fig = Figure(figsize=(6.5, 6.5), layout="constrained")
    axes = fig.subplots(3, 1, sharex=True, squeeze=True)
    series = (
        (e, _COLORS[0], "E = -sum p z (mean energy)", "E (energy units)"),
        (s, _COLORS[2], "S (entropy, nats)", "S (nats)"),
        (f, _COLORS[1], "F = E - T S (free energy)", "F (energy units)"),
    )
    for ax, (values, color, label, ylabel) in zip(axes, series, strict=True):
        ax.plot(t, values, color=color, linewidth=2, label=label)
        ax.set_ylabel(ylabel)
        ax.legend(loc="best")
        ax.grid(alpha=0.3)
    axes[0].set_xscale("log")
    axes[-1].set_xlabel("temperature T (log scale)")
    axes[0].set_title(title)
    return _finish(fig, save)
