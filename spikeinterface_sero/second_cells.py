"""Two cells under one pipette: the unit of each cell the seal watch found a ``second_cell`` in, split in two.

SpikeInterface's own ``SortingAnalyzer.split_units`` makes the new units, and the ``serotonergic`` extension
computes only them (each on its own stable stretch). docs/seal.md.
"""

from __future__ import annotations

import numpy as np

from .seal import separate_two_cells

__all__ = ["split_second_cells"]

_MIN_SPIKES = 2  # each side of a split keeps at least this many spikes


def _second_cell_start(seal: str) -> float | None:
    for event in str(seal).split("+"):
        kind, _, start = event.partition("@")
        if kind == "second_cell" and start.endswith("s"):
            return float(start[:-1])
    return None


def _split_of(extension, unit_id, start_s: float):
    """The unit's spike-train indices of the first cell and of the newcomer, or None when they cannot be told."""
    analyzer = extension.sorting_analyzer
    spikes = extension.get_data("spikes")
    mine = np.flatnonzero(spikes["unit_id"].to_numpy() == unit_id)
    train_size = sum(
        analyzer.sorting.get_unit_spike_train(unit_id, segment_index=k).size for k in range(analyzer.get_num_segments())
    )
    if mine.size != train_size:  # only some spikes have a waveform: the rest could not be assigned
        return None
    origin = float(extension.get_data("segments")["t_start_s"].iloc[0])
    times = spikes["time_s"].to_numpy()[mine] - origin
    newcomer = separate_two_cells(extension.get_data("waveforms")[mine], times, start_s)
    order = np.lexsort((spikes["sample_index"].to_numpy()[mine], spikes["segment_index"].to_numpy()[mine]))
    newcomer = newcomer[order]  # in the order of the unit's spike train
    indices = np.arange(train_size)
    if min(newcomer.sum(), (~newcomer).sum()) < _MIN_SPIKES:
        return None
    return [indices[~newcomer], indices[newcomer]]


def split_second_cells(analyzer):
    """Split every unit whose ``sero_seal`` names a ``second_cell`` into the first cell and the newcomer.

    Parameters
    ----------
    analyzer : SortingAnalyzer
        With the ``serotonergic`` extension computed on every spike of each unit (``random_spikes`` method
        "all", as :func:`~spikeinterface_sero.analyzers.abf_to_analyzer` makes it by default).

    Returns
    -------
    SortingAnalyzer
        ``analyzer`` itself when no unit holds a second cell; else a new in-memory analyzer in which each such
        unit is two units (SpikeInterface's new unit ids), each classified on its own stable stretch; the first
        cell keeps the parent's ``cell_id``, the newcomer's is ``<cell_id>_second_cell``.
    """
    extension = analyzer.get_extension("serotonergic")
    table = extension.get_data()
    splits = {}
    for unit_id in analyzer.unit_ids:
        start = _second_cell_start(table.loc[unit_id, "sero_seal"])
        parts = None if start is None else _split_of(extension, unit_id, start)
        if parts is not None:
            splits[unit_id] = parts
    if not splits:
        return analyzer
    parents = dict(zip(analyzer.unit_ids, analyzer.sorting.get_property("cell_id")))
    split, new_ids = analyzer.split_units(splits, format="memory", return_new_unit_ids=True)
    cells = dict(zip(split.unit_ids, split.sorting.get_property("cell_id")))
    for parent, (first, second) in zip(splits, new_ids):
        cells[first], cells[second] = str(parents[parent]), f"{parents[parent]}_second_cell"
    split.set_sorting_property("cell_id", np.array([str(cells[u]) for u in split.unit_ids]))
    return split
