"""A watch on the seal: what happened to a loose-seal recording over time, and its stable stretch.

The cell's spikes (the snippets the model saw, with their pre-trigger baseline, in recording order) are cut
into windows of equal length; each window's amplitude, noise, baseline, shape and rate are compared with the
first windows (a fresh seal); an event's onset is then resolved from the spikes. What each failure looks like,
its thresholds, how its onset is found and the sources: docs/seal.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .constants import NBEFORE

__all__ = ["SEAL_EVENTS", "SealReport", "watch_seal", "watch_units", "separate_two_cells"]

#: what can happen to a loose seal, in the order they are looked for
SEAL_EVENTS = ("break_in", "second_cell", "seal_loss", "drift")
_BASELINE = slice(0, 30)  # the first 0.75 ms of the window: before the spike
_TROUGH = slice(NBEFORE - 5, NBEFORE + 40)  # the inward peak follows the trigger within 1 ms
_ALIGNED = (30, 80)  # shapes are compared from 0.75 ms before each spike's own inward peak to 2 ms after it
_WINDOWS = 12  # the recording is cut into about this many windows ...
_MIN_SPIKES_PER_WINDOW = 12  # ... of this many spikes on average (a window with fewer than _MEASURED is not
_MEASURED = 5  # measured: its flags are unknown)
_MIN_WINDOWS = 4  # a reference (2 windows) and at least 2 more to call anything lasting
_REFERENCE_WINDOWS = 2
_SHAPE_CHANGED = 0.85  # correlation of a spike's normalised shape with the reference mean below this
_AMPLITUDE_CHANGED = np.log(1.6)  # |log amplitude ratio| beyond this: a spike unlike the reference
_SUBSET = 0.05  # a second cell: more than this share of a window's spikes unlike the reference, beyond the
# share the reference windows have themselves (at least twice theirs)
_NATURAL_FLOOR = 0.02  # the share of unlike spikes a healthy cell is assumed to have at least, and ...
_SECOND_CELL_P = 0.01  # ... how unlikely a window's count must be under that share to be a second cell
_ALL = 0.9  # a break-in or a seal loss: (nearly) every spike of the window changed
_NEW_SHAPE = 0.75  # window shape correlation below this (aligned on the peak), or ...
_BREAK_IN_LARGER = 1.6  # ... every spike this much larger, or ...
_BREAK_IN_MORE = 2.0  # ... this many times the events, or ...
_BREAK_IN_NOISIER = 1.5  # ... this many times the noise, with the holding current moved: a break-in
_BREAK_IN_MOVED_PA = 80.0  # the holding current moved by more than this (and _DRIFT_NOISE_SD noise SDs)
_SEAL_LOSS_RATIO = 0.6  # every spike's amplitude below 60 % of the reference's (holding current kept), or ...
_SEAL_LOSS_RATE = (0.35, 0.8)  # ... the rate below 35 % with the amplitude below 80 % (spikes fall under -50 pA)
_SILENCE_ISIS = 10.0  # no spike for this many reference intervals (and _SILENCE_MIN_S) before the end: lost
_SILENCE_MIN_S = 10.0
_DRIFT_NOISE_SD = 8.0  # baseline moved by more than this many noise SDs (and at least _DRIFT_MIN_PA)
_CUSUM_ALLOWANCE = 1.0  # a seal loss's CUSUM grows by departures beyond this many spreads
_HINGE_GRID_S = 0.1  # a drift's onset is placed on this grid
_DRIFT_MIN_PA = 150.0  # a healthy seal's baseline wanders by up to about 2.5 drift_pa (docs/simulator.md:
# drift_pa 5-60 on widened days; 100-150 pA over 30 s measured), which is not a drift


@dataclass
class SealReport:
    """What the seal watch found for one cell.

    Attributes
    ----------
    events : list of (str, float)
        ``(kind, start_s)`` of each lasting change (:data:`SEAL_EVENTS`), earliest first.
    stable_start_s, stable_end_s : float
        The stretch classified: from the first spike to the first event (the whole recording without one).
    stable : np.ndarray
        (n_spikes,) bool, the spikes in the stable stretch (in the order given).
    windows : dict of np.ndarray
        Per window: ``start_s``, ``end_s``, ``amplitude_pa``, ``noise_pa``, ``baseline_pa``, ``shape``
        (correlation with the reference), ``unlike`` (share of spikes unlike the reference), ``rate_hz``.
    """

    events: list = field(default_factory=list)
    stable_start_s: float = np.nan
    stable_end_s: float = np.nan
    stable: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    windows: dict = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """``"stable"``, or the events with their start times (``"seal_loss@42.0s+drift@80.5s"``)."""
        return "+".join(f"{kind}@{start:.1f}s" for kind, start in self.events) or "stable"


def _measures(waveforms: np.ndarray):
    x = waveforms.astype(np.float64)
    baseline = np.median(x[:, _BASELINE], axis=1)
    x = x - baseline[:, None]
    trough = _TROUGH.start + np.argmin(x[:, _TROUGH], axis=1)
    amplitude = np.maximum(-x[np.arange(x.shape[0]), trough], 1e-9)
    deviation = x[:, _BASELINE] - np.median(x[:, _BASELINE], axis=1, keepdims=True)
    noise = 1.4826 * np.median(np.abs(deviation), axis=1)
    # aligned on each spike's own inward peak: where the -50 pA crossing falls on a slow rising phase moves
    # the trigger by up to 0.5 ms between spikes of one cell (membrane simulator), which is not a new shape
    columns = trough[:, None] + np.arange(-_ALIGNED[0], _ALIGNED[1])
    shapes = np.take_along_axis(x, np.clip(columns, 0, x.shape[1] - 1), axis=1) / amplitude[:, None]
    return baseline, amplitude, noise, shapes


def _correlation(shapes: np.ndarray, reference: np.ndarray) -> np.ndarray:
    a = shapes - shapes.mean(axis=-1, keepdims=True)
    b = reference - reference.mean()
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b)
    return np.where(norms > 0, a @ b / np.maximum(norms, 1e-12), 0.0)


def _lasting(flags: np.ndarray, known: np.ndarray) -> int | None:
    """The first window from which ``flags`` holds in that window and every later measured one (at least 2)."""
    for i in np.flatnonzero(known & flags):
        if flags[i:][known[i:]].all() and known[i:].sum() >= 2:
            return int(i)
    return None


def _window_table(times, baseline, amplitude, noise, shapes, windows, edges):
    reference_spikes = np.concatenate(windows[:_REFERENCE_WINDOWS])
    reference_shape = np.median(shapes[reference_spikes], axis=0)
    reference_amplitude = float(np.median(amplitude[reference_spikes]))
    spike_corr = _correlation(shapes, reference_shape)
    unlike = (spike_corr < _SHAPE_CHANGED) | (np.abs(np.log(amplitude / reference_amplitude)) > _AMPLITUDE_CHANGED)
    table = {name: np.zeros(len(windows)) for name in ("start_s", "end_s", "amplitude_pa", "noise_pa")}
    table.update({name: np.zeros(len(windows)) for name in ("baseline_pa", "shape", "unlike", "rate_hz")})
    table["n_spikes"] = np.array([len(spikes) for spikes in windows], dtype=np.float64)
    for i, (spikes, (start, end)) in enumerate(zip(windows, edges)):
        table["start_s"][i], table["end_s"][i] = start, end
        table["rate_hz"][i] = len(spikes) / max(end - start, 1e-9)
        if len(spikes) < _MEASURED:
            for name in ("amplitude_pa", "noise_pa", "baseline_pa", "shape", "unlike"):
                table[name][i] = np.nan
            continue
        table["amplitude_pa"][i] = np.median(amplitude[spikes])
        table["noise_pa"][i] = np.median(noise[spikes])
        table["baseline_pa"][i] = np.median(baseline[spikes])
        table["shape"][i] = float(_correlation(np.median(shapes[spikes], axis=0), reference_shape))
        table["unlike"][i] = float(unlike[spikes].mean())
    return table, unlike


def _beyond_chance(share: np.ndarray, n_spikes: np.ndarray, natural: float) -> np.ndarray:
    """Per window: more spikes unlike the reference than the reference's own share makes likely (binomial
    tail below ``_SECOND_CELL_P``; 1 or 2 of 15 spikes is chance, not a second cell)."""
    from scipy.stats import binom  # scipy.stats takes a second to import: only when a recording is watched

    count = np.round(np.nan_to_num(share) * n_spikes)
    return binom.sf(count - 1, n_spikes, max(natural, _NATURAL_FLOOR)) < _SECOND_CELL_P


def _events(table: dict) -> list:
    """``(kind, first window, window flagged)`` of each lasting change the window table shows (the first window
    of a drift is where the baseline had moved a quarter of the way; of the others, the window flagged)."""
    reference = slice(0, _REFERENCE_WINDOWS)
    amplitude = table["amplitude_pa"] / np.nanmedian(table["amplitude_pa"][reference])
    noise = max(float(np.nanmedian(table["noise_pa"][reference])), 1e-9)
    moved = np.abs(table["baseline_pa"] - np.nanmedian(table["baseline_pa"][reference]))
    drift_limit = max(_DRIFT_NOISE_SD * noise, _DRIFT_MIN_PA)
    rate = table["rate_hz"] / max(float(np.nanmedian(table["rate_hz"][reference])), 1e-9)
    # the share of spikes unlike the reference that the reference windows themselves have (noisy shapes)
    natural = float(np.nanmean(table["unlike"][reference]))
    subset = max(_SUBSET + natural, 2.0 * natural)
    others = (table["unlike"] > subset) & _beyond_chance(table["unlike"], table["n_spikes"], natural)
    # every event new: slower, larger, or many more of them, or noisier (the opened patch's noise crossing the
    # threshold)
    noisier = table["noise_pa"] > _BREAK_IN_NOISIER * noise
    new_spike = (table["shape"] < _NEW_SHAPE) | (amplitude > _BREAK_IN_LARGER) | (rate > _BREAK_IN_MORE) | noisier
    jumped = moved > max(_DRIFT_NOISE_SD * noise, _BREAK_IN_MOVED_PA)
    break_in = (table["unlike"] > _ALL) & new_spike & jumped
    tests = dict(
        break_in=break_in,
        second_cell=others & ~break_in,
        seal_loss=((amplitude < _SEAL_LOSS_RATIO) & (table["unlike"] > _ALL) & ~break_in)
        | ((rate < _SEAL_LOSS_RATE[0]) & (amplitude < _SEAL_LOSS_RATE[1])),
        drift=(moved > drift_limit) & ~others,
    )
    measured = np.isfinite(table["amplitude_pa"])
    known = dict(seal_loss=measured | (rate < _SEAL_LOSS_RATE[0]))  # a silent window is known: lost
    found = []
    for kind in SEAL_EVENTS:
        flags = np.nan_to_num(tests[kind], nan=0.0).astype(bool)
        if kind == "seal_loss":
            flags |= ~measured & (rate < _SEAL_LOSS_RATE[0])
        flags[reference] = False
        mask = known.get(kind, measured).copy()
        mask[reference] = False
        first = _lasting(flags[_REFERENCE_WINDOWS:], mask[_REFERENCE_WINDOWS:])
        if first is not None:
            flagged = first = first + _REFERENCE_WINDOWS
            while kind == "drift" and first > _REFERENCE_WINDOWS and moved[first - 1] > drift_limit / 4:
                first -= 1  # the baseline had started to move before it moved far
            found.append((kind, first, flagged))
    if any(kind == "seal_loss" for kind, *_ in found):  # a smaller spike is also "unlike": not a second cell
        found = [event for event in found if event[0] not in ("second_cell", "break_in")]
    return found


def _step(values: np.ndarray, candidates: np.ndarray) -> int:
    """The split (index into ``values``) among ``candidates`` that best fits one level before and one after."""
    total, total_square, n = np.cumsum(values), np.cumsum(values**2), values.size
    k = candidates.astype(np.int64)  # the first value after the step; 1 <= k <= n - 1
    before, after = total[k - 1], total[-1] - total[k - 1]
    cost = total_square[-1] - before**2 / k - after**2 / (n - k)
    return int(k[np.argmin(cost)])


def _cusum(values: np.ndarray, n_before: int, n_flagged: int) -> int:
    """Page's CUSUM onset: the index of the spike after the sum last stood at zero.

    The level and spread are the first ``n_before`` values' (the stretch before the search, median and MAD); the direction is the last ``n_flagged`` values' (the window flagged); the sum grows by the values'
    departure in that direction beyond ``_CUSUM_ALLOWANCE`` spreads (Page 1954; Basseville & Nikiforov 1993,
    section 2.2)."""
    before = values[:n_before]
    level = float(np.median(before))
    spread = max(1.4826 * float(np.median(np.abs(before - level))), 1e-9)
    direction = np.sign(float(np.median(values[-n_flagged:])) - level) or 1.0
    total, onset = 0.0, n_before
    for index in range(n_before, values.size):
        total = max(0.0, total + direction * (values[index] - level) / spread - _CUSUM_ALLOWANCE)
        if total == 0.0:
            onset = index + 1
    return min(onset, values.size - 1)


def _hinge(times: np.ndarray, values: np.ndarray, candidates: np.ndarray) -> float:
    """The time among ``candidates`` that best fits a level, then a straight change from that time on."""
    slope = np.clip(times[None, :] - candidates[:, None], 0.0, None)  # (n_candidates, n)
    centred_values = values - values.mean()
    centred_slope = slope - slope.mean(axis=1, keepdims=True)
    explained = (centred_slope @ centred_values) ** 2 / np.maximum((centred_slope**2).sum(axis=1), 1e-12)
    return float(candidates[np.argmax(explained)])


def _onset(kind: str, span: tuple, windows: list, times: np.ndarray, measures: dict) -> float:
    """When the change began, from the spikes of the windows ``span`` = (first, flagged) and those before.

    What changes at once (the holding current at a break-in, the share of spikes unlike the first cell's when
    a second cell joins) is a step; the baseline of a drift is a level, then a straight change: least squares
    over the window before ``first`` to the flagged one (a drift's first window is where its baseline had
    moved a quarter of the way), with a window on each side, the change placed at a spike (a step) or on a
    0.1 s grid. A seal being lost is flagged only once its spikes have shrunk far, and shrinks fastest at first
    (no straight line): a CUSUM of the log amplitude from two windows before the flagged one (its level and
    spread from every spike before those) to the flagged window's end."""
    first, flagged = span
    if kind == "seal_loss":
        start = max(first - 2, 1)
        before = np.concatenate(windows[:start])
        searched = [w for w in windows[start : first + 1] if len(w)]  # a lost seal's last windows may be silent
        if len(before) < _MEASURED or not searched:
            return np.nan
        spikes = np.concatenate([before, *searched])
        return float(times[spikes[_cusum(measures[kind][spikes], len(before), len(searched[-1]))]])
    around = [w for w in windows[max(first - 2, 0) : flagged + 2] if len(w)]
    searched = [w for w in windows[max(first - 1, 0) : flagged + 1] if len(w)]
    if not searched or sum(len(w) for w in around) < 4:
        return np.nan
    spikes = np.concatenate(around)
    t, values = times[spikes], measures[kind][spikes]
    low, high = float(times[searched[0]].min()), float(times[searched[-1]].max())
    if kind == "drift":
        return _hinge(t, values, np.arange(low, high, _HINGE_GRID_S))
    inside = np.flatnonzero((t >= low) & (t <= high))
    inside = inside[(inside >= 1) & (inside <= t.size - 1)]
    return float(t[_step(values, inside)]) if inside.size else np.nan


