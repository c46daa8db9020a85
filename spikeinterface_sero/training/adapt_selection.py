"""Which adaptation to make, chosen by nested cross-validation, and what the choice is worth (``sero adapt``).

The outer folds hold out cells (or days) that neither the choice nor the fit sees; inside each, an inner
cross-validation on the remaining cells chooses among keeping the starting model and the adaptation modes,
and the chosen mode, fitted on those cells, classifies the held-out ones. docs/adapt.md explains it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..decision import DecisionParams, calibrate, cell_decisions, consensus_of, fit_temperature
from ..errors import DataError, TrainingError
from .data import SpikeDataset
from .evaluate import calibration as calibration_figures
from .evaluate import cell_intervals
from .splits import Split, cell_kfold
from .synthetic import SyntheticGenerator

__all__ = ["KEEP", "Context", "cross_validate_modes", "final_mode", "paired_test", "figures"]

#: the candidate that keeps the starting model as it is (its own calibration)
KEEP = "nothing"
#: members that a mode refits (their probabilities get a temperature of their own)
REFITTED = ("head", "all")
_DECISION = DecisionParams(n_boot=50)  # cell probabilities only: the interval is not used here


def cell_probability(outputs, cells, calibration=None) -> tuple[np.ndarray, np.ndarray]:
    """The cell probabilities (``decision.cell_decisions``) of member outputs, and the cell ids in their order."""
    table = cell_decisions(consensus_of(outputs), cells, _DECISION, calibration)
    return table["sero_probability"].to_numpy(dtype=np.float64), table.index.astype(str).to_numpy()


def cell_log_loss(is_ser: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """Each cell's log-loss of ``probability`` (P(SER)) against the truth ``is_ser``."""
    p = np.clip(np.asarray(probability, dtype=np.float64), 1e-6, 1 - 1e-6)
    return -np.where(is_ser, np.log(p), np.log(1 - p))


def figures(is_ser: np.ndarray, probability: np.ndarray) -> dict:
    """Cell figures of probabilities ``probability`` against the truth ``is_ser``, and per-cell log-loss."""
    called_ser = probability > 0.5
    ser_recall = float(called_ser[is_ser].mean()) if is_ser.any() else float("nan")
    nser_recall = float((~called_ser[~is_ser]).mean()) if (~is_ser).any() else float("nan")
    intervals = cell_intervals(np.where(is_ser, 0, 1), np.where(called_ser, 0, 1))
    losses = cell_log_loss(is_ser, probability)
    return {
        "n_cells": int(len(probability)),
        "balanced_accuracy": 0.5 * (ser_recall + nser_recall),
        "balanced_accuracy_interval": intervals.get("balanced_accuracy_interval"),
        "ser_recall": ser_recall,
        "nser_recall": nser_recall,
        "log_loss": float(np.mean(losses)),
        "ece": calibration_figures(is_ser, np.clip(probability, 1e-6, 1 - 1e-6))["ece"],
        "cell_log_loss": losses,
    }


def paired_test(before: dict, after: dict, alpha: float, *, seed: int = 0) -> dict:
    """Whether ``after`` beats ``before`` on the same cells (both :func:`figures`): a lower mean per-cell
    log-loss by a one-sided paired sign-flip permutation test at ``alpha``, a balanced accuracy at least as
    high, and a balanced-accuracy interval above 0.5. ``passed`` when every check holds.

    The sign-flip test (``scipy.stats.permutation_test``, exact up to 13 cells) tests the mean difference, the
    quantity the adaptation lowers. A rank test (Wilcoxon) weighs a cell by its rank only: a starting model
    that calls every cell serotonergic has a loss near 0 on the SER cells and a huge one on the others, and
    any model that tells the classes apart loses a little on the first half, which a rank test counts
    almost as much as the large gains on the second.
    """
    from scipy.stats import permutation_test

    difference = before["cell_log_loss"] - after["cell_log_loss"]
    p_value = 1.0
    if np.any(difference != 0):
        p_value = float(
            permutation_test(
                (difference,),
                np.mean,
                permutation_type="samples",
                alternative="greater",
                n_resamples=9999,
                random_state=seed,
            ).pvalue
        )
    low = (after["balanced_accuracy_interval"] or [None])[0]
    checks = {
        "lower mean out-of-fold log-loss than the starting model (one-sided paired sign-flip test)": p_value < alpha,
        "balanced accuracy at least the starting model's": after["balanced_accuracy"] >= before["balanced_accuracy"],
        "balanced accuracy interval above 0.5 (it tells the classes apart)": low is not None and low > 0.5,
    }
    return {
        "test": "one-sided paired sign-flip permutation test of the mean per-cell log-loss difference",
        "mean_log_loss_difference": round(float(np.mean(difference)), 4),
        "p_value": p_value,
        "alpha": alpha,
        "checks": checks,
        "passed": all(checks.values()),
    }


