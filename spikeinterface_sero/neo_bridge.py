"""Neo in, Neo out: annotate SpikeTrains with the serotonergic result, and build analyzers from Neo objects.

* :func:`annotate_spiketrains` takes Neo SpikeTrains carrying 160-sample waveforms at 40 kHz (or a Neo
  Block read from an .abf, whose current signals are detected first), classifies them through the
  ``serotonergic`` extension and returns them annotated with its unit table (``sero_label``, ``sero_call``,
  ``sero_probability`` ...) and the raw per-spike probability as the array annotation ``sero_p_ser``: ready
  for Elephant. Times are the recording's: sweep ``k`` starts at its segment's ``t_start``.
* :func:`recording_from_neo` and :func:`analyzer_from_neo` go the other way: a Neo Block (or its
  AnalogSignals, plus SpikeTrains if you have them) becomes the SortingAnalyzer the extension runs on.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .analyzers import create_analyzer, main_channel_waveforms, recording_to_analyzer
from .constants import (
    DEFAULT_N_BOOT,
    MIN_SAMPLING_FREQUENCY,
    NAFTER,
    NBEFORE,
    SAMPLING_FREQUENCY,
    SAMPLING_FREQUENCY_TOLERANCE,
    SNIPPET_LENGTH,
    is_paper_rate,
)
from .errors import ChannelError, DemoModelWarning, ParameterError, SamplingRateError, SeroError, SnippetError
from .export import model_name, segment_table, sorting_spike_probabilities, spike_times
from .extension import analyzer_from_snippets
from .schema import BOOLEAN, INTEGER, TEXT, UNIT_SCHEMA, cast_table
from .snippet_formats import Snippets
from .units import current_to_pa, is_current_unit
from .upstream import snap_sampling_frequency

__all__ = ["annotate_spiketrains", "spiketrains_from_snippets", "recording_from_neo", "analyzer_from_neo"]


def _current_signals(segment, channel=None):
    found = []
    for sig in segment.analogsignals:
        unit = sig.units.dimensionality.string
        names = list(sig.array_annotations.get("channel_names", [sig.name] * sig.shape[1]))
        ids = [str(i) for i in sig.array_annotations.get("channel_ids", range(sig.shape[1]))]
        for c in range(sig.shape[1]):
            if channel is not None and str(channel) not in (ids[c], str(names[c]).strip()):
                continue
            if channel is None and not is_current_unit(unit):
                continue
            found.append((sig, c, ids[c], unit))
    return found


def recording_from_neo(block, channel=None, *, allow_low_rate: bool = False):
    """A 40 kHz SpikeInterface recording in pA (one segment per Neo segment) from a Neo Block's current
    signals (every current channel, or the one named by ``channel``), each segment starting at its signals'
    ``t_start``."""
    import spikeinterface.preprocessing as spre
    from spikeinterface.core import NumpyRecording

    traces, starts, fs, ids = [], [], None, None
    for seg in block.segments:
        sigs = _current_signals(seg, channel)
        if not sigs:
            units = sorted({s.units.dimensionality.string for s in seg.analogsignals})
            raise ChannelError(
                f"The Neo block has no current signal{'' if channel is None else f' named {channel!r}'}"
                f" (units present: {', '.join(units) or 'none'}). Pass channel=<id or name>."
            )
        cols = [
            np.asarray(sig[:, c].magnitude, dtype=np.float64)[:, 0] * (current_to_pa(u) or 1.0) for sig, c, _, u in sigs
        ]
        n = min(len(c) for c in cols)
        traces.append(np.stack([c[:n] for c in cols], axis=1).astype(np.float32))
        starts.append(float(sigs[0][0].t_start.rescale("s").magnitude))  # the sweep's own start time
        fs = float(sigs[0][0].sampling_rate.rescale("Hz").magnitude)
        ids = [i for _, _, i, _ in sigs]
    if fs < MIN_SAMPLING_FREQUENCY and not allow_low_rate:
        raise SamplingRateError(
            f"The Neo signals run at {fs:g} Hz, below {MIN_SAMPLING_FREQUENCY:g} Hz; pass "
            "allow_low_rate=True to upsample anyway (approximate shapes)."
        )
    rec = NumpyRecording(traces, fs, t_starts=starts, channel_ids=np.array(ids))
    rec.set_property("physical_unit", ["pA"] * len(ids))
    rec.set_dummy_probe_from_locations(np.c_[np.arange(len(ids)) * 100.0, np.zeros(len(ids))])
    if not is_paper_rate(fs):
        rec = spre.resample(rec, int(SAMPLING_FREQUENCY))
    snap_sampling_frequency(rec, SAMPLING_FREQUENCY, SAMPLING_FREQUENCY_TOLERANCE)
    name = block.file_origin or block.name
    if name:
        from pathlib import Path

        rec.annotate(abf_path=str(Path(str(name))))
    return rec


def analyzer_from_neo(block, channel=None, *, spiketrains=None, allow_low_rate: bool = False, **detection_kwargs):
    """A SortingAnalyzer from a Neo Block: its current signals become the recording; the spikes are the
    given SpikeTrains (one list per segment, or a flat list whose ``segment`` is set), or, without them,
    the paper's threshold crossings (``detection_kwargs`` as in :func:`recording_to_snippets`)."""
    from spikeinterface.core import NumpySorting

    rec = recording_from_neo(block, channel, allow_low_rate=allow_low_rate)
    if spiketrains is None:
        return recording_to_analyzer(rec, **detection_kwargs)
    per_seg = [[] for _ in range(rec.get_num_segments())]
    for st in spiketrains:
        seg_index = block.segments.index(st.segment) if st.segment in block.segments else 0
        per_seg[seg_index].append(st)
    samples, labels = [], []
    unit_ids = list(dict.fromkeys(str(st.annotations.get("cell_id", st.name or "unit")) for st in spiketrains))
    for s, sts in enumerate(per_seg):
        t0 = rec.get_start_time(s)
        samp = [np.round((st.times.rescale("s").magnitude - t0) * SAMPLING_FREQUENCY).astype(np.int64) for st in sts]
        lab = [np.full(len(x), str(st.annotations.get("cell_id", st.name or "unit"))) for x, st in zip(samp, sts)]
        samples.append(np.concatenate(samp) if samp else np.zeros(0, np.int64))
        labels.append(np.concatenate(lab) if lab else np.zeros(0, str))
    sorting = NumpySorting.from_samples_and_labels(samples, labels, SAMPLING_FREQUENCY, unit_ids=np.array(unit_ids))
    return create_analyzer(sorting, rec)


