"""sero validate: labelled cells of a rig through the extension, the page, the conformal fit and fingerprint
recorded in a copy of the model folder; the fingerprint tells another rig from another day of the same rig."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from spikeinterface_sero.cli import main
from spikeinterface_sero.curation import MANUAL_LABEL_OPTIONS
from spikeinterface_sero.datasets import simulate_dataset
from spikeinterface_sero.datasets.membrane import simulate_membrane_dataset
from spikeinterface_sero.errors import DataError, ParameterError, SeroError
from spikeinterface_sero.fingerprint import (
    cell_fingerprints,
    fingerprint_distance,
    fit_fingerprint,
    mean_normalised_shapes,
)
from spikeinterface_sero.model import demo_model_folder, load_model
from spikeinterface_sero.snippets import main_channel_waveforms, recording_to_analyzer
from spikeinterface_sero.validation import validate

TYPES = {"serotonergic": "typical", "atypical_serotonergic": "atypical", "non_serotonergic": ""}


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    root = tmp_path_factory.mktemp("rig")
    counts = {"serotonergic": 7, "atypical_serotonergic": 3, "non_serotonergic": 10}
    recordings = simulate_dataset(counts, 20.0, seed=11, out_dir=root / "cells", n_groups=3, day_prefix="labday")
    table = pd.DataFrame(
        {
            "file": [r.file.name for r in recordings],
            "label": [r.label for r in recordings],
            "day": [r.group for r in recordings],
            "type": [TYPES[r.cell_type] for r in recordings],
        }
    )
    table.to_csv(root / "cells" / "labels.csv", index=False)
    return root, root / "cells" / "labels.csv"


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_validate_writes_the_page_and_records_the_rig_in_a_copy(labelled):
    root, table = labelled
    demo_info = demo_model_folder() / "model_info.json"
    before = _sha(demo_info)
    result = validate(None, table, report_dir=root / "report", out=root / "model", rig_name="lab rig")
    assert _sha(demo_info) == before  # the bundled demo is never changed
    for path in result.files.values():
        assert path.is_file() and path.stat().st_size > 0
    page = result.files["validation.html"].read_text()
    assert "at least 90% of serotonergic cells" in page and "cross-fitted" in page
    figures = json.loads(result.files["validation.json"].read_text())["figures"]
    assert figures["n_cells"] == 20 and figures["per_class"]["atypical serotonergic"]["n"] == 3
    assert 0.0 <= figures["balanced_accuracy"] <= 1.0 and figures["calibration"]["ece"] is not None
    assert figures["days"] == ["labday01", "labday02", "labday03"]
    info = load_model(root / "model").info
    demo_rigs, rig = info["rig_validation"]["rigs"][:-1], info["rig_validation"]["rigs"][-1]
    assert len(demo_rigs) == len(load_model().info["rig_validation"]["rigs"])  # the copy keeps the demo's own
    assert rig["name"] == "lab rig" and rig["conformal"]["level"] == 0.9 and rig["fingerprint"]["n_cells"] >= 10
    card = (root / "model" / "README.md").read_text()
    assert "## Validated on" in card and "lab rig" in card
    # the same rig validated again replaces its entry; the copy may be validated in place
    again = validate(root / "model", table, report_dir=root / "report2", rig_name="lab rig", cells=result.cells)
    assert len(load_model(again.model_folder).info["rig_validation"]["rigs"]) == len(demo_rigs) + 1


def test_the_demo_is_not_validated_in_place(labelled):
    root, table = labelled
    with pytest.raises(ParameterError, match="out=<new folder>"):
        validate(None, table, report_dir=root / "refused")


def test_sero_validate_command(labelled, capsys):
    root, table = labelled
    code = main(
        ["validate", "demo", "--table", str(table), "--report", str(root / "cli_report")]
        + ["--out", str(root / "cli_model"), "--quiet"]
    )
    out = capsys.readouterr().out
    assert code == 0 and "guarantee: on cells of the rig" in out and str(root / "cli_model") in out
    assert (root / "cli_model" / "model_info.json").is_file()


def _measures(recordings):
    measures, shapes = [], []
    for recording in recordings:
        waveforms = main_channel_waveforms(recording_to_analyzer(recording.to_recording()))
        index = np.zeros(len(waveforms), np.int64)
        measures.append(cell_fingerprints(waveforms, index, 1))
        shapes.append(mean_normalised_shapes(waveforms, index, 1))
    return pd.concat(measures, ignore_index=True), np.vstack(shapes)


def test_the_fingerprint_flags_another_rig_and_not_another_day_of_the_same_rig():
    counts = {"serotonergic": 7, "atypical_serotonergic": 3, "non_serotonergic": 10}
    rig = _measures(simulate_dataset(counts, 20.0, seed=21, n_groups=4, day_prefix="a"))
    fingerprint = fit_fingerprint(*rig)
    small = {"serotonergic": 2, "atypical_serotonergic": 1, "non_serotonergic": 3}
    other_days = _measures(simulate_dataset(small, 20.0, seed=22, n_groups=2, day_prefix="b"))
    other_rig = _measures(simulate_membrane_dataset(small, 20.0, seed=23, n_days=2))
    assert (fingerprint_distance(other_days[0], fingerprint, other_days[1]) <= 0).all()
    assert (fingerprint_distance(other_rig[0], fingerprint, other_rig[1]) > 0).all()


def test_validate_from_a_curation_of_an_analyzers_units(labelled, tmp_path):
    """A person's labels in a SpikeInterface curation file, on the units of one multi-channel analyzer."""
    from spikeinterface_sero.testing import numpy_recording

    counts = {"serotonergic": 8, "atypical_serotonergic": 2, "non_serotonergic": 10}
    recordings = simulate_dataset(counts, 15.0, seed=31, n_groups=1)
    analyzer = recording_to_analyzer(numpy_recording(np.column_stack([r.traces for r in recordings])))
    manual = {"serotonergic": "serotonergic_typical", "atypical_serotonergic": "serotonergic_atypical"}
    curation = {
        "format_version": "2",
        "unit_ids": [str(u) for u in analyzer.unit_ids],
        "label_definitions": {
            "sero_manual_label": {
                "name": "sero_manual_label",
                "exclusive": True,
                "label_options": list(MANUAL_LABEL_OPTIONS),
            }
        },
        "manual_labels": [
            {"unit_id": str(u), "labels": {"sero_manual_label": [manual.get(r.cell_type, "non_serotonergic")]}}
            for u, r in zip(analyzer.unit_ids, recordings)
        ],
    }
    curation["manual_labels"][0]["labels"]["sero_manual_label"] = ["unsure"]  # an unsure unit labels nothing
    path = tmp_path / "curation.json"
    path.write_text(json.dumps(curation))
    result = validate(None, path, analyzer=analyzer, report_dir=tmp_path / "report", out=tmp_path / "model")
    assert result.figures["n_cells"] == 19 and result.figures["per_class"]["atypical serotonergic"]["n"] == 2
    assert result.cells["file"].tolist() == [str(u) for u in analyzer.unit_ids[1:]]  # the unit ids name the cells
    assert load_model(tmp_path / "model").info["rig_validation"]["rigs"][-1]["n_cells"] >= 10


