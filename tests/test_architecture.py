"""The public surface: ``thermoscope/__init__.py`` resolves every name lazily and stays in step.

The layers and the absence of import cycles are checked by import-linter
(``lint-imports`` in ``make lint``, contracts in ``pyproject.toml``).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import thermoscope

INIT = Path(thermoscope.__file__)


def _type_checking_names() -> dict[str, str]:
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                for alias in imp.names:
                    names[alias.name] = str(imp.module)
    return names


def test_all_lists_each_home_once():
    assert len(thermoscope.__all__) == len(set(thermoscope.__all__))
    assert set(thermoscope.__all__) == {*thermoscope._HOMES, "__version__"}


def test_type_checking_imports_match_the_homes():
    assert _type_checking_names() == thermoscope._HOMES


@pytest.mark.parametrize("name", sorted(thermoscope._HOMES))
def test_every_public_name_resolves_to_its_home(name):
    home = importlib.import_module(thermoscope._HOMES[name])
    assert getattr(thermoscope, name) is getattr(home, name)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = thermoscope.no_such_name  # type: ignore[attr-defined]


def test_version_comes_from_the_package_metadata():
    from importlib.metadata import version

    assert thermoscope.__version__ == version("thermoscope")


def test_import_loads_no_engine_until_a_name_is_used():
    code = (
        "import sys, thermoscope; "
        "print(sorted(m for m in ('thermoscope.core', 'thermoscope.sampling', "
        "'thermoscope.calibration', 'scipy', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
