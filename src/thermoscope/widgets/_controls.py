"""What the two widgets share: the slider ranges, start-value checks and notebook display.

Examples
--------
>>> check_knob(0.5, "temperature", *TEMPERATURE_RANGE)
0.5
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

__all__ = [
    "MIN_P_RANGE",
    "TEMPERATURE_RANGE",
    "TOP_P_RANGE",
    "Displayed",
    "check_knob",
    "ipywidgets",
]

#: Slider ranges: ``(low, high)`` of each knob (temperature 0 is greedy decoding).
TEMPERATURE_RANGE = (0.0, 5.0)
TOP_P_RANGE = (0.01, 1.0)
MIN_P_RANGE = (0.0, 1.0)


def ipywidgets() -> Any:
    """The ipywidgets module, imported on first use.

    ipywidgets ships no type information: importing it by name keeps mypy
    independent of whether it is installed or configured.
    """
    return importlib.import_module("ipywidgets")


def check_knob(value: Any, name: str, low: float, high: float, *, integer: bool = False) -> float:
    """A slider's start value: a real number (an integer for ``integer``) in ``[low, high]``.

    Examples
    --------
    >>> check_knob(7, "top_k", 0, 3, integer=True)
    Traceback (most recent call last):
    ...
    ValueError: `top_k` must be an integer in [0, 3] (the slider's range), got 7.
    """
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


class Displayed:
    """Shows ``self.widget`` (an ipywidgets box) in a notebook, however the front end asks."""

    widget: Any

    def _ipython_display_(self) -> None:
        from IPython import display as ipython_display

        # IPython's display helpers are untyped: one Any handle keeps mypy strict.
        show: Any = ipython_display.display
        show(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
