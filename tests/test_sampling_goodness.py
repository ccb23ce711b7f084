"""goodness_of_fit: the one chi-square test of draws, against scipy computed here by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from thermoscope.sampling import goodness_of_fit


def test_p_value_equals_pearson_chi_square_over_possible_tokens():
    counts = np.array([30, 50, 20, 0])
    probs = np.array([0.25, 0.5, 0.25, 0.0])
    fit = goodness_of_fit(counts, probs)
    expected = np.array([25.0, 50.0, 25.0])
    statistic = float(((counts[:3] - expected) ** 2 / expected).sum())
    assert fit.statistic == pytest.approx(statistic)
    assert fit.p_value == pytest.approx(float(stats.chi2.sf(statistic, df=2)))
    assert (fit.removed_draws, fit.n) == (0, 100)


def test_draws_of_removed_tokens_are_counted_and_described():
    fit = goodness_of_fit([40, 55, 5], [0.4, 0.6, 0.0])
    assert fit.removed_draws == 5
    assert fit.describe() == "5 draws of removed tokens"


def test_one_possible_token_has_nothing_to_test():
    fit = goodness_of_fit([10, 0], [1.0, 0.0])
    assert fit.p_value is None
    assert fit.statistic is None
    assert fit.describe() == "one possible token: nothing to test"


def test_mismatched_shapes_name_counts():
    with pytest.raises(ValueError, match=r"`counts` must have the shape of `probs`"):
        goodness_of_fit([1, 2, 3], [0.5, 0.5])
