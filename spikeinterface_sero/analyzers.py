"""Analyzer building: detected triggers as a SpikeInterface Sorting (one unit per cell) and the
SortingAnalyzer whose ``waveforms`` (each unit on its own channel) the ``serotonergic`` extension classifies.
"""

from __future__ import annotations

import numpy as np

from .arguments import check_choice, check_flag, check_number, check_path
from .constants import DEFAULT_THRESHOLD_PA, MS_AFTER, MS_BEFORE, NAFTER, NBEFORE, is_paper_rate
from .detection import (
    check_seed,
    checked_detection,
    detect_triggers,
    detection_arguments,
    n_cell_channels,
    recording_stem,
    waveform_limit,
)
from .errors import ParameterError, SnippetError
from .io import check_recording, read_abf
from .snippet_formats import Snippets, cell_id, check_cap
from .upstream import keep_trailing_empty_segments, main_channel_indices

__all__ = [
    "POLARITY_PROPERTY",
    "snippets_to_sorting",
    "own_channel_sparsity",
    "create_analyzer",
    "recording_to_analyzer",
    "abf_to_analyzer",
    "check_analyzer_waveforms",
    "main_channel_waveforms",
    "snippets_from_analyzer",
]

#: sorting property: the polarity the detection used ("negative" or "positive"), read by the extension
POLARITY_PROPERTY = "spike_polarity"


def snippets_to_sorting(snippets: Snippets, recording):
    """A SpikeInterface sorting with one unit per channel (cell), spikes at the triggers (all of them)."""
    from spikeinterface.core import NumpySorting

    if not isinstance(snippets, Snippets):
        raise ParameterError(f"snippets must be a Snippets (e.g. from recording_to_snippets), not {snippets!r:.80}.")
    check_recording(recording)
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
    stem = recording_stem(recording)
    cells = [cell_id(stem, u, n_cell_channels(recording)) for u in unit_ids]
    sorting.set_property("cell_id", cells)
    sorting.set_property("n_dropped_edge", np.array([int(snippets.n_dropped_edge.get(c, 0)) for c in cells]))
    # each cell is on its own channel: SpikeInterface's main channel, exactly (no estimate needed)
    sorting.set_property("main_channel_id", np.array(recording.channel_ids))
    polarity = snippets.detection.get("polarity", "negative")
    sorting.set_property(POLARITY_PROPERTY, np.array([polarity] * len(unit_ids)))
    return sorting


def own_channel_sparsity(sorting, recording):
    """SpikeInterface's ChannelSparsity in which each unit has its own channel only (the ``main_channel_id``
    property; the channel of the same id without it): the waveforms then take (n, 160, 1) per unit
    whatever the number of channels, where dense ones take (n, 160, n_channels), memory quadratic in the
    channels when each channel is a cell.

    Parameters
    ----------
    sorting : BaseSorting
        One unit per cell.
    recording : BaseRecording
        The recording the units were detected on.

    Returns
    -------
    ChannelSparsity or None
        None when a unit has no channel of its own (a sorting from elsewhere, without ``main_channel_id``
        and with unit ids that are not channel ids): such an analyzer stays dense.
    """
    from spikeinterface.core import ChannelSparsity

    channel_ids = [str(c) for c in recording.channel_ids]
    if "main_channel_id" in sorting.get_property_keys():
        main = [str(c) for c in sorting.get_property("main_channel_id")]
    else:
        main = [str(u) for u in sorting.unit_ids]
    if not all(c in channel_ids for c in main):
        return None
    mask = np.zeros((len(main), len(channel_ids)), dtype=bool)
    mask[np.arange(len(main)), [channel_ids.index(c) for c in main]] = True
    return ChannelSparsity(mask, sorting.unit_ids, recording.channel_ids)


_FORMATS = ("memory", "binary_folder", "zarr")


