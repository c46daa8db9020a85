"""The detection view of a cell: the raw trace as the detector saw it (its baseline, threshold and triggers), a
zoom on a few triggers, or why a channel gave no spikes (``docs/report.md``). The detector's baseline is
computed once per segment of a recording and shared by every cell and thumbnail of it (:class:`DetectorLines`).
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np

from ..detection import DetectionParams, detection_trace
from ..errors import SeroError
from .figures import THUMBNAIL_INCHES, WHY, literal, new_figure
from .words import COLOURS

__all__ = ["DetectorLines", "plot_detection", "detection_thumbnail", "detection_params"]


class DetectorLines:
    """The detector's own baseline and threshold lines of a recording (those of
    :func:`spikeinterface_sero.detection.detection_trace`), the baseline pass run once per segment and kept.

    The detector does not store its baseline, and ``detection_trace`` runs the pass again for every stretch it
    is asked for (once per cell and again per thumbnail); this keeps the pass's block medians per segment.
    ``tests/test_report.py`` checks the lines equal ``detection_trace``'s.

    Parameters
    ----------
    recording : BaseRecording
        The recording the triggers were detected on (pA).
    params : DetectionParams
        The detection settings.
    """

    def __init__(self, recording, params: DetectionParams):
        self.recording, self.params = recording, params
        self._detector = sys.modules[detection_trace.__module__]  # the module of the detector's own pass
        fs = float(recording.sampling_frequency)
        self._block = int(round(self._detector._BLOCK_MS * fs / 1000.0))
        self._chunk = max(self._block, int(10.0 * fs) // self._block * self._block)  # the detector's chunks
        self._knots: dict[int, np.ndarray] = {}
        self._levels = None

    def _pass(self, segment: int, want_noise: bool):
        return self._detector._pass_baseline(self.recording, segment, self._block, self._chunk, want_noise=want_noise)

    def levels(self) -> np.ndarray:
        """Each channel's signed threshold from the baseline (pA)."""
        if self._levels is None:
            params = self.params
            if params.mad_multiplier is None:
                self._levels = np.full(self.recording.get_num_channels(), float(params.threshold))
            else:  # the noise of the whole recording: every segment's pass, kept for the baselines too
                noise = []
                for segment in range(self.recording.get_num_segments()):
                    medians, sigma = self._pass(segment, want_noise=True)
                    self._keep(segment, medians)
                    noise.append(sigma)
                sign = -1.0 if params.polarity == "negative" else 1.0
                self._levels = sign * params.mad_multiplier * np.median(np.concatenate(noise), axis=0)
        return self._levels

    def _keep(self, segment: int, medians: np.ndarray) -> None:
        if self.params.baseline_window_ms is not None and segment not in self._knots:
            width = int(round(self.params.baseline_window_ms / self._detector._BLOCK_MS)) | 1
            self._knots[segment] = self._detector._running_median(medians, width)

    def stretch(self, segment: int, start: int, end: int):
        """(trace, baseline, threshold) of samples ``start:end`` of ``segment``, each (n, channels) float32 pA."""
        levels = self.levels()
        trace = np.asarray(
            self.recording.get_traces(segment_index=segment, start_frame=start, end_frame=end, return_in_uV=True),
            dtype=np.float32,
        )
        if self.params.baseline_window_ms is None:
            baseline = np.zeros_like(trace)
        else:
            if segment not in self._knots:
                self._keep(segment, self._pass(segment, want_noise=False)[0])
            knots, samples = self._knots[segment], np.arange(start, end)
            columns = [self._detector._baseline_at(knots[:, c], self._block, samples) for c in range(trace.shape[1])]
            baseline = np.stack(columns, axis=1)
        return trace, baseline, (baseline + levels.astype(np.float32)[None, :]).astype(np.float32)


_TRACE_COLOUR, _BASELINE_COLOUR, _THRESHOLD_COLOUR, _TRIGGER_COLOUR = "#333333", "#009E73", "#C00000", "#0072B2"
_ZOOM_MS = (-2.0, 4.0)  # around a trigger: the snippet (-1 to +3 ms) and a little of its surroundings
_SMALLEST_ACTION_CURRENT_PA = 10.0  # loose-seal action currents are tens to hundreds of pA


