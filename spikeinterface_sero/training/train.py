"""Training the ensemble: all members at once, in one Keras model (``training/fused.py``).

The full explanation is in ``docs/training.md`` (section "Module notes: spikeinterface_sero.training.train").
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from ..arguments import check_flag
from ..constants import DEFAULT_KERNELS, DEFAULT_PRECISION, DEFAULT_THRESHOLD_PA, LABELS
from ..decision import calibrate, describe_training_snippets, fit_temperature
from ..errors import DataError, TrainingError
from ..model import Ensemble, build_member, load_model, save_model, to_member_input
from .data import SpikeDataset, balance_classes, dataset_from_table
from .evaluate import calibration as evaluate_calibration
from .evaluate import evaluate, write_report
from .fused import build_fused_members, resolve_precision
from .splits import check_no_leakage, leak_free_split, spike_level_split
from .synthetic import Augmentation, SyntheticGenerator, make_training_stream

PUBLISHED_DEFAULTS = {
    "kernels": list(DEFAULT_KERNELS),
    "optimizer": "Adam (learning rate 1e-3, Keras defaults)",
    "loss": "binary cross-entropy on the 2 sigmoid units (one-hot targets)",
    "epochs": 25,
    "batch_size": 64,
    "early_stopping": "validation loss, patience 10, best weights restored",
}


@dataclass(frozen=True)
class Recipe:
    """A named way of training: every setting that is not the data, the kernels or the seed.

    Parameters
    ----------
    name : str
        Its name (``"paper"``, ``"default"``, ``"real_only"``, or your own).
    epochs : int, default: 25
        Most epochs (early stopping may end sooner).
    batch_size : int, default: 64
        Samples per batch.
    patience : int, default: 10
        Epochs without a better validation loss before a member stops.
    learning_rate : float, default: 1e-3
        Adam's learning rate.
    early_stopping : str, default: "per_member"
        ``"per_member"``, ``"joint"`` or ``"none"``.
    balance : bool, default: True
        Subsample the majority class of the training and validation cells (the published setting).
    synthetic_ratio : float, default: 1.0
        Synthetic samples streamed per epoch for each real training spike (0: real spikes only).
    n_masks : int, default: 600
        Noise masks (the published 600).
    noise : str, default: "auto"
        Mask source: ``"auto"``, ``"recording"`` or ``"residual"``.
    augmentation : Augmentation, default: Augmentation()
        Changes of recording conditions applied to the synthetic samples (none by default).
    description : str, default: ""
        One sentence on what it is.
    """

    name: str
    epochs: int = 25
    batch_size: int = 64
    patience: int = 10
    learning_rate: float = 1e-3
    early_stopping: str = "per_member"
    balance: bool = True
    synthetic_ratio: float = 1.0
    n_masks: int = 600
    noise: str = "auto"
    augmentation: Augmentation = field(default_factory=Augmentation)
    description: str = ""

    def parameters(self) -> dict:
        """The settings as a JSON-able dict (what ``model_info.json`` records under ``training.recipe``)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("name", "description")}
        out["augmentation"] = self.augmentation.to_dict()
        out["smoothing"] = "3-point centred moving mean"
        out["optimizer"] = "Adam"
        out["loss"] = "binary cross-entropy on the 2 sigmoid units"
        return out

    def describe(self) -> dict:
        """``{"name", "description", "parameters"}``, JSON-able."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters()}


#: The recipes by name. ``"paper"`` is the published one (Corradetti et al. 2024 and its sequel, arXiv
#: 2407.05701): smoothed training spikes plus noise masks from the training recordings, balanced classes,
#: 25 epochs of batch 64, Adam 1e-3, early stopping on the validation loss with patience 10. ``"default"``
#: adds what the day-shift benchmark (benchmarks/bench_day_shift.py) showed to hold on other recording days.
RECIPES: dict[str, Recipe] = {
    "paper": Recipe(
        name="paper",
        description="the published recipe: smoothed training spikes + noise masks of the training recordings, "
        "balanced classes, 25 epochs, batch 64",
    ),
    "default": Recipe(
        name="default",
        augmentation=Augmentation(noise_gain=(0.8, 1.6), time_jitter=1),
        description="the paper's recipe plus a noise level drawn per synthetic sample (mask gain 0.8-1.6) and a "
        "trigger jitter of one sample; chosen on the day-shift benchmark, where stronger augmentation (wider "
        "SNR, electrode filtering, drift and hum, amplitude) called broad non-serotonergic cells serotonergic",
    ),
    "real_only": Recipe(
        name="real_only",
        synthetic_ratio=0.0,
        description="the paper's settings on the real training spikes only (no synthetic samples)",
    ),
}
DEFAULT_RECIPE = "default"


def get_recipe(recipe="default", **overrides) -> Recipe:
    """The :class:`Recipe` named ``recipe`` (or ``recipe`` itself), with ``overrides`` replacing settings
    (None values are ignored)."""
    if isinstance(recipe, Recipe):
        chosen = recipe
    elif isinstance(recipe, str) and recipe in RECIPES:
        chosen = RECIPES[recipe]
    else:
        raise TrainingError(f"unknown training recipe {recipe!r}: use one of {', '.join(RECIPES)} or a Recipe")
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - {f.name for f in fields(Recipe)})
    if unknown:
        raise TrainingError(f"unknown recipe setting(s) {unknown}")
    return replace(chosen, **given) if given else chosen


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


def build_fused_model(kernels: Iterable[int], *, precision: str = "float32", seed: int | None = None):
    """One Keras model that trains every member at once (:func:`~spikeinterface_sero.training.fused.build_fused_members`).

    Parameters
    ----------
    kernels : iterable of int
        The members' kernel sizes.
    precision : {"float32", "mixed_bfloat16", "mixed_float16"}, default: "float32"
        Compute precision of the convolutions; the weights, and the standalone members made afterwards, are
        float32 either way.
    seed : int or None, default: None
        Seed of the dropout masks (None: Keras' global seed).

    Returns
    -------
    fused : keras.Model
        One output per member, named ``"k<kernel>"``.
    branches : dict
        Kernel -> the member's weights (``get_weights()`` / ``set_weights()`` in :func:`build_member`'s order).
    """
    return build_fused_members(parse_kernels(list(kernels)), precision=precision, seed=seed)


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


def _per_member_early_stopping_class():
    keras = _keras()

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

    return PerMemberEarlyStopping


def _training_progress_class():
    from tqdm.keras import TqdmCallback  # imports keras: only once training starts

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

    return TrainingProgress


def _epoch_timer_class():
    keras = _keras()

    class EpochTimer(keras.callbacks.Callback):
        """Wall-clock seconds from the start of fit to the end of each epoch (validation included)."""

        def on_train_begin(self, logs=None):
            self.t0 = time.perf_counter()
            self.ends = []

        def on_epoch_end(self, epoch, logs=None):
            self.ends.append(time.perf_counter() - self.t0)

    return EpochTimer


def _callbacks_module():
    """The callback classes of a training run: per-member early stopping, the progress bar, the epoch timer."""
    return _per_member_early_stopping_class(), _training_progress_class(), _epoch_timer_class()


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
        "cell_accuracy_interval": result["cell"]["accuracy_interval"],
        "cell_balanced_accuracy_interval": result["cell"]["balanced_accuracy_interval"],
        "cell_TPR_interval": result["cell"]["TPR_interval"],
        "cell_TNR_interval": result["cell"]["TNR_interval"],
        "interval_method": result["cell"]["interval_method"],
        "cell_ece": result["cell"]["calibration"]["ece"],
        "spike_ece": result["spike"]["calibration"]["ece"],
        "warnings": result["warnings"],
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
    recipe="default",
    epochs: int | None = None,
    batch_size: int | None = None,
    patience: int | None = None,
    synthetic: int | None = None,
    synthetic_only: bool = False,
    n_masks: int | None = None,
    noise: str | None = None,
    extra_masks=None,
    seed: int = 0,
    out=None,
    description: str | None = None,
    name: str | None = None,
    test: SpikeDataset | None = None,
    split: dict | None = None,
    learning_rate: float | None = None,
    early_stopping: str | None = None,
    precision: str = DEFAULT_PRECISION,
    deterministic: bool = True,
    progress_bar: bool = True,
    demo: bool = False,
    overwrite: bool = False,
    extra_training_info: dict | None = None,
    keep_fused: bool = False,
    strategy=None,
    calibration: dict | None = None,
    headline_metrics: dict | None = None,
):
    """Train the ensemble (all members as branches of one fused model) and return ``(Ensemble, history)``.

    Parameters
    ----------
    train, validation : training and validation sets (validation drives early stopping; without it the
        training loss does). Balance them first (:func:`~spikeinterface_sero.training.data.balance_classes`)
        if you want the published balanced setting; the synthetic part is always balanced.
    kernels : member kernel sizes (default 20-31, the published ensemble).
    recipe : the training recipe: ``"default"`` (the paper's plus augmented recording conditions, chosen on
        the day-shift benchmark), ``"paper"`` (the published one exactly), ``"real_only"`` or a
        :class:`Recipe` (see :data:`RECIPES`). Its name and settings are recorded in the model card
        (``training.recipe``). The arguments below left at None take the recipe's value; one given
        replaces it (and is recorded as such).
    epochs, batch_size, patience, learning_rate, early_stopping : recipe settings (paper and default: 25,
        64, 10, Adam 1e-3, per member).
    synthetic : synthetic samples streamed per epoch (smoothed training spike + spike-free noise mask,
        see :mod:`~spikeinterface_sero.training.synthetic`), mixed with the real training spikes; None =
        the recipe's ``synthetic_ratio`` times the real training spikes; 0 = real spikes only.
        ``synthetic_only=True`` leaves the real spikes out of the epochs.
    n_masks, noise : number of noise masks and their source (``"auto"``, ``"recording"``, ``"residual"``).
    extra_masks : (m, 160) pA spike-free stretches of other recordings (e.g. unlabelled recordings of other
        days, cut with :func:`~spikeinterface_sero.training.data.noise_masks_from_traces`) added to the pool.
    seed : seeds Keras/TensorFlow/numpy (``keras.utils.set_random_seed``), the batch order and the
        synthetic stream; with ``deterministic=True`` TensorFlow's op determinism is switched on (a
        process-wide setting), so a run repeats exactly on the same machine.
    early_stopping : ``"per_member"`` (default; each member's best epoch restored), ``"joint"`` (Keras
        EarlyStopping on the summed loss) or ``"none"``.
    precision : ``"auto"`` (default: :func:`~spikeinterface_sero.training.fused.resolve_precision`, bfloat16
        convolutions where the CPU or GPU computes them natively, else float32), ``"float32"``,
        ``"mixed_bfloat16"`` or ``"mixed_float16"``; the saved members are float32 either way, and the card
        records the precision used.
    out : when given, the model folder written with :func:`spikeinterface_sero.model.save_model`; its
        card records the data, the split (``split``, e.g. ``Split.describe(dataset)``), the settings, and the
        accuracy measured on ``validation`` and on ``test`` (a held-out set, evaluated after training). A
        ``training.json`` with the full history is written beside the members.
    description, name, demo, overwrite : passed to ``save_model``.
    keep_fused : also return the trained fused Keras model as ``history["fused_model"]``.
    strategy : a ``tf.distribute`` strategy to train under (e.g. ``tf.distribute.MirroredStrategy()`` for
        every GPU of a machine, ``MultiWorkerMirroredStrategy()`` for several machines); None: TensorFlow's
        default (one device: the GPU when it sees one). The batch size is the global batch, split over the
        replicas. See ``docs/training.md`` ("More than one device").
    calibration : the calibration to store (e.g. from
        :func:`~spikeinterface_sero.training.cross_validation.calibration_from_cross_validation`, fitted on
        many more held-out cells); None: a temperature fitted
        on the ``validation`` cells.
    headline_metrics : figures measured elsewhere (e.g. a cross-validation by day) that come first under
        "Measured accuracy" in the model card.

    Returns
    -------
    ensemble : :class:`spikeinterface_sero.model.Ensemble` of standalone published members.
    history : dict with the per-epoch ``history`` (``loss``, ``val_loss``, ``k<kernel>_loss`` ...),
        ``best_epoch`` per kernel, ``epochs_run``, ``seconds``, ``samples_per_epoch``,
        ``samples_per_second`` (training samples through all members per second), ``synthetic``
        (generator description), ``val_metrics`` / ``test_metrics`` and ``folder``.
    """
    kernels = parse_kernels(kernels)
    overwrite = check_flag(overwrite, "overwrite")
    synthetic_only = check_flag(synthetic_only, "synthetic_only")
    _check_dataset(train, "training")
    _check_dataset(validation, "validation", both=False)
    _check_dataset(test, "test", both=False)
    explicit = dict(
        epochs=epochs,
        batch_size=batch_size,
        patience=patience,
        learning_rate=learning_rate,
        early_stopping=early_stopping,
        n_masks=n_masks,
        noise=noise,
    )
    settings = _resolve_settings(recipe, explicit, synthetic, synthetic_only, len(train))
    _check_output_folder(out, overwrite)  # fail before training, not after
    _seed_everything(seed, check_flag(deterministic, "deterministic"))
    precision = resolve_precision(precision)  # "auto" is recorded as what it chose
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        fused, branches = build_fused_model(kernels, precision=precision)
        compile_fused(fused, kernels, learning_rate=settings.learning_rate)
    names = [branch_name(k) for k in kernels]
    stream, validation_data, generator, n_real = _training_data(
        train, validation, settings, seed=seed, synthetic_only=synthetic_only, extra_masks=extra_masks, names=names
    )
    callbacks, timer, per_member_stopping = _make_callbacks(
        settings, branches, has_validation=validation is not None, progress_bar=progress_bar, n_members=len(kernels)
    )
    t0 = time.perf_counter()
    fit_history = fused.fit(
        stream,
        epochs=settings.epochs,
        validation_data=validation_data,
        callbacks=callbacks,
        verbose=0,
        validation_batch_size=max(256, settings.batch_size),
    )
    seconds = time.perf_counter() - t0
    run = {
        "synthetic_only": bool(synthetic_only),
        "seed": int(seed),
        "precision": precision,
        "replicas": int(strategy.num_replicas_in_sync) if strategy is not None else 1,
        "deterministic": bool(deterministic),
    }
    result = _run_record(fit_history, seconds, (timer, per_member_stopping), settings, run, kernels, n_real, generator)
    if keep_fused:
        result["fused_model"] = fused
    ensemble = Ensemble(
        _standalone_members(kernels, branches), info={"description": description or "", "demo": bool(demo)}
    )
    _measure_and_calibrate(ensemble, result, train, validation, test, calibration, seed=seed)
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
            headline_metrics=headline_metrics,
        )
        result["folder"] = str(folder)
        ensemble = load_model(folder)
    return ensemble, result


@dataclass(frozen=True)
class _Settings:
    """The settings of one training run: the recipe's, with the arguments given replacing them."""

    recipe: Recipe
    overridden: list
    epochs: int
    batch_size: int
    patience: int
    learning_rate: float
    early_stopping: str
    n_masks: int
    noise: str
    synthetic: int


