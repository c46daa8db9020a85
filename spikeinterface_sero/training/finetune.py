"""Adapting a model to a lab's rig from a few labelled cells (``sero adapt``; docs/adapt.md).

Every member starts from the existing model's weights; a nested cross-validation by cell or day
(``training/adapt_selection.py``) chooses among keeping it, a new temperature, the members' Dense layers on
their fixed convolution features and every layer, and the adapted folder is written only when the whole
procedure's out-of-fold figures beat the starting model's on the same cells.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from ..arguments import check_choice, check_flag, check_integer, check_path
from ..constants import LABELS
from ..decision import describe_training_snippets, fit_temperature
from ..errors import DataError, ParameterError, TrainingError
from ..model import Ensemble, load_model, to_member_input
from ..model.folder import save_model
from ..model.info import INFO_FILE
from ..model.weights import MemberWeights
from .adapt_selection import KEEP, Context, cross_validate_modes, figures, final_mode, paired_test
from .data import SpikeDataset
from .labelled_cells import dataset_from_labels
from .noise_files import DEFAULT_MASKS_PER_FILE, noise_masks_from_files, unlabelled_files
from .splits import cell_kfold
from .train import branch_name, compile_fused, get_recipe

__all__ = ["ADAPT_MODES", "DEFAULT_ADAPT_MODES", "adapt_model"]

#: what an adaptation may change, from least to most
ADAPT_MODES = ("temperature", "head", "all")
#: the candidates compared by default: every mode (with "all", 126 s for 20 cells on 2 idle cores: docs/adapt.md)
DEFAULT_ADAPT_MODES = ADAPT_MODES
_FIELDS = ("gamma", "beta", "conv1_kernel", "conv1_bias", "conv2_kernel", "conv2_bias", "dense_kernel", "dense_bias")


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

    def head_outputs(self, arrays, features) -> np.ndarray:
        """(n, members, 2) outputs of members that differ from the starting ones in their Dense layer only, from
        their fixed ``features`` (:meth:`features`): the sigmoid of the Dense layer, as the member computes it."""
        return np.stack(
            [1.0 / (1.0 + np.exp(-(f @ member[6] + member[7]))) for f, member in zip(features, arrays, strict=True)],
            axis=1,
        )

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


def _public(figures: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items() if k != "cell_log_loss"}


def adapt_model(
    model,
    labels,
    out=None,
    *,
    mode: str = "auto",
    modes=DEFAULT_ADAPT_MODES,
    unlabelled=None,
    masks_per_file: int = DEFAULT_MASKS_PER_FILE,
    by: str = "auto",
    n_folds: int = 4,
    inner_folds: int = 3,
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
    labels : str, Path, pandas.DataFrame or SpikeDataset
        The lab's labelled cells, in every form ``sero validate`` reads
        (:func:`~spikeinterface_sero.training.labelled_cells.read_labelled_cells`): a table ``file, label``
        (optional ``channel``, ``group`` or ``day``, ``type``) whose files are .abf files or folders of
        per-spike CSV files, or a folder of per-spike CSV files laid out by class (``SER/``, ``NSER/``,
        ``SER_atypical/`` ...); or a dataset already read. The cells of CSV folders give their spikes as they
        are; a cell's day (the table's, else the date in its name) makes the folds by day.
    out : str, Path or None, default: None
        Where to write the adapted model folder; None: measure only.
    mode : {"auto", "temperature", "head", "all"}, default: "auto"
        ``"auto"``: a nested cross-validation chooses among keeping the starting model and ``modes`` (an
        inner cross-validation inside each outer fold); the outer folds assess the whole procedure, choice
        included. A mode named: that mode, assessed by the cross-validation.
    modes : sequence of str, default: ("temperature", "head", "all")
        The candidates of ``mode="auto"``: ``"temperature"`` (a new temperature on the cell probability,
        members unchanged), ``"head"`` (each member's Dense layer refitted on its fixed convolution
        features), ``"all"`` (every layer fine-tuned from the starting weights; the slowest, docs/adapt.md).
    unlabelled : str, Path, sequence of them, or None, default: None
        Unlabelled .abf files or folders of them: their spike-free stretches join the noise masks of the
        synthetic spikes.
    masks_per_file : int, default: 64
        The cap on the noise masks cut from one unlabelled file.
    by : {"auto", "cell", "group"}, default: "auto"
        Outer folds by cell or by group (day); "auto": by group when the cells have at least 3 days.
    n_folds : int, default: 4
        Outer folds (fewer when a class has fewer cells).
    inner_folds : int, default: 3
        Folds of the inner cross-validation of ``mode="auto"``.
    epochs : int, default: 2
        Epochs of the "all" mode (real spikes plus as many synthetic ones per epoch).
    learning_rate : float, default: 3e-4
        Adam's rate for the "all" mode.
    penalty : float, default: 1e-3
        L2 pull of the "head" mode's Dense weights towards the starting ones.
    max_spikes_per_cell : int, default: 60
        Spikes kept per cell (seeded).
    n_masks : int, default: 200
        Noise masks of the labelled cells' recordings per fit (the unlabelled files' masks come on top).
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
        ``written`` (bool), ``folder``, ``mode`` (the adaptation written or worth writing, or None),
        ``final_mode`` (what the procedure refits on every cell; ``"nothing"``: keep the starting model),
        ``choices`` (per outer fold, the inner cross-validation's choice and its log-losses), ``before`` /
        ``after`` (out-of-fold figures of the starting model and of the procedure on the same cells),
        ``candidates`` (every mode's out-of-fold figures), ``test`` (the paired test and its checks),
        ``noise_masks``, ``cells``, ``days``, ``parent``, ``seconds``, ``message``.
    """
    started = time.perf_counter()
    options = _checked(locals())
    files = unlabelled_files(unlabelled, "unlabelled")
    dataset = dataset_from_labels(labels, max_per_cell=max_spikes_per_cell, seed=seed)
    parent = load_model(model)
    extra_masks, per_file = noise_masks_from_files(files, masks_per_file=options["masks_per_file"], seed=seed)
    folds, outer_by = _outer_folds(dataset, options, need=3 if options["mode"] == "auto" else 2)
    tuner = _Tuner(parent, epochs=epochs, learning_rate=learning_rate, penalty=penalty, seed=seed)
    context = Context(
        tuner=tuner,
        dataset=dataset,
        modes=options["modes"] if options["mode"] == "auto" else (options["mode"],),
        parent_calibration=parent.info.get("calibration"),
        augmentation=get_recipe("default").augmentation,
        n_masks=n_masks,
        extra_masks=extra_masks if len(extra_masks) else None,
        seed=seed,
    )
    nested = options["mode"] == "auto"
    per_mode, procedure, choices = cross_validate_modes(
        context, folds, nested=nested, n_inner=options["inner_folds"], progress=progress
    )
    before = figures(context.is_ser, context.start)
    candidates = {m: figures(context.is_ser, p) for m, p in per_mode.items() if m != KEEP}
    losses = {KEEP: before["log_loss"], **{m: f["log_loss"] for m, f in candidates.items()}}
    chosen = final_mode(choices, losses) if nested else options["mode"]
    after = figures(context.is_ser, procedure) if nested else candidates[chosen]
    test = paired_test(before, after, alpha)
    report = {
        "parent": _parent_record(parent),
        "cells": [str(c) for c in context.ids],
        "days": sorted(set(dataset.cells["group"].astype(str))) if dataset.has_groups else [],
        "cross_validation": f"{len(folds)} folds by {outer_by}",
        "selection": _selection(nested, options, choices, chosen),
        "choices": choices,
        "final_mode": chosen,
        "before": _public(before),
        "after": _public(after),
        "candidates": {m: _public(f) for m, f in candidates.items()},
        "test": test,
        "noise_masks": _noise_record(dataset, n_masks, per_file, options["masks_per_file"]),
        "mode": None,
        "written": False,
        "folder": None,
    }
    if chosen == KEEP or not test["passed"]:
        report["message"] = _refusal(chosen, test, choices)
    elif out is not None:
        report["mode"] = chosen
        adapted = _final_model(context, chosen, per_mode.get(chosen), parent)
        report["folder"] = str(_save(adapted, out, report, parent, dataset, overwrite))
        report["written"] = True
        report["message"] = f"adapted ({chosen}) and written to {report['folder']}"
    else:
        report["mode"] = chosen
        report["message"] = f"{chosen} beats the starting model; pass out to write the adapted model"
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def _checked(arguments: dict) -> dict:
    """The options of :func:`adapt_model`, checked before any work."""
    mode = check_choice(arguments["mode"], "mode", ("auto", *ADAPT_MODES))
    modes = (arguments["modes"],) if isinstance(arguments["modes"], str) else tuple(arguments["modes"])
    for name in modes:
        check_choice(name, "modes", ADAPT_MODES)
    if not modes:
        raise ParameterError(f"modes must name at least one of {', '.join(ADAPT_MODES)}.")
    out = arguments["out"]
    if out is not None and not check_flag(arguments["overwrite"], "overwrite"):
        out = check_path(out, "out")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ParameterError(f"out: {out} exists and is not an empty folder; pass overwrite=True or another out.")
    return {
        "mode": mode,
        "modes": tuple(m for m in ADAPT_MODES if m in modes),
        "by": check_choice(arguments["by"], "by", ("auto", "cell", "group")),
        "n_folds": check_integer(arguments["n_folds"], "n_folds", minimum=2),
        "inner_folds": check_integer(arguments["inner_folds"], "inner_folds", minimum=2),
        "masks_per_file": check_integer(arguments["masks_per_file"], "masks_per_file", minimum=1),
        "seed": check_integer(arguments["seed"], "seed", minimum=0),
    }


