"""Argument parsing shared by the commands: logits, temperatures, labels, the parser class."""

from __future__ import annotations

import argparse
from typing import NoReturn

import numpy as np

from thermoscope._typing import FloatArray

__all__ = [
    "CommandParser",
    "add_logits_arguments",
    "add_subcommand",
    "labels_for",
    "parse_logits",
    "parse_temperature",
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


def parse_logits(text: str) -> FloatArray:
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
