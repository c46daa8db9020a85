"""Folders of the authors' per-spike CSV files: read, write and check one (with its manifest), and find the
labelled folders of a folder laid out by class (``SER/``, ``NSER/``, ``SER_atypical/``).

The file format is described in ``docs/csv-format.md``, the layouts by class in ``docs/validate.md``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import warnings
from pathlib import Path

import numpy as np

from .arguments import check_path
from .constants import LABELS
from .errors import SnippetError
from .files import _PART as PART_FOLDER  # the suffix of files.atomic_folder's temporary folders
from .files import atomic_folder, check_output_folder
from .snippet_formats import (
    CSV_NAME,
    SKIP_HINT,
    Snippets,
    load_npz,
    read_snippet_csv_folder,
    write_snippet_csv_folder,
)

__all__ = [
    "SNIPPET_MANIFEST",
    "is_snippet_folder",
    "write_snippet_folder",
    "check_snippet_folder",
    "read_snippet_folder",
    "is_snippet_input",
    "read_snippet_input",
    "snippet_folders_below",
    "folder_class",
    "class_folders",
    "cell_day",
]

#: the manifest ``sero snippets`` writes last into a CSV snippet folder: the files it holds, per cell
SNIPPET_MANIFEST = "sero_snippets.json"


def is_snippet_folder(path) -> bool:
    """True for a folder that holds the authors' per-spike CSV files (``<cell>_trigger_<sample>.csv``)."""
    path = Path(path)
    return path.is_dir() and any(CSV_NAME.match(q.name) for q in path.iterdir())


def write_snippet_folder(parts: list[Snippets], folder, *, overwrite: bool = False) -> int:
    """Write snippets as one folder of the authors' per-spike CSV files, whole: into a temporary sibling
    folder, with :data:`SNIPPET_MANIFEST` (the number of files per cell) last, then renamed into place, so a
    kill leaves the old folder or the new one. Returns the number of files written.

    Raises
    ------
    SeroError
        ``folder`` is a file, holds files other than per-spike CSV files, or exists without ``overwrite``.
    """
    folder = check_snippet_folder(folder, overwrite=overwrite)
    with atomic_folder(folder, overwrite=True) as temporary:
        written = sum(write_snippet_csv_folder(part, temporary) for part in parts)
        counts: dict[str, int] = {}
        for part in parts:
            for cell in part.cell_ids.tolist():
                counts[str(cell)] = counts.get(str(cell), 0) + 1
        (temporary / SNIPPET_MANIFEST).write_text(json.dumps({"files": written, "cells": counts}, indent=1) + "\n")
    return written


def check_snippet_folder(folder, *, overwrite: bool = False, overwrite_hint: str = "overwrite=True") -> Path:
    """Before any work: ``folder`` can take CSV snippets (a new folder, an empty one, or, with ``overwrite``,
    one that holds only per-spike CSV files, which are replaced).

    Raises
    ------
    SeroError
        ``folder`` is a file, holds other files, or holds snippet files and ``overwrite`` is False.
    """
    folder = check_output_folder(folder, what="snippet folder")
    if folder.exists():
        names = [q.name for q in folder.iterdir()]
        others = [name for name in names if not (CSV_NAME.match(name) or name == SNIPPET_MANIFEST)]
        if others:
            raise SnippetError(
                f"{folder} holds other files than per-spike CSV files ({others[0]} ...); choose another folder."
            )
        if names and not overwrite:
            raise SnippetError(
                f"{folder} holds CSV snippet files; pass {overwrite_hint} to replace them, or choose another folder."
            )
    return folder


