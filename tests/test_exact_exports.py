"""Every exported time, label and text equals what the recording and the extension hold: multi-sweep NWB and
Neo times (ABF 1 and 2, episodic with gaps), relabels in CSV/NWB/Phy, safe text, long names, Phy raw data."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import neo
import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_ABF

import spikeinterface_sero as sero
from spikeinterface_sero.datasets import write_abf
from spikeinterface_sero.errors import DemoModelWarning
from spikeinterface_sero.export import (
    PHY_SPIKE_PROBABILITY,
    export_to_phy,
    output_path,
    results_table,
    spike_times,
    write_nwb,
    write_table,
)
from spikeinterface_sero.neo_bridge import annotate_spiketrains
from spikeinterface_sero.schema import RESULT_COLUMNS, RESULT_SCHEMA
from spikeinterface_sero.testing import synthetic_trace
from spikeinterface_sero.text import clean_text, printable, short_file_name, spreadsheet_safe

FS = 40000.0
#: sweep starts with gaps between the 1-s sweeps, and where the spikes are in each sweep
SWEEP_STARTS = [0.0, 2.5, 7.0]
SPIKES = [0.2, 0.45, 0.8]


def _classified(path):
    analyzer = sero.abf_to_analyzer(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DemoModelWarning)
        analyzer.compute("serotonergic", n_boot=50, progress_bar=False)
    return analyzer


def _nwb_spike_times(path) -> list[np.ndarray]:
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r") as io:
        return [np.asarray(t) for t in io.read().units.to_dataframe()["spike_times"]]


@pytest.fixture(scope="module", params=[1, 2], ids=["abf1", "abf2"])
def episodic(request, tmp_path_factory):
    """An episodic file of 3 one-second sweeps starting at 0, 2.5 and 7 s, three spikes in each, classified."""
    sweeps = [synthetic_trace(duration_s=1.0, spike_times_s=SPIKES, seed=s) for s in range(len(SWEEP_STARTS))]
    folder = tmp_path_factory.mktemp(f"abf{request.param}")
    path = write_abf(
        folder / "episodic.abf",
        sweeps,
        FS,
        mode="episodic",
        sweep_t_starts=SWEEP_STARTS,
        version=request.param,
        data_format="float32",
    )
    return path, _classified(path)


def test_neo_reads_the_sweep_starts_we_wrote(episodic):
    path, _ = episodic
    block = neo.AxonIO(str(path)).read_block()
    assert [float(s.t_start.rescale("s")) for s in block.segments] == pytest.approx(SWEEP_STARTS)


def test_nwb_spike_times_are_the_recording_times_of_every_sweep(episodic, tmp_path):
    path, analyzer = episodic
    recording = analyzer.recording
    (times,) = _nwb_spike_times(write_nwb(analyzer, tmp_path / "e.nwb"))
    unit = analyzer.unit_ids[0]
    expected = np.concatenate(
        [
            recording.get_times(k)[analyzer.sorting.get_unit_spike_train(unit, segment_index=k)]
            for k in range(recording.get_num_segments())
        ]
    )
    np.testing.assert_allclose(times, expected, rtol=0, atol=1e-9)
    # independent of the reader: each spike lies where it was written, sweep start + time in the sweep
    written = np.add.outer(SWEEP_STARTS, SPIKES).ravel()
    assert times.size == written.size
    assert np.abs(times - written).max() < 2e-3
    assert times.max() > SWEEP_STARTS[-1]  # not restarting at 0 in every sweep
    # one definition of a spike's time: the extension's own (time_s of the classified spikes)
    served = analyzer.get_extension("serotonergic").get_data("spikes")["time_s"].to_numpy()
    np.testing.assert_allclose(np.sort(served), times, rtol=0, atol=1e-12)


def test_nwb_times_of_a_reloaded_analyzer_without_its_recording(episodic, tmp_path):
    """The sweep starts are stored with the result: the .abf file gone, the NWB file has the same times."""
    import shutil

    path, _ = episodic
    copy = shutil.copy(path, tmp_path / "moved.abf")
    analyzer = _classified(copy)
    analyzer.save_as(format="binary_folder", folder=tmp_path / "analyzer")
    (times,) = _nwb_spike_times(write_nwb(analyzer, tmp_path / "a.nwb"))
    Path(copy).unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SpikeInterface: the recording could not be loaded
        reloaded = sero.load_sorting_analyzer(tmp_path / "analyzer")
    assert not reloaded.has_recording()
    (again,) = _nwb_spike_times(write_nwb(reloaded, tmp_path / "b.nwb"))
    np.testing.assert_array_equal(again, times)
    assert again.max() > SWEEP_STARTS[-1]


def test_nwb_observation_intervals_are_the_sweeps(episodic, tmp_path):
    from pynwb import NWBHDF5IO

    _, analyzer = episodic
    with NWBHDF5IO(str(write_nwb(analyzer, tmp_path / "e.nwb")), "r") as io:
        intervals = np.asarray(io.read().units.to_dataframe()["obs_intervals"].iloc[0])
    np.testing.assert_allclose(intervals[:, 0], SWEEP_STARTS)
    np.testing.assert_allclose(intervals[:, 1] - intervals[:, 0], 1.0, atol=1e-3)


def test_neo_spiketrains_start_with_their_segment(episodic):
    path, analyzer = episodic
    block = neo.AxonIO(str(path)).read_block()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DemoModelWarning)
        trains = annotate_spiketrains(block, n_boot=50)
    assert len(trains) == len(SWEEP_STARTS)
    for k, (train, segment) in enumerate(zip(trains, block.segments)):
        assert train.segment is segment and train in segment.spiketrains
        assert float(train.t_start.rescale("s")) == pytest.approx(float(segment.t_start.rescale("s")))
        signal_start = float(segment.analogsignals[0].t_start.rescale("s"))
        assert float(train.t_start.rescale("s")) == pytest.approx(signal_start)
        np.testing.assert_allclose(
            train.times.rescale("s").magnitude, spike_times(analyzer, analyzer.unit_ids[0], k), atol=1e-9
        )
        np.testing.assert_allclose(train.times.rescale("s").magnitude, np.add(SWEEP_STARTS[k], SPIKES), atol=2e-3)
    # annotated from the extension's unit table, every column; 9 spikes (< 20): an unsure call, said so
    units = analyzer.get_extension("serotonergic").get_data()
    for column, value in units.iloc[0].items():
        name = column if column.startswith("sero_") else f"sero_{column}"
        assert trains[0].annotations[name] == pytest.approx(value, nan_ok=True), column
    assert trains[0].annotations["sero_call"] == "unsure" and trains[0].annotations["sero_unsure_reasons"]
    # and back: the block and its trains give an analyzer with the same spikes in the same sweeps
    from spikeinterface_sero.neo_bridge import analyzer_from_neo

    back = analyzer_from_neo(block, spiketrains=trains)
    for k in range(len(SWEEP_STARTS)):
        np.testing.assert_array_equal(
            back.sorting.get_unit_spike_train(back.unit_ids[0], segment_index=k),
            analyzer.sorting.get_unit_spike_train(analyzer.unit_ids[0], segment_index=k),
        )
        assert back.recording.get_start_time(k) == pytest.approx(SWEEP_STARTS[k])


def test_neo_spiketrains_of_your_own_give_the_same_answer(episodic):
    """Trains made elsewhere (no Neo segment: their t_start/t_stop tell the sweeps apart) go through the same
    extension: the same cell answer and per-spike P(SER) as the Block route."""
    import quantities as pq

    path, _ = episodic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DemoModelWarning)
        trains = annotate_spiketrains(neo.AxonIO(str(path)).read_block(), n_boot=50)
        copies = [
            neo.SpikeTrain(
                t.times,
                t_start=t.t_start,
                t_stop=t.t_stop,
                waveforms=t.waveforms,
                sampling_rate=t.sampling_rate,
                left_sweep=t.left_sweep,
                cell_id="mine",
            )
            for t in reversed(trains)  # in any order
        ]
        annotate_spiketrains(copies, n_boot=50)
    for original, copy in zip(reversed(trains), copies):
        assert copy.annotations["sero_probability"] == pytest.approx(original.annotations["sero_probability"])
        assert copy.annotations["sero_call"] == original.annotations["sero_call"]
        assert copy.annotations["sero_firing_rate_hz"] == pytest.approx(original.annotations["sero_firing_rate_hz"])
        np.testing.assert_allclose(copy.array_annotations["sero_p_ser"], original.array_annotations["sero_p_ser"])
        assert copy.t_start == original.t_start and copy.times.units == pq.s
    with pytest.raises(sero.errors.ParameterError, match="threshold only apply to a neo.Block"):
        annotate_spiketrains(copies, threshold=-40.0)


@pytest.mark.parametrize("name", ["2018_11_16_sh_0006.abf", "05210017_vc_abf1.abf"])
def test_shared_multi_sweep_files(name, tmp_path):
    """Real episodic files (ABF 2 and ABF 1): NWB spike times follow Neo's segment starts."""
    path = SHARED_ABF / name
    if not path.is_file():
        pytest.skip(f"{path} is not present on this machine")
    starts = [float(s.t_start.rescale("s")) for s in neo.AxonIO(str(path)).read_block(lazy=True).segments]
    analyzer = _classified(path)
    assert len(starts) == analyzer.get_num_segments() > 1
    times = np.concatenate(_nwb_spike_times(write_nwb(analyzer, tmp_path / "f.nwb")))
    expected = []
    for unit in analyzer.unit_ids:
        for k, start in enumerate(starts):
            samples = analyzer.sorting.get_unit_spike_train(unit, segment_index=k)
            expected.append(start + samples / analyzer.sampling_frequency)
    np.testing.assert_allclose(np.sort(times), np.sort(np.concatenate(expected)), atol=1e-9)
    if name.startswith("2018"):
        assert times.max() > starts[-1]  # 60 sweeps 5 s apart: the last spike is near 295 s, not 0.0017 s