# ------------------------------------------------------------------------------------------ the cells
@dataclass
class Context:
    """What every fold reads: the labelled spikes, the starting model's cell probabilities, the tuner."""

    tuner: object  # finetune._Tuner: features, fit_head, head_outputs, outputs, fit_all
    dataset: SpikeDataset
    modes: tuple
    parent_calibration: dict | None
    augmentation: object
    n_masks: int
    extra_masks: np.ndarray | None
    seed: int

    def __post_init__(self):
        self.ids = self.dataset.cells.index.astype(str).to_numpy()
        self.is_ser = self.dataset.cells["y"].to_numpy() == 0
        self.position = {c: i for i, c in enumerate(self.ids)}
        self.spike_cell = self.positions(self.dataset.cell)
        raw, order = cell_probability(self.tuner.outputs(self.tuner.start, self.dataset.X), self.dataset.cell)
        self.start_raw = raw[np.argsort(self.positions(order))]
        self.start = calibrate(self.start_raw, self.parent_calibration)
        self.real_features = self.tuner.features(self.dataset.X) if "head" in self.modes else None

    def positions(self, cell_ids) -> np.ndarray:
        """The positions (in :attr:`ids` order) of the cells ``cell_ids``."""
        return np.array([self.position[c] for c in np.asarray(cell_ids).astype(str)], dtype=np.int64)

    def cells_of(self, spikes: np.ndarray) -> np.ndarray:
        """The cell positions (in :attr:`ids` order) of the spikes ``spikes``, sorted."""
        return np.unique(self.spike_cell[spikes])

    def spikes_of(self, cells: np.ndarray) -> np.ndarray:
        return np.flatnonzero(np.isin(self.spike_cell, cells))

    def generator(self, cells: np.ndarray, seed: int) -> SyntheticGenerator:
        """The synthetic spikes of ``cells``: their smoothed spikes plus noise masks of their recordings and of
        the unlabelled ones."""
        return SyntheticGenerator.from_dataset(
            self.dataset.subset(self.spikes_of(cells)),
            n_masks=self.n_masks,
            seed=seed,
            augmentation=self.augmentation,
            extra_masks=self.extra_masks,
        )

    def synthetic(self, cells: np.ndarray, seed: int) -> dict | None:
        """One synthetic spike per real spike of ``cells``, with the cell each was made from and, for the head
        mode, its features; None when no mode needs them."""
        if not set(self.modes) & set(REFITTED):
            return None
        generator = self.generator(cells, seed)
        spikes = self.spikes_of(cells)
        X, y, spike, _ = generator.sample(len(spikes), np.random.default_rng(seed))
        out = {"y": y, "cell": self.spike_cell[spikes][spike], "cells": cells, "generator": generator}
        out["features"] = self.tuner.features(X) if "head" in self.modes else None
        return out


# ------------------------------------------------------------------------------------------ the fits
def _fit_predict(context: Context, mode: str, train: np.ndarray, test: np.ndarray, synthetic) -> np.ndarray:
    """``mode`` fitted on the cells ``train``, the probabilities of the cells ``test`` (in that order); the
    refitted modes' probabilities are their members' own (no temperature)."""
    if mode == KEEP:
        return context.start[test]
    if mode == "temperature":
        fitted = fit_temperature(context.start_raw[train], context.is_ser[train])
        return calibrate(context.start_raw[test], fitted)
    train_spikes, test_spikes = context.spikes_of(train), context.spikes_of(test)
    tuner = context.tuner
    if mode == "head":
        keep = np.isin(synthetic["cell"], train)
        features = [
            np.concatenate([real[train_spikes], made[keep]])
            for real, made in zip(context.real_features, synthetic["features"], strict=True)
        ]
        arrays = tuner.fit_head(features, np.concatenate([context.dataset.y[train_spikes], synthetic["y"][keep]]))
        outputs = tuner.head_outputs(arrays, [real[test_spikes] for real in context.real_features])
    else:
        same = synthetic is not None and np.array_equal(synthetic["cells"], train)
        generator = synthetic["generator"] if same else context.generator(train, context.seed + len(train))
        arrays = tuner.fit_all(context.dataset.subset(train_spikes), generator)
        outputs = tuner.outputs(arrays, context.dataset.X[test_spikes])
    probability, order = cell_probability(outputs, context.dataset.cell[test_spikes])
    return probability[np.argsort(context.positions(order))]


def _with_temperature(probability, fitted_on, is_ser) -> np.ndarray:
    """``probability`` with a temperature fitted on the out-of-fold probabilities ``fitted_on`` (as the final
    model gets one); unchanged when they cannot fit one."""
    try:
        return calibrate(probability, fit_temperature(fitted_on, is_ser))
    except DataError:
        return np.asarray(probability, dtype=np.float64)