def _resolve_settings(recipe, explicit: dict, synthetic, synthetic_only: bool, n_train: int) -> _Settings:
    """The run's settings from the recipe and the explicit arguments (None: the recipe's), checked."""
    chosen = get_recipe(recipe, **explicit)
    overridden = sorted(k for k, v in explicit.items() if v is not None)
    if synthetic is None:
        if synthetic_only:
            raise TrainingError("synthetic_only=True needs an explicit number of synthetic samples per epoch")
        synthetic = int(round(chosen.synthetic_ratio * n_train))
    else:
        overridden.append("synthetic")
    settings = _Settings(
        recipe=chosen,
        overridden=overridden,
        epochs=int(chosen.epochs),
        batch_size=int(chosen.batch_size),
        patience=int(chosen.patience),
        learning_rate=float(chosen.learning_rate),
        early_stopping=chosen.early_stopping,
        n_masks=int(chosen.n_masks),
        noise=chosen.noise,
        synthetic=int(synthetic),
    )
    if settings.epochs < 1 or settings.batch_size < 1 or settings.patience < 0:
        raise TrainingError("epochs and batch_size must be >= 1 and patience >= 0")
    if settings.synthetic < 0:
        raise TrainingError(f"synthetic must be >= 0, got {settings.synthetic}")
    if synthetic_only and settings.synthetic == 0:
        raise TrainingError("synthetic_only=True needs synthetic > 0 samples per epoch")
    if settings.early_stopping not in ("per_member", "joint", "none"):
        raise TrainingError(f"early_stopping must be 'per_member', 'joint' or 'none', got {settings.early_stopping!r}")
    return settings