@pytest.fixture(scope="module")
def one_cell(tmp_path_factory):
    rng = np.random.default_rng(3)
    trace = synthetic_trace(duration_s=3.0, spike_times_s=np.sort(rng.uniform(0.05, 2.9, 25)))
    path = write_abf(tmp_path_factory.mktemp("one") / "cell.abf", trace, FS, data_format="float32")
    return path, _classified(path)


def test_a_relabel_reaches_csv_nwb_and_phy(one_cell, tmp_path):
    from pynwb import NWBHDF5IO
    from spikeinterface.extractors import read_phy

    _, analyzer = one_cell
    extension = analyzer.get_extension("serotonergic")
    unit = analyzer.unit_ids[0]
    model_call = extension.get_data().loc[unit, "sero_label"]
    before = analyzer.sorting.get_property("sero_manual_label")
    # a person's label, written as spikeinterface.curation.apply_curation writes it: the sorting property
    analyzer.sorting.set_property("sero_manual_label", np.array(["serotonergic_atypical"]))
    try:
        table = results_table(analyzer, file="cell.abf")
        back = pd.read_csv(write_table(table, tmp_path / "r.csv"), keep_default_na=False)
        assert back["sero_manual_label"].tolist() == ["serotonergic_atypical"]
        assert back["sero_label"].tolist() == [model_call]  # the model's call kept beside it
        with NWBHDF5IO(str(write_nwb(analyzer, tmp_path / "r.nwb")), "r") as io:
            units = io.read().units.to_dataframe()
        assert units["sero_manual_label"].tolist() == ["serotonergic_atypical"]
        assert units["sero_call"].tolist() == [extension.get_data().loc[unit, "sero_call"]]
        phy = read_phy(export_to_phy(analyzer, tmp_path / "phy"))
        assert list(phy.get_property("sero_manual_label")) == ["serotonergic_atypical"]
    finally:
        analyzer.sorting.set_property("sero_manual_label", before)


