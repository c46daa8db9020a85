"""Trigger detection and 160-sample snippets on synthetic traces with spikes at known places."""

from __future__ import annotations

import numpy as np
import pytest

from spikeinterface_sero.constants import SAMPLING_FREQUENCY as FS
from spikeinterface_sero.errors import SeroError, SnippetError
from spikeinterface_sero.snippets import (
    DetectionParams,
    create_analyzer,
    load_npz,
    read_snippet_csv_folder,
    recording_to_analyzer,
    recording_to_snippets,
    save_npz,
    snippets_from_analyzer,
    snippets_to_sorting,
    write_snippet_csv_folder,
)
from spikeinterface_sero.testing import numpy_recording, synthetic_trace

SPIKES = np.array([0.05, 0.31, 0.77, 1.2, 1.9, 2.45, 3.1, 3.33, 4.0, 4.6])


def reference_triggers(x, fs, spike_times, offset=-35.0, drift=15.0, thr=-50.0):
    """Brute force: first sample at or below threshold relative to the *true* baseline, per spike."""
    t = np.arange(x.size) / fs
    d = x - (offset + drift * np.sin(2 * np.pi * 0.3 * t))
    out = []
    for ts in spike_times:
        lo, hi = int((ts - 0.001) * fs), int((ts + 0.001) * fs)
        below = d[lo:hi] <= thr
        out.append(lo + int(np.flatnonzero(below & ~np.r_[False, below[:-1]])[0]))
    return np.array(out)


def test_triggers_recovered_exactly_with_window_and_alignment():
    x = synthetic_trace(spike_times_s=SPIKES, noise_pa=1.0)
    rec = numpy_recording(x)
    sn = recording_to_snippets(rec)
    expected = reference_triggers(x, FS, SPIKES)
    np.testing.assert_array_equal(sn.trigger_samples, expected)
    assert sn.waveforms.shape == (len(SPIKES), 160)
    assert sn.waveforms.dtype == np.float32
    # the snippet keeps the raw current: it is exactly the trace around each trigger, trigger at index 40
    for k, s in enumerate(expected):
        np.testing.assert_array_equal(sn.waveforms[k], x[s - 40 : s + 120])
    t = expected / FS
    base = -35.0 + 15.0 * np.sin(2 * np.pi * 0.3 * t)
    assert np.all(sn.waveforms[:, 40] - base <= -50) and np.all(sn.waveforms[:, 39] - base > -50)
    assert sn.n_dropped_edge == {"cell": 0} and sn.n_detected == {"cell": len(SPIKES)}


def test_border_spikes_are_dropped_and_counted_not_padded():
    spikes = np.r_[0.0004, SPIKES[1:-1], 5.0 - 0.0015]  # first: < 1 ms before its trigger; last: < 3 ms after
    x = synthetic_trace(spike_times_s=spikes, noise_pa=1.0)
    sn = recording_to_snippets(numpy_recording(x))
    assert len(sn) == len(spikes) - 2
    assert sn.n_dropped_edge == {"cell": 2}
    assert not np.any(sn.waveforms == 0.0)


def test_baseline_tracking_handles_holding_offset_and_drift():
    # holding current of -45 pA with noise: a fixed 0 pA baseline fires on noise, the local baseline does not
    x = synthetic_trace(spike_times_s=SPIKES, noise_pa=3.0, offset_pa=-45.0, drift_pa=30.0)
    fixed = recording_to_snippets(numpy_recording(x), baseline_window_ms=None)
    local = recording_to_snippets(numpy_recording(x))
    assert len(local) == len(SPIKES)
    assert len(fixed) > 3 * len(SPIKES)


def test_dead_time_one_spike_one_trigger():
    x = synthetic_trace(spike_times_s=SPIKES, noise_pa=0.5)
    # add a second dip 0.6 ms after each spike's trigger that crosses again: same spike within dead time
    for ts in SPIKES:
        i = int((ts + 0.0006) * FS)
        x[i : i + 3] -= 150.0
    assert len(recording_to_snippets(numpy_recording(x), dead_time_ms=2.0)) == len(SPIKES)
    assert len(recording_to_snippets(numpy_recording(x), dead_time_ms=0.0)) > len(SPIKES)