def _demo_rig_status(recordings) -> list[str]:
    """``sero_rig`` of each one-cell recording through the extension with the bundled demo model."""
    status = []
    for recording in recordings:
        analyzer = recording_to_analyzer(recording.to_recording())
        status.append(analyzer.compute("serotonergic", progress_bar=False).get_data()["sero_rig"].iloc[0])
    return status


@pytest.mark.filterwarnings("ignore")
def test_the_demo_models_stored_rig_flags_a_membrane_rig_cell_and_not_another_day_of_its_simulator():
    """The bundled demo's stored fingerprint: the membrane rig's 8-pole filter leaves almost no noise above
    16 kHz, which the noise-spectrum density catches; a new day of the demo's own simulator stays like it."""
    from spikeinterface_sero.datasets.simulator import VARIED_DAYS

    density = load_model().info["rig_validation"]["rigs"][0]["fingerprint"]["density"]
    assert set(density["features"]) == {"noise_low_band", "noise_mid_band", "noise_roll_off"}
    one_each = {"serotonergic": 1, "non_serotonergic": 1}
    membrane = simulate_membrane_dataset(one_each, 20.0, seed=41, n_days=2)
    other_day = simulate_dataset(one_each, 20.0, seed=42, n_groups=1, day_ranges=VARIED_DAYS)
    assert _demo_rig_status(membrane) == ["unlike_validated_rigs"] * 2
    assert _demo_rig_status(other_day) == ["validated"] * 2


