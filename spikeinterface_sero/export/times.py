"""Spike times in the recording's own time base, and the per-spike P(SER) beside every spike of the sorting.

Every exporter (NWB, Phy, Neo) reads its times here: a sweep of an episodic file starts where the recording
says (Neo's segment ``t_start``: 0, 5, 10 s ...), not at 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..extension import get_serotonergic_extension

__all__ = ["segment_table", "spike_times", "sorting_spike_probabilities"]


def segment_table(analyzer) -> pd.DataFrame:
    """Each segment (sweep) of the analyzed recording: ``segment_index``, ``t_start_s``, ``duration_s``, as the
    extension stored them at compute time (``get_data("segments")``: the recording's own start times, so a
    reload without the recording gives the same).

    Parameters
    ----------
    analyzer : SortingAnalyzer
        With the ``serotonergic`` extension.

    Returns
    -------
    pandas.DataFrame
        One row per segment.
    """
    segments = get_serotonergic_extension(analyzer).get_data("segments")
    return segments.reset_index(drop=True)[["segment_index", "t_start_s", "duration_s"]]


def spike_times(analyzer, unit_id, segment_index: int | None = None, *, segments=None) -> np.ndarray:
    """Every spike of ``unit_id`` in the sorting (not only the classified ones), in seconds of the recording's
    time base: the segment's start plus sample / sampling frequency.

    Parameters
    ----------
    analyzer : SortingAnalyzer
        With the ``serotonergic`` extension.
    unit_id : str or int
        The unit.
    segment_index : int or None, default: None
        One segment; None: every segment, in order.
    segments : pandas.DataFrame or None, default: None
        :func:`segment_table` of the analyzer, when the caller has it already.

    Returns
    -------
    numpy.ndarray
        float64 seconds.
    """
    segments = segment_table(analyzer) if segments is None else segments
    fs = float(analyzer.sampling_frequency)
    chosen = range(analyzer.get_num_segments()) if segment_index is None else [int(segment_index)]
    parts = [
        analyzer.sorting.get_unit_spike_train(unit_id, segment_index=k, use_cache=False).astype(np.float64) / fs
        + float(segments["t_start_s"].iloc[k])
        for k in chosen
    ]
    return np.concatenate(parts) if parts else np.zeros(0)


def sorting_spike_probabilities(analyzer, spikes: np.ndarray) -> np.ndarray:
    """The raw per-spike P(SER) of the extension (``get_data("spikes")["p_ser"]``) for each row of a spike
    vector (``sample_index``, ``unit_index``, ``segment_index``); NaN for a spike that was not classified (over
    the waveform cap, or of a unit without waveforms)."""
    classified = get_serotonergic_extension(analyzer).get_data("spikes")
    units = list(analyzer.unit_ids)
    position = {str(u): i for i, u in enumerate(units)}
    key = pd.MultiIndex.from_arrays(
        [
            classified["segment_index"].to_numpy(np.int64),
            classified["sample_index"].to_numpy(np.int64),
            np.array([position[str(u)] for u in classified["unit_id"]], dtype=np.int64),
        ]
    )
    lookup = pd.Series(classified["p_ser"].to_numpy(np.float64), index=key)
    lookup = lookup[~lookup.index.duplicated()]
    wanted = pd.MultiIndex.from_arrays(
        [
            np.asarray(spikes["segment_index"], np.int64),
            np.asarray(spikes["sample_index"], np.int64),
            np.asarray(spikes["unit_index"], np.int64),
        ]
    )
    return np.array(lookup.reindex(wanted).to_numpy(np.float64))  # writable
