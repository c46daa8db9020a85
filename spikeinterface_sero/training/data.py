"""Labelled spike datasets for training and evaluation.

The full explanation is in ``docs/training.md`` (section "Module notes: spikeinterface_sero.training.data").
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..constants import DEFAULT_THRESHOLD_PA, LABELS, NAFTER, NBEFORE, SAMPLING_FREQUENCY, SNIPPET_LENGTH
from ..detection import recording_to_snippets
from ..errors import TrainingError
from ..io import read_abf
from ..snippet_folders import folder_class
from ..snippet_formats import read_snippet_csv_folder

#: The class indices of the targets: 0 = serotonergic (output unit 0), 1 = non-serotonergic.
SER, NSER = 0, 1

_LABEL_ALIASES = {
    "serotonergic": SER,
    "ser": SER,
    "non_serotonergic": NSER,
    "nonserotonergic": NSER,
    "nser": NSER,
}


def parse_label(value, where: str = "") -> int:
    """Map a label to its output unit: ``serotonergic``/``SER`` -> 0, ``non_serotonergic``/``NSER`` -> 1.

    Case-insensitive; ``non-serotonergic`` and ``non serotonergic`` are accepted too. Anything else
    raises :class:`TrainingError` naming ``where`` (e.g. the table row).
    """
    key = re.sub(r"[\s\-]+", "_", str(value).strip().lower()) if value is not None else ""
    if key in _LABEL_ALIASES:
        return _LABEL_ALIASES[key]
    at = f" in {where}" if where else ""
    raise TrainingError(f"unknown label {value!r}{at}: use 'serotonergic' (or SER) or 'non_serotonergic' (or NSER)")


def label_name(y: int) -> str:
    return LABELS[int(y)]


@dataclass
class SpikeDataset:
    """Labelled spike snippets with their cells.

    Attributes
    ----------
    X : (n, 160) float32, current in pA, trigger at sample 40.
    y : (n,) int64, 0 = serotonergic, 1 = non-serotonergic.
    cell : (n,) str, the cell of each spike (for ABF recordings the file stem, or ``"<stem>_ch<id>"``
        when a file holds several cells).
    group : (n,) str, the group of each spike's cell (recording day, slice, animal); the cell id itself
        when no group was given (``has_groups`` is then False).
    cells : per-cell table indexed by cell id: ``label``, ``y``, ``group``, ``n_spikes`` (spikes in this
        dataset), ``n_detected`` (spikes the source had before any cap or balancing), ``source``,
        ``channel``.
    noise : (m, 160) float32 or None, mean-subtracted spike-free stretches of the cells' recordings (the
        noise-mask pool of the synthetic data); None when the source had no recording traces.
    noise_cell : (m,) str or None, the cell whose recording each noise stretch comes from.
    trigger : (n,) int64 or None, trigger sample of each spike in its segment.
    segment : (n,) int64 or None, segment (sweep) of each spike.
    source : a JSON-able description of where the data came from (written to model cards).
    """

    X: np.ndarray
    y: np.ndarray
    cell: np.ndarray
    group: np.ndarray
    cells: pd.DataFrame
    noise: np.ndarray | None = None
    noise_cell: np.ndarray | None = None
    trigger: np.ndarray | None = None
    segment: np.ndarray | None = None
    has_groups: bool = False
    source: dict = field(default_factory=dict)

    def __post_init__(self):
        self.X = np.ascontiguousarray(self.X, dtype=np.float32)
        if self.X.ndim != 2 or self.X.shape[1] != SNIPPET_LENGTH:
            raise TrainingError(f"snippets must have shape (n, {SNIPPET_LENGTH}), got {self.X.shape}")
        n = len(self.X)
        self.y = np.asarray(self.y, dtype=np.int64)
        self.cell = np.asarray(self.cell).astype(str)
        self.group = np.asarray(self.group).astype(str)
        for name in ("y", "cell", "group"):
            if len(getattr(self, name)) != n:
                raise TrainingError(f"{name} has {len(getattr(self, name))} entries for {n} snippets")
        if n and not np.all(np.isin(self.y, (SER, NSER))):
            raise TrainingError("labels must be 0 (serotonergic) or 1 (non-serotonergic)")
        if n and not np.all(np.isfinite(self.X)):
            raise TrainingError("snippets contain NaN or inf values")
        if self.noise is not None:
            self.noise = np.ascontiguousarray(self.noise, dtype=np.float32).reshape(-1, SNIPPET_LENGTH)
            self.noise_cell = np.asarray(self.noise_cell).astype(str)
            if len(self.noise_cell) != len(self.noise):
                raise TrainingError("noise_cell must have one entry per noise mask")

    # ---------------------------------------------------------------------------------------------- basics
    def __len__(self) -> int:
        return len(self.X)

    @property
    def cell_ids(self) -> np.ndarray:
        """The cells of this dataset, in the order of the per-cell table."""
        return self.cells.index.to_numpy(dtype=str)

    @property
    def n_cells(self) -> int:
        """The number of cells (rows of ``cells``)."""
        return len(self.cells)

    def onehot(self) -> np.ndarray:
        """(n, 2) float32 targets: [1, 0] for serotonergic, [0, 1] for non-serotonergic."""
        return np.eye(2, dtype=np.float32)[self.y]

    def subset(self, index) -> SpikeDataset:
        """The spikes at ``index`` (integer indices or a boolean mask), with the per-cell table and the
        noise pool restricted to the cells that remain."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = index.astype(np.int64)
        cells_left = set(pd.unique(self.cell[index]))
        table = self.cells.loc[[c for c in self.cells.index if c in cells_left]].copy()
        counts = pd.Series(self.cell[index]).value_counts()
        table["n_spikes"] = counts.reindex(table.index).fillna(0).astype(int).to_numpy()
        noise, noise_cell = self.noise, self.noise_cell
        if noise is not None:
            keep = np.isin(noise_cell, table.index.to_numpy(dtype=str))
            noise, noise_cell = noise[keep], noise_cell[keep]
        return SpikeDataset(
            X=self.X[index],
            y=self.y[index],
            cell=self.cell[index],
            group=self.group[index],
            cells=table,
            noise=noise,
            noise_cell=noise_cell,
            trigger=None if self.trigger is None else self.trigger[index],
            segment=None if self.segment is None else self.segment[index],
            has_groups=self.has_groups,
            source=dict(self.source),
        )

    def select_cells(self, cells) -> SpikeDataset:
        """The spikes of the given cells."""
        return self.subset(np.isin(self.cell, np.asarray(list(cells)).astype(str)))

    def summary(self) -> dict:
        """Counts per class (spikes, cells, groups) as a JSON-able dict."""
        out = {"n_spikes": int(len(self)), "n_cells": int(self.n_cells)}
        for y, name in enumerate(LABELS):
            selected = self.cells["y"] == y
            out[name] = {
                "spikes": int((self.y == y).sum()),
                "cells": int(selected.sum()),
            }
        if self.has_groups:
            out["n_groups"] = int(self.cells["group"].nunique())
            out["groups"] = sorted(map(str, self.cells["group"].unique()))
        out["noise_masks"] = 0 if self.noise is None else int(len(self.noise))
        out["noise_source"] = self.source.get("noise_source", "none" if self.noise is None else "recording")
        return out

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"SpikeDataset({s['n_spikes']} spikes, {s['n_cells']} cells: "
            f"SER {s['serotonergic']['spikes']} spikes / {s['serotonergic']['cells']} cells, "
            f"NSER {s['non_serotonergic']['spikes']} spikes / {s['non_serotonergic']['cells']} cells, "
            f"{s['noise_masks']} noise masks)"
        )

    # ------------------------------------------------------------------------------------------ save/load
    def save(self, path) -> Path:
        """Write the dataset to one ``.npz`` file (per-cell table included)."""
        path = Path(path)
        arrays = dict(X=self.X, y=self.y, cell=self.cell, group=self.group)
        if self.noise is not None:
            arrays.update(noise=self.noise, noise_cell=self.noise_cell)
        if self.trigger is not None:
            arrays["trigger"] = self.trigger
        if self.segment is not None:
            arrays["segment"] = self.segment
        import json

        cells = self.cells.reset_index(names="cell")
        arrays["cells_json"] = np.array(cells.to_json(orient="records"))
        arrays["meta_json"] = np.array(json.dumps({"has_groups": self.has_groups, "source": self.source}))
        np.savez_compressed(path, **arrays)
        return path if path.suffix == ".npz" else path.with_suffix(path.suffix + ".npz")

    @classmethod
    def load(cls, path) -> SpikeDataset:
        """Read a dataset written by :meth:`save`."""
        import io as _io
        import json

        with np.load(path, allow_pickle=False) as f:
            d = {k: f[k] for k in f.files}
        cells = pd.read_json(_io.StringIO(str(d.pop("cells_json"))), orient="records", dtype={"cell": str})
        cells = cells.set_index("cell")
        cells.index = cells.index.astype(str)
        metadata = json.loads(str(d.pop("meta_json")))
        return cls(cells=cells, has_groups=metadata["has_groups"], source=metadata["source"], **d)


