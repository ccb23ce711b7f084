"""The explorer page as a learner uses it, in a real browser (Debian's Chromium via Playwright).

Absolute probability axis, sticky chart, keyboard-only use, axe-core, the
sampler chain stage by stage in both orders, draws kept in the URL and the
static export opened from ``file://``. Every number the page shows is
compared with thermoscope's Python (``summarize_sampling``, ``Sampler``,
``Sampler.trace`` through ``POST /api/trace``), never with the page's own
JavaScript.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import numpy as np
import pytest

import thermoscope.explorer
from browsers import ARTIFACTS, AXE, launched_chromium, need
from thermoscope.explorer import EXAMPLES, BackgroundServer, create_app
from thermoscope.explorer.backend import ModelBackend
from thermoscope.explorer.export import write_static_page
from thermoscope.sampling import Sampler, summarize_sampling

pytest.importorskip("playwright.sync_api")

NEXT_WORD = next(e for e in EXAMPLES if e.name == "next-word")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    # The model loads only if a test opens the Model tab.
    with BackgroundServer(create_app(ModelBackend())) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched_chromium() as launched:
        yield launched


class Pages:
    """New pages at a viewport; each fails its test if the page logs an error."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.contexts: list[Any] = []
        self.problems: list[str] = []

    def new(self, viewport: dict[str, int] = DESKTOP, **options: Any) -> Any:
        context = self.browser.new_context(viewport=viewport, **options)
        self.contexts.append(context)
        tab = context.new_page()
        tab.on("console", lambda m: self.problems.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: self.problems.append(f"uncaught: {e}"))
        return tab


@pytest.fixture
def pages(browser: Any) -> Iterator[Pages]:
    made = Pages(browser)
    yield made
    for context in made.contexts:
        context.close()
    assert made.problems == [], f"the page logged errors: {made.problems}"


