"""The README's tour is real output: every ``$ thermoscope ...`` block is re-run and compared."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from thermoscope.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```console\n(.*?)```", re.DOTALL)


def console_examples() -> list[tuple[str, str]]:
    """(command, expected output) for each console block of the README."""
    examples = []
    for block in BLOCK.findall(README.read_text(encoding="utf-8")):
        first, _, rest = block.partition("\n")
        assert first.startswith("$ thermoscope "), first
        examples.append((first.removeprefix("$ "), rest))
    return examples


def test_readme_opens_with_the_two_commands() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    head = "\n".join(lines[:4])
    assert "make demo" in head
    assert "make test" in head


def test_readme_has_a_tour() -> None:
    commands = [cmd.split()[1] for cmd, _ in console_examples()]
    assert {"softmax", "sample", "entropy-target"} <= set(commands)


@pytest.mark.parametrize(("command", "expected"), console_examples())
def test_readme_output_is_current(
    capsys: pytest.CaptureFixture[str], command: str, expected: str
) -> None:
    assert main(shlex.split(command)[1:]) == 0
    assert capsys.readouterr().out == expected
