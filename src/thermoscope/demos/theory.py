"""The theory tour as a demo section, with its four figures when a folder is given."""

from __future__ import annotations

from pathlib import Path

from thermoscope.demos._output import prepare_out_dir
from thermoscope.tour import theory_tour

__all__ = ["theory_demo"]


def theory_demo(out_dir: Path | None = None, seed: int = 0, quick: bool = False) -> str:
    """The theory tour; with ``out_dir``, also the theory figures for the seeds' logits.

    The figures (`thermoscope.report.theory_figures`) are the softmax at
    several temperatures, entropy and max probability against T, sampled
    frequencies against theory, and E, S and F against T. ``quick`` is
    accepted for a uniform demo signature (the tour is already fast).

    Examples
    --------
    >>> "free energy" in theory_demo(seed=0).lower()
    True
    """
    text = theory_tour(seed=seed)
    out = prepare_out_dir(out_dir)
    if out is None:
        return text
    from thermoscope.report import theory_figures

    written = theory_figures(out, seed=seed)
    return text + "\n\nfigures: " + ", ".join(p.name for p in written)
