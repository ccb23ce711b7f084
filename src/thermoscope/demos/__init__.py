"""Every demo, on real or seeded data: each returns its report text and writes its figures.

Every demo is a function ``demo(out_dir=None, *, seed=0, quick=False) -> str``
(`DemoRunner`). `DEMOS` maps each demo's name to its entry, in the order
``thermoscope demo`` runs them; an entry names its module, so that running
one demo never imports another's backends (torch, scikit-learn, transformers).

Examples
--------
>>> list(DEMOS)
['theory', 'calibration', 'generation', 'distill', 'attention', 'bandit', 'recommend',
 'contrastive', 'gumbel']
>>> DEMOS["bandit"].reproduce(seed=3, quick=True)
'thermoscope demo bandit --seed 3 --quick'
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

__all__ = ["DEMOS", "Demo", "DemoRunner"]


class DemoRunner(Protocol):
    """The signature every demo function has."""

    def __call__(
        self, out_dir: Path | None = None, *, seed: int = 0, quick: bool = False
    ) -> str: ...  # pragma: no cover - protocol


@dataclass(frozen=True)
class Demo:
    """One demo: its name on the command line, a title, a one-line summary, where it lives.

    Examples
    --------
    >>> demo = DEMOS["theory"]
    >>> demo.load().__name__, demo.reproduce(seed=0, quick=False)
    ('theory_demo', 'thermoscope demo theory --seed 0')
    """

    name: str
    title: str
    summary: str
    module: str
    function: str

    def reproduce(self, *, seed: int, quick: bool) -> str:
        """The shell command that reruns this demo alone with the run's seed and ``--quick``."""
        return f"thermoscope demo {self.name} --seed {seed}" + (" --quick" if quick else "")

    def load(self) -> DemoRunner:
        """Import the demo's module and return its function."""
        fn: DemoRunner = getattr(importlib.import_module(self.module), self.function)
        return fn


def _demo(name: str, title: str, summary: str) -> tuple[str, Demo]:
    return name, Demo(name, title, summary, f"thermoscope.demos.{name}", f"{name}_demo")


DEMOS: Mapping[str, Demo] = MappingProxyType(
    dict(
        [
            _demo(
                "theory",
                "Theory and sampling",
                "limits, entropy, free energy, symmetries, the seeds' examples, sampling vs theory",
            ),
            _demo(
                "calibration",
                "Calibration by temperature scaling",
                "an overconfident classifier on scikit-learn digits, before and after T",
            ),
            _demo(
                "generation",
                "Generation at several temperatures",
                "the embedded language model continues 'def parse(' at T = 0.2, 0.7, 1.2",
            ),
            _demo(
                "distill",
                "Knowledge distillation",
                "a teacher, a tiny student, hard labels vs KD at T = 1, 2, 4, 8 (digits)",
            ),
            _demo(
                "attention",
                "Attention temperature",
                "attention entropy vs T = r * sqrt(d) for several head sizes",
            ),
            _demo(
                "bandit",
                "Boltzmann exploration",
                "regret of softmax exploration on a 10-armed bandit vs epsilon-greedy, UCB1",
            ),
            _demo(
                "recommend",
                "Diversity in recommendation",
                "coverage, long tail and Gini of exposure vs T on a Zipf catalogue",
            ),
            _demo(
                "contrastive",
                "Contrastive learning (NT-Xent)",
                "probe accuracy, alignment, uniformity vs T and a learnable T (digits)",
            ),
            _demo(
                "gumbel",
                "Gumbel-softmax gradients",
                "bias and variance of the relaxed gradient vs T; annealing vs fixed T",
            ),
        ]
    )
)