def _check_output_folder(out, overwrite: bool) -> None:
    """Refuse, before training, a model folder that exists and may not be replaced."""
    if out is None:
        return
    target = Path(out).expanduser()
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not overwrite)):
        raise TrainingError(
            f"{target} exists and is not an empty folder; pass overwrite=True (CLI: "
            "--overwrite) to replace a model folder, or choose another path"
        )


def _seed_everything(seed: int, deterministic: bool) -> None:
    """Keras', TensorFlow's and numpy's seeds; TensorFlow's op determinism when ``deterministic``."""
    import tensorflow as tf

    _keras().utils.set_random_seed(int(seed))
    if deterministic:
        try:
            tf.config.experimental.enable_op_determinism()
        except Exception:  # noqa: BLE001 - older TF or already configured
            pass


def _training_data(train, validation, settings: _Settings, *, seed, synthetic_only, extra_masks, names):
    """The batches of each epoch (real spikes and the synthetic stream), the validation data, the synthetic
    generator (None without synthetic samples) and the number of real spikes per epoch."""
    generator = None
    if settings.synthetic:
        generator = SyntheticGenerator.from_dataset(
            train,
            n_masks=settings.n_masks,
            seed=seed,
            noise=settings.noise,
            augmentation=settings.recipe.augmentation,
            extra_masks=extra_masks,
        )
    X_real = train.X[:0] if synthetic_only else train.X
    y_real = train.y[:0] if synthetic_only else train.y
    stream = make_training_stream(
        X_real,
        y_real,
        generator=generator,
        n_synthetic=settings.synthetic,
        batch_size=settings.batch_size,
        seed=seed,
        to_input=to_member_input,
        output_names=names,
    )
    validation_data = None
    if validation is not None:
        validation_onehot = validation.onehot()
        validation_data = (to_member_input(validation.X), {n: validation_onehot for n in names})
    return stream, validation_data, generator, len(X_real)


