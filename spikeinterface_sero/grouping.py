"""Per-sweep files that are one cell: the grouping rule (``--group``) and the reading of a cell's files as one
recording (``sero classify --group``, ``sero watch --group``; ``docs/live.md``)."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError, ParameterError, SeroError
from .io import read_abf

__all__ = ["GROUP_EXAMPLE", "CellFiles", "check_group", "cell_key", "group_files", "read_cell"]

#: the rule of the examples: ``A1_001.abf``, ``A1_002.abf`` ... are the cell ``A1``
GROUP_EXAMPLE = r"(?P<cell>.+)_\d+\.abf"


@dataclass(frozen=True)
class CellFiles:
    """The files of one cell, a work item of a batch: ``key`` (the folder / the cell's name) is what its rows'
    ``file`` column says, ``files`` the paths it reads."""

    key: str
    files: tuple[str, ...]

    def __str__(self) -> str:
        return self.key


def check_group(group, name: str = "group"):
    r"""``group`` as a compiled regular expression with a named group ``cell``, or None; ParameterError naming
    ``name`` when it is not one.

    Parameters
    ----------
    group : str, re.Pattern or None
        E.g. ``r"(?P<cell>.+)_\d+\.abf"``: files whose names match it (whole) with the same ``cell`` are one cell.
    name : str, default: "group"
        Its name in the caller's interface (``--group`` from the command line).

    Returns
    -------
    re.Pattern or None
    """
    if group is None:
        return None
    try:
        pattern = group if isinstance(group, re.Pattern) else re.compile(str(group))
    except re.error as e:
        raise ParameterError(
            f"{name} '{group}' is not a regular expression ({e}); e.g. '(?P<cell>.+)_\\d+\\.abf'."
        ) from None
    if "cell" not in pattern.groupindex:
        raise ParameterError(
            f"{name} '{pattern.pattern}' has no named group 'cell' (what files of one cell share); "
            "e.g. '(?P<cell>.+)_\\d+\\.abf' makes A1_001.abf and A1_002.abf the cell A1."
        )
    return pattern


def cell_key(path, group) -> str | None:
    """The cell of ``path`` under the rule ``group`` (a pattern of :func:`check_group`): its folder / the
    ``cell`` its name matches (whole); None when the name does not match."""
    match = group.fullmatch(Path(path).name) if group is not None else None
    if match is None or not match.group("cell"):
        return None
    return str(Path(path).parent / match.group("cell"))


def group_files(paths, group) -> dict[str, list[Path]]:
    """The files of each cell: ``{cell key: [its files]}`` in the order the cells first appear; a file whose
    name does not match ``group`` stays single (``{str(path): [path]}``).

    Parameters
    ----------
    paths : list of str or Path
        The files.
    group : str, re.Pattern or None
        The rule (:func:`check_group`); None: every file single.

    Returns
    -------
    dict of str to list of Path
    """
    pattern = check_group(group)
    cells: dict[str, list[Path]] = {}
    for path in paths:
        key = cell_key(path, pattern)
        cells.setdefault(str(path) if key is None else key, []).append(Path(path))
    return cells


def read_cell(paths, cell_file, read_options: dict | None = None, *, growing: bool = False):
    """The files of one cell as one recording (SpikeInterface's ``append_recordings``): their sweeps the
    segments, in the order they were recorded (the header's start, then the name), each file placed in time at
    its header's start after the first file's, never before the end of the file before it (back to back when
    the headers do not say).

    Parameters
    ----------
    paths : list of str or Path
        The cell's files.
    cell_file : str or Path
        What the recording's ``abf_path`` annotation says (the cell's name: its cell id is this stem).
    read_options : dict or None, default: None
        Keywords of :func:`~spikeinterface_sero.io.read_abf` (``channel``, ``allow_low_rate``, ``allow_any_unit``).
    growing : bool, default: False
        Read each file as far as it is written (``sero watch``).

    Returns
    -------
    BaseRecording
        Annotated with ``abf_path`` (``cell_file``) and ``abf_files`` (the files in recording order).

    Raises
    ------
    SeroError
        A file cannot be read (the message names it), or the files do not have the same channels or rate.
    """
    from spikeinterface.core import append_recordings

    recordings = [_read_member(p, read_options or {}, growing) for p in paths]
    recordings.sort(key=lambda r: (r.get_annotation("abf_datetime") or "", Path(r.get_annotation("abf_path")).name))
    _check_alike(recordings)
    scaling = {
        tuple(r.get_channel_gains()) + tuple(r.get_channel_offsets()) + (str(r.get_dtype()),) for r in recordings
    }
    if len(scaling) > 1:  # SpikeInterface keeps the first file's scaling and dtype: each file in pA first
        import spikeinterface.preprocessing as spre

        recordings = [spre.scale_to_uV(r) for r in recordings]
    cell = append_recordings(recordings) if len(recordings) > 1 else recordings[0]
    _place_in_time(cell, recordings)
    cell.annotate(abf_path=str(cell_file), abf_files=[r.get_annotation("abf_path") for r in recordings])
    return cell


def _read_member(path, read_options: dict, growing: bool):
    """One file of a cell; its error names it."""
    try:
        return read_abf(path, growing=growing, **read_options)
    except SeroError as e:
        if Path(path).name in str(e):
            raise
        raise type(e)(f"{path}: {e}") from None


def _check_alike(recordings) -> None:
    first = recordings[0]
    for other in recordings[1:]:
        if list(other.channel_ids) != list(first.channel_ids) or other.sampling_frequency != first.sampling_frequency:
            raise DataError(
                f"{other.get_annotation('abf_path')} has channels {list(other.channel_ids)} at "
                f"{other.sampling_frequency:g} Hz, {first.get_annotation('abf_path')} {list(first.channel_ids)} at "
                f"{first.sampling_frequency:g} Hz: the files of one cell must have the same channels and rate "
                "(choose one channel, or a grouping rule that keeps them apart)."
            )


def _place_in_time(cell, recordings) -> None:
    """Shift each file's segments of ``cell`` so that the file starts at its header's start relative to the
    first file's (the first file keeps its own time base), and not before the end of the file before it."""
    origin = _started(recordings[0])
    segment, previous_end = 0, None
    for recording in recordings:
        n = recording.get_num_segments()
        own_start = float(recording.get_start_time(segment_index=0))
        start = own_start
        if previous_end is not None:
            started, start = _started(recording), previous_end
            if origin is not None and started is not None:
                offset = (started - origin).total_seconds() + float(recordings[0].get_start_time(segment_index=0))
                start = max(offset, previous_end)
        for k in range(segment, segment + n):
            if start != own_start:
                cell.shift_times(start - own_start, segment_index=k)
        previous_end = max(float(cell.get_end_time(segment_index=k)) for k in range(segment, segment + n))
        previous_end += 1.0 / cell.sampling_frequency
        segment += n


def _started(recording) -> datetime.datetime | None:
    text = recording.get_annotation("abf_datetime") or ""
    try:
        return datetime.datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
