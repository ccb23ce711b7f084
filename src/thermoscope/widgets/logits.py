"""`TemperatureExplorer`: sliders for T, top-k, top-p and min-p over one row of logits.

`explore` returns a `TemperatureExplorer`: four ipywidgets sliders, a readout
(entropy, nucleus mass, kept count, max probability) and a bar chart of the
sampling distribution, recomputed with
:func:`thermoscope.sampling.summarize_sampling` whenever a slider moves. Setting a
slider from code (``w.temperature.value = 0.37``) updates everything the same
way, so the widget is usable, and testable, without a browser.

ipywidgets and matplotlib are imported only when a widget is built. The chart
is a ``matplotlib.figure.Figure`` (no pyplot, no global state) shown as a PNG
in an ``ipywidgets.Image``, so it works under the Agg backend, in pytest and in
any notebook front end.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from thermoscope._typing import Array
from thermoscope._validation import logit_row
from thermoscope.widgets._controls import (
    MIN_P_RANGE,
    TEMPERATURE_RANGE,
    TOP_P_RANGE,
    Displayed,
    check_knob,
    ipywidgets,
)

__all__ = ["MAX_BARS", "TemperatureExplorer", "explore"]

#: At most this many bars are drawn: larger vocabularies show their highest logits.
MAX_BARS = 60

_KEPT = "#1f77b4"
_REMOVED = "#b0b0b0"


def _labels(labels: Any, size: int) -> list[str]:
    """One name per logit (default: the indices)."""
    if labels is None:
        return [str(i) for i in range(size)]
    if isinstance(labels, (str, bytes)) or not hasattr(labels, "__len__"):
        raise TypeError(
            f"`labels` must be a sequence of {size} names (one per logit), "
            f"got {type(labels).__name__}."
        )
    names = [str(name) for name in labels]
    if len(names) != size:
        raise ValueError(
            f"`labels` must be a sequence of {size} names (one per logit), got {len(names)}."
        )
    return names


def _tick_text(name: str) -> str:
    # matplotlib reads "$...$" as mathtext; a token such as "$" would fail to draw.
    return name.replace("$", r"\$")


class TemperatureExplorer(Displayed):
    """Sliders, readout and bar chart for one row of logits (build it with `explore`).

    Parameters
    ----------
    logits : array_like, shape (V,)
        One row of scores; ``-inf`` marks a masked token.
    labels : sequence of V names, optional
        Token names for the x axis (default: the indices).
    temperature, top_k, top_p, min_p : number
        Start values of the sliders (see `explore`).

    Attributes
    ----------
    temperature : ipywidgets.FloatSlider
        0 to 5, step 0.01; 0 is greedy decoding, 1 leaves the logits as they are.
    top_k : ipywidgets.IntSlider
        0 to V; 0 switches top-k off.
    top_p : ipywidgets.FloatSlider
        0.01 to 1; 1 switches top-p off.
    min_p : ipywidgets.FloatSlider
        0 to 1; 0 switches min-p off.
    readout : ipywidgets.HTML
        Entropy (nats), nucleus mass, kept count and max probability.
    image : ipywidgets.Image
        The chart as PNG, re-rendered on every change.
    widget : ipywidgets.VBox
        Everything above, ready for ``display``.
    figure : matplotlib.figure.Figure
        The chart. ``figure.axes[0].containers[0]`` holds one bar per shown
        token with height ``probabilities[shown]`` (kept tokens coloured,
        removed ones grey with height 0); ``containers[1]`` holds, for removed
        tokens, the mass ``tempered[shown]`` truncation took away (0 for kept).
    shown : ndarray of int
        Token indices of the bars, left to right: all of them in order for
        V <= `MAX_BARS`, else the `MAX_BARS` highest logits, most likely first.
    labels : list of str
        One name per token.

    Examples
    --------
    >>> w = TemperatureExplorer([2.0, 1.0, 0.5], ["cat", "dog", "fish"], top_p=0.8)
    >>> w.kept.tolist()
    [True, True, False]
    >>> w.temperature.value = 0.5  # as if the slider moved: everything is recomputed
    >>> w.kept.tolist(), round(w.stats["nucleus_mass"], 4)
    ([True, False, False], 0.8438)
    """

    def __init__(
        self,
        logits: Any,
        labels: Sequence[Any] | None = None,
        *,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        min_p: float = 0.0,
    ) -> None:
        self._z = logit_row(logits)
        size = self._z.size
        self.labels = _labels(labels, size)
        t0 = check_knob(temperature, "temperature", *TEMPERATURE_RANGE)
        k0 = int(check_knob(top_k, "top_k", 0, size, integer=True))
        p0 = check_knob(top_p, "top_p", *TOP_P_RANGE)
        m0 = check_knob(min_p, "min_p", *MIN_P_RANGE)
        if size <= MAX_BARS:
            self.shown = np.arange(size)
        else:
            self.shown = np.argsort(-self._z, kind="stable")[:MAX_BARS]

        ipw = ipywidgets()
        look = {"style": {"description_width": "4em"}, "layout": ipw.Layout(width="24em")}

        def float_slider(value: float, limits: tuple[float, float], name: str) -> Any:
            low, high = limits
            return ipw.FloatSlider(
                value=value, min=low, max=high, step=0.01, description=name, **look
            )

        self.temperature = float_slider(t0, TEMPERATURE_RANGE, "T")
        self.top_k = ipw.IntSlider(value=k0, min=0, max=size, step=1, description="top-k", **look)
        self.top_p = float_slider(p0, TOP_P_RANGE, "top-p")
        self.min_p = float_slider(m0, MIN_P_RANGE, "min-p")
        self.readout = ipw.HTML()
        self.image = ipw.Image(format="png")
        self.figure = self._build_figure()
        controls = ipw.VBox([self.temperature, self.top_k, self.top_p, self.min_p])
        row = ipw.HBox([controls, self.readout])
        self.widget = ipw.VBox([row, self.image])
        self._parts = (
            self.temperature,
            self.top_k,
            self.top_p,
            self.min_p,
            self.readout,
            self.image,
            controls,
            row,
            self.widget,
        )
        self._holding = False
        self._update()
        # The first render ran the constrained layout; the axes never change size
        # afterwards (fixed title, ticks and limits), so keeping those positions
        # makes each later render cheaper.
        self.figure.set_layout_engine("none")
        for slider in (self.temperature, self.top_k, self.top_p, self.min_p):
            slider.observe(self._update, names="value")

    # -- drawing ---------------------------------------------------------------

    def _build_figure(self) -> Any:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        n, size = self.shown.size, self._z.size
        fig = Figure(
            figsize=(min(12.0, max(6.0, 0.22 * n + 2.5)), 4.0), dpi=96, layout="constrained"
        )
        FigureCanvasAgg(fig)  # attaches itself as fig.canvas
        ax = fig.subplots()
        x = np.arange(n, dtype=np.float64)
        zeros = np.zeros(n)
        ax.bar(x, zeros, width=0.8, color=_KEPT, label="sampling probability (kept)")
        ax.bar(x, zeros, width=0.8, color=_REMOVED, label="removed: its mass in softmax(z / T)")
        names = [_tick_text(self.labels[i]) for i in self.shown]
        if n > 12:
            ax.set_xticks(x, names, rotation=90, fontsize=7)
        else:
            ax.set_xticks(x, names)
        ax.set_xlim(-0.6, n - 0.4)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("token")
        ax.set_ylabel("probability")
        ax.grid(axis="y", alpha=0.3)
        if size > MAX_BARS:
            title = (
                f"Sampling distribution: the {n} highest-logit of {size} tokens, most likely first"
            )
        else:
            title = f"Sampling distribution over {size} tokens"
        ax.set_title(title)
        ax.legend(loc="upper right", fontsize=8)
        return fig

    def _render(self) -> None:
        buffer = io.BytesIO()
        # The Agg canvas draws once; savefig would draw twice while a layout
        # engine (even the frozen placeholder) is set.
        self.figure.canvas.print_png(buffer)
        self.image.value = buffer.getvalue()

    def _update(self, change: Any = None) -> None:
        """Recompute the distribution from the sliders and redraw (an ipywidgets observer)."""
        from thermoscope.sampling import summarize_sampling

        if self._holding:
            return
        s = summarize_sampling(
            self._z,
            temperature=float(self.temperature.value),
            top_k=int(self.top_k.value),
            top_p=float(self.top_p.value),
            min_p=float(self.min_p.value),
        )
        probs, kept, tempered = s.probabilities, s.kept, s.tempered
        for arr in (probs, kept, tempered):
            arr.flags.writeable = False
        self._probs, self._kept, self._tempered = probs, kept, tempered
        self._stats = {
            "entropy": s.entropy,
            "nucleus_mass": s.nucleus_mass,
            "kept_count": s.kept_count,
            "max_probability": s.max_probability,
        }
        self._redraw()

    def _redraw(self) -> None:
        kept_bars, removed_bars = self.figure.axes[0].containers
        for kept_bar, removed_bar, i in zip(kept_bars, removed_bars, self.shown, strict=True):
            on = bool(self._kept[i])
            kept_bar.set_height(self._probs[i])
            kept_bar.set_facecolor(_KEPT if on else _REMOVED)
            removed_bar.set_height(0.0 if on else self._tempered[i])
        s = self._stats
        self.readout.value = (
            "<div style='font-family: monospace; line-height: 1.6; padding-left: 1.5em'>"
            f"entropy: {s['entropy']:.4f} nats<br>"
            f"nucleus mass: {s['nucleus_mass']:.4f}<br>"
            f"kept: {s['kept_count']} of {self._z.size} tokens<br>"
            f"max probability: {s['max_probability']:.4f}"
            "</div>"
        )
        self._render()

    # -- results ---------------------------------------------------------------

    @property
    def probabilities(self) -> Array:
        """The current sampling distribution over all V tokens (read-only).

        Examples
        --------
        >>> explore([2.0, 1.0], top_k=1).probabilities.tolist()
        [1.0, 0.0]
        """
        return self._probs

    @property
    def tempered(self) -> Array:
        """``softmax(logits / T)`` at the current T, before truncation (read-only).

        Examples
        --------
        >>> explore([1.0, 1.0], top_k=1).tempered.tolist()
        [0.5, 0.5]
        """
        return self._tempered

    @property
    def kept(self) -> Array:
        """Boolean mask of the tokens top-k, top-p and min-p keep (read-only).

        Examples
        --------
        >>> explore([2.0, 1.0], min_p=0.5).kept.tolist()
        [True, False]
        """
        return self._kept

    @property
    def stats(self) -> dict[str, float]:
        """Summary of the current distribution, as the readout shows it.

        ``entropy``: of the sampling distribution, in nats. ``nucleus_mass``:
        the kept tokens' total probability under ``softmax(z / T)`` before
        truncation. ``kept_count``: number of kept tokens. ``max_probability``:
        the largest sampling probability.

        Examples
        --------
        >>> w = explore([2.0, 1.0, 0.5], top_k=1)
        >>> w.stats["kept_count"], w.stats["entropy"], round(w.stats["nucleus_mass"], 4)
        (1, 0.0, 0.6285)
        """
        return dict(self._stats)

    @contextlib.contextmanager
    def hold(self) -> Iterator[TemperatureExplorer]:
        """Set several sliders, then recompute and redraw once, on leaving the block.

        Examples
        --------
        >>> w = explore([2.0, 1.0, 0.5])
        >>> with w.hold():
        ...     w.top_k.value = 1
        ...     w.temperature.value = 2.0
        ...     w.kept.tolist()  # not recomputed yet
        [True, True, True]
        >>> w.kept.tolist()
        [True, False, False]
        """
        if self._holding:  # nested: the outermost block recomputes
            yield self
            return
        self._holding = True
        try:
            yield self
        finally:
            self._holding = False
            self._update()

    # -- display ---------------------------------------------------------------

    def close(self) -> None:
        """Close the widgets (they stop syncing with the front end).

        Examples
        --------
        >>> w = explore([1.0, 0.0])
        >>> w.close()
        """
        for slider in (self.temperature, self.top_k, self.top_p, self.min_p):
            slider.unobserve(self._update, names="value")
        for part in self._parts:
            part.close()

    def __repr__(self) -> str:
        return (
            f"TemperatureExplorer(V={self._z.size}, temperature={self.temperature.value:g}, "
            f"top_k={self.top_k.value}, top_p={self.top_p.value:g}, min_p={self.min_p.value:g})"
        )


def explore(
    logits: Any,
    labels: Sequence[Any] | None = None,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    min_p: float = 0.0,
) -> TemperatureExplorer:
    """An interactive view of ``Sampler.from_options(...).probs(logits)``.

    Parameters
    ----------
    logits : array_like, shape (V,)
        One row of scores (numpy, list or torch); ``-inf`` marks a masked
        token. NaN, +inf, all ``-inf``, empty and 2-D input are a ValueError.
    labels : sequence of V names, optional
        Token names for the x axis (default: the indices). A wrong length is
        a ValueError, a string or a non-sequence a TypeError.
    temperature : float in [0, 5], default 1.0
        Start value of the T slider; 0 is greedy decoding.
    top_k : int in [0, V], default 0
        Start value of the top-k slider; 0 is off.
    top_p : float in [0.01, 1], default 1.0
        Start value of the top-p slider; 1 is off.
    min_p : float in [0, 1], default 0.0
        Start value of the min-p slider; 0 is off.

    Returns
    -------
    TemperatureExplorer
        Displays itself in a notebook. Its sliders are ipywidgets: setting
        ``.value`` from code recomputes ``probabilities``, ``tempered``,
        ``kept``, ``stats``, the readout and the chart, exactly as dragging
        does. Values set from code outside a slider's range are clamped to
        it (ipywidgets' rule).

    Notes
    -----
    The sampler is ``Sampler.from_options(temperature=T, top_k=k, top_p=p,
    min_p=m)``, whose neutral values (0, 1, 0) switch a step off: transformers'
    order, temperature first. Vocabularies larger than `MAX_BARS` show their
    `MAX_BARS` highest logits (ties broken by index), most likely first; the
    numbers (``probabilities``, ``stats``) always cover all V tokens.

    Examples
    --------
    >>> w = explore([2.0, 1.0, 0.5], labels=["cat", "dog", "fish"], top_k=2)
    >>> w.probabilities.round(4).tolist()
    [0.7311, 0.2689, 0.0]
    >>> w.temperature.value = 0.0  # greedy
    >>> w.probabilities.tolist(), w.stats["entropy"]
    ([1.0, 0.0, 0.0], 0.0)
    """
    return TemperatureExplorer(
        logits, labels, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p
    )
