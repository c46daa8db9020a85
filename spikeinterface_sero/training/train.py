"""Training the ensemble: all members at once, as parallel branches of one Keras model.

The full explanation is in ``docs/training.md`` (section "Module notes: spikeinterface_sero.training.train").
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..constants import DEFAULT_KERNELS, DEFAULT_THRESHOLD_PA, LABELS
from ..decision import calibrate, fit_temperature
from ..errors import DataError, TrainingError
from ..model import MEMBER_INPUT_SHAPE, Ensemble, build_member, load_model, save_model, to_member_input
from .data import SpikeDataset, balance_classes, dataset_from_table
from .evaluate import calibration as evaluate_calibration
from .evaluate import evaluate, write_report
from .splits import check_no_leakage, leak_free_split, spike_level_split
from .synthetic import SyntheticGenerator, make_training_stream

PUBLISHED_DEFAULTS = {
    "kernels": list(DEFAULT_KERNELS),
    "optimizer": "Adam (learning rate 1e-3, Keras defaults)",
    "loss": "binary cross-entropy on the 2 sigmoid units (one-hot targets)",
    "epochs": 25,
    "batch_size": 64,
    "early_stopping": "validation loss, patience 10, best weights restored",
}


def parse_kernels(kernel_sizes) -> list[int]:
    """Kernel sizes from ``"20-31"``, ``"20,22,25"``, ``"20-25,28"``, an int or an iterable of ints."""
    if kernel_sizes is None:
        return list(DEFAULT_KERNELS)
    if isinstance(kernel_sizes, int):
        return [kernel_sizes]
    if isinstance(kernel_sizes, str):
        out: list[int] = []
        for part in kernel_sizes.replace(" ", "").split(","):
            if not part:
                continue
            match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not match:
                raise TrainingError(f"cannot read kernel sizes {kernel_sizes!r}: use e.g. '20-31' or '20,22,25'")
            first, last = int(match.group(1)), int(match.group(2) or match.group(1))
            if last < first:
                raise TrainingError(f"kernel range {part!r} runs backwards")
            out.extend(range(first, last + 1))
    else:
        out = [int(k) for k in kernel_sizes]
    if not out:
        raise TrainingError("no kernel sizes given")
    if len(set(out)) != len(out):
        raise TrainingError(f"kernel sizes repeat: {out}")
    bad = [k for k in out if not 1 <= k <= 31]
    if bad:
        raise TrainingError(f"kernel sizes must be 1-31 (the published sweep), got {bad}")
    return out


def _keras():
    import keras

    return keras


def branch_name(kernel: int) -> str:
    return f"k{int(kernel)}"


def build_fused_model(kernels: Iterable[int], *, precision: str = "float32"):
    """One Keras functional model with every member as a parallel branch on the shared (160, 2, 1) input.

    Returns ``(fused, branches)``: ``fused`` has one output per member, named ``"k<kernel>"``;
    ``branches`` maps each kernel to its member model (a :func:`build_member` Sequential used as the
    branch, so its weights are the branch's). ``precision="mixed_bfloat16"`` builds the branches under
    Keras' mixed precision policy (bfloat16 compute, float32 weights), much faster on CPUs with AMX /
    AVX512-BF16 and on recent GPUs; the standalone members made afterwards are float32 either way.
    """
    keras = _keras()
    kernels = parse_kernels(list(kernels))
    previous_policy = keras.mixed_precision.global_policy()
    if precision not in ("float32", "mixed_bfloat16", "mixed_float16"):
        raise TrainingError(f"precision must be 'float32', 'mixed_bfloat16' or 'mixed_float16', got {precision!r}")
    try:
        keras.mixed_precision.set_global_policy(precision)
        branches = {k: build_member(k) for k in kernels}
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    snippet_input = keras.Input(shape=MEMBER_INPUT_SHAPE, name="snippet")
    outputs = {branch_name(k): branches[k](snippet_input) for k in kernels}
    fused = keras.Model(snippet_input, outputs, name="fused_ensemble")
    return fused, branches


def compile_fused(fused, kernels, *, learning_rate: float = 1e-3, jit_compile=False):
    """Adam + sum of per-member binary cross-entropies; per-member accuracy (argmax) as metric."""
    keras = _keras()
    names = [branch_name(k) for k in kernels]
    fused.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss={n: keras.losses.BinaryCrossentropy() for n in names},
        metrics={n: [keras.metrics.CategoricalAccuracy(name="acc")] for n in names},
        jit_compile=jit_compile,
    )
    return fused


def _callbacks_module():
    keras = _keras()
    from tqdm.keras import TqdmCallback  # imports keras: only once training starts

    class PerMemberEarlyStopping(keras.callbacks.Callback):
        """Early stopping per branch: keeps each member's best weights on its own monitored loss and stops
        when every member has gone ``patience`` epochs without improving (Keras ``EarlyStopping``
        semantics, ``restore_best_weights=True``, per member)."""

        def __init__(self, branches: dict, patience: int, prefix: str = "val_", min_delta: float = 0.0):
            super().__init__()
            self.branches = branches
            self.patience = int(patience)
            self.prefix = prefix
            self.min_delta = float(min_delta)

        def on_train_begin(self, logs=None):
            self.best = {k: np.inf for k in self.branches}
            self.wait = {k: 0 for k in self.branches}
            self.best_epoch = {k: -1 for k in self.branches}
            self.best_weights = {k: None for k in self.branches}
            self.stopped_epoch = None

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            for k, member in self.branches.items():
                loss = logs.get(f"{self.prefix}{branch_name(k)}_loss")
                if loss is None:
                    continue
                loss = float(loss)
                if np.isfinite(loss) and loss < self.best[k] - self.min_delta:
                    self.best[k], self.best_epoch[k], self.wait[k] = loss, epoch, 0
                    self.best_weights[k] = member.get_weights()
                else:
                    self.wait[k] += 1
            if self.patience > 0 and all(waited >= self.patience for waited in self.wait.values()):
                self.stopped_epoch = epoch
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            for k, member in self.branches.items():
                if self.best_weights[k] is not None:
                    member.set_weights(self.best_weights[k])

    class TrainingProgress(TqdmCallback):
        """``tqdm.keras.TqdmCallback`` (one bar over the epochs, one over the batches of the epoch, on stderr)
        showing the loss per member only: the Keras logs also hold a loss and an accuracy for every member,
        48 entries for 12 members, too many for one line."""

        def __init__(self, epochs: int, n_members: int):
            self.n_members = max(1, int(n_members))
            super().__init__(epochs=epochs, verbose=1, desc=f"training {n_members} members", dynamic_ncols=True)

        def bar2callback(self, bar, pop=None, delta=lambda logs: 1):
            show = TqdmCallback.bar2callback(bar, pop, delta)

            def callback(step, logs=None):
                logs = logs or {}
                kept = {key: logs[key] for key in ("batch", "size") if key in logs}  # tqdm's counting keys
                for key in ("loss", "val_loss"):
                    if key in logs:
                        kept[f"{key}/member"] = f"{float(logs[key]) / self.n_members:.4f}"
                show(step, kept)

            return callback

        def on_epoch_begin(self, epoch, *args, **kwargs):
            super().on_epoch_begin(epoch, *args, **kwargs)
            self.batch_bar.unit_scale = False  # Keras 3 logs no batch size: count whole batches, not "3.00"

    class EpochTimer(keras.callbacks.Callback):
        """Wall-clock seconds from the start of fit to the end of each epoch (validation included)."""

        def on_train_begin(self, logs=None):
            self.t0 = time.perf_counter()
            self.ends = []

        def on_epoch_end(self, epoch, logs=None):
            self.ends.append(time.perf_counter() - self.t0)

    return PerMemberEarlyStopping, TrainingProgress, EpochTimer


def _check_dataset(dataset: SpikeDataset | None, what: str, *, both: bool = True):
    if dataset is None:
        return
    if not isinstance(dataset, SpikeDataset):
        raise TrainingError(f"{what} must be a SpikeDataset, got {type(dataset).__name__}")
    if not len(dataset):
        raise TrainingError(f"the {what} set is empty")
    if both and len(np.unique(dataset.y)) < 2:
        raise TrainingError(f"the {what} set holds only {LABELS[int(dataset.y[0])]} spikes; it needs both classes")


def _json(value):
    """JSON-able copy (numpy scalars/arrays to Python)."""
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def _quick_metrics(ensemble, dataset: SpikeDataset) -> dict:
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
        "spike_ece": result["spike"]["calibration"]["ece"],
    }


def _fit_calibration(ensemble, validation: SpikeDataset) -> dict | None:
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


def train_ensemble(
    train: SpikeDataset,
    validation: SpikeDataset | None = None,
    *,
    kernels=DEFAULT_KERNELS,
    epochs: int = 25,
    batch_size: int = 64,
    patience: int = 10,
    synthetic: int = 0,
    synthetic_only: bool = False,
    n_masks: int = 600,
    noise: str = "auto",
    seed: int = 0,
    out=None,
    description: str | None = None,
    name: str | None = None,
    test: SpikeDataset | None = None,
    split: dict | None = None,
    learning_rate: float = 1e-3,
    early_stopping: str = "per_member",
    precision: str = "float32",
    deterministic: bool = True,
    progress_bar: bool = True,
    demo: bool = False,
    overwrite: bool = False,
    extra_training_info: dict | None = None,
    keep_fused: bool = False,
):
    """Train the ensemble (all members as branches of one fused model) and return ``(Ensemble, history)``.

    Parameters
    ----------
    train, validation : training and validation sets (validation drives early stopping; without it the
        training loss does). Balance them first (:func:`~spikeinterface_sero.training.data.balance_classes`)
        if you want the published balanced setting; the synthetic part is always balanced.
    kernels : member kernel sizes (default 20-31, the published ensemble).
    epochs, batch_size, patience, learning_rate : as published by default (25, 64, 10, Adam 1e-3).
    synthetic : synthetic samples streamed per epoch (smoothed training spike + spike-free noise mask,
        see :mod:`~spikeinterface_sero.training.synthetic`), mixed with the real training spikes; 0 = real
        spikes only. ``synthetic_only=True`` leaves the real spikes out of the epochs.
    n_masks, noise : number of noise masks and their source (``"auto"``, ``"recording"``, ``"residual"``).
    seed : seeds Keras/TensorFlow/numpy (``keras.utils.set_random_seed``), the batch order and the
        synthetic stream; with ``deterministic=True`` TensorFlow's op determinism is switched on (a
        process-wide setting), so a run repeats exactly on the same machine.
    early_stopping : ``"per_member"`` (default; each member's best epoch restored), ``"joint"`` (Keras
        EarlyStopping on the summed loss) or ``"none"``.
    precision : ``"float32"`` (default) or ``"mixed_bfloat16"`` (faster on AMX/BF16 CPUs and GPUs; the
        saved members are float32 either way).
    out : when given, the model folder written with :func:`spikeinterface_sero.model.save_model`; its
        card records the data, the split (``split``, e.g. ``Split.describe(dataset)``), the settings, and the
        accuracy measured on ``validation`` and on ``test`` (a held-out set, evaluated after training). A
        ``training.json`` with the full history is written beside the members.
    description, name, demo, overwrite : passed to ``save_model``.
    keep_fused : also return the trained fused Keras model as ``history["fused_model"]``.

    Returns
    -------
    ensemble : :class:`spikeinterface_sero.model.Ensemble` of standalone published members.
    history : dict with the per-epoch ``history`` (``loss``, ``val_loss``, ``k<kernel>_loss`` ...),
        ``best_epoch`` per kernel, ``epochs_run``, ``seconds``, ``samples_per_epoch``,
        ``samples_per_second`` (training samples through all members per second), ``synthetic``
        (generator description), ``val_metrics`` / ``test_metrics`` and ``folder``.
    """
    keras = _keras()
    import tensorflow as tf

    kernels = parse_kernels(kernels)
    _check_dataset(train, "training")
    _check_dataset(validation, "validation", both=False)
    _check_dataset(test, "test", both=False)
    epochs, batch_size, patience = int(epochs), int(batch_size), int(patience)
    if epochs < 1 or batch_size < 1 or patience < 0:
        raise TrainingError("epochs and batch_size must be >= 1 and patience >= 0")
    synthetic = int(synthetic)
    if synthetic < 0:
        raise TrainingError(f"synthetic must be >= 0, got {synthetic}")
    if synthetic_only and synthetic == 0:
        raise TrainingError("synthetic_only=True needs synthetic > 0 samples per epoch")
    if early_stopping not in ("per_member", "joint", "none"):
        raise TrainingError(f"early_stopping must be 'per_member', 'joint' or 'none', got {early_stopping!r}")
    if out is not None:  # fail before training, not after
        target = Path(out).expanduser()
        if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not overwrite)):
            raise TrainingError(
                f"{target} exists and is not an empty folder; pass overwrite=True (CLI: "
                "--overwrite) to replace a model folder, or choose another path"
            )

    keras.utils.set_random_seed(int(seed))
    if deterministic:
        try:
            tf.config.experimental.enable_op_determinism()
        except Exception:  # noqa: BLE001 - older TF or already configured
            pass

    fused, branches = build_fused_model(kernels, precision=precision)
    compile_fused(fused, kernels, learning_rate=learning_rate)
    names = [branch_name(k) for k in kernels]

    generator = None
    if synthetic:
        generator = SyntheticGenerator.from_dataset(train, n_masks=n_masks, seed=seed, noise=noise)
    X_real = train.X[:0] if synthetic_only else train.X
    y_real = train.y[:0] if synthetic_only else train.y
    stream = make_training_stream(
        X_real,
        y_real,
        generator=generator,
        n_synthetic=synthetic,
        batch_size=batch_size,
        seed=seed,
        to_input=to_member_input,
        output_names=names,
    )
    validation_data = None
    if validation is not None:
        validation_onehot = validation.onehot()
        validation_data = (to_member_input(validation.X), {n: validation_onehot for n in names})

    PerMemberEarlyStopping, TrainingProgress, EpochTimer = _callbacks_module()
    timer = EpochTimer()
    callbacks = [timer]
    per_member_stopping = None
    prefix = "val_" if validation is not None else ""
    if early_stopping == "per_member":
        per_member_stopping = PerMemberEarlyStopping(branches, patience, prefix=prefix)
        callbacks.append(per_member_stopping)
    elif early_stopping == "joint":
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor=f"{prefix}loss", patience=patience, restore_best_weights=True)
        )
    if progress_bar:
        callbacks.append(TrainingProgress(epochs, len(kernels)))

    t0 = time.perf_counter()
    fit_history = fused.fit(
        stream,
        epochs=epochs,
        validation_data=validation_data,
        callbacks=callbacks,
        verbose=0,
        validation_batch_size=max(256, batch_size),
    )
    seconds = time.perf_counter() - t0
    history = {k: [float(v) for v in vals] for k, vals in fit_history.history.items()}
    epochs_run = len(history.get("loss", []))

    # standalone published members with the trained weights
    members = []
    for k in kernels:
        member = build_member(k)
        member.set_weights(branches[k].get_weights())
        members.append(member)
    samples_per_epoch = len(X_real) + synthetic
    result = {
        "history": history,
        "epochs_run": epochs_run,
        "best_epoch": (
            {int(k): int(per_member_stopping.best_epoch[k]) + 1 for k in kernels}
            if per_member_stopping is not None
            else None
        ),
        "stopped_early": bool(epochs_run < epochs),
        "seconds": float(seconds),
        "epoch_end_seconds": [float(v) for v in timer.ends],
        "samples_per_epoch": int(samples_per_epoch),
        "samples_per_second": float(samples_per_epoch * epochs_run / seconds) if seconds > 0 else None,
        "synthetic": generator.info if generator is not None else None,
        "settings": {
            "kernels": [int(k) for k in kernels],
            "epochs": epochs,
            "batch_size": batch_size,
            "patience": patience,
            "learning_rate": float(learning_rate),
            "optimizer": "Adam",
            "loss": "sum over members of binary cross-entropy",
            "early_stopping": early_stopping,
            "synthetic_per_epoch": synthetic,
            "synthetic_only": bool(synthetic_only),
            "seed": int(seed),
            "precision": precision,
            "deterministic": bool(deterministic),
            "training": "fused (all members "
            "as parallel branches of one Keras model, split into standalone members after training)",
        },
    }
    if keep_fused:
        result["fused_model"] = fused
    info = {"description": description or "", "demo": bool(demo)}
    ensemble = Ensemble(members, info=info)
    if validation is not None:
        result["val_metrics"] = _quick_metrics(ensemble, validation)
        calibration = _fit_calibration(ensemble, validation)
        if calibration is not None:
            result["calibration"] = calibration
            ensemble.info["calibration"] = {
                "method": "temperature",
                "temperature": calibration["temperature"],
                "n_cells": calibration["n_cells"],
            }
    if test is not None:
        result["test_metrics"] = _quick_metrics(ensemble, test)
    result["folder"] = None
    if out is not None:
        folder = save_trained_model(
            ensemble,
            out,
            train=train,
            validation=validation,
            test=test,
            split=split,
            result=result,
            description=description,
            name=name,
            demo=demo,
            overwrite=overwrite,
            extra=extra_training_info,
        )
        result["folder"] = str(folder)
        ensemble = load_model(folder)
    return ensemble, result


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
) -> Path:
    """Write the model folder with a card recording the data, the split, the settings and the measured
    accuracy; plus ``training.json`` (full history and split, cell ids included)."""
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
        "precision": settings.get("precision"),
        "method": settings.get("training"),
        "seconds": round(float(result.get("seconds", 0.0)), 1),
    }
    if extra:
        training.update(extra)
    metrics = {}
    for side in ("val_metrics", "test_metrics"):
        if result.get(side):
            label = "validation" if side == "val_metrics" else "held-out test"
            metrics[label] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result[side].items()}
    folder = save_model(
        ensemble,
        out,
        description=description or "",
        training=_json(training),
        metrics=_json(metrics),
        name=name,
        demo=demo,
        overwrite=overwrite,
    )
    full = {"data": data, "split": split, "training": _json(training), "result": result}
    (Path(folder) / "training.json").write_text(json.dumps(_json(full), indent=1) + "\n", encoding="utf-8")
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
    return (
        f"smoothed ({info.get('smoothing')}) training spikes + one of {m.get('n_masks')} noise masks "
        f"from {m.get('n_cells')} cells ({m.get('description')}), classes balanced, streamed"
    )


@dataclass
class TrainingResult:
    """What :func:`train_from_table` did."""

    ensemble: object
    folder: Path | None
    history: dict
    split: dict
    dataset: dict
    evaluation: dict | None = None
    report_dir: Path | None = None
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """JSON-able summary (for the CLI)."""
        out = {
            "folder": None if self.folder is None else str(self.folder),
            "dataset": self.dataset,
            "split": {k: v for k, v in self.split.items() if k not in ("train", "val", "test")},
            "sides": {
                s: {k: v for k, v in self.split[s].items() if not k.endswith("_ids")}
                for s in ("train", "val", "test")
                if s in self.split
            },
            "epochs_run": self.history.get("epochs_run"),
            "seconds": self.history.get("seconds"),
            "samples_per_second": self.history.get("samples_per_second"),
            "val_metrics": self.history.get("val_metrics"),
            "test_metrics": self.history.get("test_metrics"),
            "report_dir": None if self.report_dir is None else str(self.report_dir),
        }
        return _json(out)


def train_from_table(
    table,
    out,
    *,
    kernels=DEFAULT_KERNELS,
    epochs: int = 25,
    synthetic: int = 0,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split: str = "auto",
    batch_size: int = 64,
    patience: int = 10,
    max_per_cell: int | None = 700,
    balance: bool = True,
    threshold: float = DEFAULT_THRESHOLD_PA,
    snippet_kwargs: dict | None = None,
    n_masks: int = 600,
    noise_per_cell: int = 64,
    description: str | None = None,
    name: str | None = None,
    precision: str = "float32",
    progress_bar: bool = True,
    overwrite: bool = False,
    report: bool = True,
    demo: bool = False,
    extra_training_info: dict | None = None,
    source_name: str | None = None,
) -> TrainingResult:
    """Everything ``sero train --table T.csv --out DIR`` does.

    1. Read the label table (``file, label[, channel, group]``) into a :class:`SpikeDataset`
       (:func:`~spikeinterface_sero.training.data.dataset_from_table`), at most ``max_per_cell`` spikes
       per cell (700 as in the paper; None = all).
    2. Split without leakage: by group when the table has a ``group`` column, else by cell
       (``split="auto"``; or ``"cell"``, ``"group"``; ``"spike"`` = the paper's leaky random split,
       warns). ``val_fraction`` / ``test_fraction`` of the cells (groups) go to validation / test.
    3. Balance the training and validation sides (majority class subsampled, seeded) when ``balance``.
    4. Train all members fused (:func:`train_ensemble`), with ``synthetic`` streamed synthetic samples per
       epoch.
    5. Evaluate on the held-out test cells, write the model folder ``out`` (card with data, split and
       accuracy) and, when ``report``, the evaluation report (JSON + PNGs) in ``out/evaluation``.

    Returns a :class:`TrainingResult` (``.summary()`` is JSON-able, for the CLI).
    """
    dataset = dataset_from_table(
        table,
        threshold=threshold,
        max_per_cell=max_per_cell,
        seed=seed,
        noise_per_cell=noise_per_cell if synthetic else 0,
        progress_bar=progress_bar,
        snippet_kwargs=snippet_kwargs,
        source_name=source_name,
    )
    if len(np.unique(dataset.y)) < 2:
        raise TrainingError(
            "the table holds cells of one class only; training needs serotonergic and non_serotonergic cells"
        )
    if split == "spike":
        dataset_split = spike_level_split(dataset, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    else:
        dataset_split = leak_free_split(
            dataset, val_fraction=val_fraction, test_fraction=test_fraction, by=split, seed=seed
        )
        check_no_leakage(dataset_split, dataset)
    train, validation, test = dataset_split.apply(dataset)
    split_info = dataset_split.describe(dataset)
    if balance:
        train = balance_classes(train, seed=seed)
        if validation is not None and len(np.unique(validation.y)) == 2:
            validation = balance_classes(validation, seed=seed + 1)
    split_info["balanced"] = {
        "train": bool(balance),
        "validation": bool(balance and validation is not None),
        "test": False,
    }
    ensemble, history = train_ensemble(
        train,
        validation,
        kernels=kernels,
        epochs=epochs,
        batch_size=batch_size,
        patience=patience,
        synthetic=synthetic,
        n_masks=n_masks,
        seed=seed,
        out=out,
        description=description,
        name=name,
        test=test,
        split=split_info,
        precision=precision,
        progress_bar=progress_bar,
        overwrite=overwrite,
        demo=demo,
        extra_training_info=extra_training_info,
    )
    evaluation, report_dir = None, None
    if test is not None:
        evaluation = evaluate(ensemble, test)
        if report:
            report_dir = Path(history["folder"]) / "evaluation"
            write_report(evaluation, report_dir, title="held-out test cells")
    return TrainingResult(
        ensemble=ensemble,
        folder=Path(history["folder"]) if history["folder"] else None,
        history=history,
        split=split_info,
        dataset=dataset.summary(),
        evaluation=evaluation,
        report_dir=report_dir,
    )
