"""Write real Axon Binary Format (.abf) files, for test fixtures and simulated datasets.

The full explanation is in ``docs/simulator.md`` (section "Module notes: spikeinterface_sero.datasets.abf_writer").
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import AbfError

__all__ = ["AbfWriteError", "write_abf", "int16_scaling", "abf_sampling_rate", "AbfInPieces", "write_abf_in_pieces"]

BLOCKSIZE = 512
_ADC_RANGE = 10.0  # V, the usual Digidata input range
_ADC_RESOLUTION = 32768
_COUNTS_SPAN = 65000.0  # counts used for a channel's full range (leaves a margin below 65535)
_CREATOR = "spikeinterface-sero"
_MODES = {"gap-free": 3, "episodic": 5, "event-driven": 1}
_ABF1_HEADER_BLOCKS = 12  # 6144 bytes, the ABF 1.8 extended header


class AbfWriteError(AbfError, ValueError):
    """The data or options cannot be written as an ABF file (also a ``ValueError``)."""


# --------------------------------------------------------------------------------------------------
# helpers that tell what readers will see
# --------------------------------------------------------------------------------------------------
#: the ABF 2 section table, in file order (descriptor s at byte 76 + 16 s: uint32 block, uint32 bytes, int64 n)
ABF2_SECTIONS = (
    "ProtocolSection",
    "ADCSection",
    "DACSection",
    "EpochSection",
    "ADCPerDACSection",
    "EpochPerDACSection",
    "UserListSection",
    "StatsRegionSection",
    "MathSection",
    "StringsSection",
    "DataSection",
    "TagSection",
    "ScopeSection",
    "DeltaSection",
    "VoiceTagSection",
    "SynchArraySection",
    "AnnotationSection",
    "StatsSection",
)


def _f32(x: float) -> float:
    return float(np.float32(x))


def _rate_as_read(interval_us: float, n_channels: int, version: int) -> float:
    """Neo's formula: ABF 2 ``1e6 / fADCSequenceInterval``; ABF 1 ``1 / (fADCSampleInterval * n * 1e-6)``."""
    if version == 2:
        return 1.0e6 / interval_us
    return 1.0 / (interval_us * n_channels * 1.0e-6)


def _best_interval_us(sampling_frequency: float, n_channels: int, version: int) -> float:
    """The float32 interval (µs) whose rate, as Neo computes it, is closest to ``sampling_frequency``."""
    period = 1e6 / sampling_frequency if version == 2 else 1e6 / (sampling_frequency * n_channels)
    v = np.float32(period)
    candidates = [v]
    lo = hi = v
    for _ in range(3):
        lo = np.nextafter(lo, np.float32(-np.inf))
        hi = np.nextafter(hi, np.float32(np.inf))
        candidates += [lo, hi]
    return float(
        min(candidates, key=lambda c: (abs(_rate_as_read(float(c), n_channels, version) - sampling_frequency), c != v))
    )


def abf_sampling_rate(sampling_frequency: float, n_channels: int = 1, version: int = 2) -> float:
    """The sampling rate (Hz) Neo's AxonRawIO will report for a file written with these settings.

    ABF 2 stores the per-channel interval; ABF 1 stores the interval between successive (multiplexed)
    samples, so the float32 rounding differs.  Equals ``sampling_frequency`` exactly for 40 kHz (ABF 2 any
    channel count; ABF 1 with 1, 2 or 4 channels), 10, 20, 25, 50 kHz, ...
    """
    interval = _best_interval_us(float(sampling_frequency), n_channels, version)
    return _rate_as_read(interval, n_channels, version)


def int16_scaling(channel_data, gain: float | None = None, offset: float | None = None) -> tuple[float, float]:
    """``(gain, offset)`` that :func:`write_abf` uses for one channel in int16 format, exactly as Neo will
    compute them from the header (value = count * gain + offset).

    Default: offset = mid-range of the finite data (as float32), gain = range / 65000 per count.
    """
    g, o, _ = _int16_params(channel_data, gain, offset)
    return g, o


