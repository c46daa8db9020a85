"""Phy folders: SpikeInterface's ``export_to_phy``, the recording in pA for Phy's trace view, the unit table as
``cluster_<column>.tsv`` and the raw per-spike P(SER) as a spike attribute."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SeroError
from ..extension import SERO_PROPERTIES, get_serotonergic_extension
from ..files import atomic_path
from .nwb import NWB_UNIT_COLUMNS
from .tables import results_table, source_file
from .times import sorting_spike_probabilities

__all__ = ["export_to_phy", "PHY_PROPERTIES", "PHY_SPIKE_PROBABILITY"]

#: The sorting properties written to a Phy folder as ``cluster_<property>.tsv`` columns.
PHY_PROPERTIES = SERO_PROPERTIES
#: the spike attribute of the raw per-spike ensemble P(SER) (``spike_<name>.npy``, one value per spike of
#: ``spike_times.npy``; -1 for a spike that was not classified): the raw scale, not the calibrated cell one
#: (phylib reads NaN as 0, which would look like a sure non-serotonergic spike)
PHY_SPIKE_PROBABILITY = "sero_p_ser_raw"
_NOT_CLASSIFIED = -1.0
#: the unit columns under another name in Phy, whose own cluster view has an ``n_spikes`` column
_PHY_NAMES = {"n_spikes": "sero_n_spikes"}


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
    """SpikeInterface's ``export_to_phy`` and the serotonergic result, for Phy (``phy template-gui params.py``).

    Besides SpikeInterface's files, the folder gets

    * ``recording.dat``: the recording in picoamperes (float32), so that Phy's trace view works, when the
      analyzer has its recording and ``copy_binary`` is true (``params.py`` points at it);
    * ``cluster_<column>.tsv``: every column of the NWB Units table (the cell id, the source file and the
      extension's unit table, with ``sero_call`` and a person's ``sero_manual_label``; ``n_spikes`` as
      ``sero_n_spikes``); Phy shows them as columns and ``spikeinterface.extractors.read_phy`` as properties;
    * ``spike_sero_p_ser_raw.npy``: the raw per-spike ensemble P(SER) (not calibrated) of every spike of
      ``spike_times.npy``, -1 for a spike that was not classified (beyond the waveform cap); Phy reads
      ``spike_*.npy`` as spike attributes.

    Parameters
    ----------
    analyzer : SortingAnalyzer
        With the ``serotonergic`` extension; one segment (Phy takes one continuous recording).
    output_folder : str or Path
        The Phy folder to create.
    compute_pc_features : bool, default: False
        As SpikeInterface's.
    copy_binary : bool, default: True
        Write the recording (when the analyzer has it).
    remove_if_exists : bool, default: False
        Replace an existing folder.
    verbose : bool, default: False
        SpikeInterface's messages and progress bars.
    **kwargs
        Passed to SpikeInterface's ``export_to_phy``.

    Returns
    -------
    Path
        The folder.

    Raises
    ------
    SeroError
        For a recording of several segments (an episodic file, or the files of one cell grouped) and for one
        without any spike.
    """
    from spikeinterface.exporters import export_to_phy as _export

    get_serotonergic_extension(analyzer)
    if analyzer.get_num_segments() > 1:
        raise SeroError(
            f"Phy takes one continuous recording, and this one has {analyzer.get_num_segments()} segments (the "
            "sweeps of an episodic file, or the files of a grouped cell): export it to NWB instead (write_nwb), "
            "which keeps every segment and its start time."
        )
    if not any(analyzer.sorting.count_num_spikes_per_unit().values()):
        raise SeroError("no cell of this recording has spikes: Phy needs at least one; nothing was exported.")
    if not analyzer.has_extension("templates"):
        analyzer.compute("templates")
    folder = Path(output_folder)
    _export(
        analyzer,
        folder,
        compute_pc_features=compute_pc_features,
        copy_binary=False,  # written below in pA: SpikeInterface would copy the raw ADC values
        remove_if_exists=remove_if_exists,
        verbose=verbose,
        **{"progress_bar": verbose, **kwargs},  # SpikeInterface's job progress bars only when asked
    )
    if copy_binary and (analyzer.has_recording() or analyzer.has_temporary_recording()):
        _write_recording(analyzer, folder, verbose)
    else:  # SpikeInterface may write the text 'None' as a file name: no raw data is None to Phy
        _set_params(folder, dat_path="None", only_if="dat_path = r'None'")
    _write_phy_columns(analyzer, folder)
    _write_spike_probabilities(analyzer, folder)
    return folder


def _write_recording(analyzer, folder: Path, verbose: bool) -> None:
    """``recording.dat`` in pA (float32), and ``params.py`` pointing at it."""
    from spikeinterface.core import write_binary_recording
    from spikeinterface.preprocessing import scale_to_uV

    recording = analyzer.recording
    if recording.has_scaleable_traces():  # SpikeInterface's "uV" slots hold pA here (physical_unit property)
        recording = scale_to_uV(recording)
    write_binary_recording(recording, file_paths=folder / "recording.dat", dtype="float32", progress_bar=verbose)
    _set_params(folder, dat_path="r'recording.dat'", dtype="'float32'")


def _set_params(folder: Path, *, only_if: str | None = None, **values: str) -> None:
    """Set lines ``name = value`` of the folder's ``params.py`` (only when it holds ``only_if``, if given)."""
    params = (folder / "params.py").read_text()
    if only_if is not None and only_if not in params:
        return
    for name, value in values.items():
        params = re.sub(rf"^{name} = .*$", lambda _, line=f"{name} = {value}": line, params, flags=re.M)
    (folder / "params.py").write_text(params)


def _write_phy_columns(analyzer, folder: Path) -> None:
    """Every column of the NWB Units table as a ``cluster_<column>.tsv`` of the Phy folder, by the cluster ids
    SpikeInterface gave the units (it leaves out units without spikes)."""
    clusters = pd.read_csv(folder / "cluster_si_unit_ids.tsv", sep="\t", dtype={"si_unit_id": str})
    table = results_table(analyzer, file=source_file(analyzer)).rename(columns={"file": "source_file"})
    table.index = [str(u) for u in analyzer.unit_ids]
    rows = table.reindex(clusters["si_unit_id"].astype(str))
    for column in NWB_UNIT_COLUMNS:
        name = _PHY_NAMES.get(column, column)
        frame = pd.DataFrame({"cluster_id": clusters["cluster_id"].to_numpy(), name: rows[column].to_numpy()})
        with atomic_path(folder / f"cluster_{name}.tsv") as temporary:
            frame.to_csv(temporary, sep="\t", index=False)


def _write_spike_probabilities(analyzer, folder: Path) -> None:
    """The raw per-spike P(SER), in the order of ``spike_times.npy`` (SpikeInterface writes the spike vector of
    segment 0)."""
    spikes = analyzer.sorting.to_spike_vector(concatenated=False)[0]
    probabilities = sorting_spike_probabilities(analyzer, spikes)
    probabilities = np.where(np.isnan(probabilities), _NOT_CLASSIFIED, probabilities)
    with atomic_path(folder / f"spike_{PHY_SPIKE_PROBABILITY}.npy") as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, probabilities.astype(np.float64))