def test_mad_threshold_and_positive_polarity():
    x = synthetic_trace(spike_times_s=SPIKES, noise_pa=2.0)
    sn = recording_to_snippets(numpy_recording(x), mad_multiplier=5.0)
    assert len(sn) == len(SPIKES)
    assert -15.0 < sn.thresholds_pa["cell"] < -5.0  # 5 x 2 pA noise
    neg = recording_to_snippets(numpy_recording(x))
    inv = recording_to_snippets(numpy_recording(-x), threshold=50.0, polarity="positive")
    np.testing.assert_array_equal(inv.trigger_samples, neg.trigger_samples)
    np.testing.assert_array_equal(inv.waveforms, -neg.waveforms)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(threshold=50.0),
        dict(threshold=-50.0, polarity="positive"),
        dict(polarity="up"),
        dict(mad_multiplier=-1.0),
        dict(threshold=0.0),
    ],
)
def test_bad_detection_parameters_raise_project_error(kwargs):
    with pytest.raises(SeroError):
        DetectionParams(**kwargs)


@pytest.mark.parametrize("fs", [20_000.0, 50_000.0])
def test_other_rates_resampled_give_same_triggers_within_one_sample(fs):
    import spikeinterface.preprocessing as spre

    ref = recording_to_snippets(numpy_recording(synthetic_trace(spike_times_s=SPIKES, noise_pa=0.0)))
    rec = numpy_recording(
        synthetic_trace(sampling_frequency=fs, spike_times_s=SPIKES, noise_pa=0.0), sampling_frequency=fs
    )
    rec40 = spre.resample(rec, 40000)
    sn = recording_to_snippets(rec40)
    assert sn.waveforms.shape == (len(SPIKES), 160)
    assert np.max(np.abs(sn.trigger_samples - ref.trigger_samples)) <= 1


def test_rate_other_than_40k_is_refused():
    rec = numpy_recording(
        synthetic_trace(sampling_frequency=20_000.0, spike_times_s=SPIKES), sampling_frequency=20_000.0
    )
    with pytest.raises(SnippetError, match="40 kHz"):
        recording_to_snippets(rec)


def test_cap_per_cell_is_reproducible_and_keeps_all_triggers():
    spikes = np.arange(0.02, 4.98, 0.05)
    rec = numpy_recording(synthetic_trace(spike_times_s=spikes, noise_pa=1.0))
    a = recording_to_snippets(rec, max_spikes_per_cell=10, seed=1)
    b = recording_to_snippets(rec, max_spikes_per_cell=10, seed=1)
    c = recording_to_snippets(rec, max_spikes_per_cell=10, seed=2)
    assert len(a) == 10 and len(a.all_trigger_samples) == len(spikes)
    np.testing.assert_array_equal(a.trigger_samples, b.trigger_samples)
    assert not np.array_equal(a.trigger_samples, c.trigger_samples)
    assert set(a.trigger_samples) <= set(a.all_trigger_samples)


def test_zero_cap_is_refused_for_the_analyzer_too():
    # a cap of 0 used to give an analyzer without spikes: every cell silently 'undetermined'
    from spikeinterface_sero.snippets import recording_to_analyzer

    rec = numpy_recording(synthetic_trace(spike_times_s=SPIKES, noise_pa=1.0))
    with pytest.raises(SeroError, match="max_spikes_per_cell"):
        recording_to_analyzer(rec, max_spikes_per_cell=0)


def test_multi_segment_multi_channel_and_analyzer_waveforms_match():
    seg0 = np.c_[
        synthetic_trace(duration_s=2.0, spike_times_s=[0.3, 1.1], seed=1),
        synthetic_trace(duration_s=2.0, spike_times_s=[0.5], seed=2),
    ]
    seg1 = np.c_[
        synthetic_trace(duration_s=1.5, spike_times_s=[0.2, 0.9, 1.3], seed=3),
        synthetic_trace(duration_s=1.5, spike_times_s=[], seed=4),
    ]
    rec = numpy_recording([seg0, seg1])
    sn = recording_to_snippets(rec)
    assert sorted(sn.cells) == ["cell_ch0", "cell_ch1"]
    assert sn.n_detected == {"cell_ch0": 5, "cell_ch1": 1}
    assert np.bincount(sn.segment_index[sn.unit_ids == "0"]).tolist() == [2, 3]
    sorting = snippets_to_sorting(sn, rec)
    analyzer = create_analyzer(sorting, rec)
    wf = analyzer.get_extension("waveforms").get_data()
    assert analyzer.is_sparse() and wf.shape == (6, 160, 1)  # each cell on its own channel only
    back = snippets_from_analyzer(analyzer)
    order = np.lexsort((back.trigger_samples, back.segment_index, back.unit_ids))
    ref = np.lexsort((sn.trigger_samples, sn.segment_index, sn.unit_ids))
    np.testing.assert_array_equal(back.waveforms[order], sn.waveforms[ref])
    np.testing.assert_array_equal(back.cell_ids[order], sn.cell_ids[ref])


