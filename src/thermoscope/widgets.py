"""A Jupyter widget for the temperature knob: sliders for T, top-k, top-p and min-p.

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

`explore_prompt` is the model mode: a prompt box over a language model's
next-token logits (the embedded model by default) and a button that samples a
continuation with the sliders' setting.
"""

from __future__ import annotations

import contextlib
import importlib
import io
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from thermoscope._validation import logit_row

__all__ = ["MAX_BARS", "PromptExplorer", "TemperatureExplorer", "explore", "explore_prompt"]

#: At most this many bars are drawn: larger vocabularies show their highest logits.
MAX_BARS = 60

#: Slider ranges: ``(low, high)`` of each knob (temperature 0 is greedy decoding).
TEMPERATURE_RANGE = (0.0, 5.0)
TOP_P_RANGE = (0.01, 1.0)
MIN_P_RANGE = (0.0, 1.0)

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


def _knob(value: Any, name: str, low: float, high: float, *, integer: bool = False) -> float:
    """A slider's start value: a real number (an integer for ``integer``) in ``[low, high]``."""
    what = "an integer" if integer else "a number"
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    if not number or (integer and not float(value).is_integer()):
        raise TypeError(f"`{name}` must be {what} in [{low:g}, {high:g}], got {value!r}.")
    x = float(value)
    if not low <= x <= high:  # NaN fails this too
        raise ValueError(
            f"`{name}` must be {what} in [{low:g}, {high:g}] (the slider's range), got {value!r}."
        )
    return x


def _tick_text(name: str) -> str:
    # matplotlib reads "$...$" as mathtext; a token such as "$" would fail to draw.
    return name.replace("$", r"\$")


class TemperatureExplorer:
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
        t0 = _knob(temperature, "temperature", *TEMPERATURE_RANGE)
        k0 = int(_knob(top_k, "top_k", 0, size, integer=True))
        p0 = _knob(top_p, "top_p", *TOP_P_RANGE)
        m0 = _knob(min_p, "min_p", *MIN_P_RANGE)
        if size <= MAX_BARS:
            self.shown = np.arange(size)
        else:
            self.shown = np.argsort(-self._z, kind="stable")[:MAX_BARS]

        # ipywidgets ships no type information: importing it by name keeps mypy
        # independent of whether it is installed or configured.
        ipw = importlib.import_module("ipywidgets")
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
    def probabilities(self) -> np.ndarray:
        """The current sampling distribution over all V tokens (read-only)."""
        return self._probs

    @property
    def tempered(self) -> np.ndarray:
        """``softmax(logits / T)`` at the current T, before truncation (read-only)."""
        return self._tempered

    @property
    def kept(self) -> np.ndarray:
        """Boolean mask of the tokens top-k, top-p and min-p keep (read-only)."""
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

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

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
    The sampler is ``Sampler.from_options(temperature=T, top_k=k or None,
    top_p=p if p < 1 else None, min_p=m if m > 0 else None)``: transformers'
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


