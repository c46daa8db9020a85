"""NWB files: the Units table with the sero columns, the spike times in the recording's time base, the sweeps
as observation intervals and the mean action current in picoamperes (read back with pynwb)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._version import __version__
from ..extension import get_serotonergic_extension
from ..files import atomic_path, check_output_path
from ..schema import UNIT_COLUMN_DESCRIPTIONS
from ..text import clean_text
from ..upstream import main_channel_indices
from .tables import recording_start, results_table, source_file
from .times import segment_table, spike_times

__all__ = ["write_nwb", "NWB_UNIT_COLUMNS"]

#: the columns of the NWB Units table besides spike times, observation intervals and mean waveform
NWB_UNIT_COLUMNS = {
    "cell_id": "the cell: the file stem, or <file stem>_ch<channel id> when the file holds several cells",
    "source_file": "the recording the cell comes from",
    **UNIT_COLUMN_DESCRIPTIONS,
}
#: the longest text written to one NWB field (an ABF header string can be anything)
_MAX_TEXT = 1000


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
    """Write the Units table to an NWB file.

    Each unit has its spike times (every spike of the sorting, in seconds of the recording's own time base:
    sweep ``k`` of an episodic file starts at the sweep's start time), its observation intervals (the sweeps),
    every column of the extension's unit table (:data:`NWB_UNIT_COLUMNS`, with a person's
    ``sero_manual_label`` beside the model's call) and its mean action current in picoamperes. Every text is
    written printable, without NUL bytes and bounded (:func:`~spikeinterface_sero.text.clean_text`).

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
    from pynwb import NWBHDF5IO
    from pynwb.file import Subject

    path = check_output_path(path, overwrite=overwrite, suffixes=(".nwb",), what="NWB file")
    nwb = _nwb_file(
        analyzer,
        session_description=session_description,
        identifier=identifier,
        session_start_time=session_start_time,
        experimenter=experimenter,
        institution=institution,
        lab=lab,
        experiment_description=experiment_description,
        keywords=keywords,
    )
    if subject_id is not None:
        nwb.subject = Subject(subject_id=_text(subject_id), species=_text(species), age=_text(age), sex=_text(sex))
    _add_units(nwb, analyzer)
    with atomic_path(path) as temporary, NWBHDF5IO(str(temporary), "w") as io:
        io.write(nwb)
    return path


def _text(value):
    return None if value is None else clean_text(value, max_length=_MAX_TEXT)


def _nwb_file(analyzer, *, session_start_time, identifier, experimenter, keywords, **metadata):
    """The NWBFile with the session's metadata, every text cleaned."""
    import datetime
    import uuid

    from pynwb import NWBFile

    annotations = _recording_annotations(analyzer)
    if session_start_time is None:
        recorded = _text(recording_start(analyzer)) or ""
        try:
            session_start_time = datetime.datetime.fromisoformat(recorded).astimezone()
        except ValueError:  # no date (or not one) in the header
            session_start_time = datetime.datetime.now(datetime.UTC)
    provenance = get_serotonergic_extension(analyzer).get_data("provenance")
    experimenters = [experimenter] if isinstance(experimenter, str) else experimenter
    return NWBFile(
        identifier=_text(identifier) or str(uuid.uuid4()),
        session_start_time=session_start_time,
        experimenter=None if experimenters is None else [_text(e) for e in experimenters],
        keywords=None if keywords is None else [_text(k) for k in keywords],
        protocol=_text(annotations.get("abf_protocol")) or None,
        source_script=f"spikeinterface-sero {__version__}",
        source_script_file_name="spikeinterface_sero",
        notes=_text(
            f"Units classified with spikeinterface-sero {__version__}; model: {provenance.get('model_description', '')}"
        ),
        **{name: _text(value) for name, value in metadata.items()},
    )


def _add_units(nwb, analyzer) -> None:
    from pynwb.misc import Units

    fs = float(analyzer.sampling_frequency)
    nwb.units = Units(
        name="units",
        description="cells with serotonergic classification",
        resolution=1.0 / fs,
        waveform_rate=fs,
        waveform_unit="picoamperes",
    )
    for name, description in NWB_UNIT_COLUMNS.items():
        nwb.add_unit_column(name=name, description=description)
    segments = segment_table(analyzer)
    sweeps = [[start, start + duration] for start, duration in zip(segments["t_start_s"], segments["duration_s"])]
    templates = _mean_waveforms(analyzer)
    table = results_table(analyzer, file=source_file(analyzer)).rename(columns={"file": "source_file"})
    for i, unit_id in enumerate(analyzer.unit_ids):
        row = table.iloc[i]
        nwb.add_unit(
            spike_times=np.sort(spike_times(analyzer, unit_id, segments=segments)),
            obs_intervals=sweeps,
            waveform_mean=templates[i],
            id=i,
            **{name: _nwb_value(row[name]) for name in NWB_UNIT_COLUMNS},
        )


def _nwb_value(value):
    """A unit-table value as NWB stores it: text cleaned, flags as bool, numbers as float (NaN if missing)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        return clean_text(value, max_length=_MAX_TEXT)
    if value is None or pd.isna(value):
        return float("nan")
    return float(value)


def _recording_annotations(analyzer) -> dict:
    if not analyzer.has_recording():
        return {}
    recording = analyzer.recording
    return {key: recording.get_annotation(key) for key in recording.get_annotation_keys()}


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