def test_phy_has_the_recording_in_pa_and_the_raw_spike_probability(one_cell, tmp_path):
    _, analyzer = one_cell
    folder = export_to_phy(analyzer, tmp_path / "phy")
    params = (folder / "params.py").read_text()
    assert "dat_path = r'recording.dat'" in params and "dtype = 'float32'" in params
    traces = np.fromfile(folder / "recording.dat", dtype=np.float32).reshape(-1, analyzer.get_num_channels())
    expected = analyzer.recording.get_traces(return_in_uV=True)  # pA in SpikeInterface's "uV" slots
    np.testing.assert_array_equal(traces, expected)
    spike_samples = np.load(folder / "spike_times.npy").ravel()
    probabilities = np.load(folder / f"spike_{PHY_SPIKE_PROBABILITY}.npy")
    assert probabilities.shape == spike_samples.shape
    spikes = analyzer.get_extension("serotonergic").get_data("spikes")
    by_sample = dict(zip(spikes["sample_index"], spikes["p_ser"]))
    np.testing.assert_allclose(probabilities, [by_sample[s] for s in spike_samples])


def test_capped_cells_export_every_spike_and_mark_the_unclassified(one_cell, tmp_path):
    """With a waveform cap, NWB and Phy still hold every spike of the sorting; Phy marks the spikes the model
    did not see with -1 (not NaN, which Phy would show as 0)."""
    path, _ = one_cell
    analyzer = sero.abf_to_analyzer(path, max_spikes_per_cell=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DemoModelWarning)
        analyzer.compute("serotonergic", n_boot=50, progress_bar=False)
    every = analyzer.sorting.get_unit_spike_train(analyzer.unit_ids[0])
    (times,) = _nwb_spike_times(write_nwb(analyzer, tmp_path / "c.nwb"))
    np.testing.assert_allclose(times, every / FS, atol=1e-9)
    folder = export_to_phy(analyzer, tmp_path / "phy", copy_binary=False)
    assert "dat_path = None" in (folder / "params.py").read_text()
    probabilities = np.load(folder / f"spike_{PHY_SPIKE_PROBABILITY}.npy")
    spikes = analyzer.get_extension("serotonergic").get_data("spikes")
    assert probabilities.size == every.size == 25 and (probabilities == -1).sum() == 25 - len(spikes) == 15
    seen = np.isin(every, spikes["sample_index"])
    np.testing.assert_allclose(probabilities[seen], spikes.sort_values("sample_index")["p_ser"])


