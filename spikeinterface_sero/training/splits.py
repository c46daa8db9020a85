"""Train / validation / test splits that keep every cell (and every group) on one side.

Spikes of one cell share its recording's noise, seal and electrode; with a random spike-level split
(70/15/15, as in the paper's notebooks) the same cell sits in train and test, and test accuracy measures
recognition of *cells already seen*, not generalisation to new cells. The splits here work on cells, or on
groups of cells (recording day, slice, animal) when the dataset has groups, with scikit-learn's
``StratifiedGroupKFold`` (stratified by the cell label, so both classes appear on each side when
possible). :func:`spike_level_split` stays available only to reproduce the paper's numbers and warns.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..constants import LABELS
from ..errors import TrainingError
from .data import SpikeDataset


class LeakageWarning(UserWarning):
    """A split puts spikes of the same cell on both sides (train and test)."""


@dataclass
class Split:
    """Spike indices of the three sides of a split of one :class:`SpikeDataset`."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    by: str  # "group", "cell" or "spike"
    seed: int
    params: dict = field(default_factory=dict)

    def apply(self, dataset: SpikeDataset) -> tuple[SpikeDataset, SpikeDataset | None, SpikeDataset | None]:
        """(train, val, test) datasets; an empty side is None."""
        return tuple(dataset.subset(i) if len(i) else None for i in (self.train, self.val, self.test))

    def describe(self, dataset: SpikeDataset, *, list_cells: bool = True) -> dict:
        """What went where: spikes/cells/groups per side and class, whether any cell or group is shared.
        JSON-able; written to model cards."""
        out = {"by": self.by, "seed": int(self.seed), **self.params}
        sides = {}
        cell_sets, group_sets = {}, {}
        for name in ("train", "val", "test"):
            indices = getattr(self, name)
            cells = np.unique(dataset.cell[indices])
            groups = np.unique(dataset.group[indices])
            cell_sets[name], group_sets[name] = set(cells), set(groups)
            side = {"spikes": int(len(indices)), "cells": int(len(cells))}
            if dataset.has_groups:
                side["groups"] = int(len(groups))
            for y, label in enumerate(LABELS):
                class_indices = indices[dataset.y[indices] == y]
                side[label] = {
                    "spikes": int(len(class_indices)),
                    "cells": int(len(np.unique(dataset.cell[class_indices]))),
                }
            if list_cells and name != "train":
                side["cell_ids"] = sorted(map(str, cells))
                if dataset.has_groups:
                    side["group_ids"] = sorted(map(str, groups))
            sides[name] = side
        out.update(sides)
        shared_cells = (cell_sets["train"] & (cell_sets["val"] | cell_sets["test"])) | (
            cell_sets["val"] & cell_sets["test"]
        )
        shared_groups = (group_sets["train"] & (group_sets["val"] | group_sets["test"])) | (
            group_sets["val"] & group_sets["test"]
        )
        out["cells_on_more_than_one_side"] = int(len(shared_cells))
        if dataset.has_groups:
            out["groups_on_more_than_one_side"] = int(len(shared_groups))
        out["leak_free"] = len(shared_cells) == 0
        return out


