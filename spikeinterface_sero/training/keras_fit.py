"""The Keras side of a training run: the fused model compiled, its callbacks (per-member early stopping, the
progress bar, the epoch timer), the seeds, and the standalone members made from the trained branches.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from ..model import build_member
from .fused import build_fused_members
from .recipes import parse_kernels
from .run_setup import RunSettings


def _keras():
    import keras

    return keras


def branch_name(kernel: int) -> str:
    """The name of the fused model's output (and losses) of the member of kernel size ``kernel``."""
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


def seed_everything(seed: int, deterministic: bool) -> None:
    """Keras', TensorFlow's and numpy's seeds; TensorFlow's op determinism when ``deterministic``."""
    import tensorflow as tf

    _keras().utils.set_random_seed(int(seed))
    if deterministic:
        try:
            tf.config.experimental.enable_op_determinism()
        except Exception:  # noqa: BLE001 - older TF or already configured
            pass


def make_callbacks(settings: RunSettings, branches: dict, *, has_validation: bool, progress_bar: bool, n_members: int):
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


def standalone_members(kernels: list[int], branches: dict) -> list:
    """Published members (:func:`build_member`) holding the trained weights of each branch."""
    members = []
    for k in kernels:
        member = build_member(k)
        member.set_weights(branches[k].get_weights())
        members.append(member)
    return members