def _int16_params(channel_data, gain, offset) -> tuple[float, float, float]:
    x = np.asarray(channel_data, dtype=np.float64).ravel()
    finite = x[np.isfinite(x)]
    if offset is None:
        offset = 0.0 if finite.size == 0 else 0.5 * (float(finite.max()) + float(finite.min()))
    offset = _f32(offset)
    if gain is None:
        span = 0.0 if finite.size == 0 else float(finite.max() - finite.min())
        gain = span / _COUNTS_SPAN
        if not gain > 0:
            gain = max(abs(offset), 1.0) * 1e-4
    if not (np.isfinite(gain) and gain > 0):
        raise AbfWriteError(f"int16 gain must be a positive finite number, got {gain!r}.")
    scale = np.float32(_ADC_RANGE / (_ADC_RESOLUTION * gain))  # fInstrumentScaleFactor
    if not np.isfinite(scale) or scale == 0:
        raise AbfWriteError(f"int16 gain {gain!r} cannot be stored in the ABF header (float32 overflow).")
    # the reader's arithmetic: fADCRange / fInstrumentScaleFactor / fSignalGain / fADCProgGain / lADCRes
    gain_read = _ADC_RANGE / float(scale) / 1.0 / 1.0 / _ADC_RESOLUTION
    return gain_read, offset, float(scale)


# --------------------------------------------------------------------------------------------------
# input normalisation
# --------------------------------------------------------------------------------------------------
def _as_sweeps(data, mode: str) -> list[np.ndarray]:
    """Return a list of 2-D float arrays (n_samples_i, n_channels)."""
    sweeps = _gap_free_sweeps(data) if mode == "gap-free" else _episode_sweeps(data, mode)
    _check_sweeps(sweeps, mode)
    return sweeps


def _gap_free_sweeps(data) -> list[np.ndarray]:
    """The one sweep of a gap-free recording."""
    if isinstance(data, (list, tuple)):
        if len(data) != 1:
            raise AbfWriteError(
                f"mode='gap-free' takes one array (n_samples,) or (n_samples, n_channels); got a list of "
                f"{len(data)} sweeps. Use mode='episodic' for several sweeps."
            )
        data = data[0]
    arr = np.asarray(data)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise AbfWriteError(
            f"mode='gap-free' takes an array (n_samples,) or (n_samples, n_channels); got shape {arr.shape}."
        )
    return [arr]


def _episode_sweeps(data, mode: str) -> list[np.ndarray]:
    """The sweeps of an episodic or event-driven recording."""
    if isinstance(data, np.ndarray):
        if data.ndim != 3:
            raise AbfWriteError(
                f"mode='{mode}' takes an array (n_sweeps, n_samples, n_channels) or a list of "
                f"(n_samples_i, n_channels) arrays; got an array of shape {data.shape}."
            )
        sweeps = [data[i] for i in range(data.shape[0])]
    else:
        sweeps = []
        for s in data:
            a = np.asarray(s)
            if a.ndim == 1:
                a = a[:, None]
            if a.ndim != 2:
                raise AbfWriteError(f"each sweep must be (n_samples,) or (n_samples, n_channels); got {a.shape}.")
            sweeps.append(a)
    if not sweeps:
        raise AbfWriteError("no sweeps to write.")
    return sweeps


def _check_sweeps(sweeps: list[np.ndarray], mode: str) -> None:
    """Raise for sweeps that cannot be written: channel counts, empty, non-numeric or unequal episodes."""
    channel_counts = {s.shape[1] for s in sweeps}
    if len(channel_counts) != 1:
        raise AbfWriteError(f"all sweeps must have the same number of channels; got {sorted(channel_counts)}.")
    for s in sweeps:
        if s.shape[0] == 0 or s.shape[1] == 0:
            raise AbfWriteError(f"empty data (shape {s.shape}); an ABF file needs at least one sample per channel.")
        if not (np.issubdtype(s.dtype, np.number) or s.dtype == bool):
            raise AbfWriteError(f"data must be numeric, got dtype {s.dtype}.")
        if np.iscomplexobj(s):
            raise AbfWriteError("complex data cannot be written to ABF.")
    if mode == "episodic" and len({s.shape[0] for s in sweeps}) != 1:
        raise AbfWriteError(
            "mode='episodic' needs sweeps of equal length; use mode='event-driven' for variable-length sweeps."
        )


def _per_channel(value, n_channels: int, name: str, default) -> list:
    if value is None:
        return [default(i) if callable(default) else default for i in range(n_channels)]
    if isinstance(value, (str, bytes)) or np.isscalar(value):
        return [value] * n_channels
    value = list(value)
    if len(value) != n_channels:
        raise AbfWriteError(f"{name} has {len(value)} entries but the data have {n_channels} channel(s).")
    return value


def _encode(s: str, what: str) -> bytes:
    if "\x00" in s:
        raise AbfWriteError(f"{what} {s!r} contains a NUL character.")
    try:
        return s.encode("latin-1")  # ABF files are Windows-1252/latin-1: µ = 0xB5, ° = 0xB0
    except UnicodeEncodeError:
        return s.encode("utf-8")