def _outer_folds(dataset: SpikeDataset, options: dict, need: int):
    """The outer folds: by day when asked or ("auto") when the table has at least 3 days and every fold then
    trains on both classes, else by cell, stratified; and the word for what they hold out."""
    counts = np.bincount(dataset.cells["y"].to_numpy(dtype=np.int64), minlength=2)
    if counts.min() < need:
        raise TrainingError(
            f"adapting needs at least {need} labelled cells of each class"
            + (" (an inner cross-validation runs inside each outer fold)" if need == 3 else "")
            + f"; the labelled cells hold {counts[0]} serotonergic and {counts[1]} non-serotonergic"
        )
    n_groups = len(set(dataset.cells["group"])) if dataset.has_groups else 0
    by = options["by"]
    if by == "group" and n_groups < 2:
        raise TrainingError(
            "by='group' needs labelled cells of at least 2 days (a group or day column, or dates in the cells' names)"
        )
    if by in ("auto", "group") and n_groups >= (3 if by == "auto" else 2):
        folds = cell_kfold(dataset, n_splits=min(options["n_folds"], n_groups), by="group", seed=options["seed"])
        if all(len(np.unique(dataset.y[f.train])) == 2 for f in folds):
            return folds, "day"
        if by == "group":
            raise TrainingError("by day, a fold would train on one class only: use by='cell'")
    return cell_kfold(
        dataset, n_splits=min(options["n_folds"], int(counts.min())), by="cell", seed=options["seed"]
    ), "cell"


