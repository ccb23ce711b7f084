"""``thermoscope calibrate-demo``: temperature scaling of a real classifier (digits)."""

from __future__ import annotations

import argparse

from thermoscope.cli._args import CommandParser, add_demo_arguments, add_subcommand, prepare_out


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
    add_demo_arguments(
        p, "calibration_*.png reliability diagrams", quick_help="fewer models, for a fast check"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    """The demo's report text."""
    from thermoscope.demos.calibration import calibration_demo

    return calibration_demo(prepare_out(args), seed=args.seed, quick=args.quick)