def test_spike_cap_is_the_same_selection_in_both_paths():
    """The snippet path and the analyzer path keep the same spikes under a cap (both use SpikeInterface's
    random_spikes_selection with the same seed)."""
    times = np.arange(0.05, 4.9, 0.09)
    rec = numpy_recording(
        np.c_[synthetic_trace(spike_times_s=times, seed=5), synthetic_trace(spike_times_s=times[::2], seed=6)]
    )
    sn = recording_to_snippets(rec, max_spikes_per_cell=7, seed=11)
    assert np.bincount(sn.unit_ids.astype(int)).tolist() == [7, 7]
    analyzer = recording_to_analyzer(rec, max_spikes_per_cell=7, seed=11)
    back = snippets_from_analyzer(analyzer)
    assert sorted(zip(back.unit_ids, back.segment_index, back.trigger_samples)) == sorted(
        zip(sn.unit_ids, sn.segment_index, sn.trigger_samples)
    )
    other = recording_to_snippets(rec, max_spikes_per_cell=7, seed=12)
    assert set(other.trigger_samples) != set(sn.trigger_samples)  # the seed matters


def test_csv_round_trip_is_exact(tmp_path):
    x = synthetic_trace(spike_times_s=SPIKES, noise_pa=2.0)
    sn = recording_to_snippets(numpy_recording(x))
    assert write_snippet_csv_folder(sn, tmp_path) == len(SPIKES)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0].startswith("cell_trigger_") and names[0].endswith(".csv")
    lines = (tmp_path / names[0]).read_text().splitlines()
    assert len(lines) == 161 and lines[0].count(",") == 1
    X, cells, samples = read_snippet_csv_folder(tmp_path)
    np.testing.assert_array_equal(X, sn.waveforms)  # bit-exact
    assert list(cells) == ["cell"] * len(SPIKES)
    np.testing.assert_array_equal(samples, sn.trigger_samples)
    with pytest.raises(SeroError, match="exists"):
        write_snippet_csv_folder(sn, tmp_path)