def _make_callbacks(settings: _Settings, branches: dict, *, has_validation: bool, progress_bar: bool, n_members: int):
    """The fit's callbacks, its epoch timer and its per-member early stopping (None unless chosen)."""
    PerMemberEarlyStopping, TrainingProgress, EpochTimer = _callbacks_module()
    timer = EpochTimer()
    callbacks = [timer]
    per_member_stopping = None
    prefix = "val_" if has_validation else ""
    if settings.early_stopping == "per_member":
        per_member_stopping = PerMemberEarlyStopping(branches, settings.patience, prefix=prefix)
        callbacks.append(per_member_stopping)
    elif settings.early_stopping == "joint":
        callbacks.append(
            _keras().callbacks.EarlyStopping(
                monitor=f"{prefix}loss", patience=settings.patience, restore_best_weights=True
            )
        )
    if progress_bar:
        callbacks.append(TrainingProgress(settings.epochs, n_members))
    return callbacks, timer, per_member_stopping


def _standalone_members(kernels: list[int], branches: dict) -> list:
    """Published members (:func:`build_member`) holding the trained weights of each branch."""
    members = []
    for k in kernels:
        member = build_member(k)
        member.set_weights(branches[k].get_weights())
        members.append(member)
    return members


def _run_record(fit_history, seconds, callbacks, settings: _Settings, run: dict, kernels, n_real, generator):
    """What the run did: the per-epoch history, best epochs, timings and the settings used (``run``: those
    not in the recipe)."""
    timer, per_member_stopping = callbacks
    history = {k: [float(v) for v in vals] for k, vals in fit_history.history.items()}
    epochs_run = len(history.get("loss", []))
    samples_per_epoch = n_real + settings.synthetic
    best_epoch = None
    if per_member_stopping is not None:
        best_epoch = {int(k): int(per_member_stopping.best_epoch[k]) + 1 for k in kernels}
    return {
        "history": history,
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "stopped_early": bool(epochs_run < settings.epochs),
        "seconds": float(seconds),
        "epoch_end_seconds": [float(v) for v in timer.ends],
        "samples_per_epoch": int(samples_per_epoch),
        "samples_per_second": float(samples_per_epoch * epochs_run / seconds) if seconds > 0 else None,
        "synthetic": generator.info if generator is not None else None,
        "settings": {
            "kernels": [int(k) for k in kernels],
            "epochs": settings.epochs,
            "batch_size": settings.batch_size,
            "patience": settings.patience,
            "learning_rate": settings.learning_rate,
            "optimizer": "Adam",
            "loss": "sum over members of binary cross-entropy",
            "early_stopping": settings.early_stopping,
            "synthetic_per_epoch": settings.synthetic,
            **run,
            "recipe": dict(settings.recipe.describe(), overridden=settings.overridden),
            "training": "fused (all members "
            "as parallel branches of one Keras model, split into standalone members after training)",
        },
    }


