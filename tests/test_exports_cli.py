"""What users of pyABF, NWB and Phy expect from the command line: `sero info`, `sero classify --nwb --phy`,
NWB files that nwbinspector passes, and no silent overwrite."""

from __future__ import annotations

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
    assert {"sero_label", "sero_reliable", "sero_quality"} <= set(phy.get_property_keys())
    # a second run refuses to replace them, before any work; --overwrite replaces them
    assert cli.main(args) == 2
    assert cli.main(args + ["--overwrite"]) == 0