def spiketrains_from_snippets(snippets, block=None):
    """Neo SpikeTrains (one per cell and segment) carrying the snippets as waveforms ((n, 1, 160) pA,
    ``left_sweep`` = 1 ms); attached to ``block``'s segments when a block is given."""
    import neo
    import quantities as pq

    fs = snippets.sampling_frequency
    out = []
    n_seg = max(len(snippets.segment_durations_s), int(snippets.segment_index.max()) + 1 if len(snippets) else 1)
    t_starts = list(snippets.segment_t_starts_s) or [0.0] * n_seg
    durations = (
        list(snippets.segment_durations_s)
        or [(snippets.trigger_samples.max() + NAFTER) / fs if len(snippets) else 0.0] * n_seg
    )
    for cell in dict.fromkeys(list(snippets.n_detected) or snippets.cells):
        for s in range(n_seg):
            m = (snippets.cell_ids == cell) & (snippets.segment_index == s)
            times = snippets.trigger_samples[m] / fs + t_starts[s]
            st = neo.SpikeTrain(
                times * pq.s,
                t_start=t_starts[s] * pq.s,
                t_stop=(t_starts[s] + durations[s]) * pq.s,
                waveforms=snippets.waveforms[m][:, None, :] * pq.pA,
                sampling_rate=fs * pq.Hz,
                left_sweep=(NBEFORE / fs) * pq.s,
                name=str(cell),
                cell_id=str(cell),
            )
            if block is not None and s < len(block.segments):
                block.segments[s].spiketrains.append(st)
                st.segment = block.segments[s]
            out.append(st)
    return out