def _parent_record(parent: Ensemble) -> dict:
    folder = Path(parent.info.get("folder", "")) if parent.info.get("folder") else None
    return {
        "name": parent.info.get("name"),
        "folder": str(folder) if folder else None,
        "sha256": hashlib.sha256((folder / INFO_FILE).read_bytes()).hexdigest() if folder else None,
        "sha256_of": INFO_FILE + " (it lists every member file's sha256)",
    }


def _selection(nested: bool, options: dict, choices: list, chosen: str) -> dict:
    if not nested:
        return {"method": f"the mode asked for ({options['mode']}), assessed by the outer cross-validation"}
    counts = {mode: sum(c["chosen"] == mode for c in choices) for mode in (KEEP, *options["modes"])}
    return {
        "method": "nested cross-validation: in each outer fold an inner cross-validation (by day with at least 3 "
        "days, else by cell, stratified) chooses the candidate with the lowest out-of-fold log-loss; the outer "
        "folds assess the whole procedure, choice included",
        "candidates": [KEEP, *options["modes"]],
        "inner_folds": options["inner_folds"],
        "chosen_per_fold": [c["chosen"] for c in choices],
        "times_chosen": counts,
        "final_mode": chosen,
        "final_mode_rule": "the mode chosen most often; a tie goes to the lowest out-of-fold log-loss over every cell",
    }


def _noise_record(dataset: SpikeDataset, n_masks: int, per_file: dict, masks_per_file: int) -> dict:
    return {
        "labelled_pool": 0 if dataset.noise is None else int(len(dataset.noise)),
        "labelled_per_fit": int(n_masks),
        "unlabelled_files": len(per_file),
        "unlabelled_masks": int(sum(per_file.values())),
        "masks_per_file": int(masks_per_file),
        "per_file": {Path(f).name: n for f, n in per_file.items()},
    }


def _refusal(chosen: str, test: dict, choices: list) -> str:
    if chosen == KEEP:
        times = sum(c["chosen"] == KEEP for c in choices)
        return (
            f"not adapted: the inner cross-validations kept the starting model in {times} of {len(choices)} "
            "folds; keep the starting model (sero validate gives it the rig's calibration)"
        )
    failed = [check for check, passed in test["checks"].items() if not passed]
    return (
        f"not adapted: {chosen} does not beat the starting model on the same cells out of fold ({failed[0]}: "
        f"no, p = {test['p_value']:.3g}); keep the starting model (sero validate gives it the rig's calibration)"
    )


def _final_model(context: Context, mode: str, out_of_fold, parent: Ensemble) -> Ensemble:
    """``mode`` fitted on every labelled cell; the refitted modes' temperature from their out-of-fold
    probabilities."""
    tuner, dataset = context.tuner, context.dataset
    info = {"description": "", "demo": parent.is_demo, "input": parent.info.get("input") or {}}
    if mode == "temperature":
        info["calibration"] = _calibration(fit_temperature(context.start_raw, context.is_ser), "every labelled cell")
        if parent.info.get("training_data"):
            info["training_data"] = parent.info["training_data"]
        return _ensemble(tuner.kernels, tuner.start, tuner.epsilon, info)
    every = np.arange(len(context.ids))
    synthetic = context.synthetic(every, tuner.seed)
    if mode == "head":
        features = [np.concatenate(pair) for pair in zip(context.real_features, synthetic["features"], strict=True)]
        arrays = tuner.fit_head(features, np.concatenate([dataset.y, synthetic["y"]]))
    else:
        arrays = tuner.fit_all(dataset, synthetic["generator"])
    try:
        info["calibration"] = _calibration(
            fit_temperature(out_of_fold, context.is_ser), "out-of-fold cells of the adaptation"
        )
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
        "selection": report["selection"],
        "choices": report["choices"],
        "paired_test": report["test"],
        "noise_masks": report["noise_masks"],
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