# ------------------------------------------------------------------------------------------- construction
def _cells_table(y, cell, group, extra: dict[str, dict] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({"cell": cell, "y": y, "group": group})
    first = frame.groupby("cell", sort=False).agg(
        y=("y", "first"), group=("group", "first"), n_y=("y", "nunique"), n_g=("group", "nunique")
    )
    bad = first.index[first["n_y"] > 1].tolist()
    if bad:
        raise TrainingError(f"cells with spikes of both labels: {bad[:5]}; every cell has one label")
    bad = first.index[first["n_g"] > 1].tolist()
    if bad:
        raise TrainingError(f"cells in more than one group: {bad[:5]}; every cell belongs to one group")
    table = first[["y", "group"]].copy()
    table.insert(0, "label", [LABELS[int(v)] for v in table["y"]])
    table["n_spikes"] = frame["cell"].value_counts().reindex(table.index).to_numpy()
    table["n_detected"] = table["n_spikes"]
    table["source"] = ""
    table["channel"] = ""
    for c, values in (extra or {}).items():
        for k, v in values.items():
            table.loc[c, k] = v
    table.index = table.index.astype(str)
    table.index.name = "cell"
    return table


def _labels_array(y, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 0:
        y = np.full(n, y.item())
    if y.dtype.kind in "iub":
        out = y.astype(np.int64)
        if not np.all(np.isin(out, (SER, NSER))):
            raise TrainingError("integer labels must be 0 (serotonergic) or 1 (non-serotonergic)")
        return out
    cache: dict = {}
    out = np.empty(len(y), dtype=np.int64)
    for i, v in enumerate(y):
        if v not in cache:
            cache[v] = parse_label(v, where=f"labels[{i}]")
        out[i] = cache[v]
    return out


def day_of_cell(cell_id: str) -> str:
    """The recording day of an authors'-style cell id: the part before the first ``#``
    (``"A140313#073"`` -> ``"A140313"``)."""
    return str(cell_id).split("#", 1)[0]


def dataset_from_arrays(
    X,
    y,
    cell_ids,
    group=None,
    *,
    noise=None,
    noise_cell=None,
    trigger=None,
    segment=None,
    source: dict | None = None,
) -> SpikeDataset:
    """A dataset from numpy arrays.

    ``X`` (n, 160) pA; ``y`` one label per spike (0/1 or label strings, see :func:`parse_label`) or one
    label for all; ``cell_ids`` one per spike; ``group`` one per spike, None (each cell its own group) or
    ``"day"`` (the part of the cell id before ``#``). ``noise`` (m, 160) with ``noise_cell`` (m,) is an
    optional pool of spike-free noise stretches; without it the synthetic stream falls back to residual
    masks (raw - smoothed) of the snippets.
    """
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[1] != SNIPPET_LENGTH:
        raise TrainingError(f"snippets must have shape (n, {SNIPPET_LENGTH}), got {X.shape}")
    n = len(X)
    labels = _labels_array(y, n)
    cell = np.asarray(cell_ids).astype(str)
    if cell.ndim == 0:
        cell = np.full(n, str(cell))
    has_groups = group is not None
    if group is None:
        group_array = cell.copy()
    elif isinstance(group, str) and group == "day":
        group_array = np.array([day_of_cell(c) for c in cell], dtype=str)
    else:
        group_array = np.asarray(group).astype(str)
        if group_array.ndim == 0:
            group_array = np.full(n, str(group_array))
    if len(labels) != n or len(cell) != n or len(group_array) != n:
        raise TrainingError(
            f"X has {n} snippets but y/cell_ids/group have {len(labels)}/{len(cell)}/{len(group_array)}"
        )
    if noise is not None and noise_cell is None:
        raise TrainingError("noise masks need noise_cell (the cell whose recording each comes from)")
    source_info = {"kind": "arrays", "noise_source": "given" if noise is not None else "none"}
    source_info.update(source or {})
    return SpikeDataset(
        X=X,
        y=labels,
        cell=cell,
        group=group_array,
        cells=_cells_table(labels, cell, group_array),
        noise=noise,
        noise_cell=noise_cell,
        trigger=None if trigger is None else np.asarray(trigger, dtype=np.int64),
        segment=None if segment is None else np.asarray(segment, dtype=np.int64),
        has_groups=has_groups,
        source=source_info,
    )


def concat_datasets(datasets) -> SpikeDataset:
    """One dataset from several (cell ids must not repeat across them)."""
    datasets = [d for d in datasets if d is not None]
    if not datasets:
        raise TrainingError("no datasets to concatenate")
    seen: set = set()
    for d in datasets:
        duplicates = seen.intersection(d.cells.index)
        if duplicates:
            raise TrainingError(f"cell ids appear in more than one dataset: {sorted(duplicates)[:5]}")
        seen.update(d.cells.index)

    def concatenate_field(name):
        values = [getattr(d, name) for d in datasets]
        if any(v is None for v in values):
            return None
        return np.concatenate(values)

    with_noise = [d for d in datasets if d.noise is not None]
    noise = np.concatenate([d.noise for d in with_noise]) if with_noise else None
    noise_cell = np.concatenate([d.noise_cell for d in with_noise]) if with_noise else None
    kinds = sorted({d.source.get("noise_source", "none") for d in datasets})
    return SpikeDataset(
        X=np.concatenate([d.X for d in datasets]),
        y=np.concatenate([d.y for d in datasets]),
        cell=np.concatenate([d.cell for d in datasets]),
        group=np.concatenate([d.group for d in datasets]),
        cells=pd.concat([d.cells for d in datasets]),
        noise=noise,
        noise_cell=noise_cell,
        trigger=concatenate_field("trigger"),
        segment=concatenate_field("segment"),
        has_groups=any(d.has_groups for d in datasets),
        source={
            "kind": "concatenated",
            "parts": [d.source for d in datasets],
            "noise_source": kinds[0] if len(kinds) == 1 else "mixed",
        },
    )


# -------------------------------------------------------------------------------------- noise from traces
def spike_free_starts(n_samples: int, triggers, *, margin: int, length: int = SNIPPET_LENGTH) -> np.ndarray:
    """Start samples of non-overlapping windows of ``length`` samples that keep at least ``margin``
    samples away from every spike (a spike occupies ``[t - 40, t + 120)`` around its trigger ``t``).

    The spike-free gaps are tiled from their left edge; the result is sorted.
    """
    t = np.sort(np.asarray(triggers, dtype=np.int64))
    gap_starts = np.concatenate([[-(1 << 62)], t + NAFTER + margin])  # a gap starts after a spike's zone
    gap_ends = np.concatenate([t - NBEFORE - margin, [1 << 62]])  # and ends before the next one's
    gap_starts = np.maximum(gap_starts, 0)
    gap_ends = np.minimum(gap_ends, n_samples)
    starts = []
    for a, b in zip(gap_starts, gap_ends):
        n = (b - a) // length
        if n > 0:
            starts.append(a + length * np.arange(n, dtype=np.int64))
    return np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)


def noise_masks_from_traces(
    traces,
    triggers,
    *,
    n_masks: int = 64,
    margin: int = 200,
    rng: np.random.Generator | int | None = 0,
    length: int = SNIPPET_LENGTH,
) -> np.ndarray:
    """Cut up to ``n_masks`` mean-subtracted noise masks from the spike-free stretches of a recording.

    ``traces``: one 1-D array (pA) per segment; ``triggers``: the trigger samples of *all* detected
    spikes of each segment (before any cap). Windows keep ``margin`` samples away from every spike
    (see :func:`spike_free_starts`), contain no NaN, and are chosen at random (seeded) among the
    non-overlapping candidates. Returns (m, length) float32, m <= n_masks.
    """
    rng = np.random.default_rng(rng)
    candidates = []
    for s, (trace, trace_triggers) in enumerate(zip(traces, triggers)):
        starts = spike_free_starts(len(trace), trace_triggers, margin=margin, length=length)
        candidates.append(np.stack([np.full(len(starts), s), starts], axis=1))
    candidates = np.concatenate(candidates) if candidates else np.zeros((0, 2), dtype=np.int64)
    if not len(candidates):
        return np.zeros((0, length), dtype=np.float32)
    order = rng.permutation(len(candidates))
    out = []
    for s, starts in candidates[order]:
        w = np.asarray(traces[s][starts : starts + length], dtype=np.float64)
        if np.all(np.isfinite(w)):
            out.append(w - w.mean())
        if len(out) >= n_masks:
            break
    return np.asarray(out, dtype=np.float32).reshape(-1, length)


# -------------------------------------------------------------------------------------------- from a table
def read_label_table(table, *, folders: bool = False) -> pd.DataFrame:
    """Read and check a label table (CSV path or DataFrame) with columns ``file, label`` and optional
    ``channel, group``. Returns a DataFrame with absolute ``path``, parsed ``y``, and ``channel``/``group``
    (None where absent). Relative paths are relative to the table's folder. ``folders=True`` also accepts
    folders (of per-spike CSV files, as ``sero validate`` reads them) as ``file`` entries."""
    if isinstance(table, pd.DataFrame):
        frame, base = table.copy(), Path.cwd()
        where = "table"
    else:
        p = Path(table)
        if not p.is_file():
            raise TrainingError(f"label table {p} not found")
        try:
            frame = pd.read_csv(p, dtype=str, skipinitialspace=True, comment=None)
        except Exception as e:  # pandas raises many types
            raise TrainingError(f"cannot read label table {p} as CSV: {e}") from e
        base, where = p.resolve().parent, p.name
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = {"file", "label"} - set(frame.columns)
    if missing:
        raise TrainingError(
            f"label table {where} lacks column(s) {sorted(missing)}: it needs 'file' and 'label' "
            "(optional 'channel', 'group')"
        )
    if not len(frame):
        raise TrainingError(f"label table {where} has no rows")
    rows = []
    for i, r in frame.iterrows():
        row = f"{where} row {i + 2}"  # +1 header, +1 one-based
        f = str(r["file"]).strip() if pd.notna(r["file"]) else ""
        if not f:
            raise TrainingError(f"empty 'file' in {row}")
        path = Path(os.path.expanduser(f))
        if not path.is_absolute():
            path = base / path
        channel = r.get("channel")
        channel = None if channel is None or pd.isna(channel) or str(channel).strip() == "" else str(channel).strip()
        g = r.get("group")
        g = None if g is None or pd.isna(g) or str(g).strip() == "" else str(g).strip()
        rows.append(
            {
                "file": f,
                "path": path,
                "label": r["label"],
                "y": parse_label(r["label"], where=f"{row} (file {f})"),
                "channel": channel,
                "group": g,
            }
        )
    out = pd.DataFrame(rows)
    missing = [str(p) for p in out["path"] if not (Path(p).is_file() or (folders and Path(p).is_dir()))]
    if missing:
        raise TrainingError(f"{len(missing)} file(s) of the label table not found, e.g. {missing[0]}")
    return out


_READ_KWARGS = ("allow_low_rate", "allow_any_unit")


def dataset_from_table(
    table,
    *,
    threshold: float = DEFAULT_THRESHOLD_PA,
    max_per_cell: int | None = None,
    noise_per_cell: int = 64,
    noise_margin_ms: float = 5.0,
    seed: int = 0,
    progress_bar: bool = False,
    snippet_kwargs: dict | None = None,
    source_name: str | None = None,
) -> SpikeDataset:
    """Build a dataset from a label table of ABF recordings.

    Every row's file is read once with :func:`spikeinterface_sero.io.read_abf` and cut into snippets with
    :func:`spikeinterface_sero.snippets.recording_to_snippets` (exactly what ``abf_to_snippets`` does, with
    ``threshold`` and ``snippet_kwargs``: detection settings, ``allow_low_rate``, ``allow_any_unit``);
    each spike keeps its cell id. A file with several current channels gives one cell per channel, all with
    the row's label (name the channel in the table to pick one). ``noise_per_cell`` mean-subtracted noise
    masks are cut from the spike-free stretches of each cell's trace (at least ``noise_margin_ms`` away
    from every detected spike) for the synthetic stream. ``max_per_cell`` caps spikes per cell (seeded,
    see :func:`cap_per_cell`). A row's ``group`` (day, slice, animal) is kept for the split; without a
    group column each cell is its own group. ``source_name`` is how the table is named in the dataset's
    ``source`` (and so in model cards); default: its path.

    A :class:`SpikeDataset` given as ``table`` (e.g. from :func:`dataset_from_csv_folders`) is used as it is,
    capped at ``max_per_cell``: so ``train_from_table`` and ``evaluate_table`` run on CSV folders too.
    """
    if isinstance(table, SpikeDataset):  # already read: only the cap applies
        return table if max_per_cell is None else cap_per_cell(table, max_per_cell, seed=seed)
    kwargs = dict(snippet_kwargs or {})
    read_kwargs = {k: kwargs.pop(k) for k in _READ_KWARGS if k in kwargs}
    rows = read_label_table(table)
    has_groups = bool(rows["group"].notna().any())
    if has_groups and rows["group"].isna().any():
        bad = rows.index[rows["group"].isna()].tolist()
        raise TrainingError(
            f"'group' is empty in table row(s) {[b + 2 for b in bad][:5]}: fill it in every row or in none"
        )
    margin = int(round(noise_margin_ms * SAMPLING_FREQUENCY / 1000.0))
    X_parts, y_parts, cell_parts, group_parts, trigger_parts, segment_parts = [], [], [], [], [], []
    extra, noise_parts, noise_cells = {}, [], []
    seen_cells: dict[str, int] = {}
    iterator = rows.iterrows()
    if progress_bar:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=len(rows), desc="reading recordings", unit="file")
    for i, r in iterator:
        where = f"{r['file']} (table row {i + 2})"
        recording = read_abf(r["path"], channel=r["channel"], **read_kwargs)
        snippets = recording_to_snippets(recording, threshold=threshold, **kwargs)
        if not len(snippets):
            raise TrainingError(
                f"no spikes detected in {where} at threshold {threshold} pA: check the channel and the "
                "threshold, or remove the row"
            )
        w = np.asarray(snippets.waveforms, dtype=np.float32).reshape(len(snippets), -1)
        cells = np.asarray(snippets.cell_ids).astype(str)
        units = np.asarray(snippets.unit_ids).astype(str)
        for c in pd.unique(cells):
            if c in seen_cells:
                raise TrainingError(
                    f"cell {c} comes from table rows {seen_cells[c] + 2} and {i + 2}: every (file, channel) "
                    "must appear once, and files in different folders need different names"
                )
            seen_cells[c] = i
            extra[c] = {
                "source": str(r["file"]),
                "channel": str(units[cells == c][0]),
                "n_detected": int(snippets.n_detected.get(c, (cells == c).sum())),
            }
        X_parts.append(w)
        y_parts.append(np.full(len(w), r["y"], dtype=np.int64))
        cell_parts.append(cells)
        group_parts.append(np.full(len(w), r["group"]).astype(str) if has_groups else cells.copy())
        trigger_parts.append(np.asarray(snippets.trigger_samples, dtype=np.int64))
        segment_parts.append(np.asarray(snippets.segment_index, dtype=np.int64))
        if noise_per_cell > 0:
            all_triggers = (
                snippets.all_trigger_samples if snippets.all_trigger_samples is not None else snippets.trigger_samples
            )
            all_segments = (
                snippets.all_segment_index if snippets.all_segment_index is not None else snippets.segment_index
            )
            all_units = snippets.all_unit_ids if snippets.all_unit_ids is not None else snippets.unit_ids
            all_triggers, all_segments, all_units = (
                np.asarray(all_triggers),
                np.asarray(all_segments),
                np.asarray(all_units).astype(str),
            )
            for c in pd.unique(cells):
                channel = units[cells == c][0]
                channel_id = next(x for x in recording.channel_ids if str(x) == channel)
                traces = [
                    recording.get_traces(segment_index=s, channel_ids=[channel_id], return_in_uV=True)[:, 0]
                    for s in range(recording.get_num_segments())
                ]
                selected = all_units == channel
                m = noise_masks_from_traces(
                    traces,
                    [all_triggers[selected & (all_segments == s)] for s in range(len(traces))],
                    n_masks=noise_per_cell,
                    margin=margin,
                    rng=np.random.default_rng([seed, i, len(noise_parts)]),
                )
                noise_parts.append(m)
                noise_cells.append(np.full(len(m), c))
    X = np.concatenate(X_parts)
    y = np.concatenate(y_parts)
    cell = np.concatenate(cell_parts)
    group = np.concatenate(group_parts)
    noise = np.concatenate(noise_parts) if noise_parts else None
    cell_table = _cells_table(y, cell, group, extra)
    n_noise_cells = 0 if noise is None else len(np.unique(np.concatenate(noise_cells)))
    dataset = SpikeDataset(
        X=X,
        y=y,
        cell=cell,
        group=group,
        cells=cell_table,
        noise=noise,
        noise_cell=np.concatenate(noise_cells) if noise_parts else None,
        trigger=np.concatenate(trigger_parts),
        segment=np.concatenate(segment_parts),
        has_groups=has_groups,
        source={
            "kind": "table",
            "table": source_name or (str(table) if not isinstance(table, pd.DataFrame) else "<DataFrame>"),
            "n_files": int(len(rows)),
            "threshold_pA": float(threshold),
            "snippet_kwargs": {
                k: v for k, v in (snippet_kwargs or {}).items() if isinstance(v, (int, float, str, bool, type(None)))
            },
            "noise_source": "recording" if noise is not None and len(noise) else "none",
            "noise_per_cell": int(noise_per_cell),
            "noise_margin_ms": float(noise_margin_ms),
            "cells_with_noise": int(n_noise_cells),
        },
    )
    if noise is not None and not len(noise):
        dataset.noise, dataset.noise_cell = None, None
    if max_per_cell is not None:
        dataset = cap_per_cell(dataset, max_per_cell, seed=seed)
    return dataset