def _open(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")


def _query(page: Any) -> dict[str, list[str]]:
    return parse_qs(page.evaluate("location.search").lstrip("?"))


def _rows(page: Any) -> list[dict[str, Any]]:
    """Each bar row: index, exact probability, kept flag, count, and its bars' pixel widths."""
    rows: list[dict[str, Any]] = page.evaluate(
        """() => Array.from(document.querySelectorAll('#bars .bar-row'), (r) => {
          const w = (sel) => {
            const e = r.querySelector(sel);
            return e ? e.getBoundingClientRect().width : null;
          };
          return {
            index: Number(r.dataset.index), p: Number(r.dataset.p),
            kept: r.dataset.kept === 'true',
            count: r.dataset.count === undefined ? null : Number(r.dataset.count),
            stale: r.dataset.stale === 'true', track: w('.track'), fill: w('.fill'),
            ghost: w('.ghost'), freq: w('.freq'),
            text: r.querySelector('.value').firstChild.textContent,
          };
        })"""
    )
    return rows


def _stat(page: Any, name: str) -> float:
    return float(page.get_attribute(f"#stat-{name}", "data-value") or "nan")


def _typed(z: Any) -> str:
    return ", ".join("-inf" if np.isneginf(v) else repr(float(v)) for v in z)


# -- the absolute axis ----------------------------------------------------------------------


@pytest.mark.parametrize("t", [0.37, 1.0, 2.79])
def test_bar_width_is_the_probability_on_a_0_to_1_axis(pages: Pages, server: str, t: float) -> None:
    page = pages.new()
    _open(page, f"{server}/?t={t}")
    page.select_option("#example", NEXT_WORD.name)
    s = summarize_sampling(np.array(NEXT_WORD.logits), temperature=t)
    rows = _rows(page)
    assert [r["index"] for r in rows] == list(range(len(NEXT_WORD.logits)))
    for r in rows:
        assert r["p"] == pytest.approx(s.probabilities[r["index"]], rel=1e-12)
        assert abs(r["fill"] - s.probabilities[r["index"]] * r["track"]) <= 1.0
        assert abs(r["ghost"] - s.tempered[r["index"]] * r["track"]) <= 1.0


def test_the_top_bar_shrinks_when_its_probability_does(pages: Pages, server: str) -> None:
    page = pages.new()
    _open(page, f"{server}/?t=0.37")
    page.select_option("#example", NEXT_WORD.name)
    cold = _rows(page)[0]["fill"]
    page.fill("#temperature", "2.79")
    hot = _rows(page)[0]["fill"]
    z = np.array(NEXT_WORD.logits)
    p_cold = summarize_sampling(z, temperature=0.37).probabilities[0]
    p_hot = summarize_sampling(z, temperature=2.79).probabilities[0]
    assert hot / cold == pytest.approx(p_hot / p_cold, rel=0.02)
    assert hot < 0.5 * cold


def test_log_scale_places_bars_by_decade(pages: Pages, server: str) -> None:
    page = pages.new()
    _open(page, f"{server}/?t=0.5&scale=log")
    page.select_option("#example", NEXT_WORD.name)
    assert page.is_checked("#log-scale")
    s = summarize_sampling(np.array(NEXT_WORD.logits), temperature=0.5)
    for r in _rows(page):
        p = s.probabilities[r["index"]]
        expected = min(max((math.log10(p) + 6) / 6, 0.0), 1.0) * r["track"]
        assert abs(r["fill"] - expected) <= 1.0
    page.uncheck("#log-scale")
    assert "scale" not in _query(page)


# -- numbers, labels, explanations ---------------------------------------------------------


def test_numbers_show_four_digits_and_the_full_value_on_hover(pages: Pages, server: str) -> None:
    page = pages.new()
    _open(page, f"{server}/?t=0.7&k=4")
    page.select_option("#example", NEXT_WORD.name)
    s = summarize_sampling(np.array(NEXT_WORD.logits), temperature=0.7, top_k=4)
    shown = page.inner_text("#stat-entropy")
    assert shown == f"{float(f'{s.entropy:.4g}')}"
    assert float(page.get_attribute("#stat-entropy", "title") or "nan") == pytest.approx(
        s.entropy, rel=1e-12
    )
    assert _stat(page, "nucleus") == pytest.approx(s.nucleus_mass, rel=1e-12)
    assert _stat(page, "max") == pytest.approx(s.max_probability, rel=1e-12)
    assert "Kept mass" in page.inner_text(".stats")
    assert "Nucleus" not in page.inner_text("body")
    for r in _rows(page):
        digits = r["text"].replace("0.", "").lstrip("0").replace(".", "")
        assert len(digits) <= 4, r["text"]
    # Every control and statistic has a one-line explanation.
    for block in ("fieldset .control", ".stats > div"):
        assert page.locator(block).count() == page.locator(f"{block} .explain").count() >= 4
    assert (
        page.locator("#logits-panel .explain").count()
        == page.locator("#logits-panel label").count()
    )
    assert page.locator("fieldset .explain").count() >= page.locator("fieldset").count()


def test_presets_have_no_seed_names_and_typing_after_one_does_not_error(
    pages: Pages, server: str
) -> None:
    page = pages.new()
    _open(page, f"{server}/")
    options = page.locator("#example option").all_inner_texts()
    assert not any("Seed 0" in o for o in options)
    page.select_option("#example", NEXT_WORD.name)
    page.fill("#logits-input", "1, 2, 3")
    assert page.inner_text("#status") == ""
    assert page.input_value("#labels-input") == ""
    assert [r["index"] for r in _rows(page)] == [0, 1, 2]
    # Labels the user typed are never dropped: a mismatch is reported instead.
    page.fill("#labels-input", "a, b, c")
    page.fill("#logits-input", "1, 2")
    assert "`labels`" in page.inner_text("#status")


# -- temperature control -----------------------------------------------------------------


def test_temperature_is_logarithmic_with_exact_zero_and_infinity(pages: Pages, server: str) -> None:
    page = pages.new()
    _open(page, f"{server}/")
    page.select_option("#example", NEXT_WORD.name)
    z = np.array(NEXT_WORD.logits)
    assert page.get_attribute("#temperature-slider", "min") == "-2"
    assert page.get_attribute("#temperature-slider", "max") == "2"
    page.fill("#temperature-slider", repr(math.log10(0.35)))
    assert page.input_value("#temperature") == "0.35"
    assert _query(page)["t"] == ["0.35"]
    assert [r["p"] for r in _rows(page)] == pytest.approx(
        summarize_sampling(z, temperature=0.35).probabilities.tolist(), rel=1e-12
    )
    page.click("#t-inf")
    assert page.input_value("#temperature") == "inf"
    assert _query(page)["t"] == ["inf"]
    assert [r["p"] for r in _rows(page)] == pytest.approx([1 / 6] * 6, rel=1e-12)
    page.click("#t-zero")
    assert [r["p"] for r in _rows(page)] == [1.0, 0, 0, 0, 0, 0]
    page.fill("#temperature", "Infinity")
    assert _stat(page, "entropy") == pytest.approx(math.log(6), rel=1e-12)
    page.fill("#temperature", "100")
    assert page.input_value("#temperature-slider") == "2"
    page.fill("#temperature", "0.01")
    assert float(page.input_value("#temperature-slider")) == pytest.approx(-2)


# -- curves and the chain -------------------------------------------------------------------


def test_curves_mark_the_current_temperature(pages: Pages, server: str) -> None:
    page = pages.new()
    _open(page, f"{server}/?t=0.6&p=0.9")
    page.select_option("#example", NEXT_WORD.name)
    s = summarize_sampling(np.array(NEXT_WORD.logits), temperature=0.6, top_p=0.9)
    assert float(page.get_attribute("#curve-entropy", "data-value") or "nan") == pytest.approx(
        s.entropy, rel=1e-12
    )
    assert float(page.get_attribute("#curve-max", "data-value") or "nan") == pytest.approx(
        s.max_probability, rel=1e-12
    )
    assert "after truncation" in (page.get_attribute("#curve-entropy", "aria-label") or "")
    # The curves' points are Python's numbers at each temperature of the grid.
    temps = [0.01, 0.1, 1.0, 10.0, 100.0]
    curves = page.evaluate(
        "(ts) => ThermoscopeMath.curves([5, 2.2, 2, 4.5, 3, 2.7], "
        "{temperature: 1, topK: 0, topP: 0.9, minP: 0}, 'transformers', ts)",
        temps,
    )
    for j, t in enumerate(temps):
        ref = summarize_sampling(np.array(NEXT_WORD.logits), temperature=t, top_p=0.9)
        assert curves["entropy"][j] == pytest.approx(ref.entropy, abs=1e-12)
        assert curves["maxProbability"][j] == pytest.approx(ref.max_probability, rel=1e-12)


def _chain(page: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = page.evaluate(
        """() => Array.from(document.querySelectorAll('#chain li'), (li) => ({
          name: li.dataset.stage,
          kept: li.dataset.kept ? li.dataset.kept.split(',').map(Number) : [],
          removed: li.dataset.removed ? li.dataset.removed.split(',').map(Number) : [],
          removedMass: Number(li.dataset.removedMass), entropy: Number(li.dataset.entropy) }))"""
    )
    return items


@pytest.mark.parametrize("order", ["transformers", "llama.cpp"])
def test_the_chain_shows_what_each_stage_removed_as_sampler_trace_does(
    pages: Pages, server: str, order: str
) -> None:
    rng = np.random.default_rng(11)
    page = pages.new()
    _open(page, f"{server}/?order={order}")
    assert page.is_checked("#order-llama" if order == "llama.cpp" else "#order-transformers")
    for _ in range(6):
        z = np.round(rng.normal(0, 2, 12), 1)
        setting = {
            "temperature": round(float(rng.uniform(0.2, 3)), 2),
            "top_k": int(rng.integers(0, 12)),
            "top_p": round(float(rng.uniform(0.3, 1)), 2),
            "min_p": round(float(rng.uniform(0, 0.3)), 2),
        }
        page.fill("#logits-input", _typed(z))
        for box, key in [("#temperature", "temperature"), ("#top-k", "top_k")]:
            page.fill(box, str(setting[key]))
        page.fill("#top-p", str(setting["top_p"]))
        page.fill("#min-p", str(setting["min_p"]))
        trace = httpx.post(
            f"{server}/api/trace", json={"logits": z.tolist(), **setting, "order": order}
        ).json()
        shown = _chain(page)
        assert [s["name"] for s in shown] == [s["name"] for s in trace["stages"]]
        for mine, ref in zip(shown, trace["stages"], strict=True):
            assert mine["kept"] == ref["kept_ids"]
            assert mine["removed"] == ref["removed_ids"]
            assert mine["removedMass"] == pytest.approx(ref["removed_mass"], abs=1e-12)
            assert mine["entropy"] == pytest.approx(ref["entropy"], abs=1e-9)
        assert [r["p"] for r in _rows(page)] == pytest.approx(
            trace["probabilities"], rel=1e-9, abs=1e-15
        )


def test_the_order_toggle_and_a_classic_surprise(pages: Pages, server: str) -> None:
    page = pages.new()
    _open(page, f"{server}/")
    page.click("#surprise-0")  # min-p 0.2 after T = 3
    z = np.array(NEXT_WORD.logits)
    setting = {"temperature": 3.0, "min_p": 0.2}
    hf = Sampler.from_options(**setting, order="transformers").probs(z)
    llama = Sampler.from_options(**setting, order="llama.cpp").probs(z)
    assert page.inner_text("#stat-kept") == f"{int(np.count_nonzero(hf))} of 6"
    page.check("#order-llama")
    assert _query(page)["order"] == ["llama.cpp"]
    assert page.inner_text("#stat-kept") == f"{int(np.count_nonzero(llama))} of 6"
    assert [r["p"] for r in _rows(page)] == pytest.approx(llama.tolist(), rel=1e-12)
    assert np.count_nonzero(hf) != np.count_nonzero(llama)  # the surprise is real
    text = page.inner_text("#surprises")
    assert f"transformers {np.count_nonzero(hf)}, llama.cpp {np.count_nonzero(llama)}" in text


# -- draws -----------------------------------------------------------------------------------


def test_draws_and_their_seed_round_trip_through_the_url(pages: Pages, server: str) -> None:
    page = pages.new()
    _open(page, f"{server}/?t=0.7&k=4")
    page.select_option("#example", NEXT_WORD.name)
    page.fill("#draw-n", "20000")
    page.fill("#draw-seed", "3")
    page.click("#draw-button")
    page.wait_for_selector("body[data-draws='1']")
    q = _query(page)
    assert (q["draws"], q["dseed"]) == (["20000"], ["3"])
    z = np.array(NEXT_WORD.logits)
    expected = np.bincount(
        Sampler.from_options(temperature=0.7, top_k=4).sample(z, n=20000, seed=3), minlength=6
    ).tolist()
    rows = _rows(page)
    assert [r["count"] for r in rows] == expected
    for r in rows:  # the second bar series: the share of the draws on the same axis
        assert abs(r["freq"] - r["count"] / 20000 * r["track"]) <= 1.0
    other = pages.new()
    _open(other, page.evaluate("location.href"))
    other.wait_for_selector("body[data-draws='1']")
    assert [r["count"] for r in _rows(other)] == expected
    assert other.input_value("#draw-seed") == "3"
    # A slider move keeps the draws: stale at once, then redrawn for the new setting.
    page.fill("#top-k", "3")
    assert all(r["stale"] for r in _rows(page))
    page.wait_for_selector("body[data-draws='2']")
    redrawn = np.bincount(
        Sampler.from_options(temperature=0.7, top_k=3).sample(z, n=20000, seed=3), minlength=6
    ).tolist()
    assert [r["count"] for r in _rows(page)] == redrawn
    assert not any(r["stale"] for r in _rows(page))


# -- layout and keyboard ------------------------------------------------------------------


def _in_view(page: Any, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    view = page.viewport_size
    return bool(
        box is not None
        and box["y"] >= 0
        and box["y"] + box["height"] <= view["height"]
        and box["x"] >= 0
        and box["x"] + box["width"] <= view["width"]
    )


@pytest.mark.parametrize(("viewport", "example"), [(PHONE, "next-word"), (DESKTOP, "zipf-50")])
def test_the_chart_stays_in_view_while_a_slider_moves(
    pages: Pages, server: str, viewport: dict[str, int], example: str
) -> None:
    page = pages.new(viewport)
    _open(page, f"{server}/")
    page.select_option("#example", example)
    slider = page.locator("#min-p-slider")
    slider.scroll_into_view_if_needed()
    assert _in_view(page, "#min-p-slider")
    before = page.inner_text("#stat-kept")
    slider.focus()
    for _ in range(20):
        page.keyboard.press("ArrowRight")
    assert float(page.input_value("#min-p")) == pytest.approx(0.2)
    assert page.inner_text("#stat-kept") != before
    assert _in_view(page, "#min-p-slider")
    assert _in_view(page, "#stat-kept")
    assert _in_view(page, "#bars .bar-row:first-child .track")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"explorer-sticky-{viewport['width']}.png"))


def test_keyboard_only_tabs_and_sliders(pages: Pages, server: str) -> None:
    page = pages.new()
    _open(page, f"{server}/")
    page.select_option("#example", NEXT_WORD.name)
    page.locator("body").focus()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "mode-logits":
            break
    assert page.evaluate("document.activeElement.id") == "mode-logits"
    assert page.get_attribute("#mode-model", "tabindex") == "-1"  # one tab stop for the tablist
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == "mode-model"
    assert page.get_attribute("#mode-model", "aria-selected") == "true"
    assert page.is_visible("#model-panel")
    assert page.is_hidden("#logits-panel")
    # Opening the tab loads the model: let it finish, so no load outlives the test.
    page.wait_for_selector("body[data-model-ready=true]", timeout=180_000)
    page.keyboard.press("ArrowLeft")
    assert page.get_attribute("#mode-logits", "aria-selected") == "true"
    assert page.is_visible("#logits-panel")
    # Tab on into the temperature slider, then move it with keys only.
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "temperature-slider":
            break
    assert page.evaluate("document.activeElement.id") == "temperature-slider"
    page.keyboard.press("End")
    assert page.input_value("#temperature") == "100"
    page.keyboard.press("Home")
    assert page.input_value("#temperature") == "0.01"
    page.keyboard.press("ArrowRight")
    t = float(page.input_value("#temperature"))
    assert 0.01 < t < 0.02
    assert page.get_attribute("#temperature-slider", "aria-valuetext") == f"T = {t:g}"
    z = np.array(NEXT_WORD.logits)
    ref = summarize_sampling(z, temperature=t)
    assert [r["p"] for r in _rows(page)] == pytest.approx(ref.probabilities.tolist(), abs=1e-12)
    page.keyboard.press("Tab")  # the typed box
    page.keyboard.press("Tab")  # T = 0
    page.keyboard.press("Enter")
    assert page.input_value("#temperature") == "0"
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "top-k-slider":
            break
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert page.input_value("#top-k") == "2"


def test_axe_finds_no_serious_violations(pages: Pages, server: str) -> None:
    if not AXE.is_file():
        need(f"axe-core is missing: npm install --prefix {AXE.parents[2]} axe-core@4")
    for viewport in (DESKTOP, PHONE):
        # The server's CSP forbids inline scripts, axe's included: bypassed for axe only.
        page = pages.new(viewport, bypass_csp=True)
        _open(page, f"{server}/?t=0.7&k=4&draws=2000&dseed=1&scale=log")
        page.wait_for_selector("body[data-draws='1']")
        page.add_script_tag(path=str(AXE))
        result = page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".map((v) => ({id: v.id, impact: v.impact, nodes: v.nodes.length}))"
        )
        serious = [v for v in result if v["impact"] in ("serious", "critical")]
        assert serious == [], serious


