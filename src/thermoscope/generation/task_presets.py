"""Task presets: a sensible temperature range and sampler settings per kind of task.

The ranges are the usual practice for instruction-tuned LLMs (low for tasks
with one right answer, high for open-ended ones); the suggested settings
pick a default temperature inside the range and a truncation that suits it:
top-p at low and moderate temperatures, min-p at high ones, where it keeps
text coherent while the temperature spreads the mass (Nguyen et al., 2024).
They are starting points to tune, not measured optima.

Examples
--------
>>> get_preset("code").temperature_range
(0.2, 0.5)
>>> get_preset("code").sampler_options()
{'temperature': 0.3, 'top_p': 0.95}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["TASK_PRESETS", "TaskPreset", "get_preset", "presets_table"]


@dataclass(frozen=True)
class TaskPreset:
    """One task's temperature range and suggested sampler settings.

    Attributes
    ----------
    name : str
        Command-line name (``--preset NAME``).
    task : str
        Human-readable task.
    low, high : float
        The recommended temperature range.
    temperature : float
        The suggested default, inside ``[low, high]``.
    top_p, min_p : float or None
        Suggested truncation (``None``: not used).
    why : str
        One line on the choice.

    Examples
    --------
    >>> TaskPreset("x", "X", 0.2, 0.6, 0.4, top_p=0.9).temperatures()
    (0.2, 0.4, 0.6)
    """

    name: str
    task: str
    low: float
    high: float
    temperature: float
    top_p: float | None = None
    min_p: float | None = None
    why: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.temperature <= self.high:
            raise ValueError(
                f"`temperature` must lie in [low, high] = [{self.low}, {self.high}], "
                f"got {self.temperature}."
            )

    @property
    def temperature_range(self) -> tuple[float, float]:
        """``(low, high)``.

        Examples
        --------
        >>> get_preset("code").temperature_range
        (0.2, 0.5)
        """
        return (self.low, self.high)

    def temperatures(self) -> tuple[float, ...]:
        """The range's ends and the default: what ``generate --preset`` compares.

        Examples
        --------
        >>> get_preset("dialogue").temperatures()
        (0.7, 0.8, 1.0)
        """
        return (self.low, self.temperature, self.high)

    def sampler_options(self) -> dict[str, Any]:
        """Keyword arguments for ``Sampler.from_options`` (unused settings left out).

        Examples
        --------
        >>> get_preset("creative-writing").sampler_options()
        {'temperature': 1.1, 'min_p': 0.05}
        """
        opts: dict[str, Any] = {"temperature": self.temperature}
        if self.top_p is not None:
            opts["top_p"] = self.top_p
        if self.min_p is not None:
            opts["min_p"] = self.min_p
        return opts


#: The presets, in the order ``thermoscope presets`` lists them.
TASK_PRESETS: tuple[TaskPreset, ...] = (
    TaskPreset("translation", "translation", 0.3, 0.7, 0.5, top_p=0.9,
               why="meaning is fixed, wording may vary a little"),
    TaskPreset("code", "code", 0.2, 0.5, 0.3, top_p=0.95,
               why="one correct program; low T keeps syntax and names consistent"),
    TaskPreset("summarisation", "summarisation", 0.5, 0.8, 0.6, top_p=0.9,
               why="faithful content, some freedom of phrasing"),
    TaskPreset("question-answering", "question answering", 0.2, 0.7, 0.4, top_p=0.9,
               why="factual answers: stay near the most likely tokens"),
    TaskPreset("dialogue", "dialogue", 0.7, 1.0, 0.8, top_p=0.95,
               why="natural, varied replies without drifting"),
    TaskPreset("creative-writing", "creative writing", 0.8, 1.5, 1.1, min_p=0.05,
               why="high T for variety; min-p cuts the incoherent tail"),
    TaskPreset("story-brainstorming", "story brainstorming", 1.0, 2.0, 1.4, min_p=0.1,
               why="many different ideas; a stronger min-p keeps them readable"),
)  # fmt: skip

_ALIASES = {"summarization": "summarisation", "qa": "question-answering"}


def get_preset(name: str) -> TaskPreset:
    """The preset called ``name`` (case, ``_`` and spaces are forgiven).

    Examples
    --------
    >>> get_preset("Creative writing").min_p
    0.05
    >>> get_preset("poetry")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: `preset` must be one of translation, code, ..., got 'poetry'.
    """
    if not isinstance(name, str):
        raise TypeError(f"`preset` must be a preset name, got {type(name).__name__}.")
    key = "-".join(name.strip().lower().replace("_", " ").split())
    key = _ALIASES.get(key, key)
    for preset in TASK_PRESETS:
        if preset.name == key:
            return preset
    names = ", ".join(p.name for p in TASK_PRESETS)
    raise ValueError(f"`preset` must be one of {names}, got {name!r}.")


def presets_table() -> str:
    """The presets as a text table.

    Examples
    --------
    >>> print(presets_table().splitlines()[3])  # doctest: +ELLIPSIS
    code                 code                 0.2-0.5  0.3  0.95   -      one correct program; ...
    """
    from thermoscope._tables import format_table

    rows = [
        [
            p.name,
            p.task,
            f"{p.low:g}-{p.high:g}",
            f"{p.temperature:g}",
            "-" if p.top_p is None else f"{p.top_p:g}",
            "-" if p.min_p is None else f"{p.min_p:g}",
            p.why,
        ]
        for p in TASK_PRESETS
    ]
    return format_table(["preset", "task", "T range", "T", "top_p", "min_p", "why"], rows)