def annotate_spiketrains(
    spiketrains,
    model_folder=None,
    *,
    trust_model: bool = False,
    channel=None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    params: dict | None = None,
    **detection_kwargs,
):
    """Annotate Neo SpikeTrains with the serotonergic result of their cell, computed by the ``serotonergic``
    extension (the same parameters, checks and rule as ``analyzer.compute("serotonergic", ...)``).

    Parameters
    ----------
    spiketrains : neo.Block or list of neo.SpikeTrain
        A Block read from an .abf file: its current signals become a SpikeInterface recording (each segment at
        its own start time), the paper's threshold crossings are detected, and one new SpikeTrain per cell and
        segment (with its 160-sample waveforms in pA when every spike has one) is attached to the segment. Or
        SpikeTrains whose ``waveforms`` are (n, 1, 160) (or (n, 160)) at 40 kHz with the trigger at 1 ms
        (``left_sweep``); those of one cell (same ``cell_id`` annotation, or same name) are classified together,
        each SpikeTrain's ``segment`` (else its ``t_start``/``t_stop``) telling the sweeps apart.
    model_folder : str or None, default: None
        None: the bundled demonstration model.
    trust_model : bool, default: False
        As the extension's ``trust_model``.
    channel : str, int or None, default: None
        For a Block: the current channel (id or name); None: every current channel.
    n_boot : int, default: 1000
        Bootstrap resamples of the interval.
    seed : int, default: 0
        Seed of the bootstrap.
    params : dict or None, default: None
        Other parameters of the extension (``ci``, ``min_spikes``, ``method`` ...).
    **detection_kwargs
        For a Block, the detection's (``threshold``, ``polarity`` ...); for SpikeTrains only ``polarity``
        ("positive" spikes are flipped for the model).

    Returns
    -------
    list of neo.SpikeTrain
        Each annotated with every column of the extension's unit table (:data:`~spikeinterface_sero.schema.
        UNIT_SCHEMA`), each under a ``sero_`` name (``sero_label``, ``sero_call``, ``sero_probability``,
        ``sero_reliable``, ``sero_unsure_reasons``, ``sero_manual_label``, ``sero_n_spikes`` of the cell ...),
        ``cell_id``, ``sero_model`` and ``sero_model_is_demo``, and the array annotation ``sero_p_ser``: the raw
        per-spike ensemble P(SER) (not calibrated; NaN for a spike that was not classified).
    """
    import neo

    compute = dict(params or {}, model_folder=model_folder, trust_model=trust_model, n_boot=n_boot, seed=seed)
    if isinstance(spiketrains, neo.Block):
        block = spiketrains
        analyzer = recording_to_analyzer(recording_from_neo(block, channel), **detection_kwargs)
        _compute(analyzer, compute)
        spiketrains, spike_rows, units = _spiketrains_from_analyzer(analyzer, block)
    else:
        spiketrains = list(spiketrains)
        unknown = sorted(set(detection_kwargs) - {"polarity"})
        if unknown:
            raise ParameterError(
                f"SpikeTrains are classified as they are: {', '.join(unknown)} only apply to a neo.Block (the "
                "detection's options); leave them out, or pass polarity= alone."
            )
        polarity = detection_kwargs.get("polarity", "negative")
        analyzer, spike_rows, units = _analyzer_from_spiketrains(spiketrains, polarity)
        _compute(analyzer, compute)
    _annotate(analyzer, spiketrains, spike_rows, units)
    return spiketrains


def _compute(analyzer, params: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DemoModelWarning)  # said by the sero_model_is_demo annotation
        analyzer.compute("serotonergic", **params, progress_bar=False)


