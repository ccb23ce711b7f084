"""The local web explorer: ``thermoscope explore`` serves a page with live sliders.

- :func:`create_app` builds the FastAPI application (page, static files and
  a small JSON API); :func:`serve` runs it with uvicorn on 127.0.0.1 in the
  foreground, :class:`BackgroundServer` from a thread (notebooks, tests).
- :class:`ExplorerLimits`: the caps on request size, logits, prompt length
  and new tokens that keep the server responsive on bad input.
- :data:`PRESETS`: the seeds' worked examples, offered on the page.

The page computes temperature, top-k, top-p and min-p in the browser with the
same arithmetic as :func:`thermoscope.sampling.summarize_sampling` (the
browser tests compare the two to 1e-6); the server is asked only for what
needs Python: a model's next-token logits and sampled continuations.

FastAPI and uvicorn are imported when an app is built, not on
``import thermoscope.explorer``.

Examples
--------
>>> from thermoscope.explorer import ExplorerLimits, PRESETS
>>> ExplorerLimits().max_logits
4096
>>> PRESETS[0].labels
('cat', 'dog', 'fish')
"""

from __future__ import annotations

import importlib
from typing import Any

from thermoscope.explorer.limits import ExplorerLimits
from thermoscope.explorer.presets import PRESETS, Preset

__all__ = ["PRESETS", "BackgroundServer", "ExplorerLimits", "Preset", "create_app", "serve"]

_HOME = {"create_app": "app", "serve": "server", "BackgroundServer": "server"}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'thermoscope.explorer' has no attribute {name!r}")
    return getattr(importlib.import_module(f"thermoscope.explorer.{_HOME[name]}"), name)
