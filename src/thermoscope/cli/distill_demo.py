"""``thermoscope distill-demo``: a teacher, a tiny student and the temperature of soft targets."""

from __future__ import annotations

import argparse

from thermoscope.cli._args import CommandParser, add_demo_arguments, add_subcommand, prepare_out

EXAMPLES = """\
  thermoscope distill-demo
  thermoscope distill-demo --out out --seed 1
  thermoscope distill-demo --quick
"""


def register(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``distill-demo`` subcommand."""
    p = add_subcommand(
        sub,
        "distill-demo",
        help="knowledge distillation on scikit-learn digits: hard labels vs KD at T = 1, 2, 4, 8",
        description="Train a teacher MLP and a tiny student on scikit-learn's digits (bundled, "
        "nothing downloaded), the student on hard labels and with the distillation loss at "
        "T = 1, 2, 4, 8; print test accuracy and NLL (mean ± sd over seeds) and write the "
        "table and a plot of the teacher's soft targets at several temperatures.",
        examples=EXAMPLES,
    )
    add_demo_arguments(
        p,
        "distill.txt, distill_soft_targets.png",
        quick_help="three seeds, short training (a smoke run)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    """Run the demo and return its report."""
    from thermoscope.demos.distill import distill_demo

    return distill_demo(prepare_out(args), seed=args.seed, quick=args.quick)
