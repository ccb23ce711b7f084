"""The explorer as one self-contained HTML file: the logits mode with no server.

The page already computes every number in the browser (``static/sampling.js``);
:func:`static_page` inlines the stylesheet and the scripts into
``index.html`` and hands the page what ``GET /api/info`` would have said
(``window.THERMOSCOPE_STATIC``), so the file works opened from ``file://``.
Model mode needs a language model, so the saved page disables it and says so.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

from thermoscope import __version__
from thermoscope.explorer.examples import EXAMPLES
from thermoscope.explorer.limits import ExplorerLimits

__all__ = ["static_page", "write_static_page"]

_STATIC = Path(__file__).with_name("static")
_SCRIPT = re.compile(r'[ \t]*<script src="/static/([\w.-]+\.js)" defer></script>\n?')
_STYLE = re.compile(r'<link rel="stylesheet" href="/static/([\w.-]+\.css)">')


def _inline_script(text: str) -> str:
    # "</script" inside a script would end the element early.
    return "<script>\n" + text.replace("</script", "<\\/script") + "\n</script>\n"


def static_page(limits: ExplorerLimits | None = None) -> str:
    """The explorer page with its CSS and JavaScript inlined, for use without a server.

    Parameters
    ----------
    limits : ExplorerLimits, optional
        The caps the page applies (its ``max_logits``); default ``ExplorerLimits()``.

    Returns
    -------
    str
        One HTML document; it loads nothing from the network.

    Examples
    --------
    >>> page = static_page()
    >>> "window.THERMOSCOPE_STATIC" in page and 'src="/static/' not in page
    True
    """
    html = (_STATIC / "index.html").read_text(encoding="utf-8")
    scripts = _SCRIPT.findall(html)
    html = _SCRIPT.sub("", html)
    html = _STYLE.sub(
        lambda m: "<style>\n" + (_STATIC / m.group(1)).read_text(encoding="utf-8") + "</style>",
        html,
    )
    info = {
        "version": __version__,
        "model": None,
        "limits": asdict(limits or ExplorerLimits()),
        "examples": [asdict(e) for e in EXAMPLES],
    }
    # "<" escaped, so no string in the data can close the script element.
    data = json.dumps(info).replace("<", "\\u003c")
    # Inline scripts run as they are parsed: at the end of the body, after the
    # elements they look up (the server's page defers them instead).
    body = _inline_script(f"window.THERMOSCOPE_STATIC = {data};")
    body += "".join(
        _inline_script((_STATIC / name).read_text(encoding="utf-8")) for name in scripts
    )
    head, sep, tail = html.rpartition("</body>")
    if not sep:
        raise ValueError("`index.html` must have a </body> tag.")
    return head + body + sep + tail


def write_static_page(path: str | Path, limits: ExplorerLimits | None = None) -> Path:
    """Write :func:`static_page` to ``path`` (UTF-8) and return the path.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     out = write_static_page(Path(d) / "page.html")
    ...     out.read_text(encoding="utf-8").startswith("<!doctype html>")
    True
    """
    out = Path(path)
    out.write_text(static_page(limits), encoding="utf-8")
    return out
