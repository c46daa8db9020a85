"""A SortingAnalyzer without a recording whose ``waveforms`` are given snippets
(:func:`analyzer_from_snippets`, importable from :mod:`spikeinterface_sero.extension`): the authors'
per-spike CSV files and ``.npz`` files go through the ``serotonergic`` extension as the snippets of an .abf
file do.
"""

from __future__ import annotations

import numpy as np

from .analyzers import POLARITY_PROPERTY
from .constants import MS_AFTER, MS_BEFORE, POLARITIES, SAMPLING_FREQUENCY, SNIPPET_LENGTH
from .errors import SeroError

__all__ = ["analyzer_from_snippets", "LENGTH_UNKNOWN"]


#: sorting annotation of :func:`analyzer_from_snippets`: how long the recording was is not known
LENGTH_UNKNOWN = "sero_recording_length_unknown"


def analyzer_from_snippets(snippets, *, polarity: str = "negative", max_spikes_per_cell=None, seed: int = 0):
    """A SortingAnalyzer without a recording whose ``waveforms`` are ``snippets``, ready for
    ``analyzer.compute("serotonergic")``.

    The authors' per-spike CSV files and ``.npz`` snippet files come without their recording. This analyzer lets
    them go through the ``serotonergic`` extension
    (:func:`~spikeinterface_sero.extension.compute_unit_decisions`, hence
    :func:`~spikeinterface_sero.decision.decide_units`, the quality checks and the tables) exactly as the
    snippets of an .abf file do. It fills SpikeInterface's ``random_spikes`` and ``waveforms`` extensions by
    hand, as SpikeInterface does itself when it reads an old WaveformExtractor folder.

    Parameters
    ----------
    snippets : Snippets
        (n, 160) pA at 40 kHz with the trigger at index 40, with ``trigger_samples``, ``segment_index`` and
        ``cell_ids``. Each cell becomes a unit (unit id = cell id), all on one channel.
    polarity : "negative" | "positive", default: "negative"
        The direction of the spikes in the snippets (recorded as the ``spike_polarity`` property, which the
        extension reads: "positive" snippets are flipped for the model).
    max_spikes_per_cell : int or None, default: None
        Classify at most this many spikes per cell (SpikeInterface's ``random_spikes``, seeded); None: all.
    seed : int, default: 0
        Seed of the cap.

    Returns
    -------
    SortingAnalyzer
        In memory, without a recording. Spike times are the trigger samples. When the snippets do not say
        how long each segment was (``segment_durations_s`` empty, as for CSV files), a segment is taken to end
        with its last window and the firing rate is NaN; the CV and LV of the intervals are computed.
    """
    from spikeinterface.core import NumpyRecording, NumpySorting
    from spikeinterface.core.analyzer_extension_core import ComputeRandomSpikes, ComputeWaveforms
    from spikeinterface.core.recording_tools import get_rec_attributes
    from spikeinterface.core.sortinganalyzer import SortingAnalyzer

    if polarity not in POLARITIES:
        raise SeroError(f"polarity must be 'negative' or 'positive', not {polarity!r}.")
    waveforms = np.asarray(snippets.waveforms, dtype=np.float32)
    if waveforms.ndim != 2 or waveforms.shape[1] != SNIPPET_LENGTH or not len(waveforms):
        raise SeroError(f"snippets must be a non-empty (n, {SNIPPET_LENGTH}) array, not of shape {waveforms.shape}.")
    if abs(float(snippets.sampling_frequency) - SAMPLING_FREQUENCY) > 0.5:
        raise SeroError(f"snippets must be at 40 kHz, not {snippets.sampling_frequency:g} Hz.")
    if max_spikes_per_cell is not None:
        snippets = snippets.capped(max_spikes_per_cell, seed)
        waveforms = np.asarray(snippets.waveforms, dtype=np.float32)
    samples = np.asarray(snippets.trigger_samples, dtype=np.int64)
    segments = np.asarray(snippets.segment_index, dtype=np.int64)
    cells, unit_index = snippets.cell_index()
    unit_ids = np.array(cells)
    n_segments = max(int(segments.max()) + 1, len(snippets.segment_durations_s))
    durations = list(snippets.segment_durations_s)
    num_samples = snippets.segment_samples()
    # the sorting holds every detected spike (the firing statistics), the waveforms only the cut ones
    every = _every_spike(snippets, cells, samples, segments, unit_index)
    spikes = np.zeros(
        every[0].size, dtype=[("sample_index", "int64"), ("unit_index", "int64"), ("segment_index", "int64")]
    )
    order = np.lexsort((every[2], every[0], every[1]))  # SpikeInterface's spike-vector order
    spikes["sample_index"], spikes["segment_index"], spikes["unit_index"] = (part[order] for part in every)
    chosen, cut_order = _places(spikes, samples, segments, unit_index, len(unit_ids))
    sorting = NumpySorting(spikes, SAMPLING_FREQUENCY, unit_ids)
    sorting.set_property("cell_id", unit_ids)
    sorting.set_property("main_channel_id", np.array(["snippets"] * len(unit_ids)))
    sorting.set_property(POLARITY_PROPERTY, np.array([polarity] * len(unit_ids)))
    if snippets.n_dropped_edge:
        sorting.set_property("n_dropped_edge", np.array([int(snippets.n_dropped_edge.get(c, 0)) for c in unit_ids]))
    placeholder = NumpyRecording(
        [np.zeros((1, 1), np.float32)] * n_segments, SAMPLING_FREQUENCY, channel_ids=["snippets"]
    )
    placeholder.set_property("physical_unit", ["pA"])
    placeholder.set_dummy_probe_from_locations(np.zeros((1, 2)))
    attributes = get_rec_attributes(placeholder)
    attributes.update(num_samples=num_samples, probegroup=placeholder.get_probegroup())
    analyzer = SortingAnalyzer.create_memory(
        sorting, None, None, return_in_uV=True, peak_sign="neg", peak_mode="extremum", rec_attributes=attributes
    )
    if not durations:
        analyzer.sorting.annotate(**{LENGTH_UNKNOWN: True})
    # both extensions filled by hand: random_spikes = the spikes that have a waveform
    random_spikes = ComputeRandomSpikes(analyzer)
    if chosen.size == spikes.size:
        random_spikes.params = dict(method="all", max_spikes_per_unit=500, margin_size=None, seed=None)
    else:
        largest = int(np.bincount(unit_index, minlength=len(unit_ids)).max())
        random_spikes.params = dict(method="uniform", max_spikes_per_unit=largest, margin_size=None, seed=seed)
    random_spikes.data["random_spikes_indices"] = chosen
    random_spikes.run_info = dict(run_completed=True, runtime_s=0.0)
    analyzer.extensions["random_spikes"] = random_spikes
    extension = ComputeWaveforms(analyzer)
    extension.params = dict(
        ms_before=MS_BEFORE, ms_after=MS_AFTER, dtype="float32"
    )  # its _set_params reads the recording
    extension.data["waveforms"] = waveforms[cut_order][:, :, None]
    extension.run_info = dict(run_completed=True, runtime_s=0.0)
    analyzer.extensions["waveforms"] = extension
    return analyzer


