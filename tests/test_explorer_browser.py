"""The explorer page in a real browser (Debian's Chromium, driven by Playwright).

The page computes the distribution in JavaScript; every check here compares
what it *displays* with thermoscope's Python (`summarize_sampling`), which is
itself tested against transformers and closed forms. Screenshots land in
``test-artifacts/`` (or ``$THERMOSCOPE_ARTIFACTS``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import numpy as np
import pytest

from browsers import ARTIFACTS, launched_chromium
from thermoscope.explorer import EXAMPLES, BackgroundServer, ExplorerLimits, create_app
from thermoscope.explorer.backend import ModelBackend
from thermoscope.sampling import Sampler, summarize_sampling

pytest.importorskip("playwright.sync_api")

SLIDERS = {
    "temperature": ("#temperature-slider", "#temperature", "t"),
    "top_k": ("#top-k-slider", "#top-k", "k"),
    "top_p": ("#top-p-slider", "#top-p", "p"),
    "min_p": ("#min-p-slider", "#min-p", "minp"),
}
PROMPT = "import os\nimport"


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


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page; the test fails if the page logs an error or throws."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    yield tab
    context.close()
    assert problems == [], f"the page logged errors: {problems}"


def _open(page: Any, server: str, query: str = "") -> None:
    page.goto(f"{server}/{query}")
    page.wait_for_selector("body[data-ready=true]")


def _displayed(page: Any) -> dict[str, Any]:
    """What the page shows: bar labels, probabilities (text and exact), kept flags, stats."""
    rows = page.locator("#bars .bar-row")
    return {
        "index": [int(v) for v in _attributes(rows, "data-index")],
        "labels": rows.locator(".label").all_inner_texts(),
        "text": [float(v) for v in _attributes(rows.locator(".value"), "title")],
        "shown": [v.split()[0] for v in rows.locator(".value").all_inner_texts()],
        "exact": [float(v) for v in _attributes(rows, "data-p")],
        "kept": [v == "true" for v in _attributes(rows, "data-kept")],
        "entropy": float(page.get_attribute("#stat-entropy", "data-value") or "nan"),
        "nucleus": float(page.get_attribute("#stat-nucleus", "data-value") or "nan"),
        "kept_count": page.inner_text("#stat-kept"),
        "max": float(page.get_attribute("#stat-max", "data-value") or "nan"),
    }


def _attributes(rows: Any, name: str) -> list[str]:
    return [rows.nth(i).get_attribute(name) for i in range(rows.count())]


def _assert_matches(shown: dict[str, Any], logits: Any, setting: dict[str, Any]) -> None:
    """The displayed numbers equal Python's to 3 significant digits (text), 1e-9 (exact values)."""
    s = summarize_sampling(logits, **setting)
    idx = shown["index"]
    np.testing.assert_allclose(
        [float(v) for v in shown["shown"]], s.probabilities[idx], rtol=5e-3, atol=1e-300
    )
    np.testing.assert_allclose(shown["text"], s.probabilities[idx], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(shown["exact"], s.probabilities[idx], rtol=1e-9, atol=1e-12)
    assert shown["kept"] == s.kept[idx].tolist()
    assert shown["entropy"] == pytest.approx(s.entropy, abs=1e-6)
    assert shown["nucleus"] == pytest.approx(s.nucleus_mass, abs=1e-6)
    assert shown["max"] == pytest.approx(s.max_probability, abs=1e-6)
    assert shown["kept_count"] == f"{s.kept_count} of {len(s.kept)}"


def _set(page: Any, name: str, value: float, *, slider: bool) -> None:
    """Move a slider (or type into its number box) the way a user does: an input event.

    The temperature slider is logarithmic (it holds log10 T, -2..2; T = 0 is a button).
    """
    range_sel, box_sel, _ = SLIDERS[name]
    if slider and name == "temperature":
        if value == 0:
            page.click("#t-zero")
        else:
            page.fill(range_sel, repr(math.log10(value)))
        return
    page.fill(range_sel if slider else box_sel, f"{value:g}" if slider else repr(value))


def _query(page: Any) -> dict[str, list[str]]:
    """The page's URL query, read in the page (Playwright's ``page.url`` lags replaceState)."""
    return parse_qs(page.evaluate("location.search").lstrip("?"))


def _setting(page: Any) -> dict[str, Any]:
    """The setting in the page's URL."""
    q = _query(page)
    return {
        "temperature": float(q["t"][0]),
        "top_k": int(q["k"][0]),
        "top_p": float(q["p"][0]),
        "min_p": float(q["minp"][0]),
    }


def test_page_opens_on_the_seed_example(page: Any, server: str) -> None:
    _open(page, server)
    example = EXAMPLES[0]
    shown = _displayed(page)
    assert shown["labels"] == list(example.labels)
    _assert_matches(shown, example.logits, {})
    assert page.input_value("#example") == example.name
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "explorer-logits.png"), full_page=True)


