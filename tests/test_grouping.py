"""Per-sweep files grouped into one cell (``--group``): the rule, the reading, ``sero classify`` on every engine,
the exports' times."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spikeinterface_sero import cli
from spikeinterface_sero.constants import SAMPLING_FREQUENCY as FS
from spikeinterface_sero.datasets import write_abf
from spikeinterface_sero.errors import ParameterError, SeroError
from spikeinterface_sero.extension import get_serotonergic_extension
from spikeinterface_sero.grouping import GROUP_EXAMPLE, CellFiles, group_files, read_cell
from spikeinterface_sero.io import read_abf
from spikeinterface_sero.pipeline import classify_cell, classify_file, classify_files
from spikeinterface_sero.testing import synthetic_trace

SPIKES_PER_S = 4
START = datetime.datetime(2024, 3, 1, 10, 0, 0)
#: the header starts of the three sweeps of A1, not in the order of their names
OFFSETS_S = {0: 20.0, 1: 0.0, 2: 10.0}


def _trace(duration_s: float, seed: int) -> np.ndarray:
    times = np.arange(0.05, duration_s - 0.05, 1.0 / SPIKES_PER_S) + 0.01 * seed
    return synthetic_trace(duration_s=duration_s, spike_times_s=times, seed=seed)


@pytest.fixture
def sweeps(tmp_path) -> Path:
    """A1_000..A1_002 (one cell, recorded in the order 001, 002, 000; 1.5 s each) and B7.abf (alone)."""
    folder = tmp_path / "session"
    for i, offset in OFFSETS_S.items():
        write_abf(
            folder / f"A1_{i:03d}.abf",
            _trace(1.5, seed=10 + i),
            FS,
            rec_datetime=START + datetime.timedelta(seconds=offset),
        )
    write_abf(folder / "B7.abf", _trace(1.5, seed=3), FS)
    return folder


def _in_recording_order(folder: Path) -> list[Path]:
    return [folder / f"A1_{i:03d}.abf" for i in sorted(OFFSETS_S, key=OFFSETS_S.get)]


def test_group_files_keeps_files_that_do_not_match_single(tmp_path):
    paths = [tmp_path / n for n in ("A1_001.abf", "B7.abf", "A1_002.abf", "x/A1_001.abf")]
    cells = group_files(paths, GROUP_EXAMPLE)
    assert cells == {
        str(tmp_path / "A1"): [paths[0], paths[2]],
        str(paths[1]): [paths[1]],
        str(tmp_path / "x" / "A1"): [paths[3]],  # the same name in another folder is another cell
    }
    assert group_files(paths, None) == {str(p): [p] for p in paths}


@pytest.mark.parametrize("group", ["(", r"(?P<sweep>\d+)\.abf"])
def test_a_bad_group_is_one_error_before_work(sweeps, tmp_path, capsys, group):
    with pytest.raises(ParameterError, match="group"):
        classify_files([sweeps], group=group, method="criteria")
    out = tmp_path / "results.csv"
    assert cli.main(["classify", str(sweeps), "--method", "criteria", "--group", group, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--group" in err[0] and "cell" in err[0] and "Traceback" not in err[0]
    assert not out.exists()


def test_the_cell_recording_is_the_files_appended_in_time_order_and_placed_in_time(sweeps):
    paths = sorted(sweeps.glob("A1_*.abf"))
    cell = read_cell(paths, sweeps / "A1")
    assert cell.get_num_segments() == 3
    assert cell.get_annotation("abf_files") == [str(p.resolve()) for p in _in_recording_order(sweeps)]
    for segment, path in enumerate(_in_recording_order(sweeps)):
        expected = read_abf(path).get_traces(return_in_uV=True)
        np.testing.assert_allclose(cell.get_traces(segment_index=segment, return_in_uV=True), expected, atol=1e-3)
    # each file starts at its header's start after the first file's
    assert [cell.get_start_time(segment_index=k) for k in range(3)] == [0.0, 10.0, 20.0]


def test_files_without_distinct_header_starts_are_placed_back_to_back(tmp_path):
    paths = [write_abf(tmp_path / f"c_{i}.abf", _trace(1.0, seed=i), FS) for i in range(3)]
    cell = read_cell(paths, tmp_path / "c")
    starts = [cell.get_start_time(segment_index=k) for k in range(3)]
    np.testing.assert_allclose(starts, [0.0, 1.0, 2.0])


def test_grouped_files_are_one_cell_whose_spikes_are_each_files(sweeps):
    table = classify_files([sweeps], group=GROUP_EXAMPLE, method="criteria")
    assert table["file"].tolist() == [str(sweeps / "A1"), str(sweeps / "B7.abf")]
    cell = table.iloc[0]
    singles = {p: classify_file(p, method="criteria", return_analyzer=True) for p in _in_recording_order(sweeps)}
    assert cell["cell_id"] == "A1" and cell["error"] == ""
    assert cell["n_spikes"] == sum(int(rows["n_spikes"].iloc[0]) for rows, _ in singles.values()) == 18
    assert table.iloc[1]["n_spikes"] == 6  # a file the rule does not match stays single

    rows, analyzer = classify_cell(
        CellFiles(str(sweeps / "A1"), tuple(str(p) for p in sorted(sweeps.glob("A1_*.abf")))),
        method="criteria",
        return_analyzer=True,
    )
    pd.testing.assert_frame_equal(rows, table.iloc[:1])
    spikes = get_serotonergic_extension(analyzer).get_data("spikes")
    for segment, (_, single) in enumerate(singles.values()):
        own = get_serotonergic_extension(single).get_data("spikes")
        mine = spikes[spikes["segment_index"] == segment]
        np.testing.assert_array_equal(mine["sample_index"], own["sample_index"])
        np.testing.assert_allclose(mine["time_s"], own["time_s"] + 10.0 * segment)


def test_joblib_workers_and_a_dask_cluster_give_the_loop_table(sweeps):
    from dask.distributed import LocalCluster

    loop = classify_files([sweeps], group=GROUP_EXAMPLE, method="criteria")
    workers = classify_files([sweeps], group=GROUP_EXAMPLE, method="criteria", engine="joblib", n_jobs=2)
    pd.testing.assert_frame_equal(workers, loop)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        on_dask = classify_files([sweeps], group=GROUP_EXAMPLE, method="criteria", scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(on_dask, loop)


def _nwb_spike_times(path) -> np.ndarray:
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r") as io:
        units = io.read().units
        assert len(units) == 1
        return np.asarray(units["spike_times"][0])


def test_nwb_of_a_grouped_cell_has_each_files_times_shifted_by_its_segment_start(sweeps, tmp_path):
    nwb, phy = tmp_path / "nwb", tmp_path / "phy"
    table = classify_files([sweeps], group=GROUP_EXAMPLE, method="criteria", nwb_dir=nwb, phy_dir=phy)
    assert sorted(p.name for p in nwb.iterdir()) == ["A1.nwb", "B7.nwb"]
    expected = []
    (tmp_path / "own").mkdir()
    for segment, path in enumerate(_in_recording_order(sweeps)):
        assert classify_file(path, method="criteria", nwb_dir=tmp_path / "own")["export_error"].tolist() == [""]
        own = _nwb_spike_times(tmp_path / "own" / f"{path.stem}.nwb")
        assert len(own) == 6
        expected.append(own + 10.0 * segment)
    np.testing.assert_allclose(_nwb_spike_times(nwb / "A1.nwb"), np.concatenate(expected))
    # Phy takes one continuous recording: the grouped cell's row says so, the single file is written
    cell, single = table.iloc[0], table.iloc[1]
    assert "Phy" in cell["export_error"] and "sweeps" in cell["export_error"] and cell["error"] == ""
    assert single["export_error"] == "" and (phy / "B7" / "spike_times.npy").is_file()


def test_a_cell_with_one_file_is_named_after_the_cell_in_phy(tmp_path):
    path = write_abf(tmp_path / "C3_001.abf", _trace(1.5, seed=5), FS)
    table = classify_files([path], group=GROUP_EXAMPLE, method="criteria", phy_dir=tmp_path / "phy")
    assert table["file"].tolist() == [str(tmp_path / "C3")] and table["export_error"].tolist() == [""]
    own = classify_file(path, method="criteria", return_analyzer=True)[1].sorting.to_spike_vector()["sample_index"]
    np.testing.assert_array_equal(np.load(tmp_path / "phy" / "C3" / "spike_times.npy").ravel(), own)


def test_an_unreadable_file_makes_the_cells_error_row_that_names_it(sweeps):
    (sweeps / "A1_003.abf").write_bytes(b"not an abf file at all" * 10)
    table = classify_files([sweeps], group=GROUP_EXAMPLE, method="criteria")
    cell = table[table["file"] == str(sweeps / "A1")]
    assert len(cell) == 1 and "A1_003.abf" in cell["error"].iloc[0]
    assert table[table["file"] == str(sweeps / "B7.abf")]["error"].tolist() == [""]


def test_sero_classify_group_on_the_command_line(sweeps, tmp_path, capsys):
    out = tmp_path / "results.csv"
    args = ["classify", str(sweeps), "--method", "criteria", "--quiet", "--out", str(out)]
    assert cli.main([*args, "--group", GROUP_EXAMPLE]) == 0
    assert "2 cell(s) from 4 file(s)" in capsys.readouterr().out
    table = pd.read_csv(out, keep_default_na=False)
    assert table["cell_id"].tolist() == ["A1", "B7"] and table["n_spikes"].tolist() == [18, 6]


def test_files_of_one_cell_with_other_channels_are_an_error_that_names_them(sweeps):
    two_channels = np.stack([_trace(1.5, seed=7), _trace(1.5, seed=8)], axis=1)
    write_abf(sweeps / "A1_009.abf", two_channels, FS, rec_datetime=START + datetime.timedelta(seconds=40))
    table = classify_files([sweeps], group=GROUP_EXAMPLE, method="criteria")
    error = table[table["file"] == str(sweeps / "A1")]["error"].tolist()
    assert len(error) == 1 and "A1_009.abf" in error[0] and "same channels" in error[0]


def test_two_inputs_that_would_export_to_one_file_are_refused_before_work(sweeps, tmp_path, capsys):
    """A grouped cell A1 and a file A1.abf beside it, or files of one name in two folders: one NWB path."""
    write_abf(sweeps / "A1.abf", _trace(1.5, seed=5), FS)
    nwb = tmp_path / "nwb"
    with pytest.raises(SeroError, match="would both export to .*A1.nwb"):
        classify_files([sweeps], group=GROUP_EXAMPLE, method="criteria", nwb_dir=nwb)
    other = tmp_path / "other"
    write_abf(other / "B7.abf", _trace(1.5, seed=6), FS)
    rc = cli.main(
        ["classify", str(sweeps / "B7.abf"), str(other / "B7.abf"), "--method", "criteria", "--nwb", str(nwb)]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "would both export to" in err and "B7.nwb" in err and "Traceback" not in err
    assert not list(nwb.glob("*.nwb"))
