"""Sharing the result: Phy folders, NWB files, CSV / JSON tables.

* :func:`export_to_phy` runs SpikeInterface's own ``export_to_phy`` and writes every unit column of the NWB
  file as a ``cluster_<column>.tsv`` (``n_spikes`` as ``sero_n_spikes``); Phy shows them as columns, and
  ``spikeinterface.extractors.read_phy`` returns them as properties.
* :func:`write_nwb` writes an NWB file whose Units table carries the sero columns, the spike times and the
  mean 160-point action current with its unit (picoamperes, not volts), readable by pynwb.
* :func:`results_table` / :func:`write_table` give the per-cell result as a DataFrame, CSV or JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ._version import __version__
from .decision import UNIT_COLUMN_DESCRIPTIONS
from .errors import SeroError
from .extension import SERO_PROPERTIES, get_serotonergic_extension
from .files import atomic_path, check_output_path
from .schema import RESULT_COLUMNS, RESULT_SCHEMA, TEXT
from .upstream import main_channel_indices

__all__ = [
    "RESULT_COLUMNS",
    "results_table",
    "error_row",
    "write_table",
    "export_to_phy",
    "write_nwb",
    "PHY_PROPERTIES",
]

#: file name endings of a results table
TABLE_SUFFIXES = (".csv", ".tsv", ".json")
#: columns of the results table (``sero classify``, the watcher, the report), in order
_TEXT_RESULT_COLUMNS = tuple(name for name, column in RESULT_SCHEMA.items() if column.kind == TEXT)

#: The sorting properties written to a Phy folder as ``cluster_<property>.tsv`` columns.
PHY_PROPERTIES = SERO_PROPERTIES


def results_table(analyzer, *, file: str | None = None) -> pd.DataFrame:
    """One row per unit (cell), :data:`RESULT_COLUMNS`: the file, channel, cell id, the serotonergic result,
    the firing features, the edge-dropped spikes, the model that made the call and an empty ``error``."""
    ext = get_serotonergic_extension(analyzer)
    units = ext.get_data()
    provenance = ext.get_data("provenance")
    unit_ids = list(analyzer.unit_ids)
    cells = analyzer.sorting.get_property("cell_id")
    dropped = analyzer.sorting.get_property("n_dropped_edge")
    out = units.reindex(unit_ids).reset_index(drop=True)
    out.insert(0, "file", "" if file is None else str(file))
    out.insert(1, "channel", [str(u) for u in unit_ids])
    out.insert(2, "cell_id", [str(c) for c in cells] if cells is not None else [str(u) for u in unit_ids])
    out["n_dropped_edge"] = dropped if dropped is not None else np.nan
    out["model"] = model_name(ext.params, provenance)
    out["export_error"] = ""
    out["error"] = ""
    return tidy(out.reindex(columns=RESULT_COLUMNS))


def model_name(params: dict, provenance: dict) -> str:
    """What made the call, as the tables show it ("DEMO (simulated data) ..." for the demonstration model)."""
    if params.get("method") == "criteria":
        return "classical criteria"
    demo = "DEMO (simulated data) " if provenance.get("model_is_demo") else ""
    return demo + (params.get("model_folder") or "bundled demo model")


def error_row(path, message: str) -> pd.DataFrame:
    """The one row of a file that could not be processed."""
    row = {column: np.nan for column in RESULT_COLUMNS}
    row.update(file=str(path), channel="", cell_id="", sero_label="error", sero_type="", error=message)
    return tidy(pd.DataFrame([row], columns=RESULT_COLUMNS))


def tidy(table: pd.DataFrame) -> pd.DataFrame:
    """Counts as integers (empty for error rows), the reliability flag as a nullable boolean, text as text."""
    for column in ("n_spikes", "n_dropped_edge"):
        table[column] = pd.to_numeric(table[column], errors="coerce").round().astype("Int64")
    table["sero_reliable"] = table["sero_reliable"].astype("boolean")  # <NA> for error rows
    for column in _TEXT_RESULT_COLUMNS:
        table[column] = table[column].astype(object).where(table[column].notna(), "")
    return table


def write_table(table: pd.DataFrame, path, *, overwrite: bool = False) -> Path:
    """Write a results table as CSV (``.csv``/``.tsv``) or JSON records (``.json``), by the suffix.

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
    """
    path = check_output_path(path, overwrite=overwrite, suffixes=TABLE_SUFFIXES, what="table")
    with atomic_path(path) as temporary:
        if path.suffix.lower() == ".json":
            records = json.loads(table.to_json(orient="records", double_precision=15))
            temporary.write_text(json.dumps(records, indent=1) + "\n")
        else:
            table.to_csv(temporary, index=False, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    return path


def export_to_phy(
    analyzer,
    output_folder,
    *,
    compute_pc_features: bool = False,
    copy_binary: bool = True,
    remove_if_exists: bool = False,
    verbose: bool = False,
    **kwargs,
) -> Path:
    """SpikeInterface's ``export_to_phy`` with the unit columns of :func:`write_nwb` written as
    ``cluster_<column>.tsv`` (``n_spikes`` as ``sero_n_spikes``: Phy has its own). Raises a SeroError for a
    recording of several segments (Phy takes one) and for one without any spike."""
    from spikeinterface.exporters import export_to_phy as _export

    get_serotonergic_extension(analyzer)
    if analyzer.get_num_segments() > 1:
        raise SeroError(
            f"Phy takes one segment, and this recording has {analyzer.get_num_segments()} sweeps (an episodic "
            "file): export it to NWB instead (write_nwb), which keeps every sweep."
        )
    if not any(analyzer.sorting.count_num_spikes_per_unit().values()):
        raise SeroError("no cell of this recording has spikes: Phy needs at least one; nothing was exported.")
    if not analyzer.has_extension("templates"):
        analyzer.compute("templates")
    copy_binary = copy_binary and (analyzer.has_recording() or analyzer.has_temporary_recording())
    _export(
        analyzer,
        output_folder,
        compute_pc_features=compute_pc_features,
        copy_binary=copy_binary,
        remove_if_exists=remove_if_exists,
        verbose=verbose,
        **{"progress_bar": verbose, **kwargs},  # SpikeInterface's job progress bars only when asked
    )
    _write_phy_columns(analyzer, Path(output_folder))
    return Path(output_folder)


#: the NWB unit columns under another name in Phy, whose own cluster view has an ``n_spikes`` column
_PHY_NAMES = {"n_spikes": "sero_n_spikes"}


def _write_phy_columns(analyzer, folder: Path) -> None:
    """Every unit column of the NWB file (the cell id, the source file and :data:`UNIT_COLUMN_DESCRIPTIONS`)
    as a ``cluster_<column>.tsv`` of the Phy folder, by the cluster ids SpikeInterface gave the units (it
    leaves out units without spikes)."""
    clusters = pd.read_csv(folder / "cluster_si_unit_ids.tsv", sep="\t", dtype={"si_unit_id": str})
    table = results_table(analyzer, file=_source_file(analyzer)).rename(columns={"file": "source_file"})
    table.index = [str(u) for u in analyzer.unit_ids]
    rows = table.reindex(clusters["si_unit_id"].astype(str))
    for column in ["cell_id", "source_file", *UNIT_COLUMN_DESCRIPTIONS]:
        name = _PHY_NAMES.get(column, column)
        values = rows[column].to_numpy()
        frame = pd.DataFrame({"cluster_id": clusters["cluster_id"].to_numpy(), name: values})
        with atomic_path(folder / f"cluster_{name}.tsv") as temporary:
            frame.to_csv(temporary, sep="\t", index=False)


def write_nwb(
    analyzer,
    path,
    *,
    session_description: str = "Loose-seal cell-attached recording, serotonergic classification by spikeinterface-sero",
    identifier: str | None = None,
    session_start_time=None,
    subject_id: str | None = None,
    species: str | None = None,
    age: str | None = None,
    sex: str = "U",
    experimenter: str | list[str] | None = None,
    institution: str | None = None,
    lab: str | None = None,
    experiment_description: str | None = None,
    keywords: list[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the Units table (spike times, every unit column with its description, the mean action current in
    picoamperes at its rate) to an NWB file.

    Parameters
    ----------
    analyzer : SortingAnalyzer
        With the ``serotonergic`` extension.
    path : str or Path
        The ``.nwb`` file.
    session_description : str, default: "Loose-seal cell-attached recording, ..."
        What the session was.
    identifier : str or None, default: None
        None: a new UUID.
    session_start_time : datetime or None, default: None
        None: the recording date of the ABF header (local time), else now.
    subject_id, species, age, sex : str or None
        The NWB Subject (``species`` as a Latin binomial, e.g. "Mus musculus"; ``age`` in ISO 8601, e.g.
        "P30D"; ``sex`` "M", "F", "U" or "O"). Given a ``subject_id``, a Subject is written.
    experimenter, institution, lab, experiment_description, keywords : optional
        NWB session metadata.
    overwrite : bool, default: False
        Replace an existing file (atomically).

    Returns
    -------
    Path
    """
    import datetime
    import uuid

    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.file import Subject
    from pynwb.misc import Units

    path = check_output_path(path, overwrite=overwrite, suffixes=(".nwb",), what="NWB file")
    extension = get_serotonergic_extension(analyzer)
    recording_annotations = _recording_annotations(analyzer)
    if session_start_time is None:
        recorded = recording_annotations.get("abf_datetime") or ""
        session_start_time = (
            datetime.datetime.fromisoformat(recorded).astimezone() if recorded else datetime.datetime.now(datetime.UTC)
        )
    nwb = NWBFile(
        session_description=session_description,
        identifier=identifier or str(uuid.uuid4()),
        session_start_time=session_start_time,
        experimenter=[experimenter] if isinstance(experimenter, str) else experimenter,
        institution=institution,
        lab=lab,
        experiment_description=experiment_description,
        keywords=keywords,
        protocol=recording_annotations.get("abf_protocol") or None,
        source_script=f"spikeinterface-sero {__version__}",
        source_script_file_name="spikeinterface_sero",
        notes=f"Units classified with spikeinterface-sero {__version__}; model: "
        f"{extension.get_data('provenance').get('model_description', '')}",
    )
    if subject_id is not None:
        nwb.subject = Subject(subject_id=str(subject_id), species=species, age=age, sex=sex)
    fs = float(analyzer.sampling_frequency)
    nwb.units = Units(
        name="units",
        description="cells with serotonergic classification",
        resolution=1.0 / fs,
        waveform_rate=fs,
        waveform_unit="picoamperes",
    )
    columns = {
        "cell_id": "the cell: the file stem, or <file stem>_ch<channel id> when the file holds several cells",
        "source_file": "the recording the cell comes from",
        **UNIT_COLUMN_DESCRIPTIONS,
    }
    for name, description in columns.items():
        nwb.add_unit_column(name=name, description=description)
    templates = _mean_waveforms(analyzer)
    table = results_table(analyzer, file=_source_file(analyzer))
    for i, unit_id in enumerate(analyzer.unit_ids):
        times = np.concatenate(
            [
                analyzer.sorting.get_unit_spike_train(unit_id, segment_index=k, return_times=True, use_cache=False)
                for k in range(analyzer.get_num_segments())
            ]
            or [np.zeros(0)]
        )
        row = table.iloc[i]
        values = {name: _nwb_value(row[name if name != "source_file" else "file"]) for name in columns}
        nwb.add_unit(spike_times=np.sort(times), waveform_mean=templates[i], id=i, **values)
    with atomic_path(path) as temporary, NWBHDF5IO(str(temporary), "w") as io:
        io.write(nwb)
    return path


