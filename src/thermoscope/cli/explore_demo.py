"""``thermoscope explore-demo``: Boltzmann exploration on a bandit, regret table and plot."""

from __future__ import annotations

import argparse

from thermoscope.cli._args import CommandParser, add_demo_arguments, add_subcommand, prepare_out

EXAMPLES = """\
  thermoscope explore-demo
  thermoscope explore-demo --out results --seed 1
  thermoscope explore-demo --quick
"""


def register(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``explore-demo`` subcommand."""
    p = add_subcommand(
        sub,
        "explore-demo",
        help="Boltzmann exploration on a 10-armed bandit: regret vs temperature and schedules",
        description="Cumulative regret of softmax (Boltzmann) exploration at fixed "
        "temperatures and with annealing schedules, averaged over 2000 seeded runs, against "
        "greedy, epsilon-greedy and UCB1. Prints the table; writes it and a plot under --out.",
        examples=EXAMPLES,
    )
    add_demo_arguments(p, "exploration.txt, exploration_regret.png")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    """Run the exploration demo and return its report."""
    from thermoscope.demos.exploration import exploration_demo

    return exploration_demo(prepare_out(args), seed=args.seed, quick=args.quick)