# --------------------------------------------------------------------------------------------------
# writer
# --------------------------------------------------------------------------------------------------
def write_abf(
    path,
    data,
    sampling_frequency: float,
    *,
    units: str | Sequence[str] = "pA",
    channel_names: Sequence[str] | None = None,
    data_format: str = "int16",
    mode: str = "gap-free",
    sweep_t_starts: Sequence[float] | None = None,
    version: int = 2,
    int16_gain: float | Sequence[float] | None = None,
    int16_offset: float | Sequence[float] | None = None,
    clip: bool = False,
    rec_datetime: _dt.datetime | None = None,
    protocol_path: str = "",
    _blob_only: bool = False,
) -> Path:
    """Write ``data`` to ``path`` as a real Axon Binary Format file and return the path.

    Parameters
    ----------
    path : str or Path
        Output file (parent folders are created).
    data : array or list of arrays
        ``mode="gap-free"``: ``(n_samples,)`` or ``(n_samples, n_channels)``.
        ``mode="episodic"`` / ``"event-driven"``: ``(n_sweeps, n_samples, n_channels)`` or a list of
        ``(n_samples_i, n_channels)`` (or ``(n_samples_i,)``) sweeps; episodic sweeps must have equal length.
    sampling_frequency : float
        Per-channel rate in Hz (see :func:`abf_sampling_rate` for what Neo reports).
    units : str or list of str
        Physical unit of each channel ("pA", "nA", "A", "mV", "" ...).
    channel_names : list of str, optional
        Default ``"IN 0"``, ``"IN 1"``, ... (Clampex's names). An empty name is read by Neo as ``"ch<i>"``.
    data_format : "int16" or "float32"
        int16: quantised with a per-channel gain (values within gain/2); float32: bit-exact.
    mode : "gap-free", "episodic" or "event-driven"
    sweep_t_starts : list of float, optional
        Start time (s) of each sweep; default: sweeps back to back.
    version : 1 or 2
        ABF 1.83 or ABF 2.9 layout.
    int16_gain, int16_offset : float or list, optional
        Force the int16 scaling of each channel (value = count * gain + offset).
    clip : bool
        With int16, saturate values outside the int16 range instead of raising.
    rec_datetime : datetime, optional
        Recording start written in the header (default: no date).
    protocol_path : str
        Stored as the protocol path (default empty).

    Raises
    ------
    AbfWriteError (an ``AbfError`` and ``ValueError``) for data or options that cannot be written.
    """
    sampling_frequency_hz = _check_options(mode, data_format, version, sampling_frequency)
    sweeps = _as_sweeps(data, mode)
    n_channels = sweeps[0].shape[1]
    n_sweeps = len(sweeps)
    lengths = [s.shape[0] for s in sweeps]
    if version == 1 and n_channels > 16:
        raise AbfWriteError(f"ABF 1 holds at most 16 channels, got {n_channels}; use version=2.")

    channel_units = [str(u) for u in _per_channel(units, n_channels, "units", "pA")]
    channel_name_list = [str(n) for n in _per_channel(channel_names, n_channels, "channel_names", lambda i: f"IN {i}")]
    if version == 1:
        _check_abf1_text(channel_name_list, channel_units)
    starts = _sweep_starts(mode, sweep_t_starts, lengths, sampling_frequency_hz)

    interleaved = np.concatenate(sweeps, axis=0)  # (total_samples_per_channel, n_channels)
    if interleaved.size > np.iinfo(np.int32).max:
        raise AbfWriteError("too many samples for one ABF file (more than 2**31).")
    if data_format == "float32":
        raw = np.ascontiguousarray(interleaved, dtype="<f4")
        offsets, scales, item = [0.0] * n_channels, [1.0] * n_channels, 4  # scales: fInstrumentScaleFactor
    else:
        raw, offsets, scales = _int16_samples(interleaved, int16_gain, int16_offset, clip)
        item = 2
    raw_bytes = raw.tobytes()
    total = interleaved.size  # samples, all channels
    date_int, time_ms = _header_date_time(rec_datetime)

    synch = None
    if mode != "gap-free":
        synch = np.empty(n_sweeps, dtype=[("start", "<i4"), ("length", "<i4")])
        synch["start"] = starts
        synch["length"] = [n * n_channels for n in lengths]

    common = dict(
        sampling_frequency=sampling_frequency_hz,
        n_channels=n_channels,
        n_sweeps=n_sweeps,
        lengths=lengths,
        mode=mode,
        data_format=data_format,
        units=channel_units,
        names=channel_name_list,
        scales=scales,
        offsets=offsets,
        total=total,
        item=item,
        raw_bytes=raw_bytes,
        synch=synch,
        date_int=date_int,
        time_ms=time_ms,
        protocol_path=protocol_path,
    )
    blob = _abf2_bytes(**common) if version == 2 else _abf1_bytes(**common)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if _blob_only:
        return blob
    path.write_bytes(blob)
    return path