def _nwb_value(value):
    """A unit-table value as NWB stores it: text as text, flags as bool, numbers as float (NaN if missing)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        return value
    if value is None or pd.isna(value):
        return float("nan")
    return float(value)


def _recording_annotations(analyzer) -> dict:
    if not analyzer.has_recording():
        return {}
    recording = analyzer.recording
    return {key: recording.get_annotation(key) for key in recording.get_annotation_keys()}


def _source_file(analyzer) -> str:
    for obj in (analyzer.recording if analyzer.has_recording() else None, analyzer.sorting):
        if obj is not None and "abf_path" in obj.get_annotation_keys():
            return str(obj.get_annotation("abf_path"))
    return ""


def _mean_waveforms(analyzer) -> np.ndarray:
    """(n_units, n_samples, 1): each unit's mean action current on its main channel, in pA (SpikeInterface's
    ``templates`` extension, computed from the waveforms if the analyzer has none)."""
    if not analyzer.has_extension("templates"):
        analyzer.compute("templates", operators=["average"])
    templates = analyzer.get_extension("templates")
    main = main_channel_indices(analyzer)
    return np.stack(
        [
            templates.get_unit_template(unit_id, operator="average")[:, [main[i]]].astype(np.float32)
            for i, unit_id in enumerate(analyzer.unit_ids)
        ]
    )
