"""What one temperature / top-k / top-p / min-p setting does to one distribution.

:func:`summarize_sampling` is the computation behind every interactive view
(the web explorer's page mirrors it in JavaScript, the notebook widget calls
it): the tempered distribution, the tokens the truncations keep, the final
sampling distribution and its headline numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from thermoscope._typing import Array
from thermoscope._validation import logit_row
from thermoscope.core import entropy, softmax
from thermoscope.sampling.sampler import Sampler

__all__ = ["SamplingSummary", "summarize_sampling"]


@dataclass(frozen=True, eq=False)
class SamplingSummary:
    """One setting applied to one logit vector (see :func:`summarize_sampling`).

    Attributes
    ----------
    tempered : ndarray, shape (V,)
        ``softmax(z / T)`` before any truncation.
    probabilities : ndarray, shape (V,)
        The sampling distribution: truncated and renormalised.
    kept : ndarray of bool, shape (V,)
        Tokens every step keeps (finite warped logit); at a tiny temperature a
        kept token's probability can still underflow to 0.
    entropy : float
        Entropy of ``probabilities``, in nats.
    nucleus_mass : float
        Mass of the kept tokens under ``tempered``.
    kept_count : int
    max_probability : float

    Examples
    --------
    >>> s = summarize_sampling([2.0, 1.0, 0.5], top_k=1)
    >>> s.kept_count, s.max_probability, s.entropy
    (1, 1.0, 0.0)
    """

    tempered: Array
    probabilities: Array
    kept: Array
    entropy: float
    nucleus_mass: float
    kept_count: int
    max_probability: float


def summarize_sampling(
    logits: Any,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    min_p: float = 0.0,
) -> SamplingSummary:
    """Temper, truncate and renormalise one logit vector; report what was kept.

    Parameters
    ----------
    logits : array_like, shape (V,)
        Finite or ``-inf`` (masked) values.
    temperature : float, default 1.0
        ``>= 0``; 0 is greedy (ties kept), ``inf`` uniform.
    top_k : int, default 0
        0 switches top-k off.
    top_p : float, default 1.0
        In (0, 1]; 1 switches top-p off.
    min_p : float, default 0.0
        In [0, 1]; 0 switches min-p off.

    The chain is :meth:`Sampler.from_options` of these settings (the one home
    of the "off" values), in transformers' order: temperature first.

    Returns
    -------
    SamplingSummary

    Examples
    --------
    >>> s = summarize_sampling([2.0, 1.0, 0.5], temperature=1.0, top_p=0.8)
    >>> s.kept.tolist(), s.kept_count
    ([True, True, False], 2)
    >>> round(s.nucleus_mass, 4), round(float(s.probabilities[0]), 4)
    (0.8598, 0.7311)
    """
    z = logit_row(logits)
    sampler = Sampler.from_options(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p)
    warped = sampler.logits(z)
    # The sampling distribution is the softmax of the warped logits (Sampler.probs),
    # computed here from the one warped copy.
    probs = np.asarray(softmax(warped), dtype=np.float64)
    tempered = np.asarray(softmax(z, temperature), dtype=np.float64)
    # Kept means "survived every cut", even if its probability underflows to 0 at tiny T.
    kept = np.isfinite(warped)
    return SamplingSummary(
        tempered=tempered,
        probabilities=probs,
        kept=kept,
        entropy=float(entropy(probs)),
        nucleus_mass=float(tempered[kept].sum()),
        kept_count=int(kept.sum()),
        max_probability=float(probs.max()),
    )
