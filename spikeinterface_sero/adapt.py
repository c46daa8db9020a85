"""Any SortingAnalyzer to the model's snippets: extremum channel, band-limited resampling, re-alignment.

The CNN ensemble of Corradetti et al. (2024) takes 160 samples at 40 kHz, cut 40 samples (1 ms) before the
trigger (the −50 pA threshold crossing of a loose-seal cell-attached action current) and 120 samples (3 ms)
after.  A sorted extracellular recording gives something else: a ``waveforms`` extension cut around each
spike's *peak* (SpikeInterface's default: 1 ms before, 2 ms after), on many channels, at 20–50 kHz, in µV.
:func:`adapt_analyzer_snippets` turns such waveforms into the model's snippets, per spike:

1. **Extremum channel.**  Each unit is read on its main channel, SpikeInterface's own choice
   (``analyzer.get_main_channels()``, peak sign "both", from 0.105; the template extremum channel before).
   Sparse analyzers are handled (the main channel's column in the unit's sparse waveforms).
2. **Band-limited resampling of the snippet, not of the recording.**  ``scipy.signal.resample_poly`` with
   the exact rational ratio 40 000 / fs (30 kHz → up 4, down 3).  Its anti-imaging / anti-aliasing filter is
   SciPy's default, the one ``spikeinterface.preprocessing.resample`` also uses: a Kaiser-windowed (β = 5)
   FIR low-pass of ``2 · 10 · max(up, down) + 1`` taps at the up-sampled rate with its cut-off at the lower
   of the two Nyquist frequencies (15 kHz for 30 → 40 kHz).  Near the ends of a snippet the filter runs over
   the zero padding, so the ``edge_guard`` output samples at each end (the filter's half support, 14 samples
   = 0.35 ms for 30 → 40 kHz) are not used.  Each snippet starts on an input sample that is a multiple of
   ``down`` (at most ``down − 1`` samples are skipped), so its samples lie on the grid of
   ``spikeinterface.preprocessing.resample(recording, 40000)``: inside the guards, the resampled snippet
   equals the whole recording resampled and cut there.
3. **Re-alignment on the trigger.**  The trigger is the first sample of the spike's descent at or beyond a
   threshold measured from the spike's own pre-peak baseline (the median of the 1 ms that ends 0.5 ms before
   the spike's peak); the spike's peak is its extremum within ±0.25 ms of the unit's template peak.  The
   threshold is

   * the paper's −50 pA for current recorded in pA (or nA, A: scaled) when the unit's median spike depth
     exceeds 50 pA;
   * otherwise ``threshold_fraction`` (default 0.25) of the unit's median spike depth.  A fixed −50 pA is
     meaningless in µV.  0.25 puts the trigger where −50 pA does for a 200 pA spike (50/200); over the
     project simulator's action currents (three cell types, 80–600 pA) it lands on average 2.2 samples
     (0.055 ms) from the −50 pA crossing, 95th percentile 6.3 samples: the lowest of the fractions 0.1–0.4.

   The snippet is then cut 40 samples before the trigger and 120 after.  A spike that does not reach the
   threshold (noise, a small unit) is cut at the unit's median peak-to-trigger lead.
4. **Polarity.**  A unit is negative-going when its template's largest excursion from baseline is downward.
   Negative extracellular voltage spikes and negative cell-attached currents have the same shape up to a
   positive scale, and the network never sees the scale (its first layer z-scores each snippet).
   Positive-going units are flipped only when ``flip_positive=True``; otherwise they are aligned on their
   upward crossing, classified as they are, and flagged ``positive_polarity_unflipped``.
   ``polarity="positive"`` (the extension's option for inverted recordings) flips every unit first.

The **domain** of a unit says how far its input is from the training data (cell-attached pA at 40 kHz):
``in_domain`` or ``+``-joined parts in this order: ``extracellular_voltage`` (a voltage unit, or µV by
SpikeInterface's convention when the recording has no ``physical_unit``), ``unknown_units`` (unscaled
traces), ``resampled`` (not 40 kHz), ``nonpaper_threshold`` (current data triggered at a relative or custom
threshold instead of −50 pA), ``flipped``, ``positive_polarity_unflipped``.

When the waveforms are too short for 1 ms before and 3 ms after the trigger (plus the resampling guard),
:class:`~spikeinterface_sero.errors.SnippetError` names the ``analyzer.compute("waveforms", ms_before=X,
ms_after=Y)`` to run; ``reextract=True`` runs it (when the analyzer has its recording).  Everything done is
returned in a JSON-serialisable ``info`` dict.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np

from .constants import (
    DEFAULT_THRESHOLD_PA,
    MIN_SAMPLING_FREQUENCY,
    NAFTER,
    NBEFORE,
    SAMPLING_FREQUENCY,
    SNIPPET_LENGTH,
)
from .errors import SamplingRateError, SeroError, SnippetError
from .snippets import Snippets, check_analyzer_waveforms
from .units import current_to_pa, is_current_unit, is_voltage_unit
from .upstream import main_channel_indices

__all__ = [
    "adapt_analyzer_snippets",
    "is_paper_format",
    "signal_kind",
    "resampling_factors",
    "resample_snippets",
    "find_triggers",
    "out_of_domain_message",
    "OutOfDomainWarning",
    "DEFAULT_THRESHOLD_FRACTION",
    "IN_DOMAIN",
]

IN_DOMAIN = "in_domain"
DEFAULT_THRESHOLD_FRACTION = 0.25  # of the unit's median spike depth; see the module docstring
_DOMAIN_ORDER = (
    "extracellular_voltage",
    "unknown_units",
    "resampled",
    "nonpaper_threshold",
    "flipped",
    "positive_polarity_unflipped",
)
_PEAK_SEARCH = 10  # ± samples at 40 kHz (0.25 ms) around the unit's template peak
_BASELINE_GAP = 20  # the baseline ends 0.5 ms before the peak ...
_BASELINE_LEN = 40  # ... and lasts 1 ms
_MIN_FIT = 0.95  # fraction of a unit's spikes whose 160-sample window must fit in the usable region
_MARGIN_MS = 0.1  # added to the measured need before rounding the suggestion up to 0.5 ms
_MAX_ALIGN_LOSS = 5  # align snippets on the resampled grid when that skips at most this many input samples


class OutOfDomainWarning(UserWarning):
    """The input is not what the model was trained on (loose-seal cell-attached pA at 40 kHz)."""


# ----------------------------------------------------------------------------------------------------------
# what the data are


def _physical_units(analyzer) -> list | None:
    try:
        if "physical_unit" not in analyzer.get_recording_property_keys():
            return None
        units = analyzer.get_recording_property("physical_unit")
    except Exception:  # recordingless analyzers of other versions
        return None
    if units is None:
        return None
    units = [None if u is None else str(u) for u in np.asarray(units, dtype=object).ravel()]
    return units if any(u for u in units) else None


def signal_kind(analyzer, channel_index: int | None = None) -> tuple[str, str, float]:
    """What the analyzer's waveforms hold on a channel: ``(kind, unit, to_pA)``.

    kind is ``"current"`` (pA, nA, ...: ``to_pA`` scales to pA), ``"voltage"`` (a voltage ``physical_unit``,
    or none while the analyzer returns scaled traces: SpikeInterface's µV) or ``"unknown"`` (raw,
    unscaled traces without a unit)."""
    units = _physical_units(analyzer)
    unit = None
    if units is not None:
        unit = (
            units[channel_index]
            if channel_index is not None and channel_index < len(units)
            else next((u for u in units if u), None)
        )
    if unit:
        if is_current_unit(unit):
            return "current", unit, current_to_pa(unit)
        if is_voltage_unit(unit):
            return "voltage", unit, float("nan")
        return "unknown", unit, float("nan")
    scaled = getattr(analyzer, "return_in_uV", getattr(analyzer, "return_scaled", True))
    return ("voltage", "uV", float("nan")) if scaled else ("unknown", "raw", float("nan"))


def is_paper_format(analyzer) -> bool:
    """True when the analyzer's waveforms can go to the model as they are: 160 samples at 40 kHz with the
    sample at index 40 (:func:`~spikeinterface_sero.snippets.check_analyzer_waveforms`) and not known to be
    voltage.  Such analyzers (e.g. from :func:`~spikeinterface_sero.abf_to_analyzer`) are trusted to be cut
    at the paper's trigger; everything else goes through :func:`adapt_analyzer_snippets`."""
    try:
        check_analyzer_waveforms(analyzer)
    except SnippetError:
        return False
    return signal_kind(analyzer)[0] != "voltage"