# -- the static export ----------------------------------------------------------------------


def test_the_exported_file_computes_the_librarys_numbers_with_no_server(
    pages: Pages, tmp_path: Path
) -> None:
    out = write_static_page(tmp_path / "page.html")
    page = pages.new()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    z = np.array([1.5, -0.5, 3.0, 3.0, -np.inf, 0.25, 2.0])
    query = f"?logits={_typed(z).replace(' ', '')}&t=0.6&k=5&p=0.95&minp=0.05"
    _open(page, out.as_uri() + query)
    assert all(u.startswith("file://") for u in requests), requests
    assert page.is_disabled("#mode-model")
    assert "thermoscope explore" in page.inner_text("#static-note")
    setting = {"temperature": 0.6, "top_k": 5, "top_p": 0.95, "min_p": 0.05}
    s = summarize_sampling(z, **setting)
    rows = _rows(page)
    np.testing.assert_allclose([r["p"] for r in rows], s.probabilities, rtol=1e-12, atol=1e-15)
    assert [r["kept"] for r in rows] == s.kept.tolist()
    assert _stat(page, "entropy") == pytest.approx(s.entropy, rel=1e-12)
    page.check("#order-llama")
    llama = Sampler.from_options(**setting, order="llama.cpp").probs(z)
    np.testing.assert_allclose([r["p"] for r in _rows(page)], llama, rtol=1e-12, atol=1e-15)
    # Draws work too (the page's own generator): a chi-square test against the Sampler.
    page.fill("#draw-n", "50000")
    page.click("#draw-button")
    page.wait_for_selector("body[data-draws='1']")
    from thermoscope.sampling import goodness_of_fit

    counts = np.array([r["count"] for r in _rows(page)])
    assert counts.sum() == 50000
    assert counts[llama == 0].sum() == 0
    assert goodness_of_fit(counts, llama).p_value > 1e-4


