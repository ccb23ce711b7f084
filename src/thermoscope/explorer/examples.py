"""Example logit vectors offered on the explorer's page: small next-token distributions.

These are example *inputs* for the page; the task presets of
:mod:`thermoscope.generation` (temperature ranges per task) are another idea.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["EXAMPLES", "Example"]


@dataclass(frozen=True)
class Example:
    """A named logit vector with token labels, as the page's "Example" menu lists it.

    Examples
    --------
    >>> coin = Example("two", "a coin", (0.0, 0.0), ("heads", "tails"))
    >>> coin.labels
    ('heads', 'tails')
    """

    name: str
    description: str
    logits: tuple[float, ...]
    labels: tuple[str, ...]


def _zipf(n: int, s: float) -> Example:
    # Logits of a Zipf law: p_r ~ r^-s, i.e. z_r = -s log r (up to a constant).
    return Example(
        f"zipf-{n}",
        f"{n} tokens whose probabilities fall as rank^-{s:g} (Zipf), like a language model's",
        tuple(round(-s * math.log(r), 6) for r in range(1, n + 1)),
        tuple(f"w{r}" for r in range(1, n + 1)),
    )


#: Examples in the order the page lists them; the first is the page's default.
EXAMPLES: tuple[Example, ...] = (
    Example(
        "cat-dog-fish",
        "'the cat sat on the ___': cat 2.0, dog 1.0, fish 0.5",
        (2.0, 1.0, 0.5),
        ("cat", "dog", "fish"),
    ),
    Example(
        "next-word",
        "'have a nice ___': day 5, space 2.2, furniture 2, experience 4.5, problem 3, "
        "challenge 2.7",
        (5.0, 2.2, 2.0, 4.5, 3.0, 2.7),
        ("day", "space", "furniture", "experience", "problem", "challenge"),
    ),
    Example(
        "ties",
        "Two tokens tied at the top: greedy (T = 0) and top-k keep both",
        (3.0, 3.0, 1.5, 0.0, -1.0),
        ("A", "B", "C", "D", "E"),
    ),
    _zipf(50, 1.1),
)