# -------------------------------------------------------------------------------- the authors' CSV folders
def _find_sub(root: Path, label: str) -> Path | None:
    """The class folder of ``label`` below ``root`` (the names of :func:`~spikeinterface_sero.snippet_folders.
    folder_class`, without a type)."""
    for p in sorted(root.iterdir()):
        if p.is_dir() and folder_class(p.name) == (label, ""):
            return p
    return None


def dataset_from_csv_folders(
    root=None, *, ser=None, nser=None, group=None, max_per_cell: int | None = None, seed: int = 0
) -> SpikeDataset:
    """A dataset from the authors' per-spike CSV files (one ``<cell>_trigger_<sample>.csv`` per spike).

    Give ``root`` holding ``SER`` and ``NSER`` subfolders (also ``serotonergic`` /
    ``non_serotonergic``, any case), or the two folders as ``ser=`` and ``nser=``. ``group="day"`` groups
    cells by the part of the cell id before ``#`` (the authors' ids are ``A<yymmdd>#<file>``). These files
    hold snippets only, so the synthetic stream will fall back to residual noise masks.
    """
    if root is not None:
        root = Path(root)
        if not root.is_dir():
            raise TrainingError(f"{root} is not a folder")
        ser = ser or _find_sub(root, LABELS[SER])
        nser = nser or _find_sub(root, LABELS[NSER])
    if ser is None or nser is None:
        raise TrainingError(f"need a SER and an NSER folder of per-spike CSV files (found SER={ser}, NSER={nser})")
    parts = []
    for folder, y in ((Path(ser), SER), (Path(nser), NSER)):
        w, cells, triggers = read_snippet_csv_folder(folder)
        parts.append(
            dataset_from_arrays(
                w,
                y,
                cells,
                group=group,
                trigger=triggers,
                source={"kind": "csv_folders", "folder": str(folder)},
            )
        )
    dataset = concat_datasets(parts)
    dataset.source = {"kind": "csv_folders", "ser": str(ser), "nser": str(nser), "noise_source": "none"}
    if max_per_cell is not None:
        dataset = cap_per_cell(dataset, max_per_cell, seed=seed)
    return dataset