def _check_options(mode: str, data_format: str, version: int, sampling_frequency) -> float:
    """Raise for an unknown mode, data format or version; return the sampling frequency in Hz."""
    if mode not in _MODES:
        raise AbfWriteError(f"mode must be one of {sorted(_MODES)}, got {mode!r}.")
    if data_format not in ("int16", "float32"):
        raise AbfWriteError(f"data_format must be 'int16' or 'float32', got {data_format!r}.")
    if version not in (1, 2):
        raise AbfWriteError(f"version must be 1 (ABF 1.83) or 2 (ABF 2.9), got {version!r}.")
    sampling_frequency_hz = float(sampling_frequency)
    if not (np.isfinite(sampling_frequency_hz) and sampling_frequency_hz > 0):
        raise AbfWriteError(f"sampling_frequency must be a positive number of Hz, got {sampling_frequency!r}.")
    return sampling_frequency_hz


def _check_abf1_text(channel_names: list[str], channel_units: list[str]) -> None:
    """Raise for channel names or units longer than ABF 1's fixed-width fields."""
    for n in channel_names:
        if len(_encode(n, "channel name")) > 10:
            raise AbfWriteError(f"ABF 1 channel names hold 10 characters; {n!r} is longer. Use version=2.")
    for u in channel_units:
        if len(_encode(u, "unit")) > 8:
            raise AbfWriteError(f"ABF 1 units hold 8 characters; {u!r} is longer. Use version=2.")


def _sweep_starts(mode: str, sweep_t_starts, lengths: list[int], sampling_frequency_hz: float) -> list[int]:
    """Start of each sweep in samples (gap-free: ``[0]``); default: sweeps back to back."""
    if mode == "gap-free":
        if sweep_t_starts is not None:
            raise AbfWriteError("sweep_t_starts is only for mode='episodic' or 'event-driven'.")
        return [0]
    if sweep_t_starts is None:
        starts = list(np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64))
    else:
        if len(sweep_t_starts) != len(lengths):
            raise AbfWriteError(f"sweep_t_starts has {len(sweep_t_starts)} entries for {len(lengths)} sweeps.")
        t = np.asarray(sweep_t_starts, dtype=np.float64)
        if not np.all(np.isfinite(t)) or np.any(t < 0):
            raise AbfWriteError("sweep_t_starts must be finite and >= 0 seconds.")
        starts = [int(v) for v in np.round(t * sampling_frequency_hz)]
    if max(starts) > np.iinfo(np.int32).max:
        raise AbfWriteError("a sweep starts too late to be stored in the ABF synch array (int32 samples).")
    return starts


def _int16_samples(interleaved: np.ndarray, int16_gain, int16_offset, clip: bool):
    """Quantise ``(n_samples, n_channels)`` values to int16 counts; return (counts, offsets, scale factors)."""
    n_channels = interleaved.shape[1]
    x = interleaved.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise AbfWriteError("NaN or inf samples cannot be stored as int16; use data_format='float32'.")
    requested_gains = _per_channel(int16_gain, n_channels, "int16_gain", None)
    requested_offsets = _per_channel(int16_offset, n_channels, "int16_offset", None)
    offsets = [0.0] * n_channels
    scales = [1.0] * n_channels  # fInstrumentScaleFactor
    raw = np.empty(x.shape, dtype="<i2")
    for c in range(n_channels):
        g, o, scales[c] = _int16_params(x[:, c], requested_gains[c], requested_offsets[c])
        counts = np.round((x[:, c] - o) / g)
        if not clip and (counts.min() < -32768 or counts.max() > 32767):
            raise AbfWriteError(
                f"channel {c}: values exceed the int16 range with gain {g:g} and offset {o:g}; "
                "choose a larger int16_gain, or pass clip=True to saturate."
            )
        raw[:, c] = np.clip(counts, -32768, 32767)
        offsets[c] = o
    return raw, offsets, scales


def _header_date_time(rec_datetime: _dt.datetime | None) -> tuple[int, int]:
    """The header's date (YYYYMMDD) and time of day (ms); ``(0, 0)`` without a date."""
    if rec_datetime is None:
        return 0, 0
    date_int = rec_datetime.year * 10000 + rec_datetime.month * 100 + rec_datetime.day
    time_ms = int(
        round(
            (rec_datetime.hour * 3600 + rec_datetime.minute * 60 + rec_datetime.second) * 1000
            + rec_datetime.microsecond / 1000
        )
    )
    return date_int, time_ms


