"""Reading Axon .abf recordings into SpikeInterface, the way the method needs them.

The full explanation is in ``docs/architecture.md`` (section "Module notes: spikeinterface_sero.io").
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from .arguments import check_flag, check_integer, check_path
from .constants import MIN_SAMPLING_FREQUENCY, SAMPLING_FREQUENCY, SAMPLING_FREQUENCY_TOLERANCE, is_paper_rate
from .errors import AbfError, ChannelError, DataError, ParameterError, SamplingRateError
from .units import current_to_pa, is_current_unit
from .upstream import (
    abf_data_count,
    axon_header,
    lenient_abf_dates,
    long_gap_free_abf,
    neo_buffer_descriptions,
    share_neo_file_handle,
    snap_sampling_frequency,
)

__all__ = [
    "read_abf",
    "abf_progress",
    "abf_channels",
    "abf_info",
    "validate_recording",
    "check_recording",
    "check_channel",
    "check_regular_file",
]

#: factor that turns a value in the key unit into pA
_SUPPORTED_MODES = {
    1: "event-driven variable-length",
    2: "event-driven fixed-length",
    3: "gap-free",
    5: "episodic stimulation",
}
_ALL_MODES = {**_SUPPORTED_MODES, 4: "high-speed oscilloscope"}
_VALIDATE_CHUNK = 4_000_000  # samples per channel read at once when validating
_MAX_SAMPLING_FREQUENCY = 10e6  # Hz; above this the sampling interval in the header is corrupt


def check_recording(value, name: str = "recording"):
    """``value`` when it is a SpikeInterface recording; ParameterError naming ``name`` if not.

    Parameters
    ----------
    value : object
        The argument.
    name : str, default: "recording"
        Its name in the caller's interface.

    Returns
    -------
    BaseRecording
    """
    from spikeinterface.core import BaseRecording

    if isinstance(value, BaseRecording):
        return value
    raise ParameterError(
        f"{name} must be a SpikeInterface recording (e.g. spikeinterface_sero.read_abf(path)), not {value!r:.80}."
    )


def check_channel(value, name: str = "channel"):
    """``value`` when it names channels: None, a channel id or name (str or int), or a non-empty list of them.

    Parameters
    ----------
    value : object
        The argument.
    name : str, default: "channel"
        Its name in the caller's interface.

    Returns
    -------
    None, str, int or list
    """
    import numbers

    def is_channel(item) -> bool:
        return isinstance(item, str) or (isinstance(item, numbers.Integral) and not isinstance(item, bool))

    if value is None or is_channel(value):
        return value
    if isinstance(value, (list, tuple)) and value and all(is_channel(item) for item in value):
        return list(value)
    raise ParameterError(
        f"{name} must be None, a channel id or name (e.g. '0' or 'IN 0') or a non-empty list of them, not {value!r:.80}."
    )


def check_regular_file(path: Path, error: type, what: str, folder_hint: str = "") -> int:
    """Raise ``error`` unless ``path`` is a regular file (a link to one counts), and return its size.

    The file is stat()ed before it is opened: opening a FIFO blocks until a writer comes, and a device or a
    socket is not a recording, so anything but a regular file is refused at once.
    """
    import stat

    try:
        status = path.stat()
    except FileNotFoundError:
        raise error(f"{path}: no such file. Check the path.") from None
    except OSError as e:
        raise error(f"{path}: cannot be examined ({e.strerror}). Check the path and its permissions.") from None
    if stat.S_ISDIR(status.st_mode):
        raise error(f"{path} is a folder, not {what}. {folder_hint}".strip())
    if not stat.S_ISREG(status.st_mode):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(status.st_mode) else "a socket or a device"
        raise error(
            f"{path} is {kind}, not a regular file; {what} must be a file on disk. "
            "Copy the recording to a file and pass that."
        )
    return int(status.st_size)


def _check_signature(path: Path) -> int:
    """Return the ABF major version (1 or 2) from the file signature, or raise AbfError."""
    check_regular_file(path, AbfError, "an .abf file", "Pass the .abf files inside it.")
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except OSError as e:
        raise AbfError(f"{path}: cannot be opened ({e.strerror}). Check the file permissions.") from None
    if len(head) < 12:
        raise AbfError(
            f"{path}: only {len(head)} bytes long, far too short to be an ABF file; "
            "the file is truncated or empty. Copy it again from the acquisition computer."
        )
    signature = head[:4]
    if signature == b"ABF2":
        return 2
    if signature == b"ABF ":
        return 1
    raise AbfError(
        f"{path.name} is not an Axon Binary Format file (its first bytes are {signature!r}, an ABF file "
        "starts with 'ABF ' or 'ABF2'). Export the recording from Clampfit as .abf, or read it "
        "with the matching spikeinterface.extractors reader and pass the recording instead."
    )


# ABF 2 sections whose entries Neo reads one by one: name, index in the section table, bytes Neo reads per entry
_ABF2_LISTS = (("ADC", 1, 82), ("DAC", 2, 256), ("Epoch", 3, 32), ("EpochPerDAC", 5, 48), ("Tag", 11, 64))


def _check_abf2_sections(path: Path) -> None:
    """Refuse an ABF 2 section table whose entry lists do not fit in the file, before Neo loops over them:
    a corrupt entry count (up to 2**63) with a zero entry size makes Neo re-read one entry for ever."""
    import struct

    size = path.stat().st_size
    with open(path, "rb") as handle:
        table = handle.read(76 + 18 * 16)
    if len(table) < 76 + 18 * 16:
        raise AbfError(
            f"{path.name}: only {size} bytes, shorter than the ABF2 header; the file is truncated or "
            "corrupt. Copy it again from the acquisition computer."
        )
    for name, i, entry in _ABF2_LISTS:
        block, nbytes, count = struct.unpack_from("<IIq", table, 76 + 16 * i)
        if count == 0:
            continue
        if count < 0 or nbytes < entry or block * 512 + (count - 1) * nbytes + entry > size:
            raise AbfError(
                f"{path.name}: the ABF2 header's {name} section ({count} entries of {nbytes} bytes at "
                f"block {block}) does not fit in the {size}-byte file; the file is truncated or "
                "corrupt. Copy it again from the acquisition computer."
            )


def _check_layout(recording, path: Path) -> None:
    """Refuse sweeps whose data offsets or sizes Neo derived as non-integers or beyond the file, and
    non-finite or zero gains, so that reading never fails later with an unrelated error."""
    size = path.stat().st_size
    descriptions = neo_buffer_descriptions(recording)
    for description in descriptions:
        byte_offset, shape = description.get("file_offset", 0), description.get("shape", (0, 0))
        item = np.dtype(description.get("dtype", "i2")).itemsize
        ok = all(isinstance(v, (int, np.integer)) and v >= 0 for v in (byte_offset, *shape))  # Neo needs ints for mmap
        if not ok or int(byte_offset) + int(np.prod(shape)) * item > size:
            raise AbfError(
                f"{path.name}: the sweep table gives a sweep at byte offset {byte_offset} with shape {shape}, "
                "which does not fit in the file; the file is truncated or corrupt. Copy it again from the "
                "acquisition computer."
            )
        if len(shape) == 2 and shape[1] < recording.get_num_channels():
            raise AbfError(
                f"{path.name}: the header lists {recording.get_num_channels()} channels but the data hold "
                f"{shape[1]} values per sample; the file is truncated or corrupt. Copy it again from the "
                "acquisition computer."
            )
    gains, offsets = (
        np.asarray(recording.get_channel_gains(), float),
        np.asarray(recording.get_channel_offsets(), float),
    )
    # 1e20 per count: far beyond any real scaling, and even converted to pA it stays finite in float32
    bad = np.flatnonzero(
        ~np.isfinite(gains) | (gains == 0) | ~np.isfinite(offsets) | (np.abs(gains) * 32768 + np.abs(offsets) > 1e20)
    )
    if bad.size:
        c = bad[0]
        raise AbfError(
            f"{path.name}: the header gives channel {recording.channel_ids[c]} an invalid scaling (gain "
            f"{gains[c]:g}, offset {offsets[c]:g}); the file is truncated or corrupt. Copy it again from "
            "the acquisition computer."
        )


def abf_progress(path) -> dict:
    """How much of an .abf file is written, from its header and its size: whether the acquisition program has
    finished it (the header declares the samples the file holds), or is still writing it (the header's
    provisional count is 0, or lower than what the file holds: docs/live.md, "Growing files").

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    dict
        ``complete`` (bool: the header is finalised: it declares samples, and they, its tags and its synch
        array are all in the file),
        ``declared`` and ``written`` (samples of all channels: in the header; whole samples in the file after
        the data start), ``n_channels``, ``gap_free`` (bool).
    """
    import struct

    path = check_path(path, "path")
    version = _check_signature(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(512)
        if version == 2 and len(head) >= 76 + 18 * 16:
            (n_channels,) = struct.unpack_from("<q", head, 76 + 16 + 8)  # ADCSection entries
            data_block, _, declared = struct.unpack_from("<IIq", head, 76 + 10 * 16)  # DataSection
            (data_format,) = struct.unpack_from("<H", head, 30)
            (protocol_block,) = struct.unpack_from("<I", head, 76)
            handle.seek(protocol_block * 512)
            mode_bytes = handle.read(2)
            mode = struct.unpack("<h", mode_bytes)[0] if len(mode_bytes) == 2 else 0
            data_start = data_block * 512
            # the sections written when the recording ends: data, tags, synch array
            ends = [
                block * 512 + entry * count
                for block, entry, count in (struct.unpack_from("<IIq", head, 76 + i * 16) for i in (10, 11, 15))
                if count > 0
            ]
        elif version == 1 and len(head) >= 122:
            mode, declared, ignored = struct.unpack_from("<hih", head, 8)
            data_block, tag_block, tag_count = struct.unpack_from("<iii", head, 40)
            synch_block, synch_count = struct.unpack_from("<ii", head, 92)
            (data_format,) = struct.unpack_from("<h", head, 100)
            (n_channels,) = struct.unpack_from("<h", head, 120)
            data_start = data_block * 512 + ignored * (2 if data_format == 0 else 4)
            ends = [data_start + declared * (2 if data_format == 0 else 4)]
            ends += [tag_block * 512 + 64 * tag_count] if tag_count > 0 else []
            ends += [synch_block * 512 + 8 * synch_count] if synch_count > 0 else []
        else:
            raise AbfError(
                f"{path.name}: only {size} bytes, shorter than the ABF{version} header; the file is truncated "
                "or still being created."
            )
    n_channels = max(1, int(n_channels))
    frame = n_channels * (2 if data_format == 0 else 4)
    written = max(0, size - data_start) // frame * n_channels if data_start > 0 else 0
    return dict(
        complete=bool(0 < declared <= written and max(ends, default=0) <= size),
        declared=int(declared),
        written=int(written),
        n_channels=n_channels,
        gap_free=mode == 3,
    )


def _growing_count(path: Path) -> int | None:
    """The samples (all channels) written so far of a gap-free file still being written; None when the file
    is finished (its header is then read as it is)."""
    progress = abf_progress(path)
    if progress["complete"]:
        return None
    if not progress["gap_free"]:
        raise AbfError(
            f"{path.name} is still being written (its header does not yet count its samples); only gap-free "
            "recordings can be read while they grow. Wait until the acquisition ends."
        )
    if progress["written"] == 0:
        raise DataError(f"{path.name} is still being written and holds no samples yet; read it again later.")
    return progress["written"]


def _open_axon(path: Path, growing: bool = False):
    """read_axon with every reader failure turned into one AbfError; with ``growing``, the samples written so
    far of a file still being written (:func:`abf_progress`)."""
    from spikeinterface.extractors import read_axon

    version = _check_signature(path)
    if version == 2:
        _check_abf2_sections(path)
    count = _growing_count(path) if growing else None
    neo_logger = logging.getLogger("neo")
    old_level = neo_logger.level
    try:
        neo_logger.setLevel(logging.ERROR)  # header quirks Neo works around are not the user's problem
        with (
            warnings.catch_warnings(),
            lenient_abf_dates(),
            long_gap_free_abf(),
            abf_data_count(count),
        ):
            warnings.simplefilter("ignore")
            recording = read_axon(str(path))
    except MemoryError:
        raise AbfError(
            f"{path.name}: its header asks for an impossible amount of memory; the file is "
            "corrupt. Copy it again from the acquisition computer."
        ) from None
    except Exception as e:  # Neo raises many types for bad headers: report them as one error
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "Mode" in message and "not currently supported" in message:
            mode = message.split()[1] if len(message.split()) > 1 else "?"
            try:
                mode_name = _ALL_MODES.get(int(mode), "unknown")
            except ValueError:
                mode_name = "unknown"
            raise AbfError(
                f"{path.name}: acquisition mode {mode} ({mode_name}) is not supported; supported modes are "
                + ", ".join(f"{k} ({v})" for k, v in _SUPPORTED_MODES.items())
                + ". Re-record or convert the file to gap-free or episodic mode in Clampfit."
            ) from None
        raise AbfError(
            f"{path.name}: the ABF{version} file is truncated or corrupt and cannot be read "
            f"({type(e).__name__}: {message}). Copy it again from the acquisition computer."
        ) from None
    finally:
        neo_logger.setLevel(old_level)
    _check_layout(recording, path)
    share_neo_file_handle(recording, path)
    names = recording.get_property("channel_name")
    if names is not None:  # header strings as clean text (Neo passes some garbage through)
        clean = [header_text(n) or f"ch{c}" for c, n in zip(recording.channel_ids, names)]
        recording.set_property("channel_name", clean)
    return recording


def header_text(value, max_length: int | None = None) -> str:
    """A header string as clean text, decoded as pyABF decodes it: up to the first NUL (and ``max_length``
    characters), ASCII only, stripped; "" when what is left is not printable (binary garbage).

    Parameters
    ----------
    value : str, bytes or None
        The string Neo parsed (or the raw bytes).
    max_length : int or None, default: None
        The field's length in the header.

    Returns
    -------
    str
    """
    text = value.decode("ascii", errors="ignore") if isinstance(value, bytes) else str(value or "")
    text = text.split("\x00", 1)[0][:max_length]
    text = "".join(character for character in text if character.isascii()).strip()
    return text if text.isprintable() else ""


_ABF1_PROTOCOL_LENGTH = 256  # sProtocolPath is 256 bytes in ABF1 (Neo reads 384, into the next fields)


def protocol_path(info: dict) -> str:
    """The protocol file (``.pro``) a recording was made with, as pyABF reports it, or "" when the header
    names none (Clampex writes "(untitled)"; ABF1 files without one hold garbage there).

    Parameters
    ----------
    info : dict
        The header Neo parsed (:func:`~.upstream.axon_header`).

    Returns
    -------
    str
        A Windows path, e.g. ``C:\\Protocols\\gap free.pro``.
    """
    version = float(info.get("fFileVersionNumber", 0.0) or 0.0)
    text = header_text(info.get("sProtocolPath", ""), _ABF1_PROTOCOL_LENGTH if version < 2 else None)
    if version < 2:
        text = text.replace("/", "\\")  # Neo turns ABF1's backslashes into slashes
    return text if text.endswith(".pro") else ""


_EARLIEST_RECORDING_YEAR = 1980  # before any Axon digitiser


def recording_datetime(info: dict) -> str:
    """The recording's start as an ISO date-time, or "" (unknown) when the header has none or an impossible
    one (before 1980 or after next year: e.g. year 1, which cannot even be given a time zone).

    Parameters
    ----------
    info : dict
        The header Neo parsed.

    Returns
    -------
    str
    """
    import datetime

    recorded = info.get("rec_datetime")
    if not isinstance(recorded, datetime.datetime):
        return ""
    if not _EARLIEST_RECORDING_YEAR <= recorded.year <= datetime.date.today().year + 1:
        return ""
    return recorded.isoformat()


def abf_channels(path) -> pandas.DataFrame:  # noqa: F821
    """The channels of an .abf file.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    pandas.DataFrame
        ``channel_id``, ``channel_name``, ``unit``, ``is_current``.
    """
    import pandas as pd

    recording = _open_axon(check_path(path, "path"))
    units = [str(u) for u in recording.get_property("physical_unit")]
    return pd.DataFrame(
        {
            "channel_id": [str(c) for c in recording.channel_ids],
            "channel_name": [str(n) for n in recording.get_property("channel_name")],
            "unit": units,
            "is_current": [is_current_unit(u) for u in units],
        }
    )


def abf_info(path) -> dict:
    """The header summary of an .abf file (what pyABF users look at first), and which channels would be used.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    dict
        ``file``, ``abf_version``, ``mode``, ``sampling_frequency``, ``n_sweeps``, ``duration_s``,
        ``protocol``, ``recorded`` (ISO date-time or ""), ``n_tags``, and ``channels`` (a DataFrame: id, name,
        unit, whether ``read_abf`` would use it, and why not).
    """
    path = check_path(path, "path")
    recording = _open_axon(path)
    info = axon_header(recording)
    mode = int(info.get("nOperationMode", (info.get("protocol") or {}).get("nOperationMode", 0)))
    channels = abf_channels(path)
    channels["used"] = channels["is_current"]
    channels["why_not"] = [
        "" if current else f"its unit is {unit or 'missing'}, not a current (allow_any_unit=True uses it anyway)"
        for current, unit in zip(channels["is_current"], channels["unit"])
    ]
    durations = [
        recording.get_num_samples(k) / recording.sampling_frequency for k in range(recording.get_num_segments())
    ]
    return dict(
        file=str(path),
        abf_version=round(float(info.get("fFileVersionNumber", 0.0)), 4),
        mode=_ALL_MODES.get(mode, f"unknown ({mode})"),
        sampling_frequency=float(recording.sampling_frequency),
        n_sweeps=int(recording.get_num_segments()),
        duration_s=float(sum(durations)),
        protocol=protocol_path(info),
        recorded=recording_datetime(info),
        n_tags=int(len(info.get("listTag", []) or [])),
        channels=channels,
    )


def _describe_channels(recording) -> str:
    ids = [str(c) for c in recording.channel_ids]
    names = [str(n) for n in recording.get_property("channel_name")]
    units = [str(u) or "no unit" for u in recording.get_property("physical_unit")]
    return ", ".join(f"id {i} '{n}' [{u}]" for i, n, u in zip(ids, names, units))


def _select_channels(recording, channel, path: Path) -> list[str]:
    ids = [str(c) for c in recording.channel_ids]
    names = [str(n) for n in recording.get_property("channel_name")]
    units = [str(u) for u in recording.get_property("physical_unit")]
    if channel is None:
        chosen = [i for i, u in zip(ids, units) if is_current_unit(u)]
        if not chosen:
            raise ChannelError(
                f"{path.name} has no current channel (pA, nA or A); its channels are: {_describe_channels(recording)}. "
                "This method needs the loose-seal cell-attached current; if a channel holds current under a "
                "wrong unit label, fix the label in Clampfit, or pick a channel with channel=<id or name> "
                "(CLI: --channel) and allow_any_unit=True."
            )
        return chosen
    wanted = list(channel) if isinstance(channel, (list, tuple)) else [channel]
    chosen = []
    for w in wanted:
        w = str(w)
        if w in ids:
            chosen.append(w)
        elif w in names:
            chosen.append(ids[names.index(w)])
        elif w.strip() in [n.strip() for n in names]:
            chosen.append(ids[[n.strip() for n in names].index(w.strip())])
        else:
            raise ChannelError(
                f"{path.name} has no channel '{w}'; its channels are: {_describe_channels(recording)}. "
                "Pass one of these ids or names as channel= (CLI: --channel)."
            )
    return list(dict.fromkeys(chosen))


def validate_recording(recording, name: str = "recording", chunk_size: int = _VALIDATE_CHUNK) -> None:
    """Raise DataError when a channel is empty, constant, or holds NaN/inf. Reads the data in chunks.

    Parameters
    ----------
    recording : BaseRecording
        The recording.
    name : str, default: "recording"
        How messages name it (e.g. the file name).
    chunk_size : int, default: 4000000
        Samples per channel read at once.
    """
    check_recording(recording)
    chunk_size = check_integer(chunk_size, "chunk_size", minimum=1)
    name = str(name)
    n_channels = recording.get_num_channels()
    ids = [str(c) for c in recording.channel_ids]
    if recording.get_dtype().kind in "iu":
        # integer data cannot hold NaN/inf: only emptiness and constancy matter. A strided look settles
        # almost every real file at once; only a (nearly) constant-looking channel needs the full scan.
        lowest = np.full(n_channels, np.inf)
        highest = np.full(n_channels, -np.inf)
        total = 0
        for segment_index in range(recording.get_num_segments()):
            n = recording.get_num_samples(segment_index=segment_index)
            total += n
            if n:
                starts = np.arange(0, n, max(1, n // 20))[:20]
                for probe_start in starts:
                    traces = recording.get_traces(
                        segment_index=segment_index,
                        start_frame=int(probe_start),
                        end_frame=int(min(n, probe_start + 1000)),
                        return_in_uV=False,
                    )
                    lowest = np.minimum(lowest, traces.min(axis=0))
                    highest = np.maximum(highest, traces.max(axis=0))
        if total and np.all(highest > lowest):
            return
    lowest = np.full(n_channels, np.inf)
    highest = np.full(n_channels, -np.inf)
    total = 0
    for segment_index in range(recording.get_num_segments()):
        n = recording.get_num_samples(segment_index=segment_index)
        total += n
        for start in range(0, n, chunk_size):
            traces = recording.get_traces(
                segment_index=segment_index, start_frame=start, end_frame=min(n, start + chunk_size), return_in_uV=False
            )
            if traces.dtype.kind == "f":
                bad = ~np.isfinite(traces)
                if bad.any():
                    (channel,) = np.flatnonzero(bad.any(axis=0))[:1]
                    first = int(np.flatnonzero(bad[:, channel])[0]) + start
                    raise DataError(
                        f"{name}: channel {ids[channel]} holds {int(bad[:, channel].sum())} NaN/inf samples (first in sweep "
                        f"{segment_index} at sample {first}). The file is damaged or was saved with gaps; cut the bad "
                        "stretch out in Clampfit or pick another channel."
                    )
            lowest = np.minimum(lowest, traces.min(axis=0))
            highest = np.maximum(highest, traces.max(axis=0))
    if total == 0:
        raise DataError(f"{name}: the recording holds no samples. Check that the acquisition actually ran.")
    constant_channels = np.flatnonzero(highest <= lowest)
    if constant_channels.size:
        raise DataError(
            f"{name}: channel {ids[constant_channels[0]]} is constant ({lowest[constant_channels[0]]:g} in raw units over all "
            f"{total} samples): nothing was recorded on it (amplifier off, saturated or disconnected). "
            "Pick another channel with channel=<id>."
        )


def read_abf(
    path,
    channel=None,
    *,
    allow_low_rate: bool = False,
    allow_any_unit: bool = False,
    validate: bool = True,
    growing: bool = False,
):
    """Read an Axon .abf file as a SpikeInterface recording of cell-attached current in pA at 40 kHz.

    Parameters
    ----------
    path : str or Path
        The .abf file (ABF1 or ABF2; gap-free, episodic or event-driven).
    channel : str, int, list or None
        Channel id (``"0"``) or name (``"IN 0"``), or a list of them. ``None`` keeps every current
        channel (pA, nA, A): each is one cell.
    allow_low_rate : bool
        Accept (and upsample) recordings below 20 kHz. The 4 ms shape at 40 kHz cannot be recovered from
        them, so results on such data are approximate.
    allow_any_unit : bool
        Accept a named channel whose unit is not a current (for mislabelled channels); its values are
        used as they are and labelled pA.
    validate : bool
        Scan the data once for empty, constant or NaN/inf channels (raises DataError).
    growing : bool, default: False
        The file may still be written by the acquisition program: read the samples written so far (their
        number from the file's size, never from the header's provisional count; gap-free recordings only).
        A finished file is read as it is. See :func:`abf_progress`.

    Returns
    -------
    recording : spikeinterface BaseRecording
        Values in pA (``return_in_uV=True``), 40 kHz, one segment per sweep, dummy probe attached.
        Annotations: ``abf_path``, ``abf_version``, ``original_sampling_frequency``, ``resampled``.
    """
    path = check_path(path, "path")
    channel = check_channel(channel)
    allow_low_rate = check_flag(allow_low_rate, "allow_low_rate")
    allow_any_unit = check_flag(allow_any_unit, "allow_any_unit")
    validate = check_flag(validate, "validate")
    growing = check_flag(growing, "growing")
    recording = _open_axon(path, growing=growing)
    info = axon_header(recording)
    version = float(info.get("fFileVersionNumber", 0.0))
    chosen = _select_channels(recording, channel, path)
    all_ids = [str(c) for c in recording.channel_ids]
    units = {i: str(u) for i, u in zip(all_ids, recording.get_property("physical_unit"))}
    for c in chosen:
        if not is_current_unit(units[c]) and not allow_any_unit:
            raise ChannelError(
                f"{path.name}: channel {c} is in '{units[c] or 'no unit'}', not a current; this method needs the "
                f"cell-attached current (pA). Channels: {_describe_channels(recording)}. If the unit label is wrong, "
                "pass allow_any_unit=True (CLI: --any-unit)."
            )
    recording = recording.select_channels([c for c in recording.channel_ids if str(c) in chosen])
    # SpikeInterface stores non-voltage data with gain_to_uV = the neo gain in the file's unit: rescale to pA.
    factors = np.array([current_to_pa(units[str(c)]) or 1.0 for c in recording.channel_ids])
    recording.set_channel_gains(recording.get_channel_gains() * factors)
    recording.set_channel_offsets(recording.get_channel_offsets() * factors)
    recording.set_property("physical_unit", ["pA"] * recording.get_num_channels())
    recording.set_property("original_unit", [units[str(c)] for c in recording.channel_ids])
    n_channels = recording.get_num_channels()
    recording.set_dummy_probe_from_locations(np.c_[np.arange(n_channels) * 100.0, np.zeros(n_channels)])

    sampling_frequency = float(recording.sampling_frequency)
    if not np.isfinite(sampling_frequency) or sampling_frequency <= 0 or sampling_frequency > _MAX_SAMPLING_FREQUENCY:
        raise AbfError(
            f"{path.name}: the header gives an invalid sampling rate ({sampling_frequency:g} Hz; Axon digitisers record "
            "at most a few hundred kHz); the file is truncated or corrupt. Copy it again from the "
            "acquisition computer."
        )
    if sampling_frequency < MIN_SAMPLING_FREQUENCY - 1e-6 and not allow_low_rate:
        raise SamplingRateError(
            f"{path.name} was sampled at {sampling_frequency:g} Hz; the method needs the 4 ms spike shape at 40 kHz and rates below "
            f"{MIN_SAMPLING_FREQUENCY:g} Hz cannot give it (spikes are narrower than what this rate resolves). "
            "Record at 40 kHz; to run anyway on an approximate upsampled shape pass allow_low_rate=True "
            "(CLI: --allow-low-rate)."
        )
    n_segments = recording.get_num_segments()
    if n_segments > 1000:  # a corrupt sweep table can make 100,000 one-sample sweeps: refuse before scanning them
        mean_len = sum(recording.get_num_samples(segment_index=s) for s in range(n_segments)) / n_segments
        if mean_len < 0.004 * sampling_frequency:
            raise DataError(
                f"{path.name}: {n_segments} sweeps of {mean_len:.1f} samples on average, shorter than the 4 ms "
                "spike shape the method needs; the sweep table is corrupt, or the file cannot be used "
                "with this method (record longer sweeps)."
            )
    if validate:
        validate_recording(recording, name=path.name)
    # within 100 ppm (a digitiser clock's tolerance; 0.016 samples over a 160-sample snippet) the rate is
    # taken as 40 kHz: the polyphase resampler cannot do better there (it keeps 39999.9 Hz, or makes
    # 40002 Hz out of 39998 Hz)
    resampled = not is_paper_rate(sampling_frequency)
    if resampled:
        import spikeinterface.preprocessing as spre

        recording = spre.scale_to_uV(recording)  # float32 pA, so resampling does not requantise
        min_len = min(recording.get_num_samples(s) for s in range(recording.get_num_segments()))
        margin_ms = max(1.0, min(100.0, 0.5 * 1000.0 * min_len / sampling_frequency))
        recording = spre.resample(recording, int(SAMPLING_FREQUENCY), margin_ms=margin_ms)
    snap_sampling_frequency(recording, SAMPLING_FREQUENCY, SAMPLING_FREQUENCY_TOLERANCE)
    if recording.sampling_frequency != SAMPLING_FREQUENCY:
        raise SamplingRateError(
            f"{path.name}: recorded at {sampling_frequency:g} Hz, which cannot be resampled to 40 kHz closely "
            f"enough (got {recording.sampling_frequency:g} Hz). Resample it to 40 kHz in Clampfit."
        )
    # a property (kept in an analyzer's rec_attributes, unlike annotations) for sero_domain "resampled"
    recording.set_property("original_sampling_frequency", [sampling_frequency] * recording.get_num_channels())
    # cells of the file, not of this selection: picking channel 1 and then channel 3 of a 4-cell file must
    # not give both the same cell id
    n_cells = max(sum(is_current_unit(u) for u in units.values()), len(chosen))
    recording.annotate(
        abf_path=str(path.resolve()),
        abf_version=round(version, 4),
        original_sampling_frequency=sampling_frequency,
        resampled=bool(resampled),
        abf_n_cell_channels=int(n_cells),
        abf_datetime=recording_datetime(info),
        abf_protocol=protocol_path(info),
    )
    return recording
