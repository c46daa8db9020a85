"""Detection: the paper's trigger (the −50 pA crossing from the local baseline) and the 160-point snippets
around it, in chunks. How the detector works: ``docs/architecture.md`` ("The detector").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .arguments import check_choice, check_integer, check_number
from .constants import (
    DEFAULT_BASELINE_WINDOW_MS,
    DEFAULT_DEAD_TIME_MS,
    DEFAULT_THRESHOLD_PA,
    MAX_WAVEFORMS_PER_CELL,
    NAFTER,
    NBEFORE,
    POLARITIES,
    SNIPPET_LENGTH,
    is_paper_rate,
)
from .errors import DataError, ParameterError, SnippetError
from .io import check_recording, read_abf
from .snippet_formats import Snippets, cell_id, check_cap, spike_cap

__all__ = [
    "DetectionParams",
    "recording_to_snippets",
    "abf_to_snippets",
    "detection_trace",
]

_BLOCK_MS = 10.0
_MAX_DEAD_TIME_MS = 1000.0  # beyond a second the "dead time" would merge separate spikes of any DRN neuron
_DECIMATE = 8  # baseline block medians use every 8th sample: 50 per 10 ms block at 40 kHz


@dataclass(frozen=True)
class DetectionParams:
    """How triggers are found. Stored with every result so that a run can be repeated exactly.

    Parameters
    ----------
    threshold : float, default: -50.0
        Signed threshold in pA relative to the local baseline (−50 = the paper's). Ignored when
        ``mad_multiplier`` is set.
    mad_multiplier : float or None, default: None
        When set, the threshold is this many robust noise SDs (MAD / 0.6745) from the baseline, with the sign
        given by ``polarity`` (e.g. 5 for 5 × MAD).
    polarity : "negative" | "positive", default: "negative"
        "negative" (crossing downward, the paper's cell-attached action currents) or "positive" (inverted
        recordings).
    dead_time_ms : float, default: 2.0
        After a trigger, crossings within this time are the same spike.
    baseline_window_ms : float or None, default: 100.0
        Width of the running-median baseline; None measures from 0 pA (a fixed baseline, as the paper's
        plain −50 pA level).
    """

    threshold: float = DEFAULT_THRESHOLD_PA
    mad_multiplier: float | None = None
    polarity: str = "negative"
    dead_time_ms: float = DEFAULT_DEAD_TIME_MS
    baseline_window_ms: float | None = DEFAULT_BASELINE_WINDOW_MS

    def __post_init__(self):
        check_choice(self.polarity, "polarity", POLARITIES)
        if self.mad_multiplier is None:
            threshold = check_number(self.threshold, "threshold")
            if threshold == 0:
                raise ParameterError("threshold must be a non-zero number of pA (e.g. -50), not 0.")
            if (threshold > 0) != (self.polarity == "positive"):
                raise ParameterError(
                    f"threshold {threshold:g} pA does not match polarity '{self.polarity}': negative-going "
                    "spikes need a negative threshold (e.g. -50), positive-going (inverted) recordings a "
                    "positive one with polarity='positive' (CLI: --polarity positive)."
                )
        else:
            check_number(self.mad_multiplier, "mad_multiplier", minimum=0, strict=True)
        check_number(self.dead_time_ms, "dead_time_ms", minimum=0, maximum=_MAX_DEAD_TIME_MS)
        if self.baseline_window_ms is not None:
            check_number(self.baseline_window_ms, "baseline_window_ms", minimum=2 * _BLOCK_MS)

    def to_dict(self) -> dict:
        """The parameters as JSON values."""
        return dict(
            threshold=float(self.threshold),
            mad_multiplier=self.mad_multiplier,
            polarity=self.polarity,
            dead_time_ms=float(self.dead_time_ms),
            baseline_window_ms=self.baseline_window_ms,
        )


def n_cell_channels(recording) -> int:
    """How many cells (current channels) the source file holds: a cell is named by its channel whenever the
    file holds several, even if only one was read."""
    if "abf_n_cell_channels" in recording.get_annotation_keys():
        return max(int(recording.get_annotation("abf_n_cell_channels")), recording.get_num_channels())
    return recording.get_num_channels()


def recording_stem(recording) -> str:
    path = recording.get_annotation("abf_path") if "abf_path" in recording.get_annotation_keys() else None
    return Path(path).stem if path else "cell"


def _running_median(x: np.ndarray, width: int) -> np.ndarray:
    from scipy.ndimage import median_filter

    if width <= 1 or x.shape[0] <= 1:
        return x
    return median_filter(x, size=(width, 1), mode="nearest")


def _pass_baseline(recording, seg: int, block: int, chunk: int, want_noise: bool):
    """Block medians (n_blocks, n_ch) in pA and, if wanted, per-block robust noise (n_blocks, n_ch) of a
    segment. Medians are taken on the raw (unscaled, e.g. int16) samples and scaled afterwards: the
    median commutes with the linear gain/offset, and sorting int16 is cheaper than sorting float32."""
    n = recording.get_num_samples(segment_index=seg)
    n_ch = recording.get_num_channels()
    if recording.has_scaleable_traces():
        gains = np.asarray(recording.get_channel_gains(), dtype=np.float64)
        offsets = np.asarray(recording.get_channel_offsets(), dtype=np.float64)
    else:  # the traces are already in physical units (e.g. a float NumpyRecording)
        gains, offsets = np.ones(n_ch), np.zeros(n_ch)
    meds, sds = [], []
    for start in range(0, n, chunk):
        tr = recording.get_traces(
            segment_index=seg, start_frame=start, end_frame=min(n, start + chunk), return_in_uV=False
        )
        nb = tr.shape[0] // block
        parts = []
        if nb:
            parts.append(tr[: nb * block].reshape(nb, block, n_ch)[:, ::_DECIMATE, :])
        if tr.shape[0] > nb * block:
            parts.append(tr[nb * block :][None])
        for b in parts:
            m = np.median(b, axis=1)
            meds.append((m * gains + offsets).astype(np.float32))
            if want_noise:
                dev = np.abs(b.astype(np.float32) - m[:, None, :].astype(np.float32))
                sds.append((np.median(dev, axis=1) * np.abs(gains) / 0.6745).astype(np.float32))
    if not meds:  # an empty segment (a sweep without samples)
        empty = np.zeros((0, n_ch), np.float32)
        return empty, (empty.copy() if want_noise else None)
    return np.concatenate(meds), (np.concatenate(sds) if want_noise else None)


def _baseline_at(knots: np.ndarray, block: int, idx: np.ndarray) -> np.ndarray:
    """The local baseline at samples ``idx`` of one channel: linear interpolation between block medians
    placed at block centres ``j * block + block // 2`` (flat before the first and after the last centre)."""
    k = knots.astype(np.float32)
    nb = k.shape[0]
    h = block // 2
    u = idx.astype(np.int64) - h
    j = np.clip(u // block, 0, max(nb - 2, 0))
    frac = (u - j * block).astype(np.float32) / np.float32(block)
    if nb == 1:
        return np.full(idx.shape, k[0], np.float32)
    out = k[j] + (k[j + 1] - k[j]) * frac
    out[u < 0] = k[0]
    out[u >= (nb - 1) * block] = k[-1]
    return out


def _crossings(x: np.ndarray, lo: int, i0: int, end: int, knots, block: int, sign: float, level: float):
    """Samples i in [i0, end) where ``e = sign * (x - baseline)`` reaches ``level`` and e[i-1] did not.

    ``x`` holds samples [lo, hi) of one channel. Spikes are sparse, so the full-rate baseline is never
    built: a per-block envelope of the baseline screens the trace in one comparison, and the exact test
    runs on the few candidate samples only."""
    lev = np.float32(level)
    if knots is None:
        above = np.flatnonzero(sign * x >= lev) + lo
    else:
        k = knots.astype(np.float32)
        kp = np.concatenate([k[:1], k, k[-1:]])
        n_blocks = k.shape[0]
        j0, j1 = lo // block, min(n_blocks, (lo + x.shape[0] - 1) // block + 1)
        if sign < 0:  # x <= baseline - level somewhere in the block: baseline <= the block's max knot
            env = np.maximum(np.maximum(kp[j0:j1], kp[j0 + 1 : j1 + 1]), kp[j0 + 2 : j1 + 2]) - lev
        else:
            env = np.minimum(np.minimum(kp[j0:j1], kp[j0 + 1 : j1 + 1]), kp[j0 + 2 : j1 + 2]) + lev
        tol = np.float32(1e-3) + np.float32(1e-5) * np.abs(env)
        bound = np.repeat(env + (tol if sign < 0 else -tol), block)
        off = lo - j0 * block
        bound = bound[off : off + x.shape[0]]
        if bound.shape[0] < x.shape[0]:  # samples past the last block use the last knot's bound
            bound = np.concatenate([bound, np.full(x.shape[0] - bound.shape[0], bound[-1], np.float32)])
        cand = np.flatnonzero(x <= bound if sign < 0 else x >= bound) + lo
        e = sign * (x[cand - lo] - _baseline_at(k, block, cand))
        above = cand[e >= lev]
    if above.size == 0:
        return above
    prev_above = np.r_[False, above[1:] - 1 == above[:-1]]
    starts = above[~prev_above]
    return starts[(starts >= i0) & (starts < end)]


def waveform_limit(max_spikes_per_cell: int | None) -> int:
    """The most spikes per cell whose waveforms are kept: the user's cap, else :data:`MAX_WAVEFORMS_PER_CELL`
    (beyond it a uniform random subset, as SpikeInterface's ``random_spikes``; the counts stay exact)."""
    return MAX_WAVEFORMS_PER_CELL if max_spikes_per_cell is None else int(max_spikes_per_cell)


def _chunk_traces(recording, segment: int, start: int, end: int, n: int) -> tuple[int, np.ndarray]:
    """Samples [start - 40, end + 120) of a segment (clipped to it) in pA, float32, and where they start: the
    crossings of [start, end) with their whole windows. Every pass reads a chunk with the same bounds, so a
    resampled recording gives the same values each time."""
    lo, hi = max(0, start - NBEFORE), min(n, end + NAFTER)
    traces = recording.get_traces(segment_index=segment, start_frame=lo, end_frame=hi, return_in_uV=True)
    return lo, np.asarray(traces, dtype=np.float32)


def _dead_time(starts: np.ndarray, last: int, dead: int) -> np.ndarray:
    """The crossings (sorted samples) that are spikes: greedily in time, a crossing more than ``dead`` samples
    after the last spike (``last``: the one before ``starts``). Vectorised by pointer doubling: each crossing
    points to the first crossing allowed after it, and the chain from the first allowed crossing is followed
    in steps of 1, 2, 4 ... (log2 of the number of spikes rounds, whatever the number of crossings)."""
    n = starts.size
    if n == 0:
        return starts
    jump = np.append(np.searchsorted(starts, starts + dead, side="right"), n)  # n: past the end, points to itself
    chain = np.searchsorted(starts, [last + dead], side="right")
    while True:
        reached = jump[chain]  # the crossings 2^k steps further: all after the chain's last one
        if reached[0] >= n:
            break
        chain = np.concatenate([chain, reached])
        jump = jump[jump]
    return starts[chain[chain < n]]


class _ChannelTriggers:
    """The triggers of one channel while the chunks stream by: every trigger's segment and sample (a few bytes
    each), and the snippets of the first ``cap`` ones only; past the cap the snippets are dropped, and
    :func:`recording_to_snippets` cuts the spikes the cap keeps in a last pass, so memory does not grow with
    the number of crossings."""

    def __init__(self):
        self.samples, self.segments, self._waveforms = [], [], []
        self.count = 0
        self.n_dropped_edge = 0

    def add(self, segment: int, samples: np.ndarray, trace: np.ndarray, lo: int, cap: int | None) -> None:
        if not samples.size:
            return
        self.samples.append(samples)
        self.segments.append(np.full(samples.size, segment, dtype=np.int64))
        self.count += int(samples.size)
        if cap is not None and self.count <= cap:
            self._waveforms.append(trace[(samples - NBEFORE - lo)[:, None] + np.arange(SNIPPET_LENGTH)[None, :]])
        else:
            self._waveforms = []

    def waveforms(self) -> np.ndarray:
        return np.concatenate(self._waveforms) if self._waveforms else np.zeros((0, SNIPPET_LENGTH), np.float32)


def _cut_snippets(recording, segment_index, sample_index, unit_index, channels, chunk: int) -> dict:
    """{channel: (k, 160) float32 snippets of its spikes, in the given order}, for the given channels, reading
    only the chunks that hold one of their spikes (with the bounds of the detection pass)."""
    out = {}
    for c in channels:
        mine = np.flatnonzero(unit_index == c)
        parts = []
        for seg in np.unique(segment_index[mine]):
            in_segment = mine[segment_index[mine] == seg]
            n = recording.get_num_samples(segment_index=int(seg))
            chunk_of = sample_index[in_segment] // chunk
            for k in np.unique(chunk_of):
                samples = sample_index[in_segment[chunk_of == k]]
                lo, traces = _chunk_traces(recording, int(seg), int(k) * chunk, min(n, (int(k) + 1) * chunk), n)
                window = (samples - NBEFORE - lo)[:, None] + np.arange(SNIPPET_LENGTH)[None, :]
                parts.append(traces[window, c])
        out[c] = np.concatenate(parts) if parts else np.zeros((0, SNIPPET_LENGTH), np.float32)
    return out


def recording_to_snippets(
    recording,
    params: DetectionParams | None = None,
    *,
    max_spikes_per_cell: int | None = None,
    seed: int = 0,
    chunk_duration_s: float = 10.0,
    cell_ids: list[str] | None = None,
    **detection_kwargs,
) -> Snippets:
    """Detect triggers and cut 160-sample snippets from a 40 kHz recording in pA (see :func:`read_abf`).

    ``detection_kwargs`` are the fields of :class:`DetectionParams` (threshold, mad_multiplier, polarity,
    dead_time_ms, baseline_window_ms). ``max_spikes_per_cell`` keeps at most that many spikes per cell,
    drawn reproducibly from ``seed`` (the paper used at most 700); all triggers stay available for firing
    statistics in ``all_trigger_samples``. Without ``max_spikes_per_cell``, a cell keeps the snippets of at
    most :data:`~spikeinterface_sero.constants.MAX_WAVEFORMS_PER_CELL` spikes (a uniform random subset, as
    SpikeInterface's ``random_spikes``): memory does not grow with the number of threshold crossings.
    """
    params = checked_detection(recording, params, detection_kwargs, max_spikes_per_cell, seed)
    chunk_duration_s = check_number(chunk_duration_s, "chunk_duration_s", minimum=0, strict=True)
    n_channels = recording.get_num_channels()
    if cell_ids is not None and (
        not isinstance(cell_ids, (list, tuple)) or len(cell_ids) != n_channels or not all(cell_ids)
    ):
        raise ParameterError(
            f"cell_ids must be None or {n_channels} non-empty name(s), one per channel of the recording, "
            f"not {cell_ids!r:.80}."
        )
    return detect_triggers(
        recording,
        params,
        max_spikes_per_cell=max_spikes_per_cell,
        seed=seed,
        chunk_duration_s=chunk_duration_s,
        cell_ids=None if cell_ids is None else [str(c) for c in cell_ids],
        cut_waveforms=True,
    )


_DETECTION_FIELDS = ("threshold", "mad_multiplier", "polarity", "dead_time_ms", "baseline_window_ms")


def detection_arguments(params, detection_kwargs: dict, max_spikes_per_cell, seed) -> DetectionParams:
    """The detection parameters after checking them, the cap and the seed (before any file is read).

    Parameters
    ----------
    params : DetectionParams or None
        Given parameters; None: built from ``detection_kwargs``.
    detection_kwargs : dict
        Fields of :class:`DetectionParams`.
    max_spikes_per_cell : int or None
        The cap.
    seed : int or None
        The seed of the cap.

    Returns
    -------
    DetectionParams
    """
    unknown = [name for name in detection_kwargs if name not in _DETECTION_FIELDS]
    if unknown:
        raise ParameterError(
            f"unknown detection argument(s) {', '.join(repr(n) for n in unknown)}; the detection arguments are "
            f"{', '.join(_DETECTION_FIELDS)}."
        )
    if params is None:
        params = DetectionParams(**detection_kwargs)
    elif not isinstance(params, DetectionParams):
        raise ParameterError(f"params must be a DetectionParams or None, not {params!r:.80}.")
    elif detection_kwargs:
        raise ParameterError("Pass either params= or detection keyword arguments, not both.")
    check_cap(max_spikes_per_cell)
    check_seed(seed)
    return params


def check_seed(seed) -> int | None:
    """``seed`` when it is None or a non-negative whole number (numpy's rule); ParameterError if not."""
    return None if seed is None else check_integer(seed, "seed", minimum=0)


def checked_detection(recording, params, detection_kwargs: dict, max_spikes_per_cell, seed) -> DetectionParams:
    """:func:`detection_arguments`, and the recording and its rate."""
    params = detection_arguments(params, detection_kwargs, max_spikes_per_cell, seed)
    fs = float(check_recording(recording).sampling_frequency)
    if not is_paper_rate(fs):
        raise SnippetError(
            f"The recording runs at {fs:g} Hz; snippets need 40 kHz. Read .abf files with "
            "spikeinterface_sero.read_abf (it resamples), or resample first with "
            "spikeinterface.preprocessing.resample(recording, 40000)."
        )
    return params


def detect_triggers(
    recording, params: DetectionParams, *, max_spikes_per_cell, seed, chunk_duration_s, cell_ids, cut_waveforms: bool
) -> Snippets:
    """The detector's two passes over the chunks (and a third for the snippets of cells over the cap); without
    ``cut_waveforms``, only the triggers (the analyzer path: SpikeInterface cuts the waveforms)."""
    fs = float(recording.sampling_frequency)
    waveform_cap = waveform_limit(max_spikes_per_cell) if cut_waveforms else None
    channel_ids = [str(c) for c in recording.channel_ids]
    n_ch = len(channel_ids)
    if cell_ids is None:
        stem = recording_stem(recording)
        cell_ids = [cell_id(stem, c, n_cell_channels(recording)) for c in channel_ids]
    sign = -1.0 if params.polarity == "negative" else 1.0
    block = int(round(_BLOCK_MS * fs / 1000.0))
    chunk = max(block, int(chunk_duration_s * fs) // block * block)
    dead = int(round(params.dead_time_ms * fs / 1000.0))
    n_seg = recording.get_num_segments()

    # pass 1: baseline block medians and noise, per segment
    base_blocks, noise = [], []
    for seg in range(n_seg):
        if params.baseline_window_ms is None and params.mad_multiplier is None:
            base_blocks.append(None)
            continue
        m, s = _pass_baseline(recording, seg, block, chunk, want_noise=params.mad_multiplier is not None)
        noise.append(s)
        if params.baseline_window_ms is not None:
            width = int(round(params.baseline_window_ms / _BLOCK_MS)) | 1
            base_blocks.append(_running_median(m, width))
        else:
            base_blocks.append(None)
    if params.mad_multiplier is not None:
        sigma = np.median(np.concatenate(noise), axis=0)
        thresholds = sign * params.mad_multiplier * sigma  # per channel, signed
    else:
        thresholds = np.full(n_ch, float(params.threshold))
    # work in "e" = sign-flipped deviation so that a trigger is always e >= |threshold|
    level = np.abs(thresholds).astype(np.float64)
    if np.any(level <= 0):
        bad = channel_ids[int(np.flatnonzero(level <= 0)[0])]
        raise DataError(
            f"Channel {bad}: the noise is zero, so a noise-relative threshold is undefined; "
            "use an absolute threshold in pA (threshold=-50)."
        )

    per_channel = [_ChannelTriggers() for _ in range(n_ch)]
    durations, t_starts = [], []
    for seg in range(n_seg):
        n = recording.get_num_samples(segment_index=seg)
        durations.append(n / fs)
        try:
            t_starts.append(float(recording.get_start_time(segment_index=seg)))
        except Exception:
            t_starts.append(0.0)
        bb = base_blocks[seg]
        last_trigger = np.full(n_ch, -(10**12), dtype=np.int64)
        for start in range(0, n, chunk):
            end = min(n, start + chunk)
            lo, traces = _chunk_traces(recording, seg, start, end, n)
            i0 = max(start, 1)
            for c, triggers in enumerate(per_channel):
                found = _crossings(
                    traces[:, c], lo, i0, end, None if bb is None else bb[:, c], block, sign, level[c]
                ).astype(np.int64)
                found = _dead_time(found, int(last_trigger[c]), dead)
                if found.size:
                    last_trigger[c] = found[-1]
                inside = (found - NBEFORE >= 0) & (found + NAFTER <= n)
                triggers.n_dropped_edge += int(found.size - np.count_nonzero(inside))
                triggers.add(seg, found[inside], traces[:, c], lo, waveform_cap)

    samp = np.concatenate([np.concatenate(t.samples) if t.samples else np.zeros(0, np.int64) for t in per_channel])
    segi = np.concatenate([np.concatenate(t.segments) if t.segments else np.zeros(0, np.int64) for t in per_channel])
    uidx = np.repeat(np.arange(n_ch, dtype=np.int64), [t.count for t in per_channel])
    units = np.array(channel_ids, dtype=str)[uidx] if uidx.size else np.zeros(0, dtype=str)
    cells = np.array(cell_ids, dtype=str)[uidx] if uidx.size else np.zeros(0, dtype=str)
    n_detected = {cell_ids[c]: per_channel[c].count for c in range(n_ch)}
    all_samp, all_seg, all_units = samp, segi, units
    if waveform_cap is None:  # the analyzer path: SpikeInterface cuts the waveforms of the sorting's spikes
        keep = np.zeros(samp.size, dtype=bool)
    elif any(t.count > waveform_cap for t in per_channel):
        num_samples = [recording.get_num_samples(k) for k in range(n_seg)]
        keep = spike_cap(segi, samp, uidx, n_ch, num_samples, fs, waveform_cap, seed)
    else:
        keep = np.ones(samp.size, dtype=bool)
    # the cells over the cap were not kept while streaming: their kept spikes are cut in a last pass
    over = [c for c, t in enumerate(per_channel) if waveform_cap is not None and t.count > waveform_cap]
    recut = _cut_snippets(recording, segi[keep], samp[keep], uidx[keep], over, chunk)
    wf_parts = [recut[c] if c in recut else t.waveforms() for c, t in enumerate(per_channel)]
    wf = np.concatenate(wf_parts) if waveform_cap is not None else np.zeros((0, SNIPPET_LENGTH), np.float32)
    samp, segi, units, cells = samp[keep], segi[keep], units[keep], cells[keep]
    dropped = [t.n_dropped_edge for t in per_channel]
    src = recording.get_annotation("abf_path") if "abf_path" in recording.get_annotation_keys() else None
    det = params.to_dict()
    det.update(max_spikes_per_cell=max_spikes_per_cell, seed=seed)
    return Snippets(
        waveforms=wf,
        trigger_samples=samp,
        segment_index=segi,
        unit_ids=units,
        cell_ids=cells,
        sampling_frequency=fs,
        source=src,
        detection=det,
        n_dropped_edge={cell_ids[c]: int(dropped[c]) for c in range(n_ch)},
        n_detected=n_detected,
        thresholds_pa={cell_ids[c]: float(thresholds[c]) for c in range(n_ch)},
        segment_durations_s=durations,
        segment_t_starts_s=t_starts,
        all_trigger_samples=all_samp,
        all_segment_index=all_seg,
        all_unit_ids=all_units,
    )


def abf_to_snippets(
    path,
    channel=None,
    threshold: float = DEFAULT_THRESHOLD_PA,
    *,
    allow_low_rate: bool = False,
    allow_any_unit: bool = False,
    max_spikes_per_cell: int | None = None,
    seed: int = 0,
    **detection_kwargs,
) -> Snippets:
    """One call from an .abf file to :class:`Snippets` (read with :func:`read_abf`, then detect and cut).

    The arguments are those of :func:`read_abf` and :func:`recording_to_snippets`; they are checked before the
    file is read.
    """
    detection_arguments(None, dict(threshold=threshold, **detection_kwargs), max_spikes_per_cell, seed)
    rec = read_abf(path, channel=channel, allow_low_rate=allow_low_rate, allow_any_unit=allow_any_unit)
    return recording_to_snippets(
        rec, threshold=threshold, max_spikes_per_cell=max_spikes_per_cell, seed=seed, **detection_kwargs
    )


# --------------------------------------------------------------------------------------------------------------
# what the detector sees, for the report's detection view


def detection_trace(recording, segment_index: int = 0, start_frame: int = 0, end_frame=None, params=None):
    """A stretch of one segment as the detector sees it: the raw current, its local baseline and the threshold.

    The baseline and the threshold come from the detector's own first pass (block medians of the whole
    segment, their running median, the noise of the whole recording for ``mad_multiplier``), so a trigger is
    exactly the first sample at or beyond the threshold line.

    Parameters
    ----------
    recording : BaseRecording
        pA (see :func:`spikeinterface_sero.read_abf`).
    segment_index : int, default: 0
        The segment (sweep).
    start_frame : int, default: 0
        First sample of the stretch, within the segment.
    end_frame : int or None, default: None
        End of the stretch (exclusive); None: the end of the segment.
    params : DetectionParams or None, default: None
        The detection settings; None: the defaults (−50 pA from a 100 ms running-median baseline).

    Returns
    -------
    trace, baseline, threshold : numpy.ndarray
        Each (n_samples, n_channels) float32 in pA; ``threshold`` is the baseline plus each channel's signed
        threshold (0 pA is the baseline when ``baseline_window_ms`` is None).
    """
    check_recording(recording)
    params = detection_arguments(params, {}, None, None)
    segment_index = check_integer(segment_index, "segment_index", minimum=0, maximum=recording.get_num_segments() - 1)
    n = recording.get_num_samples(segment_index=segment_index)
    start_frame = check_integer(start_frame, "start_frame")
    end_frame = n if end_frame is None else check_integer(end_frame, "end_frame")
    if not 0 <= start_frame < end_frame <= n:
        raise ParameterError(
            f"start_frame and end_frame must satisfy 0 <= start_frame < end_frame <= {n} (the segment's samples), "
            f"not {start_frame!r} and {end_frame!r}."
        )
    fs = float(recording.sampling_frequency)
    sign = -1.0 if params.polarity == "negative" else 1.0
    block = int(round(_BLOCK_MS * fs / 1000.0))
    chunk = max(block, int(10.0 * fs) // block * block)  # the detector's default chunks
    n_channels = recording.get_num_channels()
    medians = None
    if params.mad_multiplier is not None:
        noise = []
        for seg in range(recording.get_num_segments()):
            m, s = _pass_baseline(recording, seg, block, chunk, want_noise=True)
            noise.append(s)
            medians = m if seg == int(segment_index) else medians
        levels = sign * params.mad_multiplier * np.median(np.concatenate(noise), axis=0)
    else:
        levels = np.full(n_channels, float(params.threshold))
    trace = np.asarray(
        recording.get_traces(
            segment_index=int(segment_index), start_frame=int(start_frame), end_frame=end_frame, return_in_uV=True
        ),
        dtype=np.float32,
    )
    if params.baseline_window_ms is None:
        baseline = np.zeros_like(trace)
    else:
        if medians is None:
            medians, _ = _pass_baseline(recording, int(segment_index), block, chunk, want_noise=False)
        knots = _running_median(medians, int(round(params.baseline_window_ms / _BLOCK_MS)) | 1)
        samples = np.arange(int(start_frame), end_frame)
        baseline = np.stack([_baseline_at(knots[:, c], block, samples) for c in range(n_channels)], axis=1)
    return trace, baseline, (baseline + levels.astype(np.float32)[None, :]).astype(np.float32)
