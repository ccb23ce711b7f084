"""The demo report: one self-contained HTML page, figures embedded, nothing fetched.

`build_report` turns a list of `ReportSection` (title, text, PNG paths and the
command that reproduces the section) into ``out_dir/report.html``. Every image
is inlined as a ``data:image/png;base64`` URI and the CSS is inline, so the
page opens offline and can be mailed as a single file.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from thermoscope._files import write_text_atomic

__all__ = ["ReportSection", "build_report", "render_report"]

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; line-height: 1.45; }
nav ol { columns: 2; }
section { border-top: 1px solid #ccc; margin-top: 2rem; padding-top: 1rem; }
pre { background: #f6f6f6; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
code.cmd { background: #eef; padding: 0.2rem 0.4rem; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.85rem; color: #555; }
"""


@dataclass(frozen=True)
class ReportSection:
    """One section of the report.

    Parameters
    ----------
    title : str
        Heading.
    text : str
        Plain text (tables included); shown verbatim in a ``<pre>``, escaped.
    figures : tuple of Path
        PNG files to embed, in order.
    command : str
        The shell command that reproduces the section.

    Examples
    --------
    >>> ReportSection("Theory", "H = ln K", (), "thermoscope demo").command
    'thermoscope demo'
    """

    title: str
    text: str
    figures: tuple[Path, ...] = field(default_factory=tuple)
    command: str = ""


def _slug(i: int) -> str:
    return f"section-{i + 1}"


def _figure_html(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(
            f"`figures` must be readable PNG files, got {str(path)!r}: {exc}"
        ) from None
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError(f"`figures` must be PNG files, got {str(path)!r} (no PNG signature).")
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    name = html.escape(path.name)
    return f'<figure><img src="{uri}" alt="{name}"><figcaption>{name}</figcaption></figure>'


def render_report(sections: Sequence[ReportSection], *, title: str = "thermoscope report") -> str:
    """The report page as an HTML string (see `build_report`).

    Examples
    --------
    >>> page = render_report([ReportSection("A <b>", "x < y", (), "thermoscope demo")])
    >>> "<h2>A &lt;b&gt;</h2>" in page and "<pre>x &lt; y</pre>" in page
    True
    """
    if isinstance(sections, ReportSection) or not all(
        isinstance(s, ReportSection) for s in sections
    ):
        raise TypeError(f"`sections` must be a sequence of ReportSection, got {sections!r}.")
    head = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
    )
    toc = "".join(
        f'<li><a href="#{_slug(i)}">{html.escape(s.title)}</a></li>' for i, s in enumerate(sections)
    )
    parts = [head, f"<nav><ol>{toc}</ol></nav>\n"]
    for i, s in enumerate(sections):
        parts.append(f'<section id="{_slug(i)}">\n<h2>{html.escape(s.title)}</h2>\n')
        if s.command:
            parts.append(f'<p>Reproduce: <code class="cmd">{html.escape(s.command)}</code></p>\n')
        parts.extend(_figure_html(Path(f)) + "\n" for f in s.figures)
        parts.append(f"<pre>{html.escape(s.text)}</pre>\n</section>\n")
    parts.append(
        '<footer><p>Move the knobs yourself: <code class="cmd">thermoscope explore</code> '
        "serves live temperature, top-k, top-p and min-p sliders on 127.0.0.1, port 8765; "
        "in Jupyter, <code>thermoscope.widgets.explore(logits)</code> and "
        "<code>explore_prompt(prompt)</code> do the same.</p></footer>\n"
    )
    parts.append("</body>\n</html>\n")
    return "".join(parts)


def build_report(
    sections: Sequence[ReportSection],
    out_dir: str | os.PathLike[str],
    *,
    title: str = "thermoscope report",
) -> Path:
    """Write ``out_dir/report.html``: one self-contained page, a section per entry.

    Each section shows its title, the command that reproduces it, its figures
    (PNG bytes inlined as base64 ``data:`` URIs) and its text in a ``<pre>``
    (HTML-escaped). The page loads no external resource (inline CSS, no
    scripts). The file is written atomically.

    Parameters
    ----------
    sections : sequence of ReportSection
    out_dir : path
        Folder for ``report.html``; created if missing.
    title : str
        Page title and top heading.

    Returns
    -------
    pathlib.Path
        The written ``report.html``.

    Examples
    --------
    >>> import tempfile
    >>> out = build_report([ReportSection("Theory", "H <= ln K")], tempfile.mkdtemp())
    >>> out.name, "H &lt;= ln K" in out.read_text(encoding="utf-8")
    ('report.html', True)
    """
    page = render_report(sections, title=title)
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"`out_dir` must be a folder, got the file {str(folder)!r}.")
    folder.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(folder / "report.html", page)
