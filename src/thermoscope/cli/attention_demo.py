"""``thermoscope attention-demo``: attention entropy vs temperature for random queries/keys."""

from __future__ import annotations

import argparse
from pathlib import Path

from thermoscope.cli._args import CommandParser, add_subcommand

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
    p.add_argument(
        "--out",
        type=Path,
        default=Path("out"),
        metavar="DIR",
        help="folder for attention.txt and attention_entropy.png (default: out)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the queries and keys (default 0)")
    p.add_argument("--quick", action="store_true", help="64 queries instead of 512")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    """Run the demo and return its report."""
    from thermoscope.demos.attention import attention_demo

    return attention_demo(args.out, seed=args.seed, quick=args.quick)
