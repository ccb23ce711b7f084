"""``thermoscope attention-demo``: attention entropy vs temperature for random queries/keys."""

from __future__ import annotations

import argparse

from thermoscope.cli._args import CommandParser, add_demo_arguments, add_subcommand, prepare_out

EXAMPLES = """\
  thermoscope attention-demo
  thermoscope attention-demo --out out --seed 1 --quick
"""


def register(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``attention-demo`` subcommand."""
    p = add_subcommand(
        sub,
        "attention-demo",
        help="attention entropy vs temperature T = r * sqrt(d) for several head sizes",
        description="Mean entropy of softmax(q k^T / T) for random Gaussian queries and keys "
        "at T = r * sqrt(d), for head sizes d = 16, 64, 256, against a closed-form "
        "approximation; write the table and a plot.",
        examples=EXAMPLES,
    )
    add_demo_arguments(
        p, "attention.txt, attention_entropy.png", quick_help="64 queries instead of 512"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    """Run the demo and return its report."""
    from thermoscope.demos.attention import attention_demo

    return attention_demo(prepare_out(args), seed=args.seed, quick=args.quick)
