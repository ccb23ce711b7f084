"""Writing files safely: atomically, so a crash never leaves half a file behind."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

__all__ = [
    "check_writable_file",
    "check_writable_folder",
    "write_bytes_atomic",
    "write_text_atomic",
]


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    Readers see either the old file or the complete new one, never a partial write.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_bytes_atomic(folder / "x.bin", b"abc").read_bytes()
    b'abc'
    >>> oct((folder / "x.bin").stat().st_mode & 0o777)
    '0o644'
    """
    target = Path(path)
    # mkstemp creates the file private (0600); give the result the mode an
    # ordinary open() would (or keep the mode of the file it replaces).
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`write_bytes_atomic`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_text_atomic(folder / "a.txt", "héllo").read_text(encoding="utf-8")
    'héllo'
    """
    return write_bytes_atomic(path, text.encode("utf-8"))


def check_writable_folder(folder: str | os.PathLike[str], name: str) -> Path:
    """``folder`` if a file can be created in it; else a ValueError naming ``name``.

    Checked by creating (and removing) a temporary file, the only test that
    holds for read-only mounts and for root alike. Call it before the work
    whose result goes there.

    Examples
    --------
    >>> import tempfile
    >>> check_writable_folder(tempfile.gettempdir(), "--out").is_dir()
    True
    >>> check_writable_folder("/no/such/folder", "--out")
    Traceback (most recent call last):
    ...
    ValueError: `--out` must be an existing folder, got '/no/such/folder' (not found).
    """
    where = Path(folder)
    if not where.exists():
        missing = next((p for p in [where, *where.parents] if p.exists()), None)
        if missing is not None and not missing.is_dir():
            raise ValueError(
                f"`{name}` must be an existing folder, got {str(where)!r} "
                f"({str(missing)!r} is a file)."
            )
        raise ValueError(f"`{name}` must be an existing folder, got {str(where)!r} (not found).")
    if not where.is_dir():
        raise ValueError(f"`{name}` must be a folder, got the file {str(where)!r}.")
    try:
        fd, probe = tempfile.mkstemp(dir=where, prefix=".thermoscope-probe.")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(
            f"`{name}` must be a writable folder, got {str(where)!r} ({reason.lower()})."
        ) from None
    os.close(fd)
    os.unlink(probe)
    return where


def check_writable_file(path: str | os.PathLike[str], name: str) -> Path:
    """``path`` if it can be written atomically: its folder exists and is writable.

    A folder, a path below a file, a missing folder or a read-only place is a
    ValueError naming ``name`` (the option, say ``--out``), raised before any
    work is done.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> check_writable_file(folder / "t.json", "--out").name
    't.json'
    >>> check_writable_file(folder, "--out")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: `--out` must be a file path, got the folder '...'.
    """
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"`{name}` must be a file path, got the folder {str(target)!r}.")
    blocker = next((p for p in target.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ValueError(
            f"`{name}` must be a path in a folder, got {str(target)!r} "
            f"({str(blocker)!r} is a file)."
        )
    if not target.parent.is_dir():
        raise ValueError(
            f"`{name}` must be in an existing folder, got {str(target)!r} "
            f"(folder {str(target.parent)!r} not found)."
        )
    check_writable_folder(target.parent, name)
    return target