@pytest.mark.parametrize(
    ("name", "value"),
    [("temperature", 0.35), ("temperature", 0.0), ("top_k", 2), ("top_p", 0.8), ("min_p", 0.3)],
)
def test_each_slider_updates_bars_numbers_and_url(
    page: Any, server: str, name: str, value: float
) -> None:
    example = EXAMPLES[1]
    _open(page, server)
    page.select_option("#example", example.name)
    before = _displayed(page)
    _set(page, name, value, slider=True)
    after = _displayed(page)
    _, box_sel, key = SLIDERS[name]
    assert float(page.input_value(box_sel)) == value
    assert float(_query(page)[key][0]) == value
    setting = {name: value}
    assert _setting(page) == {
        **{"temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0},
        **setting,
    }
    _assert_matches(after, example.logits, setting)
    assert after["exact"] != before["exact"]


def test_random_settings_match_python(page: Any, server: str) -> None:
    rng = np.random.default_rng(7)
    _open(page, server)
    vectors = [np.array(p.logits) for p in EXAMPLES[1:]]
    vectors.append(np.round(rng.normal(0, 2, 40), 1))  # rounding makes ties
    with_mask = rng.normal(0, 1.5, 25)
    with_mask[[3, 11, 17]] = -np.inf
    vectors.append(with_mask)
    checked = 0
    for z in vectors:
        page.fill("#labels-input", "")
        page.fill(
            "#logits-input", ", ".join("-inf" if np.isneginf(v) else repr(float(v)) for v in z)
        )
        for _ in range(6):
            slider = bool(rng.integers(2))
            if slider:  # slider positions sit on the slider's grid
                setting = {
                    "temperature": round(float(rng.choice([0.0, rng.uniform(0.01, 3)])), 2),
                    "top_k": int(rng.integers(0, z.size + 1)),
                    "top_p": round(float(rng.uniform(0.01, 1)), 2),
                    "min_p": round(float(rng.uniform(0, 0.5)), 2),
                }
            else:  # typed values are arbitrary
                setting = {
                    "temperature": float(rng.choice([1e-3, rng.uniform(0.05, 8), 250.0])),
                    "top_k": int(rng.integers(0, z.size + 3)),
                    "top_p": float(rng.uniform(0.05, 1)),
                    "min_p": float(rng.uniform(0, 0.4)),
                }
            for name, value in setting.items():
                _set(page, name, value, slider=slider)
            assert _setting(page) == pytest.approx(setting, rel=1e-15)
            _assert_matches(_displayed(page), z, setting)
            checked += 1
    assert checked == 6 * len(vectors)


def test_state_in_the_url_restores_the_view(page: Any, server: str, browser: Any) -> None:
    _open(page, server)
    page.fill("#logits-input", "1.5, -0.5, 3, 3, -inf, 0.25")
    page.fill("#labels-input", "a, b, c, d, e, f")
    _set(page, "temperature", 0.6, slider=True)
    _set(page, "top_k", 4, slider=True)
    _set(page, "min_p", 0.05, slider=False)
    shown = _displayed(page)
    shared = page.evaluate("location.href")
    other = browser.new_page()
    try:
        other.goto(shared)
        other.wait_for_selector("body[data-ready=true]")
        assert _displayed(other) == shown
        assert other.input_value("#top-k") == "4"
        assert other.input_value("#logits-input") == "1.5, -0.5, 3, 3, -inf, 0.25"
        assert other.input_value("#example") == ""  # not one of the examples
    finally:
        other.close()
    assert shown["labels"] == ["a", "b", "c", "d", "e", "f"]
    assert shown["kept"][4] is False  # the masked token
    _assert_matches(shown, [1.5, -0.5, 3, 3, -np.inf, 0.25], _setting(page))


def test_bad_input_is_reported_on_the_page(page: Any, server: str) -> None:
    _open(page, server)
    page.fill("#logits-input", "1, two, 3")
    assert "`logits`" in page.inner_text("#status")
    assert "invalid" in (page.get_attribute("#logits-input", "class") or "")
    assert page.locator("#bars .bar-row").count() == 0
    page.fill("#logits-input", "2, 1, 0.5")
    assert page.inner_text("#status") == ""
    page.fill("#temperature", "-1")
    assert "`temperature`" in page.inner_text("#status")
    page.fill("#top-p", "0")
    assert "`top-p`" in page.inner_text("#status")
    page.fill("#labels-input", "x, y")
    assert "`labels`" in page.inner_text("#status")
    _open(page, server, "?t=-3&k=1.5&p=2")  # a hand-edited link: bad values are ignored
    assert page.input_value("#temperature") == "1"
    assert "Ignored" in page.inner_text("#status")


def test_model_mode_shows_the_models_distribution_and_samples(
    page: Any, server: str, backend: ModelBackend
) -> None:
    _open(page, server, "?mode=model&t=0.8&k=0&p=0.9&minp=0")
    page.wait_for_selector("body[data-model-ready=true]")
    assert page.input_value("#prompt") == PROMPT
    z = np.array(backend.next_token(PROMPT).logits)
    shown = _displayed(page)
    assert len(shown["index"]) == 40
    assert shown["index"] == np.argsort(-z, kind="stable")[:40].tolist()
    _assert_matches(shown, z, _setting(page))
    _set(page, "top_k", 3, slider=False)
    _assert_matches(_displayed(page), z, _setting(page))

    page.fill("#max-new-tokens", "12")
    page.fill("#seed", "5")
    page.click("#sample-button")
    page.wait_for_selector("#sample-output[data-tokens]")
    continuation = page.inner_text("#sample-output .continuation")
    expected = httpx.post(
        f"{server}/api/sample",
        json={
            "prompt": PROMPT,
            "temperature": 0.8,
            "top_k": 3,
            "top_p": 0.9,
            "min_p": 0.0,
            "max_new_tokens": 12,
            "seed": 5,
        },
        timeout=60,
    ).json()
    assert continuation == expected["text"]
    assert int(page.get_attribute("#sample-output", "data-tokens") or 0) == len(expected["tokens"])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "explorer-model.png"), full_page=True)


