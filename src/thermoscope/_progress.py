"""Progress bars: tqdm on stderr when it is installed and wanted, a silent stand-in otherwise.

tqdm is an optional extra (``thermoscope[progress]``); without it every long
computation gives the same results, just without a bar. ``disable=None``
makes tqdm show the bar only when stderr is a terminal, so logs and pipes
stay clean.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, Protocol, TypeVar

__all__ = ["Bar", "progress_bar", "progress_iter"]

_T = TypeVar("_T")


class Bar(Protocol):
    """The part of tqdm's interface that thermoscope uses."""

    def update(self, n: int = 1) -> Any: ...  # pragma: no cover - protocol

    def set_description(self, desc: str) -> Any: ...  # pragma: no cover - protocol

    def close(self) -> Any: ...  # pragma: no cover - protocol


class _NoBar:
    """Stands in for a tqdm bar when tqdm is not installed or progress is off."""

    def update(self, n: int = 1) -> None:
        """Ignore progress."""

    def set_description(self, desc: str) -> None:
        """Ignore the stage name."""

    def close(self) -> None:
        """Nothing to close."""


def _tqdm() -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is an optional extra: same results, no bar
        return None
    return tqdm


def progress_bar(total: int | None, *, desc: str, unit: str = "it", enabled: bool = True) -> Bar:
    """A bar on stderr advanced by ``update(n)``; closes with ``close()``.

    Examples
    --------
    >>> bar = progress_bar(3, desc="demo", enabled=False)
    >>> bar.update(3)
    >>> bar.close()
    """
    tqdm = _tqdm() if enabled else None
    if tqdm is None:
        return _NoBar()
    bar: Bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, disable=None)
    return bar


def progress_iter(
    items: Iterable[_T],
    *,
    desc: str,
    unit: str = "it",
    total: int | None = None,
    enabled: bool = True,
) -> Iterator[_T]:
    """Iterate over ``items`` with a bar on stderr (or without one).

    Examples
    --------
    >>> list(progress_iter(range(3), desc="demo", enabled=False))
    [0, 1, 2]
    """
    tqdm = _tqdm() if enabled else None
    if tqdm is None:
        yield from items
        return
    yield from tqdm(
        items, desc=desc, unit=unit, total=total, file=sys.stderr, leave=False, disable=None
    )
