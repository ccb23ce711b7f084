"""Task presets: the issue's ranges, suggested settings inside them, lookup and the CLI."""

from __future__ import annotations

import json

import pytest

from thermoscope.cli import presets as presets_cli
from thermoscope.cli._args import CommandParser
from thermoscope.generation.task_presets import (
    TASK_PRESETS,
    TaskPreset,
    get_preset,
    presets_table,
)
from thermoscope.sampling import Sampler

EXPECTED_RANGES = {
    "translation": (0.3, 0.7),
    "code": (0.2, 0.5),
    "summarisation": (0.5, 0.8),
    "question-answering": (0.2, 0.7),
    "dialogue": (0.7, 1.0),
    "creative-writing": (0.8, 1.5),
    "story-brainstorming": (1.0, 2.0),
}


def test_ranges_are_the_issues():
    assert {p.name: p.temperature_range for p in TASK_PRESETS} == EXPECTED_RANGES


@pytest.mark.parametrize("preset", TASK_PRESETS, ids=lambda p: p.name)
def test_suggested_settings_are_valid_and_inside_the_range(preset):
    low, high = preset.temperature_range
    assert low <= preset.temperature <= high
    assert preset.temperatures() == (low, preset.temperature, high)
    sampler = Sampler.from_options(**preset.sampler_options())
    assert sampler.warpers[0].temperature == preset.temperature
    assert preset.top_p is not None or preset.min_p is not None


def test_high_temperature_presets_use_min_p():
    for p in TASK_PRESETS:
        if p.high > 1.0:
            assert p.min_p is not None
            assert p.top_p is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [("code", "code"), ("Creative writing", "creative-writing"), ("QA", "question-answering"),
     ("story_brainstorming", "story-brainstorming"), ("summarization", "summarisation")],
)  # fmt: skip
def test_lookup_forgives_case_spaces_and_spelling(name, expected):
    assert get_preset(name).name == expected


def test_unknown_preset():
    with pytest.raises(ValueError, match=r"`preset` must be one of translation, code, .*'poetry'"):
        get_preset("poetry")
    with pytest.raises(TypeError, match="`preset` must be a preset name"):
        get_preset(3)


def test_inconsistent_preset():
    with pytest.raises(ValueError, match=r"`temperature` must lie in \[low, high\]"):
        TaskPreset("x", "x", 0.2, 0.5, 0.9)


def test_table_lists_every_preset():
    table = presets_table()
    for p in TASK_PRESETS:
        assert p.name in table


def _parser() -> CommandParser:
    p = CommandParser(prog="thermoscope")
    sub = p.add_subparsers(dest="command", parser_class=CommandParser)
    presets_cli.register(sub)
    return p


def test_cli_presets_text_and_json():
    args = _parser().parse_args(["presets"])
    assert "story-brainstorming" in args.run(args)
    args = _parser().parse_args(["presets", "--json"])
    data = json.loads(args.run(args))
    assert [p["name"] for p in data["presets"]] == list(EXPECTED_RANGES)
    assert data["presets"][1]["low"] == 0.2
    assert data["presets"][1]["high"] == 0.5
