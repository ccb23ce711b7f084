"""The demo report page: parsed with html.parser, images decoded, text escaped, nothing remote."""

from __future__ import annotations

import base64
import re
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from thermoscope.report import ReportSection, build_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_png(gray: int = 128) -> bytes:
    """A valid 1x1 grayscale PNG, built by hand (no imaging library involved)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(bytes([0, gray]))
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


class Page(HTMLParser):
    """Collects the page's structure: title, sections, images, code, pre text, tags seen."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.tags: list[str] = []
        self.sections: list[dict[str, list[str]]] = []
        self.urls: list[str] = []
        self.meta: dict[str, str] = {}
        self.tables: list[list[list[str]]] = []
        self.cell_class: list[str | None] = []
        self.tips: list[tuple[str, str]] = []
        self.order: list[list[str]] = []
        self._where: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._where.append(tag)
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.urls.append(str(values[name]))
        if tag == "meta" and values.get("name"):
            self.meta[str(values["name"])] = str(values.get("content"))
        if tag == "section":
            self.sections.append(
                {"h2": [], "img": [], "code": [], "pre": [], "h3": [], "p": [], "figcaption": []}
            )
            self.order.append([])
        if tag == "span" and values.get("title") and self.sections:
            self.tips.append((str(values["title"]), str(values.get("style"))))
        if tag == "table":
            self.tables.append([])
        if tag == "tr":
            self.tables[-1].append([])
        if tag in ("td", "th"):
            self.tables[-1][-1].append("")
            self.cell_class.append(values.get("class"))
        if (
            self.sections
            and "section" in self._where
            and tag in ("h3", "table", "figure", "pre", "p")
        ):
            self.order[-1].append(tag)
        if tag == "img" and self.sections:
            self.sections[-1]["img"].append(str(values["src"]))
        if tag in ("img", "br", "meta"):
            self._where.pop()  # a void element has no end tag

    def handle_endtag(self, tag: str) -> None:
        if self._where and self._where[-1] == tag:
            self._where.pop()

    def handle_data(self, data: str) -> None:
        if not self._where:
            return
        tag = self._where[-1]
        if tag == "title":
            self.title += data
        if tag in ("td", "th"):
            self.tables[-1][-1][-1] += data
        if "figcaption" in self._where and self.sections:
            self.sections[-1]["figcaption"].append(data)
        elif self.sections and "section" in self._where and "p" in self._where:
            self.sections[-1]["p"].append(data)
        if self.sections and "section" in self._where and tag in ("h2", "h3", "code", "pre"):
            self.sections[-1][tag].append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


TRICKY = 'a < b & "c" > d\n<script>alert(1)</script>\n  indented  line'


def two_sections(tmp_path: Path) -> tuple[list[ReportSection], list[bytes]]:
    pngs = [tiny_png(10), tiny_png(200)]
    paths = []
    for i, data in enumerate(pngs):
        path = tmp_path / f"fig{i}.png"
        path.write_bytes(data)
        paths.append(path)
    sections = [
        ReportSection("Theory & sampling", TRICKY, (paths[0], paths[1]), "thermoscope demo"),
        ReportSection(
            "Calibration", "ECE 0.031", (paths[1],), "thermoscope demo calibration --seed 2"
        ),
    ]
    return sections, pngs


def test_report_structure_images_and_text(tmp_path: Path) -> None:
    sections, pngs = two_sections(tmp_path)
    out = build_report(sections, tmp_path / "out", title="My <report>")
    assert out == tmp_path / "out" / "report.html"
    page = parse(out)
    assert page.title == "My <report>"
    assert [s["h2"] for s in page.sections] == [["Theory & sampling"], ["Calibration"]]
    assert [s["code"] for s in page.sections] == [
        ["thermoscope demo"],
        ["thermoscope demo calibration --seed 2"],
    ]
    assert ["".join(s["pre"]) for s in page.sections] == [TRICKY, ""]
    assert "".join(page.sections[1]["p"]).startswith("ECE 0.031")
    assert page.meta["viewport"] == "width=device-width, initial-scale=1"
    decoded = []
    for section in page.sections:
        got = []
        for src in section["img"]:
            prefix = "data:image/png;base64,"
            assert src.startswith(prefix)
            got.append(base64.b64decode(src[len(prefix) :], validate=True))
        decoded.append(got)
    assert decoded == [[pngs[0], pngs[1]], [pngs[1]]]


def test_report_is_self_contained_and_escapes_text(tmp_path: Path) -> None:
    sections, _ = two_sections(tmp_path)
    raw = build_report(sections, tmp_path).read_text(encoding="utf-8")
    page = parse(tmp_path / "report.html")
    assert "script" not in page.tags
    assert "link" not in page.tags
    assert "iframe" not in page.tags
    assert "<script>" not in raw
    assert "&lt;script&gt;" in raw
    # Base64 can spell "http" by chance: look for remote references outside the images.
    assert "http" not in re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", raw).lower()
    assert all(u.startswith(("data:image/png;base64,", "#section-")) for u in page.urls)


