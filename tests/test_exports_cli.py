"""What users of pyABF, NWB and Phy expect from the command line: `sero info`, `sero classify --nwb --phy`,
NWB files that nwbinspector passes, and no silent overwrite."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import shared_abf_files

from spikeinterface_sero import cli
from spikeinterface_sero.datasets import simulate_drn_recording, write_abf


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    sim = simulate_drn_recording("serotonergic", duration_s=15.0, seed=4)
    return write_abf(root / "cell.abf", sim.traces, sim.sampling_frequency), root


def test_info_on_every_shared_file(shared_abf, capsys):
    rc = cli.main(["info", *map(str, shared_abf_files())])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert out.count("ABF ") + err.count("FAILED") == len(shared_abf_files())
    assert "not a current (--any-unit uses it anyway)" in out  # the mV channel of 19114001.abf
    assert rc in (0, 1)


def test_classify_writes_nwb_and_phy_that_their_tools_read(recording, tmp_path):
    from nwbinspector import Importance, inspect_nwbfile
    from spikeinterface.extractors import read_phy

    path, _ = recording
    args = ["classify", str(path), "--nwb", str(tmp_path / "nwb"), "--phy", str(tmp_path / "phy"), "--quiet"]
    meta = ["--subject-id", "m1", "--species", "Mus musculus", "--age", "P30D", "--sex", "M"]
    meta += ["--experimenter", "Doe, Jane", "--institution", "Somewhere", "--lab", "DRN lab"]
    assert cli.main(args + meta) == 0
    nwb = tmp_path / "nwb" / "cell.nwb"
    messages = list(inspect_nwbfile(nwbfile_path=str(nwb)))
    bad = [m for m in messages if m.importance in (Importance.CRITICAL, Importance.BEST_PRACTICE_VIOLATION)]
    assert not bad, [(m.check_function_name, m.message) for m in bad]
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(nwb), "r") as io:
        units = io.read().units.to_dataframe()
    assert {"sero_reliable", "sero_quality", "n_spikes", "cell_id", "source_file", "lv"} <= set(units.columns)
    phy = read_phy(tmp_path / "phy" / "cell")
    nwb_columns = set(units.columns) - {"spike_times", "obs_intervals", "waveform_mean"}
    # Phy carries every column of the NWB file, n_spikes as sero_n_spikes (Phy has its own n_spikes)
    assert {"sero_n_spikes" if c == "n_spikes" else c for c in nwb_columns} <= set(phy.get_property_keys())
    assert phy.get_property("sero_n_spikes").tolist() == units["n_spikes"].astype(int).tolist()
    assert phy.get_property("cell_id").tolist() == units["cell_id"].tolist() == ["cell"]
    # a second run refuses to replace them, before any work; --overwrite replaces them
    assert cli.main(args) == 2
    assert cli.main(args + ["--overwrite"]) == 0


def test_neo_annotations_carry_the_nwb_columns(recording):
    import neo

    from spikeinterface_sero.decision import UNIT_COLUMN_DESCRIPTIONS
    from spikeinterface_sero.neo_bridge import annotate_spiketrains

    path, _ = recording
    block = neo.io.AxonIO(str(path)).read_block()
    (train,) = annotate_spiketrains(block)
    names = {column if column.startswith("sero_") else f"sero_{column}" for column in UNIT_COLUMN_DESCRIPTIONS}
    assert names <= set(train.annotations)
    assert train.annotations["sero_n_spikes"] == len(train) and isinstance(train.annotations["sero_reliable"], bool)
    assert train.annotations["sero_probability_low"] <= train.annotations["sero_probability"]


def test_phy_refuses_episodic_recordings_in_one_clear_error(tmp_path):

    from spikeinterface_sero import abf_to_analyzer, compute_serotonergic
    from spikeinterface_sero.errors import SeroError
    from spikeinterface_sero.export import export_to_phy
    from spikeinterface_sero.testing import synthetic_trace

    sweeps = [synthetic_trace(duration_s=1.0, spike_times_s=[0.2, 0.6], seed=s) for s in range(3)]
    path = write_abf(tmp_path / "episodic.abf", sweeps, 40000.0, mode="episodic", data_format="float32")
    analyzer = abf_to_analyzer(path)
    compute_serotonergic(analyzer)
    with pytest.raises(SeroError, match="Phy takes one continuous recording"):
        export_to_phy(analyzer, tmp_path / "phy")


def test_phy_with_an_episodic_file_exports_the_others(tmp_path, capsys):
    """`sero classify ... --phy` with an episodic file among others: that file keeps its classification and
    says in export_error why it has no Phy folder; the continuous file is exported."""
    from spikeinterface_sero.cli import main
    from spikeinterface_sero.testing import synthetic_trace

    sweeps = [synthetic_trace(duration_s=1.0, spike_times_s=[0.2, 0.6], seed=s) for s in range(3)]
    path = write_abf(tmp_path / "episodic.abf", sweeps, 40000.0, mode="episodic", data_format="float32")
    continuous = write_abf(
        tmp_path / "continuous.abf", synthetic_trace(duration_s=2.0, spike_times_s=[0.3, 1.1], seed=9), 40000.0
    )
    out = tmp_path / "results.csv"
    args = ["classify", str(path), str(continuous), "--out", str(out), "--phy", str(tmp_path / "phy"), "--quiet"]
    assert main([*args, "--method", "criteria"]) == 1
    err = capsys.readouterr().err
    assert "3 segments" in err and "--nwb" in err and "Traceback" not in err
    table = pd.read_csv(out, keep_default_na=False).set_index("cell_id")
    assert (table["error"] == "").all() and set(table["sero_label"]) <= {"serotonergic", "non_serotonergic"}
    assert "3 segments" in table.loc["episodic", "export_error"] and table.loc["continuous", "export_error"] == ""
    assert (tmp_path / "phy" / "continuous" / "params.py").is_file() and not (tmp_path / "phy" / "episodic").exists()
