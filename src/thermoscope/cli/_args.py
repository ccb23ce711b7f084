"""Argument parsing shared by the commands: logits, temperatures, labels, the parser class."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

import numpy as np

__all__ = [
    "CommandParser",
    "add_demo_arguments",
    "add_logits_arguments",
    "add_subcommand",
    "labels_for",
    "parse_logits",
    "parse_temperature",
    "prepare_out",
]


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def add_subcommand(
    sub: argparse._SubParsersAction[CommandParser],
    name: str,
    *,
    help: str,
    description: str,
    examples: str = "",
) -> CommandParser:
    """Add a subcommand whose ``--help`` shows ``examples`` verbatim under its options."""
    return sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=f"examples:\n{examples}" if examples else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def parse_logits(text: str) -> np.ndarray:
    """Comma-separated numbers (``-inf`` allowed) as a float64 array.

    Examples
    --------
    >>> parse_logits("5, 2.2,-inf")
    array([ 5. ,  2.2, -inf])
    """
    values = []
    for item in text.split(","):
        try:
            values.append(float(item.strip()))
        except ValueError:
            raise ValueError(
                f"`--logits` must be comma-separated numbers (e.g. 5,2.2,-inf), got {item!r}."
            ) from None
    return np.array(values, dtype=np.float64)


def parse_temperature(text: str) -> float:
    """An argparse type for temperatures; range checks are the library's."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number >= 0 (0 = greedy, inf = uniform), got {text!r}"
        ) from None


def labels_for(args: argparse.Namespace, size: int) -> list[str]:
    """The ``--labels`` of a command, or token indices when none are given."""
    if args.labels is None:
        return [str(i) for i in range(size)]
    labels = [s.strip() for s in args.labels.split(",")]
    if len(labels) != size:
        raise ValueError(
            f"`--labels` must have one label per logit ({size}), got {len(labels)} labels."
        )
    return labels


def add_logits_arguments(parser: argparse.ArgumentParser) -> None:
    """``--logits``, ``--labels`` and ``--json``, shared by the logits commands."""
    parser.add_argument(
        "--logits",
        required=True,
        help="comma-separated scores, e.g. 5,2.2,2,4.5,3,2.7 (-inf masks a token)",
    )
    parser.add_argument("--labels", help="comma-separated names, one per logit")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def add_demo_arguments(
    p: argparse.ArgumentParser, files: str, quick_help: str = "a small, fast run (a smoke test)"
) -> None:
    """``--out``, ``--seed`` and ``--quick``, shared by the demo commands."""
    p.add_argument(
        "--out",
        type=Path,
        default=Path("out"),
        help=f"folder for the outputs ({files}); default: out",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed >= 0 (default 0)")
    p.add_argument("--quick", action="store_true", help=quick_help)


def prepare_out(args: argparse.Namespace) -> Path:
    """Check ``--seed`` and create ``--out``, turning failures into one-line errors."""
    if args.seed < 0:
        raise ValueError(f"`--seed` must be an integer >= 0, got {args.seed}.")
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise ValueError(f"`--out` must be a folder, got an existing file {str(out)!r}.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"`--out` must be a folder that can be created, got {exc}.") from None
    return out