def _units(dataset: SpikeDataset, by: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell: (cell ids, cell labels, unit key (the cell or its group))."""
    cells = dataset.cells
    ids = cells.index.to_numpy(dtype=str)
    y = cells["y"].to_numpy(dtype=np.int64)
    key = ids if by == "cell" else cells["group"].to_numpy(dtype=str)
    return ids, y, key


def _resolve_by(dataset: SpikeDataset, by: str) -> str:
    if by == "auto":
        return "group" if dataset.has_groups else "cell"
    if by not in ("cell", "group"):
        raise TrainingError(f"split by must be 'auto', 'cell' or 'group', got {by!r}")
    if by == "group" and not dataset.has_groups:
        return "cell"  # without groups every cell is its own group
    return by


def _hold_out(ids, y, key, fraction, seed, what, by):
    """Choose about ``fraction`` of the units (stratified by cell label) as held out.
    Returns a boolean mask over cells."""
    n_units = len(np.unique(key))
    if fraction <= 0:
        return np.zeros(len(ids), dtype=bool)
    if fraction >= 1:
        raise TrainingError(f"{what} fraction must be below 1, got {fraction}")
    if n_units < 2:
        raise TrainingError(
            f"cannot hold out a {what} set by {by}: only {n_units} {by}(s) available; add data or use "
            "fewer sides (fraction 0)"
        )
    n_splits = max(2, int(round(1.0 / fraction)))
    per_class = np.bincount(np.asarray(y).astype(np.int64), minlength=2)  # cells of each class
    most = int(per_class.max())  # scikit-learn's StratifiedGroupKFold needs n_splits <= the larger class
    if n_splits > min(n_units, most):
        n_splits = max(2, min(n_units, most))
        warnings.warn(
            f"only {n_units} {by}s ({per_class[0]} serotonergic, {per_class[1]} non-serotonergic cells): the {what} "
            f"side gets about 1/{n_splits} of them instead of ~{fraction:.0%}",
            UserWarning,
            stacklevel=3,
        )
    if most < 2:
        raise TrainingError(
            f"cannot hold out a {what} set by {by}: {per_class[0]} serotonergic and {per_class[1]} "
            f"non-serotonergic cell(s); add recordings (at least 2 of a class) or use a fraction of 0"
        )
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*least populated class.*")
        _, held_out = next(iter(splitter.split(np.zeros(len(ids)), y, groups=key)))
    mask = np.zeros(len(ids), dtype=bool)
    mask[held_out] = True
    return mask


def leak_free_split(
    dataset: SpikeDataset,
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    by: str = "auto",
    seed: int = 0,
) -> Split:
    """Split by group (when the dataset has groups) or by cell: no cell, and no group, on two sides.

    ``test_fraction`` of the units (groups or cells) go to test, then ``val_fraction`` of all units
    (taken from the rest) to validation; fractions are approximate (they are folds of
    ``StratifiedGroupKFold`` over units, stratified by the cell label). A fraction of 0 leaves that side
    empty. ``by``: ``"auto"`` (group if the dataset has groups, else cell), ``"group"`` or ``"cell"``.
    """
    by = _resolve_by(dataset, by)
    ids, y, key = _units(dataset, by)
    test_mask = _hold_out(ids, y, key, test_fraction, seed, "test", by)
    rest = ~test_mask
    validation_mask = np.zeros(len(ids), dtype=bool)
    if val_fraction > 0:
        relative_fraction = val_fraction / max(1e-9, 1.0 - test_fraction)
        if relative_fraction >= 1:
            raise TrainingError(f"val_fraction {val_fraction} + test_fraction {test_fraction} leave no training data")
        held_out = _hold_out(ids[rest], y[rest], key[rest], relative_fraction, seed + 1, "validation", by)
        validation_mask[np.flatnonzero(rest)[held_out]] = True
    train_mask = ~(test_mask | validation_mask)
    if not train_mask.any():
        raise TrainingError("the split leaves no cells for training: lower val_fraction/test_fraction")
    cell_side = {}
    for c, is_train, is_validation in zip(ids, train_mask, validation_mask):
        cell_side[c] = 0 if is_train else (1 if is_validation else 2)
    side = np.array([cell_side[c] for c in dataset.cell], dtype=np.int64) if len(dataset) else np.zeros(0, int)
    split = Split(
        train=np.flatnonzero(side == 0),
        val=np.flatnonzero(side == 1),
        test=np.flatnonzero(side == 2),
        by=by,
        seed=seed,
        params={
            "val_fraction": float(val_fraction),
            "test_fraction": float(test_fraction),
            "method": "StratifiedGroupKFold over " + ("groups" if by == "group" else "cells"),
        },
    )
    for name in ("val", "test"):
        indices = getattr(split, name)
        if len(indices) and len(np.unique(dataset.y[indices])) < 2 and len(np.unique(dataset.y)) == 2:
            warnings.warn(
                f"the {name} side holds one class only; add cells or change the seed", UserWarning, stacklevel=2
            )
    return split


def split_by_cell(dataset: SpikeDataset, **kwargs) -> Split:
    """:func:`leak_free_split` by cell (groups ignored)."""
    return leak_free_split(dataset, by="cell", **kwargs)


def split_by_group(dataset: SpikeDataset, **kwargs) -> Split:
    """:func:`leak_free_split` by group (by cell when the dataset has no groups)."""
    return leak_free_split(dataset, by="group", **kwargs)


def cell_kfold(
    dataset: SpikeDataset, n_splits: int = 5, *, by: str = "auto", val_fraction: float = 0.0, seed: int = 0
) -> list[Split]:
    """k-fold cross-validation by cell (or by group): every cell is in the test side of exactly one fold
    and never on two sides of a fold. With ``val_fraction`` > 0 a validation side is carved from each
    fold's training cells the same way."""
    from sklearn.model_selection import StratifiedGroupKFold

    by = _resolve_by(dataset, by)
    ids, y, key = _units(dataset, by)
    n_units = len(np.unique(key))
    if n_splits < 2 or n_splits > n_units:
        raise TrainingError(f"n_splits must be between 2 and the number of {by}s ({n_units}), got {n_splits}")
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    folds = []
    position_of = {c: i for i, c in enumerate(ids)}
    cell_positions = (
        np.array([position_of[c] for c in dataset.cell], dtype=np.int64) if len(dataset) else np.zeros(0, int)
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*least populated class.*")
        parts = list(splitter.split(np.zeros(len(ids)), y, groups=key))
    for fold, (train_units, test_units) in enumerate(parts):
        validation_units = np.zeros(0, dtype=np.int64)
        if val_fraction > 0:
            held_out = _hold_out(
                ids[train_units], y[train_units], key[train_units], val_fraction, seed + 1 + fold, "validation", by
            )
            validation_units, train_units = train_units[held_out], train_units[~held_out]
        side = np.full(len(ids), -1)
        side[train_units], side[validation_units], side[test_units] = 0, 1, 2
        spike_side = side[cell_positions]
        folds.append(
            Split(
                train=np.flatnonzero(spike_side == 0),
                val=np.flatnonzero(spike_side == 1),
                test=np.flatnonzero(spike_side == 2),
                by=by,
                seed=seed,
                params={
                    "fold": fold,
                    "n_splits": int(n_splits),
                    "val_fraction": float(val_fraction),
                    "method": "StratifiedGroupKFold over " + ("groups" if by == "group" else "cells"),
                },
            )
        )
    return folds


LEAKAGE_MESSAGE = (
    "spike-level random split: spikes of the same cell end up in train, validation and test, so the test "
    "accuracy measures recognition of cells already seen in training (leakage), not generalisation to new "
    "cells. Use it only to reproduce the paper's numbers; use leak_free_split (by cell or group) otherwise."
)


def spike_level_split(
    dataset: SpikeDataset, *, val_fraction: float = 0.15, test_fraction: float = 0.15, seed: int = 42
) -> Split:
    """The paper's random 70/15/15 split by spike (``train_test_split(test_size=0.3, random_state=42)``,
    then half of the held-out spikes to validation, half to test). Leaks cells across sides: warns with
    :class:`LeakageWarning`."""
    from sklearn.model_selection import train_test_split

    warnings.warn(LEAKAGE_MESSAGE, LeakageWarning, stacklevel=2)
    indices = np.arange(len(dataset))
    held_fraction = val_fraction + test_fraction
    if held_fraction <= 0:
        return Split(indices, indices[:0], indices[:0], by="spike", seed=seed)
    train, rest = train_test_split(indices, test_size=held_fraction, random_state=seed)
    if val_fraction <= 0:
        validation, test = rest[:0], rest
    elif test_fraction <= 0:
        validation, test = rest, rest[:0]
    else:
        validation, test = train_test_split(rest, test_size=test_fraction / held_fraction, random_state=seed)
    return Split(
        np.sort(train),
        np.sort(validation),
        np.sort(test),
        by="spike",
        seed=seed,
        params={
            "val_fraction": float(val_fraction),
            "test_fraction": float(test_fraction),
            "method": "sklearn train_test_split by spike (leaks cells across sides)",
        },
    )


def check_no_leakage(split: Split, dataset: SpikeDataset, *, groups: bool = True) -> None:
    """Raise :class:`TrainingError` if a cell (or, with ``groups``, a group) is on more than one side."""
    sides = {side_name: getattr(split, side_name) for side_name in ("train", "val", "test")}
    for what, values in (("cell", dataset.cell), ("group", dataset.group)):
        if what == "group" and not (groups and dataset.has_groups and split.by == "group"):
            continue
        sets = {side_name: set(np.unique(values[indices])) for side_name, indices in sides.items()}
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            both = sets[a] & sets[b]
            if both:
                raise TrainingError(f"{len(both)} {what}(s) on both the {a} and {b} sides, e.g. {sorted(both)[0]}")
