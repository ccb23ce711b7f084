"""The theory demo: the tour's sampling check is the shared goodness of fit; its figures."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from thermoscope.demos.theory import (
    SEED_TOKEN_LOGITS,
    THEORY_FIGURES,
    theory_demo,
    theory_figures,
    theory_tour,
)
from thermoscope.sampling import Sampler, goodness_of_fit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_tour_sampling_section_is_the_shared_goodness_of_fit() -> None:
    text = theory_tour(seed=3)
    z = np.array(SEED_TOKEN_LOGITS)
    sampler = Sampler.from_options(temperature=0.7, top_k=3, top_p=0.9)
    counts = np.bincount(np.asarray(sampler.sample(z, n=100_000, seed=3)), minlength=z.size)
    fit = goodness_of_fit(counts, sampler.probs(z))
    assert fit.p_value is not None
    line = re.search(r"draws of removed tokens: (\d+); chi-square p-value = ([\d.]+)", text)
    assert line is not None
    assert int(line.group(1)) == fit.removed_draws == 0
    assert line.group(2) == f"{fit.p_value:.3f}"


def test_tour_is_reproducible_and_checks_its_seed() -> None:
    assert theory_tour(seed=1) == theory_tour(seed=1)
    with pytest.raises(ValueError, match=r"`seed` must be an integer >= 0, got -1\."):
        theory_tour(seed=-1)
    with pytest.raises(TypeError, match="`seed` must be an integer"):
        theory_demo(seed=0.5)  # type: ignore[arg-type]


def test_theory_figures_draws_the_four_plots(tmp_path: Path) -> None:
    paths = theory_figures(tmp_path / "figs", seed=0)
    assert [p.name for p in paths] == list(THEORY_FIGURES)
    for p in paths:
        assert p.read_bytes().startswith(PNG_SIGNATURE)


def test_theory_demo_names_the_figures_it_wrote(tmp_path: Path) -> None:
    text = theory_demo(tmp_path, seed=0, quick=True)
    assert text.endswith("figures: " + ", ".join(THEORY_FIGURES))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(THEORY_FIGURES)
