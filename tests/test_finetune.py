"""Adapting a model to another rig from a few labelled cells (``sero adapt``, training/finetune.py)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from spikeinterface_sero.cli import main
from spikeinterface_sero.datasets import simulate_membrane_dataset
from spikeinterface_sero.model import demo_model_folder, load_model
from spikeinterface_sero.training.finetune import _decide, adapt_model

COUNTS = {"serotonergic": 6, "atypical_serotonergic": 2, "non_serotonergic": 8}


@pytest.fixture(scope="module")
def other_rig(tmp_path_factory):
    """16 cells of one day of the membrane rig, where the demo model calls the NSER cells serotonergic."""
    root = tmp_path_factory.mktemp("rig2")
    simulate_membrane_dataset(COUNTS, duration_s=15.0, seed=31, out_dir=root, day_prefix="rigT")
    return root / "labels.csv"


@pytest.fixture(scope="module")
def shuffled(other_rig):
    table = pd.read_csv(other_rig)
    table["label"] = np.random.default_rng(3).permutation(table["label"].to_numpy())
    path = other_rig.parent / "shuffled.csv"
    table.to_csv(path, index=False)
    return path


def test_an_adaptation_that_does_not_help_is_refused(shuffled, tmp_path):
    report = adapt_model(None, shuffled, tmp_path / "adapted", modes=("temperature",), n_folds=3)
    assert not report["written"] and report["folder"] is None and report["mode"] is None
    assert not (tmp_path / "adapted").exists()
    assert "not adapted" in report["message"] and "keep the starting model" in report["message"]
    assert not all(report["test"]["checks"].values())
    assert report["before"]["n_cells"] == report["candidates"]["temperature"]["n_cells"] == 16


def test_the_choice_needs_a_paired_gain_and_a_model_that_tells_the_classes_apart():
    def figures(losses, balanced, low):
        return {"cell_log_loss": np.asarray(losses), "log_loss": float(np.mean(losses)),
                "balanced_accuracy": balanced, "balanced_accuracy_interval": [low, 1.0]}  # fmt: skip

    start = figures([0.7] * 12, 0.6, 0.4)
    better = {"start": start, "head": figures([0.2] * 12, 0.9, 0.6)}
    assert _decide(better, ("head",), 0.05)[0] == "head"
    noisy = {"start": start, "head": figures([0.2, 1.2] * 6, 0.9, 0.6)}  # lower mean, no paired gain
    assert _decide(noisy, ("head",), 0.05)[0] is None
    flat = {"start": start, "temperature": figures([0.69] * 12, 0.6, 0.4)}  # calibrated, but cannot tell apart
    chosen, test = _decide(flat, ("temperature",), 0.05)
    assert chosen is None and not test["checks"]["balanced accuracy interval above 0.5 (it tells the classes apart)"]
    worse_calls = {"start": figures([0.7] * 12, 0.95, 0.7), "head": figures([0.3] * 12, 0.9, 0.6)}
    assert _decide(worse_calls, ("head",), 0.05)[0] is None


def test_an_adaptation_that_helps_writes_a_card_with_its_parent_and_figures(other_rig, tmp_path):
    report = adapt_model(None, other_rig, tmp_path / "adapted", modes=("temperature", "head"), n_folds=4)
    assert report["written"], report["message"]
    assert report["after"]["balanced_accuracy"] > report["before"]["balanced_accuracy"]
    info = json.loads((tmp_path / "adapted" / "model_info.json").read_text())
    parent_sha = hashlib.sha256((demo_model_folder() / "model_info.json").read_bytes()).hexdigest()
    assert info["training"]["parent_sha256"] == parent_sha
    assert len(info["training"]["cells"]) == 16 and info["training"]["days"] == ["rigT01"]
    assert set(info["metrics"]) == {"before (starting model, the same cells)", "after (adapted, out of fold)"}
    assert info["calibration"]["method"] == "temperature" and info["training_data"]
    assert "rig_validation" not in info  # the parent's rigs do not vouch for new members: validate again
    card = (tmp_path / "adapted" / "README.md").read_text()
    assert parent_sha[:12] in card
    adapted = load_model(tmp_path / "adapted")
    assert adapted.kernels == load_model().kernels


def test_sero_adapt_refuses_and_says_why(shuffled, tmp_path, capsys):
    assert main(["adapt", "demo", "--table", str(shuffled), "--out", str(tmp_path / "new"), "--modes", "temperature",
                 "--folds", "3", "--quiet"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "not adapted" in printed and "starting model" in printed and "p = " in printed
    assert not (tmp_path / "new").exists()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    assert main(["adapt", "demo", "--table", str(shuffled), "--out", str(tmp_path / "taken")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["adapt", "demo", "--table", str(shuffled), "--out", str(tmp_path / "n2"), "--modes", "bogus"]) == 2
