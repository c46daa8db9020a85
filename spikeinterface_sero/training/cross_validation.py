"""Leave-one-group-out (recording day) cross-validation of a training recipe, at the cell level.

The full explanation is in ``docs/training.md`` (section "Leave-one-day-out cross-validation").
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..constants import DEFAULT_KERNELS, DEFAULT_PRECISION, LABELS
from ..decision import fit_temperature, uncalibrate
from ..errors import TrainingError
from .data import SpikeDataset, balance_classes
from .evaluate import calibration, cell_intervals, confusion, evaluate
from .train import _json, get_recipe, parse_kernels, train_ensemble

__all__ = ["cross_validate", "calibration_from_cross_validation", "headline_figures"]


def _folds(groups: np.ndarray, n_folds: int | None, seed: int) -> list[np.ndarray]:
    """The held-out groups of each fold: one group per fold (leave-one-group-out, sklearn
    ``LeaveOneGroupOut``), or ``n_folds`` folds of whole groups (sklearn ``GroupKFold``)."""
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

    unique = np.unique(groups)
    splitter = LeaveOneGroupOut() if n_folds is None else GroupKFold(n_splits=int(n_folds))
    order = np.random.default_rng(seed).permutation(len(unique))  # GroupKFold has no shuffle of its own
    shuffled = unique[order]
    return [np.unique(shuffled[test]) for _, test in splitter.split(shuffled, groups=shuffled)]


def _validation_groups(cells: pd.DataFrame, candidates, rng: np.random.Generator) -> list:
    """One group of the training side to hold out for early stopping and the temperature: one holding both
    classes when there is such a group (chosen at random, seeded); none when only one group is left."""
    candidates = list(candidates)
    if len(candidates) < 2:
        return []
    both = [g for g in candidates if cells.loc[cells["group"] == g, "y"].nunique() == 2]
    pool = both or candidates
    return [pool[int(rng.integers(len(pool)))]]


def _figures(true: np.ndarray, predicted: np.ndarray, p_ser: np.ndarray, groups=None) -> dict:
    from sklearn.metrics import balanced_accuracy_score

    two_classes = len(np.unique(true)) == 2
    rates = confusion(true, predicted)
    out = {
        "n_cells": int(len(true)),
        "accuracy": float(np.mean(true == predicted)) if len(true) else None,
        "balanced_accuracy": float(balanced_accuracy_score(true, predicted)) if two_classes else None,
        "SER_recall": rates["rates"]["TPR"],
        "NSER_recall": rates["rates"]["TNR"],
        "counts": rates["counts"],
        "cell_ece": calibration(true == 0, p_ser)["ece"] if len(true) else None,
    }
    out.update(cell_intervals(true, predicted, groups=groups))
    return out


def cross_validate(
    dataset: SpikeDataset,
    *,
    recipe="default",
    kernels=DEFAULT_KERNELS,
    seed: int = 0,
    epochs: int | None = None,
    synthetic: int | None = None,
    n_folds: int | None = None,
    validation: bool = True,
    cell_types: dict | None = None,
    precision: str = DEFAULT_PRECISION,
    progress_bar: bool = False,
) -> dict:
    """Leave-one-group-out cross-validation: each group (recording day) in turn is held out, a model is
    trained with ``recipe`` on the other groups and the held-out cells are classified.

    Parameters
    ----------
    dataset : SpikeDataset
        Labelled spikes with their groups (``dataset.has_groups``; without groups every cell is its own
        group, i.e. leave-one-cell-out).
    recipe : str or Recipe, default: "default"
        The training recipe (see :data:`~spikeinterface_sero.training.train.RECIPES`).
    kernels : int, str or list of int, default: DEFAULT_KERNELS
        Member kernels of every fold's model (20-31).
    seed : int, default: 0
        Seed of fold ``i`` is ``seed + i`` (training, balancing, choice of the validation group).
    epochs : int or None, default: None
        Epochs of every fold (None: the recipe's).
    synthetic : int or None, default: None
        Synthetic samples per epoch (None: the recipe's ratio times the real training spikes).
    n_folds : int or None, default: None
        None: one fold per group; an integer: that many folds of whole groups (sklearn ``GroupKFold``).
    validation : bool, default: True
        Hold out one more group of each fold's training side (one with both classes when there is one) for
        early stopping and the temperature, as ``train_from_table`` does; False trains on every other group.
    cell_types : dict or None, default: None
        Cell id -> cell type (e.g. the simulator's ``"atypical_serotonergic"``), for the recall per type.
    precision : str, default: "auto"
        Passed to :func:`~spikeinterface_sero.training.train.train_ensemble`.
    progress_bar : bool, default: False
        Show the training progress of each fold.

    Returns
    -------
    dict
        JSON-able: ``recipe`` (name and settings), ``kernels``, ``by`` (``"group"`` or ``"cell"``),
        ``folds`` (per fold: ``test_groups``, ``validation_groups``, ``train_groups``, ``test_cells``,
        ``epochs_run``, ``seconds`` and the cell-level figures), ``pooled`` (the cell-level figures over
        every held-out cell: balanced accuracy, SER and NSER recall, counts, cell ECE, intervals over cells,
        warnings; ``by_cell_type`` when ``cell_types`` is given), ``cells`` (one record per held-out cell:
        ``cell``, ``group``, ``fold``, ``true_label``, ``sero_label``, ``sero_probability``, ``correct``)
        and ``seconds``.
    """
    if not isinstance(dataset, SpikeDataset):
        raise TrainingError(f"cross_validate needs a SpikeDataset, got {type(dataset).__name__}")
    if len(np.unique(dataset.y)) < 2:
        raise TrainingError("cross-validation needs serotonergic and non_serotonergic cells")
    chosen = get_recipe(recipe)
    kernels = parse_kernels(kernels)
    cells = dataset.cells
    groups = cells["group"].to_numpy(dtype=str)
    if len(np.unique(groups)) < 3:
        raise TrainingError(
            f"cross-validation by group needs at least 3 groups (recording days), the dataset has "
            f"{len(np.unique(groups))}: add a group column with more days, or evaluate on a held-out set"
        )
    if n_folds is not None and not 2 <= int(n_folds) <= len(np.unique(groups)):
        raise TrainingError(f"n_folds must lie between 2 and the number of groups ({len(np.unique(groups))})")
    start = time.perf_counter()
    folds, rows = [], []
    for fold, test_groups in enumerate(_folds(groups, n_folds, seed)):
        rng = np.random.default_rng([seed, fold])
        rest = sorted(set(groups) - set(test_groups))
        validation_groups = _validation_groups(cells, rest, rng) if validation else []
        train_groups = [g for g in rest if g not in validation_groups]
        train = dataset.select_cells(cells.index[np.isin(groups, train_groups)])
        test = dataset.select_cells(cells.index[np.isin(groups, test_groups)])
        entry = {
            "fold": fold,
            "test_groups": [str(g) for g in test_groups],
            "validation_groups": [str(g) for g in validation_groups],
            "train_groups": [str(g) for g in train_groups],
            "test_cells": [str(c) for c in test.cell_ids],
        }
        if len(np.unique(train.y)) < 2:
            entry["skipped"] = "its training groups hold cells of one class only"
            folds.append(entry)
            continue
        held = None
        if validation_groups:
            held = dataset.select_cells(cells.index[np.isin(groups, validation_groups)])
        if chosen.balance:
            train = balance_classes(train, seed=seed + fold)
            if held is not None and len(np.unique(held.y)) == 2:
                held = balance_classes(held, seed=seed + fold + 1)
        fold_start = time.perf_counter()
        ensemble, history = train_ensemble(
            train,
            held,
            kernels=kernels,
            recipe=chosen,
            epochs=epochs,
            synthetic=synthetic,
            seed=seed + fold,
            precision=precision,
            progress_bar=progress_bar,
        )
        result = evaluate(ensemble, test, per_kernel=False)
        table = result["cells"]
        true = test.cells["y"].reindex(table.index.astype(str)).to_numpy(dtype=np.int64)
        predicted = np.where(table["sero_label"].to_numpy() == LABELS[0], 0, 1)
        probability = table["sero_probability"].to_numpy(dtype=float)
        cell_groups = test.cells["group"].reindex(table.index.astype(str)).to_numpy(dtype=str)
        entry.update(_figures(true, predicted, probability))
        entry.update(
            spike_ece=result["spike"]["calibration"]["ece"],
            epochs_run=history["epochs_run"],
            temperature=(history.get("calibration") or {}).get("temperature"),
            seconds=round(time.perf_counter() - fold_start, 1),
        )
        folds.append(entry)
        uncalibrated = uncalibrate(probability, ensemble.info.get("calibration"))  # the fold model's own
        for cell_id, group, y, label, p, raw in zip(
            table.index, cell_groups, true, table["sero_label"], probability, uncalibrated
        ):
            rows.append(
                {
                    "cell": str(cell_id),
                    "group": str(group),
                    "fold": fold,
                    "true_label": LABELS[int(y)],
                    "sero_label": str(label),
                    "sero_probability": float(p),
                    "uncalibrated_probability": float(raw),
                    "correct": bool(LABELS[int(y)] == label),
                }
            )
    if not rows:
        raise TrainingError("no fold could be trained: every fold's training groups hold one class only")
    frame = pd.DataFrame(rows)
    true = np.where(frame["true_label"] == LABELS[0], 0, 1)
    predicted = np.where(frame["sero_label"] == LABELS[0], 0, 1)
    pooled = _figures(true, predicted, frame["sero_probability"].to_numpy(), groups=frame["group"].to_numpy())
    if cell_types:
        types = frame["cell"].map(lambda c: cell_types.get(c, "unknown"))
        pooled["by_cell_type"] = {
            str(t): {"cells": int((types == t).sum()), "correct": int(frame.loc[types == t, "correct"].sum())}
            for t in sorted(types.unique())
        }
    out = {
        "recipe": chosen.describe(),
        "kernels": kernels,
        "by": "group" if dataset.has_groups else "cell",
        "n_folds": len(folds),
        "folds": folds,
        "pooled": pooled,
        "cells": rows,
        "seconds": round(time.perf_counter() - start, 1),
    }
    return _json(out)


def calibration_from_cross_validation(result: dict) -> dict:
    """A temperature fitted on the held-out cells of a :func:`cross_validate` run (every cell, each from the
    fold that did not see its day), as scikit-learn's ``CalibratedClassifierCV(ensemble=False)`` fits its
    calibrator on cross-validated predictions: many more cells than one validation day holds.

    Parameters
    ----------
    result : dict
        What :func:`cross_validate` returned.

    Returns
    -------
    dict
        The calibration (:func:`~spikeinterface_sero.decision.fit_temperature`), with ``fitted_on``.
    """
    cells = result["cells"]
    calibration = fit_temperature(
        [c["uncalibrated_probability"] for c in cells], [c["true_label"] == LABELS[0] for c in cells]
    )
    calibration["fitted_on"] = f"the {len(cells)} held-out cells of a {result['n_folds']}-fold cross-validation by day"
    return calibration


def headline_figures(result: dict) -> dict:
    """The pooled cell-level figures of a :func:`cross_validate` run, as the model card's headline.

    Parameters
    ----------
    result : dict
        What :func:`cross_validate` returned.

    Returns
    -------
    dict
        JSON-able: what was held out, the number of folds and cells, the balanced accuracy, SER and NSER
        recall and accuracy with their intervals over cells, the cell ECE, per-type counts and warnings.
    """
    pooled = result["pooled"]
    keys = [k for k in pooled if k.endswith("_interval") or k in _HEADLINE_KEYS]
    unit = "recording day" if result["by"] == "group" else "cell"
    one_each = all(len(fold["test_groups"]) == 1 for fold in result["folds"])
    return {
        "held_out": f"one {unit} per fold" if one_each else f"whole {unit}s, {result['n_folds']} folds",
        "folds": result["n_folds"],
        "recipe": result["recipe"]["name"],
        **{k: pooled[k] for k in keys},
    }


_HEADLINE_KEYS = (
    "n_cells",
    "accuracy",
    "balanced_accuracy",
    "SER_recall",
    "NSER_recall",
    "cell_ece",
    "by_cell_type",
    "warnings",
)
