"""Any SortingAnalyzer to the model's snippets: extremum channel, band-limited resampling, re-alignment.

The full explanation is in ``docs/any-analyzer.md`` (section "Module notes: spikeinterface_sero.adapt").
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np

from .analyzers import check_analyzer_waveforms
from .constants import (
    DEFAULT_THRESHOLD_PA,
    MIN_SAMPLING_FREQUENCY,
    NAFTER,
    NBEFORE,
    SAMPLING_FREQUENCY,
    SNIPPET_LENGTH,
    is_paper_rate,
)
from .decision import CONVERTED_FROM
from .errors import SamplingRateError, SeroError, SnippetError
from .snippet_formats import Snippets
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
    "FILTERED",
    "recording_domains",
    "add_domain_parts",
]

#: ``sero_domain`` of a unit whose snippets are in the paper's format.
IN_DOMAIN = "in_domain"
#: ``sero_domain`` part of a band-pass/high-pass filtered recording (SpikeInterface's ``is_filtered``)
FILTERED = "filtered"
#: The default trigger level of :func:`find_triggers`: this fraction of the unit's median spike depth.
DEFAULT_THRESHOLD_FRACTION = 0.25
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


def recording_domains(analyzer, unit_ids) -> list[list[str]]:
    """How each unit's main channel was recorded or read, unlike the paper's 40 kHz pA current, before any
    adaptation: ``resampled`` (read at another rate and resampled to 40 kHz: ``io.read_abf`` records the
    ``original_sampling_frequency`` property), ``converted_from_<unit>`` (a current read in nA, A, fA ... and
    scaled to pA: the ``original_unit`` property) and ``filtered`` (SpikeInterface's ``is_filtered``, which its
    filters set). Read from the recording's properties the analyzer keeps, so a reload without the recording
    gives the same."""
    rates = _recording_property(analyzer, "original_sampling_frequency")
    units = _recording_property(analyzer, "original_unit")
    filtered = bool(analyzer.rec_attributes.get("is_filtered", False))
    if analyzer.has_recording() or analyzer.has_temporary_recording():
        filtered = filtered or bool(analyzer.recording.is_filtered())
    main = main_channel_indices(analyzer)
    position = {u: i for i, u in enumerate(analyzer.unit_ids)}
    parts = []
    for unit_id in unit_ids:
        channel = int(main[position[unit_id]])
        found = []
        if rates is not None and rates[channel] and not is_paper_rate(float(rates[channel])):
            found.append("resampled")
        if units is not None and current_to_pa(units[channel]) not in (None, 1.0):
            found.append(CONVERTED_FROM + "".join(c for c in str(units[channel]).replace("µ", "u") if c.isalnum()))
        if filtered:
            found.append(FILTERED)
        parts.append(found)
    return parts


def add_domain_parts(domain: str, parts) -> str:
    """``domain`` (``in_domain`` or ``+``-joined parts) with ``parts`` added once each, in order."""
    have = [] if domain == IN_DOMAIN else str(domain).split("+")
    have += [p for p in parts if p not in have]
    return "+".join(have) if have else IN_DOMAIN


def _recording_property(analyzer, key: str) -> list | None:
    try:
        if key not in analyzer.get_recording_property_keys():
            return None
        values = analyzer.get_recording_property(key)
    except Exception:  # noqa: BLE001 - recordingless analyzers of other versions
        return None
    return None if values is None else list(np.asarray(values, dtype=object).ravel())


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
    usable_start: int = 0,
    usable_stop: int | None = None,
    sign: float = -1.0,
    level: float | None = None,
    fraction: float = DEFAULT_THRESHOLD_FRACTION,
):
    """Per-spike trigger on 40 kHz snippets ``y`` (n, L), the rule of this module (see the docstring).

    centre : (n,) expected peak index of each row; the peak is the extremum (in direction ``sign``) within
        ±0.25 ms of it.  usable_start, usable_stop : the usable region (outside it the data are not trusted).
    level : threshold magnitude from the baseline in the data's units; ``None`` = ``fraction`` of the median
        depth.  Returns a dict: ``trigger`` (n,) int (−1 where there is no crossing), ``peak``, ``baseline``,
        ``depth`` (n,), and ``level`` (the magnitude used).
    """
    y = np.asarray(y, dtype=np.float64)
    n, length = y.shape
    usable_stop = length if usable_stop is None else int(usable_stop)
    sample_indices = np.arange(length)
    oriented = sign * y  # spikes point up in z
    centre = np.clip(np.rint(np.asarray(centre, dtype=np.float64)).astype(np.int64), usable_start, usable_stop - 1)
    search_window = (sample_indices[None, :] >= np.maximum(centre - _PEAK_SEARCH, usable_start)[:, None]) & (
        sample_indices[None, :] <= np.minimum(centre + _PEAK_SEARCH, usable_stop - 1)[:, None]
    )
    peak = np.where(search_window, oriented, -np.inf).argmax(axis=1) if n else np.zeros(0, np.int64)
    baseline_end = np.maximum(peak - _BASELINE_GAP, usable_start + 4)
    baseline_start = np.maximum(baseline_end - _BASELINE_LEN, usable_start)
    baseline_mask = (sample_indices[None, :] >= baseline_start[:, None]) & (
        sample_indices[None, :] < baseline_end[:, None]
    )
    baseline_values = np.where(baseline_mask, oriented, np.nan)
    baseline = np.nanmedian(baseline_values, axis=1) if n else np.zeros(0)
    centred = oriented - baseline[:, None]
    depth = centred[np.arange(n), peak]
    if level is None:
        level = float(fraction) * float(np.median(depth)) if n else float("nan")
    level = float(level)
    above = centred >= level
    considered = (sample_indices[None, :] >= usable_start) & (sample_indices[None, :] <= peak[:, None])
    below_before = (
        np.where(considered & ~above, sample_indices[None, :], -1).max(axis=1) if n else np.zeros(0, np.int64)
    )
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


def _round_up_half(milliseconds: float) -> float:
    return math.ceil(milliseconds * 2.0 - 1e-9) / 2.0


def _fmt_ms(milliseconds: float) -> str:
    return f"{milliseconds:.1f}" if abs(milliseconds * 2 - round(milliseconds * 2)) < 1e-9 else f"{milliseconds:g}"


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

    Parameters
    ----------
    analyzer : SortingAnalyzer
        With ``random_spikes`` and ``waveforms``.
    polarity : "negative" | "positive", default: "negative"
        "positive" flips every unit first (inverted recordings).
    flip_positive : bool, default: False
        Flip units whose spikes go up (after the global flip) so that they go down.
    threshold : float or None, default: None
        The trigger level relative to the baseline, signed like the paper's −50 (pA for current data, the
        analyzer's unit otherwise; its magnitude is applied in each unit's direction).  None: −50 pA for
        current data, ``threshold_fraction`` of each unit's median spike depth otherwise.
    threshold_fraction : float, default: 0.25
        The fraction of each unit's median spike depth used when ``threshold`` is None and the data are not
        a current.
    reextract : bool, default: False
        When the window is too short and the analyzer has its recording, recompute ``waveforms`` with the
        window needed (this deletes extensions that depend on ``waveforms``: they are listed in
        ``info["reextracted"]`` and a warning).
    allow_low_rate : bool, default: False
        Accept sampling rates below 20 kHz (the 40 kHz shape cannot be recovered there).

    Returns
    -------
    snippets : Snippets
        One 160-sample 40 kHz snippet per spike of ``random_spikes`` (same order, in the analyzer's units:
        pA, µV, ...).
    domain : str
        The overall domain label (``in_domain`` or the ``+``-joined parts of all units).
    info : dict
        JSON-serialisable record of everything done (rates, resampling ratio, per-unit extremum channel,
        polarity, flip, threshold, trigger offset and domain).
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
        waveforms_extension = analyzer.get_extension("waveforms")
        before = dict(
            ms_before=float(waveforms_extension.params.get("ms_before")),
            ms_after=float(waveforms_extension.params.get("ms_after")),
        )
        loaded = set(analyzer.get_loaded_extension_names())
        kwargs = dict(ms_before=short.ms_before, ms_after=short.ms_after)
        if waveforms_extension.params.get("dtype") is not None:
            kwargs["dtype"] = waveforms_extension.params["dtype"]
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
    def __init__(
        self,
        sampling_frequency,
        nbefore,
        nafter,
        ms_before,
        ms_after,
        need_before,
        need_after,
        units,
        lead_ms,
        guard_ms,
    ):
        super().__init__("window too short")
        self.sampling_frequency, self.nbefore, self.nafter = sampling_frequency, nbefore, nafter
        self.cur_before, self.cur_after = ms_before, ms_after
        self.need_before, self.need_after = need_before, need_after
        self.ms_before, self.ms_after = _round_up_half(need_before), _round_up_half(need_after)
        self.units, self.lead_ms, self.guard_ms = units, lead_ms, guard_ms

    def message(self, analyzer, tried_reextract: bool) -> str:
        units = ", ".join(repr(str(u)) for u in self.units[:6]) + (" ..." if len(self.units) > 6 else "")
        current_before = _fmt_ms(self.cur_before) if self.cur_before is not None else "?"
        current_after = _fmt_ms(self.cur_after) if self.cur_after is not None else "?"
        call = f'analyzer.compute("waveforms", ms_before={_fmt_ms(self.ms_before)}, ms_after={_fmt_ms(self.ms_after)})'
        text = (
            f"The analyzer's waveforms (ms_before={current_before}, ms_after={current_after} at {self.sampling_frequency:g} Hz) are too short "
            f"for the model's window, 1 ms before the trigger and 3 ms after it at 40 kHz: the trigger "
            f"(threshold crossing) comes {self.lead_ms:.2f} ms before the spike time, and "
            f"{self.guard_ms:.2f} ms at each end are lost to the resampling filter, so the window needs "
            f"ms_before >= {self.need_before:.2f} and ms_after >= {self.need_after:.2f} (units {units}). "
            f"Recompute the waveforms with {call} (this deletes the extensions that depend on 'waveforms'), "
            f"then compute 'serotonergic' again."
        )
        if analyzer.has_recording() or analyzer.has_temporary_recording():
            text += (
                " The analyzer has its recording, so this can be done in place: "
                "spikeinterface_sero.serotonergic_label_units(analyzer, reextract=True) recomputes the waveforms for you."
            )
            if tried_reextract:
                text += " (A re-extraction was tried and was still too short.)"
        else:
            text += (
                " The analyzer has no recording attached: load it with its recording, or "
                "analyzer.set_temporary_recording(recording), before recomputing."
            )
        return text


def _unit_triggers(y, centre, usable, sign, kind, to_pa, threshold, threshold_fraction):
    """The triggers of one unit's resampled snippets: (found, the threshold rule, the median depth). The paper's
    -50 pA for a current unless ``threshold`` is given; a relative level when most spikes never reach it."""
    usable_start, usable_stop = usable
    if threshold is not None:
        level = abs(float(threshold)) * (1.0 / to_pa if kind == "current" else 1.0)
        rule = "absolute"
    elif kind == "current":
        level, rule = abs(DEFAULT_THRESHOLD_PA) / to_pa, "paper_-50pA"
    else:
        level, rule = None, "relative"
    options = dict(usable_start=usable_start, usable_stop=usable_stop, sign=sign, fraction=threshold_fraction)
    found = find_triggers(y, centre, level=level, **options)
    median_depth = float(np.median(found["depth"]))
    if rule == "paper_-50pA" and not median_depth > found["level"]:
        found = find_triggers(y, centre, level=None, **options)
        rule = "relative (median depth below 50 pA)"
    return found, rule, median_depth


def _adapt(analyzer, polarity, flip_positive, threshold, threshold_fraction, allow_low_rate, reextracted):
    sampling_frequency = float(analyzer.sampling_frequency)
    if sampling_frequency < MIN_SAMPLING_FREQUENCY and not allow_low_rate:
        raise SamplingRateError(
            f"The analyzer runs at {sampling_frequency:g} Hz; below {MIN_SAMPLING_FREQUENCY:g} Hz the 40 kHz action-current "
            "shape (4 ms, 160 samples) cannot be recovered by resampling. Pass allow_low_rate=True to "
            "adapt_analyzer_snippets to try anyway."
        )
    waveforms_extension = analyzer.get_extension("waveforms")
    nbefore, nafter = int(waveforms_extension.nbefore), int(waveforms_extension.nafter)
    length = nbefore + nafter
    waveforms = waveforms_extension.data["waveforms"]
    spikes = analyzer.sorting.to_spike_vector()[analyzer.get_extension("random_spikes").get_data()]
    n = int(spikes.size)
    unit_ids = list(analyzer.unit_ids)
    sparsity = analyzer.sparsity
    all_channels = np.arange(analyzer.get_num_channels())
    rows_of = {unit_index: np.flatnonzero(spikes["unit_index"] == unit_index) for unit_index in range(len(unit_ids))}

    def channels_of(u):
        return sparsity.unit_id_to_channel_indices[u] if sparsity is not None else all_channels

    def waveforms_of_unit(u):
        channels, rows = channels_of(u), rows_of[unit_ids.index(u)]
        w = np.asarray(waveforms[rows] if rows.size else np.zeros((0, length, len(channels))), dtype=np.float64)
        return w[:, :, : len(channels)], channels

    main, main_source = _main_channels(analyzer)
    up, down = resampling_factors(sampling_frequency)
    achieved = sampling_frequency * up / down
    guard = _edge_guard(up, down)
    align = (up, down) != (1, 1) and down - 1 <= _MAX_ALIGN_LOSS
    usable_in = length - (down - 1 if align else 0)
    usable_in -= usable_in % down if align else 0
    out_len = -(-usable_in * up // down)
    usable_start, usable_stop = guard, out_len - guard
    global_flip = polarity == "positive"
    segment_samples = [analyzer.get_num_samples(s) for s in range(analyzer.get_num_segments())]

    out = np.zeros((n, SNIPPET_LENGTH), np.float32)
    triggers_40khz = np.zeros(n, np.int64)
    units_info, unit_domains = {}, {}
    short_units, leads, lags, at_trigger = [], [], [], []
    channel_ids = [str(c) for c in analyzer.channel_ids]
    for unit_index, u in enumerate(unit_ids):
        rows, channels, channel = rows_of[unit_index], channels_of(u), main[u]
        pos = np.flatnonzero(np.asarray(channels) == channel)
        if pos.size == 0:  # the main channel is outside the unit's sparsity: take its own extremum
            w = waveforms_of_unit(u)[0]
            t = w.mean(axis=0) if w.shape[0] else np.zeros((length, len(channels)))
            pos = [int(np.argmax(np.abs(t - np.median(t, axis=0)).max(axis=0)))]
            channel = int(channels[pos[0]])
        x = np.asarray(waveforms[rows, :, int(pos[0])], dtype=np.float64).reshape(rows.size, length)
        x = -x if global_flip else x
        kind, unit, to_pa = signal_kind(analyzer, channel)
        parts = {"voltage": ["extracellular_voltage"], "unknown": ["unknown_units"]}.get(kind, [])
        if (up, down) != (1, 1):
            parts.append("resampled")
        if global_flip:
            parts.append("flipped")
        unit_info = dict(
            extremum_channel=channel_ids[channel],
            extremum_channel_index=int(channel),
            n_spikes=int(rows.size),
            signal=kind,
            unit=unit,
        )
        if rows.size == 0:
            unit_info.update(polarity=None, flipped=bool(global_flip))
            units_info[str(u)] = unit_info
            unit_domains[str(u)] = unit_info["domain"] = _domain(parts)
            continue
        # polarity and template peak, at the source rate
        template = x.mean(axis=0)
        base = float(np.median(template))
        positive = (template.max() - base) > (base - template.min())
        source_peak = int(np.argmax(template) if positive else np.argmin(template))
        flipped = bool(global_flip)
        if positive and flip_positive:
            x = -x
            positive, flipped = False, not flipped
            parts = [p for p in parts if p != "flipped"] + (["flipped"] if flipped else [])
        if positive:
            parts.append("positive_polarity_unflipped")
        sign = 1.0 if positive else -1.0
        # resample on the 40 kHz grid of the whole recording
        window_starts = spikes["sample_index"][rows].astype(np.int64) - nbefore
        r = ((-window_starts) % down) if align else np.zeros(rows.size, np.int64)
        aligned = x[np.arange(rows.size)[:, None], r[:, None] + np.arange(usable_in)[None, :]]
        y = resample_snippets(aligned, up, down)
        spike_pos = (nbefore - r) * up / down  # where the spike time falls in each resampled row
        centre = (source_peak - r) * up / down
        found, rule, median_depth = _unit_triggers(
            y, centre, (usable_start, usable_stop), sign, kind, to_pa, threshold, threshold_fraction
        )
        if kind == "current" and rule != "paper_-50pA":
            parts.append("nonpaper_threshold")
        trigger = found["trigger"]
        crossed = trigger >= 0
        lead = int(np.rint(np.median(found["peak"][crossed] - trigger[crossed]))) if crossed.any() else 0
        trigger = np.where(crossed, trigger, found["peak"] - lead)
        offset_ms = (trigger - spike_pos) / SAMPLING_FREQUENCY * 1000.0
        fits = (trigger - NBEFORE >= usable_start) & (trigger + NAFTER <= usable_stop)
        leads.append(float(np.percentile(-offset_ms, 95)))
        at_trigger.append(kind == "current" and (up, down) == (1, 1) and abs(float(np.median(offset_ms))) <= 0.025)
        lags.append(float(np.percentile(offset_ms, 95)))
        if usable_stop - usable_start < SNIPPET_LENGTH or fits.mean() < _MIN_FIT:
            short_units.append(u)
            continue
        clipped_trigger = np.clip(trigger, usable_start + NBEFORE, usable_stop - NAFTER)
        out[rows] = y[
            np.arange(rows.size)[:, None], (clipped_trigger - NBEFORE)[:, None] + np.arange(SNIPPET_LENGTH)[None, :]
        ]
        start40 = (window_starts + r) * up // down if align else np.rint(window_starts * up / down).astype(np.int64)
        triggers_40khz[rows] = start40 + clipped_trigger
        segments = spikes["segment_index"][rows]
        edge = (window_starts < 0) | (window_starts + length > np.asarray(segment_samples)[segments])
        level_out = found["level"] * (to_pa if kind == "current" else 1.0)
        unit_info.update(
            polarity="positive" if positive else "negative",
            flipped=flipped,
            threshold_rule=rule,
            threshold_level=float(sign * level_out),
            threshold_unit="pA" if kind == "current" else unit,
            median_depth=float(median_depth * (to_pa if kind == "current" else 1.0)),
            trigger_offset_ms=float(np.median(offset_ms)),
            n_no_crossing=int((~crossed).sum()),
            n_clamped=int((clipped_trigger != trigger).sum()),
            n_zero_padded=int(edge.sum()),
        )
        units_info[str(u)] = unit_info
        unit_domains[str(u)] = unit_info["domain"] = _domain(parts)

    if short_units:
        guard_ms = guard / SAMPLING_FREQUENCY * 1000.0
        loss_ms = ((down - 1) / sampling_frequency * 1000.0) if align else 0.0
        lead_ms, lag_ms = max(leads), max(lags)
        need_before = NBEFORE / SAMPLING_FREQUENCY * 1000.0 + lead_ms + guard_ms + loss_ms + _MARGIN_MS
        need_after = NAFTER / SAMPLING_FREQUENCY * 1000.0 + lag_ms + guard_ms + loss_ms + _MARGIN_MS
        short = _WindowTooShort(
            sampling_frequency,
            nbefore,
            nafter,
            waveforms_extension.params.get("ms_before"),
            waveforms_extension.params.get("ms_after"),
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
    spike_vector = analyzer.sorting.to_spike_vector()
    info = dict(
        applied=True,
        domain=overall,
        source_sampling_frequency=sampling_frequency,
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
            ms_before=waveforms_extension.params.get("ms_before"),
            ms_after=waveforms_extension.params.get("ms_after"),
            nbefore=nbefore,
            nafter=nafter,
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
        trigger_samples=triggers_40khz,
        segment_index=spikes["segment_index"].astype(np.int64),
        unit_ids=units_arr,
        cell_ids=np.array([names[u] for u in units_arr], dtype=str),
        sampling_frequency=SAMPLING_FREQUENCY,
        detection=dict(adapted=True, domain=overall),
        segment_durations_s=[s / sampling_frequency for s in segment_samples],
        all_trigger_samples=np.rint(spike_vector["sample_index"] * (SAMPLING_FREQUENCY / sampling_frequency)).astype(
            np.int64
        ),
        all_segment_index=spike_vector["segment_index"].astype(np.int64),
        all_unit_ids=np.array([str(unit_ids[int(i)]) for i in spike_vector["unit_index"]], dtype=str),
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