def _check_manifest(folder: Path, cell_ids: np.ndarray) -> None:
    """A folder ``sero snippets`` wrote holds every file its manifest lists; a folder without a manifest
    (the authors' own) is read as it is."""
    manifest = folder / SNIPPET_MANIFEST
    if not manifest.is_file():
        return
    try:
        counts = json.loads(manifest.read_text())["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        raise SnippetError(f"{manifest} is not a readable snippet manifest; write the folder again.") from None
    found = {str(c): int((cell_ids == c).sum()) for c in dict.fromkeys(cell_ids.tolist())}
    if found != {str(k): int(v) for k, v in counts.items()}:
        raise SnippetError(
            f"{folder} holds {len(cell_ids)} per-spike files, but its manifest lists {sum(counts.values())}: the "
            "folder is incomplete or was changed; write it again (sero snippets --overwrite)."
        )


def _is_partial(folder: Path) -> bool:
    """A temporary folder of :func:`~spikeinterface_sero.files.atomic_folder` (being written, or left by a
    writer that was killed)."""
    return folder.name.startswith(".") and folder.name.endswith(PART_FOLDER)


def _partial_error(folder) -> SnippetError:
    return SnippetError(
        f"{folder} is a folder still being written (or left by a writer that was killed): wait for the writer, "
        "or remove it."
    )


def read_snippet_folder(folder) -> Snippets:
    """A folder of per-spike CSV files as :class:`~spikeinterface_sero.snippet_formats.Snippets`: one segment
    with the trigger samples of the file names (sweeps laid end to end, ``docs/csv-format.md``), no segment
    duration (the files do not say how long the recording was), ``source`` the folder.

    Raises SnippetError (from :func:`~spikeinterface_sero.snippet_formats.read_snippet_csv_folder`) for a
    folder without snippet files or with a malformed one, the folder named; for a folder that holds fewer or
    other files than its manifest lists; and for a folder still being written."""
    if _is_partial(Path(folder)):
        raise _partial_error(folder)
    try:
        with warnings.catch_warnings():  # an empty file: the error below says it, numpy's warning adds nothing
            warnings.filterwarnings("ignore", message="loadtxt: input contained no data")
            waveforms, cell_ids, trigger_samples = read_snippet_csv_folder(folder)
    except SnippetError as e:  # named with its folder, without read_snippet_csv_folder's on_bad (not ours)
        message = str(e).replace(SKIP_HINT, "")
        raise SnippetError(message if message.startswith(str(folder)) else f"{folder}: {message}") from None
    _check_manifest(Path(folder), cell_ids)
    return Snippets(
        waveforms=waveforms,
        trigger_samples=trigger_samples,
        segment_index=np.zeros(len(waveforms), np.int64),
        unit_ids=cell_ids,
        cell_ids=cell_ids,
        source=str(folder),
        n_detected={str(c): int((cell_ids == c).sum()) for c in dict.fromkeys(cell_ids.tolist())},
    )


def is_snippet_input(path) -> bool:
    """True for snippets without their recording: a folder of per-spike CSV files or an ``.npz`` file."""
    path = Path(path)
    return path.is_dir() or path.suffix.lower() == ".npz"


def read_snippet_input(path) -> Snippets:
    """A folder of per-spike CSV files (:func:`read_snippet_folder`) or an ``.npz`` snippet file
    (:func:`~spikeinterface_sero.snippet_formats.load_npz`, which keeps the sweep durations, so the rate is
    known)."""
    path = Path(path)
    return read_snippet_folder(path) if path.is_dir() else load_npz(path)


# ------------------------------------------------------------------------------------ folders laid out by class
def snippet_folders_below(folder) -> list[Path]:
    """Every folder at or below ``folder`` that holds per-spike CSV files, sorted.

    Parameters
    ----------
    folder : str or Path
        Where to look.

    Returns
    -------
    list of Path

    Raises
    ------
    SnippetError
        A folder below ``folder`` is still being written (or was left by a writer that was killed).
    """
    found = []
    for where, subfolders, names in os.walk(check_path(folder, "folder")):
        partial = [name for name in subfolders if _is_partial(Path(name))]
        if partial:
            raise _partial_error(Path(where) / partial[0])
        if any(CSV_NAME.match(name) for name in names):
            found.append(Path(where))
    return sorted(found)


_CLASS_NAMES = {"ser": LABELS[0], "serotonergic": LABELS[0]} | {
    name: LABELS[1] for name in ("nser", "non_serotonergic", "nonserotonergic")
}
_TYPES = ("typical", "atypical")
# the class folder names accepted, in words (for the messages)
_CLASS_FOLDER_WORDS = (
    "SER or serotonergic, NSER or non_serotonergic (any case; '-' or ' ' for '_'), and SER_atypical or "
    "SER_typical for the type of serotonergic cells"
)


def folder_class(name: str) -> tuple[str, str] | None:
    """The label and type a class folder's name gives.

    Parameters
    ----------
    name : str
        The folder's name: ``SER`` or ``serotonergic``, ``NSER``, ``non_serotonergic`` or ``nonserotonergic``
        (any case, ``-`` or a space for ``_``), a serotonergic name with ``_atypical`` or ``_typical`` after it
        or ``atypical_`` / ``typical_`` before it.

    Returns
    -------
    tuple of (str, str) or None
        The label (``"serotonergic"`` or ``"non_serotonergic"``) and the type (``"atypical"``, ``"typical"``,
        or "" when the name does not say it); None for any other name.
    """
    key = re.sub(r"[\s\-]+", "_", str(name).strip().lower())
    if key in _CLASS_NAMES:
        return _CLASS_NAMES[key], ""
    for kind in _TYPES:
        for label_part in (key.removesuffix(f"_{kind}"), key.removeprefix(f"{kind}_")):
            if label_part != key and _CLASS_NAMES.get(label_part) == LABELS[0]:
                return LABELS[0], kind
    return None


def class_folders(root) -> list[tuple[Path, str, str]]:
    """The folders of per-spike CSV files of a folder laid out by class, with their label and type.

    Parameters
    ----------
    root : str or Path
        A folder holding one folder per class (:func:`folder_class`: ``SER``, ``NSER``, ``SER_atypical``
        ...); every folder at or below a class folder that holds per-spike files is that class's (its cells
        are told apart by the files' name prefix: one folder per cell, per day, or all cells in the class
        folder). Folders without per-spike files and other files are ignored.

    Returns
    -------
    list of (Path, str, str)
        (snippet folder, label, type), sorted by class folder.

    Raises
    ------
    SnippetError
        ``root`` is not a folder; it holds no class folder; per-spike files lie outside a class folder (in
        ``root`` itself or in a folder whose name is no class); a class folder holds no per-spike files; a
        folder is still being written.
    """
    root = check_path(root, "folder")
    if not root.is_dir():
        raise SnippetError(f"{root} is not a folder of per-spike CSV files laid out by class.")
    if is_snippet_folder(root):
        raise SnippetError(
            f"{root} holds per-spike files outside a class folder; put each class's cells in a folder of its own "
            f"({_CLASS_FOLDER_WORDS})."
        )
    found = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        if _is_partial(sub):
            raise _partial_error(sub)
        folders = snippet_folders_below(sub)
        kind = folder_class(sub.name)
        if kind is None and folders:
            raise SnippetError(
                f"{sub} holds per-spike files, but {sub.name!r} is not a class name: name the class folders "
                f"{_CLASS_FOLDER_WORDS}."
            )
        if kind is not None and not folders:
            raise SnippetError(f"the class folder {sub} holds no <cell>_trigger_<sample>.csv files.")
        found.extend((folder, *kind) for folder in folders if kind is not None)
    if not found:
        raise SnippetError(f"{root} holds no class folders of per-spike CSV files; name them {_CLASS_FOLDER_WORDS}.")
    return found


_CELL_DATE = re.compile(r"^[A-Za-z]{0,3}(\d{2})(\d{2})(\d{2})(?!\d)")


def cell_day(cell_id) -> str:
    """The recording day a cell's name gives.

    Parameters
    ----------
    cell_id : str
        The cell's id; the authors' are a letter, the date as yymmdd, ``#`` and the file number
        (``A140313#073``). At most three letters, then six digits that make a valid date (read as 20yy) and
        no seventh digit.

    Returns
    -------
    str
        The day, ISO (``"2014-03-13"``); "" when the name holds no such date.
    """
    match = _CELL_DATE.match(str(cell_id))
    if match is None:
        return ""
    year, month, day = (int(part) for part in match.groups())
    try:
        return _dt.date(2000 + year, month, day).isoformat()
    except ValueError:
        return ""
