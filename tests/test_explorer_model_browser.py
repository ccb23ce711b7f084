"""The explorer's model mode in a real browser (Debian's Chromium, driven by Playwright).

The continuation streams in token by token; each token shows its step's
distribution. What the page shows is compared with the server's stream, the
CLI command the page prints (run in a shell) and the Sampler's seeded draws.
Screenshots land in ``test-artifacts/`` (or ``$THERMOSCOPE_ARTIFACTS``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from browsers import ARTIFACTS, AXE, launched_chromium, need
from thermoscope.explorer import BackgroundServer, ExplorerLimits, create_app
from thermoscope.explorer.backend import ModelBackend
from thermoscope.sampling import Sampler, summarize_sampling

pytest.importorskip("playwright.sync_api")

PROMPT = "import os\nimport"
QUERY = "?mode=model&t=0.8&k=0&p=0.9&minp=0&n=40&seed=5"
SETTING = {"temperature": 0.8, "top_k": 0, "top_p": 0.9, "min_p": 0.0}

# Records, for every change to the continuation, how many tokens it held and when.
OBSERVE = """() => {
  window.__seen = [];
  const out = document.getElementById("sample-output");
  new MutationObserver(() => {
    window.__seen.push([performance.now(), out.querySelectorAll(".tok").length]);
  }).observe(out, { childList: true, subtree: true });
}"""


@pytest.fixture(scope="module")
def backend() -> ModelBackend:
    model = ModelBackend()
    model.load()
    return model


@pytest.fixture(scope="module")
def server(backend: ModelBackend) -> Iterator[str]:
    with BackgroundServer(create_app(backend, limits=ExplorerLimits(max_new_tokens=60))) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as launched:
        yield launched


@pytest.fixture(params=[(1280, 800), (390, 844)], ids=["desktop", "phone"])
def page(browser: Any, request: Any) -> Iterator[Any]:
    """A fresh page; the test fails if the page logs an error or throws."""
    width, height = request.param
    context = browser.new_context(viewport={"width": width, "height": height})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    tab.viewport_name = request.node.callspec.id
    yield tab
    context.close()
    assert problems == [], f"the page logged errors: {problems}"


def _open_model(page: Any, server: str, query: str = QUERY) -> None:
    page.goto(f"{server}/{query}")
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("body[data-model-ready=true]")


def _expected_stream(server: str, **body: Any) -> list[dict[str, Any]]:
    r = httpx.post(f"{server}/api/generate-stream", json={"prompt": PROMPT, **body}, timeout=60)
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines()]


def _generate(page: Any) -> list[list[float]]:
    """Click Generate, wait for the end of the stream; the observer's records."""
    page.evaluate(OBSERVE)
    page.click("#sample-button")
    page.wait_for_selector("#sample-output[data-tokens]")
    seen: list[list[float]] = page.evaluate("window.__seen")
    return seen


def test_tokens_appear_progressively_with_their_probabilities(page: Any, server: str) -> None:
    _open_model(page, server)
    seen = _generate(page)
    expected = _expected_stream(server, **SETTING, max_new_tokens=40, seed=5)
    tokens = [e for e in expected if e["event"] == "token"]
    final = len(tokens)
    assert int(page.get_attribute("#sample-output", "data-tokens") or 0) == final
    # Progressive: the page held some tokens, then more, before the last one arrived.
    counts = [int(c) for _, c in seen]
    assert counts[-1] == final
    partial = sorted({c for c in counts if 0 < c < final})
    assert len(partial) >= 2, f"the tokens did not arrive progressively: {counts}"
    # The continuation with its token boundaries and probabilities, as streamed.
    spans = page.locator("#sample-output .tok")
    assert spans.count() == final
    assert spans.all_text_contents() == [t["text"] for t in tokens]
    ps = [float(spans.nth(i).get_attribute("data-p") or "nan") for i in range(final)]
    assert ps == [t["probability"] for t in tokens]
    assert page.inner_text("#sample-output .continuation") == expected[-1]["text"]
    # Colours follow the legend's bins: lower probability, another colour.
    legend = page.locator("#token-legend .key")
    assert legend.count() == 5
    colours = {
        spans.nth(i).evaluate("e => getComputedStyle(e).backgroundColor") for i in range(final)
    }
    bins = {int(np.searchsorted([0.05, 0.2, 0.5, 0.9], p, side="right")) for p in ps}
    assert len(colours) == len(bins)
    assert "ms" in page.inner_text("#stream-stats")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(ARTIFACTS / f"explorer-model-stream-{page.viewport_name}.png"), full_page=True
    )


