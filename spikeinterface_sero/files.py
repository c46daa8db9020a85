"""Output files: checked before any work, written atomically, never overwritten without being asked."""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from .errors import SeroError

__all__ = ["check_output_path", "atomic_path", "append_line"]


def check_output_path(
    path,
    *,
    overwrite: bool = False,
    suffixes: Sequence[str] | None = None,
    what: str = "output",
    overwrite_hint: str = "overwrite=True",
) -> Path:
    """The output path, checked before any work starts.

    Parameters
    ----------
    path : str or Path
        Where the output will be written.
    overwrite : bool, default: False
        Whether an existing file may be replaced.
    suffixes : sequence of str or None, default: None
        The file name endings allowed (e.g. ``(".csv", ".json")``); None: any.
    what : str, default: "output"
        What the file is, for the messages.
    overwrite_hint : str, default: "overwrite=True"
        How the caller asks for an overwrite, in the words of its interface (e.g. ``--overwrite``).

    Returns
    -------
    Path
        The path, absolute.

    Raises
    ------
    SeroError
        The suffix is not allowed, the file exists (and ``overwrite`` is False) or is a folder, the folder
        does not exist or cannot be written to.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise SeroError(f"{path} is a folder; the {what} must be a file name.")
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise SeroError(f"{path.name}: the {what} must end in {', '.join(suffixes)}.")
    if path.exists() and not overwrite:
        raise SeroError(f"{path} exists; pass {overwrite_hint} to replace it, or choose another name.")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise SeroError(f"the folder {parent} does not exist: create it first, or choose another {what} path.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SeroError(f"cannot write the {what} into {parent} (no permission): choose another folder.")
    return path.absolute()


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """A temporary path in the same folder as ``path``; on success it is flushed to disk and renamed to
    ``path`` in one step, so a crash leaves either the old file or the new one, never a half file.

    >>> with atomic_path("results.csv") as tmp:
    ...     table.to_csv(tmp)
    """
    path = Path(path)
    _remove_stale_parts(path)
    # the temporary keeps the file's own suffix (``.r.nwb.x1y2.part.nwb``): writers such as pynwb check it
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_PART + path.suffix, dir=path.parent)
    os.close(descriptor)
    temporary = Path(temporary)
    try:
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


_PART = ".part"
_STALE_S = 3600.0  # a temporary file untouched for an hour belongs to a writer that was killed


def _remove_stale_parts(path: Path) -> None:
    """Temporary files a killed writer of ``path`` left behind (its cleanup cannot run under SIGKILL)."""
    now = time.time()
    for part in path.parent.glob(f".{glob.escape(path.name)}.*{_PART}{glob.escape(path.suffix)}"):
        try:
            if now - part.stat().st_mtime > _STALE_S:
                part.unlink()
        except OSError:  # gone already, or not ours to remove
            pass


def append_line(path, line: str) -> None:
    """Append one whole line (with its newline) and flush it to disk; a file whose last line was torn by a
    crash gets a newline first, so the new line never glues onto the half one."""
    path = Path(path)
    data = line if line.endswith("\n") else line + "\n"
    with open(path, "ab+") as handle:
        if handle.tell() > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                data = "\n" + data
        handle.write(data.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
