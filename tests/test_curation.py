"""A person's labels beside the model's call: write_curation / read_curation and SpikeInterface's apply_curation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from spikeinterface.curation import apply_curation
from spikeinterface.curation.curation_model import Curation

import spikeinterface_sero as sero
from spikeinterface_sero.curation import MANUAL_LABEL_OPTIONS, read_curation, write_curation
from spikeinterface_sero.datasets import simulate_drn_recording
from spikeinterface_sero.errors import SeroError
from spikeinterface_sero.export import results_table
from spikeinterface_sero.testing import numpy_recording

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # the demo model's warning

CELLS = [("serotonergic", 3.0), ("non_serotonergic", 6.0), ("atypical_serotonergic", 4.0), ("non_serotonergic", 5.0)]


@pytest.fixture(scope="module")
def computed():
    """Four simulated cells (units "0".."3") classified by the demo model."""
    sims = [simulate_drn_recording(c, duration_s=10.0, seed=i, firing_rate_hz=r) for i, (c, r) in enumerate(CELLS)]
    analyzer = sero.recording_to_analyzer(numpy_recording(np.stack([s.traces for s in sims], axis=1)))
    analyzer.compute("serotonergic", n_boot=50)
    return analyzer


@pytest.fixture
def analyzer(computed):
    return computed.copy()


def _labels(curation: dict) -> dict:
    return {m["unit_id"]: m["labels"]["sero_manual_label"][0] for m in curation["manual_labels"]}


def test_write_curation_prefills_reliable_calls_in_spikeinterface_format(analyzer, tmp_path):
    fewest = int(analyzer.get_extension("serotonergic").get_data()["n_spikes"].min())
    # the cell with the fewest spikes becomes an unsure call (few_spikes), left for the person
    units = analyzer.compute("serotonergic", n_boot=50, min_spikes=fewest + 1).get_data()
    path = tmp_path / "curation.json"
    curation = write_curation(analyzer, path)
    assert json.loads(path.read_text()) == curation
    model = Curation(**curation)  # SpikeInterface's own validation
    assert curation["format_version"] == "2" and model.label_definitions["sero_manual_label"].exclusive
    assert tuple(curation["label_definitions"]["sero_manual_label"]["label_options"]) == MANUAL_LABEL_OPTIONS
    expected = {}
    for unit_id, row in units.iterrows():
        if row.sero_reliable:
            typical = "atypical" if row.sero_type.startswith("atypical") else "typical"
            expected[unit_id] = f"serotonergic_{typical}" if row.sero_label == "serotonergic" else "non_serotonergic"
    assert _labels(curation) == expected
    assert len(expected) == 3 and units.loc[units["n_spikes"] == fewest, "sero_call"].tolist() == ["unsure"]
    with pytest.raises(SeroError, match="exists"):
        write_curation(analyzer, path)
    write_curation(analyzer, path, overwrite=True)


def test_apply_curation_label_sits_beside_the_model_call_and_reaches_the_results_table(analyzer, tmp_path):
    model_labels = analyzer.get_extension("serotonergic").get_data()["sero_label"].copy()
    curation = write_curation(analyzer)
    curation["manual_labels"] = [
        {"unit_id": "0", "labels": {"sero_manual_label": ["non_serotonergic"]}},
        {"unit_id": "2", "labels": {"sero_manual_label": ["serotonergic_atypical"]}},
    ]
    curated = apply_curation(analyzer, curation)
    units = curated.get_extension("serotonergic").get_data()
    assert units["sero_manual_label"].tolist() == ["non_serotonergic", "", "serotonergic_atypical", ""]
    assert units["sero_label"].tolist() == model_labels.tolist()  # never overwritten
    table = results_table(curated, file="cells.abf")
    assert table["sero_manual_label"].tolist() == units["sero_manual_label"].tolist()
    assert table["sero_label"].tolist() == model_labels.tolist()
    # a recompute keeps the person's labels; the property is written with the table
    again = curated.compute("serotonergic", n_boot=50).get_data()
    assert again["sero_manual_label"].tolist() == units["sero_manual_label"].tolist()
    assert list(curated.sorting.get_property("sero_manual_label")) == units["sero_manual_label"].tolist()


def test_relabel_survives_merges_and_splits(analyzer):
    curation = write_curation(analyzer)
    curation["manual_labels"] = [
        {"unit_id": "0", "labels": {"sero_manual_label": ["serotonergic_typical"]}},
        {"unit_id": "1", "labels": {"sero_manual_label": ["serotonergic_typical"]}},
        {"unit_id": "2", "labels": {"sero_manual_label": ["non_serotonergic"]}},
        {"unit_id": "3", "labels": {"sero_manual_label": ["unsure"]}},
    ]
    # cells on different channels merge hard (recomputed): SpikeInterface's property rule
    curation["merges"] = [{"unit_ids": ["0", "1"], "new_unit_id": "01"}, {"unit_ids": ["2", "3"], "new_unit_id": "23"}]
    merged = apply_curation(analyzer, curation, merging_mode="hard")
    units = merged.get_extension("serotonergic").get_data()
    assert units.loc["01", "sero_manual_label"] == "serotonergic_typical"  # the same label: kept
    assert units.loc["23", "sero_manual_label"] == ""  # different labels: none
    assert list(merged.sorting.get_property("sero_manual_label")) == units["sero_manual_label"].tolist()
    assert set(units["sero_label"]) <= {"serotonergic", "non_serotonergic"}
    table = results_table(merged, file="cells.abf").set_index("channel")
    assert table["sero_manual_label"].to_dict() == units["sero_manual_label"].to_dict()
    # a split unit keeps its parent's label; a soft merge of its parts keeps a common label ...
    relabelled = apply_curation(analyzer, {**curation, "merges": []})
    indices = np.arange(relabelled.sorting.get_unit_spike_train("2").size)
    split = relabelled.split_units({"2": [indices[::2], indices[1::2]]})
    units = split.get_extension("serotonergic").get_data()
    parts = [u for u in split.unit_ids if u not in relabelled.unit_ids]
    assert units.loc[parts, "sero_manual_label"].tolist() == ["non_serotonergic", "non_serotonergic"]
    assert units.loc["3", "sero_manual_label"] == "unsure"
    same = split.merge_units([parts], new_unit_ids=["back"], merging_mode="soft")
    assert same.get_extension("serotonergic").get_data().loc["back", "sero_manual_label"] == "non_serotonergic"
    # ... and gives "" to parts a person labelled differently, naming their labels in provenance
    labels = split.sorting.get_property("sero_manual_label").astype(object)
    labels[list(split.unit_ids).index(parts[1])] = "unsure"
    split.sorting.set_property("sero_manual_label", np.array(labels, dtype=str))
    differ = split.merge_units([parts], new_unit_ids=["back"], merging_mode="soft")
    ext = differ.get_extension("serotonergic")
    assert ext.get_data().loc["back", "sero_manual_label"] == ""
    assert ext.get_data("provenance")["manual_label_merges"] == [
        {"unit_id": "back", "merged_labels": {str(parts[0]): "non_serotonergic", str(parts[1]): "unsure"}}
    ]


def test_read_curation_gives_labelled_cells(analyzer, tmp_path):
    curation = write_curation(analyzer)
    curation["manual_labels"] = [
        {"unit_id": "0", "labels": {"sero_manual_label": ["serotonergic_typical"]}},
        {"unit_id": "1", "labels": {"sero_manual_label": ["non_serotonergic"]}},
        {"unit_id": "2", "labels": {"sero_manual_label": ["serotonergic_atypical"]}},
        {"unit_id": "3", "labels": {"sero_manual_label": ["unsure"]}},
    ]
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(curation))
    cells = read_curation(path)
    assert list(cells.columns) == ["unit_id", "label", "type"]
    assert cells.values.tolist() == [
        ["0", "serotonergic", "typical"],
        ["1", "non_serotonergic", ""],
        ["2", "serotonergic", "atypical"],
    ]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**curation, "label_definitions": {}}))
    with pytest.raises(SeroError, match="sero_manual_label"):
        read_curation(bad)
    bad.write_text("{not json")
    with pytest.raises(SeroError, match="curation"):
        read_curation(bad)