def _spiketrains_from_analyzer(analyzer, block):
    """One SpikeTrain per unit and segment (every spike of the sorting, at the recording's times), attached to
    ``block``'s segments, and each train's rows of the spike vector."""
    import neo
    import quantities as pq

    segments = segment_table(analyzer)
    vector = analyzer.sorting.to_spike_vector()
    classified = analyzer.get_extension("random_spikes").get_data()
    waveform_row = np.full(vector.size, -1, dtype=np.int64)
    waveform_row[classified] = np.arange(classified.size)
    waveforms = main_channel_waveforms(analyzer)
    cells = analyzer.sorting.get_property("cell_id")
    fs = float(analyzer.sampling_frequency)
    trains, rows, units = [], [], []
    for u, unit_id in enumerate(analyzer.unit_ids):
        cell = str(cells[u]) if cells is not None else str(unit_id)
        for k, segment in segments.iterrows():
            mine = np.flatnonzero((vector["unit_index"] == u) & (vector["segment_index"] == k))
            start, duration = float(segment["t_start_s"]), float(segment["duration_s"])
            have = waveform_row[mine]
            train = neo.SpikeTrain(
                spike_times(analyzer, unit_id, int(k), segments=segments) * pq.s,
                t_start=start * pq.s,
                t_stop=(start + duration) * pq.s,
                waveforms=waveforms[have][:, None, :] * pq.pA if (have >= 0).all() and have.size else None,
                sampling_rate=fs * pq.Hz,
                left_sweep=(NBEFORE / fs) * pq.s,
                name=cell,
                cell_id=cell,
            )
            if k < len(block.segments):
                block.segments[k].spiketrains.append(train)
                train.segment = block.segments[k]
            trains.append(train)
            rows.append(vector[mine])
            units.append(unit_id)
    return trains, rows, units


def _waveforms_of(train, i: int) -> np.ndarray:
    """(n, 160) pA of a SpikeTrain, checked to be in the model's format."""
    if len(train) and train.waveforms is None:
        raise SnippetError(
            f"SpikeTrain {train.name or i} has no waveforms; the model needs each spike's 160 samples at 40 kHz. "
            "Detect from the signal instead: annotate_spiketrains(neo_block)."
        )
    if not len(train):
        return np.zeros((0, SNIPPET_LENGTH), np.float32)
    w = train.waveforms
    w = np.asarray(w.rescale("pA").magnitude if hasattr(w, "rescale") else w)
    w = w[:, 0, :] if w.ndim == 3 else w
    rate = float(train.sampling_rate.rescale("Hz").magnitude)
    left = float(train.left_sweep.rescale("s").magnitude) if train.left_sweep is not None else None
    if (
        w.shape[1] != SNIPPET_LENGTH
        or not is_paper_rate(rate)
        or (left is not None and abs(left * SAMPLING_FREQUENCY - NBEFORE) > 0.5)
    ):
        raise SnippetError(
            f"SpikeTrain {train.name or i}: waveforms are {w.shape[1]} samples at {rate:g} Hz (left_sweep "
            f"{left}); the model needs 160 samples at 40 kHz with the trigger at 1 ms. Detect from the "
            "signal instead: annotate_spiketrains(neo_block)."
        )
    return w.astype(np.float32)


def _segments_of(spiketrains) -> tuple[list[int], list[float], list[float]]:
    """The segment index of each SpikeTrain (by its Neo segment, else its start and stop), with each
    segment's start and duration in seconds, in the order of their starts."""
    spans = [(float(st.t_start.rescale("s").magnitude), float(st.t_stop.rescale("s").magnitude)) for st in spiketrains]
    keys = [id(st.segment) if st.segment is not None else span for st, span in zip(spiketrains, spans)]
    first = {}
    for key, span in zip(keys, spans):
        first.setdefault(key, span)
    order = sorted(first, key=lambda key: first[key])
    position = {key: j for j, key in enumerate(order)}
    return (
        [position[key] for key in keys],
        [first[key][0] for key in order],
        [first[key][1] - first[key][0] for key in order],
    )