# -- the export's command line (no browser) ----------------------------------------------------


def test_explore_export_writes_one_self_contained_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from thermoscope.cli import main

    target = tmp_path / "page.html"
    assert main(["explore", "--export", str(target)]) == 0
    assert str(target) in capsys.readouterr().out
    html = target.read_text(encoding="utf-8")
    assert 'src="/static/' not in html
    assert 'href="/static/' not in html
    static = Path(thermoscope.explorer.__file__).with_name("static")
    page = (static / "index.html").read_text(encoding="utf-8")
    for script in sorted(static.glob("*.js")):
        if f"/static/{script.name}" in page:  # every script the page loads is inlined
            assert script.read_text(encoding="utf-8").strip() in html, script.name
    assert (static / "explorer.css").read_text(encoding="utf-8") in html


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--export", "{dir}"], "`--export` must be a file path"),
        (["--export", "{dir}/missing/page.html"], "`--export` must be in an existing directory"),
        (["--export", "{dir}/page.html", "--model", "gpt2"], "`model` cannot be given"),
    ],
)
def test_explore_export_refuses_bad_paths_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    from thermoscope.cli import main

    assert main(["explore", *(a.format(dir=tmp_path) for a in argv)]) == 2
    assert needle in capsys.readouterr().err


# -- the page's chain arithmetic in Node (no browser) -------------------------------------------

