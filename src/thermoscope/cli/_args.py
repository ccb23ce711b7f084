"""Argument parsing shared by the commands: logits, temperatures, labels, the parser class."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import NoReturn

import numpy as np

from thermoscope._typing import FloatArray

__all__ = [
    "CommandParser",
    "add_logits_arguments",
    "add_subcommand",
    "integer_in",
    "labels_for",
    "parse_logits",
    "parse_temperature",
]


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        # "argument -n: `-n` must be ..." says the name twice: keep the library's wording.
        message = re.sub(r"^argument [^:]+: (?=`)", "", message)
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


#: Seeds on the command line: the 64-bit seeds every command's draws take.
MAX_SEED = 2**64 - 1


def integer_in(flag: str, low: int, high: int) -> Callable[[str], int]:
    """An argparse type for the integer option ``flag`` in ``[low, high]``.

    Checked while parsing, so a bad value stops the command before any work,
    with the library's wording (``CommandParser`` drops argparse's own prefix).

    Examples
    --------
    >>> integer_in("-n", 1, 10)("7")
    7
    >>> integer_in("-n", 1, 10)("11")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: `-n` must be an integer <= 10, got 11.
    """

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"`{flag}` must be an integer in [{low}, {high}], got {text!r}."
            ) from None
        if value < low:
            raise argparse.ArgumentTypeError(f"`{flag}` must be an integer >= {low}, got {value}.")
        if value > high:
            raise argparse.ArgumentTypeError(f"`{flag}` must be an integer <= {high}, got {value}.")
        return value

    return parse


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
