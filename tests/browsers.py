"""Debian's Chromium for the browser tests: how it starts, what it needs, where shots go.

``launched_chromium()`` starts it headless with Playwright (never
``playwright install``); ``need(message)`` fails under ``make test``
(``THERMOSCOPE_REQUIRE_BROWSER=1``) and skips elsewhere, for anything a
browser test cannot run without: chromium itself, axe-core, node.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("THERMOSCOPE_ARTIFACTS", REPO / "test-artifacts"))
#: axe-core, installed by the Makefile from npm, for the accessibility checks.
AXE = REPO / ".venv" / "npm" / "node_modules" / "axe-core" / "axe.min.js"


def need(message: str) -> None:
    """Fail under ``make test`` (``THERMOSCOPE_REQUIRE_BROWSER=1``), else skip."""
    if os.environ.get("THERMOSCOPE_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def launched_chromium() -> Iterator[Any]:
    """Debian's chromium, headless, through Playwright; closed on exit."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = shutil.which("chromium")
    if executable is None:
        need("Debian's chromium is not installed (make test installs it with apt-get)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
