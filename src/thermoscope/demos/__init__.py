"""Demos on real data: each returns its report text and writes its figures.

Every demo is a function ``demo(out_dir: Path | None, seed: int, quick: bool) -> str``.
``DEMOS`` lists them in the order ``thermoscope demo`` runs them; each entry
names its module so that running one demo never imports another's backends.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEMOS", "Demo"]


@dataclass(frozen=True)
class Demo:
    """One section of ``thermoscope demo``: a title and where its function lives.

    Examples
    --------
    >>> Demo("Theory", "thermoscope.demos.theory", "theory_demo").load().__name__
    'theory_demo'
    """

    title: str
    module: str
    function: str

    def load(self) -> Callable[[Path | None, int, bool], str]:
        """Import the demo's module and return its function."""
        fn: Callable[[Path | None, int, bool], str] = getattr(
            importlib.import_module(self.module), self.function
        )
        return fn


DEMOS: tuple[Demo, ...] = (
    Demo("Theory and sampling", "thermoscope.demos.theory", "theory_demo"),
    Demo("Calibration by temperature scaling", "thermoscope.demos.calibration", "calibration_demo"),
    Demo("Generation at several temperatures", "thermoscope.demos.generation", "generation_demo"),
    Demo("Knowledge distillation", "thermoscope.demos.distill", "distill_demo"),
    Demo("Attention temperature", "thermoscope.demos.attention", "attention_demo"),
    Demo("Boltzmann exploration", "thermoscope.demos.exploration", "exploration_demo"),
    Demo("Diversity in recommendation", "thermoscope.demos.recommend", "recommend_demo"),
)