def test_a_tokens_step_shows_its_distribution_with_the_chosen_token_marked(
    page: Any, server: str
) -> None:
    _open_model(page, server)
    _generate(page)
    expected = _expected_stream(server, **SETTING, max_new_tokens=40, seed=5)
    tokens = [e for e in expected if e["event"] == "token"]
    for k in (3, 0):
        page.click(f"#sample-output .tok[data-step='{k}']")
        page.wait_for_selector(f"#step-view[data-step='{k}']")
        assert page.is_visible("#step-view")
        rows = page.locator("#step-bars li")
        ids = [int(rows.nth(i).get_attribute("data-id") or -1) for i in range(rows.count())]
        ps = [float(rows.nth(i).get_attribute("data-p") or "nan") for i in range(rows.count())]
        assert ids[:10] == tokens[k]["top_ids"]
        assert ps[:10] == tokens[k]["top_probabilities"]
        chosen = page.locator("#step-bars li.chosen")
        assert chosen.count() == 1
        assert int(chosen.get_attribute("data-id") or -1) == tokens[k]["token_id"]
        assert "▶" in chosen.inner_text()
        # An absolute axis: a bar's width is its probability of the full track.
        fill = chosen.locator(".fill").bounding_box()
        track = chosen.locator(".track").bounding_box()
        assert fill["width"] == pytest.approx(tokens[k]["probability"] * track["width"], abs=1)
    # Keyboard: focus moves along the tokens with the arrow keys and shows each step.
    page.focus("#sample-output .tok[data-step='0']")
    page.keyboard.press("ArrowRight")
    page.wait_for_selector("#step-view[data-step='1']")
    assert page.evaluate("document.activeElement.dataset.step") == "1"


def test_a_step_goes_to_the_bars_where_the_sliders_change_it(
    page: Any, server: str, backend: ModelBackend
) -> None:
    _open_model(page, server)
    _generate(page)
    spans = page.locator("#sample-output .tok")
    drawn = [int(spans.nth(i).get_attribute("data-id") or -1) for i in range(4)]
    page.click("#sample-output .tok[data-step='3']")
    fetches = int(page.get_attribute("body", "data-model-fetches") or 0)
    page.click("#step-to-bars")
    page.wait_for_selector(f"body[data-model-fetches='{fetches + 1}']")
    assert "step 4" in page.inner_text("#status")
    z = np.array(backend.next_token(PROMPT, continuation=drawn[:3]).logits)
    rows = page.locator("#bars .bar-row")
    index = [int(rows.nth(i).get_attribute("data-index") or -1) for i in range(rows.count())]
    shown = [float(rows.nth(i).get_attribute("data-p") or "nan") for i in range(rows.count())]
    assert index == np.argsort(-z, kind="stable")[: len(index)].tolist()
    expected = summarize_sampling(z, **SETTING).probabilities[index]
    np.testing.assert_allclose(shown, expected, rtol=1e-9, atol=1e-12)


def test_the_printed_cli_command_draws_the_pages_tokens(browser: Any, server: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    _open_model(page, server, "?mode=model&t=0.9&k=20&p=0.95&minp=0.02&n=15&seed=9")
    _generate(page)
    command = page.inner_text("#cli-command")
    assert command.startswith("thermoscope generate --prompt $'import os\\nimport' -n 1")
    bin_dir = str(Path(sys.executable).parent)
    run = subprocess.run(
        ["bash", "-c", f"{command} --json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"},
        check=True,
    )
    cli = json.loads(run.stdout)["samples"][0]
    spans = page.locator("#sample-output .tok")
    ids = [int(spans.nth(i).get_attribute("data-id") or -1) for i in range(spans.count())]
    text = "".join(spans.all_text_contents())
    context.close()
    assert ids == cli["tokens"]
    assert text == cli["text"]


def test_model_mode_draws_are_the_samplers_seeded_draws(
    page: Any, server: str, backend: ModelBackend
) -> None:
    _open_model(page, server, "?mode=model&t=1.2&k=0&p=1&minp=0.02&n=40&seed=4")
    page.fill("#model-draw-n", "3000")
    page.click("#model-draw-button")
    page.wait_for_selector("body[data-model-draws='1']")
    z = np.array(backend.next_token(PROMPT).logits)
    counts = np.bincount(
        Sampler.from_options(temperature=1.2, min_p=0.02).sample(z, n=3000, seed=4),
        minlength=z.size,
    )
    rows = page.locator("#model-draws tr[data-id]")
    shown = {
        int(rows.nth(i).get_attribute("data-id") or -1): int(
            rows.nth(i).get_attribute("data-count") or -1
        )
        for i in range(rows.count())
    }
    assert rows.count() == min(12, int((counts > 0).sum()))
    for token, count in shown.items():
        assert count == counts[token]
    assert sorted(shown.values(), reverse=True) == sorted(counts, reverse=True)[: len(shown)]
    assert "chi-square p" in page.inner_text("#status")


def test_axe_finds_no_serious_violations_in_model_mode(browser: Any, server: str) -> None:
    """The whole page in model mode, after a stream, a step shown and draws."""
    if not AXE.is_file():
        need(f"axe-core is missing: npm install --prefix {AXE.parents[2]} axe-core@4")
    for width, height in ((1280, 800), (390, 844)):
        # The server's CSP forbids inline scripts, axe's included: bypassed for axe only.
        context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
        try:
            page = context.new_page()
            _open_model(page, server)
            _generate(page)
            page.click("#sample-output .tok[data-step='2']")
            page.fill("#model-draw-n", "500")
            page.click("#model-draw-button")
            page.wait_for_selector("body[data-model-draws='1']")
            page.add_script_tag(path=str(AXE))
            result = page.evaluate(
                "async () => (await axe.run(document,"
                " {resultTypes: ['violations']})).violations"
                ".map((v) => ({id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target)}))"
            )
        finally:
            context.close()
        serious = [v for v in result if v["impact"] in ("serious", "critical")]
        assert serious == [], serious