def storage_arguments(format, folder, overwrite) -> None:
    """Raise ParameterError unless ``format``, ``folder`` and ``overwrite`` can make a SortingAnalyzer."""
    check_choice(format, "format", _FORMATS)
    if folder is not None:
        check_path(folder, "folder")
    elif format != "memory":
        raise ParameterError(f"format={format!r} needs folder=<where the analyzer goes>.")
    check_flag(overwrite, "overwrite")


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
    from spikeinterface.core import BaseSorting, create_sorting_analyzer

    if not isinstance(sorting, BaseSorting):
        raise ParameterError(f"sorting must be a SpikeInterface sorting, not {sorting!r:.80}.")
    check_recording(recording)
    storage_arguments(format, folder, overwrite)
    check_number(n_jobs, "n_jobs")  # SpikeInterface: a count, -1 for all cores, or a fraction of them
    progress_bar = check_flag(progress_bar, "progress_bar")
    if not is_paper_rate(recording.sampling_frequency):
        raise SnippetError(
            f"The recording runs at {recording.sampling_frequency:g} Hz; the analyzer needs 40 kHz "
            "so that ms_before=1, ms_after=3 give 40 + 120 samples. Use read_abf (it resamples)."
        )
    check_cap(max_spikes_per_cell)
    check_seed(seed)
    job_kwargs = dict(n_jobs=n_jobs, progress_bar=progress_bar)
    sparsity = own_channel_sparsity(sorting, recording)
    analyzer = create_sorting_analyzer(
        sorting,
        recording,
        format=format,
        folder=folder,
        sparsity=sparsity,
        sparse=sparsity is not None,
        return_in_uV=True,
        overwrite=overwrite,
        job_kwargs=job_kwargs,
    )
    keep_trailing_empty_segments(analyzer.sorting, recording.get_num_segments())  # its copy drops them
    # the waveforms of at most the cap per cell (MAX_WAVEFORMS_PER_CELL without one): memory is bounded whatever
    # the number of spikes; without a cap and under the ceiling, method "all" (the same spikes, no random draw)
    cap = waveform_limit(max_spikes_per_cell)
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
    params = checked_detection(recording, None, detection_kwargs, max_spikes_per_cell, seed)
    storage_arguments(format, folder, overwrite)
    snips = detect_triggers(  # the triggers only: SpikeInterface cuts the waveforms of the spikes random_spikes keeps
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
    detection_arguments(None, dict(threshold=threshold, **detection_kwargs), max_spikes_per_cell, seed)
    storage_arguments(format, folder, overwrite)
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
    """Raise SnippetError unless the analyzer's waveforms are 160 samples at 40 kHz with the trigger at 40.

    Parameters
    ----------
    analyzer : SortingAnalyzer
        The analyzer.
    """
    check_analyzer(analyzer)
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
    (``analyzer.get_main_channels()``), for dense and sparse analyzers alike, in ``random_spikes`` order.

    Parameters
    ----------
    analyzer : SortingAnalyzer
        With ``random_spikes`` and ``waveforms``.

    Returns
    -------
    numpy.ndarray
    """
    check_analyzer(analyzer)
    waveforms = analyzer.get_extension("waveforms").get_data()
    spikes = analyzer.sorting.to_spike_vector()[analyzer.get_extension("random_spikes").get_data()]
    main = main_channel_indices(analyzer)
    column = main.copy()
    if analyzer.is_sparse():  # sparse waveforms hold the unit's own channels, in the sparsity's order
        channels = analyzer.sparsity.unit_id_to_channel_indices
        outside = [u for i, u in enumerate(analyzer.unit_ids) if main[i] not in channels[u]]
        if outside:
            raise SnippetError(
                f"The waveforms of unit(s) {', '.join(str(u) for u in outside)} do not hold their main channel "
                "(e.g. a soft merge of units on different channels): recompute the waveforms, or merge such "
                "units with merging_mode='hard'."
            )
        column = np.array(
            [int(np.flatnonzero(channels[u] == main[i])[0]) for i, u in enumerate(analyzer.unit_ids)], dtype=np.int64
        )
    if spikes.size == 0:
        return np.zeros((0, waveforms.shape[1]), np.float32)
    return np.asarray(waveforms[np.arange(spikes.size), :, column[spikes["unit_index"]]], dtype=np.float32)


def check_analyzer(value, name: str = "analyzer"):
    """``value`` when it is a SpikeInterface SortingAnalyzer; ParameterError naming ``name`` if not."""
    from spikeinterface.core import SortingAnalyzer

    if isinstance(value, SortingAnalyzer):
        return value
    raise ParameterError(
        f"{name} must be a SpikeInterface SortingAnalyzer (e.g. from abf_to_analyzer), not {value!r:.80}."
    )


def _known_units(unit_ids, all_units: list) -> list:
    """``unit_ids`` as a list when every one is a unit of the analyzer; ParameterError if not."""
    wanted = [unit_ids] if isinstance(unit_ids, (str, int)) else list(unit_ids)
    unknown = [u for u in wanted if u not in all_units]
    if unknown:
        raise ParameterError(f"unit_ids {unknown!r:.80} are not units of the analyzer (its units: {all_units!r:.200}).")
    return wanted


def snippets_from_analyzer(analyzer, unit_ids=None) -> Snippets:
    """The analyzer's ``waveforms`` as :class:`Snippets`, each unit on its main channel (dense or sparse)."""
    check_analyzer_waveforms(analyzer)
    spikes = analyzer.sorting.to_spike_vector()[analyzer.get_extension("random_spikes").get_data()]
    all_units = list(analyzer.unit_ids)
    unit_ids = all_units if unit_ids is None else _known_units(unit_ids, all_units)
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