def _silence(times: np.ndarray, end_s: float | None) -> list:
    """A seal lost for good: no spike for many of the cell's intervals before the recording's end."""
    if end_s is None or times.size < 3:
        return []
    typical = float(np.median(np.diff(np.sort(times))))
    last = float(times.max())
    if end_s - last > max(_SILENCE_ISIS * typical, _SILENCE_MIN_S):
        return [("seal_loss", last)]
    return []


def watch_seal(waveforms, times_s, end_s: float | None = None) -> SealReport:
    """Follow one cell's recording over time and name what happened to the seal.

    Parameters
    ----------
    waveforms : np.ndarray
        (n_spikes, 160) the cell's snippets (pA, negative-going, 40 kHz, trigger at 40) with their baseline
        (as the recording holds it: not baseline-subtracted).
    times_s : np.ndarray
        (n_spikes,) each spike's time in the recording (s).
    end_s : float or None, default: None
        When the recording ended (s): a cell silent for many of its intervals before the end lost its seal.

    Returns
    -------
    SealReport
        With fewer than 4 windows of 12 spikes (48 spikes) nothing is called: the whole recording is the stable stretch.
    """
    waveforms = np.asarray(waveforms, dtype=np.float64)
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    order = np.argsort(times, kind="stable")
    stable = np.ones(times.size, bool)
    if times.size == 0:
        return SealReport(stable=stable)
    report = SealReport(stable_start_s=float(times[order[0]]), stable_end_s=float(times[order[-1]]), stable=stable)
    n_windows = min(_WINDOWS, times.size // _MIN_SPIKES_PER_WINDOW)
    if n_windows < _MIN_WINDOWS:
        return report
    end = max(float(times.max()), float(end_s) if end_s is not None else 0.0)
    boundaries = np.linspace(float(times.min()), np.nextafter(end, np.inf), n_windows + 1)
    windows = [order[(times[order] >= a) & (times[order] < b)] for a, b in zip(boundaries[:-1], boundaries[1:])]
    if min(len(w) for w in windows[:_REFERENCE_WINDOWS]) < _MEASURED:
        return report  # the first stretch is too sparse to stand as the reference
    baseline, amplitude, noise, shapes = _measures(waveforms)
    edges = list(zip(boundaries[:-1], boundaries[1:]))
    report.windows, unlike = _window_table(times, baseline, amplitude, noise, shapes, windows, edges)
    measures = dict(break_in=baseline, second_cell=unlike.astype(np.float64), seal_loss=np.log(amplitude))
    measures["drift"] = baseline
    for kind, first, flagged in _events(report.windows):
        onset = _onset(kind, (first, flagged), windows, times, measures)
        report.events.append((kind, onset if np.isfinite(onset) else float(report.windows["start_s"][first])))
    report.events.sort(key=lambda event: event[1])
    if not any(kind == "seal_loss" for kind, _ in report.events):
        report.events = sorted(report.events + _silence(times, end_s), key=lambda event: event[1])
    if report.events:
        end = report.events[0][1]
        report.stable = times < end
        report.stable_end_s = float(times[report.stable].max()) if report.stable.any() else report.stable_start_s
    return report


def watch_units(waveforms, spike_unit_index, unit_ids, times_s, end_s: float | None = None):
    """:func:`watch_seal` of every unit: which spikes are in their unit's stable stretch, and the table columns.

    Parameters
    ----------
    waveforms : np.ndarray
        (n_spikes, 160) as for :func:`watch_seal`.
    spike_unit_index : np.ndarray
        (n_spikes,) index into ``unit_ids`` of each spike's unit.
    unit_ids : sequence
        The units.
    times_s : np.ndarray
        (n_spikes,) spike times (s).
    end_s : float or None, default: None
        When the recording ended (s).

    Returns
    -------
    stable : np.ndarray
        (n_spikes,) bool: the spike is in its unit's stable stretch.
    table : pandas.DataFrame
        Indexed by ``unit_id``: ``sero_seal`` (:attr:`SealReport.summary`), ``sero_stable_start_s``,
        ``sero_stable_end_s``.
    """
    index = np.asarray(spike_unit_index, dtype=np.int64)
    times = np.asarray(times_s, dtype=np.float64)
    stable = np.ones(index.size, bool)
    rows = []
    for position in range(len(unit_ids)):
        mine = np.flatnonzero(index == position)
        report = watch_seal(np.asarray(waveforms)[mine], times[mine], end_s=end_s)
        stable[mine] = report.stable
        rows.append((report.summary, report.stable_start_s, report.stable_end_s))
    columns = ["sero_seal", "sero_stable_start_s", "sero_stable_end_s"]
    return stable, pd.DataFrame(rows, columns=columns, index=pd.Index(list(unit_ids), name="unit_id"))


def separate_two_cells(waveforms, times_s, second_cell_start_s: float) -> np.ndarray:
    """Which spikes belong to the cell that joined at ``second_cell_start_s`` (by shape and amplitude).

    Spikes before the start are the first cell's; after it, each spike goes to the nearer of the two cells'
    median (amplitude, shape), the second cell's taken from the spikes unlike the first cell's reference.

    Parameters
    ----------
    waveforms : np.ndarray
        (n_spikes, 160) as for :func:`watch_seal`.
    times_s : np.ndarray
        (n_spikes,) spike times (s).
    second_cell_start_s : float
        The ``second_cell`` event's start.

    Returns
    -------
    np.ndarray
        (n_spikes,) bool: True for the second cell's spikes.
    """
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    _, amplitude, _, shapes = _measures(np.asarray(waveforms, dtype=np.float64))
    before = times < second_cell_start_s
    first_shape = np.median(shapes[before], axis=0)
    first_amplitude = float(np.median(amplitude[before]))
    features = np.column_stack([np.log(amplitude / first_amplitude), _correlation(shapes, first_shape)])
    unlike = (features[:, 1] < _SHAPE_CHANGED) | (np.abs(features[:, 0]) > _AMPLITUDE_CHANGED)
    after = ~before
    if not (after & unlike).any():
        return np.zeros(times.size, bool)
    centres = np.array([[0.0, 1.0], np.median(features[after & unlike], axis=0)])
    for _ in range(10):  # two-means from those starting centres
        second = after & (np.linalg.norm(features - centres[1], axis=1) < np.linalg.norm(features - centres[0], axis=1))
        if second.any() and (after & ~second).any():
            centres = np.array([np.median(features[~second], axis=0), np.median(features[second], axis=0)])
    return second
