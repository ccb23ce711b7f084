"""Plain-text tables for the terminal: aligned columns, no dependencies."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["format_table", "format_temperature"]


def format_temperature(t: float) -> str:
    """A temperature as it is printed: ``inf`` or the shortest ``g`` form.

    Examples
    --------
    >>> format_temperature(float("inf")), format_temperature(0.5), format_temperature(2.0)
    ('inf', '0.5', '2')
    """
    return "inf" if math.isinf(t) else f"{t:g}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render rows as an aligned text table; numbers right-aligned, text left-aligned.

    Floats are shown with 4 significant decimals unless already formatted as
    strings by the caller.

    Examples
    --------
    >>> print(format_table(["token", "p"], [["day", 0.512], ["space", 0.03114]]))
    token       p
    -----  ------
    day    0.5120
    space  0.0311
    """
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], (int, float)) for row in rows) if rows else False
        for i in range(len(headers))
    ]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells)
    return "\n".join(out)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
