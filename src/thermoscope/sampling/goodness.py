"""Do the draws follow the distribution? One chi-square test for every face.

The CLI's ``sample``, the explorer's "Draw samples", the sampling figure and
the theory tour all ask the same question of a sampler: do the counts of
``n`` draws match its probabilities, and did any draw land on a token the
sampler removed? This module answers it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["GoodnessOfFit", "goodness_of_fit"]


@dataclass(frozen=True)
class GoodnessOfFit:
    """The verdict of :func:`goodness_of_fit`.

    Attributes
    ----------
    p_value : float or None
        Pearson chi-square p-value over the possible tokens (probability > 0);
        ``None`` when fewer than two tokens are possible (nothing to test).
    statistic : float or None
        The chi-square statistic, ``None`` with ``p_value``.
    removed_draws : int
        Draws of tokens of probability 0: any is a bug, never chance.
    n : int
        Total number of draws.

    Examples
    --------
    >>> fit = goodness_of_fit([10, 0, 1], [1.0, 0.0, 0.0])
    >>> fit.removed_draws, fit.n, fit.p_value is None
    (1, 11, True)
    """

    p_value: float | None
    statistic: float | None
    removed_draws: int
    n: int

    def describe(self) -> str:
        """One line for people: the p-value, or what went wrong.

        Examples
        --------
        >>> goodness_of_fit([48, 52, 0], [0.5, 0.5, 0.0]).describe()
        'chi-square p = 0.689'
        """
        if self.removed_draws:
            return f"{self.removed_draws} draws of removed tokens"
        if self.p_value is None:
            return "one possible token: nothing to test"
        return f"chi-square p = {self.p_value:.3g}"


def goodness_of_fit(counts: Any, probs: Any) -> GoodnessOfFit:
    """Chi-square goodness of fit of token ``counts`` against ``probs``.

    Tokens of probability 0 are left out of the test and counted apart
    (``removed_draws``); the expected counts are ``probs`` renormalised over
    the possible tokens, times the number of draws among them.

    Parameters
    ----------
    counts : array_like of int, shape (V,)
        How often each token was drawn.
    probs : array_like of float, shape (V,)
        The sampling distribution.

    Returns
    -------
    GoodnessOfFit

    Examples
    --------
    >>> fit = goodness_of_fit([48, 52], [0.5, 0.5])
    >>> round(fit.p_value, 4), fit.removed_draws
    (0.6892, 0)
    >>> goodness_of_fit([10, 0], [1.0, 0.0]).p_value is None
    True
    """
    c = np.asarray(counts, dtype=np.float64).reshape(-1)
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    if c.shape != p.shape:
        raise ValueError(
            f"`counts` must have the shape of `probs`, {p.shape}, got shape {c.shape}."
        )
    possible = p > 0
    removed = int(c[~possible].sum())
    n = int(c.sum())
    if possible.sum() < 2 or c[possible].sum() == 0:
        return GoodnessOfFit(p_value=None, statistic=None, removed_draws=removed, n=n)
    from scipy.stats import chisquare  # scipy.stats loads only when a test is run

    expected = p[possible] / p[possible].sum() * c[possible].sum()
    result = chisquare(c[possible], expected)
    return GoodnessOfFit(
        p_value=float(result.pvalue),
        statistic=float(result.statistic),
        removed_draws=removed,
        n=n,
    )
