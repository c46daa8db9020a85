"""Training the ensemble: all members at once, in one Keras model (``training/fused.py``).

The run's pieces live beside it, one job each: ``recipes`` (recipes, kernel sizes), ``run_setup`` (settings,
checks, the epochs' data, the run record), ``keras_fit`` (the compiled fused model, callbacks, seeds) and
``model_card`` (measurements, calibration, the model folder). The full explanation is in ``docs/training.md``
(section "Module notes: spikeinterface_sero.training.train").
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..arguments import check_flag
from ..constants import DEFAULT_KERNELS, DEFAULT_PRECISION, DEFAULT_THRESHOLD_PA
from ..errors import TrainingError
from ..model import Ensemble, load_model
from .data import SpikeDataset, balance_classes, dataset_from_table
from .evaluate import evaluate, write_report
from .fused import resolve_precision
from .keras_fit import (
    branch_name,
    build_fused_model,
    compile_fused,
    make_callbacks,
    seed_everything,
    standalone_members,
)
from .model_card import json_safe, measure_and_calibrate, save_trained_model
from .recipes import DEFAULT_RECIPE, PUBLISHED_DEFAULTS, RECIPES, Recipe, get_recipe, parse_kernels
from .run_setup import check_dataset, check_output_folder, epoch_data, resolve_settings, run_record
from .splits import check_no_leakage, leak_free_split, spike_level_split

#: ``cross_validation`` reads the JSON-able copy under this name
_json = json_safe

__all__ = [
    "DEFAULT_RECIPE",
    "PUBLISHED_DEFAULTS",
    "RECIPES",
    "Recipe",
    "TrainingResult",
    "branch_name",
    "build_fused_model",
    "compile_fused",
    "get_recipe",
    "parse_kernels",
    "save_trained_model",
    "train_ensemble",
    "train_from_table",
]


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
    check_dataset(train, "training")
    check_dataset(validation, "validation", both=False)
    check_dataset(test, "test", both=False)
    explicit = dict(
        epochs=epochs,
        batch_size=batch_size,
        patience=patience,
        learning_rate=learning_rate,
        early_stopping=early_stopping,
        n_masks=n_masks,
        noise=noise,
    )
    settings = resolve_settings(recipe, explicit, synthetic, synthetic_only, len(train))
    check_output_folder(out, overwrite)  # fail before training, not after
    seed_everything(seed, check_flag(deterministic, "deterministic"))
    precision = resolve_precision(precision)  # "auto" is recorded as what it chose
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        fused, branches = build_fused_model(kernels, precision=precision)
        compile_fused(fused, kernels, learning_rate=settings.learning_rate)
    names = [branch_name(k) for k in kernels]
    stream, validation_data, generator, n_real = epoch_data(
        train, validation, settings, seed=seed, synthetic_only=synthetic_only, extra_masks=extra_masks, names=names
    )
    callbacks, timer, per_member_stopping = make_callbacks(
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
    result = run_record(fit_history, seconds, (timer, per_member_stopping), settings, run, kernels, n_real, generator)
    if keep_fused:
        result["fused_model"] = fused
    ensemble = Ensemble(
        standalone_members(kernels, branches), info={"description": description or "", "demo": bool(demo)}
    )
    measure_and_calibrate(ensemble, result, train, validation, test, calibration, seed=seed)
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
        return json_safe(out)


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
