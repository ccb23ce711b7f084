"""The local web explorer: ``thermoscope explore`` serves a page with live sliders.

- :func:`create_app` builds the FastAPI application (page, static files and
  a small JSON API); :func:`serve` runs it with uvicorn on 127.0.0.1 in the
  foreground, :class:`BackgroundServer` from a thread (notebooks, tests).
- :class:`ExplorerLimits`: the caps on request size, logits, prompt length
  and new tokens that keep the server responsive on bad input.
- :data:`EXAMPLES`: the seeds' worked examples (:class:`Example` logits),
  offered on the page.
- :func:`write_static_page` (``thermoscope explore --export page.html``): the
  page as one self-contained file that works from ``file://`` with no
  server (logits mode).

The page computes temperature, top-k, top-p and min-p in the browser with the
same arithmetic as :func:`thermoscope.sampling.summarize_sampling` (the
browser tests compare the two to 1e-6); the server is asked only for what
needs Python: a model's next-token logits, seeded draws and continuations,
which stream token by token (``POST /api/generate-stream``).

Inside the package: ``app`` (the routes), ``schemas`` (request and response
models), ``refusals`` (what is refused and how a refusal reads),
``middleware`` (host check, body cap, security headers), ``server``,
``limits``, ``examples``, ``export`` and ``backend`` (the language model).

FastAPI and uvicorn are imported when an app is built, not on
``import thermoscope.explorer``.

Examples
--------
>>> from thermoscope.explorer import EXAMPLES, ExplorerLimits
>>> ExplorerLimits().max_logits
4096
>>> EXAMPLES[0].labels
('cat', 'dog', 'fish')
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from thermoscope.explorer.examples import EXAMPLES, Example
from thermoscope.explorer.limits import ExplorerLimits

if TYPE_CHECKING:
    from thermoscope.explorer.app import create_app
    from thermoscope.explorer.export import write_static_page
    from thermoscope.explorer.server import BackgroundServer, serve

__all__ = [
    "EXAMPLES",
    "BackgroundServer",
    "Example",
    "ExplorerLimits",
    "create_app",
    "serve",
    "write_static_page",
]

_HOME = {
    "create_app": "app",
    "serve": "server",
    "BackgroundServer": "server",
    "write_static_page": "export",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'thermoscope.explorer' has no attribute {name!r}")
    return getattr(importlib.import_module(f"thermoscope.explorer.{_HOME[name]}"), name)
