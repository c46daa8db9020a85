"""Issue 13: the named training recipes (recorded in the model card), the synthetic-sample augmentation, and
leave-one-group-out cross-validation. The simulator's day-to-day variety is tested in test_datasets.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spikeinterface_sero.constants import NBEFORE
from spikeinterface_sero.errors import ModelError, TrainingError
from spikeinterface_sero.testing import labelled_synthetic_snippets
from spikeinterface_sero.training.data import dataset_from_arrays
from spikeinterface_sero.training.synthetic import Augmentation, realign


# ------------------------------------------------------------------------------------------- augmentation
def _spikes(n=64, seed=0):
    x, y = labelled_synthetic_snippets(n, seed, noise_pa=0.0)
    return realign(x * 2.0).astype(np.float32), y


def test_augmentation_keeps_the_trigger_and_changes_the_conditions():
    spikes, _ = _spikes()
    zeros = np.zeros_like(spikes)
    rng = np.random.default_rng(0)
    filtered = Augmentation(filter_probability=1.0, filter_hz=(2000.0, 2000.0)).apply(spikes, zeros, rng)
    relative = filtered - np.median(filtered[:, :20], axis=1, keepdims=True)
    crossing = np.argmax(relative <= -50.0, axis=1)
    assert np.all(crossing == NBEFORE)  # re-aligned as the detector would
    assert np.abs(filtered).max(axis=1).mean() < np.abs(spikes).max(axis=1).mean()  # filtered, shallower
    masks = np.random.default_rng(1).normal(0, 5.0, spikes.shape).astype(np.float32)
    louder = Augmentation(noise_gain=(3.0, 3.0)).apply(spikes, masks, rng) - spikes
    np.testing.assert_allclose(louder, 3.0 * masks, rtol=1e-5, atol=1e-4)
    assert not Augmentation().active and Augmentation(time_jitter=1).active
    with pytest.raises(TrainingError, match="noise_gain"):
        Augmentation(noise_gain=(2.0, 1.0))


# ---------------------------------------------------------------------------------------------- recipes
def test_paper_recipe_is_the_papers_and_the_recipes_differ_as_named():
    from spikeinterface_sero.training.train import RECIPES, get_recipe

    paper = RECIPES["paper"]
    assert (paper.epochs, paper.batch_size, paper.patience, paper.learning_rate) == (25, 64, 10, 1e-3)
    assert paper.balance and paper.noise in ("auto", "recording") and paper.n_masks == 600
    assert paper.synthetic_ratio > 0 and not paper.augmentation.active  # smoothed spike + mask, nothing else
    assert paper.parameters()["smoothing"] == "3-point centred moving mean"
    default = RECIPES["default"]
    assert default.augmentation.active and default.augmentation.noise_gain != (1.0, 1.0)
    assert default.augmentation.time_jitter >= 1 and default != paper
    assert RECIPES["real_only"].synthetic_ratio == 0
    assert get_recipe("paper", epochs=3).epochs == 3 and get_recipe("paper").epochs == 25
    with pytest.raises(TrainingError, match="unknown training recipe"):
        get_recipe("fastest")


@pytest.fixture(scope="module")
def small_dataset():
    x, y = labelled_synthetic_snippets(480, 0, noise_pa=6.0)
    order = np.argsort(y, kind="stable")
    x, y = x[order], y[order]
    cells = np.array([f"{'ser' if label == 0 else 'nser'}{i % 8}" for i, label in enumerate(y)])
    groups = np.array([f"day{int(c[-1]) % 4}" for c in cells])
    return dataset_from_arrays(x, y, cells, group=groups)


@pytest.mark.parametrize("recipe", ["paper", "default"])
def test_recipe_recorded_in_model_info(tmp_path, small_dataset, recipe):
    from spikeinterface_sero.model import load_model
    from spikeinterface_sero.training.train import RECIPES, train_ensemble

    train = small_dataset.select_cells([c for c in small_dataset.cell_ids if c[-1] in "0123"])
    _, history = train_ensemble(
        train, None, kernels=[20], recipe=recipe, epochs=1, noise="residual", out=tmp_path / "m", progress_bar=False
    )
    info = json.loads((tmp_path / "m" / "model_info.json").read_text())
    recorded = info["training"]["recipe"]
    assert recorded["name"] == recipe and recorded["overridden"] == ["epochs", "noise"]
    expected = RECIPES[recipe].parameters()
    assert recorded["parameters"]["epochs"] == 1 and recorded["parameters"]["batch_size"] == expected["batch_size"]
    assert recorded["parameters"]["augmentation"] == expected["augmentation"]
    assert history["samples_per_epoch"] == round(len(train) * (1 + RECIPES[recipe].synthetic_ratio))
    assert (history["synthetic"]["augmentation"] is not None) == (recipe == "default")
    load_model(tmp_path / "m")  # the field validates
    info["training"]["recipe"] = {"name": "", "parameters": []}
    (tmp_path / "m" / "model_info.json").write_text(json.dumps(info))
    with pytest.raises(ModelError, match="training.recipe"):
        load_model(tmp_path / "m")


# ------------------------------------------------------------------------------------------ cross-validation
def test_cross_validate_holds_out_whole_groups(small_dataset):
    from spikeinterface_sero.training.cross_validation import cross_validate

    result = cross_validate(small_dataset, recipe="real_only", kernels=[20], epochs=1, seed=0)
    json.dumps(result)  # JSON-able
    cells = small_dataset.cells
    assert result["by"] == "group" and result["n_folds"] == 4
    tested = []
    for fold in result["folds"]:
        assert len(fold["test_groups"]) == 1 and len(fold["validation_groups"]) == 1
        sides = [set(fold["test_groups"]), set(fold["validation_groups"]), set(fold["train_groups"])]
        assert sum(map(len, sides)) == len(set().union(*sides)) == 4  # disjoint, every group used
        assert set(cells.loc[fold["test_cells"], "group"]) == set(fold["test_groups"])
        tested += fold["test_cells"]
    assert sorted(tested) == sorted(cells.index)  # every cell held out exactly once
    assert sorted(r["cell"] for r in result["cells"]) == sorted(cells.index)
    pooled = result["pooled"]
    assert pooled["n_cells"] == len(cells) and sum(map(sum, pooled["counts"])) == len(cells)
    correct = sum(r["correct"] for r in result["cells"])
    assert pooled["accuracy"] == pytest.approx(correct / len(cells))
    assert len(pooled["balanced_accuracy_interval"]) == 2
    with pytest.raises(TrainingError, match="at least 3 groups"):
        cross_validate(small_dataset.select_cells(cells.index[cells["group"].isin(["day0", "day1"])]), kernels=[20])
