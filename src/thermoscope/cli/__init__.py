"""The ``thermoscope`` command line.

Every command is a module of this package with a ``register(subparsers)``
function: a thin shell over the library that parses, calls and prints. Bad
input of any kind becomes one line on stderr and exit status 2, never a
traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from thermoscope import __version__
from thermoscope.cli import (
    calibrate,
    calibrate_lm,
    demo,
    entropy_target,
    explore,
    generate,
    next_token,
    presets,
    sample,
    softmax,
)
from thermoscope.cli._args import CommandParser

__all__ = ["build_parser", "main"]

#: The subcommands, in the order ``thermoscope --help`` lists them.
COMMANDS = (
    softmax,
    sample,
    entropy_target,
    calibrate,
    calibrate_lm,
    generate,
    next_token,
    presets,
    demo,
    explore,
)

#: The old ``*-demo`` commands and the demo each now is (``thermoscope demo NAME``).
#: They keep working for one release, with a note on stderr; the next release drops them.
ALIASES = {
    "calibrate-demo": "calibration",
    "distill-demo": "distill",
    "attention-demo": "attention",
    "explore-demo": "bandit",
    "recommend-demo": "recommend",
}

_EPILOG = """\
examples:
  thermoscope softmax --logits 5,2.2,2,4.5,3,2.7 -t 0.1 0.5 1 2 5
  thermoscope sample --logits 5,2.2,2,4.5,3,2.7 -t 0.7 --top-k 3 -n 10000 --seed 0
  thermoscope entropy-target --logits 5,2.2,2,4.5,3,2.7 --entropy 1.0
  thermoscope demo
  thermoscope demo calibration --quick
  thermoscope explore

The old demo commands (calibrate-demo, distill-demo, attention-demo, explore-demo,
recommend-demo) still run, as `thermoscope demo NAME`, until the next release.

Run `thermoscope COMMAND --help` for each command's options.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``thermoscope`` command (for docs and tests).

    Examples
    --------
    >>> build_parser().parse_args(["softmax", "--logits", "1,2", "-t", "0.5"]).temperature
    [0.5]
    """
    parser = CommandParser(
        prog="thermoscope",
        description="Compute, sample, fit and see temperature: the T in softmax(z / T).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"thermoscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for command in COMMANDS:
        command.register(sub)
    return parser


def _glue_logits(argv: list[str]) -> list[str]:
    """Join ``--logits VALUE`` into ``--logits=VALUE``.

    argparse takes a value such as ``-1,2`` or ``-inf,0`` for an option, so
    negative logits would need ``--logits=...``; gluing them here lets users
    type what they mean.
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--logits" and i + 1 < len(argv):
            out.append(f"--logits={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _resolve_alias(argv: list[str]) -> list[str]:
    """Rewrite an old ``*-demo`` command as ``demo NAME``, saying so on stderr."""
    if not argv or argv[0] not in ALIASES:
        return argv
    name = ALIASES[argv[0]]
    print(
        f"`thermoscope {argv[0]}` is now `thermoscope demo {name}`; "
        "the old name goes in the next release",
        file=sys.stderr,
    )
    return ["demo", name, *argv[1:]]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``thermoscope`` command line; return the exit status.

    Examples
    --------
    >>> main(["entropy-target", "--logits", "1,1", "--entropy", "0.6931471805599453"])
    temperature 0 gives entropy 0.693147 nats (target 0.693147 nats)
    0
    """
    given = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in given if not a.startswith("-")), None)
    try:
        parser = build_parser()
        args = parser.parse_args(_glue_logits(_resolve_alias(given)))
        if args.command is None:
            parser.print_help()
            return 2
        command = args.command
        output: Any = args.run(args)
        print(output, flush=True)
    except KeyboardInterrupt:
        # Ctrl-C: files are written atomically, so none is left half written.
        print(f"thermoscope {command or ''}: interrupted".replace(" :", ":"), file=sys.stderr)
        return 130
    except (ValueError, TypeError) as exc:
        print(f"thermoscope {command}: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print(
            f"thermoscope {command}: error: out of memory; ask for less (fewer draws, rows "
            "or bins)",
            file=sys.stderr,
        )
        return 1
    except BrokenPipeError:
        # The reader went away (`| head`): not an error of ours; silence the final flush.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - closed by the interpreter
        return 141
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        print(f"thermoscope {command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    return 0
