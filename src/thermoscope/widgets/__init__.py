"""Jupyter widgets for the temperature knob: sliders for T, top-k, top-p and min-p.

- :func:`explore` (:mod:`~thermoscope.widgets.logits`) returns a
  :class:`TemperatureExplorer`: four ipywidgets sliders, a readout (entropy,
  nucleus mass, kept count, max probability) and a bar chart of the sampling
  distribution of one row of logits, recomputed with
  :func:`thermoscope.sampling.summarize_sampling` whenever a slider moves.
  Setting a slider from code (``w.temperature.value = 0.37``) updates
  everything the same way, so the widget is usable, and testable, without a
  browser.
- :func:`explore_prompt` (:mod:`~thermoscope.widgets.prompt`) is the model
  mode, a :class:`PromptExplorer`: a prompt box over a language model's
  next-token logits (the embedded model by default) and a button that samples
  a continuation with the sliders' setting.

ipywidgets and matplotlib are imported only when a widget is built. The chart
is a ``matplotlib.figure.Figure`` (no pyplot, no global state) shown as a PNG
in an ``ipywidgets.Image``, so it works under the Agg backend, in pytest and in
any notebook front end.

Examples
--------
>>> explore([2.0, 1.0, 0.5], top_k=1).stats["kept_count"]
1
"""

from __future__ import annotations

from thermoscope.widgets.logits import MAX_BARS, TemperatureExplorer, explore
from thermoscope.widgets.prompt import PromptExplorer, explore_prompt

__all__ = ["MAX_BARS", "PromptExplorer", "TemperatureExplorer", "explore", "explore_prompt"]
