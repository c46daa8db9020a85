"""Workarounds for Neo and SpikeInterface behaviour, each with the reason and the upstream behaviour.

This is the only module that touches private attributes of Neo or SpikeInterface objects; each function
falls back to leaving things as they are when the upstream layout differs.
"""

from __future__ import annotations

import contextlib
import datetime
from pathlib import Path

import numpy as np

__all__ = [
    "neo_buffer_descriptions",
    "axon_header",
    "share_neo_file_handle",
    "snap_sampling_frequency",
    "main_channel_indices",
    "lenient_abf_dates",
    "long_gap_free_abf",
    "abf_data_count",
    "keep_trailing_empty_segments",
    "set_sorting_property",
]


def neo_buffer_descriptions(recording) -> list[dict]:
    """The raw buffer descriptions (file offsets, shapes, dtypes) Neo derived from an ABF header.

    Neo keeps them in ``neo_reader._buffer_descriptions`` and offers no public accessor; they are what lets
    a truncated or corrupt file be refused before a read fails later with an unrelated error. An empty
    list when Neo's layout differs.
    """
    try:
        descriptions = recording.neo_reader._buffer_descriptions
    except AttributeError:
        return []
    return [d for block in descriptions.values() for segment in block.values() for d in segment.values()]


def axon_header(recording) -> dict:
    """The ABF header Neo parsed (``neo_reader._axon_info``: version, protocol, date); {} if absent."""
    return dict(getattr(getattr(recording, "neo_reader", None), "_axon_info", None) or {})


def share_neo_file_handle(recording, path: Path) -> None:
    """Give every sweep of an ABF file one file handle.

    Neo's raw-IO opens one handle per sweep on first read and keeps it
    (``_memmap_analogsignal_buffers``), so a file with more sweeps than the open-file limit (1024 on many
    systems) fails with ``OSError: [Errno 24]``. Every sweep lies in the same file and Neo maps chunks at
    explicit offsets, so one handle serves all.
    """
    reader = recording.neo_reader
    try:
        descriptions = reader._buffer_descriptions
        if getattr(reader, "_memmap_analogsignal_buffers", None):
            return
        handle = open(path, "rb")  # noqa: SIM115 - lives as long as the reader
        reader._memmap_analogsignal_buffers = {
            block: {segment: dict.fromkeys(buffers, handle) for segment, buffers in segments.items()}
            for block, segments in descriptions.items()
        }
    except (AttributeError, TypeError):  # another Neo layout: leave it as it is
        pass


def snap_sampling_frequency(recording, target: float, relative_tolerance: float) -> None:
    """Relabel a rate that equals ``target`` up to header rounding as exactly ``target``.

    ABF headers store the sample interval in µs (float32 in ABF1), so a 40 kHz file can read as
    40000.0039 Hz; SpikeInterface has no setter for the sampling frequency of an existing recording.
    """
    rate = recording.sampling_frequency
    if rate != target and abs(rate - target) <= relative_tolerance * target:
        recording._sampling_frequency = float(target)
        for segment in recording._recording_segments:
            if getattr(segment, "sampling_frequency", None) is not None:
                segment.sampling_frequency = float(target)


def main_channel_indices(analyzer) -> np.ndarray:
    """Each unit's main channel (index into ``analyzer.channel_ids``).

    ``analyzer.get_main_channels()``, except that the ``main_channel_id`` sorting property, when present,
    is read directly: SpikeInterface 0.105 re-estimates the main channels from templates when the analyzer
    has no recording, and fails with ``KeyError: 'average'`` when no templates are computed.
    """
    if "main_channel_id" in analyzer.sorting.get_property_keys():
        channel_ids = [str(c) for c in analyzer.channel_ids]
        main_ids = [str(c) for c in analyzer.sorting.get_property("main_channel_id")]
        if all(c in channel_ids for c in main_ids):
            return np.array([channel_ids.index(c) for c in main_ids], dtype=np.int64)
    return np.asarray(analyzer.get_main_channels(outputs="index"), dtype=np.int64)


class _LenientDatetime(datetime.datetime):
    """``datetime.datetime`` whose constructor gives None for an impossible date instead of raising."""

    def __new__(cls, *args, **kwargs):
        try:
            return datetime.datetime(*args, **kwargs)
        except (ValueError, OverflowError, TypeError):
            return None


class _LenientDatetimeModule:
    """Stands for the ``datetime`` module inside Neo's axonrawio."""

    timedelta = datetime.timedelta
    timezone = datetime.timezone
    datetime = _LenientDatetime


@contextlib.contextmanager
def lenient_abf_dates():
    """Read ABF headers whose recording date is impossible (month 13, day 0) as having no date.

    Neo's ``axonrawio`` builds ``rec_datetime`` from the header's date fields and lets an impossible date
    raise ``ValueError``, so a file whose data are intact cannot be opened at all. The date does not
    affect the data: with this context, such a file opens with ``rec_datetime=None``.
    """
    from neo.rawio import axonrawio

    original = axonrawio.datetime
    axonrawio.datetime = _LenientDatetimeModule
    try:
        yield
    finally:
        axonrawio.datetime = original


