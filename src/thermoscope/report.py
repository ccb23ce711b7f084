"""The demo report: one self-contained HTML document, figures embedded, nothing fetched.

`build_report` turns a list of `ReportSection` (title, text, PNG paths and the
command that reproduces the section) into ``out_dir/report.html``. Every image
is inlined as a ``data:image/png;base64`` URI and the CSS is inline, so the
page opens offline and can be mailed as a single file.

A demo's text is the plain text it prints on the terminal; the report reads
it as a document (`text_blocks`): ``== Title ==`` lines become headings, the
aligned tables of `thermoscope._tables.format_table` become HTML tables,
indented blocks (generated code) stay preformatted but wrap, other lines
become paragraphs, and the lines that only name the files a run wrote are
left out (they are local paths of one machine). A figure's PNG may carry
text chunks (see `thermoscope.plots.figure_png`): its title and caption are
printed under it, its hover regions become boxes with a tooltip, and its
rank orders the figures of a section.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from thermoscope._files import write_text_atomic

__all__ = ["Block", "ReportSection", "build_report", "render_report", "text_blocks"]

_CSS = """
html { -webkit-text-size-adjust: 100%; }
body { font-family: system-ui, sans-serif; max-width: 56rem; margin: 0 auto;
       padding: 1rem; color: #1d1d1d; line-height: 1.55; overflow-wrap: break-word; }
h1 { font-size: 1.7rem; margin: 1rem 0 0.5rem; }
h2 { font-size: 1.35rem; margin: 0 0 0.6rem; }
h3 { font-size: 1.05rem; margin: 1.6rem 0 0.4rem; }
nav ol { columns: 2 14rem; padding-left: 1.4rem; }
section { border-top: 1px solid #ccc; margin-top: 2rem; padding-top: 1.2rem; }
p.lead { font-size: 1.03rem; }
pre { background: #f6f6f6; padding: 0.6rem 0.8rem; font-size: 0.8rem;
      white-space: pre-wrap; overflow-wrap: anywhere; max-height: 24rem; overflow-y: auto; }
.table { overflow-x: auto; margin: 0.8rem 0; }
table { border-collapse: collapse; font-size: 0.88rem; font-variant-numeric: tabular-nums; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #e2e2e2; text-align: left;
         vertical-align: top; }
th { border-bottom: 2px solid #999; }
td.num, th.num { text-align: right; white-space: nowrap; }
code { font-size: 0.9em; }
code.cmd { background: #eef1fb; padding: 0.15rem 0.35rem; overflow-wrap: anywhere; }
p.reproduce { background: #f4f6fb; border-left: 3px solid #6b7fc9; padding: 0.4rem 0.7rem; }
.figs { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 24rem), 1fr));
        gap: 0 1.2rem; align-items: start; }
figure { margin: 1.2rem 0; }
figure.wide { grid-column: 1 / -1; }
.plot { position: relative; display: inline-block; max-width: 100%; }
.plot img { display: block; max-width: 100%; height: auto; border: 1px solid #ddd; }
.plot span { position: absolute; cursor: help; }
.plot span:hover { background: rgba(30, 60, 160, 0.12); }
figcaption { font-size: 0.9rem; color: #444; margin-top: 0.3rem; }
@media (max-width: 40rem) { body { padding: 0.6rem; } table { font-size: 0.78rem; }
  th, td { padding: 0.2rem 0.35rem; } }
"""

#: Lines that only report where a run wrote its files: local paths, not content.
_FILE_LINE = re.compile(
    r"^(wrote |written: |written to |report: |figures: |reliability diagrams written to )"
)
_HEADING = re.compile(r"^==\s*(.*?)\s*=*\s*$")
_RULE = re.compile(r"^-+(?: +-+)*$")
_NUMBER = re.compile(r"^[-+]?(\d[\d,]*\.?\d*|\.\d+|inf|nan)(e[-+]?\d+)?%?( ± .*)?$", re.I)


@dataclass(frozen=True)
class ReportSection:
    """One section of the report.

    Parameters
    ----------
    title : str
        Heading.
    text : str
        The demo's plain text; read as headings, tables, paragraphs and
        preformatted blocks (`text_blocks`) and escaped.
    figures : tuple of Path
        PNG files to embed (ordered by their rank chunk, else as given).
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


@dataclass(frozen=True)
class Block:
    """One piece of a demo's text: a heading, a paragraph, a table or a preformatted block.

    Examples
    --------
    >>> Block("paragraph", ("Hello.",)).kind
    'paragraph'
    """

    kind: str  # "heading", "paragraph", "table" or "pre"
    lines: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...] = ()


def _spans(rule: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"-+", rule)]


def _fits(line: str, spans: list[tuple[int, int]]) -> bool:
    """A table row leaves the gaps between the columns blank."""
    for (_, end), (start, _) in itertools.pairwise(spans):
        if line[end:start].strip():
            return False
    return bool(line.strip())


def _cells(line: str, spans: list[tuple[int, int]]) -> tuple[str, ...]:
    starts = [a for a, _ in spans]
    bounds = [*starts[1:], max(len(line), spans[-1][1])]
    return tuple(line[a:b].strip() for a, b in zip(starts, bounds, strict=True))


def text_blocks(text: str) -> list[Block]:
    """Split a demo's plain text into headings, tables, preformatted blocks and paragraphs.

    Examples
    --------
    >>> blocks = text_blocks("== 1. Limits ==\\nT  p\\n-  ---\\n0  1.0\\n\\nwrote /tmp/x.png")
    >>> [(b.kind, b.rows or b.lines) for b in blocks]
    [('heading', ('1. Limits',)), ('table', (('T', 'p'), ('0', '1.0')))]
    """
    lines = [ln.rstrip() for ln in text.splitlines() if not _FILE_LINE.match(ln)]
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        heading = _HEADING.match(line)
        if heading:
            blocks.append(Block("heading", (heading.group(1),)))
            i += 1
            continue
        if i + 1 < len(lines) and _RULE.match(lines[i + 1]) and line.strip():
            spans = _spans(lines[i + 1])
            rows = [_cells(line, spans)]
            i += 2
            while i < len(lines) and _fits(lines[i], spans):
                rows.append(_cells(lines[i], spans))
                i += 1
            blocks.append(Block("table", (), tuple(rows)))
            continue
        chunk = []
        while (
            i < len(lines)
            and lines[i].strip()
            and not _HEADING.match(lines[i])
            and not (i + 1 < len(lines) and _RULE.match(lines[i + 1]))
        ):
            chunk.append(lines[i])
            i += 1
        if not chunk:  # a line right above a rule that is not a table header
            chunk.append(lines[i])
            i += 1
        # Indented lines are generated code or aligned output: keep them as they are.
        indented = any(ln.startswith((" ", "\t")) for ln in chunk)
        if indented and blocks and blocks[-1].kind == "pre":
            # Generated text can hold blank lines: one preformatted block, not many.
            blocks[-1] = Block("pre", (*blocks[-1].lines, "", *chunk))
            continue
        blocks.append(Block("pre" if indented else "paragraph", tuple(chunk)))
    return blocks


_LABEL = re.compile(r"^(What you see|Why it matters|Why|Try it|Try|In short|Takeaway):")


def _line_html(line: str) -> str:
    label = _LABEL.match(line)
    if label is None:
        return html.escape(line)
    rest = line[len(label.group(0)) :]
    return f"<strong>{html.escape(label.group(1))}:</strong>{html.escape(rest)}"


def _paragraph_html(lines: Sequence[str], css: str = "") -> str:
    # Each line of a demo's text is a sentence or a statement of its own: keep the breaks.
    body = "<br>".join(_line_html(line) for line in lines)
    cls = f' class="{css}"' if css else ""
    return f"<p{cls}>{body}</p>\n"


def _table_html(rows: Sequence[Sequence[str]]) -> str:
    header, body = rows[0], rows[1:]
    numeric = [
        bool(body) and all(not r[j] or _NUMBER.match(r[j]) for r in body)
        for j in range(len(header))
    ]

    def cell(tag: str, value: str, j: int) -> str:
        cls = ' class="num"' if numeric[j] else ""
        return f"<{tag}{cls}>{html.escape(value)}</{tag}>"

    head = "".join(cell("th", h, j) for j, h in enumerate(header))
    trs = "".join(
        "<tr>" + "".join(cell("td", v, j) for j, v in enumerate(r)) + "</tr>\n" for r in body
    )
    return (
        f'<div class="table"><table>\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{trs}</tbody></table></div>\n"
    )


def _block_html(block: Block, *, lead: bool) -> str:
    if block.kind == "heading":
        return f"<h3>{html.escape(block.lines[0])}</h3>\n"
    if block.kind == "table":
        return _table_html(block.rows)
    if block.kind == "pre":
        return f"<pre>{html.escape(chr(10).join(block.lines))}</pre>\n"
    return _paragraph_html(block.lines, "lead" if lead else "")


def _png_chunks(data: bytes) -> dict[str, str]:
    """The PNG's tEXt and uncompressed iTXt chunks (what `thermoscope.plots.figure_png` writes)."""
    out: dict[str, str] = {}
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IDAT":  # text chunks written by matplotlib come before the pixels
            break
        try:
            if kind == b"tEXt":
                key, value = body.split(b"\0", 1)
                out[key.decode("latin-1")] = value.decode("latin-1")
            elif kind == b"iTXt" and body.split(b"\0", 1)[1][:1] == b"\0":
                key, rest = body.split(b"\0", 1)
                _, _, value = rest[2:].split(b"\0", 2)
                out[key.decode("latin-1")] = value.decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            pass  # a malformed text chunk is no caption: show the image without it
        pos += 12 + length
    return out


def _read_png(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(
            f"`figures` must be readable PNG files, got {str(path)!r}: {exc}"
        ) from None
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError(f"`figures` must be PNG files, got {str(path)!r} (no PNG signature).")
    return data


def _rank(chunks: dict[str, str]) -> int:
    try:
        return int(chunks.get("thermoscope:rank", "0"))
    except ValueError:
        return 0


def _figure_html(data: bytes, chunks: dict[str, str], name: str) -> str:
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    title, caption = chunks.get("Title", ""), chunks.get("Description", "")
    alt = html.escape(" ".join(x for x in (title, caption) if x) or name, quote=True)
    spans = []
    try:
        regions = json.loads(chunks.get("thermoscope:regions", "[]"))
    except ValueError:
        regions = []
    for region in regions:
        try:
            left, top, width, height = (100.0 * float(v) for v in region[:4])
            tip = html.escape(str(region[4]), quote=True)
        except (TypeError, ValueError, IndexError):
            continue
        spans.append(
            f'<span style="left:{left:.3f}%;top:{top:.3f}%;width:{width:.3f}%;'
            f'height:{height:.3f}%" title="{tip}"></span>'
        )
    words = []
    if title:
        words.append(f"<strong>{html.escape(title)}</strong>")
    if caption:
        words.append(html.escape(caption))
    if spans:
        words.append("(Hover over the bars for the counts.)")
    figcaption = " ".join(words) or html.escape(name)
    # A landscape figure (wider than 4:3) takes the whole row of the figure grid.
    width, height = struct.unpack(">II", data[16:24]) if len(data) >= 24 else (0, 0)
    wide = ' class="wide"' if width * 3 > height * 4 else ""
    return (
        f'<figure{wide}><div class="plot"><img src="{uri}" alt="{alt}">{"".join(spans)}</div>'
        f"<figcaption>{figcaption}</figcaption></figure>\n"
    )


def _load_figures(paths: Sequence[Path]) -> list[tuple[bytes, dict[str, str], str]]:
    loaded = []
    for path in paths:
        data = _read_png(Path(path))
        loaded.append((data, _png_chunks(data), Path(path).name))
    loaded.sort(key=lambda item: _rank(item[1]))  # stable: equal ranks keep the given order
    return loaded


def _section_body(text: str, figures: Sequence[Path]) -> list[str]:
    """Blocks in order; figures after the lead, or at the end of the part they name."""
    blocks = text_blocks(text)
    loaded = _load_figures(figures)
    headings = [b.lines[0] for b in blocks if b.kind == "heading"]

    def home(chunks: dict[str, str]) -> str:
        place = chunks.get("thermoscope:place", "")
        return next((h for h in headings if place and h.startswith(place)), "")

    placed: dict[str, list[str]] = {}
    for data, chunks, name in loaded:
        placed.setdefault(home(chunks), []).append(_figure_html(data, chunks, name))

    def grid(key: str) -> list[str]:
        group = placed.pop(key, [])
        # Consecutive figures share a grid: side by side on a wide screen, stacked on a phone.
        return [f'<div class="figs">\n{"".join(group)}</div>\n'] if group else []

    # The opening paragraphs introduce the figures; tables and details follow them.
    n_lead = next((k for k, b in enumerate(blocks) if b.kind != "paragraph"), len(blocks))
    out = [_block_html(b, lead=True) for b in blocks[:n_lead]]
    out.extend(grid(""))
    current = ""
    for b in blocks[n_lead:]:
        if b.kind == "heading":
            out.extend(grid(current))
            current = b.lines[0]
        out.append(_block_html(b, lead=False))
    out.extend(grid(current))
    for key in list(placed):  # unreachable in practice: every key is a heading seen
        out.extend(grid(key))
    return out


def render_report(
    sections: Sequence[ReportSection], *, title: str = "thermoscope report", intro: str = ""
) -> str:
    """The report page as an HTML string (see `build_report`).

    Examples
    --------
    >>> page = render_report([ReportSection("A <b>", "x < y", (), "thermoscope demo")])
    >>> "<h2>A &lt;b&gt;</h2>" in page and "<p class=\\"lead\\">x &lt; y</p>" in page
    True
    """
    if isinstance(sections, ReportSection) or not all(
        isinstance(s, ReportSection) for s in sections
    ):
        raise TypeError(f"`sections` must be a sequence of ReportSection, got {sections!r}.")
    head = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
    )
    intro = intro or (
        "Temperature is the T in softmax(z / T): below 1 it sharpens a distribution towards "
        "its top choice, above 1 it flattens it towards uniform. Each section below is one "
        "place where that knob matters, computed live by thermoscope: what you see, why it "
        "happens, and the command that reproduces every number on the page."
    )
    toc = "".join(
        f'<li><a href="#{_slug(i)}">{html.escape(s.title)}</a></li>' for i, s in enumerate(sections)
    )
    parts = [head, f"<p>{html.escape(intro)}</p>\n", f"<nav><ol>{toc}</ol></nav>\n"]
    for i, s in enumerate(sections):
        parts.append(f'<section id="{_slug(i)}">\n<h2>{html.escape(s.title)}</h2>\n')
        parts.extend(_section_body(s.text, s.figures))
        if s.command:
            parts.append(
                '<p class="reproduce">Reproduce every number of this section: '
                f'<code class="cmd">{html.escape(s.command)}</code></p>\n'
            )
        parts.append("</section>\n")
    parts.append(
        '<footer><p>Move the knobs yourself: <code class="cmd">thermoscope explore</code> '
        "serves live temperature, top-k, top-p and min-p sliders on 127.0.0.1, port 8765; "
        "in Jupyter, <code>thermoscope.widgets.explore(logits)</code> and "
        "<code>explore_prompt(prompt)</code> do the same.</p></footer>\n"
    )
    parts.append("</body>\n</html>\n")
    return "".join(parts)


def _slug(i: int) -> str:
    return f"section-{i + 1}"


def build_report(
    sections: Sequence[ReportSection],
    out_dir: str | os.PathLike[str],
    *,
    title: str = "thermoscope report",
) -> Path:
    """Write ``out_dir/report.html``: one self-contained document, a section per entry.

    Each section shows its title, its text read as a document (`text_blocks`:
    paragraphs, headings, HTML tables; file-location lines left out), its
    figures (PNG bytes inlined as base64 ``data:`` URIs, with the caption and
    hover boxes their PNG text chunks carry) and the command that reproduces
    it. The page loads no external resource (inline CSS, no scripts), has a
    viewport tag and a layout that reads on a phone. The file is written
    atomically.

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
