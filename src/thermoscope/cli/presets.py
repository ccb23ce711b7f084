"""``thermoscope presets``: temperature ranges and sampler settings per task."""

from __future__ import annotations

import argparse

from thermoscope.cli._args import CommandParser, add_subcommand
from thermoscope.cli._json import dumps

EXAMPLES = """\
  thermoscope presets
  thermoscope presets --json
  thermoscope generate --prompt "def parse(" --preset code
  thermoscope sample --logits 5,2.2,2,4.5,3,2.7 --preset llama.cpp --trace
"""


def register(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``presets`` subcommand."""
    p = add_subcommand(
        sub,
        "presets",
        help="temperature ranges per task, and the serving engines' default chains",
        description="Print the task presets (translation, code, summarisation, question "
        "answering, dialogue, creative writing, story brainstorming): the temperature "
        "range, a default temperature and top-p / min-p; `generate --preset NAME` uses one. "
        "Then the engines' default sampler chains (transformers, llama.cpp, vLLM, the "
        "OpenAI API); `sample --preset NAME` reproduces what that engine would sample.",
        examples=EXAMPLES,
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    """The presets table (or JSON)."""
    from dataclasses import asdict

    from thermoscope.generation.task_presets import TASK_PRESETS, presets_table
    from thermoscope.sampling.engines import ENGINE_PRESETS, engines_table

    if args.json:
        engines = [
            {**asdict(p), "options": dict(p.options), "sampler": repr(p.sampler())}
            for p in ENGINE_PRESETS.values()
        ]
        return dumps({"presets": [asdict(p) for p in TASK_PRESETS], "engines": engines})
    return (
        f"{presets_table()}\n"
        "Starting points, not measured optima: low T where there is one right answer, "
        "high T (with min-p) where variety is the point.\n\n"
        "The engines' default sampler chains (`sample --preset NAME`):\n"
        f"{engines_table()}"
    )
