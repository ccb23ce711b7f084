"""The README is real: its console blocks are re-run and compared, its Python blocks run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import numpy as np
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


PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


@pytest.mark.parametrize("code", PYTHON_BLOCK.findall(README.read_text(encoding="utf-8")))
def test_readme_python_examples_run(code: str, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    # The calibration example's placeholders: an overconfident 10-class model's logits.
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 600)
    logits = 3.0 * (rng.normal(size=(600, 10)) + 2.0 * np.eye(10)[labels])
    namespace = {
        "__name__": "readme_example",
        "val_logits": logits[:300],
        "val_labels": labels[:300],
        "test_logits": logits[300:],
        "test_labels": labels[300:],
    }
    exec(compile(code, "README.md", "exec"), namespace)
