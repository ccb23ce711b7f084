"""``thermoscope calibrate-demo``: temperature scaling of a real classifier (digits)."""

from __future__ import annotations

import argparse
import pathlib

from thermoscope.cli._args import CommandParser, add_subcommand


def register(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``calibrate-demo`` subcommand."""
    p = add_subcommand(
        sub,
        "calibrate-demo",
        help="calibrate an overconfident classifier on the digits data, before and after",
        description="Train a deliberately overconfident MLP on scikit-learn's digits, fit a "
        "temperature on a validation split, print ECE, MCE, NLL, Brier and accuracy on the "
        "test split before and after, save reliability diagrams, and show that L2 "
        "regularisation acts like a temperature.",
        examples="  thermoscope calibrate-demo\n  thermoscope calibrate-demo --out out --seed 1\n",
    )
    p.add_argument("--out", default="out", help="folder for the PNG diagrams (default out)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quick", action="store_true", help="fewer models, for a fast check")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    """The demo's report text."""
    from thermoscope.demos.calibration import calibration_demo

    return calibration_demo(pathlib.Path(args.out), seed=args.seed, quick=args.quick)
