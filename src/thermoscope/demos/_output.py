"""Where demos put their results: a checked output folder, a text table and a PNG figure."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from thermoscope._files import write_bytes_atomic, write_text_atomic

__all__ = ["figure_png", "prepare_out_dir", "save_outputs"]


def prepare_out_dir(out_dir: Path | str | None) -> Path | None:
    """Create the output folder (``None``: write nothing); a bad path is a ValueError.

    Call it before the expensive work so that a bad folder fails fast.

    Examples
    --------
    >>> prepare_out_dir(None) is None
    True
    """
    if out_dir is None:
        return None
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"`out_dir` must be a writable folder, got {str(out)!r}: {exc}") from None
    return out


def figure_png(fig: Any, dpi: int = 120) -> bytes:
    """A matplotlib figure rendered to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_outputs(
    out_dir: Path | str, text: str, text_name: str, fig: Any, figure_name: str
) -> list[Path]:
    """Write a demo's text and figure under ``out_dir``, atomically; return both paths."""
    out = prepare_out_dir(out_dir)
    assert out is not None  # a str or Path was given
    return [
        write_text_atomic(out / text_name, text + "\n"),
        write_bytes_atomic(out / figure_name, figure_png(fig)),
    ]