# ------------------------------------------------------------------ the authors' per-spike CSV folders
@pytest.fixture(scope="module")
def csv_lab(tmp_path_factory):
    """A simulated lab: 9 cells of 3 days as .abf files named as the authors' (``A2401dd#nnn``) with a label
    table, and the same cells as per-spike CSV folders written by ``sero snippets --format csv``, laid out by
    class: SER/ (every typical cell's files side by side), ser_Atypical/, NSER/<cell>/ (a folder per cell)."""
    root = tmp_path_factory.mktemp("csv_lab")
    counts = {"serotonergic": 3, "atypical_serotonergic": 2, "non_serotonergic": 4}
    recordings = simulate_dataset(counts, 20.0, seed=11, out_dir=root / "abf", n_groups=3, day_prefix="A2401")
    files = []
    for number, recording in enumerate(recordings):
        files.append(recording.file.rename(recording.file.with_name(f"{recording.group}#{number:03d}.abf")))
    table = pd.DataFrame(  # no day column: the day is the date in the file name, as for the CSV cells
        {
            "file": [f.name for f in files],
            "label": [r.label for r in recordings],
            "type": ["atypical" if r.cell_type == "atypical_serotonergic" else "" for r in recordings],
        }
    )
    table.to_csv(root / "abf" / "labels.csv", index=False)
    lab = root / "lab"
    (lab / "NSER").mkdir(parents=True)
    kinds = [r.cell_type for r in recordings]
    for kind, folder in (("serotonergic", "SER"), ("atypical_serotonergic", "ser_Atypical")):
        cells = [str(f) for f, k in zip(files, kinds) if k == kind]
        assert main(["snippets", *cells, "--out", str(lab / folder), "--format", "csv", "--quiet"]) == 0
    for f in [f for f, k in zip(files, kinds) if k == "non_serotonergic"]:
        assert main(["snippets", str(f), "--out", str(lab / "NSER" / f.stem), "--format", "csv", "--quiet"]) == 0
    return root / "abf" / "labels.csv", lab


NSER_CELL = "A240101#002"  # a non-serotonergic cell of the simulated lab, in a folder of its own


def _leaves(value, path=""):
    """(path, leaf) of a JSON value, for comparing two of them."""
    if isinstance(value, dict):
        return [leaf for key in sorted(value) for leaf in _leaves(value[key], f"{path}/{key}")]
    if isinstance(value, list):
        return [leaf for i, item in enumerate(value) for leaf in _leaves(item, f"{path}/{i}")]
    return [(path, value)]


CALLS = ["label", "type", "group", "sero_label", "sero_probability", "n_spikes", "sero_quality", "sero_domain"]


