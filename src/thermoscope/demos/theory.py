"""The theory tour as a demo section (text only, no figures)."""

from __future__ import annotations

from pathlib import Path

from thermoscope.tour import theory_tour

__all__ = ["theory_demo"]


def theory_demo(out_dir: Path | None = None, seed: int = 0, quick: bool = False) -> str:
    """The theory tour; ``out_dir`` and ``quick`` are accepted for a uniform demo signature.

    Examples
    --------
    >>> "free energy" in theory_demo(seed=0).lower()
    True
    """
    return theory_tour(seed=seed)
