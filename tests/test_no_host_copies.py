"""No silent host copies: only boundary modules call ``.detach/.cpu/.numpy/.item()``.

Numeric functions compute on the caller's device with the caller's autograd
graph (issue 11). Moving a tensor's values to the host is allowed only where
host values are the point: files, plots, tables, the CLI, the web explorer,
notebook widgets, demos and text generation output, and ``_arrays.to_numpy``,
the one explicit conversion that host-side solvers call. The scan is
syntactic, so numpy code outside the boundary uses ``float()``, ``int()`` or
``.tolist()`` instead of ``.item()`` too: one rule, no exceptions to argue.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "thermoscope"
FORBIDDEN = {"detach", "cpu", "numpy", "item"}

#: Modules (files or folders, relative to the package) whose job is host values.
BOUNDARY = {
    "_arrays.py": "the one explicit tensor -> numpy conversion (to_numpy)",
    "cli": "command line: prints and writes files",
    "explorer": "web explorer: JSON over HTTP",
    "demos": "demos: write reports and figures",
    "models": "trains and loads the embedded model (weights to files)",
    "generation/_batch.py": "text generation: mean log-probabilities to floats",
    "generation/next_token.py": "next-token logits for tables, JSON and widgets",
    "plots.py": "matplotlib figures",
    "report.py": "the HTML report",
    "_files.py": "reading and writing files",
    "_tables.py": "text tables",
    "widgets": "notebook widgets",
}


def _is_boundary(path: Path) -> bool:
    rel = path.relative_to(PACKAGE).as_posix()
    return any(rel == b or rel.startswith(b + "/") for b in BOUNDARY)


def _host_calls(path: Path, root: Path = PACKAGE) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in FORBIDDEN
            and not node.args
        ):
            found.append(f"{path.relative_to(root)}:{node.lineno}: .{node.func.attr}()")
    return found


def test_no_host_copies_outside_boundary_modules():
    offenders = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        if not _is_boundary(path)
        for hit in _host_calls(path)
    ]
    assert offenders == [], "host copies outside the boundary modules:\n" + "\n".join(offenders)


def test_the_scan_finds_what_it_looks_for(tmp_path):
    # The scan must be able to fail: a module with the forbidden calls is reported.
    leaky = tmp_path / "leaky.py"
    leaky.write_text("def f(t):\n    return t.detach().cpu().numpy() + t.item()\n")
    hits = _host_calls(leaky, tmp_path)
    assert sorted(h.split(": ")[1] for h in hits) == [".cpu()", ".detach()", ".item()", ".numpy()"]


@pytest.mark.parametrize("entry", sorted(BOUNDARY))
def test_boundary_entries_exist(entry):
    assert (PACKAGE / entry).exists(), f"stale boundary entry {entry}"