@pytest.mark.filterwarnings("ignore")
def test_validate_on_csv_folders_by_class_gives_the_calls_and_figures_of_their_abf_files(csv_lab, tmp_path):
    table, lab = csv_lab
    from_abf = validate(None, table, report_dir=tmp_path / "abf_report", out=tmp_path / "abf_model")
    from_csv = validate(None, lab, report_dir=tmp_path / "csv_report", out=tmp_path / "csv_model")
    abf = from_abf.cells.set_index(from_abf.cells["file"].map(lambda name: name.removesuffix(".abf")).rename("cell"))
    csv = from_csv.cells.set_index(from_csv.cells["channel"].rename("cell"))  # a CSV cell's id: the files' prefix
    assert sorted(csv.index) == sorted(abf.index) and len(csv) == 9
    assert csv.loc["A240101#001", "file"] == "SER" and csv.loc[NSER_CELL, "file"] == f"NSER/{NSER_CELL}"
    assert sorted(set(csv["group"])) == ["2024-01-01", "2024-01-02", "2024-01-03"]  # A2401dd -> 2024-01-dd
    assert (csv["type"] == "atypical").sum() == 2
    columns = CALLS + ["oof_set", "oof_rig", "oof_reliable", "usable"]
    pd.testing.assert_frame_equal(csv.loc[abf.index, columns], abf[columns], check_exact=False, rtol=1e-9)
    assert from_csv.figures["days"] == from_abf.figures["days"]
    assert from_csv.figures["per_class"]["atypical serotonergic"]["n"] == 2
    mine, theirs = _leaves(from_csv.figures), _leaves(from_abf.figures)
    assert [path for path, _ in mine] == [path for path, _ in theirs]
    for (path, value), (_, expected) in zip(mine, theirs):
        assert value == (pytest.approx(expected, rel=1e-9) if isinstance(expected, float) else expected), path
    rig, abf_rig = (load_model(tmp_path / m).info["rig_validation"]["rigs"][-1] for m in ("csv_model", "abf_model"))
    assert rig["conformal"] == abf_rig["conformal"] and rig["cross_fitting"] == abf_rig["cross_fitting"]
    assert rig["days"] == abf_rig["days"] == ["2024-01-01", "2024-01-02", "2024-01-03"]


