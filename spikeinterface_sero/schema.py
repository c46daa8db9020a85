"""The one column schema: every column of the unit table and of the results table, with its dtype and meaning.

The extension's table, the sorting properties, the CSV/JSON tables, NWB columns and the reports are all
derived from :data:`UNIT_SCHEMA` and :data:`RESULT_SCHEMA`, and cast once by :func:`cast_table`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = [
    "Column",
    "UNIT_SCHEMA",
    "UNIT_COLUMNS",
    "UNIT_COLUMN_DESCRIPTIONS",
    "RESULT_SCHEMA",
    "RESULT_COLUMNS",
    "TEXT",
    "FLOAT",
    "INTEGER",
    "BOOLEAN",
    "cast_table",
    "property_values",
]

#: the kinds of column (``Column.kind``)
TEXT, FLOAT, INTEGER, BOOLEAN = "text", "float", "integer", "boolean"


class Column(NamedTuple):
    """One column: its name, kind (text, float, integer, boolean) and description."""

    name: str
    kind: str
    description: str


def _columns(*rows) -> dict[str, Column]:
    return {name: Column(name, kind, description) for name, kind, description in rows}


#: the per-unit table of the ``serotonergic`` extension, in order
UNIT_SCHEMA = _columns(
    (
        "sero_label",
        TEXT,
        "serotonergic, non_serotonergic or undetermined: the model's cell call (the side the mean "
        "ensemble output over the cell's spikes favours, Corradetti et al. 2024), reliable or not",
    ),
    (
        "sero_call",
        TEXT,
        "what to read: serotonergic or non_serotonergic when the call is reliable, unsure when it "
        "is not (sero_unsure_reasons says why), undetermined without spikes",
    ),
    (
        "sero_probability",
        FLOAT,
        "calibrated cell P(serotonergic): SER share of the mean ensemble output over the "
        "cell's spikes, after the model's calibration (a cell-level scale, not the raw per-spike outputs)",
    ),
    (
        "sero_confidence",
        FLOAT,
        "confidence of sero_label in SpikeInterface's sense: sero_probability for a "
        "serotonergic call, 1 - sero_probability for a non-serotonergic one",
    ),
    (
        "sero_probability_low",
        FLOAT,
        "lower end of the bootstrap interval over spikes of sero_probability "
        "(informational: which spikes were sampled, not whether the model holds for this cell)",
    ),
    (
        "sero_probability_high",
        FLOAT,
        "upper end of the bootstrap interval over spikes of sero_probability (informational)",
    ),
    (
        "sero_reliable",
        BOOLEAN,
        "true only for an action current like the model's data, on a rig the model was "
        "validated on, whose conformal prediction set holds one label, with enough spikes",
    ),
    ("sero_unsure_reasons", TEXT, "empty for a reliable call, else why it is not, joined by +"),
    (
        "sero_set",
        TEXT,
        "the conformal prediction set of the cell at the rig calibration's level: serotonergic, "
        "non_serotonergic, both, empty, or not_calibrated",
    ),
    (
        "sero_rig",
        TEXT,
        "validated (like a rig the model was validated on), unlike_validated_rigs, "
        "session_unlike_validated_rigs (like it alone, but its session's cells are unlike every validated rig; "
        "docs/validate.md), or not_validated (the model has no rig validation)",
    ),
    (
        "sero_rig_distance",
        FLOAT,
        "how unlike the nearest validated rig the cell is: its largest fingerprint check's distance over that "
        "check's limit, minus 1 (at most 0: like the rig); empty when the model has no rig validation",
    ),
    (
        "sero_safe_after_spikes",
        FLOAT,
        "spikes after which the call was safe: an anytime-valid sequential test on the running cell decision, "
        "error rate 0.05 (docs/live.md); empty when it never became safe",
    ),
    ("sero_safe_after_s", FLOAT, "the time of that spike from the start of the recording (s)"),
    (
        "sero_seal",
        TEXT,
        "stable, or what happened to the seal with its start (break_in, second_cell, seal_loss, drift; "
        "docs/seal.md); not_watched without spike times",
    ),
    ("sero_stable_start_s", FLOAT, "start of the stable stretch the call was made on (s)"),
    ("sero_stable_end_s", FLOAT, "end of the stable stretch the call was made on (s)"),
    ("n_spikes", INTEGER, "spikes classified"),
    ("fraction_spikes_ser", FLOAT, "fraction of the cell's spikes whose own raw ensemble output votes serotonergic"),
    (
        "member_spread",
        FLOAT,
        "standard deviation over the ensemble's members of their own cell P(serotonergic): disagreement",
    ),
    ("firing_rate_hz", FLOAT, "mean firing rate over the recording (Hz, Elephant's definition)"),
    ("cv_isi", FLOAT, "coefficient of variation of the inter-spike intervals"),
    ("lv", FLOAT, "local variation of the inter-spike intervals (Shinomoto)"),
    ("udi_ms", FLOAT, "upstroke-downstroke interval (trough to peak) of the mean action current (ms)"),
    ("criteria_label", TEXT, "the classical criteria's call (wide spike, slow and regular firing)"),
    ("sero_type", TEXT, "typical/atypical: whether the CNN agrees with the classical criteria"),
    (
        "sero_domain",
        TEXT,
        "in_domain, or how the input differs from the training data (resampled, converted, "
        "filtered, voltage, flipped ...)",
    ),
    ("sero_quality", TEXT, "ok, or the action-current checks the cell failed, joined by +"),
    ("snr", FLOAT, "inward peak depth over the robust noise SD of the pre-trigger baseline"),
    ("shape_consistency", FLOAT, "median correlation of the cell's spikes with their mean"),
    ("outward_ratio", FLOAT, "outward (positive) phase after the inward peak, relative to its depth"),
    ("half_width_ms", FLOAT, "width of the inward peak at half its depth (ms)"),
    (
        "training_distance",
        FLOAT,
        "distance of the cell's mean normalised shape to the nearest training cell's, "
        "relative to the model's limit (above 1: unlike the training data; empty when the model does not describe "
        "its training data)",
    ),
    ("sero_method", TEXT, "cnn (the ensemble) or criteria (classical criteria alone)"),
    (
        "sero_manual_label",
        TEXT,
        "a person's label from a curation (serotonergic_typical, serotonergic_atypical, "
        "non_serotonergic, unsure), empty when none; the model's call is kept beside it",
    ),
)
#: the unit table's column names, in order
UNIT_COLUMNS = list(UNIT_SCHEMA)
#: what each column of the unit table means (NWB column descriptions, docs)
UNIT_COLUMN_DESCRIPTIONS = {name: column.description for name, column in UNIT_SCHEMA.items()}

#: the results table of the batch runner (CSV/JSON): where each cell came from, then the unit table
RESULT_SCHEMA = _columns(
    ("file", TEXT, "the recording file"),
    ("channel", TEXT, "the channel the cell was recorded on"),
    ("cell_id", TEXT, "the cell: the file stem, with _ch<channel> when the file holds several"),
    (
        "recorded",
        TEXT,
        "the recording's start from the .abf header (ISO date-time); empty when the header has none or the "
        "snippets came without their recording",
    ),
    *((c.name, c.kind, c.description) for c in UNIT_SCHEMA.values()),
    ("n_dropped_edge", INTEGER, "spikes too close to a sweep edge for a full window"),
    ("model", TEXT, "the model folder, or 'demo' for the bundled demonstration model"),
    (
        "export_error",
        TEXT,
        "empty, or the exports (NWB, Phy, report) that failed for this file and why; the classification itself stands",
    ),
    (
        "acquisition",
        TEXT,
        "'recording' when the row covers only the part of the file written so far (sero watch, while the "
        "acquisition program still writes it; the row is replaced when the file is complete); empty otherwise",
    ),
    ("error", TEXT, "empty, or why the file could not be classified"),
)
#: the results table's column names, in order
RESULT_COLUMNS = list(RESULT_SCHEMA)

_NULL_TEXT = {"nan", "none", "<na>"}


def _text(values) -> np.ndarray:
    return np.asarray(["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values], object)


def _boolean(values) -> np.ndarray:
    return np.asarray([str(v).strip().lower() in ("true", "1", "1.0") for v in values], dtype=bool)


def cast_table(table: pd.DataFrame, schema: dict[str, Column] = UNIT_SCHEMA) -> pd.DataFrame:
    """``table`` with the schema's columns first, in order, each cast to its kind (extra columns kept as they are).

    Text is ``object`` of ``str`` (missing: ""), floats ``float64``, integers ``int64`` (missing: 0) and booleans
    ``bool`` ("True"/"1" true). Reloads from zarr, binary folders and CSV give back these dtypes.

    Parameters
    ----------
    table : pandas.DataFrame
        A unit or results table.
    schema : dict, default: UNIT_SCHEMA
        :data:`UNIT_SCHEMA` or :data:`RESULT_SCHEMA`.

    Returns
    -------
    pandas.DataFrame
        A new table; missing schema columns are added empty.
    """
    columns = {}  # built apart and joined once: one DataFrame assignment per column costs ~1 ms
    for name, column in schema.items():
        values = table[name] if name in table.columns else pd.Series([None] * len(table), index=table.index)
        if column.kind == TEXT:
            columns[name] = _text(values)
        elif column.kind == BOOLEAN:
            columns[name] = _boolean(values)
        elif column.kind == INTEGER:
            columns[name] = pd.to_numeric(values, errors="coerce").fillna(0).astype("int64").to_numpy()
        else:
            columns[name] = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
    extra = {c: table[c].to_numpy(copy=True) for c in table.columns if c not in schema}
    return pd.DataFrame({**columns, **extra}, index=table.index.copy())


def property_values(table: pd.DataFrame, name: str, schema: dict[str, Column] = UNIT_SCHEMA) -> np.ndarray:
    """Column ``name`` of ``table`` as a SpikeInterface sorting property: ``float64``, ``int64``, ``bool`` or
    fixed-width text (``<U``), never an object array (zarr refuses those; spikeinterface-gui and Phy show
    these dtypes as they are).

    Parameters
    ----------
    table : pandas.DataFrame
        A table with the schema's column ``name``.
    name : str
        The column.
    schema : dict, default: UNIT_SCHEMA
        Where the column's kind is defined.

    Returns
    -------
    numpy.ndarray
        One value per row.
    """
    values = cast_table(table[[name]], {name: schema[name]})[name]
    kind = schema[name].kind
    if kind == TEXT:
        return np.asarray([str(v) for v in values], dtype=str)
    return values.to_numpy(dtype={FLOAT: np.float64, INTEGER: np.int64, BOOLEAN: bool}[kind])
