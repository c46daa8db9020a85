"""Detection (the paper's −50 pA crossing from the local baseline) and the 160-point snippets, as a
SpikeInterface Sorting and SortingAnalyzer or as :class:`Snippets` (the CSV/npz formats). How the detector
works: ``docs/architecture.md`` ("The detector").
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .constants import (
    DEFAULT_BASELINE_WINDOW_MS,
    DEFAULT_DEAD_TIME_MS,
    DEFAULT_THRESHOLD_PA,
    MAX_WAVEFORMS_PER_CELL,
    MS_AFTER,
    MS_BEFORE,
    NAFTER,
    NBEFORE,
    SAMPLING_FREQUENCY,
    SNIPPET_LENGTH,
    is_paper_rate,
)
from .errors import DataError, SeroError, SnippetError
from .files import atomic_path
from .io import check_path, check_regular_file, read_abf
from .upstream import keep_trailing_empty_segments, main_channel_indices

#: sorting property: the polarity the detection used ("negative" or "positive"), read by the extension
POLARITY_PROPERTY = "spike_polarity"

__all__ = [
    "POLARITY_PROPERTY",
    "main_channel_waveforms",
    "Snippets",
    "DetectionParams",
    "recording_to_snippets",
    "abf_to_snippets",
    "snippets_to_sorting",
    "create_analyzer",
    "abf_to_analyzer",
    "recording_to_analyzer",
    "snippets_from_analyzer",
    "check_analyzer_waveforms",
    "cell_id",
    "write_snippet_csv_folder",
    "read_snippet_csv_folder",
    "save_npz",
    "load_npz",
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
        if self.polarity not in ("negative", "positive"):
            raise SeroError(f"polarity must be 'negative' or 'positive', not {self.polarity!r}.")
        if self.mad_multiplier is None:
            if not np.isfinite(self.threshold) or self.threshold == 0:
                raise SeroError(f"threshold must be a non-zero number of pA, not {self.threshold!r}.")
            if (self.threshold > 0) != (self.polarity == "positive"):
                raise SeroError(
                    f"threshold {self.threshold:g} pA does not match polarity '{self.polarity}': negative-going "
                    "spikes need a negative threshold (e.g. -50), positive-going (inverted) recordings a "
                    "positive one with polarity='positive' (CLI: --polarity positive)."
                )
        elif not (self.mad_multiplier > 0):
            raise SeroError(f"mad_multiplier must be > 0 (e.g. 5), not {self.mad_multiplier!r}.")
        if not (0 <= self.dead_time_ms <= _MAX_DEAD_TIME_MS):
            raise SeroError(
                f"dead_time_ms must be between 0 and {_MAX_DEAD_TIME_MS:g} ms (one spike's refractory time, "
                f"default {DEFAULT_DEAD_TIME_MS:g}), not {self.dead_time_ms!r}."
            )
        if self.baseline_window_ms is not None and not (self.baseline_window_ms >= 2 * _BLOCK_MS):
            raise SeroError(f"baseline_window_ms must be at least {2 * _BLOCK_MS:g} ms or None.")

    def to_dict(self) -> dict:
        """The parameters as JSON values."""
        return dict(
            threshold=float(self.threshold),
            mad_multiplier=self.mad_multiplier,
            polarity=self.polarity,
            dead_time_ms=float(self.dead_time_ms),
            baseline_window_ms=self.baseline_window_ms,
        )


@dataclass
class Snippets:
    """Aligned action-current snippets of one or more cells.

    Attributes
    ----------
    waveforms : numpy.ndarray
        (n, 160) float32, pA, trigger at index 40, 40 kHz.
    trigger_samples : numpy.ndarray
        (n,) int64, the trigger sample within its segment (40 kHz).
    segment_index : numpy.ndarray
        (n,) int64, the sweep (segment) of each spike.
    unit_ids : numpy.ndarray
        (n,) str, the recording channel / sorting unit of each spike.
    cell_ids : numpy.ndarray
        (n,) str, the cell each spike belongs to (``"<file stem>"`` or ``"<file stem>_ch<id>"``).
    n_dropped_edge : dict
        Per cell, the triggers too close to a sweep edge for a full window (dropped, not padded).
    n_detected : dict
        Per cell, triggers with a full window, before any cap.
    segment_durations_s, segment_t_starts_s : list of float
        Per segment of the recording.
    thresholds_pa : dict
        Per cell, the threshold (relative to baseline) actually used.
    all_trigger_samples, all_segment_index, all_unit_ids : numpy.ndarray or None
        Every detected spike (before the cap), for firing statistics.
    """

    waveforms: np.ndarray
    trigger_samples: np.ndarray
    segment_index: np.ndarray
    unit_ids: np.ndarray
    cell_ids: np.ndarray
    sampling_frequency: float = SAMPLING_FREQUENCY
    source: str | None = None
    detection: dict = field(default_factory=dict)
    n_dropped_edge: dict = field(default_factory=dict)
    n_detected: dict = field(default_factory=dict)
    thresholds_pa: dict = field(default_factory=dict)
    segment_durations_s: list = field(default_factory=list)
    segment_t_starts_s: list = field(default_factory=list)
    all_trigger_samples: np.ndarray | None = None
    all_segment_index: np.ndarray | None = None
    all_unit_ids: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.waveforms.shape[0])

    @property
    def cells(self) -> list[str]:
        """Cell ids in order of first appearance."""
        return list(dict.fromkeys(self.cell_ids.tolist()))

    def select(self, mask) -> Snippets:
        """A copy keeping only the spikes in ``mask`` (boolean or index array)."""
        idx = np.asarray(mask)
        return Snippets(
            self.waveforms[idx],
            self.trigger_samples[idx],
            self.segment_index[idx],
            self.unit_ids[idx],
            self.cell_ids[idx],
            self.sampling_frequency,
            self.source,
            dict(self.detection),
            dict(self.n_dropped_edge),
            dict(self.n_detected),
            dict(self.thresholds_pa),
            list(self.segment_durations_s),
            list(self.segment_t_starts_s),
            self.all_trigger_samples,
            self.all_segment_index,
            self.all_unit_ids,
        )

    def cell_index(self) -> tuple[list[str], np.ndarray]:
        """The cells in order of first appearance and, per spike, the index of its cell among them."""
        cells = self.cells
        lookup = {cell: index for index, cell in enumerate(cells)}
        return cells, np.array([lookup[cell] for cell in np.asarray(self.cell_ids).astype(str).tolist()], np.int64)

    def segment_samples(self) -> list[int]:
        """Samples per segment: from ``segment_durations_s`` when known, else up to the end of the segment's
        last window."""
        if self.segment_durations_s:
            return [int(round(d * SAMPLING_FREQUENCY)) for d in self.segment_durations_s]
        segments = np.asarray(self.segment_index, dtype=np.int64)
        samples = np.asarray(self.trigger_samples, dtype=np.int64)
        n_segments = int(segments.max()) + 1 if segments.size else 0
        return [int(samples[segments == k].max(initial=0)) + NAFTER for k in range(n_segments)]

    def capped(self, max_spikes_per_cell: int | None, seed: int | None = 0) -> Snippets:
        """At most ``max_spikes_per_cell`` spikes per cell, a uniform random subset as SpikeInterface's
        ``random_spikes`` draws it (the cap of :func:`abf_to_snippets`); the firing statistics keep every spike.

        Parameters
        ----------
        max_spikes_per_cell : int or None
            The cap; None keeps every spike.
        seed : int or None, default: 0
            Seed of the selection.

        Returns
        -------
        Snippets
            ``self`` when no cell has more spikes than the cap, else a copy.
        """
        _check_cap(max_spikes_per_cell)
        if max_spikes_per_cell is None:
            return self
        cells, cell_index = self.cell_index()
        if len(self) == 0 or np.bincount(cell_index).max() <= int(max_spikes_per_cell):
            return self
        num_samples = self.segment_samples()
        keep = _spike_cap(
            self.segment_index,
            self.trigger_samples,
            cell_index,
            len(cells),
            num_samples,
            self.sampling_frequency,
            int(max_spikes_per_cell),
            seed,
        )
        result = self.select(keep)
        if result.all_trigger_samples is None:  # the rate, CV and LV still see every spike
            result.all_trigger_samples = self.trigger_samples
            result.all_segment_index = self.segment_index
            result.all_unit_ids = self.unit_ids
        return result

    def __repr__(self) -> str:
        cells = self.cells
        return (
            f"Snippets({len(self)} spikes x {self.waveforms.shape[1] if self.waveforms.ndim == 2 else '?'} "
            f"samples, {len(cells)} cell(s): {', '.join(cells[:4])}{' ...' if len(cells) > 4 else ''})"
        )


def cell_id(stem: str, channel_id, n_channels: int) -> str:
    """The cell name of a recorded channel: the file stem (the authors' names, e.g. ``A140313#073``) when the
    file holds one cell (one current channel), ``<stem>_ch<id>`` when it holds several (even if only one
    of them is read)."""
    return str(stem) if n_channels == 1 else f"{stem}_ch{channel_id}"


def _n_cell_channels(recording) -> int:
    """How many cells (current channels) the source file holds: a cell is named by its channel whenever the
    file holds several, even if only one was read."""
    if "abf_n_cell_channels" in recording.get_annotation_keys():
        return max(int(recording.get_annotation("abf_n_cell_channels")), recording.get_num_channels())
    return recording.get_num_channels()


def _recording_stem(recording) -> str:
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


def _spike_cap(segment_index, sample_index, unit_index, n_units, num_samples, sampling_frequency, cap, seed):
    """Boolean mask of the spikes SpikeInterface's ``random_spikes`` (method "uniform") keeps: the same
    selection as :func:`create_analyzer` with ``max_spikes_per_cell``, for the same seed."""
    from spikeinterface.core import NumpySorting
    from spikeinterface.core.sorting_tools import random_spikes_selection

    vector = np.zeros(
        segment_index.size, dtype=[("sample_index", "int64"), ("unit_index", "int64"), ("segment_index", "int64")]
    )
    vector["sample_index"], vector["unit_index"], vector["segment_index"] = sample_index, unit_index, segment_index
    order = np.lexsort((unit_index, sample_index, segment_index))  # SpikeInterface's spike-vector order
    sorting = NumpySorting(vector[order], sampling_frequency, unit_ids=np.arange(n_units))
    selected = random_spikes_selection(sorting, num_samples, method="uniform", max_spikes_per_unit=int(cap), seed=seed)
    keep = np.zeros(segment_index.size, dtype=bool)
    keep[order[selected]] = True
    return keep


def _waveform_cap(max_spikes_per_cell: int | None) -> int:
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
    params = _checked_detection(recording, params, detection_kwargs, max_spikes_per_cell, seed)
    return _detect(
        recording,
        params,
        max_spikes_per_cell=max_spikes_per_cell,
        seed=seed,
        chunk_duration_s=chunk_duration_s,
        cell_ids=cell_ids,
        cut_waveforms=True,
    )


def _checked_detection(recording, params, detection_kwargs: dict, max_spikes_per_cell, seed) -> DetectionParams:
    """The detection parameters, after checking them, the recording's rate, the cap and the seed."""
    if params is None:
        params = DetectionParams(**detection_kwargs)
    elif detection_kwargs:
        raise SeroError("Pass either params= or detection keyword arguments, not both.")
    fs = float(recording.sampling_frequency)
    if not is_paper_rate(fs):
        raise SnippetError(
            f"The recording runs at {fs:g} Hz; snippets need 40 kHz. Read .abf files with "
            "spikeinterface_sero.read_abf (it resamples), or resample first with "
            "spikeinterface.preprocessing.resample(recording, 40000)."
        )
    _check_cap(max_spikes_per_cell)
    if max_spikes_per_cell is not None and isinstance(seed, (int, np.integer)) and seed < 0:
        raise SeroError(f"seed must be a non-negative integer (numpy's rule), not {seed!r}.")
    return params


def _check_cap(max_spikes_per_cell) -> None:
    if max_spikes_per_cell is not None and (isinstance(max_spikes_per_cell, bool) or int(max_spikes_per_cell) < 1):
        raise SeroError(f"max_spikes_per_cell must be a positive integer or None, not {max_spikes_per_cell!r}.")


def _detect(
    recording, params: DetectionParams, *, max_spikes_per_cell, seed, chunk_duration_s, cell_ids, cut_waveforms: bool
) -> Snippets:
    """The detector's two passes over the chunks (and a third for the snippets of cells over the cap); without
    ``cut_waveforms``, only the triggers (the analyzer path: SpikeInterface cuts the waveforms)."""
    fs = float(recording.sampling_frequency)
    waveform_cap = _waveform_cap(max_spikes_per_cell) if cut_waveforms else None
    channel_ids = [str(c) for c in recording.channel_ids]
    n_ch = len(channel_ids)
    if cell_ids is None:
        stem = _recording_stem(recording)
        cell_ids = [cell_id(stem, c, _n_cell_channels(recording)) for c in channel_ids]
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
        keep = _spike_cap(segi, samp, uidx, n_ch, num_samples, fs, waveform_cap, seed)
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
    """One call from an .abf file to :class:`Snippets` (read with :func:`read_abf`, then detect and cut)."""
    rec = read_abf(path, channel=channel, allow_low_rate=allow_low_rate, allow_any_unit=allow_any_unit)
    return recording_to_snippets(
        rec, threshold=threshold, max_spikes_per_cell=max_spikes_per_cell, seed=seed, **detection_kwargs
    )


def snippets_to_sorting(snippets: Snippets, recording):
    """A SpikeInterface sorting with one unit per channel (cell), spikes at the triggers (all of them)."""
    from spikeinterface.core import NumpySorting

    unit_ids = [str(c) for c in recording.channel_ids]
    samp = snippets.all_trigger_samples if snippets.all_trigger_samples is not None else snippets.trigger_samples
    segi = snippets.all_segment_index if snippets.all_segment_index is not None else snippets.segment_index
    units = snippets.all_unit_ids if snippets.all_unit_ids is not None else snippets.unit_ids
    names, inverse = np.unique(np.asarray(units, dtype=str), return_inverse=True)  # one lookup per name
    lookup = {u: i for i, u in enumerate(unit_ids)}
    labels = np.array([lookup[str(u)] for u in names], dtype=np.int64)[inverse.reshape(-1)]
    samples_list, labels_list = [], []
    for seg in range(recording.get_num_segments()):
        m = segi == seg
        order = np.argsort(samp[m], kind="stable")
        samples_list.append(samp[m][order])
        labels_list.append(
            np.asarray(unit_ids, dtype=object)[labels[m][order]].astype(str) if m.any() else np.zeros(0, dtype=str)
        )
    sorting = NumpySorting.from_samples_and_labels(
        samples_list, labels_list, recording.sampling_frequency, unit_ids=np.array(unit_ids)
    )
    keep_trailing_empty_segments(sorting, recording.get_num_segments())
    stem = _recording_stem(recording)
    cells = [cell_id(stem, u, _n_cell_channels(recording)) for u in unit_ids]
    sorting.set_property("cell_id", cells)
    sorting.set_property("n_dropped_edge", np.array([int(snippets.n_dropped_edge.get(c, 0)) for c in cells]))
    # each cell is on its own channel: SpikeInterface's main channel, exactly (no estimate needed)
    sorting.set_property("main_channel_id", np.array(recording.channel_ids))
    polarity = snippets.detection.get("polarity", "negative")
    sorting.set_property(POLARITY_PROPERTY, np.array([polarity] * len(unit_ids)))
    return sorting


def create_analyzer(
    sorting,
    recording,
    *,
    max_spikes_per_cell: int | None = None,
    seed: int = 0,
    format: str = "memory",
    folder=None,
    overwrite: bool = False,
    n_jobs: int = 1,
    progress_bar: bool = False,
):
    """A SortingAnalyzer with ``random_spikes`` and ``waveforms`` (ms_before=1, ms_after=3): the
    (n, 160, 1) snippets in pA that the ``serotonergic`` extension classifies. ``random_spikes`` keeps at
    most ``max_spikes_per_cell`` spikes per cell (None: :data:`~spikeinterface_sero.constants.
    MAX_WAVEFORMS_PER_CELL`), drawn from ``seed``; the sorting keeps every spike."""
    from spikeinterface.core import create_sorting_analyzer

    if not is_paper_rate(recording.sampling_frequency):
        raise SnippetError(
            f"The recording runs at {recording.sampling_frequency:g} Hz; the analyzer needs 40 kHz "
            "so that ms_before=1, ms_after=3 give 40 + 120 samples. Use read_abf (it resamples)."
        )
    if max_spikes_per_cell is not None and int(max_spikes_per_cell) < 1:
        raise SeroError(f"max_spikes_per_cell must be a positive integer or None, not {max_spikes_per_cell!r}.")
    if max_spikes_per_cell is not None and isinstance(seed, (int, np.integer)) and seed < 0:
        raise SeroError(f"seed must be a non-negative integer (numpy's rule), not {seed!r}.")
    job_kwargs = dict(n_jobs=n_jobs, progress_bar=progress_bar)
    analyzer = create_sorting_analyzer(
        sorting,
        recording,
        format=format,
        folder=folder,
        sparse=False,
        return_in_uV=True,
        overwrite=overwrite,
        job_kwargs=job_kwargs,
    )
    keep_trailing_empty_segments(analyzer.sorting, recording.get_num_segments())  # its copy drops them
    # the waveforms of at most the cap per cell (MAX_WAVEFORMS_PER_CELL without one): memory is bounded whatever
    # the number of spikes; without a cap and under the ceiling, method "all" (the same spikes, no random draw)
    cap = _waveform_cap(max_spikes_per_cell)
    counts = np.bincount(analyzer.sorting.to_spike_vector()["unit_index"], minlength=1)
    if max_spikes_per_cell is None and counts.max() <= cap:
        analyzer.compute("random_spikes", method="all")
    else:
        analyzer.compute("random_spikes", method="uniform", max_spikes_per_unit=cap, seed=seed)
    analyzer.compute("waveforms", ms_before=MS_BEFORE, ms_after=MS_AFTER, **job_kwargs)
    return analyzer


def recording_to_analyzer(
    recording,
    *,
    max_spikes_per_cell: int | None = None,
    seed: int = 0,
    format="memory",
    folder=None,
    overwrite: bool = False,
    **detection_kwargs,
):
    """Detect the action currents of a 40 kHz pA recording and return its SortingAnalyzer.

    Parameters
    ----------
    recording : BaseRecording
        pA at 40 kHz (:func:`spikeinterface_sero.read_abf` gives one); one cell per channel.
    max_spikes_per_cell : int or None, default: None
        Waveforms of at most this many spikes per cell (SpikeInterface's ``random_spikes``, seeded); None: all
        up to ``MAX_WAVEFORMS_PER_CELL`` (30,000), a uniform random subset beyond. The sorting keeps every spike
        (firing statistics).
    seed : int, default: 0
        Seed of the cap.
    format : "memory" | "binary_folder" | "zarr", default: "memory"
        The analyzer's format (with ``folder``).
    folder : str, Path or None, default: None
        Where a binary-folder or zarr analyzer goes.
    overwrite : bool, default: False
        Replace an existing ``folder``.
    **detection_kwargs
        :class:`DetectionParams` (``threshold``, ``mad_multiplier``, ``polarity``, ``dead_time_ms``,
        ``baseline_window_ms``).

    Returns
    -------
    SortingAnalyzer
        One unit per channel (properties ``cell_id``, ``n_dropped_edge``, ``main_channel_id``,
        ``spike_polarity``), with ``random_spikes`` and ``waveforms`` (1 ms + 3 ms: 160 samples).
    """
    params = _checked_detection(recording, None, detection_kwargs, max_spikes_per_cell, seed)
    snips = _detect(  # the triggers only: SpikeInterface cuts the waveforms of the spikes random_spikes keeps
        recording,
        params,
        max_spikes_per_cell=None,
        seed=seed,
        chunk_duration_s=10.0,
        cell_ids=None,
        cut_waveforms=False,
    )
    sorting = snippets_to_sorting(snips, recording)
    sorting.annotate(sero_detection=snips.detection)  # before the analyzer copies or saves the sorting
    analyzer = create_analyzer(
        sorting,
        recording,
        max_spikes_per_cell=max_spikes_per_cell,
        seed=seed,
        format=format,
        folder=folder,
        overwrite=overwrite,
    )
    return analyzer


def abf_to_analyzer(
    path,
    channel=None,
    threshold: float = DEFAULT_THRESHOLD_PA,
    *,
    allow_low_rate: bool = False,
    allow_any_unit: bool = False,
    max_spikes_per_cell: int | None = None,
    seed: int = 0,
    format: str = "memory",
    folder=None,
    overwrite: bool = False,
    **detection_kwargs,
):
    """One call from an .abf file to a SortingAnalyzer ready for ``analyzer.compute("serotonergic")``.

    Parameters
    ----------
    path : str or Path
        The .abf file.
    channel : str, int, list or None, default: None
        The channel(s) to use (id or name); None: every current channel.
    threshold : float, default: -50.0
        The trigger, in pA from the local baseline (the paper's −50 pA).
    allow_low_rate : bool, default: False
        Accept recordings below 20 kHz.
    allow_any_unit : bool, default: False
        Accept a named channel whose unit is not a current.
    max_spikes_per_cell : int or None, default: None
        As :func:`recording_to_analyzer`.
    seed : int, default: 0
        As :func:`recording_to_analyzer`.
    format : "memory" | "binary_folder" | "zarr", default: "memory"
        As :func:`recording_to_analyzer`.
    folder : str, Path or None, default: None
        As :func:`recording_to_analyzer`.
    overwrite : bool, default: False
        As :func:`recording_to_analyzer`.
    **detection_kwargs
        As :func:`recording_to_analyzer`.

    Returns
    -------
    SortingAnalyzer
        One unit per current channel (unit id = channel id, property ``cell_id``), spikes at the triggers;
        the ``waveforms`` extension holds (n, 160, 1) snippets in pA with the trigger at 40.
    """
    rec = read_abf(path, channel=channel, allow_low_rate=allow_low_rate, allow_any_unit=allow_any_unit)
    return recording_to_analyzer(
        rec,
        threshold=threshold,
        max_spikes_per_cell=max_spikes_per_cell,
        seed=seed,
        format=format,
        folder=folder,
        overwrite=overwrite,
        **detection_kwargs,
    )


_HOW_TO_MAKE = (
    "Make the analyzer with spikeinterface_sero.abf_to_analyzer(path) (or recording_to_analyzer), "
    "or recompute on a 40 kHz recording: analyzer.compute('waveforms', ms_before=1.0, ms_after=3.0) "
    "with spikes at the -50 pA threshold crossings."
)


def check_analyzer_waveforms(analyzer) -> None:
    """Raise SnippetError unless the analyzer's waveforms are 160 samples at 40 kHz with the trigger at 40."""
    if not analyzer.has_extension("waveforms"):
        raise SnippetError("The analyzer has no 'waveforms' extension. " + _HOW_TO_MAKE)
    ext = analyzer.get_extension("waveforms")
    fs = analyzer.sampling_frequency
    if not is_paper_rate(fs) or ext.nbefore != NBEFORE or ext.nafter != NAFTER:
        raise SnippetError(
            f"The analyzer's waveforms are {ext.nbefore} + {ext.nafter} samples at {fs:g} Hz "
            f"(ms_before={ext.params.get('ms_before')}, ms_after={ext.params.get('ms_after')}); the model needs "
            f"{NBEFORE} + {NAFTER} samples at 40 kHz with the trigger at index {NBEFORE}. " + _HOW_TO_MAKE
        )


def main_channel_waveforms(analyzer) -> np.ndarray:
    """(n, n_samples) float32: each spike of ``random_spikes`` on its unit's main channel
    (``analyzer.get_main_channels()``), for dense and sparse analyzers alike, in ``random_spikes`` order."""
    waveforms = analyzer.get_extension("waveforms").get_data()
    spikes = analyzer.sorting.to_spike_vector()[analyzer.get_extension("random_spikes").get_data()]
    main = main_channel_indices(analyzer)
    column = main.copy()
    if analyzer.is_sparse():  # sparse waveforms hold the unit's own channels, in the sparsity's order
        channels = analyzer.sparsity.unit_id_to_channel_indices
        column = np.array(
            [int(np.flatnonzero(channels[u] == main[i])[0]) for i, u in enumerate(analyzer.unit_ids)], dtype=np.int64
        )
    if spikes.size == 0:
        return np.zeros((0, waveforms.shape[1]), np.float32)
    return np.asarray(waveforms[np.arange(spikes.size), :, column[spikes["unit_index"]]], dtype=np.float32)


def snippets_from_analyzer(analyzer, unit_ids=None) -> Snippets:
    """The analyzer's ``waveforms`` as :class:`Snippets`, each unit on its main channel (dense or sparse)."""
    check_analyzer_waveforms(analyzer)
    spikes = analyzer.sorting.to_spike_vector()[analyzer.get_extension("random_spikes").get_data()]
    all_units = list(analyzer.unit_ids)
    unit_ids = all_units if unit_ids is None else list(unit_ids)
    sel = np.flatnonzero(np.isin(spikes["unit_index"], [all_units.index(u) for u in unit_ids]))
    wf = main_channel_waveforms(analyzer)[sel]
    units = np.array([str(all_units[int(i)]) for i in spikes["unit_index"][sel]], dtype=str)
    cell_prop = analyzer.sorting.get_property("cell_id")
    names = {str(u): (str(cell_prop[i]) if cell_prop is not None else str(u)) for i, u in enumerate(all_units)}
    cells = np.array([names[u] for u in units], dtype=str)
    n_seg = analyzer.get_num_segments()
    durations = [analyzer.get_num_samples(s) / analyzer.sampling_frequency for s in range(n_seg)]
    sv = analyzer.sorting.to_spike_vector()
    return Snippets(
        waveforms=wf,
        trigger_samples=spikes["sample_index"][sel].astype(np.int64),
        segment_index=spikes["segment_index"][sel].astype(np.int64),
        unit_ids=units,
        cell_ids=cells,
        sampling_frequency=float(analyzer.sampling_frequency),
        segment_durations_s=durations,
        all_trigger_samples=sv["sample_index"].astype(np.int64),
        all_segment_index=sv["segment_index"].astype(np.int64),
        all_unit_ids=np.array([str(all_units[int(i)]) for i in sv["unit_index"]], dtype=str),
    )


# --------------------------------------------------------------------------------------------------------------
# the authors' per-spike CSV format and npz

_CSV_NAME = re.compile(r"^(?P<cell>.+)_trigger_(?P<sample>\d+)\.csv$")
_CSV_HEADER = "Time (s),Current (pA)"


def write_snippet_csv_folder(snippets: Snippets, folder, *, overwrite: bool = False) -> int:
    """Write one ``<cell>_trigger_<sample>.csv`` per spike (header + 160 rows: time in s, current in pA),
    the authors' format. For multi-sweep recordings ``<sample>`` counts from the start of the first sweep
    (sweeps laid end to end). Values are written with 9 significant digits: float32 round-trips exactly.
    Returns the number of files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fs = snippets.sampling_frequency
    offsets = (
        np.concatenate([[0], np.cumsum(np.round(np.asarray(snippets.segment_durations_s) * fs))]).astype(np.int64)
        if snippets.segment_durations_s
        else np.zeros(1, np.int64)
    )
    rel = np.arange(SNIPPET_LENGTH) - NBEFORE
    triggers = [
        int(snippets.trigger_samples[k] + offsets[int(snippets.segment_index[k])]) for k in range(len(snippets))
    ]
    paths = [folder / f"{snippets.cell_ids[k]}_trigger_{s}.csv" for k, s in enumerate(triggers)]
    if not overwrite:  # check them all first: a refusal must not leave half the cell written
        for path in paths:
            if path.exists():
                raise SeroError(f"{path} exists; pass overwrite=True (CLI: --overwrite) or choose another folder.")
    for k, (s, path) in enumerate(zip(triggers, paths)):
        t = (s + rel) / fs
        body = "\n".join(f"{ti:.9g},{xi:.9g}" for ti, xi in zip(t, snippets.waveforms[k]))
        path.write_text(_CSV_HEADER + "\n" + body + "\n")
    return len(snippets)


def read_snippet_csv_folder(folder, *, on_bad: str = "raise"):
    """Read a folder of the authors' per-spike CSV files.

    Returns ``(X, cell_ids, trigger_samples)``: X (n, 160) float32 current in pA (the second column),
    sorted by cell then trigger. Files whose name does not match ``<cell>_trigger_<sample>.csv`` are ignored;
    a matching file that does not hold 160 rows of two numbers raises SnippetError (``on_bad="skip"`` skips
    it with a warning instead: the authors' loader silently kept only 160-row files).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SnippetError(f"{folder} is not a folder of <cell>_trigger_<sample>.csv files.")
    entries = []
    for p in folder.iterdir():
        m = _CSV_NAME.match(p.name)
        if m and p.is_file():
            entries.append((m["cell"], int(m["sample"]), p))
    entries.sort(key=lambda e: (e[0], e[1]))
    X, cells, samples, bad = [], [], [], []
    for cell, s, p in entries:
        try:
            arr = np.loadtxt(p, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
            ok = arr.shape == (SNIPPET_LENGTH, 2) and np.isfinite(arr).all()
        except ValueError:
            ok = False
        if not ok:
            if on_bad == "raise":
                raise SnippetError(
                    f"{p.name} is not a 160-row, 2-column (time, current) snippet file. Fix or "
                    "remove it, or pass on_bad='skip' to leave such files out."
                )
            bad.append(p.name)
            continue
        X.append(arr[:, 1])
        cells.append(cell)
        samples.append(s)
    if bad:
        warnings.warn(
            f"Skipped {len(bad)} malformed snippet file(s) in {folder}: {', '.join(bad[:5])}"
            f"{' ...' if len(bad) > 5 else ''}",
            stacklevel=2,
        )
    if not X:
        raise SnippetError(f"{folder} holds no <cell>_trigger_<sample>.csv snippet files.")
    return (np.asarray(X, dtype=np.float32), np.array(cells, dtype=str), np.array(samples, dtype=np.int64))


def save_npz(snippets: Snippets, path) -> Path:
    """Save snippets (waveforms in pA, triggers, segments, units, cells, and detection settings) as .npz,
    atomically (a crash leaves the old file or the new one). numpy's rule: ``.npz`` is added to a name
    without it. Every detected spike (``all_*``, before a cap) is kept too, for the firing statistics."""
    import json

    path = Path(path)
    path = path if path.suffix == ".npz" else path.with_name(path.name + ".npz")
    every_spike = {}
    if snippets.all_trigger_samples is not None:
        every_spike = dict(
            all_trigger_samples=snippets.all_trigger_samples,
            all_segment_index=snippets.all_segment_index,
            all_unit_ids=np.asarray(snippets.all_unit_ids).astype(str),
        )
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(
            handle,
            **every_spike,
            waveforms=snippets.waveforms,
            trigger_samples=snippets.trigger_samples,
            segment_index=snippets.segment_index,
            unit_ids=snippets.unit_ids.astype(str),
            cell_ids=snippets.cell_ids.astype(str),
            sampling_frequency=np.float64(snippets.sampling_frequency),
            meta=np.array(
                json.dumps(
                    dict(
                        source=snippets.source,
                        detection=snippets.detection,
                        n_dropped_edge=snippets.n_dropped_edge,
                        n_detected=snippets.n_detected,
                        thresholds_pa=snippets.thresholds_pa,
                        segment_durations_s=snippets.segment_durations_s,
                        segment_t_starts_s=snippets.segment_t_starts_s,
                    )
                )
            ),
        )
    return path


_EVERY_SPIKE = ("all_trigger_samples", "all_segment_index", "all_unit_ids")


# deflate gives at most about 1032 bytes out per byte in (RFC 1951's longest match per 2-bit code, plus slack)
_MAX_DEFLATE_RATIO = 1100


def _check_npz_sizes(path: Path) -> None:
    """Refuse an .npz whose members declare more data than the file can hold, before anything is allocated.

    ``np.load`` allocates each array from the shape its ``.npy`` header declares; a forged header (4 billion
    values in a 1 kB file) would ask for gigabytes. Each member's header is read alone and its size checked
    against the member's uncompressed size in the zip directory, and that against the member's stored size
    (deflate cannot expand more than about 1000-fold).
    """
    import zipfile

    size = check_regular_file(path, SnippetError, "a snippets .npz file")
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                if member.file_size > _MAX_DEFLATE_RATIO * member.compress_size + 4096 or member.compress_size > size:
                    raise SnippetError(
                        f"{path}: its member {member.filename} declares {member.file_size} bytes in "
                        f"{member.compress_size} stored bytes of a {size}-byte file; the file is corrupt. "
                        "Write it again with sero snippets --out or spikeinterface_sero.snippets.save_npz."
                    )
                if member.filename.endswith(".npy"):
                    _check_npy_header(path, archive, member)
    except zipfile.BadZipFile as e:
        raise SnippetError(f"{path} is not a snippets .npz written by spikeinterface-sero ({e}).") from None


def _check_npy_header(path: Path, archive, member) -> None:
    """Raise SnippetError when an .npy member's header declares more bytes than the member holds."""
    from numpy.lib import format as npy_format

    with archive.open(member) as handle:
        try:
            version = npy_format.read_magic(handle)
            read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            shape, _, dtype = read_header(handle)
        except (ValueError, TypeError, OSError) as e:
            raise SnippetError(f"{path}: its member {member.filename} is not a numpy array ({e}).") from None
        declared = int(np.prod(shape, dtype=object)) * max(dtype.itemsize, 1)
        available = member.file_size - handle.tell()
    if dtype.hasobject or declared > available:
        raise SnippetError(
            f"{path}: its member {member.filename} declares a {shape} {dtype} array ({declared} bytes) but holds "
            f"only {max(available, 0)} bytes; the file is corrupt or forged. Write it again with sero snippets "
            "--out or spikeinterface_sero.snippets.save_npz."
        )


def load_npz(path) -> Snippets:
    """Read snippets written by :func:`save_npz` (or ``sero snippets --out x.npz``).

    Parameters
    ----------
    path : str or Path
        The .npz file.

    Returns
    -------
    Snippets
    """
    import json

    path = check_path(path, "path")
    _check_npz_sizes(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"])) if "meta" in z else {}
            return Snippets(
                waveforms=z["waveforms"].astype(np.float32),
                trigger_samples=z["trigger_samples"],
                segment_index=z["segment_index"],
                unit_ids=z["unit_ids"],
                cell_ids=z["cell_ids"],
                sampling_frequency=float(z["sampling_frequency"]),
                **{name: z[name] for name in _EVERY_SPIKE if name in z},
                **meta,
            )
    except (OSError, KeyError, ValueError) as e:
        raise SnippetError(f"{path} is not a snippets .npz written by spikeinterface-sero ({e}).") from None


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
    params = DetectionParams() if params is None else params
    if not 0 <= int(segment_index) < recording.get_num_segments():
        raise SeroError(f"segment_index must be 0 to {recording.get_num_segments() - 1}, not {segment_index!r}.")
    n = recording.get_num_samples(segment_index=int(segment_index))
    end_frame = n if end_frame is None else int(end_frame)
    if not 0 <= int(start_frame) < end_frame <= n:
        raise SeroError(
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
