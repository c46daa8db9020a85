"""The results table (one row per cell, :data:`~spikeinterface_sero.schema.RESULT_SCHEMA`) and its CSV/JSON files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SeroError
from ..extension import get_serotonergic_extension
from ..files import atomic_path, check_output_path, fallback_paths, output_lock
from ..schema import RESULT_COLUMNS, RESULT_SCHEMA, TEXT, cast_table
from ..text import spreadsheet_safe

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
]

#: file name endings of a results table
TABLE_SUFFIXES = (".csv", ".tsv", ".json")


def results_table(analyzer, *, file: str | None = None) -> pd.DataFrame:
    """One row per unit (cell) with the columns of :data:`~spikeinterface_sero.schema.RESULT_SCHEMA`.

    Where the cell comes from (file, channel, cell id), then the extension's unit table as it stands (the
    model's call, the call to read, a person's ``sero_manual_label`` ...), the edge-dropped spikes, the model
    that made the call, and empty ``export_error`` and ``error``.

    Parameters
    ----------
    analyzer : SortingAnalyzer
        With the ``serotonergic`` extension.
    file : str or None, default: None
        The recording file, for the ``file`` column.

    Returns
    -------
    pandas.DataFrame
        Cast once by :func:`~spikeinterface_sero.schema.cast_table`.
    """
    extension = get_serotonergic_extension(analyzer)
    unit_ids = list(analyzer.unit_ids)
    out = extension.get_data().reindex(unit_ids).reset_index(drop=True)
    cells = analyzer.sorting.get_property("cell_id")
    dropped = analyzer.sorting.get_property("n_dropped_edge")
    out["file"] = "" if file is None else str(file)
    out["channel"] = [str(u) for u in unit_ids]
    out["cell_id"] = [str(c) for c in cells] if cells is not None else [str(u) for u in unit_ids]
    out["recorded"] = recording_start(analyzer)
    out["n_dropped_edge"] = dropped if dropped is not None else 0
    out["model"] = model_name(extension.params, extension.get_data("provenance"))
    return tidy(out)[RESULT_COLUMNS]


def recording_start(analyzer) -> str:
    """The recording's start as its .abf header gives it (ISO date-time, ``io.read_abf``'s ``abf_datetime``
    annotation), "" when unknown or without a recording."""
    if not analyzer.has_recording():
        return ""
    return str(analyzer.recording.get_annotation("abf_datetime") or "")


def model_name(params: dict, provenance: dict) -> str:
    """What made the call, as the tables show it ("DEMO (simulated data) ..." for the demonstration model)."""
    if params.get("method") == "criteria":
        return "classical criteria"
    demo = "DEMO (simulated data) " if provenance.get("model_is_demo") else ""
    return demo + (params.get("model_folder") or "bundled demo model")


def error_row(path, message: str) -> pd.DataFrame:
    """The one row of a file that could not be processed."""
    row = {column: np.nan for column in RESULT_COLUMNS}
    row.update(file=str(path), sero_label="error", error=message)
    return tidy(pd.DataFrame([row], columns=RESULT_COLUMNS))


def tidy(table: pd.DataFrame) -> pd.DataFrame:
    """A results table with the columns of :data:`~spikeinterface_sero.schema.RESULT_SCHEMA` first, in order,
    each of its kind (:func:`~spikeinterface_sero.schema.cast_table`: the one cast); other columns kept after."""
    return cast_table(table, RESULT_SCHEMA)


def write_table(table: pd.DataFrame, path, *, overwrite: bool = False) -> Path:
    """Write a results table as CSV (``.csv``/``.tsv``) or JSON records (``.json``), by the suffix.

    In CSV/TSV, a text cell that a spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return: a file named ``=cmd.abf``) is written with a leading quote
    (:func:`~spikeinterface_sero.text.spreadsheet_safe`); numbers are written as they are. JSON is not
    changed.

    Parameters
    ----------
    table : pandas.DataFrame
        The table.
    path : str or Path
        The file; its folder must exist.
    overwrite : bool, default: False
        Replace an existing file. The write is atomic: a crash leaves the old file or the new one.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    SeroError
        ``path`` cannot take the table (see :func:`~spikeinterface_sero.files.check_output_path`), or another
        process is writing it (one writer per table: :func:`~spikeinterface_sero.files.output_lock`, the lock
        ``sero classify --out`` holds for its whole run).
    """
    path = check_output_path(path, overwrite=overwrite, suffixes=TABLE_SUFFIXES, what="table")
    with output_lock(path, what="table", flag="path"):
        check_output_path(path, overwrite=overwrite, what="table")  # again under the lock: a writer just ended
        _write_locked(table, path)
    return path


def write_fallback(table: pd.DataFrame, name) -> Path:
    """Write ``table`` where it can go when its own path could not take it (a full or read-only disk): the
    first of :func:`~spikeinterface_sero.files.fallback_paths` that takes it.

    Parameters
    ----------
    table : pandas.DataFrame
        The table.
    name : str or Path
        The path that failed; its name and suffix name the fallback file.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    SeroError
        No fallback place could take the table (the message names the places tried).
    """
    tried = []
    for candidate in fallback_paths(str(name)):
        try:
            return write_table(table, candidate)
        except (OSError, SeroError) as e:
            tried.append(f"{candidate} ({getattr(e, 'strerror', None) or e})")
    raise SeroError("no place could take the table: " + "; ".join(tried))


def _write_locked(table: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as temporary:
        if path.suffix.lower() == ".json":
            records = json.loads(table.to_json(orient="records", double_precision=15))
            temporary.write_text(json.dumps(records, indent=1) + "\n")
        else:
            safe_table(table).to_csv(temporary, index=False, sep="\t" if path.suffix.lower() == ".tsv" else ",")


def safe_table(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its text cells neutralised for spreadsheets (numeric columns untouched)."""
    out = table.copy()
    text_columns = [
        c
        for c in out.columns
        if (c in RESULT_SCHEMA and RESULT_SCHEMA[c].kind == TEXT) or out[c].dtype == object or out[c].dtype == "string"
    ]
    for column in text_columns:
        out[column] = out[column].map(spreadsheet_safe)
    return out


def source_file(analyzer) -> str:
    """The recording file the analyzer was made from (its ``abf_path`` annotation), or ""."""
    for obj in (analyzer.recording if analyzer.has_recording() else None, analyzer.sorting):
        if obj is not None and "abf_path" in obj.get_annotation_keys():
            return str(obj.get_annotation("abf_path"))
    return ""