_SWEEP_TABLE_DTYPE = np.dtype([("offset", "i4"), ("len", "i4")])
_WIDE_SWEEP_TABLE_DTYPE = np.dtype([("offset", "i8"), ("len", "i8")])


class _WideSweepTableNumpy:
    """Stands for ``numpy`` inside Neo's axonrawio: ``empty`` of the one-sweep table gets 64-bit fields."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def empty(shape, dtype=float, *args, **kwargs):
        if np.dtype(dtype) == _SWEEP_TABLE_DTYPE:
            dtype = _WIDE_SWEEP_TABLE_DTYPE
        return np.empty(shape, dtype, *args, **kwargs)


@contextlib.contextmanager
def long_gap_free_abf():
    """Read gap-free ABF files of more than 2**31 samples (15 h of one channel at 40 kHz).

    A gap-free file has no sweep table, so Neo's ``axonrawio`` builds a one-sweep table in an int32 array
    (the layout of the on-disk table) and stores the data section's sample count (an int64 in ABF 2) in
    it: a 24 h file raises ``OverflowError`` and cannot be opened. With this context that one in-memory
    table has 64-bit fields; tables read from the file are unchanged.
    """
    from neo.rawio import axonrawio

    original = axonrawio.np
    axonrawio.np = _WideSweepTableNumpy()
    try:
        yield
    finally:
        axonrawio.np = original


@contextlib.contextmanager
def abf_data_count(count: int | None):
    """Read an ABF file with ``count`` samples (all channels) in its data section, whatever the header says.

    An acquisition program writes the header when a recording starts, with no samples counted yet, and fills
    the count in when it ends (docs/live.md, "Growing files"); Neo's ``axonrawio`` takes the count from the
    header (``lActualAcqLength``, ABF 2's DataSection entries) and so reads nothing of a file being written.
    With this context Neo's parsed header carries ``count`` instead (the caller derives it from the file's
    size); None leaves the header as it is.
    """
    from neo.rawio import axonrawio

    if count is None:
        yield
        return
    original = axonrawio.parse_axon_soup

    def parse_with_count(filename):
        info = original(filename)
        if "sections" in info:
            info["sections"]["DataSection"]["llNumEntries"] = int(count)
        else:
            info["lActualAcqLength"] = int(count)
        return info

    axonrawio.parse_axon_soup = parse_with_count
    try:
        yield
    finally:
        axonrawio.parse_axon_soup = original


def keep_trailing_empty_segments(sorting, num_segments: int):
    """Give ``sorting`` (a SpikeInterface ``NumpySorting``) all ``num_segments`` segments, in place.

    ``NumpySorting`` counts its segments from the last spike of its spike vector, so sweeps at the end of an
    episodic recording in which the cell did not fire are dropped (SpikeInterface 0.105; also when a
    SortingAnalyzer copies its sorting): the analyzer then reports fewer segments than were recorded, and a
    firing rate over the sweeps with spikes only. The missing segments are added as empty views of the same
    spike vector. Returns ``sorting``; left as it is when the upstream layout differs.
    """
    try:
        from spikeinterface.core.numpyextractors import SpikeVectorSortingSegment

        spikes = sorting._cached_spike_vector
        for segment_index in range(sorting.get_num_segments(), int(num_segments)):
            sorting.add_sorting_segment(SpikeVectorSortingSegment(spikes, segment_index, sorting.unit_ids))
    except (AttributeError, ImportError, TypeError):
        pass
    return sorting


def set_sorting_property(analyzer, key: str, values: np.ndarray) -> None:
    """``analyzer.set_sorting_property(key, values)`` that keeps every character of text in zarr analyzers.

    SpikeInterface 0.105 writes a property that a zarr analyzer already holds in place
    (``properties[key][:] = values``), into the array made the first time, whose fixed-width text dtype then
    truncates longer values (``"non_serotonergic"`` becomes ``"non_serotone"`` after a recompute, a merge or
    a curation that first wrote shorter ones). The zarr array of a text property is deleted first, so it is
    written anew with a width that fits. A read-only analyzer keeps the values in memory only.
    """
    values = np.asarray(values)
    if analyzer.is_read_only():
        analyzer.sorting.set_property(key, values)
        return
    if analyzer.format == "zarr" and values.dtype.kind in "US":
        try:
            properties = analyzer._get_zarr_root(mode="r+")["sorting"]["properties"]
            if key in properties:
                del properties[key]
        except (AttributeError, KeyError, TypeError):  # another layout: SpikeInterface's own write below
            pass
    analyzer.set_sorting_property(key, values)
