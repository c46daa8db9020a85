"""sero validate: labelled cells of a rig through the extension, the page, the conformal fit and fingerprint
recorded in a copy of the model folder; the fingerprint tells another rig from another day of the same rig."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from spikeinterface_sero.cli import main
from spikeinterface_sero.curation import MANUAL_LABEL_OPTIONS
from spikeinterface_sero.datasets import simulate_dataset
from spikeinterface_sero.datasets.membrane import simulate_membrane_dataset
from spikeinterface_sero.errors import ParameterError
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
