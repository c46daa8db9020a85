"""What a trained ensemble records: its accuracy on the validation and test cells, its calibration, and the
model folder's card and ``training.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..constants import LABELS
from ..decision import calibrate, describe_training_snippets, fit_temperature
from ..errors import DataError
from ..model import save_model
from .data import SpikeDataset
from .evaluate import calibration as evaluate_calibration
from .evaluate import evaluate


def json_safe(value):
    """JSON-able copy (numpy scalars/arrays to Python)."""
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def quick_metrics(ensemble, dataset: SpikeDataset) -> dict:
    """The spike and cell figures (with their intervals) the card records for ``dataset``."""
    result = evaluate(ensemble, dataset, per_kernel=False)
    return {
        "spikes": result["spike"]["n"],
        "cells": result["cell"]["n"],
        "spike_accuracy": result["spike"]["accuracy"],
        "spike_balanced_accuracy": result["spike"]["balanced_accuracy"],
        "spike_roc_auc": result["spike"]["roc_auc"],
        "cell_accuracy": result["cell"]["accuracy"],
        "cell_balanced_accuracy": result["cell"]["balanced_accuracy"],
        "cell_TPR_SER_recall": result["cell"]["rates"]["TPR"],
        "cell_TNR_NSER_recall": result["cell"]["rates"]["TNR"],
        "cell_accuracy_interval": result["cell"]["accuracy_interval"],
        "cell_balanced_accuracy_interval": result["cell"]["balanced_accuracy_interval"],
        "cell_TPR_interval": result["cell"]["TPR_interval"],
        "cell_TNR_interval": result["cell"]["TNR_interval"],
        "interval_method": result["cell"]["interval_method"],
        "cell_ece": result["cell"]["calibration"]["ece"],
        "spike_ece": result["spike"]["calibration"]["ece"],
        "warnings": result["warnings"],
    }


def fit_calibration(ensemble, validation: SpikeDataset) -> dict | None:
    """Temperature scaling of the cell probability, fitted on the validation cells (None when they do not
    hold both classes); the ECE of the validation cells before and after is recorded with it."""
    result = evaluate(ensemble, validation, per_kernel=False)
    cells = result["cells"]
    is_ser = (cells["true_label"] == LABELS[0]).to_numpy()
    try:
        calibration = fit_temperature(cells["sero_probability"].to_numpy(dtype=float), is_ser)
    except DataError:
        return None
    after = calibrate(cells["sero_probability"].to_numpy(dtype=float), calibration)
    calibration["fitted_on"] = "validation cells"
    calibration["cell_ece_before"] = result["cell"]["calibration"]["ece"]
    calibration["cell_ece_after"] = float(
        evaluate_calibration(is_ser, after, n_bins=10)["ece"] if len(after) else float("nan")
    )
    return calibration


def measure_and_calibrate(ensemble, result: dict, train, validation, test, calibration, *, seed) -> None:
    """Record on ``ensemble`` what it was trained on and its calibration; put the validation and test
    figures and the calibration in ``result``."""
    # what the members were trained on, for the "like the training data" check at inference
    ensemble.info["training_data"] = describe_training_snippets(train.X, train.cell, seed=seed)
    if validation is not None:
        result["val_metrics"] = quick_metrics(ensemble, validation)
    if calibration is None and validation is not None:
        calibration = fit_calibration(ensemble, validation)
    if calibration is not None:
        result["calibration"] = calibration
        ensemble.info["calibration"] = {
            "method": "temperature",
            "temperature": calibration["temperature"],
            "n_cells": calibration["n_cells"],
            "fitted_on": calibration.get("fitted_on", "validation cells"),
            "targets": calibration.get("targets", "Platt's smoothed targets"),
        }
    if test is not None:
        result["test_metrics"] = quick_metrics(ensemble, test)


def save_trained_model(
    ensemble,
    out,
    *,
    train,
    validation=None,
    test=None,
    split=None,
    result=None,
    description=None,
    name=None,
    demo=False,
    overwrite=False,
    extra=None,
    headline_metrics=None,
) -> Path:
    """Write the model folder with a card recording the data, the split, the settings and the measured
    accuracy (``headline_metrics`` first); plus ``training.json`` (full history and split, cell ids included)."""
    result = result or {}
    settings = result.get("settings", {})
    data = {"train": train.summary()}
    if validation is not None:
        data["validation"] = validation.summary()
    if test is not None:
        data["test"] = test.summary()
    training = {
        "data_source": {k: v for k, v in train.source.items() if k != "parts"},
        "training_set": _side_line(data["train"]),
        "validation_set": _side_line(data["validation"])
        if validation is not None
        else "none (early stopping on training loss)",
        "test_set": _side_line(data["test"]) if test is not None else "none",
        "split": _split_line(split),
        "kernels": settings.get("kernels"),
        "epochs": f"{result.get('epochs_run')} run of {settings.get('epochs')} (early stopping: {settings.get('early_stopping')}, "
        f"patience {settings.get('patience')})",
        "best_epoch_per_kernel": result.get("best_epoch"),
        "batch_size": settings.get("batch_size"),
        "optimizer": f"Adam, learning rate {settings.get('learning_rate')}",
        "loss": settings.get("loss"),
        "synthetic_per_epoch": settings.get("synthetic_per_epoch"),
        "synthetic": _synthetic_line(result.get("synthetic")),
        "seed": settings.get("seed"),
        "recipe": settings.get("recipe"),
        "precision": settings.get("precision"),
        "method": settings.get("training"),
        "seconds": round(float(result.get("seconds", 0.0)), 1),
    }
    if extra:
        training.update(extra)
    metrics = dict(headline_metrics or {})
    for side in ("val_metrics", "test_metrics"):
        if result.get(side):
            label = "validation" if side == "val_metrics" else "held-out test"
            metrics[label] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result[side].items()}
    folder = save_model(
        ensemble,
        out,
        description=description or "",
        training=json_safe(training),
        metrics=json_safe(metrics),
        name=name,
        demo=demo,
        overwrite=overwrite,
    )
    full = {"data": data, "split": split, "training": json_safe(training), "result": result}
    (Path(folder) / "training.json").write_text(json.dumps(json_safe(full), indent=1) + "\n", encoding="utf-8")
    return Path(folder)


def _side_line(side: dict) -> str:
    line = (
        f"{side['n_spikes']} spikes from {side['n_cells']} cells (SER {side['serotonergic']['spikes']} spikes / "
        f"{side['serotonergic']['cells']} cells, NSER {side['non_serotonergic']['spikes']} spikes / "
        f"{side['non_serotonergic']['cells']} cells)"
    )
    if "n_groups" in side:
        line += f", {side['n_groups']} groups"
    return line


def _split_line(split: dict | None) -> str:
    if not split:
        return "given as separate datasets (not recorded)"
    by = split.get("by")
    if by == "spike":
        return "random by spike (the paper's 70/15/15; cells shared between sides: LEAKS)"
    shared = split.get("cells_on_more_than_one_side", 0)
    return (
        f"by {by} ({split.get('method', '')}, seed {split.get('seed')}), val fraction "
        f"{split.get('val_fraction')}, test fraction {split.get('test_fraction')}; cells on more than one "
        f"side: {shared}"
    )


def _synthetic_line(info: dict | None) -> str:
    if not info:
        return "none"
    m = info.get("masks", {})
    line = (
        f"smoothed ({info.get('smoothing')}) training spikes + one of {m.get('n_masks')} noise masks "
        f"from {m.get('n_cells')} cells ({m.get('description')}), classes balanced, streamed"
    )
    if m.get("n_extra_masks"):
        line += f"; {m['n_extra_masks']} of the masks from other recordings"
    if info.get("augmentation"):
        line += "; recording conditions augmented: " + ", ".join(f"{k} {v}" for k, v in info["augmentation"].items())
    return line
