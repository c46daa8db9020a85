"""Neo in, Neo out: annotate SpikeTrains with the serotonergic result, and build analyzers from Neo objects.

* :func:`annotate_spiketrains` takes Neo SpikeTrains carrying 160-sample waveforms at 40 kHz (or a Neo
  Block read from an .abf, whose current signals are detected first) and returns them annotated with
  ``sero_label`` and ``sero_probability`` (plus the interval and spike count), and the per-spike
  probability as the array annotation ``sero_p_ser``: ready for Elephant.
* :func:`recording_from_neo` and :func:`analyzer_from_neo` go the other way: a Neo Block (or its
  AnalogSignals, plus SpikeTrains if you have them) becomes the SortingAnalyzer the extension runs on.
"""

from __future__ import annotations

import numpy as np

from .analyzers import create_analyzer, recording_to_analyzer
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
from .decision import UNIT_COLUMN_DESCRIPTIONS, DecisionParams, action_current_quality, decide_units
from .detection import recording_to_snippets
from .errors import ChannelError, SamplingRateError, SeroError, SnippetError
from .features import criteria_classify, features_table
from .model import load_model
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
    signals (every current channel, or the one named by ``channel``)."""
    import spikeinterface.preprocessing as spre
    from spikeinterface.core import NumpyRecording

    traces, fs, ids = [], None, None
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
        fs = float(sigs[0][0].sampling_rate.rescale("Hz").magnitude)
        ids = [i for _, _, i, _ in sigs]
    if fs < MIN_SAMPLING_FREQUENCY and not allow_low_rate:
        raise SamplingRateError(
            f"The Neo signals run at {fs:g} Hz, below {MIN_SAMPLING_FREQUENCY:g} Hz; pass "
            "allow_low_rate=True to upsample anyway (approximate shapes)."
        )
    rec = NumpyRecording(traces, fs, channel_ids=np.array(ids))
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
        t0 = float(block.segments[s].t_start.rescale("s").magnitude)
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
    **detection_kwargs,
):
    """Annotate Neo SpikeTrains with the serotonergic result of their cell.

    ``spiketrains``: a list of ``neo.SpikeTrain`` whose ``waveforms`` are (n, 1, 160) (or (n, 160)) at
    40 kHz with the trigger at 1 ms (``left_sweep``), or a ``neo.Block`` read from an .abf (its current
    signals are detected first, and the new SpikeTrains are attached to its segments). SpikeTrains of one
    cell (same ``cell_id`` annotation, or same name) are classified together.

    Each SpikeTrain gets the unit columns of the NWB file as annotations, each under a ``sero_`` name
    (``sero_label``, ``sero_probability`` with ``sero_probability_low`` / ``_high``, ``sero_reliable``,
    ``sero_quality``, ``sero_type``, ``sero_domain``, ``sero_criteria_label``, ``sero_n_spikes`` of the cell,
    ``sero_firing_rate_hz``, ``sero_cv_isi``, ``sero_lv``, ``sero_udi_ms`` ...), ``sero_model_is_demo`` and
    the array annotation ``sero_p_ser`` (per spike), all from
    :func:`spikeinterface_sero.decision.decide_units`. Returns the list of SpikeTrains.
    """
    import neo

    polarity = "negative"
    if isinstance(spiketrains, neo.Block):
        block = spiketrains
        rec = recording_from_neo(block, channel)
        sn = recording_to_snippets(rec, **detection_kwargs)
        polarity = sn.detection.get("polarity", "negative")  # the model sees negative-going spikes
        spiketrains = spiketrains_from_snippets(sn, block)
    spiketrains = list(spiketrains)
    if not spiketrains:
        raise SeroError("No SpikeTrains to annotate.")
    waves, owners = [], []
    for i, st in enumerate(spiketrains):
        if st.waveforms is None or len(st) == 0:
            waves.append(np.zeros((0, SNIPPET_LENGTH), np.float32))
            owners.append(np.zeros(0, np.int64))
            continue
        w = np.asarray(st.waveforms.rescale("pA").magnitude if hasattr(st.waveforms, "rescale") else st.waveforms)
        w = w[:, 0, :] if w.ndim == 3 else w
        rate = float(st.sampling_rate.rescale("Hz").magnitude)
        left = float(st.left_sweep.rescale("s").magnitude) if st.left_sweep is not None else None
        if (
            w.shape[1] != SNIPPET_LENGTH
            or not is_paper_rate(rate)
            or (left is not None and abs(left * SAMPLING_FREQUENCY - NBEFORE) > 0.5)
        ):
            raise SnippetError(
                f"SpikeTrain {st.name or i}: waveforms are {w.shape[1]} samples at {rate:g} Hz (left_sweep "
                f"{left}); the model needs 160 samples at 40 kHz with the trigger at 1 ms. Detect from the "
                "signal instead: annotate_spiketrains(neo_block)."
            )
        waves.append(w.astype(np.float32))
        owners.append(np.full(len(w), i))
    waveforms = np.concatenate(waves)
    owner = np.concatenate(owners)
    if polarity == "positive":
        waveforms = -waveforms
    cell_of = [str(st.annotations.get("cell_id", st.name or i)) for i, st in enumerate(spiketrains)]
    cells = list(dict.fromkeys(cell_of))
    spike_cell = np.array([cells.index(cell_of[i]) for i in owner], dtype=np.int64)
    trains_by_cell = {cell: [st for i, st in enumerate(spiketrains) if cell_of[i] == cell] for cell in cells}
    snippets_by_cell = {cell: waveforms[spike_cell == j] for j, cell in enumerate(cells)}
    features = criteria_classify(features_table(trains_by_cell, snippets_by_cell))
    ensemble = load_model(model_folder, trust=trust_model)
    outputs = ensemble.predict_members(waveforms) if len(waveforms) else np.zeros((0, len(ensemble.kernels), 2))
    isis = [
        np.concatenate([np.diff(np.sort(st.times.rescale("s").magnitude)) for st in trains_by_cell[cell]] or [[]])
        for cell in cells
    ]
    quality = action_current_quality(
        waveforms,
        spike_cell,
        cells,
        firing_rate_hz=features.reindex(cells)["firing_rate_hz"].to_numpy(dtype=float),
        isis_s=isis,
        training_data=ensemble.info.get("training_data") or None,
    )
    table, spike_p = decide_units(
        outputs,
        spike_cell,
        cells,
        params=DecisionParams(n_boot=n_boot, seed=seed),
        features=features,
        quality=quality,
        calibration=ensemble.info.get("calibration") or None,
    )
    for i, st in enumerate(spiketrains):
        row = table.loc[cell_of[i]]
        # the unit columns of the NWB file, each under a sero_ name (Neo's annotations are shared by packages)
        st.annotate(
            **{
                (column if column.startswith("sero_") else f"sero_{column}"): _annotation_value(column, row[column])
                for column in UNIT_COLUMN_DESCRIPTIONS
                if column in row.index
            },
            sero_model_is_demo=bool(ensemble.is_demo),
        )
        st.array_annotate(sero_p_ser=np.asarray(spike_p[owner == i], dtype=np.float64))
    return spiketrains


def _annotation_value(column: str, value):
    """A unit-table value as a Neo annotation: the flag as bool, counts as int, text as text, else float."""
    if column == "sero_reliable":
        return bool(value)
    if column == "n_spikes":
        return int(value)
    if isinstance(value, str):
        return value
    return float(value)