def test_csv_refusal_writes_nothing(tmp_path):
    # a clash on a later spike used to leave the earlier spikes of the cell written (mixed into another cell)
    sn = recording_to_snippets(numpy_recording(synthetic_trace(spike_times_s=SPIKES, noise_pa=2.0)))
    write_snippet_csv_folder(sn, tmp_path)
    last = sorted(tmp_path.iterdir(), key=lambda p: int(p.stem.rsplit("_", 1)[1]))[-1]
    keep = last.read_text()
    for p in tmp_path.iterdir():
        if p != last:
            p.unlink()
    with pytest.raises(SeroError, match="exists"):
        write_snippet_csv_folder(sn, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [last.name] and last.read_text() == keep


def test_csv_reader_rejects_malformed_file(tmp_path):
    (tmp_path / "A1_trigger_100.csv").write_text("t,i\n" + "\n".join("0,1" for _ in range(150)))
    with pytest.raises(SnippetError, match="160-row"):
        read_snippet_csv_folder(tmp_path)
    with pytest.warns(UserWarning, match="Skipped 1"), pytest.raises(SnippetError, match="no"):
        read_snippet_csv_folder(tmp_path, on_bad="skip")


def test_npz_round_trip(tmp_path):
    sn = recording_to_snippets(numpy_recording(synthetic_trace(spike_times_s=SPIKES)))
    back = load_npz(save_npz(sn, tmp_path / "s.npz"))
    np.testing.assert_array_equal(back.waveforms, sn.waveforms)
    np.testing.assert_array_equal(back.trigger_samples, sn.trigger_samples)
    assert back.detection == sn.detection and list(back.cell_ids) == list(sn.cell_ids)


def test_negative_seed_is_a_sero_error():
    # numpy's ValueError used to escape as a traceback (sero classify/snippets --max-spikes 5 --seed -1)
    from spikeinterface_sero.snippets import recording_to_analyzer

    rec = numpy_recording(synthetic_trace(spike_times_s=SPIKES, noise_pa=1.0))
    with pytest.raises(SeroError, match="seed"):
        recording_to_snippets(rec, max_spikes_per_cell=2, seed=-1)
    with pytest.raises(SeroError, match="seed"):
        recording_to_analyzer(rec, max_spikes_per_cell=2, seed=-1)


@pytest.mark.parametrize("format", ["memory", "binary_folder"])
def test_a_silent_last_sweep_still_counts(tmp_path, format):
    """SpikeInterface's NumpySorting drops trailing segments without spikes; the analyzer keeps every sweep,
    so the firing rate is over the whole recording, and the detection settings survive saving."""
    import warnings

    from spikeinterface_sero import compute_serotonergic, load_sorting_analyzer
    from spikeinterface_sero.datasets import simulate_drn_recording
    from spikeinterface_sero.testing import numpy_recording

    firing = simulate_drn_recording("non_serotonergic", duration_s=20, seed=3).traces.reshape(-1)
    silent = np.random.default_rng(0).normal(0, 2, size=firing.size).astype(np.float32)
    folder = tmp_path / "analyzer" if format != "memory" else None
    analyzer = recording_to_analyzer(numpy_recording([firing, silent]), format=format, folder=folder)
    if folder is not None:
        analyzer = load_sorting_analyzer(folder)
    assert analyzer.get_num_segments() == 2
    assert "sero_detection" in analyzer.sorting.get_annotation_keys()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compute_serotonergic(analyzer)
    units = analyzer.get_extension("serotonergic").get_data("units")
    n_spikes = analyzer.sorting.count_num_spikes_per_unit()[analyzer.unit_ids[0]]
    assert units["firing_rate_hz"].iloc[0] == pytest.approx(n_spikes / 40.0, rel=1e-3)


# ---------------------------------------------------------------------- folders of per-spike CSV files
def _cell_snippets(cells: dict[str, int], seed: int = 0):
    """Snippets of the named cells (name: number of spikes), spike-like enough for the folder functions."""
    from spikeinterface_sero.snippet_formats import Snippets

    rng = np.random.default_rng(seed)
    ids = np.concatenate([np.full(n, cell) for cell, n in cells.items()])
    waveforms = (rng.normal(0.0, 3.0, (ids.size, 160)) - 80.0 * (np.arange(160) == 45)).astype(np.float32)
    triggers = np.concatenate([np.arange(n, dtype=np.int64) * 4000 + 100 for n in cells.values()])
    zeros = np.zeros(ids.size, np.int64)
    return Snippets(waveforms, triggers, zeros, ids, ids)


def test_the_snippet_folder_functions_live_in_their_layer_and_pipeline_reads_them():
    from spikeinterface_sero import pipeline, snippet_folders

    for name in ("read_snippet_folder", "write_snippet_folder", "check_snippet_folder", "read_snippet_input"):
        assert getattr(pipeline, name) is getattr(snippet_folders, name)  # one reader, imported above
    source = (snippet_folders.__file__, pipeline.__file__)
    assert "from .pipeline" not in open(source[0]).read() and "def read_snippet_folder" not in open(source[1]).read()


def test_a_written_folder_reads_back_and_a_partial_one_is_refused(tmp_path):
    from spikeinterface_sero.snippet_folders import SNIPPET_MANIFEST, read_snippet_folder, write_snippet_folder

    snippets = _cell_snippets({"A140313#073": 5, "A140313#074": 3})
    assert write_snippet_folder([snippets], tmp_path / "cells") == 8
    back = read_snippet_folder(tmp_path / "cells")
    assert back.cells == ["A140313#073", "A140313#074"] and len(back) == 8
    np.testing.assert_array_equal(back.waveforms[back.cell_ids == "A140313#074"], snippets.waveforms[5:])
    assert (tmp_path / "cells" / SNIPPET_MANIFEST).is_file()
    next((tmp_path / "cells").glob("A140313#074_*.csv")).unlink()  # a file lost after the write
    with pytest.raises(SnippetError, match="holds 7 per-spike files, but its manifest lists 8"):
        read_snippet_folder(tmp_path / "cells")
    partial = tmp_path / ".cells.123-abc.part"
    write_snippet_csv_folder(snippets, partial)
    with pytest.raises(SnippetError, match="still being written"):
        read_snippet_folder(partial)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("SER", ("serotonergic", "")),
        ("serotonergic", ("serotonergic", "")),
        ("Non-Serotonergic", ("non_serotonergic", "")),
        ("nser", ("non_serotonergic", "")),
        ("SER_atypical", ("serotonergic", "atypical")),
        ("atypical SER", ("serotonergic", "atypical")),
        ("Serotonergic-typical", ("serotonergic", "typical")),
        ("NSER_atypical", None),  # atypical is a kind of serotonergic cell
        ("plots", None),
        ("SERT", None),
    ],
)
def test_class_folder_names(name, expected):
    from spikeinterface_sero.snippet_folders import folder_class

    assert folder_class(name) == expected