def _inner_folds(context: Context, cells: np.ndarray, n_folds: int, seed: int) -> tuple[list[tuple], str]:
    """(train cells, test cells) of a cross-validation of ``cells``: by day when they span at least 3 days and
    every fold trains on both classes, else by cell, stratified; and what its folds hold out."""
    dataset = context.dataset.subset(context.spikes_of(cells))
    n_groups = len(set(dataset.cells["group"])) if dataset.has_groups else 0
    smallest = int(np.bincount(dataset.cells["y"].to_numpy(dtype=np.int64), minlength=2).min())
    for by, n_units in (("group", n_groups if n_groups >= 3 else 0), ("cell", smallest)):
        if n_units < 2:
            continue
        folds = cell_kfold(dataset, n_splits=min(n_folds, n_units), by=by, seed=seed)
        pairs = [
            (np.unique(context.positions(dataset.cell[f.train])), np.unique(context.positions(dataset.cell[f.test])))
            for f in folds
        ]
        if all(len(np.unique(context.is_ser[train])) == 2 for train, _ in pairs):
            return pairs, f"{len(pairs)} folds by {'day' if by == 'group' else 'cell'}"
    raise TrainingError(
        f"the inner cross-validation needs at least 2 cells of each class in every outer fold's training cells, "
        f"got {smallest}: label more cells of each class, or choose a mode (mode='head')"
    )


def _choose(context: Context, candidates, cells, n_inner: int, seed: int, synthetic) -> tuple:
    """The candidate with the lowest out-of-fold log-loss of an inner cross-validation on ``cells``, every
    candidate's mean log-loss there, the inner out-of-fold probabilities and what the inner folds held out."""
    inner = {mode: np.full(len(context.ids), np.nan) for mode in candidates}
    folds, held_out = _inner_folds(context, cells, n_inner, seed)
    for train, test in folds:
        for mode in candidates:
            inner[mode][test] = _fit_predict(context, mode, train, test, synthetic)
    losses = {mode: float(np.mean(cell_log_loss(context.is_ser[cells], inner[mode][cells]))) for mode in candidates}
    return min(candidates, key=losses.get), losses, inner, held_out


def cross_validate_modes(context: Context, folds: list[Split], *, nested: bool, n_inner: int = 3, progress=False):
    """Out-of-fold cell probabilities of every candidate fitted on each outer fold's training cells and, when
    ``nested``, of the whole procedure (the inner choice, then its fit and temperature).

    Returns
    -------
    per_mode : dict
        Mode -> (n_cells,) out-of-fold probabilities (the refitted modes' own, no temperature).
    procedure : numpy.ndarray or None
        (n_cells,) out-of-fold probabilities of the procedure; None unless ``nested``.
    choices : list of dict
        Per outer fold: ``fold``, ``held_out_cells``, ``inner_cross_validation`` (its folds), ``chosen`` and
        the candidates' ``inner_log_loss``.
    """
    candidates = ((KEEP,) if nested else ()) + tuple(context.modes)
    per_mode = {mode: np.full(len(context.ids), np.nan) for mode in candidates}
    procedure = np.full(len(context.ids), np.nan) if nested else None
    choices = []
    for number, split in enumerate(folds):
        train, test = context.cells_of(split.train), context.cells_of(split.test)
        synthetic = context.synthetic(train, context.seed + number)
        for mode in candidates:
            per_mode[mode][test] = _fit_predict(context, mode, train, test, synthetic)
        if nested:
            chosen, losses, inner, held_out = _choose(
                context, candidates, train, n_inner, context.seed + 100 + number, synthetic
            )
            procedure[test] = per_mode[chosen][test]
            if chosen in REFITTED:
                procedure[test] = _with_temperature(procedure[test], inner[chosen][train], context.is_ser[train])
            losses = {mode: round(value, 4) for mode, value in losses.items()}
            choices.append(
                {
                    "fold": number,
                    "held_out_cells": int(len(test)),
                    "inner_cross_validation": held_out,
                    "chosen": chosen,
                    "inner_log_loss": losses,
                }
            )
        if progress:
            said = f": the inner cross-validation chose {choices[-1]['chosen']}" if nested else ""
            print(f"fold {number + 1} of {len(folds)} done{said}", flush=True)
    return per_mode, procedure, choices


def final_mode(choices: list[dict], per_mode_log_loss: dict) -> str:
    """The mode the inner cross-validations chose most often; a tie goes to the one with the lowest
    out-of-fold log-loss over every cell (``per_mode_log_loss``), then to the smaller change."""
    counts = Counter(choice["chosen"] for choice in choices)
    most = max(counts.values())
    tied = [mode for mode in per_mode_log_loss if counts.get(mode, 0) == most]
    return min(tied, key=lambda mode: per_mode_log_loss[mode])
