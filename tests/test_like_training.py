"""Is this cell like what the model was trained on? (issue 12) And honest figures on small sets."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from spikeinterface_sero.datasets import simulate_artefact, simulate_drn_recording
from spikeinterface_sero.decision import (
    UNLIKE_TRAINING,
    action_current_quality,
    check_training_description,
    describe_training_snippets,
    training_distance,
)
from spikeinterface_sero.errors import DataError, ModelError
from spikeinterface_sero.model import clear_model_cache, demo_model_folder, import_models, load_model
from spikeinterface_sero.snippets import recording_to_snippets
from spikeinterface_sero.testing import numpy_recording
from spikeinterface_sero.training.evaluate import cell_intervals

TYPES = ("serotonergic", "atypical_serotonergic", "non_serotonergic")


def _snippets(traces):
    found = recording_to_snippets(numpy_recording(traces))
    return found.waveforms.reshape(len(found.waveforms), -1)


@pytest.fixture(scope="module")
def description():
    """The description of 18 simulated training cells (6 of each type)."""
    waveforms, cells = [], []
    for i in range(18):
        sim = simulate_drn_recording(TYPES[i % 3], duration_s=20, seed=3000 + i)
        snippets = _snippets(sim.traces)
        waveforms.append(snippets)
        cells += [f"cell{i}"] * len(snippets)
    return describe_training_snippets(np.concatenate(waveforms), np.array(cells))


def _distance(snippets, description):
    return float(training_distance(snippets, np.zeros(len(snippets), np.int64), 1, description)[0])


def test_description_is_compact_json(description):
    assert description["n_cells"] == 18 and len(description["shapes"]) == 18
    assert all(len(shape) == 160 for shape in description["shapes"])
    assert json.loads(json.dumps(description)) == description
    assert check_training_description(description) is description
    many = describe_training_snippets(np.random.default_rng(0).normal(size=(400, 160)), np.arange(400) // 2)
    assert len(many["shapes"]) == 128  # at most MAX_TRAINING_SHAPES shapes kept, whatever the training set


def test_genuine_cells_of_other_days_are_alike(description):
    distances = [
        _distance(_snippets(simulate_drn_recording(TYPES[i % 3], duration_s=20, seed=91_000 + i).traces), description)
        for i in range(6)
    ]
    assert max(distances) < 1.0


@pytest.mark.parametrize("kind", ["current_steps", "mains_hum", "noise_bursts", "white_noise"])
def test_artefact_shapes_are_unlike_the_training_data(description, kind):
    snippets = _snippets(simulate_artefact(kind, 20, seed=0))
    assert _distance(snippets, description) > 1.0
    quality = action_current_quality(snippets, np.zeros(len(snippets), np.int64), ["c"], training_data=description)
    assert UNLIKE_TRAINING in quality.loc["c", "sero_quality"].split("+")


def test_a_cell_type_the_model_never_saw_is_flagged():
    """A model trained on non-serotonergic (narrow) cells only has not seen a wide serotonergic spike."""
    waveforms, cells = [], []
    for i in range(8):
        snippets = _snippets(simulate_drn_recording("non_serotonergic", duration_s=20, seed=5000 + i).traces)
        waveforms.append(snippets)
        cells += [i] * len(snippets)
    narrow_only = describe_training_snippets(np.concatenate(waveforms), np.array(cells))
    wide = _snippets(simulate_drn_recording("serotonergic", duration_s=20, seed=5100).traces)
    narrow = _snippets(simulate_drn_recording("non_serotonergic", duration_s=20, seed=5101).traces)
    assert _distance(wide, narrow_only) > 1.0 > _distance(narrow, narrow_only)


def test_without_a_description_only_the_shape_checks_judge():
    snippets = _snippets(simulate_drn_recording("serotonergic", duration_s=20, seed=1).traces)
    assert np.isnan(_distance(snippets, None))
    quality = action_current_quality(snippets, np.zeros(len(snippets), np.int64), ["c"])
    assert np.isnan(quality.loc["c", "training_distance"])
    assert UNLIKE_TRAINING not in quality.loc["c", "sero_quality"]


@pytest.mark.parametrize(
    "broken",
    [
        {"format": "other"},
        {"limit": -1},
        {"limit": True},
        {"shapes": [[0.0] * 159]},
        {"shapes": [[float("nan")] * 160]},
        {"shapes": "abc"},
        {"shapes": []},
    ],
)
def test_malformed_descriptions_are_refused(description, broken, tmp_path):
    bad = dict(description, **broken)
    with pytest.raises(DataError):
        check_training_description(bad)
    folder = tmp_path / "model"
    shutil.copytree(demo_model_folder(), folder)
    info = json.loads((folder / "model_info.json").read_text())
    info["training_data"] = bad
    (folder / "model_info.json").write_text(json.dumps(info))
    clear_model_cache()
    with pytest.raises(ModelError, match="training_data") as error:
        load_model(folder)
    assert "\n" not in str(error.value)


def test_the_extension_flags_a_cell_unlike_the_models_training_data(tmp_path):
    """The description in model_info.json reaches the unit table through the one decision path: a model
    described by narrow cells only flags a wide cell, which is then not reliable."""
    from spikeinterface_sero import compute_serotonergic, recording_to_analyzer

    waveforms, cells = [], []
    for i in range(8):
        snippets = _snippets(simulate_drn_recording("non_serotonergic", duration_s=20, seed=5000 + i).traces)
        waveforms.append(snippets)
        cells += [i] * len(snippets)
    folder = tmp_path / "model"
    shutil.copytree(demo_model_folder(), folder)
    info = json.loads((folder / "model_info.json").read_text())
    info["training_data"] = describe_training_snippets(np.concatenate(waveforms), np.array(cells))
    (folder / "model_info.json").write_text(json.dumps(info))
    clear_model_cache()
    sim = simulate_drn_recording("serotonergic", duration_s=30, seed=5100)
    analyzer = recording_to_analyzer(numpy_recording(sim.traces))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compute_serotonergic(analyzer, model_folder=str(folder))
    units = analyzer.get_extension("serotonergic").get_data("units")
    assert units["training_distance"].iloc[0] > 1.0
    assert UNLIKE_TRAINING in units["sero_quality"].iloc[0] and not units["sero_reliable"].iloc[0]
    provenance = analyzer.get_extension("serotonergic").get_data("provenance")
    assert "8 training cells" in provenance["training_data"]


def test_published_models_say_the_description_is_absent(shared_models, tmp_path):
    folder = import_models(shared_models / "BioModelDNN_BALANCED", tmp_path / "imported")
    card = (folder / "README.md").read_text()
    assert "Validated by its authors" in card and "absent" in card
    assert "training_data" not in json.loads((folder / "model_info.json").read_text())


# ------------------------------------------------------------------------------ intervals over cells
def test_wilson_and_bootstrap_intervals_over_cells():
    from scipy.stats import binomtest

    truth = np.array([0] * 10 + [1] * 10)
    predicted = truth.copy()
    predicted[[0, 1, 12]] = 1 - predicted[[0, 1, 12]]
    out = cell_intervals(truth, predicted)
    expected = binomtest(17, 20).proportion_ci(method="wilson")
    assert out["accuracy_interval"] == pytest.approx([expected.low, expected.high])
    assert out["TPR_interval"][0] < 0.8 < out["TPR_interval"][1]
    low, high = out["balanced_accuracy_interval"]
    assert low < 0.85 < high and high <= 1.0
    assert out["warnings"] == []  # 20 cells, 10 of each class, no groups given


def test_small_or_one_sided_sets_get_plain_warnings():
    few = cell_intervals([0, 0, 1, 1], [0, 0, 1, 1], groups=["d1", "d1", "d1", "d1"])
    assert few["accuracy_interval"][0] < 0.6  # 4/4 right says little
    text = " ".join(few["warnings"])
    assert "only 4 cells" in text and "1 recording day" in text and "only 2 serotonergic cells" in text
    one_class = cell_intervals([0] * 25, [0] * 24 + [1])
    assert one_class["balanced_accuracy_interval"] is None and one_class["TNR_interval"] is None
    assert any("no non_serotonergic cells" in w for w in one_class["warnings"])


def test_evaluation_reports_intervals_and_warnings():
    from spikeinterface_sero.training import dataset_from_arrays
    from spikeinterface_sero.training.evaluate import evaluate_predictions

    rng = np.random.default_rng(0)
    cells = np.repeat(np.arange(6), 10).astype(str)
    y = np.repeat([0, 1, 0, 1, 0, 1], 10)
    dataset = dataset_from_arrays(rng.normal(size=(60, 160)).astype(np.float32), y, cells)
    outputs = np.stack([np.where(y[:, None] == 0, [0.9, 0.1], [0.2, 0.8])] * 2, axis=1)
    result = evaluate_predictions(outputs, dataset, per_kernel=False)
    assert result["cell"]["accuracy"] == 1.0 and result["cell"]["accuracy_interval"][0] < 0.7
    assert result["warnings"] and "only 6 cells" in result["warnings"][0]
    assert pd.notna(result["cell"]["balanced_accuracy_interval"][0])
