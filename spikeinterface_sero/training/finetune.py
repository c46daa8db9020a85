"""Adapting a model to a lab's rig from a few labelled cells (``sero adapt``; docs/adapt.md).

Every member starts from the existing model's weights; the candidates (a new temperature only, the members'
Dense layers on their fixed convolution features, every layer) are compared by cross-validation by cell or
day on the lab's cells, and the adapted folder is written only when its out-of-fold figures beat the
starting model's on the same cells.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from ..constants import LABELS
from ..decision import (
    DecisionParams,
    calibrate,
    cell_decisions,
    consensus_of,
    describe_training_snippets,
    fit_temperature,
)
from ..errors import DataError, TrainingError
from ..model import Ensemble, load_model, to_member_input
from ..model.folder import save_model
from ..model.info import INFO_FILE
from ..model.weights import MemberWeights
from .data import SpikeDataset, dataset_from_table
from .evaluate import calibration as calibration_figures
from .evaluate import cell_intervals
from .splits import cell_kfold
from .synthetic import SyntheticGenerator
from .train import branch_name, compile_fused, get_recipe

__all__ = ["ADAPT_MODES", "DEFAULT_ADAPT_MODES", "adapt_model"]

#: what an adaptation may change, from least to most
ADAPT_MODES = ("temperature", "head", "all")
#: the candidates compared by default ("all" costs about as much again and did worse at 2 epochs: docs/adapt.md)
DEFAULT_ADAPT_MODES = ("temperature", "head")
_FIELDS = ("gamma", "beta", "conv1_kernel", "conv1_bias", "conv2_kernel", "conv2_bias", "dense_kernel", "dense_bias")
_DECISION = DecisionParams(n_boot=50)  # cell probabilities only: the interval is not used here


# ------------------------------------------------------------------------------------------ the members
def _arrays(weights: MemberWeights) -> list[np.ndarray]:
    return [np.array(getattr(weights, name), dtype=np.float32) for name in _FIELDS]


def _ensemble(kernels, arrays, epsilon, info=None) -> Ensemble:
    members = [MemberWeights(k, epsilon, *a) for k, a in zip(kernels, arrays, strict=True)]
    return Ensemble.from_weights(members, info=info or {})


class _Tuner:
    """The starting members and one fused Keras model (built on first use) to fine-tune copies of them."""

    def __init__(self, parent: Ensemble, *, epochs: int, learning_rate: float, penalty: float, seed: int):
        weights = parent._member_weights()
        self.kernels = [int(w.kernel) for w in weights]
        self.epsilon = float(weights[0].epsilon)
        self.start = [_arrays(w) for w in weights]
        self.epochs, self.learning_rate, self.penalty, self.seed = (
            int(epochs),
            float(learning_rate),
            float(penalty),
            seed,
        )
        self._fused = None

    def _model(self):
        if self._fused is None:
            from .fused import build_fused_members

            self._fused, self._branches = build_fused_members(self.kernels, precision="float32", seed=self.seed)
            compile_fused(self._fused, self.kernels, learning_rate=self.learning_rate)
        return self._fused

    def _load(self, arrays) -> None:
        self._model()
        for k, member in zip(self.kernels, arrays, strict=True):
            self._branches[k].set_weights(member)

    def outputs(self, arrays, X) -> np.ndarray:
        """(n, members, 2) outputs of the members ``arrays`` (numpy engine)."""
        return _ensemble(self.kernels, arrays, self.epsilon).predict_members(X)

    def features(self, X) -> list[np.ndarray]:
        """Per member, the flattened features its Dense layer reads (starting weights), (n, n_pool * 64)."""
        import tensorflow as tf

        self._load(self.start)
        layer = self._fused.get_layer("members")
        parts = [[] for _ in self.kernels]
        for begin in range(0, len(X), 512):
            current = tf.constant(X[begin : begin + 512], tf.float32)
            mean = tf.reduce_mean(current, axis=1, keepdims=True)
            variance = tf.reduce_mean(tf.square(current - mean), axis=1, keepdims=True)
            normalised = (current - mean) * tf.math.rsqrt(variance + self.epsilon)
            for position, variables in enumerate(layer.member_variables):
                gamma, beta = variables[0], variables[1]
                from_current = layer._convolutions(normalised * gamma + beta, variables)
                from_time = layer._convolutions(layer.normalised_time * gamma + beta, variables)
                parts[position].append(tf.reshape(tf.maximum(from_current, from_time), (len(current), -1)).numpy())
        return [np.concatenate(p) for p in parts]

    def fit_head(self, features: list[np.ndarray], y) -> list[list[np.ndarray]]:
        """Each member's Dense layer refitted on its fixed ``features`` (:meth:`features`): cross-entropy plus
        an L2 pull towards the starting weights (``penalty``), L-BFGS on one BLAS thread (the narrow products
        only lose to thread overhead on a busy machine)."""
        from scipy.optimize import minimize
        from threadpoolctl import threadpool_limits

        target = np.eye(2, dtype=np.float32)[np.asarray(y)]
        fitted = []
        with threadpool_limits(1):
            for member, member_features in zip(self.start, features, strict=True):
                theta = minimize(
                    _head_loss,
                    np.concatenate([member[6].ravel(), member[7]]).astype(np.float64),
                    args=(member_features, target, np.concatenate([member[6].ravel(), member[7]]), self.penalty),
                    jac=True,
                    method="L-BFGS-B",
                    options={"maxiter": 60},
                ).x
                new = [a.copy() for a in member]
                new[6] = theta[:-2].reshape(member[6].shape).astype(np.float32)
                new[7] = theta[-2:].astype(np.float32)
                fitted.append(new)
        return fitted

    def fit_all(self, dataset: SpikeDataset, generator) -> list[list[np.ndarray]]:
        """Every layer of every member fine-tuned from the starting weights (Adam, a few epochs)."""
        from .synthetic import make_training_stream

        fused = self._model()
        self._load(self.start)
        optimizer = fused.optimizer
        for variable in getattr(optimizer, "_momentums", []) + getattr(optimizer, "_velocities", []):
            variable.assign(np.zeros(variable.shape, dtype=np.float32))  # a fresh Adam for every fit
        if getattr(optimizer, "iterations", None) is not None:
            optimizer.iterations.assign(0)
        stream = make_training_stream(
            dataset.X,
            dataset.y,
            generator=generator,
            n_synthetic=len(dataset),
            batch_size=64,
            seed=self.seed,
            to_input=to_member_input,
            output_names=[branch_name(k) for k in self.kernels],
        )
        fused.fit(stream, epochs=self.epochs, verbose=0)
        return [self._branches[k].get_weights() for k in self.kernels]


def _head_loss(theta, features, target, start, penalty):
    """Mean cross-entropy of a Dense sigmoid layer on ``features`` plus ``penalty`` / 2 |theta - start|^2, and
    its gradient."""
    kernel, bias = theta[:-2].reshape(-1, 2).astype(np.float32), theta[-2:].astype(np.float32)
    z = features @ kernel + bias
    value = float(np.mean(np.sum(np.logaddexp(0, z) - target * z, axis=1)))
    gradient_z = (1.0 / (1.0 + np.exp(-z)) - target) / len(z)
    gradient = np.concatenate([(features.T @ gradient_z).ravel(), gradient_z.sum(axis=0)]).astype(np.float64)
    return value + 0.5 * penalty * float(np.sum((theta - start) ** 2)), gradient + penalty * (theta - start)


# ------------------------------------------------------------------------------------------ figures
def _cell_probability(outputs, cells, calibration=None):
    table = cell_decisions(consensus_of(outputs), cells, _DECISION, calibration)
    return table["sero_probability"].to_numpy(dtype=np.float64), table.index.astype(str).to_numpy()


def _figures(is_ser: np.ndarray, probability: np.ndarray) -> dict:
    """Cell figures of probabilities ``probability`` against the truth ``is_ser``, and per-cell log-loss."""
    p = np.clip(probability, 1e-6, 1 - 1e-6)
    called_ser = probability > 0.5
    ser_recall = float(called_ser[is_ser].mean()) if is_ser.any() else float("nan")
    nser_recall = float((~called_ser[~is_ser]).mean()) if (~is_ser).any() else float("nan")
    intervals = cell_intervals(np.where(is_ser, 0, 1), np.where(called_ser, 0, 1))
    return {
        "n_cells": int(len(p)),
        "balanced_accuracy": 0.5 * (ser_recall + nser_recall),
        "balanced_accuracy_interval": intervals.get("balanced_accuracy_interval"),
        "ser_recall": ser_recall,
        "nser_recall": nser_recall,
        "log_loss": float(np.mean(-np.where(is_ser, np.log(p), np.log(1 - p)))),
        "ece": calibration_figures(is_ser, p)["ece"],
        "cell_log_loss": -np.where(is_ser, np.log(p), np.log(1 - p)),
    }


# ------------------------------------------------------------------------------------------ the procedure
def _candidates_out_of_fold(tuner, dataset, folds, modes, recipe, parent_calibration, n_masks, progress):
    """Out-of-fold cell probabilities of every mode (and of the starting model), cell ids in one order."""
    cells = dataset.cells.index.astype(str).to_numpy()
    position = {c: i for i, c in enumerate(cells)}
    start_outputs = tuner.outputs(tuner.start, dataset.X)
    start_uncalibrated, order = _cell_probability(start_outputs, dataset.cell)
    start_uncalibrated = start_uncalibrated[np.argsort([position[c] for c in order])]
    out = {"start": calibrate(start_uncalibrated, parent_calibration)}
    out.update({mode: np.full(len(cells), np.nan) for mode in modes})
    is_ser = dataset.cells["y"].to_numpy() == 0
    real_features = tuner.features(dataset.X) if "head" in modes else None
    for number, split in enumerate(folds):
        train, _, test = split.apply(dataset)
        held = np.array([position[c] for c in test.cells.index.astype(str)])
        trained = np.array([position[c] for c in train.cells.index.astype(str)])
        if "temperature" in modes:
            temperature = fit_temperature(start_uncalibrated[trained], is_ser[trained])
            out["temperature"][held] = calibrate(start_uncalibrated[held], temperature)
        generator = SyntheticGenerator.from_dataset(
            train, n_masks=n_masks, seed=tuner.seed + number, augmentation=recipe.augmentation
        )
        synthetic_X, synthetic_y = generator.generate(len(train), seed=tuner.seed + number)
        for mode in ("head", "all"):
            if mode not in modes:
                continue
            if mode == "head":
                synthetic_features = tuner.features(synthetic_X)
                features = [np.concatenate([r[split.train], f]) for r, f in zip(real_features, synthetic_features)]
                arrays = tuner.fit_head(features, np.concatenate([train.y, synthetic_y]))
            else:
                arrays = tuner.fit_all(train, generator)
            probability, order = _cell_probability(tuner.outputs(arrays, test.X), test.cell)
            out[mode][[position[c] for c in order]] = probability
        if progress:
            print(f"fold {number + 1} of {len(folds)} done", flush=True)
    return out, is_ser, cells


def _decide(figures: dict, modes, alpha: float) -> tuple[str | None, dict]:
    """The mode with the lowest out-of-fold log-loss, and whether it beats the starting model (paired)."""
    from scipy.stats import wilcoxon

    best = min(modes, key=lambda m: figures[m]["log_loss"])
    start, chosen = figures["start"], figures[best]
    difference = start["cell_log_loss"] - chosen["cell_log_loss"]
    p_value = float(wilcoxon(difference, alternative="greater").pvalue) if np.any(difference != 0) else 1.0
    low = (chosen["balanced_accuracy_interval"] or [0.0])[0]
    checks = {
        "lower out-of-fold log-loss than the starting model (paired Wilcoxon, Bonferroni over the modes)": (
            p_value * len(modes) < alpha
        ),
        "balanced accuracy at least the starting model's": chosen["balanced_accuracy"] >= start["balanced_accuracy"],
        "balanced accuracy interval above 0.5 (it tells the classes apart)": low is not None and low > 0.5,
    }
    test = {"mode": best, "p_value": p_value, "alpha": alpha, "n_modes": len(modes), "checks": checks}
    return (best if all(checks.values()) else None), test


def _public(figures: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items() if k != "cell_log_loss"}


def adapt_model(
    model,
    table,
    out=None,
    *,
    modes=DEFAULT_ADAPT_MODES,
    by: str = "auto",
    n_folds: int = 4,
    epochs: int = 2,
    learning_rate: float = 3e-4,
    penalty: float = 1e-3,
    max_spikes_per_cell: int = 60,
    n_masks: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
) -> dict:
    """Adapt a model folder to a lab's labelled cells; write it only when it beats the starting model.

    Parameters
    ----------
    model : str, Path or None
        The starting model folder (published, imported, a lab's own); None: the bundled demo model.
    table : str, Path or SpikeDataset
        The label table of the lab's recordings (``file, label``, optional ``channel, group``; as
        ``sero train``), or a dataset read from it.
    out : str, Path or None, default: None
        Where to write the adapted model folder; None: measure only.
    modes : sequence of str, default: ("temperature", "head")
        Candidates: ``"temperature"`` (a new temperature on the cell probability, members unchanged),
        ``"head"`` (each member's Dense layer refitted on its fixed convolution features), ``"all"``
        (every layer fine-tuned from the starting weights).
    by : {"auto", "cell", "group"}, default: "auto"
        Cross-validation by cell or by group (day); "auto": by group when the table has enough groups.
    n_folds : int, default: 4
        Folds of the cross-validation.
    epochs : int, default: 2
        Epochs of the "all" mode (real spikes plus as many synthetic ones per epoch).
    learning_rate : float, default: 3e-4
        Adam's rate for the "all" mode.
    penalty : float, default: 1e-3
        L2 pull of the "head" mode's Dense weights towards the starting ones.
    max_spikes_per_cell : int, default: 60
        Spikes kept per cell (seeded).
    n_masks : int, default: 200
        Noise masks of the synthetic spikes, cut from the lab's own spike-free stretches.
    alpha : float, default: 0.05
        Level of the paired test against the starting model.
    seed : int, default: 0
        Seed of the folds, the synthetic spikes and the training.
    overwrite : bool, default: False
        Replace an existing model folder at ``out``.
    progress : bool, default: False
        Print a line per fold.

    Returns
    -------
    dict
        ``written`` (bool), ``folder``, ``mode`` (chosen, or None), ``before`` / ``after`` (out-of-fold
        figures of the starting and the chosen model on the same cells), ``candidates`` (every mode's),
        ``test`` (the paired test and the checks), ``cells``, ``days``, ``parent``, ``seconds``, ``message``.
    """
    started = time.perf_counter()
    modes = tuple(modes)
    unknown = sorted(set(modes) - set(ADAPT_MODES))
    if unknown or not modes:
        raise TrainingError(f"modes must be some of {', '.join(ADAPT_MODES)}, got {list(modes)}")
    parent = load_model(model)
    folder = Path(parent.info.get("folder", "")) if parent.info.get("folder") else None
    parent_record = {
        "name": parent.info.get("name"),
        "folder": str(folder) if folder else None,
        "sha256": hashlib.sha256((folder / INFO_FILE).read_bytes()).hexdigest() if folder else None,
        "sha256_of": INFO_FILE + " (it lists every member file's sha256)",
    }
    dataset = dataset_from_table(table, max_per_cell=max_spikes_per_cell, seed=seed)
    if len(np.unique(dataset.cells["y"])) < 2:
        raise TrainingError("the label table needs cells of both classes to adapt a model")
    if by == "auto":
        by = "group" if dataset.has_groups and len(set(dataset.cells["group"])) >= n_folds else "cell"
    folds = cell_kfold(dataset, n_splits=min(n_folds, _smallest_class(dataset)), by=by, seed=seed)
    recipe = get_recipe("default")
    tuner = _Tuner(parent, epochs=epochs, learning_rate=learning_rate, penalty=penalty, seed=seed)
    probabilities, is_ser, cells = _candidates_out_of_fold(
        tuner, dataset, folds, modes, recipe, parent.info.get("calibration"), n_masks, progress
    )
    figures = {name: _figures(is_ser, p) for name, p in probabilities.items()}
    chosen, test = _decide(figures, modes, alpha)
    report = {
        "parent": parent_record,
        "cells": [str(c) for c in cells],
        "days": sorted(set(dataset.cells["group"].astype(str))) if dataset.has_groups else [],
        "cross_validation": f"{len(folds)} folds by {'day' if folds and folds[0].by == 'group' else 'cell'}",
        "before": _public(figures["start"]),
        "candidates": {m: _public(figures[m]) for m in modes},
        "test": test,
        "mode": chosen,
        "after": _public(figures[chosen]) if chosen else None,
        "written": False,
        "folder": None,
    }
    if chosen is None:
        report["message"] = (
            f"not adapted: the best candidate ({test['mode']}) does not beat the starting model on the same "
            "cells out of fold; keep the starting model"
        )
    elif out is not None:
        adapted = _final_model(tuner, dataset, chosen, probabilities[chosen], is_ser, parent, recipe, n_masks)
        report["folder"] = str(_save(adapted, out, report, parent, dataset, overwrite))
        report["written"] = True
        report["message"] = f"adapted ({chosen}) and written to {report['folder']}"
    else:
        report["message"] = f"{chosen} beats the starting model; pass out to write the adapted model"
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def _smallest_class(dataset: SpikeDataset) -> int:
    return int(np.bincount(dataset.cells["y"].to_numpy(dtype=np.int64), minlength=2).min())


def _final_model(tuner, dataset, mode, out_of_fold, is_ser, parent, recipe, n_masks) -> Ensemble:
    """The chosen mode fitted on every labelled cell; its temperature from the out-of-fold probabilities."""
    info = {"description": "", "demo": parent.is_demo, "input": parent.info.get("input") or {}}
    if mode == "temperature":
        uncalibrated, order = _cell_probability(tuner.outputs(tuner.start, dataset.X), dataset.cell)
        truth = dataset.cells["y"].reindex(order).to_numpy() == 0
        info["calibration"] = _calibration(fit_temperature(uncalibrated, truth), "every labelled cell")
        if parent.info.get("training_data"):
            info["training_data"] = parent.info["training_data"]
        return _ensemble(tuner.kernels, tuner.start, tuner.epsilon, info)
    generator = SyntheticGenerator.from_dataset(
        dataset, n_masks=n_masks, seed=tuner.seed, augmentation=recipe.augmentation
    )
    if mode == "head":
        synthetic_X, synthetic_y = generator.generate(len(dataset), seed=tuner.seed)
        features = [np.concatenate(pair) for pair in zip(tuner.features(dataset.X), tuner.features(synthetic_X))]
        arrays = tuner.fit_head(features, np.concatenate([dataset.y, synthetic_y]))
    else:
        arrays = tuner.fit_all(dataset, generator)
    try:
        info["calibration"] = _calibration(fit_temperature(out_of_fold, is_ser), "out-of-fold cells of the adaptation")
    except DataError:
        pass
    info["training_data"] = describe_training_snippets(dataset.X, dataset.cell, seed=tuner.seed)
    return _ensemble(tuner.kernels, arrays, tuner.epsilon, info)


def _calibration(fitted: dict, where: str) -> dict:
    return {
        "method": "temperature",
        "temperature": fitted["temperature"],
        "n_cells": fitted["n_cells"],
        "fitted_on": where,
        "targets": fitted.get("targets", "Platt's smoothed targets"),
    }


def _save(adapted: Ensemble, out, report: dict, parent: Ensemble, dataset: SpikeDataset, overwrite: bool) -> Path:
    labels = dataset.cells["y"].map(lambda v: LABELS[int(v)])
    training = {
        "method": f"adapted from a model folder (sero adapt, mode {report['mode']})",
        "parent_model": report["parent"]["name"],
        "parent_folder": report["parent"]["folder"],
        "parent_sha256": report["parent"]["sha256"],
        "parent_sha256_of": report["parent"]["sha256_of"],
        "mode": report["mode"],
        "cells": {str(c): labels[c] for c in dataset.cells.index},
        "days": report["days"],
        "n_spikes": int(len(dataset)),
        "cross_validation": report["cross_validation"],
        "paired_test": {k: v for k, v in report["test"].items() if k != "checks"},
    }
    metrics = {
        "before (starting model, the same cells)": report["before"],
        "after (adapted, out of fold)": report["after"],
    }
    name = f"{parent.info.get('name') or 'model'} adapted ({report['mode']})"
    description = (
        f"{parent.info.get('name')} adapted to {len(dataset.cells)} labelled cells ({report['mode']}); "
        "the figures are out-of-fold on those cells, before and after."
    )
    return save_model(
        adapted, out, description=description, training=training, metrics=metrics, name=name, overwrite=overwrite
    )
