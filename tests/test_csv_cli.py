"""The authors' per-spike CSV folders on the command line: classify, snippets, train and evaluate."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from spikeinterface_sero.cli import main
from spikeinterface_sero.constants import SAMPLING_FREQUENCY as FS
from spikeinterface_sero.datasets.abf_writer import write_abf
from spikeinterface_sero.snippets import abf_to_snippets, load_npz, read_snippet_csv_folder, write_snippet_csv_folder
from spikeinterface_sero.testing import synthetic_trace


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """Two one-cell .abf files with irregular firing, of different spike shapes and noise."""
    folder = tmp_path_factory.mktemp("abf")
    rng = np.random.default_rng(7)
    first = np.sort(rng.uniform(0.05, 5.9, 40))
    second = np.sort(rng.uniform(0.05, 5.9, 25))
    a = write_abf(
        folder / "A240101#001.abf",
        synthetic_trace(duration_s=6.0, spike_times_s=first, seed=1),
        FS,
        data_format="float32",
    )
    b = write_abf(
        folder / "A240102#002.abf",
        synthetic_trace(duration_s=6.0, spike_times_s=second, seed=5, noise_pa=6.0),
        FS,
        data_format="float32",
    )
    return a, b


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    """Random weights: probabilities away from 0 and 1, so that an identity of P(SER) means something."""
    from spikeinterface_sero.model import random_ensemble, save_model

    folder = tmp_path_factory.mktemp("model") / "random"
    save_model(random_ensemble((20, 25), seed=3), folder, description="random weights for tests", demo=False)
    return str(folder)


def test_a_csv_folder_classifies_as_its_abf_files(recordings, model_folder, tmp_path, capsys):
    a, b = recordings
    from_abf, from_csv, csv = tmp_path / "abf.csv", tmp_path / "csv.csv", tmp_path / "snippets"
    assert main(["classify", str(a), str(b), "--model", model_folder, "--out", str(from_abf), "--quiet"]) == 0
    assert main(["snippets", str(a), str(b), "--out", str(csv), "--format", "csv", "--quiet"]) == 0
    assert main(["classify", str(csv), "--model", model_folder, "--out", str(from_csv), "--quiet"]) == 0
    assert "firing_rate_hz is NaN" in capsys.readouterr().out
    abf_rows = pd.read_csv(from_abf, keep_default_na=False).set_index("cell_id")
    csv_rows = pd.read_csv(from_csv, keep_default_na=False).set_index("cell_id")
    assert list(csv_rows.columns) == list(abf_rows.columns)  # the same results table
    assert sorted(csv_rows.index) == ["A240101#001", "A240102#002"]
    assert (csv_rows["file"] == str(csv)).all() and (csv_rows["error"] == "").all()
    for cell in csv_rows.index:
        mine, theirs = csv_rows.loc[cell], abf_rows.loc[cell]
        assert mine["sero_label"] == theirs["sero_label"]
        assert int(mine["n_spikes"]) == int(theirs["n_spikes"])
        for column in ("sero_probability", "sero_probability_low", "sero_probability_high", "cv_isi", "udi_ms"):
            assert float(mine[column]) == pytest.approx(float(theirs[column]), abs=1e-6), column
        assert mine["sero_quality"] == theirs["sero_quality"]  # the same checks, on the same spikes
        assert float(theirs["firing_rate_hz"]) > 0 and mine["firing_rate_hz"] == ""  # NaN: no recording length
    assert 0.02 < abf_rows["sero_probability"].astype(float).min() < 0.98  # not a saturated model


def test_csv_folders_are_found_below_a_folder_and_classified_in_a_batch(recordings, model_folder, tmp_path):
    a, b = recordings
    root = tmp_path / "Data"
    write_snippet_csv_folder(abf_to_snippets(a), root / "SER")
    write_snippet_csv_folder(abf_to_snippets(b), root / "NSER")
    (root / "README.txt").write_text("not a snippet")
    out = tmp_path / "rows.json"
    assert main(["classify", str(root), "--model", model_folder, "--n-jobs", "2", "--out", str(out), "--quiet"]) == 0
    rows = pd.read_json(out)
    assert rows["file"].tolist() == [str(root / "NSER"), str(root / "SER")]
    assert rows["cell_id"].tolist() == ["A240102#002", "A240101#001"]


def test_bad_csv_folders_are_one_cli_error(recordings, tmp_path, capsys):
    a, _ = recordings
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.csv").write_text("a,b\n1,2\n")
    assert main(["classify", str(empty), "--quiet"]) == 2
    assert "holds no .abf files (and no <cell>_trigger_<sample>.csv" in capsys.readouterr().err

    broken = tmp_path / "broken"
    write_snippet_csv_folder(abf_to_snippets(a), broken)
    (broken / "A240101#001_trigger_7.csv").write_text("Time (s),Current (pA)\n0,1,2\n")
    for command in (["classify", str(broken), "--quiet"], ["snippets", str(broken), "--out", str(tmp_path / "x.npz")]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "Traceback" not in err
        assert f"{broken}: A240101#001_trigger_7.csv is not a 160-row, 2-column" in err
        assert "on_bad" not in err  # a Python argument the command line does not have
    assert not (tmp_path / "x.npz").exists()

    mixed = tmp_path / "mixed"
    write_snippet_csv_folder(abf_to_snippets(a), mixed)
    (mixed / a.name).write_bytes(a.read_bytes())
    assert main(["classify", str(mixed), "--quiet"]) == 2
    assert "holds both .abf files and per-spike" in capsys.readouterr().err

    one_file = next(broken.glob("*_trigger_1*.csv"))
    assert main(["classify", str(one_file), "--quiet"]) == 2
    assert "give the folder that holds them" in capsys.readouterr().err

    write_snippet_csv_folder(abf_to_snippets(a), tmp_path / "snippets_of_a")
    out = tmp_path / "snippets_of_a.csv"
    args = ["classify", str(tmp_path / "snippets_of_a"), "--phy", str(tmp_path / "phy"), "--out", str(out), "--quiet"]
    assert main(args) == 1  # classified; only the export failed, and the row says why
    assert "a Phy folder needs the recording" in capsys.readouterr().err
    row = pd.read_csv(out, keep_default_na=False)
    assert (row["error"] == "").all() and row["export_error"].str.contains("needs the recording").all()


def test_snippets_converts_csv_folders_and_npz_files(recordings, tmp_path):
    a, b = recordings
    csv = tmp_path / "csv"
    assert main(["snippets", str(a), str(b), "--out", str(csv), "--quiet"]) == 0
    assert main(["snippets", str(csv), "--out", str(tmp_path / "all.npz"), "--quiet"]) == 0
    converted = load_npz(tmp_path / "all.npz")
    X, cells, triggers = read_snippet_csv_folder(csv)
    np.testing.assert_array_equal(converted.waveforms, X)  # bit-identical float32
    np.testing.assert_array_equal(converted.cell_ids, cells)
    np.testing.assert_array_equal(converted.trigger_samples, triggers)
    assert main(["snippets", str(tmp_path / "all.npz"), "--out", str(tmp_path / "back"), "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == sorted(p.name for p in csv.iterdir())
    again, _, _ = read_snippet_csv_folder(tmp_path / "back")
    np.testing.assert_array_equal(again, X)


def test_snippets_max_spikes_caps_converted_snippets_as_it_caps_abf_files(recordings, tmp_path):
    a, b = recordings
    csv = tmp_path / "csv"
    assert main(["snippets", str(a), str(b), "--out", str(csv), "--quiet"]) == 0
    assert main(["snippets", str(csv), "--out", str(tmp_path / "capped.npz"), "--max-spikes", "10", "--quiet"]) == 0
    capped = load_npz(tmp_path / "capped.npz")
    X, cells, triggers = read_snippet_csv_folder(csv)
    counts = pd.Series(capped.cell_ids).value_counts()
    assert set(counts) == {10} and set(counts.index) == set(cells)  # both cells had more than 10 spikes
    for cell in counts.index:  # a subset of that cell's own spikes, unchanged
        mine = capped.cell_ids == cell
        theirs = {int(t): row for t, row in zip(triggers[cells == cell], X[cells == cell], strict=True)}
        for trigger, waveform in zip(capped.trigger_samples[mine], capped.waveforms[mine], strict=True):
            np.testing.assert_array_equal(theirs[int(trigger)], waveform)
    # the firing statistics still count every spike
    assert capped.all_trigger_samples is not None and capped.all_trigger_samples.size == len(X)
    again = load_npz(tmp_path / "capped.npz")
    assert main(["snippets", str(csv), "--out", str(tmp_path / "again.npz"), "--max-spikes", "10", "--quiet"]) == 0
    np.testing.assert_array_equal(load_npz(tmp_path / "again.npz").trigger_samples, again.trigger_samples)  # seeded


def _csv_root(tmp_path):
    """SER and NSER folders of per-spike CSV files from simulated cells, named A<day>#<n> as the authors'."""
    from spikeinterface_sero.datasets import simulate_dataset

    data = tmp_path / "simulated"
    simulate_dataset({"serotonergic": 3, "non_serotonergic": 3}, duration_s=6.0, seed=11, out_dir=data, n_groups=3)
    labels = pd.read_csv(data / "labels.csv")
    root = tmp_path / "Data"
    for number, row in enumerate(labels.itertuples()):
        snippets = abf_to_snippets(data / row.file)
        day = "A2401" + row.group[-2:]
        snippets.cell_ids = np.full(len(snippets), f"{day}#{number:03d}")
        subfolder = "SER" if row.label == "serotonergic" else "NSER"
        write_snippet_csv_folder(snippets, root / subfolder)
    return root, labels