def _measure_and_calibrate(ensemble, result: dict, train, validation, test, calibration, *, seed) -> None:
    """Record on ``ensemble`` what it was trained on and its calibration; put the validation and test
    figures and the calibration in ``result``."""
    # what the members were trained on, for the "like the training data" check at inference
    ensemble.info["training_data"] = describe_training_snippets(train.X, train.cell, seed=seed)
    if validation is not None:
        result["val_metrics"] = _quick_metrics(ensemble, validation)
    if calibration is None and validation is not None:
        calibration = _fit_calibration(ensemble, validation)
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
        result["test_metrics"] = _quick_metrics(ensemble, test)


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
    line = (
        f"smoothed ({info.get('smoothing')}) training spikes + one of {m.get('n_masks')} noise masks "
        f"from {m.get('n_cells')} cells ({m.get('description')}), classes balanced, streamed"
    )
    if m.get("n_extra_masks"):
        line += f"; {m['n_extra_masks']} of the masks from other recordings"
    if info.get("augmentation"):
        line += "; recording conditions augmented: " + ", ".join(f"{k} {v}" for k, v in info["augmentation"].items())
    return line


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
    recipe="default",
    epochs: int | None = None,
    synthetic: int | None = None,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split: str = "auto",
    batch_size: int | None = None,
    patience: int | None = None,
    max_per_cell: int | None = 700,
    balance: bool | None = None,
    threshold: float = DEFAULT_THRESHOLD_PA,
    snippet_kwargs: dict | None = None,
    n_masks: int | None = None,
    noise_per_cell: int = 64,
    description: str | None = None,
    name: str | None = None,
    precision: str = DEFAULT_PRECISION,
    progress_bar: bool = True,
    overwrite: bool = False,
    report: bool = True,
    demo: bool = False,
    extra_training_info: dict | None = None,
    source_name: str | None = None,
    calibration: dict | None = None,
    headline_metrics: dict | None = None,
) -> TrainingResult:
    """Everything ``sero train --table T.csv --out DIR`` does.

    1. Read the label table (``file, label[, channel, group]``) into a :class:`SpikeDataset`
       (:func:`~spikeinterface_sero.training.data.dataset_from_table`), at most ``max_per_cell`` spikes
       per cell (700 as in the paper; None = all).
    2. Split without leakage: by group when the table has a ``group`` column, else by cell
       (``split="auto"``; or ``"cell"``, ``"group"``; ``"spike"`` = the paper's leaky random split,
       warns). ``val_fraction`` / ``test_fraction`` of the cells (groups) go to validation / test.
    3. Balance the training and validation sides (majority class subsampled, seeded) when ``balance``
       (None: as the recipe says; both named recipes balance).
    4. Train all members fused (:func:`train_ensemble`) with the ``recipe`` (``"default"``, ``"paper"``,
       ``"real_only"`` or a :class:`Recipe`); ``epochs``, ``synthetic``, ``batch_size``, ``patience`` left
       at None take the recipe's values.
    5. Evaluate on the held-out test cells, write the model folder ``out`` (card with data, split and
       accuracy) and, when ``report``, the evaluation report (JSON + PNGs) in ``out/evaluation``.

    ``calibration`` replaces the temperature fitted on the validation cells (e.g. one fitted on the held-out
    cells of a cross-validation,
    :func:`~spikeinterface_sero.training.cross_validation.calibration_from_cross_validation`);
    ``headline_metrics`` (e.g. :func:`~spikeinterface_sero.training.cross_validation.headline_figures`)
    come first under "Measured accuracy" in the model card.

    Returns a :class:`TrainingResult` (``.summary()`` is JSON-able, for the CLI).
    """
    chosen_recipe = get_recipe(recipe)

    uses_synthetic = bool(synthetic) if synthetic is not None else chosen_recipe.synthetic_ratio > 0
    balance = chosen_recipe.balance if balance is None else bool(balance)
    dataset = dataset_from_table(
        table,
        threshold=threshold,
        max_per_cell=max_per_cell,
        seed=seed,
        noise_per_cell=noise_per_cell if uses_synthetic else 0,
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
        recipe=chosen_recipe,
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
        calibration=calibration,
        headline_metrics=headline_metrics,
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
