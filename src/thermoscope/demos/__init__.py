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
    """One section of ``thermoscope demo``: a title, where its function lives, how to rerun it.

    ``command`` is the shell command that reproduces the section on its own,
    with ``{seed}`` and ``{quick}`` placeholders filled by `reproduce`; the
    report prints it beside the section.

    Examples
    --------
    >>> demo = Demo("Theory", "thermoscope.demos.theory", "theory_demo", "thermoscope demo")
    >>> demo.load().__name__, demo.reproduce(seed=0, quick=False)
    ('theory_demo', 'thermoscope demo')
    >>> DEMOS[1].reproduce(seed=3, quick=True)
    'thermoscope calibrate-demo --seed 3 --quick'
    """

    title: str
    module: str
    function: str
    command: str

    def reproduce(self, seed: int, quick: bool) -> str:
        """The command with the run's seed and ``--quick`` (when it applies) filled in."""
        return self.command.format(seed=seed, quick=" --quick" if quick else "")

    def load(self) -> Callable[[Path | None, int, bool], str]:
        """Import the demo's module and return its function."""
        fn: Callable[[Path | None, int, bool], str] = getattr(
            importlib.import_module(self.module), self.function
        )
        return fn


DEMOS: tuple[Demo, ...] = (
    Demo(
        "Theory and sampling",
        "thermoscope.demos.theory",
        "theory_demo",
        "thermoscope demo --seed {seed}{quick}",
    ),
    Demo(
        "Calibration by temperature scaling",
        "thermoscope.demos.calibration",
        "calibration_demo",
        "thermoscope calibrate-demo --seed {seed}{quick}",
    ),
    Demo(
        "Generation at several temperatures",
        "thermoscope.demos.generation",
        "generation_demo",
        'thermoscope generate --prompt "def parse(" -t 0.2 0.7 1.2 --seed {seed}',
    ),
    Demo(
        "Knowledge distillation",
        "thermoscope.demos.distill",
        "distill_demo",
        "thermoscope distill-demo --seed {seed}{quick}",
    ),
    Demo(
        "Attention temperature",
        "thermoscope.demos.attention",
        "attention_demo",
        "thermoscope attention-demo --seed {seed}{quick}",
    ),
    Demo(
        "Boltzmann exploration",
        "thermoscope.demos.exploration",
        "exploration_demo",
        "thermoscope explore-demo --seed {seed}{quick}",
    ),
    Demo(
        "Diversity in recommendation",
        "thermoscope.demos.recommend",
        "recommend_demo",
        "thermoscope recommend-demo --seed {seed}{quick}",
    ),
)
