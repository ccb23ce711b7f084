"""``thermoscope presets``: temperature ranges and sampler settings per task."""

from __future__ import annotations

import argparse
import json

from thermoscope.cli._args import CommandParser, add_subcommand

EXAMPLES = """\
  thermoscope presets
  thermoscope presets --json
  thermoscope generate --prompt "def parse(" --preset code
"""


def register(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``presets`` subcommand."""
    p = add_subcommand(
        sub,
        "presets",
        help="recommended temperature ranges and sampler settings per task",
        description="Print the task presets (translation, code, summarisation, question "
        "answering, dialogue, creative writing, story brainstorming): the temperature "
        "range, a default temperature and top-p / min-p. `generate --preset NAME` uses one.",
        examples=EXAMPLES,
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    """The presets table (or JSON)."""
    from dataclasses import asdict

    from thermoscope.generation.task_presets import TASK_PRESETS, presets_table

    if args.json:
        return json.dumps({"presets": [asdict(p) for p in TASK_PRESETS]})
    return (
        f"{presets_table()}\n"
        "Starting points, not measured optima: low T where there is one right answer, "
        "high T (with min-p) where variety is the point."
    )