def test_report_nav_links_reach_each_section(tmp_path: Path) -> None:
    sections, _ = two_sections(tmp_path)
    raw = build_report(sections, tmp_path).read_text(encoding="utf-8")
    page = parse(tmp_path / "report.html")
    anchors = [u for u in page.urls if u.startswith("#")]
    assert anchors == ["#section-1", "#section-2"]
    for a in anchors:
        assert f'id="{a[1:]}"' in raw


def test_report_overwrites_an_existing_page(tmp_path: Path) -> None:
    (tmp_path / "report.html").write_text("old")
    build_report([ReportSection("Only", "new text")], tmp_path)
    page = parse(tmp_path / "report.html")
    assert [s["h2"] for s in page.sections] == [["Only"]]
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_report_rejects_a_file_as_folder(tmp_path: Path) -> None:
    target = tmp_path / "x"
    target.write_text("keep")
    with pytest.raises(ValueError, match="`out_dir` must be a folder"):
        build_report([ReportSection("A", "b")], target)
    assert target.read_text() == "keep"


def test_report_rejects_missing_and_non_png_figures(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="`figures` must be readable PNG files"):
        build_report([ReportSection("A", "b", (tmp_path / "nope.png",))], tmp_path)
    fake = tmp_path / "fake.png"
    fake.write_text("not a png")
    with pytest.raises(ValueError, match="`figures` must be PNG files"):
        build_report([ReportSection("A", "b", (fake,))], tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_report_rejects_a_bare_section(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="`sections` must be a sequence of ReportSection"):
        build_report(ReportSection("A", "b"), tmp_path)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`sections` must be a sequence of ReportSection"):
        build_report(["text"], tmp_path)  # type: ignore[list-item]


def test_report_ends_by_pointing_to_the_interactive_explorers(tmp_path: Path) -> None:
    sections, _ = two_sections(tmp_path)
    raw = build_report(sections, tmp_path).read_text(encoding="utf-8")
    footer = raw[raw.index("<footer>") : raw.index("</footer>")]
    assert raw.index("</section>") < raw.index("<footer>")
    for name in ("thermoscope explore", "thermoscope.widgets.explore", "explore_prompt"):
        assert name in footer


# --- the text read as a document ------------------------------------------------------------

DEMO_TEXT = """What you see: six words.
Why it matters: the knob.

== 1. The knob: softmax(z / T) ==============================
Each row is one temperature.
T       day   space  long header here
---  ------  ------  ----------------
0    1.0000  0.0000  yes
inf  0.1667  0.1667  no, off by 0.11
T = 0 is greedy.

== 2. Samples ===============================================
T = 0.2
  [1] 60 tokens
      def f(x):

          return x
wrote /tmp/run-42/theory.txt
figures: a.png, b.png
"""


def test_tables_become_html_tables_with_the_same_cells(tmp_path: Path) -> None:
    from thermoscope._tables import format_table

    rows = [["day", 0.512, "a b"], ["space", 0.03114, "c"], ["(top mass)", 1.0, ""]]
    text = "intro\n" + format_table(["token", "p", "note here"], rows) + "\nafter the table"
    build_report([ReportSection("T", text)], tmp_path)
    page = parse(tmp_path / "report.html")
    (table,) = page.tables
    # The cells are format_table's, cut at its dashed rule: the text, stripped.
    assert table == [
        ["token", "p", "note here"],
        ["day", "0.5120", "a b"],
        ["space", "0.0311", "c"],
        ["(top mass)", "1.0000", ""],
    ]
    assert page.cell_class[:3] == [None, "num", None]  # numbers right-aligned
    assert "after the table" in "".join(page.sections[0]["p"])


def test_text_reads_as_headings_paragraphs_tables_and_code(tmp_path: Path) -> None:
    raw = build_report([ReportSection("Theory", DEMO_TEXT, (), "thermoscope demo")], tmp_path)
    page = parse(raw)
    (section,) = page.sections
    assert section["h3"] == ["1. The knob: softmax(z / T)", "2. Samples"]
    assert [row[0] for row in page.tables[0]] == ["T", "0", "inf"]
    assert page.tables[0][2][3] == "no, off by 0.11"
    # Generated code stays preformatted, blank lines included, as one block.
    assert "".join(section["pre"]) == (
        "T = 0.2\n  [1] 60 tokens\n      def f(x):\n\n          return x"
    )
    # The last paragraph is the reproduce line.
    assert page.order[0] == ["p", "h3", "p", "table", "p", "h3", "pre", "p"]
    html_text = raw.read_text(encoding="utf-8")
    # Local paths of the run are not content.
    assert "/tmp/run-42" not in html_text
    assert "figures: a.png" not in html_text
    assert "<strong>What you see:</strong> six words." in html_text
    assert html_text.count("<pre>") == 1
    assert html_text.index("<pre>") > html_text.index("2. Samples")


def test_a_text_line_above_a_lone_rule_is_kept() -> None:
    from thermoscope.report import text_blocks

    blocks = text_blocks("x\n-----\n\nend")
    assert [(b.kind, b.rows or b.lines) for b in blocks] == [
        ("table", (("x",),)),
        ("paragraph", ("end",)),
    ]


def png_with_chunks(tmp_path: Path, name: str, **chunks: str) -> Path:
    """A 1x1 PNG with tEXt chunks, built by hand (what figure_png writes, independently)."""
    data = tiny_png()
    iend = data.index(b"IEND") - 4
    extra = b""
    for key, value in chunks.items():
        body = b"tEXt" + key.replace("_", ":").encode("latin-1") + b"\0" + value.encode("latin-1")
        extra += struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    # Text chunks may sit anywhere before IEND; matplotlib puts them before IDAT.
    idat = data.index(b"IDAT") - 4
    path = tmp_path / name
    path.write_bytes(data[:idat] + extra + data[idat:iend] + data[iend:])
    return path


def test_figures_show_their_caption_hover_boxes_rank_and_place(tmp_path: Path) -> None:
    regions = '[[0.1, 0.2, 0.05, 0.5, "bin 0.90-1.00: 412 samples"]]'
    after = png_with_chunks(tmp_path, "a_after.png", Title="After", thermoscope_rank="2")
    before = png_with_chunks(
        tmp_path,
        "b_before.png",
        Title="Before",
        Description="Claims 86%, right 63%.",
        thermoscope_rank="1",
        thermoscope_regions=regions,
    )
    placed = png_with_chunks(tmp_path, "c.png", Title="Samples fig", thermoscope_place="2.")
    plain = tiny_png(7)
    (tmp_path / "plain.png").write_bytes(plain)
    section = ReportSection(
        "S", DEMO_TEXT, (after, before, placed, tmp_path / "plain.png"), "thermoscope demo"
    )
    raw = build_report([section], tmp_path / "out").read_text(encoding="utf-8")
    page = parse(tmp_path / "out" / "report.html")
    caption = "".join(page.sections[0]["figcaption"])
    assert caption.index("Before") < caption.index("After")  # rank, not file name
    assert "Claims 86%, right 63%." in caption
    assert "Hover over the bars" in caption
    assert page.tips == [
        ("bin 0.90-1.00: 412 samples", "left:10.000%;top:20.000%;width:5.000%;height:50.000%")
    ]
    # Unplaced figures follow the opening paragraphs; a placed one ends the part it names.
    order = page.order[0]
    assert order[:6] == ["p", "figure", "figure", "figure", "h3", "p"]
    assert order[-4:] == ["h3", "pre", "figure", "p"]
    assert raw.index("Samples fig") > raw.index("2. Samples")
    assert 'alt="plain.png"' in raw  # no title chunk: the file name


def test_bad_text_chunks_do_not_break_the_page(tmp_path: Path) -> None:
    bad = png_with_chunks(
        tmp_path, "x.png", thermoscope_regions="not json", thermoscope_rank="high"
    )
    odd = png_with_chunks(tmp_path, "y.png", thermoscope_regions='[[1, 2], "x", [0, 0, 1, 1]]')
    build_report([ReportSection("S", "text", (bad, odd))], tmp_path)
    page = parse(tmp_path / "report.html")
    assert page.tips == []
    assert len(page.sections[0]["img"]) == 2


def test_real_figures_carry_their_hover_counts_into_the_page(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import numpy as np

    from thermoscope.plots import plot_reliability, save_figure

    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1.0, 300)
    probs = np.c_[conf, 1 - conf]
    y = (rng.random(300) > conf).astype(int)
    path = save_figure(plot_reliability({"m": probs}, y, n_bins=5), tmp_path / "r.png", caption="c")
    build_report([ReportSection("S", "text", (path,))], tmp_path)
    page = parse(tmp_path / "report.html")
    counts = [int(t.split(", ")[1].split()[0]) for t, _ in page.tips]
    idx = np.minimum((conf * 5).astype(int), 4)
    assert counts == np.bincount(idx, minlength=5).tolist()


def sized_png(width: int, height: int) -> bytes:
    """A valid grayscale PNG of the given size, built by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\0" + bytes(width) for _ in range(height)))
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def test_landscape_figures_take_the_whole_row(tmp_path: Path) -> None:
    paths = []
    for name, size in (("wide.png", (90, 30)), ("square.png", (40, 40)), ("tall.png", (30, 60))):
        path = tmp_path / name
        path.write_bytes(sized_png(*size))
        paths.append(path)
    raw = build_report([ReportSection("S", "t", tuple(paths))], tmp_path).read_text("utf-8")
    classes = re.findall(r"<figure( class=\"wide\")?>", raw)
    assert classes == [' class="wide"', "", ""]
    assert raw.count('<div class="figs">') == 1  # consecutive figures share one grid
