"""Safe text: for terminals, spreadsheets, NWB/HDF5 strings and file names (layer 0, no project imports).

Text that comes from a recording (file names, ABF header strings) or from a person (labels) is untrusted:
it may hold control characters that rewrite a terminal, formulas a spreadsheet would run, NUL bytes HDF5
cannot store, or be longer than a file system takes.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from pathlib import Path

__all__ = ["printable", "clean_text", "spreadsheet_safe", "short_file_name", "NAME_MAX_BYTES"]

#: the longest file name (in UTF-8 bytes) the exporters write; below the usual 255 of Linux, macOS and
#: Windows, leaving room for the atomic writer's temporary name (``.<name>.<random>.part<suffix>``)
NAME_MAX_BYTES = 200

#: what spreadsheet programs read as the start of a formula (OWASP's list for CSV injection)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Unicode categories of characters that do not print: controls, formats (bidi overrides), separators
_UNPRINTABLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def _escape(character: str) -> str:
    code = ord(character)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text) -> str:
    """``text`` with every character a terminal would act on escaped (``\\x1b``, ``\\r``, ``\\u202e`` ...).

    Letters of any script stay as they are; ``\\n`` and ``\\t`` are escaped too, so one value stays on one line.

    Parameters
    ----------
    text : object
        A file name, header string or label (anything: it is turned into text first).

    Returns
    -------
    str
        Safe to print.
    """
    text = str(text)
    return "".join(_escape(c) if unicodedata.category(c) in _UNPRINTABLE else c for c in text)


def clean_text(text, *, max_length: int | None = 10_000) -> str:
    """``text`` as a file format stores it safely (NWB/HDF5 attributes and datasets): bytes decoded (bad bytes
    replaced), NUL and other control characters (but ``\\n`` and ``\\t``) removed, surrounding blanks stripped,
    at most ``max_length`` characters (cut with "...").

    Parameters
    ----------
    text : object
        The value (``bytes`` are decoded as UTF-8, else Latin-1).
    max_length : int or None, default: 10000
        The longest text kept; None: no limit.

    Returns
    -------
    str
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            text = bytes(text).decode("latin-1")
    text = "".join(c for c in str(text) if c in "\n\t" or unicodedata.category(c) not in _UNPRINTABLE).strip()
    if max_length is not None and len(text) > max_length:
        text = text[: max(max_length - 3, 0)] + "..."
    return text


def spreadsheet_safe(value):
    """A text cell that a spreadsheet would read as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab
    or a carriage return) prefixed with a quote, as spreadsheet-safe CSV writers do; anything else (numbers,
    other text) returned unchanged.

    Parameters
    ----------
    value : object
        One cell.

    Returns
    -------
    object
        The cell, neutralised if it is formula-like text.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def short_file_name(name: str, *, folder=None, max_bytes: int = NAME_MAX_BYTES) -> str:
    """``name`` (a file or folder name with its suffix) short enough for the file system: a longer name keeps
    its beginning and its suffix and gets a hash of the whole name, so two long names stay apart.

    Parameters
    ----------
    name : str
        The name wanted (no folder), e.g. ``"<file stem>.nwb"``.
    folder : str, Path or None, default: None
        Where it goes: its own limit (``NAME_MAX``) is used when it is smaller than ``max_bytes``.
    max_bytes : int, default: NAME_MAX_BYTES
        The longest name in UTF-8 bytes.

    Returns
    -------
    str
        ``name`` when it fits, else ``<beginning>-<12 hex digits><suffix>``.
    """
    limit = max_bytes
    if folder is not None:
        try:  # a file system with shorter names than usual (some network and FAT mounts)
            limit = min(limit, int(os.pathconf(str(folder), "PC_NAME_MAX")) - (255 - NAME_MAX_BYTES))
        except (OSError, ValueError, AttributeError):
            pass
    if len(name.encode("utf-8")) <= limit:
        return name
    path = Path(name)
    suffix = path.suffix if len(path.suffix.encode("utf-8")) <= 16 else ""
    stem = name[: len(name) - len(suffix)] if suffix else name
    tag = "-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:12]
    room = max(limit - len(tag.encode("utf-8")) - len(suffix.encode("utf-8")), 1)
    beginning = stem.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    return beginning + tag + suffix