def _analyzer_from_spiketrains(spiketrains, polarity: str):
    """A SortingAnalyzer without a recording (:func:`~spikeinterface_sero.extension.analyzer_from_snippets`)
    holding the SpikeTrains' spikes and waveforms, and each train's rows (segment, sample, unit)."""
    if not spiketrains:
        raise SeroError("No SpikeTrains to annotate.")
    waves = [_waveforms_of(st, i) for i, st in enumerate(spiketrains)]
    segment_of, starts, durations = _segments_of(spiketrains)
    cell_of = [str(st.annotations.get("cell_id", st.name or i)) for i, st in enumerate(spiketrains)]
    samples = [
        np.round((st.times.rescale("s").magnitude - starts[segment_of[i]]) * SAMPLING_FREQUENCY).astype(np.int64)
        for i, st in enumerate(spiketrains)
    ]
    if not sum(len(s) for s in samples):
        raise SeroError("The SpikeTrains hold no spike: nothing to classify.")
    n = [len(s) for s in samples]
    snippets = Snippets(
        waveforms=np.concatenate(waves),
        trigger_samples=np.concatenate(samples),
        segment_index=np.repeat(segment_of, n).astype(np.int64),
        unit_ids=np.repeat(cell_of, n).astype(str),
        cell_ids=np.repeat(cell_of, n).astype(str),
        segment_durations_s=durations,
        segment_t_starts_s=starts,
    )
    analyzer = analyzer_from_snippets(snippets, polarity=polarity)
    position = {str(u): j for j, u in enumerate(analyzer.unit_ids)}
    rows = []
    for i in range(len(spiketrains)):
        row = np.zeros(n[i], dtype=[("sample_index", "int64"), ("unit_index", "int64"), ("segment_index", "int64")])
        row["sample_index"], row["segment_index"] = samples[i], segment_of[i]
        row["unit_index"] = position.get(cell_of[i], -1)
        rows.append(row)
    units = [analyzer.unit_ids[position[cell]] if cell in position else None for cell in cell_of]
    return analyzer, rows, units


#: the unit-table row of a cell without any spike
_UNDETERMINED = cast_table(pd.DataFrame([{"sero_label": "undetermined", "sero_call": "undetermined"}])).iloc[0]


def _annotate(analyzer, spiketrains, spike_rows, units) -> None:
    """Each SpikeTrain annotated from its unit's row of the extension's table (None: a cell without spikes),
    and its spikes' raw P(SER)."""
    extension = analyzer.get_extension("serotonergic")
    table = extension.get_data()
    provenance = extension.get_data("provenance")
    model = model_name(extension.params, provenance)
    for train, rows, unit_id in zip(spiketrains, spike_rows, units):
        row = table.loc[unit_id] if unit_id is not None else _UNDETERMINED
        train.annotate(
            **{_annotation_name(c): _annotation_value(UNIT_SCHEMA[c].kind, row[c]) for c in UNIT_SCHEMA},
            cell_id=str(train.annotations.get("cell_id", train.name if unit_id is None else unit_id)),
            sero_model=model,
            sero_model_is_demo=bool(provenance.get("model_is_demo", False)),
            sero_p_ser_scale="raw per-spike ensemble output (not calibrated)",
        )
        train.array_annotate(sero_p_ser=sorting_spike_probabilities(analyzer, rows))


def _annotation_name(column: str) -> str:
    """A unit-table column under a ``sero_`` name (Neo's annotations are shared by packages)."""
    return column if column.startswith("sero_") else f"sero_{column}"


def _annotation_value(kind: str, value):
    """A unit-table value as a Neo annotation, by its schema kind."""
    if kind == BOOLEAN:
        return bool(value)
    if kind == INTEGER:
        return int(value)
    if kind == TEXT:
        return str(value)
    return float(value)
