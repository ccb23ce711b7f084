"""``thermoscope demo``: the main job, a guided tour with every number computed live."""

from __future__ import annotations

import argparse

from thermoscope.cli._args import CommandParser, add_subcommand


def register(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``demo`` subcommand."""
    p = add_subcommand(
        sub,
        "demo",
        help="the main job: a guided tour of temperature, every number computed live",
        description="Print the theory tour: limits, entropy, free energy, symmetries, "
        "the seeds' worked examples recomputed, and sampling checked against theory.",
        examples="  thermoscope demo\n  thermoscope demo --seed 1\n",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    """The tour's text."""
    from thermoscope.tour import theory_tour

    return theory_tour(seed=args.seed)