@pytest.mark.parametrize(
    "cell, day",
    [
        ("A140313#073", "2014-03-13"),  # the authors' ids: a letter, yymmdd, #, the file number
        ("F160324#002", "2016-03-24"),
        ("A131024#140", "2013-10-24"),
        ("A140313#073_ch1", "2014-03-13"),
        ("A141332#001", ""),  # no 32nd day
        ("labday01_c000", ""),
        ("20140313", ""),  # 8 digits: not yymmdd
    ],
)
def test_the_day_of_a_cell_from_its_name(cell, day):
    from spikeinterface_sero.snippet_folders import cell_day

    assert cell_day(cell) == day


def test_class_folders_of_a_lab_layout(tmp_path):
    """SER/ with every cell's files side by side, NSER/ with a folder per cell, SER_atypical/ per day."""
    from spikeinterface_sero.snippet_folders import class_folders

    write_snippet_csv_folder(_cell_snippets({"A140313#001": 3, "A140313#002": 2}), tmp_path / "SER")
    write_snippet_csv_folder(_cell_snippets({"A140313#003": 2}), tmp_path / "NSER" / "A140313#003")
    write_snippet_csv_folder(_cell_snippets({"A140314#004": 2}), tmp_path / "NSER" / "A140314#004")
    write_snippet_csv_folder(_cell_snippets({"A140314#005": 2}), tmp_path / "SER_atypical" / "140314")
    (tmp_path / "README.txt").write_text("the lab's notes")
    (tmp_path / "plots").mkdir()  # no snippet files: not a class, not an error
    found = [(str(folder.relative_to(tmp_path)), label, kind) for folder, label, kind in class_folders(tmp_path)]
    assert found == [
        ("NSER/A140313#003", "non_serotonergic", ""),
        ("NSER/A140314#004", "non_serotonergic", ""),
        ("SER", "serotonergic", ""),
        ("SER_atypical/140314", "serotonergic", "atypical"),
    ]


def test_bad_class_layouts_are_one_error_each(tmp_path):
    from spikeinterface_sero.snippet_folders import class_folders

    one = _cell_snippets({"A140313#001": 2})
    write_snippet_csv_folder(one, tmp_path / "flat")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("")
    with pytest.raises(SnippetError, match="holds no class folders of per-spike CSV files; name them SER"):
        class_folders(tmp_path / "notes")
    with pytest.raises(SnippetError, match="holds per-spike files outside a class folder"):
        class_folders(tmp_path / "flat")
    with pytest.raises(SnippetError, match="is not a folder"):
        class_folders(tmp_path / "missing")
    unknown = tmp_path / "unknown"
    write_snippet_csv_folder(one, unknown / "SER")
    write_snippet_csv_folder(one, unknown / "NSER_atypical")
    with pytest.raises(SnippetError, match="'NSER_atypical' is not a class name"):
        class_folders(unknown)
    empty = tmp_path / "empty"
    write_snippet_csv_folder(one, empty / "SER")
    (empty / "NSER").mkdir()
    with pytest.raises(SnippetError, match="the class folder .*NSER holds no"):
        class_folders(empty)
    killed = tmp_path / "killed"
    write_snippet_csv_folder(one, killed / "SER")
    write_snippet_csv_folder(one, killed / "NSER" / ".A140313#009.77-x.part")
    with pytest.raises(SnippetError, match="still being written"):
        class_folders(killed)