def test_phy_refuses_an_episodic_file_in_one_clear_error(episodic, tmp_path):
    _, analyzer = episodic
    with pytest.raises(sero.SeroError, match="3 segments.*NWB"):
        export_to_phy(analyzer, tmp_path / "phy")
    assert not (tmp_path / "phy").exists()


def test_results_table_follows_the_schema(one_cell):
    _, analyzer = one_cell
    table = results_table(analyzer, file="cell.abf")
    assert list(table.columns) == RESULT_COLUMNS
    assert table["export_error"].tolist() == [""] and table["error"].tolist() == [""]
    kinds = {
        "text": pd.api.types.is_string_dtype,  # object of str, or pandas' own string dtype
        "float": pd.api.types.is_float_dtype,
        "integer": pd.api.types.is_integer_dtype,
        "boolean": pd.api.types.is_bool_dtype,
    }
    for name, column in RESULT_SCHEMA.items():
        assert kinds[column.kind](table[name]), name
    assert table["sero_call"].map(type).eq(str).all()


def test_csv_cells_that_would_run_as_formulas_are_neutralised(one_cell, tmp_path):
    _, analyzer = one_cell
    table = results_table(analyzer, file='=HYPERLINK("http://x")|cmd.abf')
    table["cell_id"] = ["@SUM(A1)"]
    table["sero_probability"] = [-0.25]  # a number starting with "-" stays a number
    for suffix in (".csv", ".tsv"):
        back = pd.read_csv(write_table(table, tmp_path / f"r{suffix}"), sep="," if suffix == ".csv" else "\t")
        assert back["file"].iloc[0] == '\'=HYPERLINK("http://x")|cmd.abf'
        assert back["cell_id"].iloc[0] == "'@SUM(A1)"
        assert back["sero_probability"].iloc[0] == -0.25
        assert back["sero_label"].iloc[0] == table["sero_label"].iloc[0]
    records = pd.read_json(write_table(table, tmp_path / "r.json"))
    assert records["file"].iloc[0] == table["file"].iloc[0]  # JSON is data, not a spreadsheet: unchanged
    assert [spreadsheet_safe(v) for v in ("+1", "-x", "\tx", "\rx", "ok", 3, -2.5)] == [
        "'+1",
        "'-x",
        "'\tx",
        "'\rx",
        "ok",
        3,
        -2.5,
    ]


def test_printable_escapes_what_a_terminal_would_act_on():
    assert printable("a\x1b[31mred\x07.abf") == "a\\x1b[31mred\\x07.abf"
    assert printable("two\nlines\r") == "two\\x0alines\\x0d"
    assert printable("\u202eevil.abf") == "\\u202eevil.abf"  # right-to-left override
    assert printable("cellule_é_µ.abf") == "cellule_é_µ.abf"