def detection_params(params) -> DetectionParams:
    if params is None or isinstance(params, DetectionParams):
        return DetectionParams() if params is None else params
    names = {f.name for f in dataclasses.fields(DetectionParams)}
    return DetectionParams(**{key: value for key, value in dict(params).items() if key in names})


def _threshold_text(params: DetectionParams, level_pa: float) -> str:
    if params.mad_multiplier is not None:
        text = f"threshold {params.mad_multiplier:g} x noise (MAD) = {level_pa:.1f} pA"
    else:
        text = f"threshold {level_pa:g} pA"
    if params.baseline_window_ms is None:
        return text + " from 0 pA (fixed baseline)"
    return (
        text + f" from the local baseline (running median over {params.baseline_window_ms:g} ms); "
        f"dead time {params.dead_time_ms:g} ms"
    )


def _noise_pa(trace, baseline) -> float:
    """The robust noise SD of a stretch: 1.4826 x the median absolute deviation from the baseline, in pA."""
    deviation = np.abs(np.asarray(trace, dtype=np.float64) - baseline)
    return float(1.4826 * np.median(deviation)) if deviation.size else float("nan")


def _why_no_spikes(excursion_pa, level_pa, noise_pa, polarity, where, n_dropped=None) -> str:
    """One line saying why a channel gave no spikes, in the numbers of the detector."""
    direction = "inward" if polarity == "negative" else "outward"
    if abs(excursion_pa) < abs(level_pa):
        return (
            f"no crossing of {level_pa:.3g} pA: largest {direction} excursion {excursion_pa:.3g} pA, "
            f"noise {noise_pa:.2g} pA ({where})"
        )
    if n_dropped:
        return f"{n_dropped} crossing(s) of {level_pa:.3g} pA, all too close to a sweep edge for a full 4 ms snippet"
    return f"the current reaches {excursion_pa:.3g} pA ({where}) but no trigger was kept"


