"""ExplorerLimits: every cap is a single integer >= 1, refused in the library's one wording."""

from __future__ import annotations

import dataclasses

import pytest

from thermoscope.explorer import ExplorerLimits

CAPS = [f.name for f in dataclasses.fields(ExplorerLimits)]


@pytest.mark.parametrize("name", CAPS)
@pytest.mark.parametrize("value", [0, -3])
def test_a_cap_below_one_is_a_value_error_naming_it(name: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"`{name}` must be an integer >= 1"):
        ExplorerLimits(**{name: value})


@pytest.mark.parametrize("name", CAPS)
@pytest.mark.parametrize("value", [True, "many", None, 2.5, [1, 2]])
def test_a_cap_of_the_wrong_kind_is_a_type_error_naming_it(name: str, value: object) -> None:
    with pytest.raises(TypeError, match=f"`{name}` must be"):
        ExplorerLimits(**{name: value})


def test_a_whole_float_cap_is_stored_as_an_int() -> None:
    limits = ExplorerLimits(max_new_tokens=16.0)  # type: ignore[arg-type]
    assert limits.max_new_tokens == 16
    assert type(limits.max_new_tokens) is int