def test_train_and_evaluate_on_a_csv_root(tmp_path, capsys):
    from spikeinterface_sero.model import load_model

    root, labels = _csv_root(tmp_path)
    model = tmp_path / "model"
    command = ["train", "--csv", str(root), "--group", "day", "--out", str(model), "--kernels", "20"]
    assert main(command + ["--epochs", "1", "--val-fraction", "0.34", "--test-fraction", "0.34", "--quiet"]) == 0
    assert "trained 1 member(s)" in capsys.readouterr().out
    assert load_model(model).kernels == (20,)
    card = json.loads((model / "model_info.json").read_text())
    text = json.dumps(card)
    assert "csv_folders" in text and str(root / "SER") in text  # the card says where the data came from
    assert card["training"]["split"].startswith("by group")  # --group day: cells of a day on one side
    for side in ("training_set", "validation_set", "test_set"):  # three days, one on each side
        assert card["training"][side].endswith("1 groups")

    report = tmp_path / "evaluation"
    assert main(["evaluate", "--csv", str(root), "--model", str(model), "--out", str(report)]) == 0
    out = capsys.readouterr().out
    assert "spike" in out and "cell" in out
    result = json.loads((report / "report.json").read_text())
    assert result["cell"]["n"] == len(labels)


def test_train_and_evaluate_need_one_source_of_labels(tmp_path, capsys):
    root = tmp_path / "Data"
    for command in (
        ["train", "--out", str(tmp_path / "m")],
        ["train", "--table", "t.csv", "--csv", str(root), "--out", str(tmp_path / "m")],
        ["evaluate", "--model", str(tmp_path / "m")],
    ):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "--table FILE" in err and "--csv ROOT" in err
    assert main(["train", "--table", "t.csv", "--group", "day", "--out", str(tmp_path / "m")]) == 2
    assert "--group applies to --csv" in capsys.readouterr().err
    root.mkdir()
    assert main(["evaluate", "--csv", str(root), "--model", str(tmp_path / "m")]) == 2
    assert "need a SER and an NSER folder" in capsys.readouterr().err


