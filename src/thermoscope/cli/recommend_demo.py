"""``thermoscope recommend-demo``: exposure diversity of a Zipf catalogue vs temperature."""

from __future__ import annotations

import argparse

from thermoscope.cli._args import CommandParser, add_demo_arguments, add_subcommand, prepare_out

EXAMPLES = """\
  thermoscope recommend-demo
  thermoscope recommend-demo --out results --seed 1 --quick
"""


def register(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``recommend-demo`` subcommand."""
    p = add_subcommand(
        sub,
        "recommend-demo",
        help="recommendation diversity: coverage, long tail and Gini of exposure vs temperature",
        description="Sample k distinct items per user by temperature (Gumbel-top-k) from a "
        "catalogue with Zipf popularity; print catalogue coverage, long-tail share and the "
        "Gini coefficient of exposure per temperature; write the table and a plot under --out.",
        examples=EXAMPLES,
    )
    add_demo_arguments(p, "recommend.txt, recommend_exposure.png")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    """Run the recommendation demo and return its report."""
    from thermoscope.demos.recommend import recommend_demo

    return recommend_demo(prepare_out(args), seed=args.seed, quick=args.quick)
