"""Where demos put their results: a checked output folder, a text table and a PNG figure."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from thermoscope._files import write_bytes_atomic, write_text_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["figure_png", "prepare_out_dir", "save_outputs"]


def prepare_out_dir(
    out_dir: str | os.PathLike[str] | None, *, name: str = "out_dir"
) -> Path | None:
    """Create the output folder (``None``: write nothing); a bad path is a ValueError.

    Call it before the expensive work so that a bad folder fails fast.
    ``name`` is the argument the message names (``--out`` on the command line).

    Examples
    --------
    >>> prepare_out_dir(None) is None
    True
    >>> import tempfile, pathlib
    >>> taken = pathlib.Path(tempfile.mkdtemp()) / "taken"
    >>> _ = taken.write_text("x")
    >>> prepare_out_dir(taken, name="--out")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: `--out` must be a folder, got an existing file '...taken'.
    """
    if out_dir is None:
        return None
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"`{name}` must be a folder, got an existing file {str(out)!r}.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"`{name}` must be a writable folder, got {str(out)!r}: {exc}") from None
    return out


def figure_png(fig: Figure, *, dpi: int = 120, caption: str = "") -> bytes:
    """A matplotlib figure rendered to PNG bytes, with the report's caption chunk.

    See `thermoscope.plots.figure_png` (title, caption and hover regions).
    """
    from thermoscope.plots import figure_png as png_with_chunks

    return png_with_chunks(fig, caption=caption, dpi=dpi)


def save_outputs(
    out_dir: Path | str,
    text: str,
    text_name: str,
    fig: Figure,
    figure_name: str,
    *,
    caption: str = "",
) -> list[Path]:
    """Write a demo's text and figure under ``out_dir``, atomically; return both paths.

    ``caption`` is the sentence the HTML report prints under the figure.
    """
    out = prepare_out_dir(out_dir)
    assert out is not None  # a str or Path was given
    return [
        write_text_atomic(out / text_name, text + "\n"),
        write_bytes_atomic(out / figure_name, figure_png(fig, caption=caption)),
    ]