# -------------------------------------------------------------------------------------- cap and balance
def cap_per_cell(dataset: SpikeDataset, max_spikes: int = 700, *, seed: int = 0) -> SpikeDataset:
    """Keep at most ``max_spikes`` spikes of every cell, chosen at random (seeded), in their original
    order. The paper's data had at most 700 spikes per cell."""
    if max_spikes is None:
        return dataset
    if int(max_spikes) < 1:
        raise TrainingError(f"max_spikes per cell must be >= 1, got {max_spikes}")
    rng = np.random.default_rng(seed)
    keep = []
    for c in dataset.cells.index:
        indices = np.flatnonzero(dataset.cell == c)
        if len(indices) > max_spikes:
            indices = np.sort(rng.choice(indices, size=int(max_spikes), replace=False))
        keep.append(indices)
    keep = np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)
    out = dataset.subset(keep)
    out.source = dict(dataset.source, max_per_cell=int(max_spikes))
    return out


def balance_classes(dataset: SpikeDataset, *, seed: int = 0) -> SpikeDataset:
    """Subsample the majority class to the minority class's spike count (seeded, uniform over the
    majority's spikes, original order kept), as the published version did (SER down to the NSER
    count)."""
    counts = np.bincount(dataset.y, minlength=2)
    if counts.min() == 0:
        raise TrainingError(
            f"cannot balance: {LABELS[int(np.argmin(counts))]} has no spikes ({counts[0]} SER, {counts[1]} NSER)"
        )
    major = int(np.argmax(counts))
    n = int(counts.min())
    rng = np.random.default_rng(seed)
    indices_major = np.flatnonzero(dataset.y == major)
    chosen = rng.choice(indices_major, size=n, replace=False)
    keep = np.sort(np.concatenate([np.flatnonzero(dataset.y != major), chosen]))
    out = dataset.subset(keep)
    out.source = dict(dataset.source, balanced=True)
    return out