# ----------------------------------------------------------------------------------------------------------
# resampling


def resampling_factors(sampling_frequency: float, max_denominator: int = 10_000) -> tuple[int, int]:
    """``(up, down)``: the rational ratio 40 000 / fs (as ``spikeinterface.preprocessing.resample`` picks it)."""
    ratio = (Fraction(SAMPLING_FREQUENCY) / Fraction(float(sampling_frequency))).limit_denominator(max_denominator)
    return int(ratio.numerator), int(ratio.denominator)


def _edge_guard(up: int, down: int) -> int:
    """Output samples at each end of a resampled snippet that the filter computes from the zero padding."""
    if up == down == 1:
        return 0
    return int(math.ceil(10 * max(up, down) / down))


def resample_snippets(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """Band-limited resampling of (n, L) snippets along time (``scipy.signal.resample_poly``, SciPy's default
    Kaiser-windowed FIR, the filter of ``spikeinterface.preprocessing.resample``); float64 out."""
    x = np.asarray(x, dtype=np.float64)
    if up == down == 1:
        return x.copy()
    from scipy.signal import resample_poly

    return resample_poly(x, up, down, axis=1)


# ----------------------------------------------------------------------------------------------------------
# triggers


def find_triggers(
    y: np.ndarray,
    centre,
    *,
    lo: int = 0,
    hi: int | None = None,
    sign: float = -1.0,
    level: float | None = None,
    fraction: float = DEFAULT_THRESHOLD_FRACTION,
):
    """Per-spike trigger on 40 kHz snippets ``y`` (n, L), the rule of this module (see the docstring).

    centre : (n,) expected peak index of each row; the peak is the extremum (in direction ``sign``) within
        ±0.25 ms of it.  lo, hi : the usable region (outside it the data are not trusted).
    level : threshold magnitude from the baseline in the data's units; ``None`` = ``fraction`` of the median
        depth.  Returns a dict: ``trigger`` (n,) int (−1 where there is no crossing), ``peak``, ``baseline``,
        ``depth`` (n,), and ``level`` (the magnitude used).
    """
    y = np.asarray(y, dtype=np.float64)
    n, length = y.shape
    hi = length if hi is None else int(hi)
    idx = np.arange(length)
    z = sign * y  # spikes point up in z
    centre = np.clip(np.rint(np.asarray(centre, dtype=np.float64)).astype(np.int64), lo, hi - 1)
    win = (idx[None, :] >= np.maximum(centre - _PEAK_SEARCH, lo)[:, None]) & (
        idx[None, :] <= np.minimum(centre + _PEAK_SEARCH, hi - 1)[:, None]
    )
    peak = np.where(win, z, -np.inf).argmax(axis=1) if n else np.zeros(0, np.int64)
    b_end = np.maximum(peak - _BASELINE_GAP, lo + 4)
    b_start = np.maximum(b_end - _BASELINE_LEN, lo)
    bmask = (idx[None, :] >= b_start[:, None]) & (idx[None, :] < b_end[:, None])
    zb = np.where(bmask, z, np.nan)
    baseline = np.nanmedian(zb, axis=1) if n else np.zeros(0)
    zc = z - baseline[:, None]
    depth = zc[np.arange(n), peak]
    if level is None:
        level = float(fraction) * float(np.median(depth)) if n else float("nan")
    level = float(level)
    above = zc >= level
    considered = (idx[None, :] >= lo) & (idx[None, :] <= peak[:, None])
    below_before = np.where(considered & ~above, idx[None, :], -1).max(axis=1) if n else np.zeros(0, np.int64)
    trigger = below_before + 1
    ok = (depth >= level) & (below_before >= 0) & (trigger <= peak)
    trigger = np.where(ok, trigger, -1)
    return dict(
        trigger=trigger.astype(np.int64), peak=peak.astype(np.int64), baseline=sign * baseline, depth=depth, level=level
    )


# ----------------------------------------------------------------------------------------------------------
# the adapter


def _main_channels(analyzer) -> tuple[dict, str]:
    """unit id -> channel index: SpikeInterface's main channel of each unit."""
    main = main_channel_indices(analyzer)
    return {u: int(main[i]) for i, u in enumerate(analyzer.unit_ids)}, "analyzer.get_main_channels"


def _round_up_half(ms: float) -> float:
    return math.ceil(ms * 2.0 - 1e-9) / 2.0


def _fmt_ms(ms: float) -> str:
    return f"{ms:.1f}" if abs(ms * 2 - round(ms * 2)) < 1e-9 else f"{ms:g}"


def _domain(parts) -> str:
    parts = [p for p in _DOMAIN_ORDER if p in set(parts)]
    return "+".join(parts) if parts else IN_DOMAIN


def adapt_analyzer_snippets(
    analyzer,
    *,
    polarity: str = "negative",
    flip_positive: bool = False,
    threshold: float | None = None,
    threshold_fraction: float = DEFAULT_THRESHOLD_FRACTION,
    reextract: bool = False,
    allow_low_rate: bool = False,
):
    """The model's snippets from any analyzer with a ``waveforms`` extension.

    Returns ``(snippets, domain, info)``: :class:`~spikeinterface_sero.snippets.Snippets` with one 160-sample
    40 kHz snippet per spike of ``random_spikes`` (same order, in the analyzer's units: pA, µV, ...), the
    overall domain label (``in_domain`` or the ``+``-joined parts of all units), and a JSON-serialisable dict
    of everything done (rates, resampling ratio, per-unit extremum channel, polarity, flip, threshold,
    trigger offset and domain).

    polarity : "negative" or "positive"; "positive" flips every unit first (inverted recordings).
    flip_positive : flip units whose spikes go up (after the global flip) so that they go down.
    threshold : the trigger level relative to the baseline, signed like the paper's −50 (pA for current
        data, the analyzer's unit otherwise; its magnitude is applied in each unit's direction).  ``None``:
        −50 pA for current data, ``threshold_fraction`` of each unit's median spike depth otherwise.
    reextract : when the window is too short and the analyzer has its recording, recompute ``waveforms``
        with the window needed (this deletes extensions that depend on ``waveforms``: they are listed in
        ``info["reextracted"]`` and a warning).
    allow_low_rate : accept sampling rates below 20 kHz (the 40 kHz shape cannot be recovered there).
    """
    if polarity not in ("negative", "positive"):
        raise SeroError(f"polarity must be 'negative' or 'positive', not {polarity!r}.")
    if threshold is not None and (not np.isfinite(threshold) or threshold == 0):
        raise SeroError(f"threshold must be a non-zero number (e.g. -50 for pA data) or None, not {threshold!r}.")
    if not (0.0 < float(threshold_fraction) < 1.0):
        raise SeroError(f"threshold_fraction must be between 0 and 1 (e.g. 0.25), not {threshold_fraction!r}.")
    if not analyzer.has_extension("waveforms"):
        raise SnippetError(
            "The analyzer has no 'waveforms' extension: compute it first, e.g. "
            "analyzer.compute(['random_spikes', 'waveforms'], extension_params={'waveforms': "
            "dict(ms_before=2.0, ms_after=4.0)})."
        )
    try:
        return _adapt(
            analyzer,
            polarity,
            bool(flip_positive),
            threshold,
            float(threshold_fraction),
            allow_low_rate,
            reextracted=None,
        )
    except _WindowTooShort as short:
        if not reextract or not (analyzer.has_recording() or analyzer.has_temporary_recording()):
            raise SnippetError(short.message(analyzer, reextract)) from None
        ext = analyzer.get_extension("waveforms")
        before = dict(ms_before=float(ext.params.get("ms_before")), ms_after=float(ext.params.get("ms_after")))
        loaded = set(analyzer.get_loaded_extension_names())
        kwargs = dict(ms_before=short.ms_before, ms_after=short.ms_after)
        if ext.params.get("dtype") is not None:
            kwargs["dtype"] = ext.params["dtype"]
        analyzer.compute("waveforms", **kwargs)
        deleted = sorted(loaded - set(analyzer.get_loaded_extension_names()))
        if deleted:
            warnings.warn(
                f"spikeinterface-sero: re-extracted 'waveforms' with ms_before={short.ms_before:g}, "
                f"ms_after={short.ms_after:g} (was {before['ms_before']:g}, {before['ms_after']:g}); "
                f"SpikeInterface deleted the extensions that depend on them: {', '.join(deleted)}. "
                "Recompute those you need.",
                stacklevel=2,
            )
        reextracted = dict(
            previous=before, ms_before=short.ms_before, ms_after=short.ms_after, deleted_extensions=deleted
        )
        try:
            return _adapt(
                analyzer,
                polarity,
                bool(flip_positive),
                threshold,
                float(threshold_fraction),
                allow_low_rate,
                reextracted=reextracted,
            )
        except _WindowTooShort as again:
            raise SnippetError(again.message(analyzer, False)) from None


class _WindowTooShort(Exception):
    def __init__(self, fs, nbefore, nafter, ms_before, ms_after, need_before, need_after, units, lead_ms, guard_ms):
        super().__init__("window too short")
        self.fs, self.nbefore, self.nafter = fs, nbefore, nafter
        self.cur_before, self.cur_after = ms_before, ms_after
        self.need_before, self.need_after = need_before, need_after
        self.ms_before, self.ms_after = _round_up_half(need_before), _round_up_half(need_after)
        self.units, self.lead_ms, self.guard_ms = units, lead_ms, guard_ms

    def message(self, analyzer, tried_reextract: bool) -> str:
        units = ", ".join(repr(str(u)) for u in self.units[:6]) + (" ..." if len(self.units) > 6 else "")
        cur_b = _fmt_ms(self.cur_before) if self.cur_before is not None else "?"
        cur_a = _fmt_ms(self.cur_after) if self.cur_after is not None else "?"
        call = f'analyzer.compute("waveforms", ms_before={_fmt_ms(self.ms_before)}, ms_after={_fmt_ms(self.ms_after)})'
        msg = (
            f"The analyzer's waveforms (ms_before={cur_b}, ms_after={cur_a} at {self.fs:g} Hz) are too short "
            f"for the model's window, 1 ms before the trigger and 3 ms after it at 40 kHz: the trigger "
            f"(threshold crossing) comes {self.lead_ms:.2f} ms before the spike time, and "
            f"{self.guard_ms:.2f} ms at each end are lost to the resampling filter, so the window needs "
            f"ms_before >= {self.need_before:.2f} and ms_after >= {self.need_after:.2f} (units {units}). "
            f"Recompute the waveforms with {call} (this deletes the extensions that depend on 'waveforms'), "
            f"then compute 'serotonergic' again."
        )
        if analyzer.has_recording() or analyzer.has_temporary_recording():
            msg += (
                " The analyzer has its recording, so this can be done in place: "
                "spikeinterface_sero.serotonergic_label_units(analyzer, reextract=True) recomputes the waveforms for you."
            )
            if tried_reextract:
                msg += " (A re-extraction was tried and was still too short.)"
        else:
            msg += (
                " The analyzer has no recording attached: load it with its recording, or "
                "analyzer.set_temporary_recording(recording), before recomputing."
            )
        return msg


def _adapt(analyzer, polarity, flip_positive, threshold, threshold_fraction, allow_low_rate, reextracted):
    fs = float(analyzer.sampling_frequency)
    if fs < MIN_SAMPLING_FREQUENCY and not allow_low_rate:
        raise SamplingRateError(
            f"The analyzer runs at {fs:g} Hz; below {MIN_SAMPLING_FREQUENCY:g} Hz the 40 kHz action-current "
            "shape (4 ms, 160 samples) cannot be recovered by resampling. Pass allow_low_rate=True to "
            "adapt_analyzer_snippets to try anyway."
        )
    ext = analyzer.get_extension("waveforms")
    nbefore, nafter = int(ext.nbefore), int(ext.nafter)
    length = nbefore + nafter
    wfs = ext.data["waveforms"]
    spikes = analyzer.sorting.to_spike_vector()[analyzer.get_extension("random_spikes").get_data()]
    n = int(spikes.size)
    unit_ids = list(analyzer.unit_ids)
    sparsity = analyzer.sparsity
    all_chans = np.arange(analyzer.get_num_channels())
    rows_of = {ui: np.flatnonzero(spikes["unit_index"] == ui) for ui in range(len(unit_ids))}

    def chans_of(u):
        return sparsity.unit_id_to_channel_indices[u] if sparsity is not None else all_chans

    def wfs_by_unit(u):
        chans, rows = chans_of(u), rows_of[unit_ids.index(u)]
        w = np.asarray(wfs[rows] if rows.size else np.zeros((0, length, len(chans))), dtype=np.float64)
        return w[:, :, : len(chans)], chans

    main, main_source = _main_channels(analyzer)
    up, down = resampling_factors(fs)
    achieved = fs * up / down
    guard = _edge_guard(up, down)
    align = (up, down) != (1, 1) and down - 1 <= _MAX_ALIGN_LOSS
    usable_in = length - (down - 1 if align else 0)
    usable_in -= usable_in % down if align else 0
    out_len = -(-usable_in * up // down)
    lo, hi = guard, out_len - guard
    global_flip = polarity == "positive"
    seg_samples = [analyzer.get_num_samples(s) for s in range(analyzer.get_num_segments())]

    out = np.zeros((n, SNIPPET_LENGTH), np.float32)
    trig40 = np.zeros(n, np.int64)
    units_info, unit_domains = {}, {}
    short_units, leads, lags, at_trigger = [], [], [], []
    channel_ids = [str(c) for c in analyzer.channel_ids]
    for ui, u in enumerate(unit_ids):
        rows, chans, ch = rows_of[ui], chans_of(u), main[u]
        pos = np.flatnonzero(np.asarray(chans) == ch)
        if pos.size == 0:  # the main channel is outside the unit's sparsity: take its own extremum
            w = wfs_by_unit(u)[0]
            t = w.mean(axis=0) if w.shape[0] else np.zeros((length, len(chans)))
            pos = [int(np.argmax(np.abs(t - np.median(t, axis=0)).max(axis=0)))]
            ch = int(chans[pos[0]])
        x = np.asarray(wfs[rows, :, int(pos[0])], dtype=np.float64).reshape(rows.size, length)
        x = -x if global_flip else x
        kind, unit, to_pa = signal_kind(analyzer, ch)
        parts = {"voltage": ["extracellular_voltage"], "unknown": ["unknown_units"]}.get(kind, [])
        if (up, down) != (1, 1):
            parts.append("resampled")
        if global_flip:
            parts.append("flipped")
        info_u = dict(
            extremum_channel=channel_ids[ch],
            extremum_channel_index=int(ch),
            n_spikes=int(rows.size),
            signal=kind,
            unit=unit,
        )
        if rows.size == 0:
            info_u.update(polarity=None, flipped=bool(global_flip))
            units_info[str(u)] = info_u
            unit_domains[str(u)] = info_u["domain"] = _domain(parts)
            continue
        # polarity and template peak, at the source rate
        tmpl = x.mean(axis=0)
        base = float(np.median(tmpl))
        positive = (tmpl.max() - base) > (base - tmpl.min())
        peak_src = int(np.argmax(tmpl) if positive else np.argmin(tmpl))
        flipped = bool(global_flip)
        if positive and flip_positive:
            x = -x
            positive, flipped = False, not flipped
            parts = [p for p in parts if p != "flipped"] + (["flipped"] if flipped else [])
        if positive:
            parts.append("positive_polarity_unflipped")
        sign = 1.0 if positive else -1.0
        # resample on the 40 kHz grid of the whole recording
        s0 = spikes["sample_index"][rows].astype(np.int64) - nbefore
        r = ((-s0) % down) if align else np.zeros(rows.size, np.int64)
        xa = x[np.arange(rows.size)[:, None], r[:, None] + np.arange(usable_in)[None, :]]
        y = resample_snippets(xa, up, down)
        spike_pos = (nbefore - r) * up / down  # where the spike time falls in each resampled row
        centre = (peak_src - r) * up / down
        # the trigger level
        if threshold is not None:
            level = abs(float(threshold)) * (1.0 / to_pa if kind == "current" else 1.0)
            rule = "absolute"
        elif kind == "current":
            level, rule = abs(DEFAULT_THRESHOLD_PA) / to_pa, "paper_-50pA"
        else:
            level, rule = None, "relative"
        tr = find_triggers(y, centre, lo=lo, hi=hi, sign=sign, level=level, fraction=threshold_fraction)
        med_depth = float(np.median(tr["depth"]))
        if rule == "paper_-50pA" and not med_depth > tr["level"]:
            tr = find_triggers(y, centre, lo=lo, hi=hi, sign=sign, level=None, fraction=threshold_fraction)
            rule = "relative (median depth below 50 pA)"
        if kind == "current" and rule != "paper_-50pA":
            parts.append("nonpaper_threshold")
        trig = tr["trigger"]
        crossed = trig >= 0
        lead = int(np.rint(np.median(tr["peak"][crossed] - trig[crossed]))) if crossed.any() else 0
        trig = np.where(crossed, trig, tr["peak"] - lead)
        offset_ms = (trig - spike_pos) / SAMPLING_FREQUENCY * 1000.0
        fits = (trig - NBEFORE >= lo) & (trig + NAFTER <= hi)
        leads.append(float(np.percentile(-offset_ms, 95)))
        at_trigger.append(kind == "current" and (up, down) == (1, 1) and abs(float(np.median(offset_ms))) <= 0.025)
        lags.append(float(np.percentile(offset_ms, 95)))
        if hi - lo < SNIPPET_LENGTH or fits.mean() < _MIN_FIT:
            short_units.append(u)
            continue
        trig_c = np.clip(trig, lo + NBEFORE, hi - NAFTER)
        out[rows] = y[np.arange(rows.size)[:, None], (trig_c - NBEFORE)[:, None] + np.arange(SNIPPET_LENGTH)[None, :]]
        start40 = (s0 + r) * up // down if align else np.rint(s0 * up / down).astype(np.int64)
        trig40[rows] = start40 + trig_c
        seg = spikes["segment_index"][rows]
        edge = (s0 < 0) | (s0 + length > np.asarray(seg_samples)[seg])
        level_out = tr["level"] * (to_pa if kind == "current" else 1.0)
        info_u.update(
            polarity="positive" if positive else "negative",
            flipped=flipped,
            threshold_rule=rule,
            threshold_level=float(sign * level_out),
            threshold_unit="pA" if kind == "current" else unit,
            median_depth=float(med_depth * (to_pa if kind == "current" else 1.0)),
            trigger_offset_ms=float(np.median(offset_ms)),
            n_no_crossing=int((~crossed).sum()),
            n_clamped=int((trig_c != trig).sum()),
            n_zero_padded=int(edge.sum()),
        )
        units_info[str(u)] = info_u
        unit_domains[str(u)] = info_u["domain"] = _domain(parts)

    if short_units:
        guard_ms = guard / SAMPLING_FREQUENCY * 1000.0
        loss_ms = ((down - 1) / fs * 1000.0) if align else 0.0
        lead_ms, lag_ms = max(leads), max(lags)
        need_before = NBEFORE / SAMPLING_FREQUENCY * 1000.0 + lead_ms + guard_ms + loss_ms + _MARGIN_MS
        need_after = NAFTER / SAMPLING_FREQUENCY * 1000.0 + lag_ms + guard_ms + loss_ms + _MARGIN_MS
        short = _WindowTooShort(
            fs,
            nbefore,
            nafter,
            ext.params.get("ms_before"),
            ext.params.get("ms_after"),
            need_before,
            need_after,
            short_units,
            lead_ms,
            guard_ms,
        )
        if at_trigger and all(at_trigger):
            # 40 kHz current whose spike times already are the triggers (e.g. made by this package with another
            # window): the paper's own window is the answer, and it goes to the model as it is
            short.ms_before, short.ms_after = 1.0, 3.0
            short.need_before, short.need_after = 1.0, 3.0
        raise short

    overall = _domain([p for d in unit_domains.values() if d != IN_DOMAIN for p in d.split("+")])
    units_arr = np.array([str(unit_ids[int(i)]) for i in spikes["unit_index"]], dtype=str)
    cell_prop = analyzer.sorting.get_property("cell_id")
    names = {str(u): (str(cell_prop[i]) if cell_prop is not None else str(u)) for i, u in enumerate(unit_ids)}
    sv = analyzer.sorting.to_spike_vector()
    info = dict(
        applied=True,
        domain=overall,
        source_sampling_frequency=fs,
        target_sampling_frequency=SAMPLING_FREQUENCY,
        resampling=None
        if (up, down) == (1, 1)
        else dict(
            method="scipy.signal.resample_poly",
            up=up,
            down=down,
            achieved_rate=float(achieved),
            filter=f"Kaiser-windowed FIR (beta 5), {2 * 10 * max(up, down) + 1} taps at the up-sampled rate, "
            "cut-off at the lower Nyquist frequency (SciPy's default; as spikeinterface.preprocessing.resample)",
            edge_guard_samples=int(guard),
            grid_aligned=bool(align),
        ),
        source_window=dict(
            ms_before=ext.params.get("ms_before"), ms_after=ext.params.get("ms_after"), nbefore=nbefore, nafter=nafter
        ),
        extremum_channel_source=main_source,
        polarity=polarity,
        flip_positive=bool(flip_positive),
        threshold=None if threshold is None else float(threshold),
        threshold_fraction=float(threshold_fraction),
        trigger_rule=(
            "first sample at or beyond the threshold on the descent into the spike's peak, from the "
            "median of the 1 ms ending 0.5 ms before the peak; cut 40 samples before, 120 after at 40 kHz"
        ),
        reextracted=reextracted,
        units=units_info,
        unit_domains=unit_domains,
    )
    snippets = Snippets(
        waveforms=out,
        trigger_samples=trig40,
        segment_index=spikes["segment_index"].astype(np.int64),
        unit_ids=units_arr,
        cell_ids=np.array([names[u] for u in units_arr], dtype=str),
        sampling_frequency=SAMPLING_FREQUENCY,
        detection=dict(adapted=True, domain=overall),
        segment_durations_s=[s / fs for s in seg_samples],
        all_trigger_samples=np.rint(sv["sample_index"] * (SAMPLING_FREQUENCY / fs)).astype(np.int64),
        all_segment_index=sv["segment_index"].astype(np.int64),
        all_unit_ids=np.array([str(unit_ids[int(i)]) for i in sv["unit_index"]], dtype=str),
    )
    return snippets, overall, info


def out_of_domain_message(info: dict) -> str:
    """The one-line warning for an adapted analyzer whose domain is not ``in_domain``."""
    domains = info.get("unit_domains", {})
    counts: dict = {}
    for d in domains.values():
        counts[d] = counts.get(d, 0) + 1
    what = []
    parts = {p for d in domains.values() for p in d.split("+")}
    if "extracellular_voltage" in parts:
        what.append("extracellular voltage spikes, similar in shape to cell-attached currents but not the same signal")
    if "unknown_units" in parts:
        what.append("traces without a physical unit")
    if "resampled" in parts:
        what.append(f"resampled from {info.get('source_sampling_frequency', float('nan')):g} Hz to 40 kHz")
    if "nonpaper_threshold" in parts:
        what.append("triggered at a threshold other than the paper's -50 pA")
    if "flipped" in parts:
        what.append("sign-flipped")
    if "positive_polarity_unflipped" in parts:
        what.append("positive-going units classified unflipped (pass flip_positive=True to flip them)")
    summary = ", ".join(f"{d}: {k} unit(s)" for d, k in counts.items())
    return (
        "spikeinterface-sero: input out of the training domain (loose-seal cell-attached action currents in pA "
        f"at 40 kHz): {'; '.join(what)}. Labels rest on waveform shape alone; treat them as a hypothesis. "
        f"Per unit: {summary} (column and property 'sero_domain'; details in the extension's "
        "ext.get_data('provenance')['adaptation'])."
    )