def test_a_new_prompt_fetches_new_logits(page: Any, server: str, backend: ModelBackend) -> None:
    _open(page, server, "?mode=model")
    page.wait_for_selector("body[data-model-ready=true]")
    prompt = "def parse(self"
    page.fill("#prompt", prompt)
    assert "previous prompt" in page.inner_text("#status")  # the bars are stale until fetched
    fetches = int(page.get_attribute("body", "data-model-fetches") or 0)
    page.click("#fetch-logits")
    page.wait_for_selector(f"body[data-model-fetches='{fetches + 1}']")
    z = np.array(backend.next_token(prompt).logits)
    _assert_matches(_displayed(page), z, _setting(page))
    assert _query(page)["prompt"] == [prompt]
    assert "previous prompt" not in page.inner_text("#status")


def test_a_server_without_a_model_offers_the_logits_mode_only(page: Any) -> None:
    with BackgroundServer(create_app(None)) as bare:
        _open(page, bare, "?mode=model&t=0.5")
        assert page.is_disabled("#mode-model")
        assert page.is_hidden("#model-panel")
        assert "no model" in page.inner_text("#status")
        _assert_matches(_displayed(page), EXAMPLES[0].logits, {"temperature": 0.5})


def test_draw_samples_marks_the_samplers_frequencies(page: Any, server: str) -> None:
    example = EXAMPLES[1]
    _open(page, server)
    page.select_option("#example", example.name)
    _set(page, "temperature", 0.7, slider=True)
    _set(page, "top_k", 4, slider=False)
    page.fill("#draw-n", "20000")
    page.fill("#draw-seed", "3")
    page.click("#draw-button")
    page.wait_for_selector("body[data-draws='1']")
    rows = page.locator("#bars .bar-row")
    counts = [int(v) for v in _attributes(rows, "data-count")]
    sampler = Sampler.from_options(temperature=0.7, top_k=4)
    z = np.array(example.logits)
    assert counts == np.bincount(sampler.sample(z, n=20000, seed=3), minlength=z.size).tolist()
    assert page.locator("#bars .freq").count() == z.size
    status = page.inner_text("#status")
    assert "20000 draws (seed 3)" in status
    assert "chi-square p = " in status
    _set(page, "top_k", 3, slider=False)  # another setting: the draws are redrawn for it
    page.wait_for_selector("body[data-draws='2']")
    counts = [int(v) for v in _attributes(rows, "data-count")]
    sampler = Sampler.from_options(temperature=0.7, top_k=3)
    assert counts == np.bincount(sampler.sample(z, n=20000, seed=3), minlength=z.size).tolist()