def _every_spike(snippets, cells, samples, segments, unit_index):
    """(samples, segments, unit indices) of every detected spike: ``snippets.all_*`` (kept before a cap) on
    the snippets' cells, else the cut spikes themselves (also when the two do not fit together)."""
    own = samples, segments, unit_index
    if snippets.all_trigger_samples is None or snippets.all_unit_ids is None or snippets.all_segment_index is None:
        return own
    # the channel of each cell: a channel holding two cells (several files) is ambiguous
    unit_of_spike = np.asarray(snippets.unit_ids).astype(str)
    index_of_unit = dict(zip(unit_of_spike.tolist(), unit_index.tolist()))
    if len(index_of_unit) != len(cells) or len(set(index_of_unit.values())) != len(cells):
        return own
    names, inverse = np.unique(np.asarray(snippets.all_unit_ids).astype(str), return_inverse=True)
    index_of_name = np.array([index_of_unit.get(name, -1) for name in names], dtype=np.int64)
    every_unit = index_of_name[inverse.reshape(-1)]
    known = every_unit >= 0  # spikes of a channel without a cut spike have no cell here
    every = (
        np.asarray(snippets.all_trigger_samples, dtype=np.int64)[known],
        np.asarray(snippets.all_segment_index, dtype=np.int64)[known],
        every_unit[known],
    )
    return every if every[0].size >= samples.size else own


def _places(spikes, samples, segments, unit_index, n_units):
    """The indices in the spike vector ``spikes`` of the cut spikes (sorted, as ``random_spikes`` keeps them)
    and the order of the cut spikes that follows them."""
    span = int(max(spikes["sample_index"].max(initial=0), samples.max(initial=0))) + 1

    def key(segment, sample, unit):
        return (segment * span + sample) * n_units + unit

    vector_keys = key(spikes["segment_index"], spikes["sample_index"], spikes["unit_index"])
    cut_keys = key(segments, samples, unit_index)
    places = np.minimum(np.searchsorted(vector_keys, cut_keys), max(vector_keys.size - 1, 0))
    if vector_keys.size == 0 or not np.array_equal(vector_keys[places], cut_keys):
        raise SeroError(
            "the snippets' spikes are not among their own list of every detected spike (all_trigger_samples); "
            "the snippets file is inconsistent: write it again with `sero snippets`."
        )
    cut_order = np.argsort(places, kind="stable")
    return places[cut_order], cut_order