CHAIN_DRIVER = r"""
const M = require(process.argv[1]);
const fromJson = (xs) => xs.map((v) => (v === null ? -Infinity : v));
const toJson = (xs) => Array.from(xs, (v) => (v === -Infinity ? null : v));
let text = "";
process.stdin.on("data", (c) => { text += c; });
process.stdin.on("end", () => {
  const out = [];
  for (const c of JSON.parse(text)) {
    const s = { temperature: c.temperature, topK: c.top_k, topP: c.top_p, minP: c.min_p };
    const r = M.chain(fromJson(c.logits), s, c.order);
    const sum = M.summarizeIn(fromJson(c.logits), s, c.order);
    out.push({ stages: r.stages, probabilities: toJson(r.probabilities),
               summary: toJson(sum.probabilities), keptCount: sum.keptCount,
               counts: c.draws ? M.drawCounts(r.probabilities, c.draws, c.seed) : null });
  }
  process.stdout.write(JSON.stringify(out));
});
"""


def _node_chain(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    import json
    import subprocess

    node = shutil.which("node")
    if node is None:
        need("node is not on PATH: the page's chain arithmetic cannot be checked")
    sampling_js = Path(thermoscope.explorer.__file__).with_name("static") / "sampling.js"
    done = subprocess.run(
        [str(node), "-e", CHAIN_DRIVER, str(sampling_js)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("order", ["transformers", "llama.cpp"])
def test_js_chain_matches_sampler_trace_in_both_orders(order: str) -> None:
    rng = np.random.default_rng(5)
    cases = []
    for _ in range(60):
        z = np.round(rng.normal(0, 2, int(rng.integers(1, 30))), 1)  # rounding makes ties
        if z.size > 3:
            z[rng.integers(z.size)] = -np.inf
        cases.append(
            {
                "logits": [None if np.isneginf(v) else float(v) for v in z],
                "temperature": float(rng.choice([0.0, 0.3, 1.0, rng.uniform(0.05, 5)])),
                "top_k": int(rng.integers(0, z.size + 2)),
                "top_p": float(rng.choice([1.0, rng.uniform(0.05, 1)])),
                "min_p": float(rng.choice([0.0, rng.uniform(0, 0.5)])),
                "order": order,
            }
        )
    for case, got in zip(cases, _node_chain(cases), strict=True):
        z = np.array([-np.inf if v is None else v for v in case["logits"]])
        options = {k: case[k] for k in ("temperature", "top_k", "top_p", "min_p")}
        sampler = Sampler.from_options(**options, order=order)
        ref = sampler.trace(z).to_dict()["stages"]
        assert [s["name"] for s in got["stages"]] == [s["name"] for s in ref]
        for mine, theirs in zip(got["stages"], ref, strict=True):
            assert mine["keptIds"] == theirs["kept_ids"]
            assert mine["removedIds"] == theirs["removed_ids"]
            assert mine["removedMass"] == pytest.approx(theirs["removed_mass"], abs=1e-12)
            assert mine["entropy"] == pytest.approx(theirs["entropy"], abs=1e-9)
        probs = np.asarray(sampler.probs(z), dtype=np.float64)
        np.testing.assert_allclose(got["probabilities"], probs, rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(got["summary"], probs, rtol=1e-9, atol=1e-15)
        assert got["keptCount"] == int(np.count_nonzero(probs))


def test_js_draws_follow_the_distribution_and_never_hit_removed_tokens() -> None:
    from thermoscope.sampling import goodness_of_fit

    case = {
        "logits": [5.0, 2.2, 2.0, 4.5, 3.0, 2.7, None],
        "temperature": 1.3,
        "top_k": 0,
        "top_p": 0.95,
        "min_p": 0.0,
        "order": "transformers",
        "draws": 200_000,
        "seed": 12,
    }
    got = _node_chain([case])[0]
    counts = np.array(got["counts"])
    probs = np.array([0.0 if p is None else p for p in got["probabilities"]])
    ref = summarize_sampling(
        np.array([5.0, 2.2, 2.0, 4.5, 3.0, 2.7, -np.inf]), temperature=1.3, top_p=0.95
    )
    np.testing.assert_allclose(probs, ref.probabilities, rtol=1e-12)
    assert counts.sum() == 200_000
    assert counts[ref.probabilities == 0].sum() == 0
    assert goodness_of_fit(counts, ref.probabilities).p_value > 1e-3