def _densest_stretch(spike_samples, num_samples, width):
    """(segment, start, end) of the window of ``width`` samples holding the most triggers (the first seconds of
    the first segment when there are none)."""
    best = (0, 0, -1)
    for segment, samples in enumerate(spike_samples):
        samples = np.sort(np.asarray(samples, dtype=np.int64))
        if samples.size == 0:
            continue
        counts = np.searchsorted(samples, samples + width) - np.arange(samples.size)
        i = int(np.argmax(counts))
        if counts[i] > best[2]:  # centre the group of triggers in the window
            span = int(samples[i + counts[i] - 1] - samples[i])
            start = int(np.clip(samples[i] - (width - 1 - span) // 2, 0, max(num_samples[segment] - width, 0)))
            best = (segment, start, int(counts[i]))
    segment, start, _ = best
    return segment, start, min(num_samples[segment], start + width)


def _draw_lines(ax, t, trace, baseline, threshold, labels=True):
    ax.plot(t, trace, color=_TRACE_COLOUR, lw=0.6, label="current" if labels else None)
    ax.plot(t, baseline, color=_BASELINE_COLOUR, lw=1.4, label="baseline" if labels else None)
    ax.plot(t, threshold, color=_THRESHOLD_COLOUR, lw=1.4, ls="--", label="threshold" if labels else None)


def _zoom(ax, t_ms, trace, baseline, threshold, title, snippet=True):
    if snippet:  # the 160-sample snippet the model sees: 1 ms before to 3 ms after the trigger
        ax.axvspan(-1.0, 3.0, color=_TRIGGER_COLOUR, alpha=0.08, lw=0)
    _draw_lines(ax, t_ms, trace, baseline, threshold, labels=False)
    ax.axvline(0.0, color=_TRIGGER_COLOUR, lw=0.8, ls=":")
    ax.set_xlim(t_ms[0], t_ms[-1])
    ax.set_title(title, fontsize=9, loc="left")
    ax.set_xlabel("ms from the trigger")
    ax.tick_params(labelsize=8)


def plot_detection(
    recording,
    spike_samples,
    params=None,
    *,
    channel_id=None,
    seconds: float = 3.0,
    title: str | None = None,
    n_dropped_edge: int | None = None,
    n_zoom: int = 4,
    dpi: int = 100,
    lines: DetectorLines | None = None,
):
    """The detection view of one cell: a stretch of the raw trace with the detector's baseline and threshold
    and every trigger marked, and a zoom on a few triggers (weakest to strongest). For a cell without triggers:
    the first seconds (sweeps end to end), the distribution of the deviations from the baseline against the
    threshold, the closest approach to it and one line saying why nothing was detected.

    The baseline and threshold are the detector's own (:func:`spikeinterface_sero.detection.detection_trace`).

    Parameters
    ----------
    recording : BaseRecording
        The recording the triggers were detected on (pA).
    spike_samples : list of array_like
        The cell's trigger samples, one array per segment (as ``sorting.get_unit_spike_train(unit,
        segment_index=s)``); one array for a one-segment recording.
    params : DetectionParams, dict or None, default: None
        The detection settings the triggers were found with (a dict as stored in the sorting's
        ``sero_detection`` annotation); None: the defaults.
    channel_id : str, int or None, default: None
        The cell's channel; None: the recording's only (first) channel.
    seconds : float, default: 3.0
        Length of the stretch shown: the densest stretch of triggers, or the first seconds without any.
    title : str or None, default: None
        The cell's name for the title.
    n_dropped_edge : int or None, default: None
        Triggers dropped at sweep edges (said in the "why" of a cell without spikes).
    n_zoom : int, default: 4
        How many triggers are zoomed on.
    dpi : int, default: 100
        Resolution of the figure.
    lines : DetectorLines or None, default: None
        The recording's baseline and threshold lines, shared by the cells of one recording (None: computed
        here).

    Returns
    -------
    matplotlib.figure.Figure
        Its lines are labelled ``current``, ``baseline``, ``threshold`` and ``triggers`` (the data drawn).
    """
    params = detection_params(params)
    channels = [str(c) for c in recording.channel_ids]
    channel = channels[0] if channel_id is None else str(channel_id)
    if channel not in channels:
        raise SeroError(f"channel_id {channel_id!r} is not a channel of the recording ({', '.join(channels)}).")
    column = channels.index(channel)
    if not isinstance(spike_samples, (list, tuple)):
        spike_samples = [spike_samples]
    if len(spike_samples) != recording.get_num_segments():
        raise SeroError(
            f"spike_samples must hold one array per segment ({recording.get_num_segments()}), not {len(spike_samples)}."
        )
    if not seconds > 0:
        raise SeroError(f"seconds must be > 0, not {seconds!r}.")
    num_samples = [recording.get_num_samples(segment_index=s) for s in range(recording.get_num_segments())]
    n_triggers = int(sum(np.asarray(s).size for s in spike_samples))
    lines = DetectorLines(recording, params) if lines is None else lines
    fig = new_figure((14, 7.3), dpi=dpi)
    name = f"{literal(title)}: " if title else ""
    if n_triggers:
        _detection_with_triggers(fig, lines, spike_samples, column, seconds, num_samples, n_zoom, name)
    else:
        _detection_without_triggers(fig, lines, column, seconds, num_samples, n_dropped_edge, name)
    return fig


def _detection_with_triggers(fig, lines, spike_samples, column, seconds, num_samples, n_zoom, name):
    params, fs = lines.params, float(lines.recording.sampling_frequency)
    width = max(2, int(round(seconds * fs)))
    segment, start, end = _densest_stretch(spike_samples, num_samples, width)
    trace, baseline, threshold = (a[:, column] for a in lines.stretch(segment, start, end))
    samples = np.sort(np.asarray(spike_samples[segment], dtype=np.int64))
    shown = samples[(samples >= start) & (samples < end)]
    t = (start + np.arange(trace.size)) / fs
    sign = -1.0 if params.polarity == "negative" else 1.0
    level = float(threshold[0] - baseline[0])

    gs = fig.add_gridspec(2, max(1, n_zoom), left=0.06, right=0.985, bottom=0.11, top=0.86, hspace=0.42, wspace=0.25)
    ax = fig.add_subplot(gs[0, :])
    _draw_lines(ax, t, trace, baseline, threshold)
    local = shown - start
    ax.plot(
        t[local],
        trace[local],
        "v" if sign < 0 else "^",
        ls="none",
        ms=6,
        color=_TRIGGER_COLOUR,
        label=f"triggers ({shown.size})",
    )
    ax.set_xlim(t[0], t[-1])
    sweep = f" of sweep {segment + 1}" if len(num_samples) > 1 else ""
    ax.set_xlabel(f"time{sweep} (s)")
    ax.set_ylabel("current (pA)")
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, ncol=4, frameon=False, borderaxespad=0.2)
    total = sum(np.asarray(s).size for s in spike_samples)
    fig.text(
        0.06,
        0.955,
        f"{name}detection: {total} trigger(s) in the recording, {shown.size} in the densest "
        f"{trace.size / fs:.3g} s shown",
        fontsize=14,
        fontweight="bold",
        ha="left",
        va="bottom",
    )
    fig.text(0.06, 0.925, _threshold_text(params, level), fontsize=10, color="#444444", ha="left", va="bottom")

    # zooms: the weakest to the strongest trigger of the stretch, by their deepest excursion in the snippet
    before, after = int(round(-_ZOOM_MS[0] * fs / 1000.0)), int(round(_ZOOM_MS[1] * fs / 1000.0))
    peaks = np.array([np.max(sign * (trace[i : i + after] - baseline[i : i + after])) for i in local])
    order = np.argsort(peaks)
    picks = order[np.unique(np.round(np.linspace(0, order.size - 1, min(n_zoom, order.size))).astype(int))]
    for k, pick in enumerate(picks):
        i = int(local[pick])
        lo, hi = max(0, i - before), min(trace.size, i + after)
        zoom_ax = fig.add_subplot(gs[1, k])
        rank = "weakest" if k == 0 and picks.size > 1 else ("strongest" if k == picks.size - 1 and k else "")
        _zoom(
            zoom_ax,
            (np.arange(lo, hi) - i) / fs * 1000.0,
            trace[lo:hi],
            baseline[lo:hi],
            threshold[lo:hi],
            f"{rank + ': ' if rank else ''}{t[i]:.3f} s, peak {sign * peaks[pick]:.0f} pA",
        )
        if k == 0:
            zoom_ax.set_ylabel("current (pA)")
    fig.text(
        0.06,
        0.455,
        f"{picks.size} of the triggers shown, weakest to strongest (peak from the baseline); shaded: the "
        "snippet the model sees (1 ms before to 3 ms after the trigger)",
        fontsize=10,
        color="#444444",
        ha="left",
        va="bottom",
    )


def _detection_without_triggers(fig, lines, column, seconds, num_samples, n_dropped, name):
    params, fs = lines.params, float(lines.recording.sampling_frequency)
    parts, edges, remaining = [], [], int(round(seconds * fs))
    for segment, n in enumerate(num_samples):
        if remaining <= 0:
            break
        if n == 0:
            continue
        end = min(n, remaining)
        parts.append([a[:, column] for a in lines.stretch(segment, 0, end)])
        edges.append(sum(p[0].size for p in parts))
        remaining -= end
    trace, baseline, threshold = (np.concatenate([p[i] for p in parts]) for i in range(3))
    t = np.arange(trace.size) / fs
    sign = -1.0 if params.polarity == "negative" else 1.0
    level = float(threshold[0] - baseline[0])
    deviation = trace - baseline
    deepest = int(np.argmax(sign * deviation))
    excursion = float(deviation[deepest])
    noise = _noise_pa(trace, baseline)
    where = "over the whole recording" if trace.size >= sum(num_samples) else f"in the first {trace.size / fs:.3g} s"
    why = _why_no_spikes(excursion, level, noise, params.polarity, where, n_dropped)

    gs = fig.add_gridspec(
        2, 3, left=0.06, right=0.985, bottom=0.11, top=0.84, hspace=0.45, wspace=0.28, width_ratios=[1, 1, 1.1]
    )
    ax = fig.add_subplot(gs[0, :])
    _draw_lines(ax, t, trace, baseline, threshold)
    ax.plot([], [], "v" if sign < 0 else "^", ls="none", color=_TRIGGER_COLOUR, label="triggers (0)")
    for edge in edges[:-1]:
        ax.axvline(edge / fs, color="#999999", lw=0.6, ls=":")
    ax.set_xlim(t[0], t[-1])
    ax.set_xlabel("time (s" + ("; sweeps end to end, dotted lines between them)" if len(edges) > 1 else ")"))
    ax.set_ylabel("current (pA)")
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, ncol=4, frameon=False, borderaxespad=0.2)
    fig.text(
        0.06, 0.955, f"{name}no spikes detected", fontsize=14, fontweight="bold", color=COLOURS["error"], va="bottom"
    )
    fig.text(0.06, 0.92, why, fontsize=11, ha="left", va="bottom", gid=WHY)  # also the PNG's Description
    fig.text(0.06, 0.89, _threshold_text(params, level), fontsize=10, color="#444444", ha="left", va="bottom")

    # the deviations from the baseline against the threshold: how far the largest events are from it
    ax_hist = fig.add_subplot(gs[1, 0])
    reach = 1.1 * max(abs(level), float(np.max(np.abs(deviation))))
    width = max(reach / 400.0, min(reach / 60.0, noise / 2.0)) if noise > 0 else reach / 60.0
    ax_hist.hist(deviation, bins=np.arange(-reach, reach + width, width), color="#777777", log=True)
    ax_hist.axvline(level, color=_THRESHOLD_COLOUR, lw=1.4, ls="--", label=f"threshold {level:.3g} pA")
    ax_hist.axvline(excursion, color=_TRIGGER_COLOUR, lw=1.0, ls=":", label=f"largest {excursion:.3g} pA")
    ax_hist.set_title("Current from the baseline (every sample shown)", fontsize=10, loc="left")
    ax_hist.set_xlabel("pA from the baseline")
    ax_hist.set_ylabel("samples")
    ax_hist.legend(fontsize=8, frameon=False, loc="upper right" if sign < 0 else "upper left")

    # the closest approach to the threshold, on the trace's own scale
    ax_zoom = fig.add_subplot(gs[1, 1])
    half = int(round(5e-3 * fs))
    lo, hi = max(0, deepest - half), min(trace.size, deepest + half)
    _zoom(
        ax_zoom,
        (np.arange(lo, hi) - deepest) / fs * 1000.0,
        trace[lo:hi],
        baseline[lo:hi],
        threshold[lo:hi],
        f"Closest approach: {excursion:.3g} pA at {t[deepest]:.3f} s",
        snippet=False,
    )
    low, high = float(trace[lo:hi].min()), float(trace[lo:hi].max())
    pad = 0.15 * max(high - low, noise, 1e-3)
    ax_zoom.set_ylim(low - pad, high + pad)
    if not low - pad <= float(threshold[deepest]) <= high + pad:
        ax_zoom.text(
            0.02,
            0.04 if sign < 0 else 0.96,
            f"threshold at {float(threshold[deepest]):.3g} pA, off this scale",
            transform=ax_zoom.transAxes,
            color=_THRESHOLD_COLOUR,
            fontsize=8,
            va="bottom" if sign < 0 else "top",
        )
    ax_zoom.set_xlabel("ms from the largest excursion")
    ax_zoom.set_ylabel("current (pA)")

    ax_text = fig.add_subplot(gs[1, 2])
    ax_text.axis("off")
    ratio = abs(excursion) / noise if noise > 0 else float("inf")
    lines = [
        f"Threshold   {level:.3g} pA from the baseline",
        f"Noise       {noise:.2g} pA (1.4826 x MAD)",
        f"Largest     {excursion:.3g} pA = {ratio:.0f} x the noise",
        f"            ({where})",
        "",
        "What to check:",
        "- is the channel a cell-attached recording",
        "  of a firing cell (not a command, reference",
        "  or empty channel)?",
    ]
    if abs(excursion) < _SMALLEST_ACTION_CURRENT_PA:
        lines += [
            "- nothing as large as an action current",
            f"  (>= {_SMALLEST_ACTION_CURRENT_PA:g} pA in cell-attached recordings):",
            "  likely no firing cell on this channel",
        ]
    elif ratio > 6:
        lines += [
            "- events stand out of the noise but stay",
            f"  above {level:.3g} pA: a noise-relative",
            f"  threshold (5 x MAD = {sign * 5 * noise:.3g} pA) would",
            "  trigger on them; look at them first",
        ]
    else:
        lines += ["- nothing stands out of the noise: likely", "  no spikes on this channel"]
    ax_text.text(
        0.02, 0.98, "\n".join(lines), transform=ax_text.transAxes, family="monospace", fontsize=9, va="top", ha="left"
    )


