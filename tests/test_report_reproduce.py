"""Every "reproduce" command of the demo report prints the numbers the report shows.

The report is built once by ``thermoscope demo --quick`` in a subprocess; each
section's command is then run on its own, in a fresh process, and the numbers
it prints are compared, in order, with the numbers of the section's text in
the page (tables, paragraphs and generated samples; figure captions left out).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")
pytest.importorskip("torch")
pytest.importorskip("transformers")

from thermoscope.demos import DEMOS

SRC = Path(__file__).resolve().parents[1] / "src"
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def run_thermoscope(args: list[str], cwd: Path) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "thermoscope", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


class Sections(HTMLParser):
    """Each section's reproduce command and the text it shows, captions left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.commands: list[str] = []
        self.texts: list[list[str]] = []
        self._stack: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "section":
            self.texts.append([])
            self.commands.append("")
        if tag in ("img", "br", "meta"):
            return
        self._stack.append(tag)
        if tag in ("figure", "h2") or "reproduce" in classes:
            self._skip += 1
            self._stack[-1] = "skip:" + tag
        if tag == "code" and "cmd" in classes and self.commands:
            self._stack[-1] = "cmd"

    def handle_endtag(self, tag: str) -> None:
        if not self._stack:
            return
        top = self._stack.pop()
        if top.startswith("skip:"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.texts or "section" not in self._stack:
            return
        if self._stack and self._stack[-1] == "cmd":
            self.commands[-1] += data
        elif self._skip == 0:
            self.texts[-1].append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Sections:
    out = tmp_path_factory.mktemp("report")
    run_thermoscope(["demo", "--quick", "--seed", "0", "--out", str(out)], out)
    page = Sections()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    page.close()
    assert len(page.commands) == len(DEMOS)
    return page


def numbers(text: str) -> list[str]:
    return NUMBER.findall(text)


@pytest.mark.parametrize("index", range(len(DEMOS)), ids=list(DEMOS))
def test_reproduce_command_prints_the_reports_numbers(
    report: Sections, index: int, tmp_path: Path
) -> None:
    command = report.commands[index]
    name = list(DEMOS)[index]
    assert command == f"thermoscope demo {name} --seed 0 --quick"
    args = shlex.split(command)
    assert args[0] == "thermoscope"
    printed = run_thermoscope([*args[1:], "--out", str(tmp_path / "out")], tmp_path)
    # Lines naming the files written hold the run's local paths, not results.
    kept = [
        line
        for line in printed.splitlines()
        if str(tmp_path) not in line and not line.startswith("figures: ")
    ]
    expected = numbers("\n".join(report.texts[index]))
    got = numbers("\n".join(kept))
    assert len(expected) > 5  # the section shows numbers at all
    assert got == expected
