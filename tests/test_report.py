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
        self._where: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._where.append(tag)
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.urls.append(str(values[name]))
        if tag == "section":
            self.sections.append({"h2": [], "img": [], "code": [], "pre": []})
        if tag == "img" and self.sections:
            self.sections[-1]["img"].append(str(values["src"]))
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
        elif self.sections and "section" in self._where and tag in ("h2", "code", "pre"):
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
    assert ["".join(s["pre"]) for s in page.sections] == [TRICKY, "ECE 0.031"]
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