def test_nwb_text_is_printable_bounded_and_without_nul(one_cell, tmp_path):
    from pynwb import NWBHDF5IO

    garbage = "\x00\x01\xff" * 128  # 384 characters, as an ABF 1 header without a protocol name
    assert clean_text(garbage) == "\xff" * 128
    assert clean_text(b"abc\x00def") == "abcdef" and len(clean_text("x" * 50, max_length=10)) == 10
    _, analyzer = one_cell
    recording = analyzer.recording
    old = recording.get_annotation("abf_protocol")
    recording.annotate(abf_protocol=garbage + "\x00" * 10)
    try:
        path = write_nwb(analyzer, tmp_path / "g.nwb", experimenter="Doe\x00, Jane\x1b", lab="x" * 5000)
    finally:
        recording.annotate(abf_protocol=old)
    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        assert "\x00" not in nwb.protocol and nwb.experimenter[0] == "Doe, Jane" and len(nwb.lab) <= 1000


def test_an_abf1_header_with_binary_garbage_for_a_protocol_still_gives_its_nwb_file(tmp_path):
    """ABF 1 files store the protocol path in 384 bytes; without a protocol they may hold anything there."""
    from pynwb import NWBHDF5IO

    from spikeinterface_sero.pipeline import classify_files

    path = write_abf(tmp_path / "old.abf", synthetic_trace(duration_s=1.0, spike_times_s=[0.2, 0.5]), FS, version=1)
    data = bytearray(path.read_bytes())
    data[4898 : 4898 + 384] = bytes(np.random.default_rng(0).integers(0, 256, 384, dtype=np.uint8))  # sProtocolPath
    path.write_bytes(bytes(data))
    (tmp_path / "nwb").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DemoModelWarning)
        table = classify_files([path], nwb_dir=tmp_path / "nwb")
    assert table["error"].tolist() == [""] and table["export_error"].tolist() == [""]
    with NWBHDF5IO(str(tmp_path / "nwb" / "old.nwb"), "r") as io:
        protocol = io.read().protocol
    assert protocol is None or ("\x00" not in protocol and protocol.isprintable())


def test_long_names_are_shortened_uniquely(tmp_path):
    long_a, long_b = "a" * 240 + "_1", "a" * 240 + "_2"
    name_a, name_b = short_file_name(long_a + ".nwb"), short_file_name(long_b + ".nwb")
    assert name_a != name_b and name_a.endswith(".nwb") and len(name_a.encode()) <= 200
    assert short_file_name("cell.nwb") == "cell.nwb"
    assert len(short_file_name("é" * 150 + ".nwb").encode()) <= 200  # bytes, not characters
    assert output_path(tmp_path, tmp_path / "x.abf", ".nwb") == tmp_path / "x.nwb"


def test_a_file_with_a_long_name_gets_its_nwb_file(tmp_path):
    from spikeinterface_sero.pipeline import classify_files

    stem = "recording_" + "x" * 230  # 244 characters with .abf: a legal name, too long with .nwb and a temp suffix
    trace = synthetic_trace(duration_s=1.0, spike_times_s=[0.2, 0.5])
    path = write_abf(tmp_path / f"{stem}.abf", trace, FS, data_format="float32")
    (tmp_path / "nwb").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DemoModelWarning)
        table = classify_files([path], nwb_dir=tmp_path / "nwb")
    assert table["error"].tolist() == [""]
    (written,) = list((tmp_path / "nwb").iterdir())
    assert written == output_path(tmp_path / "nwb", path, ".nwb") and written.name.startswith("recording_xxx")


def test_exported_files_get_the_users_umask_mode(one_cell, tmp_path):
    """Like open(): 0666 less the umask (an atomic write through a temporary file must not leave 0600)."""
    _, analyzer = one_cell
    old = os.umask(0o022)
    try:
        csv = write_table(results_table(analyzer), tmp_path / "r.csv")
        nwb = write_nwb(analyzer, tmp_path / "r.nwb")
        phy = export_to_phy(analyzer, tmp_path / "phy")
    finally:
        os.umask(old)
    for path in (csv, nwb, *phy.iterdir()):
        assert oct(path.stat().st_mode & 0o777) == oct(0o644), path.name
