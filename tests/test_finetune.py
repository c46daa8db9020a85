"""Adapting a model to another rig from a few labelled cells (``sero adapt``, training/finetune.py)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from spikeinterface_sero.cli import main
from spikeinterface_sero.constants import SNIPPET_LENGTH
from spikeinterface_sero.datasets import simulate_membrane_dataset
from spikeinterface_sero.errors import ParameterError, SeroError, TrainingError
from spikeinterface_sero.model import demo_model_folder, load_model
from spikeinterface_sero.training.adapt_selection import figures, final_mode, paired_test
from spikeinterface_sero.training.finetune import adapt_model
from spikeinterface_sero.training.noise_files import noise_masks_from_files, unlabelled_files

COUNTS = {"serotonergic": 6, "atypical_serotonergic": 2, "non_serotonergic": 8}


@pytest.fixture(scope="module")
def other_rig(tmp_path_factory):
    """16 cells of one day of the membrane rig, where the demo model calls the NSER cells serotonergic."""
    root = tmp_path_factory.mktemp("rig2")
    simulate_membrane_dataset(COUNTS, duration_s=15.0, seed=31, out_dir=root, day_prefix="rigT")
    return root / "labels.csv"


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory):
    """A folder of 3 recordings of the same rig on another day, with no label table of their own."""
    root = tmp_path_factory.mktemp("unlabelled")
    simulate_membrane_dataset({"serotonergic": 1, "non_serotonergic": 2}, duration_s=6.0, seed=77, out_dir=root)
    (root / "labels.csv").unlink()
    return root


@pytest.fixture(scope="module")
def shuffled(other_rig):
    table = pd.read_csv(other_rig)
    table["label"] = np.random.default_rng(3).permutation(table["label"].to_numpy())
    path = other_rig.parent / "shuffled.csv"
    table.to_csv(path, index=False)
    return path


def test_an_adaptation_that_does_not_help_is_refused(shuffled, tmp_path):
    report = adapt_model(None, shuffled, tmp_path / "adapted", mode="temperature", n_folds=3)
    assert not report["written"] and report["folder"] is None and report["mode"] is None
    assert not (tmp_path / "adapted").exists()
    assert "not adapted" in report["message"] and "keep the starting model" in report["message"]
    assert not report["test"]["passed"] and not all(report["test"]["checks"].values())
    assert report["before"]["n_cells"] == report["after"]["n_cells"] == 16
    assert report["choices"] == [] and report["final_mode"] == "temperature"  # a mode named: no choice


def test_the_paired_test_needs_a_gain_on_the_same_cells_and_a_model_that_tells_the_classes_apart():
    is_ser = np.array([True, False] * 6)

    def probabilities(right, wrong):  # P(SER) of each cell: ``right`` on its side of 0.5, or ``wrong``
        return np.where(is_ser, right, 1 - right) if wrong is None else np.where(is_ser, wrong, 1 - wrong)

    start = figures(is_ser, np.where(np.arange(12) < 9, probabilities(0.6, None), probabilities(0, 0.4)))
    better = figures(is_ser, probabilities(0.95, None))
    assert paired_test(start, better, 0.05)["passed"]
    flat = figures(is_ser, np.full(12, 0.5))  # calibrated, but it cannot tell the classes apart
    test = paired_test(figures(is_ser, probabilities(0.3, 0.3)), flat, 0.05)
    assert (
        not test["passed"] and not test["checks"]["balanced accuracy interval above 0.5 (it tells the classes apart)"]
    )
    same_calls = figures(is_ser, np.where(np.arange(12) < 6, probabilities(0.62, None), probabilities(0.58, None)))
    test = paired_test(figures(is_ser, probabilities(0.6, None)), same_calls, 0.05)  # no gain on the same cells
    assert not test["passed"] and [passed for passed in test["checks"].values()] == [False, True, True]


def test_auto_holds_out_days_outside_and_inside_when_there_are_enough(tmp_path):
    counts = {"serotonergic": 8, "non_serotonergic": 8}  # over 4 days
    simulate_membrane_dataset(counts, duration_s=8.0, seed=5, out_dir=tmp_path, n_days=4, day_prefix="rigM")
    report = adapt_model(None, tmp_path / "labels.csv", modes=("temperature",), n_folds=4)
    assert report["cross_validation"] == "4 folds by day" and len(report["days"]) == 4
    assert [c["inner_cross_validation"] for c in report["choices"]] == ["3 folds by day"] * 4
    assert all(c["held_out_cells"] == 4 for c in report["choices"])  # one day of 4 cells per outer fold


def test_the_final_mode_is_the_one_the_inner_cross_validations_chose_most_often():
    def choices(*chosen):
        return [{"chosen": mode} for mode in chosen]

    losses = {"nothing": 1.0, "temperature": 0.7, "head": 0.3}
    assert final_mode(choices("head", "temperature", "head", "nothing"), losses) == "head"
    assert final_mode(choices("nothing", "nothing", "head"), losses) == "nothing"
    assert final_mode(choices("temperature", "head"), losses) == "head"  # a tie: the lower log-loss over all cells
    assert final_mode(choices("temperature", "head"), dict(losses, temperature=0.2)) == "temperature"


def test_auto_chooses_by_nested_cross_validation_and_writes_a_card_with_its_choice(other_rig, unlabelled, tmp_path):
    report = adapt_model(
        None,
        other_rig,
        tmp_path / "adapted",
        n_folds=4,
        unlabelled=[unlabelled],
        masks_per_file=10,
        max_spikes_per_cell=30,
    )
    assert report["written"], report["message"]
    assert len(report["choices"]) == 4
    for choice in report["choices"]:  # each outer fold's choice is its inner cross-validation's lowest log-loss
        assert set(choice["inner_log_loss"]) == {"nothing", "temperature", "head", "all"}
        assert choice["chosen"] == min(choice["inner_log_loss"], key=choice["inner_log_loss"].get)
    assert report["final_mode"] == report["mode"] == final_mode(
        report["choices"], {"nothing": report["before"]["log_loss"]} | {m: f["log_loss"] for m, f in report["candidates"].items()}
    )  # fmt: skip
    assert report["after"]["balanced_accuracy"] > report["before"]["balanced_accuracy"]
    assert report["test"]["passed"] and report["test"]["p_value"] < 0.05
    masks = report["noise_masks"]
    assert masks["unlabelled_files"] == 3 and masks["unlabelled_masks"] == 30 and masks["labelled_pool"] > 0
    info = json.loads((tmp_path / "adapted" / "model_info.json").read_text())
    training = info["training"]
    parent_sha = hashlib.sha256((demo_model_folder() / "model_info.json").read_bytes()).hexdigest()
    assert training["parent_sha256"] == parent_sha and training["mode"] == report["mode"]
    assert training["selection"]["chosen_per_fold"] == [c["chosen"] for c in report["choices"]]
    assert training["noise_masks"]["unlabelled_masks"] == 30 and training["paired_test"]["passed"]
    assert len(training["cells"]) == 16 and training["days"] == ["rigT01"]
    assert set(info["metrics"]) == {"before (starting model, the same cells)", "after (adapted, out of fold)"}
    assert info["calibration"]["method"] == "temperature" and info["training_data"]
    assert "rig_validation" not in info  # the parent's rigs do not vouch for new members: validate again
    card = (tmp_path / "adapted" / "README.md").read_text()
    assert parent_sha[:12] in card
    adapted = load_model(tmp_path / "adapted")
    assert adapted.kernels == load_model().kernels


def test_unlabelled_noise_masks_come_from_spike_free_stretches_with_a_cap_per_file(unlabelled):
    files = unlabelled_files([unlabelled])
    assert len(files) == 3 and all(f.suffix == ".abf" for f in files)
    masks, per_file = noise_masks_from_files(files, masks_per_file=12, seed=1)
    assert masks.shape == (36, SNIPPET_LENGTH) and list(per_file.values()) == [12, 12, 12]
    assert np.allclose(masks.mean(axis=1), 0, atol=1e-3)  # mean-subtracted, as the labelled cells' masks
    assert masks.min() > -50  # no action current crosses -50 pA inside a spike-free stretch
    more, _ = noise_masks_from_files(files[:1], masks_per_file=10_000)
    assert 12 < len(more) < 10_000  # without a binding cap: every spike-free window of a 6 s recording


def test_bad_unlabelled_paths_give_one_clear_error_before_any_work(other_rig, unlabelled, tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("x")
    (tmp_path / "empty").mkdir()
    for bad, words in [(tmp_path / "missing.abf", "does not exist"), (text, "not an .abf file"),
                       (tmp_path / "empty", "holds no .abf files")]:  # fmt: skip
        with pytest.raises(ParameterError, match=f"unlabelled: .*{words}"):
            adapt_model(None, other_rig, tmp_path / "new", unlabelled=[unlabelled, bad])
        assert main(["adapt", "demo", "--table", str(other_rig), "--out", str(tmp_path / "new"),
                     "--unlabelled", str(unlabelled), str(bad)]) == 2  # fmt: skip
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and "--unlabelled" in error and words in error
        assert not (tmp_path / "new").exists()


def test_arguments_are_checked_before_any_work(other_rig, tmp_path):
    with pytest.raises(ParameterError, match="mode must be one of"):
        adapt_model(None, other_rig, mode="everything")
    with pytest.raises(ParameterError, match="modes must be one of"):
        adapt_model(None, other_rig, modes=("head", "bogus"))
    with pytest.raises(ParameterError, match="masks_per_file"):
        adapt_model(None, other_rig, masks_per_file=0)
    table = pd.read_csv(other_rig)
    ser = table[table["label"] == "serotonergic"]
    few = pd.concat([table[table["label"] == "non_serotonergic"].head(6), ser.head(2)])
    few["file"] = [str(other_rig.parent / f) for f in few["file"]]
    with pytest.raises(TrainingError, match="at least 3 labelled cells of each class"):
        adapt_model(None, few)


def test_sero_adapt_refuses_and_says_why(shuffled, tmp_path, capsys):
    assert main(["adapt", "demo", "--table", str(shuffled), "--out", str(tmp_path / "new"), "--modes", "temperature",
                 "--folds", "3", "--quiet"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "not adapted" in printed and "starting model" in printed and "p = " in printed
    assert printed.count("the inner cross-validation (3 folds by cell) chose") == 3 and "auto (" in printed
    assert not (tmp_path / "new").exists()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    assert main(["adapt", "demo", "--table", str(shuffled), "--out", str(tmp_path / "taken")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["adapt", "demo", "--table", str(shuffled), "--out", str(tmp_path / "n2"), "--modes", "bogus"]) == 2
    assert "--modes must be one of" in capsys.readouterr().err


# ------------------------------------------------------------------ the labelled cells in every form sero validate takes
@pytest.fixture(scope="module")
def csv_rig(tmp_path_factory):
    """6 cells over 3 days named by date (A140301_c001 ...): their .abf table (no day column: the names give the
    days), the same cells as per-spike CSV folders laid out by class (written by ``sero snippets``), and a table of
    those folders with a day column."""
    root = tmp_path_factory.mktemp("csv_rig")
    simulate_membrane_dataset(
        {"serotonergic": 3, "non_serotonergic": 3}, duration_s=6.0, seed=5, out_dir=root, n_days=3, day_prefix="A1403"
    )
    table = pd.read_csv(root / "labels.csv").drop(columns=["group"])
    table.to_csv(root / "abf.csv", index=False)
    lab = root / "lab"
    lab.mkdir()
    for label, name in (("serotonergic", "SER"), ("non_serotonergic", "NSER")):
        files = [str(root / f) for f in table["file"][table["label"] == label]]
        assert main(["snippets", *files, "--out", str(lab / name), "--format", "csv", "--quiet"]) == 0
    folders = pd.DataFrame({"file": ["lab/SER", "lab/NSER"], "label": ["SER", "NSER"], "day": ["d1", "d2"]})
    folders.to_csv(root / "folders.csv", index=False)
    return root


def _per_cell(dataset):
    return {c: (dataset.X[dataset.cell == c], dataset.trigger[dataset.cell == c]) for c in dataset.cells.index}


def test_csv_folders_give_the_dataset_of_their_abf_files(csv_rig):
    from spikeinterface_sero.training.labelled_cells import dataset_from_labels

    from_abf = dataset_from_labels(csv_rig / "abf.csv", max_per_cell=8, seed=2)
    from_folders = dataset_from_labels(csv_rig / "lab", max_per_cell=8, seed=2)
    assert from_abf.noise is not None and from_folders.noise is None  # the CSV files hold snippets only
    assert from_abf.cells.index.tolist() == from_folders.cells.index.tolist() == sorted(from_abf.cells.index)
    for column in ("y", "group", "n_spikes"):
        assert from_abf.cells[column].tolist() == from_folders.cells[column].tolist()
    assert from_abf.has_groups and sorted(set(from_abf.group)) == ["2014-03-01", "2014-03-02", "2014-03-03"]
    assert (from_abf.cells["n_detected"] > 8).all() and (from_abf.cells["n_spikes"] == 8).all()  # the cap bites
    abf_spikes, folder_spikes = _per_cell(from_abf), _per_cell(from_folders)
    for cell, (waveforms, triggers) in abf_spikes.items():  # the same capped spikes, sample for sample
        np.testing.assert_array_equal(triggers, folder_spikes[cell][1])
        np.testing.assert_allclose(waveforms, folder_spikes[cell][0], atol=1e-4)
    by_table = dataset_from_labels(csv_rig / "folders.csv")  # a table of CSV folders: its day column wins
    assert by_table.cells["group"].tolist() == ["d2", "d1", "d1", "d2", "d2", "d1"]  # NSER d2, SER d1, by cell id
    assert by_table.cells["y"].tolist() == from_abf.cells["y"].tolist()


def test_adapt_from_csv_folders_measures_what_adapt_from_the_abf_files_measures(csv_rig):
    reports = [
        adapt_model(None, csv_rig / labels, mode="temperature", n_folds=3, max_spikes_per_cell=20)
        for labels in ("abf.csv", "lab")
    ]
    for key in ("cells", "days", "cross_validation", "before"):
        assert reports[0][key] == reports[1][key], key
    assert reports[0]["cross_validation"] == "3 folds by day" and len(reports[0]["cells"]) == 6


def test_sero_adapt_reads_a_class_layout_and_takes_the_labels_once(csv_rig, tmp_path, capsys):
    command = ["adapt", "demo", str(csv_rig / "lab"), "--out", str(tmp_path / "new"), "--mode", "temperature"]
    assert main([*command, "--folds", "3", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("6 cells, 3 folds by day; noise masks: 0 from the labelled recordings")
    assert (tmp_path / "new").exists() == ("adapted (temperature) and written to" in printed)
    for given in ([str(csv_rig / "lab"), "--table", str(csv_rig / "abf.csv")], []):
        assert main(["adapt", "demo", *given, "--out", str(tmp_path / "other")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "give the labelled cells once: as LABELS (a table, or a folder" in err
    assert not (tmp_path / "other").exists()


def _spoiled(root, how: str):
    """Labelled cells with one thing wrong (a copy of the lab's class layout, or a table)."""
    lab = root / "spoiled"
    shutil.copytree(root / "lab", lab)
    if how == "unknown class":
        (lab / "NSER").rename(lab / "unsure")
    elif how == "one class":
        shutil.rmtree(lab / "NSER")
    elif how == "a cell in two classes":
        shutil.copytree(lab / "NSER", lab / "SER" / "more")
    elif how == "a cell labelled twice":
        cell = sorted((lab / "SER").glob("*.csv"))[0].name.split("_trigger_")[0]
        rows = {"file": ["spoiled/SER", "spoiled/SER", "spoiled/NSER"], "label": ["SER", "NSER", "NSER"]}
        pd.DataFrame(rows | {"channel": ["", cell, ""]}).to_csv(root / "twice.csv", index=False)
        return root / "twice.csv"
    elif how == "a missing file":
        pd.DataFrame({"file": ["spoiled/SER", "gone.abf"], "label": ["SER", "NSER"]}).to_csv(root / "gone.csv")
        return root / "gone.csv"
    return lab


BAD_LABELS = {
    "unknown class": "'unsure' is not a class name: name the class folders SER or serotonergic",
    "one class": "adapting needs labelled cells of both classes",
    "a cell in two classes": "has per-spike files in",
    "a cell labelled twice": "is labelled twice (from spoiled/SER and spoiled/SER)",
    "a missing file": "file(s) of the label table not found",
}


@pytest.mark.parametrize("how", sorted(BAD_LABELS))
def test_bad_labelled_cells_are_one_error_before_any_work(csv_rig, tmp_path, capsys, how):
    root = tmp_path / "rig"
    shutil.copytree(csv_rig, root)
    bad = _spoiled(root, how)
    with pytest.raises(SeroError, match=re.escape(BAD_LABELS[how])):
        adapt_model(None, bad, tmp_path / "model")
    assert main(["adapt", "demo", str(bad), "--out", str(tmp_path / "cli"), "--mode", "temperature"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err and BAD_LABELS[how] in err
    assert not (tmp_path / "model").exists() and not (tmp_path / "cli").exists()


def test_sero_adapt_reads_a_curation_of_an_analyzers_units(tmp_path, capsys):
    """A person's labels in a SpikeInterface curation file, on the units of one 6-channel analyzer: each unit's
    spikes are the snippets its serotonergic extension gave the model."""
    from spikeinterface_sero.curation import MANUAL_LABEL_OPTIONS, read_curation
    from spikeinterface_sero.extension import load_sorting_analyzer
    from spikeinterface_sero.snippets import recording_to_analyzer
    from spikeinterface_sero.testing import numpy_recording
    from spikeinterface_sero.training.labelled_cells import cells_of_analyzer, dataset_from_labels

    recordings = simulate_membrane_dataset({"serotonergic": 3, "non_serotonergic": 3}, duration_s=6.0, seed=5)
    analyzer = recording_to_analyzer(numpy_recording(np.column_stack([r.traces for r in recordings])))
    analyzer.compute("serotonergic", progress_bar=False)
    analyzer = analyzer.save_as(format="binary_folder", folder=tmp_path / "analyzer")
    manual = [
        {
            "unit_id": str(u),
            "labels": {
                "sero_manual_label": [
                    r.label.replace("serotonergic", "serotonergic_typical", r.label == "serotonergic")
                ]
            },
        }
        for u, r in zip(analyzer.unit_ids, recordings)
    ]
    definition = {"name": "sero_manual_label", "exclusive": True, "label_options": list(MANUAL_LABEL_OPTIONS)}
    curation = {"format_version": "2", "unit_ids": [str(u) for u in analyzer.unit_ids],
                "label_definitions": {"sero_manual_label": definition}, "manual_labels": manual}  # fmt: skip
    (tmp_path / "curation.json").write_text(json.dumps(curation))
    dataset = dataset_from_labels(cells_of_analyzer(analyzer, read_curation(tmp_path / "curation.json")))
    loaded = load_sorting_analyzer(tmp_path / "analyzer")  # held: an extension keeps only a weak reference
    extension = loaded.get_extension("serotonergic")
    waveforms, spikes = extension.get_data("waveforms"), extension.get_data("spikes")
    assert dataset.cells.index.tolist() == sorted(str(u) for u in analyzer.unit_ids)
    for unit, recording in zip(analyzer.unit_ids, recordings):
        mine = spikes["unit_id"].astype(str).to_numpy() == str(unit)
        np.testing.assert_array_equal(dataset.X[dataset.cell == str(unit)], waveforms[mine])
        assert dataset.cells.loc[str(unit), "label"] == recording.label
    command = ["adapt", "demo", "--analyzer", str(tmp_path / "analyzer"), "--curation", str(tmp_path / "curation.json")]
    assert main([*command, "--out", str(tmp_path / "new"), "--mode", "temperature", "--folds", "3", "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("6 cells, 3 folds by cell; noise masks: 0 from the labelled recordings")
    assert main(command[:4] + ["--out", str(tmp_path / "other")]) == 2  # --analyzer without --curation
    assert "give the labelled cells once" in capsys.readouterr().err
