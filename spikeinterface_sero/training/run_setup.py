"""The settings and data of one training run: the recipe with the arguments given, the checks made before
training, the batches of each epoch, and the record of what the run did.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..constants import LABELS
from ..errors import TrainingError
from ..model import to_member_input
from .data import SpikeDataset
from .recipes import Recipe, get_recipe
from .synthetic import SyntheticGenerator, make_training_stream


def check_dataset(dataset: SpikeDataset | None, what: str, *, both: bool = True):
    if dataset is None:
        return
    if not isinstance(dataset, SpikeDataset):
        raise TrainingError(f"{what} must be a SpikeDataset, got {type(dataset).__name__}")
    if not len(dataset):
        raise TrainingError(f"the {what} set is empty")
    if both and len(np.unique(dataset.y)) < 2:
        raise TrainingError(f"the {what} set holds only {LABELS[int(dataset.y[0])]} spikes; it needs both classes")


@dataclass(frozen=True)
class RunSettings:
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


def resolve_settings(recipe, explicit: dict, synthetic, synthetic_only: bool, n_train: int) -> RunSettings:
    """The run's settings from the recipe and the explicit arguments (None: the recipe's), checked."""
    chosen = get_recipe(recipe, **explicit)
    overridden = sorted(k for k, v in explicit.items() if v is not None)
    if synthetic is None:
        if synthetic_only:
            raise TrainingError("synthetic_only=True needs an explicit number of synthetic samples per epoch")
        synthetic = int(round(chosen.synthetic_ratio * n_train))
    else:
        overridden.append("synthetic")
    settings = RunSettings(
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


def check_output_folder(out, overwrite: bool) -> None:
    """Refuse, before training, a model folder that exists and may not be replaced."""
    if out is None:
        return
    target = Path(out).expanduser()
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not overwrite)):
        raise TrainingError(
            f"{target} exists and is not an empty folder; pass overwrite=True (CLI: "
            "--overwrite) to replace a model folder, or choose another path"
        )


def epoch_data(train, validation, settings: RunSettings, *, seed, synthetic_only, extra_masks, names):
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


def run_record(fit_history, seconds, callbacks, settings: RunSettings, run: dict, kernels, n_real, generator):
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