@pytest.mark.filterwarnings("ignore")
def test_sero_validate_reads_a_table_of_csv_folders(csv_lab, tmp_path, capsys):
    """`sero validate MODEL LABELS`: LABELS a table whose files are CSV folders (all cells of a folder take its
    row's label; channel picks one cell of a folder), the calls those of the class layout."""
    table, lab = csv_lab
    nser = [f"../lab/NSER/{p.name}" for p in (lab / "NSER").iterdir()]
    folders = pd.DataFrame(
        {
            "file": ["../lab/SER", "../lab/ser_Atypical", *nser],
            "label": ["SER", "SER"] + ["NSER"] * len(nser),
            "type": ["", "atypical"] + [""] * len(nser),
        }
    )
    folders.to_csv(table.parent / "folders.csv", index=False)
    report = tmp_path / "report"
    command = ["validate", "demo", str(table.parent / "folders.csv"), "--report", str(report)]
    assert main(command + ["--out", str(tmp_path / "model"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "guarantee: on cells of the rig" in out and "atypical serotonergic: " in out
    cells = pd.read_csv(report / "cells.csv", keep_default_na=False).set_index("channel")
    assert len(cells) == 9 and sorted(set(cells["group"])) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    by_class = validate(None, lab, report_dir=tmp_path / "by_class", out=tmp_path / "by_class_model").cells
    by_class = by_class.set_index("channel").loc[cells.index]
    assert (cells["sero_label"] == by_class["sero_label"]).all()
    np.testing.assert_allclose(cells["sero_probability"], by_class["sero_probability"], rtol=1e-6)
    # one cell of a folder by its id, the day given by the table
    one = pd.DataFrame({"file": [str(lab / "SER")], "label": ["SER"], "channel": ["A240102#003"], "day": ["d2"]})
    from spikeinterface_sero.validation import classify_labelled_cells, read_labelled_cells

    with pytest.raises(DataError, match="both classes"):
        read_labelled_cells(one)
    with pytest.raises(DataError, match="holds no cell 'A240102#099' .*the channel column names one of its cells"):
        read_labelled_cells(one.assign(channel="A240102#099"))
    picked = read_labelled_cells(pd.concat([one, folders.iloc[2:3].assign(file=str(lab / "NSER" / NSER_CELL))]))
    assert picked["channel"].tolist() == ["A240102#003", NSER_CELL] and picked["group"].tolist()[0] == "d2"
    assert len(picked["snippets"].iloc[0]) == by_class.loc["A240102#003", "n_spikes"]
    # cells listed without their snippets (a table of cells made elsewhere) are read from their folder
    again = classify_labelled_cells(picked.drop(columns="snippets")).set_index("channel")
    np.testing.assert_array_equal(again["sero_probability"], by_class.loc[again.index, "sero_probability"])


def _spoil(lab, how: str):
    """A copy of the lab's class layout with one thing wrong."""
    if how == "no class folders":
        (lab / "README.txt").write_text("cells to come")
        for folder in ("SER", "ser_Atypical", "NSER"):
            shutil.rmtree(lab / folder)
    elif how == "159 rows":
        spike = sorted((lab / "SER").glob("*.csv"))[3]
        spike.write_text("\n".join(spike.read_text().splitlines()[:-1]) + "\n")
    elif how == "unknown class":
        (lab / "ser_Atypical").rename(lab / "unsure")
    elif how == "a file missing":
        next((lab / "NSER" / NSER_CELL).glob("*.csv")).unlink()
    elif how == "a killed writer":
        shutil.copytree(lab / "NSER" / NSER_CELL, lab / "NSER" / f".{NSER_CELL}.4242-q1.part")
    elif how == "one class":
        shutil.rmtree(lab / "NSER")
    elif how == "a cell in two classes":  # the same files also in a folder below SER/
        shutil.copytree(lab / "NSER" / NSER_CELL, lab / "SER" / "more")


BAD_LAYOUTS = {
    "no class folders": "holds no class folders of per-spike CSV files; name them SER or serotonergic, NSER",
    "159 rows": "is not a 160-row, 2-column (time, current) snippet file",
    "unknown class": "'unsure' is not a class name: name the class folders SER or serotonergic",
    "a file missing": "per-spike files, but its manifest lists",
    "a killed writer": "is a folder still being written",
    "one class": "validating needs labelled cells of both classes",
    "a cell in two classes": f"the cell {NSER_CELL} has per-spike files in",
}


@pytest.mark.parametrize("how", sorted(BAD_LAYOUTS))
def test_a_bad_csv_layout_is_one_error_before_any_work(csv_lab, tmp_path, capsys, how):
    _, lab = csv_lab
    bad = tmp_path / "lab"
    shutil.copytree(lab, bad)
    _spoil(bad, how)
    with pytest.raises(SeroError, match=re.escape(BAD_LAYOUTS[how])) as refused:
        validate(None, bad, report_dir=tmp_path / "report", out=tmp_path / "model")
    assert "on_bad" not in str(refused.value)  # an argument of read_snippet_csv_folder, not of validate
    assert not any((tmp_path / "report").iterdir()) and not (tmp_path / "model").exists()
    command = ["validate", "demo", str(bad), "--report", str(tmp_path / "cli"), "--out", str(tmp_path / "m")]
    assert main(command) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err and BAD_LAYOUTS[how] in err
    assert "on_bad" not in err  # a Python argument the command line does not have
    assert not (tmp_path / "m").exists()


def test_sero_validate_takes_the_labelled_cells_once(csv_lab, tmp_path, capsys):
    table, lab = csv_lab
    report = ["--report", str(tmp_path / "report"), "--out", str(tmp_path / "model")]
    for given in ([str(lab), "--table", str(table)], [], [str(lab), "--curation", str(table)]):
        assert main(["validate", "demo", *given, *report]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "give the labelled cells once: as LABELS (a table, or a folder" in err
    assert main(["validate", "demo", str(tmp_path / "nowhere"), *report]) == 2
    assert "do not exist: give a label table (CSV) or a folder laid out by class" in capsys.readouterr().err
    assert not (tmp_path / "model").exists()