class PromptExplorer:
    """A language model's next-token distribution under the sliders, and sampled continuations.

    The notebook twin of the web explorer's model mode (build it with
    `explore_prompt`): a prompt box, a button that recomputes the next-token
    logits, the `TemperatureExplorer` of those logits (labels are the decoded
    tokens) and a button that samples a continuation with the sliders' setting.

    Attributes
    ----------
    prompt : ipywidgets.Textarea
    next_button, sample_button : ipywidgets.Button
    max_new_tokens, seed : ipywidgets.BoundedIntText
    output : ipywidgets.Textarea
        The last sampled continuation (read-only).
    explorer : TemperatureExplorer
        Rebuilt by :meth:`refresh` for each new prompt; the slider values carry over.
    widget : ipywidgets.VBox

    Examples
    --------
    >>> w = explore_prompt("import os\\nimport", temperature=0.0)
    >>> w.explorer.labels[int(w.explorer.probabilities.argmax())]
    ' os'
    """

    def __init__(
        self,
        prompt: str,
        model: Any = None,
        *,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        min_p: float = 0.0,
        max_new_tokens: int = 40,
        seed: int = 0,
    ) -> None:
        from thermoscope.generation import load_model
        from thermoscope.generation.runs import MAX_NEW_TOKENS, check_max_new_tokens

        self._model, self._tokenizer = load_model(model)
        start = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "min_p": min_p}
        self.explorer = self._explorer_for(prompt, start)
        ipw = importlib.import_module("ipywidgets")
        self.prompt = ipw.Textarea(value=prompt, description="prompt", rows=3)
        self.next_button = ipw.Button(description="Next-token distribution")
        self.sample_button = ipw.Button(description="Sample a continuation")
        self.max_new_tokens = ipw.BoundedIntText(
            value=check_max_new_tokens(max_new_tokens),
            min=1,
            max=MAX_NEW_TOKENS,
            description="new tokens",
        )
        self.seed = ipw.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed")
        self.output = ipw.Textarea(value="", disabled=True, rows=6, description="sample")
        self.next_button.on_click(lambda _: self.refresh())
        self.sample_button.on_click(lambda _: self.sample())
        buttons = ipw.HBox([self.next_button, self.max_new_tokens, self.seed, self.sample_button])
        self.widget = ipw.VBox([self.prompt, buttons, self.explorer.widget, self.output])

    def _explorer_for(self, prompt: str, setting: dict[str, Any]) -> TemperatureExplorer:
        from thermoscope.generation import next_token_logits

        z = next_token_logits(self._model, self._tokenizer, prompt)
        labels = [self._tokenizer.decode([i]) or f"#{i}" for i in range(z.size)]
        return TemperatureExplorer(z, labels, **setting)

    def _setting(self) -> dict[str, Any]:
        e = self.explorer
        return {
            "temperature": float(e.temperature.value),
            "top_k": int(e.top_k.value),
            "top_p": float(e.top_p.value),
            "min_p": float(e.min_p.value),
        }

    def refresh(self) -> TemperatureExplorer:
        """Recompute the next-token distribution of the prompt box's text.

        Raises
        ------
        ValueError or TypeError
            Naming ``prompt`` when it is empty or does not fit the context.

        Examples
        --------
        >>> w = explore_prompt("import os\\nimport", top_k=3)
        >>> w.prompt.value = "def parse(self"
        >>> w.refresh().top_k.value  # new logits, the same slider values
        3
        """
        fresh = self._explorer_for(self.prompt.value, self._setting())
        children = list(self.widget.children)
        children[children.index(self.explorer.widget)] = fresh.widget
        self.widget.children = tuple(children)
        self.explorer.close()
        self.explorer = fresh
        return fresh

    def sample(self) -> str:
        """Sample one continuation of the prompt with the sliders' setting; show and return it.

        Examples
        --------
        >>> w = explore_prompt("import os\\nimport", temperature=0.0, max_new_tokens=3)
        >>> text = w.sample()
        >>> w.output.value == w.prompt.value + text
        True
        """
        from thermoscope.generation import continue_prompt

        text = continue_prompt(
            self._model,
            self._tokenizer,
            self.prompt.value,
            **self._setting(),
            max_new_tokens=int(self.max_new_tokens.value),
            seed=int(self.seed.value),
        ).text
        self.output.value = self.prompt.value + text
        return text

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"PromptExplorer(prompt={self.prompt.value!r}, {self.explorer!r})"


def explore_prompt(
    prompt: str,
    model: Any = None,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    min_p: float = 0.0,
    max_new_tokens: int = 40,
    seed: int = 0,
) -> PromptExplorer:
    """Explore a language model's next token for ``prompt`` with the temperature sliders.

    Parameters
    ----------
    prompt : str
        Non-empty text that fits the model's context.
    model : str or pathlib.Path, optional
        A local transformers causal-LM folder; default: the embedded model.
    temperature, top_k, top_p, min_p
        Start values of the sliders, as in `explore`.
    max_new_tokens : int, default 40
        Length of a sampled continuation.
    seed : int, default 0
        Seed of the sampled continuation.

    Returns
    -------
    PromptExplorer

    Examples
    --------
    >>> w = explore_prompt("import os\\nimport", top_k=2)
    >>> w.explorer.stats["kept_count"]
    2
    >>> len(w.sample()) > 0
    True
    """
    return PromptExplorer(
        prompt,
        model,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        min_p=min_p,
        max_new_tokens=max_new_tokens,
        seed=seed,
    )
