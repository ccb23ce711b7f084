"""The explorer widget: sliders set from code, drawn data checked against Sampler and scipy."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("matplotlib")

from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.colors import to_rgba
from scipy.special import softmax as sp_softmax
from scipy.stats import entropy as sp_entropy

from thermoscope.sampling import Sampler
from thermoscope.widgets import TemperatureExplorer, explore

Z = np.array([5.0, 2.2, 2.0, 4.5, 3.0, 2.7])
NAMES = ["day", "space", "furniture", "experience", "problem", "challenge"]
PETS = np.array([2.0, 1.0, 0.5])
PNG = b"\x89PNG\r\n\x1a\n"

_READOUT = re.compile(
    r"entropy: (?P<entropy>[\d.]+) nats.*nucleus mass: (?P<mass>[\d.]+)"
    r".*kept: (?P<kept>\d+) of (?P<size>\d+) tokens.*max probability: (?P<pmax>[\d.]+)",
    re.DOTALL,
)


def reference(z: np.ndarray, t: float, k: int, p: float, m: float) -> np.ndarray:
    """The distribution the sliders ask for, built independently of the widget."""
    sampler = Sampler.from_options(
        temperature=t, top_k=k or None, top_p=p if p < 1 else None, min_p=m if m > 0 else None
    )
    return np.asarray(sampler.probs(z))


def tempered(z: np.ndarray, t: float) -> np.ndarray:
    """softmax(z / T) by scipy; T = 0 is uniform over the maxima."""
    if t == 0:
        top = z == z.max()
        return top / top.sum()
    return sp_softmax(z / t)


def drawn(w: TemperatureExplorer) -> tuple[np.ndarray, np.ndarray]:
    kept_bars, removed_bars = w.figure.axes[0].containers
    return (
        np.array([b.get_height() for b in kept_bars]),
        np.array([b.get_height() for b in removed_bars]),
    )


def readout(w: TemperatureExplorer) -> dict[str, float]:
    match = _READOUT.search(w.readout.value)
    assert match is not None, w.readout.value
    return {key: float(value) for key, value in match.groupdict().items()}


def set_sliders(w: TemperatureExplorer, t: float, k: int, p: float, m: float) -> None:
    w.temperature.value = t
    w.top_k.value = k
    w.top_p.value = p
    w.min_p.value = m


def check_consistent(
    w: TemperatureExplorer, z: np.ndarray, t: float, k: int, p: float, m: float
) -> None:
    """Everything the widget shows equals the independent computation for these settings."""
    probs = reference(z, t, k, p, m)
    soft = tempered(z, t)
    kept = probs > 0
    np.testing.assert_allclose(w.probabilities, probs, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(w.tempered, soft, rtol=1e-9, atol=1e-15)
    np.testing.assert_array_equal(w.kept, kept)
    heights, removed = drawn(w)
    np.testing.assert_allclose(heights, probs[w.shown], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(removed, np.where(kept, 0.0, soft)[w.shown], rtol=1e-9, atol=1e-15)
    h = float(sp_entropy(probs))
    mass = float(soft[kept].sum())
    assert w.stats == pytest.approx(
        {
            "entropy": h,
            "nucleus_mass": mass,
            "kept_count": int(kept.sum()),
            "max_probability": float(probs.max()),
        },
        rel=1e-9,
        abs=1e-12,
    )
    shown = readout(w)
    assert shown["entropy"] == pytest.approx(h, abs=5e-5)
    assert shown["mass"] == pytest.approx(mass, abs=5e-5)
    assert shown["kept"] == kept.sum()
    assert shown["size"] == z.size
    assert shown["pmax"] == pytest.approx(probs.max(), abs=5e-5)


# -- what is drawn -----------------------------------------------------------


def test_default_view_is_the_plain_softmax() -> None:
    w = explore(Z, labels=NAMES)
    (ax,) = w.figure.axes
    heights, removed = drawn(w)
    np.testing.assert_allclose(heights, sp_softmax(Z), rtol=1e-12)
    np.testing.assert_array_equal(removed, 0.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == NAMES
    assert ax.get_title() == "Sampling distribution over 6 tokens"
    assert (w.temperature.value, w.top_k.value, w.top_p.value, w.min_p.value) == (1, 0, 1, 0)
    assert (w.top_k.min, w.top_k.max) == (0, 6)
    assert (w.temperature.min, w.temperature.max, w.temperature.step) == (0, 5, 0.01)
    assert (w.top_p.min, w.top_p.max) == (0.01, 1)
    assert (w.min_p.min, w.min_p.max) == (0, 1)
    check_consistent(w, Z, 1.0, 0, 1.0, 0.0)


def test_readme_sample_example() -> None:
    # README: T 0.7, top-k 3, top-p 0.9, min-p 0.05 keeps day and experience.
    w = explore(Z, NAMES, temperature=0.7, top_k=3, top_p=0.9, min_p=0.05)
    assert [NAMES[i] for i in np.flatnonzero(w.kept)] == ["day", "experience"]
    p = sp_softmax(Z / 0.7)
    np.testing.assert_allclose(w.probabilities[[0, 3]], p[[0, 3]] / (p[0] + p[3]), rtol=1e-12)
    assert w.stats["nucleus_mass"] == pytest.approx(p[0] + p[3], rel=1e-12)
    check_consistent(w, Z, 0.7, 3, 0.9, 0.05)


def test_moving_each_slider_recomputes() -> None:
    w = explore(PETS, ["cat", "dog", "fish"])
    w.temperature.value = 0.37
    check_consistent(w, PETS, 0.37, 0, 1.0, 0.0)
    w.top_k.value = 2
    check_consistent(w, PETS, 0.37, 2, 1.0, 0.0)
    w.temperature.value = 2.0
    w.top_p.value = 0.5
    check_consistent(w, PETS, 2.0, 2, 0.5, 0.0)
    w.top_k.value = 0
    w.top_p.value = 1.0
    w.min_p.value = 0.5  # at T = 2, dog is 0.607 x cat and fish 0.472 x cat
    check_consistent(w, PETS, 2.0, 0, 1.0, 0.5)
    assert w.kept.tolist() == [True, True, False]


def test_random_settings_match_the_sampler() -> None:
    rng = np.random.default_rng(20260107)
    z = rng.normal(scale=2.0, size=25)
    w = explore(z)
    for _ in range(15):
        t = float(np.round(rng.uniform(0.05, 5.0), 2))
        k = int(rng.integers(0, z.size + 1))
        p = 1.0 if rng.random() < 0.3 else float(np.round(rng.uniform(0.01, 1.0), 2))
        m = 0.0 if rng.random() < 0.3 else float(np.round(rng.uniform(0.0, 0.5), 2))
        set_sliders(w, t, k, p, m)
        check_consistent(w, z, t, k, p, m)


def test_temperature_zero_is_greedy() -> None:
    w = explore(Z, NAMES, temperature=0.0)
    np.testing.assert_array_equal(w.probabilities, [1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(w.tempered, [1, 0, 0, 0, 0, 0])
    assert w.stats == {
        "entropy": 0.0,
        "nucleus_mass": 1.0,
        "kept_count": 1,
        "max_probability": 1.0,
    }
    assert "entropy: 0.0000 nats" in w.readout.value
    check_consistent(w, Z, 0.0, 0, 1.0, 0.0)


def test_greedy_with_tied_maxima_splits_evenly() -> None:
    z = np.array([2.0, 1.0, 2.0, 0.5])
    w = explore(z)
    w.temperature.value = 0.0
    np.testing.assert_allclose(w.probabilities, [0.5, 0, 0.5, 0])
    assert w.stats["entropy"] == pytest.approx(np.log(2), rel=1e-12)
    check_consistent(w, z, 0.0, 0, 1.0, 0.0)


def test_tokens_tied_at_the_top_k_cut_are_kept_together() -> None:
    z = np.array([1.0, 3.0, 1.0, 1.0, 0.0])
    w = explore(z, top_k=2)
    # The second largest logit is shared by three tokens: all of them stay.
    assert w.kept.tolist() == [True, True, True, True, False]
    e = np.exp(z[:4] - 3.0)
    np.testing.assert_allclose(w.probabilities[:4], e / e.sum(), rtol=1e-12)
    check_consistent(w, z, 1.0, 2, 1.0, 0.0)


def test_masked_tokens_get_no_bar() -> None:
    z = np.array([1.0, -np.inf, 0.0])
    w = explore(z, temperature=0.8)
    heights, removed = drawn(w)
    assert heights[1] == 0.0
    assert removed[1] == 0.0
    assert not w.kept[1]
    np.testing.assert_allclose(w.probabilities[[0, 2]], sp_softmax(z[[0, 2]] / 0.8), rtol=1e-12)


def test_kept_bars_coloured_removed_grey() -> None:
    w = explore(Z, top_k=2)
    bars = w.figure.axes[0].containers[0]
    colours = [to_rgba(b.get_facecolor()) for b in bars]
    kept = {c for c, on in zip(colours, w.kept, strict=True) if on}
    removed = {c for c, on in zip(colours, w.kept, strict=True) if not on}
    assert len(kept) == 1
    assert len(removed) == 1
    (grey,) = removed
    assert grey[0] == grey[1] == grey[2]
    assert kept != removed
    for b in w.figure.axes[0].containers[1]:
        assert to_rgba(b.get_facecolor()) == grey


def test_large_vocabulary_shows_the_60_highest_logits() -> None:
    rng = np.random.default_rng(7)
    z = rng.normal(size=200)
    z[[3, 150]] = 10.0  # a tie at the top: shown in index order
    names = [f"tok{i}" for i in range(200)]
    w = explore(z, names, temperature=0.9, top_p=0.95)
    order = sorted(range(200), key=lambda i: (-z[i], i))[:60]
    np.testing.assert_array_equal(w.shown, order)
    (ax,) = w.figure.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == [names[i] for i in order]
    assert "60" in ax.get_title()
    assert "200" in ax.get_title()
    assert "most likely first" in ax.get_title()
    assert len(ax.containers[0]) == 60
    assert w.probabilities.shape == (200,)
    assert w.top_k.max == 200
    check_consistent(w, z, 0.9, 0, 0.95, 0.0)
    w.top_k.value = 80  # some kept tokens are beyond the 60 drawn
    check_consistent(w, z, 0.9, 80, 0.95, 0.0)


def test_dollar_in_a_label_draws() -> None:
    w = explore([1.0, 0.0], labels=["$", "a$b"])
    w.temperature.value = 0.5
    assert bytes(w.image.value).startswith(PNG)


# -- the widget side ---------------------------------------------------------


def test_image_is_rerendered_on_change() -> None:
    w = explore(Z, NAMES)
    before = bytes(w.image.value)
    assert before.startswith(PNG)
    w.temperature.value = 0.2
    after = bytes(w.image.value)
    assert after.startswith(PNG)
    assert after != before


def test_displays_as_a_widget() -> None:
    w = explore(PETS)
    bundle = w._repr_mimebundle_()
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == w.widget.model_id
    assert hasattr(w, "_ipython_display_")
    assert "TemperatureExplorer(V=3" in repr(w)


def test_out_of_range_values_set_from_code_are_clamped() -> None:
    w = explore(PETS)
    w.temperature.value = 7.0
    assert w.temperature.value == 5.0
    check_consistent(w, PETS, 5.0, 0, 1.0, 0.0)


def test_hold_recomputes_once_on_exit() -> None:
    w = explore(Z)
    before = w.probabilities.copy()
    with w.hold():
        set_sliders(w, 0.5, 2, 0.8, 0.1)
        np.testing.assert_array_equal(w.probabilities, before)
    check_consistent(w, Z, 0.5, 2, 0.8, 0.1)


def test_results_are_read_only() -> None:
    w = explore(PETS)
    with pytest.raises(ValueError, match="read-only"):
        w.probabilities[0] = 1.0
    w.stats["entropy"] = -1.0  # a copy: the widget's own numbers are unchanged
    assert w.stats["entropy"] == pytest.approx(sp_entropy(sp_softmax(PETS)), rel=1e-12)


def test_close_stops_updates() -> None:
    w = explore(PETS)
    w.close()
    before = w.probabilities.copy()
    w.temperature.value = 0.1
    np.testing.assert_array_equal(w.probabilities, before)


def test_importing_the_module_loads_no_widget_or_plot_library() -> None:
    code = (
        "import sys, thermoscope.widgets; "
        "heavy = [m for m in ('ipywidgets', 'matplotlib', 'IPython', 'torch') "
        "if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- properties --------------------------------------------------------------


@settings(max_examples=30)
@given(
    z=st.lists(st.floats(-8.0, 8.0), min_size=2, max_size=12).map(np.array),
    t=st.floats(0.0, 5.0),
    k=st.integers(0, 12),
    p=st.floats(0.01, 1.0),
    m=st.floats(0.0, 1.0),
)
def test_bars_are_the_sampling_distribution(
    z: np.ndarray, t: float, k: int, p: float, m: float
) -> None:
    k = min(k, z.size)
    w = explore(z, temperature=t, top_k=k, top_p=p, min_p=m)
    heights, removed = drawn(w)
    assert heights.sum() == pytest.approx(1.0, abs=1e-9)
    assert np.all(heights >= 0)
    np.testing.assert_array_equal(heights[~w.kept], 0.0)
    np.testing.assert_array_equal(removed[w.kept], 0.0)
    assert w.stats["kept_count"] >= 1
    assert 0.0 < w.stats["nucleus_mass"] <= 1.0 + 1e-12
    np.testing.assert_allclose(heights, reference(z, t, k, p, m), rtol=1e-12, atol=1e-15)
    w.close()


# -- bad input ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("logits", "kind", "message"),
    [
        ([1.0, np.nan], ValueError, "`logits` must not contain NaN"),
        ([-np.inf, -np.inf], ValueError, "`logits` must keep at least one finite entry"),
        ([1.0, np.inf], ValueError, "`logits` must be finite or -inf"),
        ([], ValueError, "`logits` must not be empty"),
        ([[1.0, 2.0], [3.0, 4.0]], ValueError, r"`logits` must be one row of shape \(V,\)"),
        (3.0, ValueError, "`logits` must have at least 1 dimension"),
        (["a", "b"], TypeError, "`logits` must be a numeric"),
    ],
)
def test_bad_logits(logits: Any, kind: type[Exception], message: str) -> None:
    with pytest.raises(kind, match=message):
        explore(logits)


@pytest.mark.parametrize(
    ("labels", "kind", "message"),
    [
        (["cat", "dog"], ValueError, "`labels` must be a sequence of 3 names.*got 2"),
        (["a", "b", "c", "d"], ValueError, "`labels` must be a sequence of 3 names.*got 4"),
        ("abc", TypeError, "`labels` must be a sequence of 3 names.*got str"),
        (3, TypeError, "`labels` must be a sequence of 3 names.*got int"),
    ],
)
def test_bad_labels(labels: Any, kind: type[Exception], message: str) -> None:
    with pytest.raises(kind, match=message):
        explore(PETS, labels)


@pytest.mark.parametrize(
    ("options", "kind", "message"),
    [
        ({"temperature": 7.0}, ValueError, r"`temperature` must be a number in \[0, 5\]"),
        ({"temperature": -0.5}, ValueError, r"`temperature` must be a number in \[0, 5\]"),
        ({"temperature": np.nan}, ValueError, "`temperature` must be a number"),
        ({"temperature": "hot"}, TypeError, "`temperature` must be a number"),
        ({"top_k": 4}, ValueError, r"`top_k` must be an integer in \[0, 3\]"),
        ({"top_k": -1}, ValueError, r"`top_k` must be an integer in \[0, 3\]"),
        ({"top_k": 1.5}, TypeError, "`top_k` must be an integer"),
        ({"top_k": True}, TypeError, "`top_k` must be an integer"),
        ({"top_p": 0.0}, ValueError, r"`top_p` must be a number in \[0.01, 1\]"),
        ({"top_p": 1.5}, ValueError, r"`top_p` must be a number in \[0.01, 1\]"),
        ({"min_p": -0.1}, ValueError, r"`min_p` must be a number in \[0, 1\]"),
        ({"min_p": None}, TypeError, "`min_p` must be a number"),
    ],
)
def test_bad_start_values(options: dict[str, Any], kind: type[Exception], message: str) -> None:
    with pytest.raises(kind, match=message):
        explore(PETS, **options)


# -- the model mode: explore_prompt ----------------------------------------------------

PROMPT = "import os\nimport"


@pytest.fixture(scope="module")
def lm() -> tuple[Any, Any]:
    pytest.importorskip("transformers")
    from thermoscope.generation import load_model

    return load_model()


def _model_logits(lm: tuple[Any, Any], prompt: str) -> np.ndarray:
    # Independent of next_token_logits: the full forward pass, last position.
    import torch

    model, tokenizer = lm
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(ids).logits[0, -1].double().numpy()


def test_prompt_explorer_shows_the_models_next_token_distribution(lm: tuple[Any, Any]) -> None:
    from thermoscope.widgets import explore_prompt

    w = explore_prompt(PROMPT, temperature=0.7, top_p=0.9)
    z = _model_logits(lm, PROMPT)
    expected = Sampler.from_options(temperature=0.7, top_p=0.9).probs(z)
    np.testing.assert_allclose(w.explorer.probabilities, expected, rtol=1e-12, atol=1e-15)
    _, tokenizer = lm
    top = int(np.argmax(z))
    assert w.explorer.labels[top] == tokenizer.decode([top])
    heights = [bar.get_height() for bar in w.explorer.figure.axes[0].containers[0]]
    np.testing.assert_allclose(heights, expected[w.explorer.shown], rtol=1e-12)


def test_prompt_explorer_refresh_follows_the_prompt_box_and_keeps_the_sliders(
    lm: tuple[Any, Any],
) -> None:
    from thermoscope.widgets import explore_prompt

    w = explore_prompt(PROMPT)
    w.explorer.top_k.value = 3
    w.explorer.temperature.value = 0.5
    old = w.explorer
    w.prompt.value = "def parse(self"
    w.next_button.click()  # as a user's click does
    assert w.explorer is not old
    assert w.explorer.widget in w.widget.children
    assert old.widget not in w.widget.children
    assert (w.explorer.top_k.value, w.explorer.temperature.value) == (3, 0.5)
    z = _model_logits(lm, "def parse(self")
    expected = Sampler.from_options(temperature=0.5, top_k=3).probs(z)
    np.testing.assert_allclose(w.explorer.probabilities, expected, rtol=1e-12, atol=1e-15)


def test_prompt_explorer_samples_what_generate_at_temperatures_samples(
    lm: tuple[Any, Any],
) -> None:
    from thermoscope.generation import generate_at_temperatures
    from thermoscope.widgets import explore_prompt

    w = explore_prompt(PROMPT, temperature=0.9, top_k=20, max_new_tokens=12, seed=4)
    w.sample_button.click()
    model, tokenizer = lm
    expected = generate_at_temperatures(
        model,
        tokenizer,
        PROMPT,
        [0.9],
        n=1,
        max_new_tokens=12,
        seed=4,
        sampler_options={"top_k": 20},
        progress=False,
    ).samples[0]
    assert w.output.value == PROMPT + expected.text
    w.seed.value = 5
    assert w.sample() != expected.text  # another seed, another continuation at T = 0.9


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"prompt": ""}, ValueError, "`prompt`"),
        ({"prompt": PROMPT, "model": "/no/such/model"}, ValueError, "`model`"),
        ({"prompt": PROMPT, "max_new_tokens": 0}, ValueError, "`max_new_tokens`"),
        ({"prompt": PROMPT, "top_p": 0.0}, ValueError, "`top_p`"),
    ],
)
def test_prompt_explorer_bad_input_names_the_argument(
    lm: tuple[Any, Any], kwargs: dict[str, Any], exc: type[Exception], name: str
) -> None:
    from thermoscope.widgets import explore_prompt

    with pytest.raises(exc) as info:
        explore_prompt(**kwargs)
    assert type(info.value) is exc
    assert name in str(info.value)
