"""Is a cell's train of events a stimulus or pacing artefact? The ``stimulus_artefact`` check.

Thresholds in ``constants.py``; the rule, the measured margins and the sources are in docs/quality.md.
"""

from __future__ import annotations

import numpy as np

from .constants import (
    MAX_STIMULUS_AMPLITUDE_SPREAD,
    MAX_STIMULUS_JITTER_MS,
    MIN_ACTION_CURRENT_ONSET_MS,
    MIN_STIMULUS_EVENTS,
    SAMPLING_FREQUENCY,
)

__all__ = ["STIMULUS_ARTEFACT", "stimulus_measures", "stimulus_reasons"]

#: the ``sero_quality`` reason
STIMULUS_ARTEFACT = "stimulus_artefact"
_BASELINE = slice(0, 30)  # the first 0.75 ms of the window, before the event
_SEARCH = slice(30, 80)  # the inward peak follows the trigger (sample 40) within 1 ms


def _onset_ms(mean: np.ndarray) -> float:
    """Time from 10 % to 90 % of the inward peak on the mean event's leading edge (linear interpolation)."""
    trough = _SEARCH.start + int(np.argmin(mean[_SEARCH]))
    depth = -float(mean[trough])
    if depth <= 0:
        return float("nan")
    edge = -mean[: trough + 1] / depth  # rises from ~0 to 1 at the trough

    def crossing(level):
        above = np.flatnonzero(edge < level)
        if not len(above):
            return 0.0
        i = int(above[-1])  # last sample below the level before the trough
        return i + (level - edge[i]) / (edge[i + 1] - edge[i])

    return (crossing(0.9) - crossing(0.1)) * 1000.0 / SAMPLING_FREQUENCY


def stimulus_measures(waveforms, isis_s=None) -> dict:
    """The three measures of one cell's events.

    Parameters
    ----------
    waveforms : np.ndarray
        (n, 160) snippets of the cell, negative-going, 40 kHz, trigger at sample 40.
    isis_s : np.ndarray or None, default: None
        The cell's inter-spike intervals within sweeps (s); None when unknown (snippet files).

    Returns
    -------
    dict
        ``isi_jitter_ms`` (robust SD of the intervals: 1.4826 × their median absolute deviation; NaN with
        fewer than ``MIN_STIMULUS_EVENTS`` intervals), ``amplitude_spread`` (the same robust SD of the
        inward peak depths over their median; NaN with fewer than ``MIN_STIMULUS_EVENTS`` events) and
        ``onset_ms`` (10-90 % time of the mean event's leading edge).
    """
    x = np.asarray(waveforms, dtype=np.float64)
    measures = dict(isi_jitter_ms=np.nan, amplitude_spread=np.nan, onset_ms=np.nan)
    if isis_s is not None and len(isis_s) >= MIN_STIMULUS_EVENTS:
        intervals = np.asarray(isis_s, dtype=np.float64)
        measures["isi_jitter_ms"] = 1000.0 * 1.4826 * float(np.median(np.abs(intervals - np.median(intervals))))
    if x.ndim != 2 or x.shape[0] == 0:
        return measures
    x = x - np.median(x[:, _BASELINE], axis=1, keepdims=True)
    mean = x.mean(axis=0)
    measures["onset_ms"] = _onset_ms(mean)
    if x.shape[0] >= MIN_STIMULUS_EVENTS:
        trough = _SEARCH.start + int(np.argmin(mean[_SEARCH]))
        depths = -x[:, max(trough - 2, 0) : trough + 3].min(axis=1)
        median = float(np.median(depths))
        if median > 0:
            measures["amplitude_spread"] = 1.4826 * float(np.median(np.abs(depths - median))) / median
    return measures


def stimulus_reasons(waveforms, isis_s=None) -> list[str]:
    """``["stimulus_artefact"]`` when the cell's events are exactly periodic, identical from event to event or
    faster than an action current can be through the electrode; else ``[]`` (rule in docs/quality.md).

    Parameters
    ----------
    waveforms : np.ndarray
        (n, 160) snippets of the cell, negative-going, 40 kHz, trigger at sample 40.
    isis_s : np.ndarray or None, default: None
        The cell's inter-spike intervals within sweeps (s); None when unknown.

    Returns
    -------
    list of str
        The failed reason, or nothing.
    """
    measures = stimulus_measures(waveforms, isis_s)
    periodic = measures["isi_jitter_ms"] < MAX_STIMULUS_JITTER_MS
    identical = measures["amplitude_spread"] < MAX_STIMULUS_AMPLITUDE_SPREAD
    too_fast = measures["onset_ms"] < MIN_ACTION_CURRENT_ONSET_MS
    return [STIMULUS_ARTEFACT] if (periodic or identical or too_fast) else []