def test_train_with_cross_validation_by_day_heads_the_model_card(tmp_path, capsys):
    """`sero train --cv`: one model per held-out day, its pooled figures first on the card, and the
    calibration fitted on its held-out cells; the recipe is recorded."""
    root, labels = _csv_root(tmp_path)
    model = tmp_path / "model"
    command = ["train", "--csv", str(root), "--group", "day", "--out", str(model), "--kernels", "20", "--cv"]
    assert main(command + ["--epochs", "1", "--recipe", "paper", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "cross-validation (one recording day per fold, 6 cells)" in out and "balanced" in out
    info = json.loads((model / "model_info.json").read_text())
    headline = next(iter(info["metrics"]))
    assert headline == "cross-validation by day" and info["metrics"][headline]["folds"] == 3
    assert "cross-validation by day" in info["calibration"]["fitted_on"]
    assert info["training"]["recipe"]["name"] == "paper"
    card = (model / "README.md").read_text()
    assert card.index("cross-validation by day") < card.index("held-out test")


def test_an_npz_snippet_file_classifies_as_its_abf_file(recordings, model_folder, tmp_path):
    """`sero classify cell.npz`: the same decision path; the npz keeps the sweep durations, so the rate too."""
    a, _ = recordings
    from_abf, from_npz, npz = tmp_path / "abf.csv", tmp_path / "npz.csv", tmp_path / "cell.npz"
    assert main(["classify", str(a), "--model", model_folder, "--out", str(from_abf), "--quiet"]) == 0
    assert main(["snippets", str(a), "--out", str(npz), "--quiet"]) == 0
    assert main(["classify", str(npz), "--model", model_folder, "--out", str(from_npz), "--quiet"]) == 0
    abf_row = pd.read_csv(from_abf).iloc[0]
    npz_row = pd.read_csv(from_npz).iloc[0]
    assert npz_row["sero_label"] == abf_row["sero_label"] and npz_row["n_spikes"] == abf_row["n_spikes"]
    for column in ("sero_probability", "sero_probability_low", "sero_probability_high", "cv_isi", "firing_rate_hz"):
        assert npz_row[column] == pytest.approx(abf_row[column], abs=1e-6), column


def test_a_capped_npz_keeps_the_firing_statistics_of_every_spike(recordings, model_folder, tmp_path):
    """`sero snippets --max-spikes`: the npz holds the capped waveforms and every trigger, so the rate and CV
    of `sero classify cell.npz` are those of the whole recording, as `sero classify --max-spikes` gives."""
    a, _ = recordings
    from_abf, from_npz, npz = tmp_path / "abf.csv", tmp_path / "npz.csv", tmp_path / "cell.npz"
    capped = ["--max-spikes", "12"]
    assert main(["classify", str(a), "--model", model_folder, "--out", str(from_abf), "--quiet", *capped]) == 0
    assert main(["snippets", str(a), "--out", str(npz), "--quiet", *capped]) == 0
    assert len(load_npz(npz)) == 12
    assert main(["classify", str(npz), "--model", model_folder, "--out", str(from_npz), "--quiet"]) == 0
    abf_row, npz_row = pd.read_csv(from_abf).iloc[0], pd.read_csv(from_npz).iloc[0]
    for column in ("firing_rate_hz", "cv_isi", "sero_probability"):
        assert npz_row[column] == pytest.approx(abf_row[column], abs=1e-6), column
