"""Classical features of a cell next to the CNN (Elephant's definitions on Neo spike trains): firing rate, CV and LV of
the inter-spike intervals, the UDI; the "wide, slow and regular" criteria and the typical / atypical typing.
Conventions and sources: ``docs/features.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import neo
import numpy as np
import pandas as pd
import quantities as pq

from .arguments import check_number
from .constants import LABELS, NBEFORE, SAMPLING_FREQUENCY
from .errors import DataError, ParameterError, SnippetError

__all__ = [
    "DEFAULT_MIN_UDI_MS",
    "DEFAULT_MAX_RATE_HZ",
    "DEFAULT_MAX_CV",
    "FEATURE_COLUMNS",
    "CRITERIA_LABELS",
    "SERO_TYPES",
    "spike_trains_for_cell",
    "firing_features",
    "udi_ms",
    "udi_per_spike_ms",
    "cell_features",
    "features_table",
    "features_from_sorting",
    "criteria_classify",
    "sero_type",
    "add_sero_type",
]

SER, NSER = LABELS  # "serotonergic", "non_serotonergic"
UNDETERMINED = "undetermined"

#: Default classical thresholds; the reasons and sources are in docs/features.md.
DEFAULT_MIN_UDI_MS = 1.0  # wide spike: UDI >= 1.0 ms
DEFAULT_MAX_RATE_HZ = 3.0  #: slow firing: rate <= 3 Hz (Vandermaelen & Aghajanian 1983: 0.4-3 Hz)
DEFAULT_MAX_CV = 0.5  #: regular firing: CV of ISIs <= 0.5 (Mlinar et al. 2016: CV < 0.5 in ~97 % of SER)

#: Columns of :func:`features_table` / :func:`features_from_sorting`, in order.
FEATURE_COLUMNS = ("firing_rate_hz", "cv_isi", "lv", "udi_ms", "n_spikes", "n_isi")
#: The labels of the classical criteria (:func:`criteria_classify`).
CRITERIA_LABELS = (SER, NSER, UNDETERMINED)
#: The values of ``sero_type`` (:func:`sero_type`): the CNN label, typical or atypical by the classical criteria.
SERO_TYPES = (
    "typical_serotonergic",
    "atypical_serotonergic",
    "typical_non_serotonergic",
    "atypical_non_serotonergic",
    UNDETERMINED,
)
_POLARITIES = ("negative", "positive", "auto")
_UDI_METHODS = ("mean", "median")
_CHUNK = 65_536  # snippets per vectorised pass (bounds the temporary arrays to ~80 MB)
_WIDTH_CUTOFF = 0.75  # elephant.waveform_features.waveform_width's default: trough searched in the first 75 %
# Labels read as "no decision" by sero_type (besides None / NaN / pd.NA).
_MISSING_LABELS = frozenset({"", UNDETERMINED, "uncertain", "unknown", "none", "nan"})


# --------------------------------------------------------------------------------------------------
# Spike trains
# --------------------------------------------------------------------------------------------------
def _seconds(value: Any, name: str) -> np.ndarray:
    """Float seconds from a number, an array or a ``quantities`` Quantity."""
    try:
        if isinstance(value, pq.Quantity):
            value = value.rescale(pq.s).magnitude
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be numbers in seconds (or a time Quantity): {exc}") from None


def _per_segment(values: Any, n_segments: int, name: str, default: float | None = None) -> np.ndarray:
    if values is None:
        if default is None:
            raise DataError(f"{name} is required: give one value in seconds per segment.")
        return np.full(n_segments, default, dtype=float)
    arr = _seconds(values, name)
    if arr.ndim == 0:
        arr = np.full(n_segments, float(arr))
    arr = arr.ravel()
    if arr.size != n_segments:
        raise DataError(f"{name} has {arr.size} value(s) but there are {n_segments} segment(s) of spike times.")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name} contains NaN or infinite values.")
    return arr


def spike_trains_for_cell(
    spike_times_s_per_segment: Sequence[Any],
    t_starts: Any,
    t_stops: Any,
    *,
    sampling_frequency: float = SAMPLING_FREQUENCY,
    **annotations: Any,
) -> list[neo.SpikeTrain]:
    """One :class:`neo.SpikeTrain` (seconds) per segment of one cell.

    Parameters
    ----------
    spike_times_s_per_segment : sequence of array-like, or numpy.ndarray
        One array of spike times in seconds (or a time Quantity) per segment (sweep).  A single 1-D
        numpy array is read as one segment.  Times are sorted.
    t_starts, t_stops : array-like, float or None
        Start and stop of each segment in seconds: one value per segment, or one number for all
        segments.  ``t_starts=None`` means 0 s.  ``t_stop - t_start`` is the recorded duration that
        the firing rate divides by.
    sampling_frequency : float, default: 40000.0
        Stored as the trains' ``sampling_rate`` (Hz).
    **annotations
        Neo annotations given to every train (for example ``cell_id="A140313#073"``).

    Raises
    ------
    DataError
        Mismatched numbers of segments, non-finite times, spikes outside ``[t_start, t_stop]``.
    """
    sampling_frequency = _check_fs(sampling_frequency)
    if (
        isinstance(spike_times_s_per_segment, np.ndarray)
        and spike_times_s_per_segment.ndim == 1
        and (spike_times_s_per_segment.dtype != object)
    ):
        spike_times_s_per_segment = [spike_times_s_per_segment]
    segments = []
    for k, times in enumerate(spike_times_s_per_segment):
        arr = _seconds(times, f"spike times of segment {k}")
        if arr.ndim != 1:
            raise DataError(
                f"spike times of segment {k} must be a 1-D array (got shape {arr.shape}); "
                "give one array of spike times per segment."
            )
        if not np.all(np.isfinite(arr)):
            raise DataError(f"spike times of segment {k} contain NaN or infinite values.")
        segments.append(np.sort(arr))
    n = len(segments)
    starts = _per_segment(t_starts, n, "t_starts", default=0.0)
    stops = _per_segment(t_stops, n, "t_stops")
    trains = []
    for k, (times, t0, t1) in enumerate(zip(segments, starts, stops)):
        if t1 < t0:
            raise DataError(f"segment {k}: t_stop ({t1} s) is before t_start ({t0} s).")
        if times.size and (times[0] < t0 or times[-1] > t1):
            raise DataError(
                f"segment {k}: spike times span {times[0]:.6g}-{times[-1]:.6g} s, outside the segment "
                f"[{t0:.6g}, {t1:.6g}] s; check t_starts / t_stops (or the segment durations)."
            )
        trains.append(
            neo.SpikeTrain(
                times * pq.s,
                t_start=t0 * pq.s,
                t_stop=t1 * pq.s,
                sampling_rate=float(sampling_frequency) * pq.Hz,
                **{"segment_index": k, **annotations},
            )
        )
    return trains


def _as_train_list(spike_trains: Any) -> list[neo.SpikeTrain]:
    if isinstance(spike_trains, neo.SpikeTrain):
        return [spike_trains]
    if spike_trains is not None and (isinstance(spike_trains, (str, bytes)) or not isinstance(spike_trains, Sequence)):
        raise ParameterError(
            f"spike_trains must be a neo.SpikeTrain or a list of them (one per segment), not {spike_trains!r:.80}."
        )
    trains = list(spike_trains) if spike_trains is not None else []
    for k, st in enumerate(trains):
        if not isinstance(st, neo.SpikeTrain):
            raise ParameterError(
                f"spike_trains: element {k} is a {type(st).__name__}, not a neo.SpikeTrain; build the trains "
                "with spike_trains_for_cell(...)."
            )
    return trains


def firing_features(spike_trains: Sequence[neo.SpikeTrain] | neo.SpikeTrain) -> dict[str, float | int]:
    """Firing rate, CV and LV of the ISIs of one cell, by Elephant's definitions.

    ``spike_trains`` holds one :class:`neo.SpikeTrain` per segment (a single train is accepted).

    Returns a dict:

    * ``firing_rate_hz``: total spikes / total recorded duration (sum of ``t_stop - t_start``), the
      duration-weighted mean of :func:`elephant.statistics.mean_firing_rate` of the segments.
      0.0 for a cell that never fired; NaN when the total duration is 0 or there is no segment.
    * ``cv_isi``: :func:`elephant.statistics.cv` (population SD / mean) of all within-segment ISIs
      pooled; NaN with fewer than 2 ISIs.
    * ``lv``: local variation (Shinomoto et al. 2003, :func:`elephant.statistics.lv`) over all pairs of
      consecutive ISIs that lie in the same segment; NaN without such a pair.
    * ``n_isi``: the number of within-segment ISIs.

    The three statistics are written out with numpy (one line each, tested equal to Elephant's)
    because importing Elephant imports all of its submodules and ``scipy.stats``: about 1.3 s, more
    than the rest of a cold one-file ``sero classify`` (``benchmarks/bench_cold_start.py``).
    """
    trains = _as_train_list(spike_trains)
    n_spikes = 0
    total_duration = 0.0
    isis: list[np.ndarray] = []
    pair_terms: list[np.ndarray] = []
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 from duplicate spike times
        for st in trains:
            times = np.sort(np.asarray(st.rescale(pq.s).magnitude, dtype=float))
            duration = float((st.t_stop - st.t_start).rescale(pq.s).magnitude)
            if duration > 0:
                n_spikes += times.size
                total_duration += duration
            intervals = np.diff(times)  # within this segment only
            isis.append(intervals)
            pair_terms.append(((intervals[:-1] - intervals[1:]) / (intervals[:-1] + intervals[1:])) ** 2)
        all_isi = np.concatenate(isis) if isis else np.empty(0)
        pairs = np.concatenate(pair_terms) if pair_terms else np.empty(0)
        cv_isi = float(np.std(all_isi) / np.mean(all_isi)) if all_isi.size >= 2 else np.nan
    return {
        "firing_rate_hz": n_spikes / total_duration if total_duration > 0 else np.nan,
        "cv_isi": cv_isi,
        "lv": 3.0 * float(np.mean(pairs)) if pairs.size else np.nan,
        "n_isi": int(all_isi.size),
    }


# --------------------------------------------------------------------------------------------------
# Spike width (UDI)
# --------------------------------------------------------------------------------------------------
def _as_snippet_matrix(snippets: Any) -> np.ndarray:
    """``(n, n_samples)`` float array from ``(n, T)``, ``(T,)``, ``(n, T, 1)`` or ``(n, 1, T)``."""
    if isinstance(snippets, pq.Quantity):
        snippets = snippets.magnitude
    try:
        x = np.asarray(snippets, dtype=float)
    except (TypeError, ValueError) as exc:
        raise SnippetError(f"snippets must be a numeric array of shape (n, 160): {exc}") from None
    if x.ndim == 1:
        x = x[None, :]
    elif x.ndim == 3 and x.shape[2] == 1:  # SpikeInterface waveforms (n, samples, channels)
        x = x[:, :, 0]
    elif x.ndim == 3 and x.shape[1] == 1:  # Neo SpikeTrain.waveforms (n, channels, samples)
        x = x[:, 0, :]
    if x.ndim != 2:
        raise SnippetError(
            f"snippets must have shape (n, 160) (or (n, 160, 1) / (n, 1, 160) for one channel); "
            f"got shape {np.shape(snippets)}."
        )
    if x.shape[0] and x.shape[1] < 2:
        raise SnippetError(f"snippets must have at least 2 samples each; got shape {x.shape}.")
    if not np.all(np.isfinite(x)):
        raise SnippetError("snippets contain NaN or infinite values; drop those spikes first.")
    return x


def _check_choice(value: str, choices: tuple[str, ...], name: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ParameterError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}.")
    return value


def _oriented(x: np.ndarray, polarity: str) -> np.ndarray:
    """Flip the snippets so that the main (fast) peak of the action current is negative."""
    _check_choice(polarity, _POLARITIES, "polarity")
    if polarity == "auto":
        mean = x.mean(axis=0)
        n_base = min(max(NBEFORE // 2, 1), mean.size)
        dev = mean - mean[:n_base].mean()  # relative to the pre-trigger baseline
        polarity = "negative" if -dev.min() >= dev.max() else "positive"
    return -x if polarity == "positive" else x


def _check_fs(sampling_frequency: float) -> float:
    return check_number(sampling_frequency, "sampling_frequency", minimum=0, strict=True)


def trough_and_peak_indices(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise trough and following peak of negative-going snippets, the points
    :func:`elephant.waveform_features.waveform_width` measures (trough in the first 75 %), vectorised.

    Parameters
    ----------
    x : np.ndarray
        (n, n_samples) snippets.

    Returns
    -------
    troughs, peaks : np.ndarray
        (n,) sample indices.
    """
    n_samples = x.shape[1]
    min_border = max(1, int(n_samples * _WIDTH_CUTOFF))
    troughs = np.argmin(x[:, :min_border], axis=1)
    after = np.where(np.arange(n_samples)[None, :] >= troughs[:, None], x, -np.inf)
    return troughs, np.argmax(after, axis=1)


def _trough_to_peak_samples(x: np.ndarray) -> np.ndarray:
    troughs, peaks = trough_and_peak_indices(x)
    return peaks - troughs


def udi_per_spike_ms(
    snippets: Any,
    sampling_frequency: float = SAMPLING_FREQUENCY,
    polarity: str = "negative",
) -> np.ndarray:
    """UDI of every snippet, in ms (vectorised; the same rule as Elephant's ``waveform_width``).

    ``snippets``: ``(n, 160)`` action currents in pA.  Returns a float array of length ``n``; a
    snippet with no positive phase after its trough (width 0) gives NaN.  ``polarity="positive"``
    reads inverted (positive-going) action currents; ``"auto"`` decides from the mean snippet.
    """
    fs = _check_fs(sampling_frequency)
    x = _as_snippet_matrix(snippets)
    if x.shape[0] == 0:
        return np.empty(0)
    x = _oriented(x, polarity)
    widths = np.concatenate([_trough_to_peak_samples(x[i : i + _CHUNK]) for i in range(0, x.shape[0], _CHUNK)]).astype(
        float
    )
    widths[widths <= 0] = np.nan
    return widths * 1000.0 / fs


def udi_ms(
    snippets: Any,
    sampling_frequency: float = SAMPLING_FREQUENCY,
    polarity: str = "negative",
    method: str = "mean",
) -> float:
    """Spike width of one cell: the interval between the upstroke and the downstroke (UDI), in ms.

    In a loose-seal cell-attached recording the action current's fast negative peak marks the fastest
    rise of the action potential and the following positive peak its fastest repolarisation, so the
    UDI is the trough-to-peak interval of the action current:
    :func:`elephant.waveform_features.waveform_width` (trough in the first 75 % of the snippet, peak
    after it) divided by the sampling frequency.  Resolution: one sample (25 µs at 40 kHz).

    Parameters
    ----------
    snippets : numpy.ndarray
        ``(n, 160)`` action currents (pA) of one cell; ``(n, 160, 1)``, ``(n, 1, 160)`` and a single
        ``(160,)`` snippet are accepted.
    sampling_frequency : float, default: 40000.0
        Of the snippets, Hz.
    polarity : "negative" | "positive" | "auto", default: "negative"
        ``"negative"`` (the paper's action currents: fast negative peak, then a smaller positive
        phase), ``"positive"`` (inverted sign: the snippets are flipped first) or ``"auto"`` (the sign
        of the largest deflection of the mean snippet from its pre-trigger baseline).
    method : "mean" | "median", default: "mean"
        ``"mean"``: width of the mean snippet (noise averaged out before the peaks are
        located).  ``"median"``: median of the per-spike widths (:func:`udi_per_spike_ms`).

    Returns
    -------
    float
        NaN when there are no snippets (or no positive phase after the trough).
    """
    fs = _check_fs(sampling_frequency)
    _check_choice(method, _UDI_METHODS, "method")
    _check_choice(polarity, _POLARITIES, "polarity")
    x = _as_snippet_matrix(snippets)
    if x.shape[0] == 0:
        return float("nan")
    if method == "median":
        widths = udi_per_spike_ms(x, fs, polarity)
        widths = widths[np.isfinite(widths)]
        return float(np.median(widths)) if widths.size else float("nan")
    template = _oriented(x, polarity).mean(axis=0)
    width = int(_trough_to_peak_samples(template[None, :])[0])
    return width * 1000.0 / fs if width > 0 else float("nan")


# --------------------------------------------------------------------------------------------------
# Per cell and tables
# --------------------------------------------------------------------------------------------------
def _waveforms_of(trains: list[neo.SpikeTrain]) -> np.ndarray | None:
    """The trains' own ``waveforms`` stacked, when every non-empty train carries them."""
    blocks = [st.waveforms for st in trains if len(st)]
    if not blocks or any(b is None for b in blocks):
        return None
    return np.concatenate([_as_snippet_matrix(b) for b in blocks], axis=0)


def cell_features(
    spike_trains: Sequence[neo.SpikeTrain] | neo.SpikeTrain,
    snippets: Any = None,
    sampling_frequency: float = SAMPLING_FREQUENCY,
    polarity: str = "negative",
    method: str = "mean",
) -> dict[str, float | int]:
    """All features of one cell: :func:`firing_features` plus ``udi_ms`` and ``n_spikes``.

    ``snippets=None`` takes the snippets from the trains' ``waveforms`` when they all have them
    (``(n, 1, 160)`` Neo convention), otherwise ``udi_ms`` is NaN.  ``sampling_frequency`` is the
    snippets' rate.  ``n_spikes`` counts the spikes of the trains.
    """
    _check_choice(polarity, _POLARITIES, "polarity")
    _check_choice(method, _UDI_METHODS, "method")
    trains = _as_train_list(spike_trains)
    out = firing_features(trains)
    if snippets is None:
        snippets = _waveforms_of(trains)
    out["udi_ms"] = (
        udi_ms(snippets, sampling_frequency, polarity=polarity, method=method) if snippets is not None else float("nan")
    )
    out["n_spikes"] = int(sum(len(st) for st in trains))
    return out


def _lookup(mapping: Mapping | None, key: Any) -> Any:
    if mapping is None:
        return None
    if key in mapping:
        return mapping[key]
    as_str = {str(k): v for k, v in mapping.items()}
    return as_str.get(str(key))


def _table(rows: dict[Any, dict], index_name: str) -> pd.DataFrame:
    df = pd.DataFrame.from_dict(rows, orient="index", columns=list(FEATURE_COLUMNS))
    if not rows:
        df = pd.DataFrame({c: pd.Series(dtype=float) for c in FEATURE_COLUMNS})
    df = df.astype({c: float for c in ("firing_rate_hz", "cv_isi", "lv", "udi_ms")})
    df = df.astype({"n_spikes": "int64", "n_isi": "int64"})
    df.index.name = index_name
    return df


def features_table(
    spike_trains_by_cell: Mapping[Any, Sequence[neo.SpikeTrain]],
    snippets_by_cell: Mapping[Any, Any] | None = None,
    *,
    sampling_frequency: float = SAMPLING_FREQUENCY,
    polarity: str = "negative",
    method: str = "mean",
    index_name: str = "cell_id",
) -> pd.DataFrame:
    """:func:`cell_features` of many cells as a DataFrame indexed by cell id.

    Columns: ``firing_rate_hz, cv_isi, lv, udi_ms, n_spikes, n_isi``.  A cell missing from
    ``snippets_by_cell`` gets ``udi_ms`` from its trains' waveforms, or NaN.
    """
    if not isinstance(spike_trains_by_cell, Mapping):
        raise ParameterError(
            f"spike_trains_by_cell must be a mapping of cell id to spike trains, not {spike_trains_by_cell!r:.80}."
        )
    if snippets_by_cell is not None and not isinstance(snippets_by_cell, Mapping):
        raise ParameterError(
            f"snippets_by_cell must be a mapping of cell id to snippets or None, not {snippets_by_cell!r:.80}."
        )
    rows = {}
    for cell_id, trains in spike_trains_by_cell.items():
        rows[cell_id] = cell_features(
            trains,
            _lookup(snippets_by_cell, cell_id),
            sampling_frequency=sampling_frequency,
            polarity=polarity,
            method=method,
        )
    return _table(rows, index_name)


def features_from_sorting(
    sorting: Any,
    snippets_by_unit: Mapping[Any, Any] | None = None,
    segment_durations_s: Sequence[float] | None = None,
    *,
    unit_ids: Sequence[Any] | None = None,
    sampling_frequency: float = SAMPLING_FREQUENCY,
    polarity: str = "negative",
    method: str = "mean",
) -> pd.DataFrame:
    """Features of every unit of a SpikeInterface sorting, indexed by unit id (index name ``unit_id``).

    Spike times of segment ``k`` are ``frames / sorting fs + sorting.get_start_time(k)``; segment ``k``
    lasts ``segment_durations_s[k]`` seconds (from the recording: ``recording.get_duration(k)``).
    With ``segment_durations_s=None`` the durations come from the sorting's registered recording.
    ``snippets_by_unit`` maps unit id to that unit's ``(n, 160)`` snippets (pA) at
    ``sampling_frequency``; a unit without snippets gets ``udi_ms`` NaN.

    Raises
    ------
    DataError
        No durations available, or a wrong number of them, or spikes after the end of a segment.
    """
    from spikeinterface.core import BaseSorting

    if not isinstance(sorting, BaseSorting):
        raise ParameterError(f"sorting must be a SpikeInterface sorting, not {sorting!r:.80}.")
    n_segments = sorting.get_num_segments()
    fs_sorting = float(sorting.get_sampling_frequency())
    if segment_durations_s is None:
        if not sorting.has_recording():
            raise DataError(
                "The sorting has no registered recording, so the segment durations are unknown: pass "
                "segment_durations_s=[recording.get_duration(k) for k in range(recording.get_num_segments())]."
            )
        durations = np.array([sorting.get_num_samples(k) / fs_sorting for k in range(n_segments)])
    else:
        durations = _per_segment(segment_durations_s, n_segments, "segment_durations_s")
        if np.any(durations < 0):
            raise DataError("segment_durations_s must not be negative.")
    t_starts = np.array([float(sorting.sample_index_to_time(0, segment_index=k)) for k in range(n_segments)])
    ids = list(sorting.get_unit_ids()) if unit_ids is None else list(unit_ids)
    trains_by_unit = {}
    for unit_id in ids:
        # use_cache=False: a few units per recording; the cache costs a numba compilation (~1 s) at first use
        times = [
            np.asarray(
                sorting.get_unit_spike_train(unit_id, segment_index=k, return_times=True, use_cache=False), dtype=float
            )
            for k in range(n_segments)
        ]
        try:
            trains_by_unit[unit_id] = spike_trains_for_cell(
                times, t_starts, t_starts + durations, sampling_frequency=fs_sorting, unit_id=str(unit_id)
            )
        except DataError as exc:
            raise DataError(f"unit {unit_id!r}: {exc}") from None
    return features_table(
        trains_by_unit,
        snippets_by_unit,
        sampling_frequency=sampling_frequency,
        polarity=polarity,
        method=method,
        index_name="unit_id",
    )


# --------------------------------------------------------------------------------------------------
# Classical criteria and typical / atypical
# --------------------------------------------------------------------------------------------------
def check_criterion(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    return check_number(value, name, minimum=0)


def criteria_classify(
    features: pd.DataFrame,
    *,
    min_udi_ms: float | None = DEFAULT_MIN_UDI_MS,
    max_rate_hz: float | None = DEFAULT_MAX_RATE_HZ,
    max_cv: float | None = DEFAULT_MAX_CV,
) -> pd.DataFrame:
    """Classical identification: serotonergic when the spike is wide AND the firing slow AND regular.

    A copy of ``features`` is returned with four columns added:

    * ``criteria_wide`` = ``udi_ms >= min_udi_ms``, ``criteria_slow`` = ``firing_rate_hz <= max_rate_hz``,
      ``criteria_regular`` = ``cv_isi <= max_cv`` (nullable booleans: ``<NA>`` where the feature is NaN
      or the criterion is switched off with ``None``).  A value equal to a threshold passes.
    * ``criteria_label``: ``"serotonergic"`` when every criterion that could be evaluated passes,
      ``"non_serotonergic"`` when at least one fails, ``"undetermined"`` when the width criterion is in
      use but ``udi_ms`` is NaN (no snippets), or when no criterion could be evaluated.  So a cell too
      sparse for a CV (fewer than 3 spikes) is judged on width and rate only.

    Defaults and their sources: ``docs/features.md``.
    """
    min_udi_ms = check_criterion(min_udi_ms, "min_udi_ms")
    max_rate_hz = check_criterion(max_rate_hz, "max_rate_hz")
    max_cv = check_criterion(max_cv, "max_cv")
    if not isinstance(features, pd.DataFrame):
        raise ParameterError(
            f"features must be a pandas DataFrame (from features_table); got {type(features).__name__}."
        )
    criteria = (
        ("criteria_wide", "udi_ms", min_udi_ms, np.greater_equal),
        ("criteria_slow", "firing_rate_hz", max_rate_hz, np.less_equal),
        ("criteria_regular", "cv_isi", max_cv, np.less_equal),
    )
    missing = [col for _, col, thr, _ in criteria if thr is not None and col not in features.columns]
    if missing:
        raise DataError(
            f"features lacks the column(s) {', '.join(missing)}; compute them with features_table / "
            "features_from_sorting, or switch that criterion off with None."
        )
    out = features.copy()
    n = len(out)
    n_evaluated = np.zeros(n, dtype=int)
    any_fail = np.zeros(n, dtype=bool)
    for name, col, thr, compare in criteria:
        if thr is None:
            out[name] = pd.array([pd.NA] * n, dtype="boolean")
            continue
        values = pd.to_numeric(out[col], errors="coerce").to_numpy(dtype=float)
        defined = np.isfinite(values)
        passed = np.zeros(n, dtype=bool)
        passed[defined] = compare(values[defined], thr)
        out[name] = pd.arrays.BooleanArray(passed, ~defined)
        n_evaluated += defined
        any_fail |= defined & ~passed
    undetermined = n_evaluated == 0
    if min_udi_ms is not None:
        undetermined |= ~np.isfinite(pd.to_numeric(out["udi_ms"], errors="coerce").to_numpy(dtype=float))
    out["criteria_label"] = np.where(undetermined, UNDETERMINED, np.where(any_fail, NSER, SER))
    return out


def _normalise_label(label: Any, what: str) -> str:
    if label is None or label is pd.NA:
        return UNDETERMINED
    if isinstance(label, float) and np.isnan(label):
        return UNDETERMINED
    text = str(label).strip()
    if text in LABELS:
        return text
    if text.lower() in _MISSING_LABELS:
        return UNDETERMINED
    raise DataError(f"{what} {label!r} is not one of {LABELS[0]!r}, {LABELS[1]!r} or {UNDETERMINED!r} (or missing).")


_SERO_TYPE_TABLE = {
    (SER, SER): "typical_serotonergic",
    (SER, NSER): "atypical_serotonergic",
    (NSER, NSER): "typical_non_serotonergic",
    (NSER, SER): "atypical_non_serotonergic",
}


def sero_type(cnn_label: Any, criteria_label: Any) -> str:
    """Typical / atypical type of a cell from its CNN label and its classical-criteria label.

    * CNN ``serotonergic``, criteria ``serotonergic``: ``"typical_serotonergic"``;
    * CNN ``serotonergic``, criteria ``non_serotonergic``: ``"atypical_serotonergic"`` (the cells the
      paper is about: serotonergic, but the classical criteria would miss them);
    * CNN ``non_serotonergic``, criteria ``non_serotonergic``: ``"typical_non_serotonergic"``;
    * CNN ``non_serotonergic``, criteria ``serotonergic``: ``"atypical_non_serotonergic"``;
    * either label missing or ``"undetermined"``: ``"undetermined"``.

    Missing means None, NaN, ``pd.NA``, ``""``, ``"undetermined"``, ``"uncertain"`` or ``"unknown"``;
    any other label raises :class:`DataError`.
    """
    key = (_normalise_label(cnn_label, "CNN label"), _normalise_label(criteria_label, "criteria label"))
    return _SERO_TYPE_TABLE.get(key, UNDETERMINED)


def add_sero_type(
    df: pd.DataFrame,
    cnn_col: str = "sero_label",
    criteria_col: str = "criteria_label",
    out_col: str = "sero_type",
) -> pd.DataFrame:
    """A copy of ``df`` with ``out_col`` = :func:`sero_type` of the two label columns, row by row."""
    if not isinstance(df, pd.DataFrame):
        raise ParameterError(f"df must be a pandas DataFrame (e.g. from criteria_classify), not {df!r:.80}.")
    for col in (cnn_col, criteria_col):
        if col not in df.columns:
            raise DataError(
                f"the table has no column {col!r}"
                + (" (run criteria_classify first)" if col == criteria_col else "")
                + f"; columns are: {', '.join(map(str, df.columns))}."
            )
    cnn = np.array([_normalise_label(v, "CNN label") for v in df[cnn_col].tolist()], dtype=object)
    crit = np.array([_normalise_label(v, "criteria label") for v in df[criteria_col].tolist()], dtype=object)
    conditions = [(cnn == a) & (crit == b) for a, b in _SERO_TYPE_TABLE]
    out = df.copy()
    out[out_col] = np.select(conditions, list(_SERO_TYPE_TABLE.values()), default=UNDETERMINED)
    return out
