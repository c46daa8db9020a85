"""Sharing the result: CSV / JSON tables, NWB files, Phy folders, each read from the ``serotonergic``
extension as it stands (a person's relabel included), with the recording's own spike times.

One module per output: ``tables`` (the results table and its files), ``times`` (spike times in the
recording's time base, per-spike P(SER) beside every spike), ``nwb``, ``phy``; every name is importable from
here. :func:`output_path` is where every exporter puts the output of one recording (a name short enough for
the file system).
"""

from __future__ import annotations

from pathlib import Path

from ..text import printable as printable  # the CLI escapes terminal text with it (one definition: text.py)
from ..text import short_file_name
from .nwb import NWB_UNIT_COLUMNS, write_nwb
from .phy import PHY_PROPERTIES, PHY_SPIKE_PROBABILITY, export_to_phy
from .tables import (
    RESULT_COLUMNS,
    TABLE_SUFFIXES,
    error_row,
    model_name,
    results_table,
    safe_table,
    source_file,
    tidy,
    write_fallback,
    write_table,
)
from .times import segment_table, sorting_spike_probabilities, spike_times

__all__ = [
    "RESULT_COLUMNS",
    "TABLE_SUFFIXES",
    "results_table",
    "model_name",
    "error_row",
    "tidy",
    "write_table",
    "write_fallback",
    "safe_table",
    "source_file",
    "write_nwb",
    "NWB_UNIT_COLUMNS",
    "export_to_phy",
    "PHY_PROPERTIES",
    "PHY_SPIKE_PROBABILITY",
    "segment_table",
    "spike_times",
    "sorting_spike_probabilities",
    "output_path",
]


def output_path(folder, source, suffix: str = "") -> Path:
    """Where the export of the recording ``source`` goes in ``folder``: ``<source stem><suffix>``, shortened
    with a hash of the whole name when the file system would refuse it
    (:func:`~spikeinterface_sero.text.short_file_name`), so long names still give distinct outputs.

    Parameters
    ----------
    folder : str or Path
        The export folder (NWB files, Phy folders, reports).
    source : str or Path
        The recording file.
    suffix : str, default: ""
        ``".nwb"`` for a file, "" for a folder.

    Returns
    -------
    Path
    """
    return Path(folder) / short_file_name(Path(source).stem + suffix, folder=folder if Path(folder).is_dir() else None)
