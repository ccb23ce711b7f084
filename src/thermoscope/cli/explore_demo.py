"""``thermoscope explore-demo``: Boltzmann exploration on a bandit, regret table and plot."""

from __future__ import annotations

import argparse
import pathlib

from thermoscope.cli._args import CommandParser, add_subcommand

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


def add_demo_arguments(p: argparse.ArgumentParser, files: str) -> None:
    """``--out``, ``--seed`` and ``--quick``, shared by the demo commands."""
    p.add_argument(
        "--out",
        type=pathlib.Path,
        default=pathlib.Path("out"),
        help=f"folder for the outputs ({files}); default: out",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed >= 0 (default 0)")
    p.add_argument("--quick", action="store_true", help="a small, fast run (a smoke test)")


def prepare_out(args: argparse.Namespace) -> pathlib.Path:
    """Check ``--seed`` and create ``--out``, turning failures into one-line errors."""
    if args.seed < 0:
        raise ValueError(f"`--seed` must be an integer >= 0, got {args.seed}.")
    out: pathlib.Path = args.out
    if out.exists() and not out.is_dir():
        raise ValueError(f"`--out` must be a folder, got an existing file {str(out)!r}.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"`--out` must be a folder that can be created, got {exc}.") from None
    return out


def run(args: argparse.Namespace) -> str:
    """Run the exploration demo and return its report."""
    from thermoscope.demos.exploration import exploration_demo

    return exploration_demo(prepare_out(args), seed=args.seed, quick=args.quick)