def _pad(b: bytes | bytearray) -> bytes:
    remainder = len(b) % BLOCKSIZE
    return bytes(b) + (b"\x00" * (BLOCKSIZE - remainder) if remainder else b"")


def _n_blocks(n_bytes: int) -> int:
    return max(1, -(-n_bytes // BLOCKSIZE))


def _episode_fields(mode, n_channels, lengths, total):
    if mode == "gap-free":
        samples_per_episode = 256 * n_channels  # Clampex's gap-free acquisition chunk
        return samples_per_episode, -(-total // samples_per_episode)
    return max(lengths) * n_channels, len(lengths)


def _abf1_bytes(
    *,
    sampling_frequency,
    n_channels,
    n_sweeps,
    lengths,
    mode,
    data_format,
    units,
    names,
    scales,
    offsets,
    total,
    item,
    raw_bytes,
    synch,
    date_int,
    time_ms,
    protocol_path,
) -> bytes:
    h = bytearray(_ABF1_HEADER_BLOCKS * BLOCKSIZE)
    interval = _best_interval_us(sampling_frequency, n_channels, 1)
    samples_per_episode, n_episodes = _episode_fields(mode, n_channels, lengths, total)
    data_blocks = _n_blocks(total * item)
    synch_pointer = _ABF1_HEADER_BLOCKS + data_blocks if synch is not None else 0

    def put(layout, position, *values):
        struct.pack_into("<" + layout, h, position, *values)

    put("4s", 0, b"ABF ")
    put("f", 4, 1.83)  # fFileVersionNumber
    put("h", 8, _MODES[mode])  # nOperationMode
    put("i", 10, total)  # lActualAcqLength
    put("h", 14, 0)  # nNumPointsIgnored
    put("i", 16, n_episodes)  # lActualEpisodes
    put("i", 20, date_int)  # lFileStartDate
    put("i", 24, time_ms // 1000)  # lFileStartTime (s)
    put("f", 32, 1.83)  # fHeaderVersionNumber
    put("h", 36, 1)  # nFileType (ABF)
    put("i", 40, _ABF1_HEADER_BLOCKS)  # lDataSectionPtr
    put("i", 92, synch_pointer)  # lSynchArrayPtr
    put("i", 96, 0 if synch is None else n_sweeps)  # lSynchArraySize
    put("h", 100, 0 if data_format == "int16" else 1)  # nDataFormat
    put("h", 102, 1)  # nSimultaneousScan
    put("h", 120, n_channels)  # nADCNumChannels
    put("f", 122, interval)  # fADCSampleInterval (µs between multiplexed samples)
    put("f", 130, 0.0)  # fSynchTimeUnit: synch array in samples
    put("f", 134, _f32(sum(lengths) / sampling_frequency))  # fSecondsPerRun
    put("i", 138, samples_per_episode)  # lNumSamplesPerEpisode
    put("i", 142, 0)  # lPreTriggerSamples
    put("i", 146, n_episodes if mode != "gap-free" else 1)  # lEpisodesPerRun
    put("i", 150, 1)  # lRunsPerTrial
    put("i", 154, 1)  # lNumberOfTrials
    put("f", 244, _ADC_RANGE)  # fADCRange
    put("f", 248, _ADC_RANGE)  # fDACRange
    put("i", 252, _ADC_RESOLUTION)  # lADCResolution
    put("i", 256, _ADC_RESOLUTION)  # lDACResolution
    put("16s", 294, _CREATOR.encode()[:16])  # sCreatorInfo
    put("h", 366, time_ms % 1000)  # nFileStartMillisecs
    for i in range(16):
        put("h", 378 + 2 * i, i)  # nADCPtoLChannelMap
        put("h", 410 + 2 * i, i if i < n_channels else -1)  # nADCSamplingSeq
        put("10s", 442 + 10 * i, _encode(names[i], "channel name").ljust(10) if i < n_channels else b" " * 10)
        put("8s", 602 + 8 * i, _encode(units[i], "unit").ljust(8) if i < n_channels else b" " * 8)
        put("f", 730 + 4 * i, 1.0)  # fADCProgrammableGain
        put("f", 794 + 4 * i, 1.0)  # fADCDisplayAmplification
        put("f", 922 + 4 * i, scales[i] if i < n_channels else 1.0)  # fInstrumentScaleFactor
        put("f", 986 + 4 * i, offsets[i] if i < n_channels else 0.0)  # fInstrumentOffset
        put("f", 1050 + 4 * i, 1.0)  # fSignalGain
        put("f", 1114 + 4 * i, 0.0)  # fSignalOffset
        put("h", 4512 + 2 * i, 0)  # nTelegraphEnable
        put("f", 4576 + 4 * i, 1.0)  # fTelegraphAdditGain
    for i in range(4):
        put("10s", 1306 + 10 * i, f"Cmd {i}".encode().ljust(10))  # sDACChannelName
        put("8s", 1346 + 8 * i, b"mV".ljust(8))  # sDACChannelUnits
    put("384s", 4898, _encode(protocol_path, "protocol path")[:384].ljust(384))  # sProtocolPath
    blob = bytes(h) + _pad(raw_bytes)
    if synch is not None:
        blob += _pad(synch.tobytes())
    return blob


def _abf2_bytes(
    *,
    sampling_frequency,
    n_channels,
    n_sweeps,
    lengths,
    mode,
    data_format,
    units,
    names,
    scales,
    offsets,
    total,
    item,
    raw_bytes,
    synch,
    date_int,
    time_ms,
    protocol_path,
) -> bytes:
    interval = _best_interval_us(sampling_frequency, n_channels, 2)
    samples_per_episode, n_episodes = _episode_fields(mode, n_channels, lengths, total)
    n_dac = n_channels

    # ---- strings: index 0 is the empty string (readers split after the last double NUL) ----
    pool: list[bytes] = []

    def sidx(text: str, what: str) -> int:
        b = _encode(text, what)
        if not b:
            return 0
        pool.append(b)
        return len(pool)

    creator_index = sidx(_CREATOR, "creator")
    protocol_index = sidx(protocol_path, "protocol path")
    adc_string_indices = [(sidx(names[c], "channel name"), sidx(units[c], "unit")) for c in range(n_channels)]
    dac_string_indices = [(sidx(f"Cmd {d}", "DAC name"), sidx("mV", "DAC unit")) for d in range(n_dac)]
    body = b"".join(s + b"\x00" for s in pool)
    strings = bytearray(44)
    struct.pack_into("<4sIIII", strings, 0, b"SSCH", 1, len(pool), max([len(s) for s in pool] + [0]) + 1, len(body))
    strings = bytes(strings) + body

    # ---- section placement ----
    protocol = bytearray(BLOCKSIZE)
    adc = bytearray(128 * n_channels)
    dac = bytearray(256 * n_dac)
    blk = 1
    place = {}
    for name, size in (
        ("ProtocolSection", len(protocol)),
        ("ADCSection", len(adc)),
        ("DACSection", len(dac)),
        ("StringsSection", len(strings)),
        ("DataSection", total * item),
    ):
        place[name] = blk
        blk += _n_blocks(size)
    if synch is not None:
        place["SynchArraySection"] = blk

    # ---- protocol section ----
    def pp(layout, position, *values):
        struct.pack_into("<" + layout, protocol, position, *values)

    pp("h", 0, _MODES[mode])  # nOperationMode
    pp("f", 2, interval)  # fADCSequenceInterval (µs per channel)
    pp("f", 14, 0.0)  # fSynchTimeUnit: synch array in samples
    pp("f", 18, _f32(sum(lengths) / sampling_frequency))  # fSecondsPerRun
    pp("i", 22, samples_per_episode)  # lNumSamplesPerEpisode
    pp("i", 26, 0)  # lPreTriggerSamples
    pp("i", 30, n_episodes if mode != "gap-free" else 1)  # lEpisodesPerRun
    pp("i", 34, 1)  # lRunsPerTrial
    pp("i", 38, 1)  # lNumberOfTrials
    if mode != "gap-free" and n_sweeps > 1 and synch is not None:
        pp("f", 62, _f32((synch["start"][1] - synch["start"][0]) / sampling_frequency))  # fEpisodeStartToStart
    pp("i", 86, samples_per_episode)  # lSamplesPerTrace
    pp("f", 110, _ADC_RANGE)  # fADCRange
    pp("f", 114, _ADC_RANGE)  # fDACRange
    pp("i", 118, _ADC_RESOLUTION)  # lADCResolution
    pp("i", 122, _ADC_RESOLUTION)  # lDACResolution
    pp("h", 198, 16)  # nDigitizerADCs
    pp("h", 200, max(4, n_dac))  # nDigitizerDACs
    pp("h", 202, 8)  # nDigitizerTotalDigitalOuts
    pp("h", 204, 4)  # nDigitizerSynchDigitalOuts

    # ---- ADC section ----
    for c in range(n_channels):
        o = 128 * c
        struct.pack_into("<hhhf", adc, o, c, 0, 0, 1.0)  # nADCNum, nTelegraphEnable, Instrument, AdditGain
        struct.pack_into("<hh", adc, o + 24, c, c)  # nADCPtoLChannelMap, nADCSamplingSeq
        struct.pack_into("<fff", adc, o + 28, 1.0, 1.0, 0.0)  # ProgrammableGain, DisplayAmp, DisplayOffset
        # fInstrumentScaleFactor, fInstrumentOffset, fSignalGain, fSignalOffset
        struct.pack_into("<ffff", adc, o + 40, scales[c], offsets[c], 1.0, 0.0)
        struct.pack_into("<ff", adc, o + 56, 100000.0, 0.0)  # fSignalLowpassFilter, fSignalHighpassFilter
        struct.pack_into("<f", adc, o + 66, 100000.0)  # fPostProcessLowpassFilter
        struct.pack_into("<ii", adc, o + 74, *adc_string_indices[c])  # lADCChannelNameIndex, lADCUnitsIndex

    # ---- DAC section ----
    for d in range(n_dac):
        o = 256 * d
        struct.pack_into("<hh", dac, o, d, 0)  # nDACNum
        # fInstrumentHoldingLevel, fDACScaleFactor, fDACHoldingLevel, fDACCalibrationFactor
        struct.pack_into("<ffff", dac, o + 4, 0.0, 20.0, 0.0, 1.0)
        struct.pack_into("<ii", dac, o + 24, *dac_string_indices[d])

    # ---- header and section index ----
    header = bytearray(BLOCKSIZE)
    guid = hashlib.md5(raw_bytes[: 1 << 20] + repr((sampling_frequency, names, units, lengths)).encode()).digest()
    for fmt, off, val in (
        ("4s", 0, b"ABF2"),
        ("4B", 4, (0, 0, 9, 2)),  # fFileVersionNumber 2.9.0.0 (bytes are build, bugfix, minor, major)
        ("I", 8, BLOCKSIZE),  # uFileInfoSize
        ("I", 12, n_episodes if mode != "gap-free" else 0),  # lActualEpisodes
        ("I", 16, date_int),  # uFileStartDate
        ("I", 20, time_ms),  # uFileStartTimeMS
        ("H", 28, 1),  # nFileType
        ("H", 30, 0 if data_format == "int16" else 1),  # nDataFormat
        ("H", 32, 1),  # nSimultaneousScan
        ("16s", 40, guid),  # FileGUID
        ("4B", 56, (0, 0, 1, 0)),  # uCreatorVersion 0.1.0.0
        ("I", 60, creator_index),  # uCreatorNameIndex
        ("I", 72, protocol_index),  # uProtocolPathIndex
    ):
        struct.pack_into("<" + fmt, header, off, *(val if isinstance(val, tuple) else (val,)))
    section_names = list(ABF2_SECTIONS)
    entries = {
        "ProtocolSection": (BLOCKSIZE, 1),
        "ADCSection": (128, n_channels),
        "DACSection": (256, n_dac),
        "StringsSection": (len(strings), len(pool)),
        "DataSection": (item, total),
    }
    if synch is not None:
        entries["SynchArraySection"] = (8, n_sweeps)
    for s, name in enumerate(section_names):
        if name in entries:
            nbytes, count = entries[name]
            struct.pack_into("<IIq", header, 76 + 16 * s, place[name], nbytes, count)

    blob = bytearray(header)
    for part in (protocol, adc, dac, strings, raw_bytes):
        blob += _pad(part)
    if synch is not None:
        blob += _pad(synch.tobytes())
    return bytes(blob)


# --------------------------------------------------------------------------------------------------
# a file written while it records, the way Axon's ABF file library does it (docs/live.md, "Growing files")
# --------------------------------------------------------------------------------------------------
_ABF2_DATA_ENTRY = 76 + 16 * ABF2_SECTIONS.index("DataSection")
_ABF2_SYNCH_ENTRY = 76 + 16 * ABF2_SECTIONS.index("SynchArraySection")


def _data_extent(blob: bytes) -> tuple[int, int]:
    """(first byte, number of bytes) of the data section of a finished file made by :func:`write_abf`."""
    if blob[:4] == b"ABF2":
        block, item, count = struct.unpack_from("<IIq", blob, _ABF2_DATA_ENTRY)
        return block * BLOCKSIZE, item * count
    (count,) = struct.unpack_from("<i", blob, 10)  # lActualAcqLength
    (block,) = struct.unpack_from("<i", blob, 40)  # lDataSectionPtr
    (data_format,) = struct.unpack_from("<h", blob, 100)
    return block * BLOCKSIZE, count * (2 if data_format == 0 else 4)


def _provisional_header(header: bytes) -> bytes:
    """The header as it stands while recording: no samples, no sweeps and no synch array yet (the fields
    ``ABF_WriteOpen`` zeroes; ``ABF_UpdateHeader`` fills them in at the end)."""
    h = bytearray(header)
    if h[:4] == b"ABF2":
        struct.pack_into("<I", h, 12, 0)  # lActualEpisodes
        struct.pack_into("<q", h, _ABF2_DATA_ENTRY + 8, 0)  # DataSection entries
        struct.pack_into("<IIq", h, _ABF2_SYNCH_ENTRY, 0, 0, 0)  # SynchArraySection
    else:
        struct.pack_into("<i", h, 10, 0)  # lActualAcqLength
        struct.pack_into("<i", h, 16, 0)  # lActualEpisodes
        struct.pack_into("<ii", h, 92, 0, 0)  # lSynchArrayPtr, lSynchArraySize
    return bytes(h)


class AbfInPieces:
    """An .abf file written while it records: the header with provisional counts first, the samples appended
    in pieces, then (at :meth:`finish`) the synch array and the finished header, as Axon's ABF file library
    does (``ABF_WriteOpen``, data writes, ``ABF_UpdateHeader``; docs/live.md). The finished file is byte for
    byte the one :func:`write_abf` writes.

    Parameters
    ----------
    path : str or Path
        The file to write.
    data : numpy.ndarray
        The samples, as :func:`write_abf` takes them.
    sampling_frequency : float
        Samples per second per channel.
    **options
        The other keywords of :func:`write_abf`.
    """

    def __init__(self, path, data, sampling_frequency: float, **options):
        self.path = Path(path)
        self.final = write_abf(self.path, data, sampling_frequency, _blob_only=True, **options)
        self.data_start, n_bytes = _data_extent(self.final)
        self.data_end = self.data_start + n_bytes
        sweeps = _as_sweeps(data, options.get("mode", "gap-free"))
        item = 4 if options.get("data_format", "int16") == "float32" else 2
        self.frame_bytes = item * sweeps[0].shape[1]  # one sample of every channel
        self.n_samples = n_bytes // self.frame_bytes
        self.written = 0  # samples per channel on disk
        self._handle = None

    def begin(self) -> None:
        """Create the file with its provisional header (no data yet)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "wb")  # noqa: SIM115 - open until finish()
        self._handle.write(_provisional_header(self.final[: self.data_start]))
        self._handle.flush()

    def append(self, n_samples: int) -> int:
        """Append the next ``n_samples`` samples (all channels; fewer at the end); returns how many are on disk."""
        if self._handle is None:
            self.begin()
        stop = min(self.n_samples, self.written + max(0, int(n_samples)))
        first = self.data_start + self.written * self.frame_bytes
        self._handle.write(self.final[first : self.data_start + stop * self.frame_bytes])
        self._handle.flush()
        self.written = stop
        return stop

    def finish(self) -> None:
        """The rest of the samples, the synch array, and the finished header (its counts filled in)."""
        self.append(self.n_samples)
        self._handle.write(self.final[self.data_end :])
        self._handle.seek(0)
        self._handle.write(self.final[: self.data_start])
        self._handle.close()
        self._handle = None


def write_abf_in_pieces(
    path, data, sampling_frequency: float, *, piece_s: float = 1.0, speed: float = 1.0, **options
) -> float:
    """Write an .abf file the way an acquisition program does while it records (:class:`AbfInPieces`): one
    piece of ``piece_s`` seconds of recording every ``piece_s / speed`` seconds; returns the
    ``time.monotonic()`` of the last byte (the finished header).

    Parameters
    ----------
    path : str or Path
        The file to write.
    data : numpy.ndarray
        The samples, as :func:`write_abf` takes them.
    sampling_frequency : float
        Samples per second per channel.
    **options
        The other keywords of :func:`write_abf`.
    piece_s : float, default: 1.0
        Seconds of recording per piece.
    speed : float, default: 1.0
        Times acquisition speed (1: as fast as the recording runs; ``inf``: no pauses).

    Returns
    -------
    float
    """
    import time

    writer = AbfInPieces(path, data, sampling_frequency, **options)
    step = max(1, int(round(piece_s * sampling_frequency)))
    writer.begin()
    while writer.written < writer.n_samples:
        time.sleep(piece_s / speed)
        writer.append(step)
    writer.finish()
    return time.monotonic()