def _envelope(t, trace, baseline, threshold, points: int = 600):
    """The lines of a small figure: the trace as its minimum and maximum per bin (every peak kept, about
    ``points`` bins: a thumbnail has a few hundred pixels), the smooth baseline and threshold at the bins."""
    step = trace.size // points
    if step < 2:
        return t, trace, baseline, threshold
    n = trace.size // step * step
    blocks = trace[:n].reshape(-1, step)
    extremes = np.column_stack([blocks.min(axis=1), blocks.max(axis=1)]).ravel()
    return np.repeat(t[:n:step], 2), extremes, np.repeat(baseline[:n:step], 2), np.repeat(threshold[:n:step], 2)


def detection_thumbnail(lines: DetectorLines, spike_samples, channel_id, seconds: float = 3.0):
    """The small detection view for the summary table: the densest ``seconds`` of triggers (or the first
    seconds without any) with the baseline, the threshold and the triggers."""
    recording, params = lines.recording, lines.params
    channels = [str(c) for c in recording.channel_ids]
    column = channels.index(str(channel_id))
    fs = float(recording.sampling_frequency)
    num_samples = [recording.get_num_samples(segment_index=s) for s in range(recording.get_num_segments())]
    width = max(2, int(round(seconds * fs)))
    n_triggers = int(sum(np.asarray(s).size for s in spike_samples))
    segment, start, end = _densest_stretch(spike_samples, num_samples, width)
    trace, baseline, threshold = (a[:, column] for a in lines.stretch(segment, start, end))
    t = (start + np.arange(trace.size)) / fs
    fig = new_figure(THUMBNAIL_INCHES, layout="constrained")
    ax = fig.add_subplot()
    ax.tick_params(labelsize=7, length=2, pad=1)
    _draw_lines(ax, *_envelope(t, trace, baseline, threshold), labels=False)
    samples = np.sort(np.asarray(spike_samples[segment], dtype=np.int64))
    local = samples[(samples >= start) & (samples < end)] - start
    marker = "v" if params.polarity == "negative" else "^"
    ax.plot(t[local], trace[local], marker, ls="none", ms=4, color=_TRIGGER_COLOUR)
    ax.set_xlim(t[0], t[-1])
    ax.set_xlabel("s" + (f" of sweep {segment + 1}" if len(num_samples) > 1 else ""), fontsize=7, labelpad=1)
    ax.set_ylabel("pA", fontsize=7, labelpad=1)
    if n_triggers:
        ax.set_title(f"{n_triggers} triggers; threshold dashed", fontsize=8, loc="left")
    else:
        ax.set_title("no spikes: see why", fontsize=8, fontweight="bold", color=COLOURS["error"], loc="left")
    return fig
