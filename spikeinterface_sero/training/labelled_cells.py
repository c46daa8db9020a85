"""The labelled cells of a lab, read once for ``sero validate`` and ``sero adapt`` (docs/validate.md, docs/adapt.md).

A label table (``file, label`` and optional ``channel, group`` or ``day``, ``type``) whose files are .abf files
or folders of per-spike CSV files, or a folder of per-spike CSV files laid out by class (``SER/``, ``NSER/``
...). :func:`read_labelled_cells` gives one row per cell; :func:`dataset_from_labelled_cells` turns them into
the :class:`~spikeinterface_sero.training.data.SpikeDataset` of an adaptation: an .abf file's cells through the
detection (as ``sero train``), a CSV cell's spikes as they are (they are the snippets).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..arguments import check_path
from ..constants import LABELS
from ..errors import DataError
from ..snippet_folders import cell_day, class_folders, read_snippet_folder
from ..snippet_formats import Snippets
from .data import SpikeDataset, cap_per_cell, concat_datasets, dataset_from_arrays, dataset_from_table, read_label_table

__all__ = ["cells_of_analyzer", "dataset_from_labelled_cells", "dataset_from_labels", "read_labelled_cells"]


# ------------------------------------------------------------------------------------------ the labelled cells
def read_labelled_cells(labels, *, purpose: str = "validating") -> pd.DataFrame:
    """The labelled cells of a rig, one row per cell, read and checked before any work.

    Parameters
    ----------
    labels : str, pathlib.Path or pandas.DataFrame
        A table (a CSV file or a DataFrame) with columns ``file, label`` and optional ``channel``, ``group``
        (or ``day``) and ``type`` (typical / atypical); a ``file`` is an .abf file or a folder of per-spike
        CSV files, whose cells all take the row's label (``channel`` then names one of them by its id). Or a
        folder laid out by class (:func:`~spikeinterface_sero.snippet_folders.class_folders`: ``SER/``,
        ``NSER/``, ``SER_atypical/`` ...), whose folder names give the labels and types. Or cells already read
        (a DataFrame with a ``snippets`` column: this function's or :func:`cells_of_analyzer`'s).
    purpose : str, default: "validating"
        What the cells are for, in the message when they hold one class only (``"adapting"`` for ``sero adapt``).

    Returns
    -------
    pandas.DataFrame
        ``path, file, channel, group, label, type, snippets``: ``channel`` is the cell id of a CSV cell;
        ``group`` the table's, else the recording day the cell's name gives
        (:func:`~spikeinterface_sero.snippet_folders.cell_day`), else ""; ``snippets`` a CSV cell's
        :class:`~spikeinterface_sero.snippet_formats.Snippets` (None for a cell of an .abf file).
    """
    if isinstance(labels, pd.DataFrame) and "snippets" in labels.columns:  # cells already read
        out = labels.reset_index(drop=True)
    elif isinstance(labels, pd.DataFrame):
        out = _table_cells(labels.copy(), Path.cwd())
    else:
        path = check_path(labels, "labels")
        if path.is_dir():
            out = _cells_by_class(path)
        elif path.is_file():
            out = _table_cells(pd.read_csv(path, dtype=str), path.resolve().parent)
        else:
            raise DataError(
                f"the labelled cells {path} do not exist: give a label table (CSV) or a folder laid out by class "
                "(SER/, NSER/ ... of per-spike CSV files)."
            )
    if out["label"].nunique() < 2:
        raise DataError(f"{purpose} needs labelled cells of both classes (serotonergic and non_serotonergic).")
    return out


def _table_cells(frame: pd.DataFrame, base: Path) -> pd.DataFrame:
    """The cells of a label table (files relative to ``base``): one row per .abf file, one per cell of a folder."""
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    if "group" not in frame.columns and "day" in frame.columns:
        frame = frame.rename(columns={"day": "group"})
    names = frame["file"].astype(str).tolist() if "file" in frame else []
    if "file" in frame:  # relative to the table's folder
        frame["file"] = [str(base / Path(name).expanduser()) for name in names]
    checked = read_label_table(frame, folders=True)
    types = (
        frame["type"].fillna("").astype(str).str.strip().str.lower()
        if "type" in frame
        else pd.Series([""] * len(frame))
    )
    bad = sorted(set(types) - {"", "typical", "atypical", "nan"})
    if bad:
        raise DataError(f"the label table's 'type' column holds {bad}; use typical or atypical (or leave it empty).")
    rows, folders = [], {}
    for (_, row), name, kind in zip(checked.iterrows(), names, types):
        cell = {
            "path": str(row["path"]),
            "file": name,
            "channel": None if pd.isna(row["channel"]) else str(row["channel"]),
            "group": "" if pd.isna(row["group"]) else str(row["group"]),
            "label": LABELS[int(row["y"])],
            "type": kind if kind in ("typical", "atypical") else "",
        }
        if not Path(row["path"]).is_dir():
            rows.append(cell | {"group": cell["group"] or cell_day(Path(name).stem), "snippets": None})
            continue
        if row["path"] not in folders:
            folders[row["path"]] = read_snippet_folder(row["path"])
        rows.extend(_folder_cells(folders[row["path"]], cell))
    return pd.DataFrame(rows)


def _folder_cells(snippets, row: dict) -> list[dict]:
    """The cells of one folder's snippets, each with ``row``'s label, type and group (else the day of its
    name); ``row["channel"]`` picks one cell by its id."""
    cells, ids = snippets.cells, np.asarray(snippets.cell_ids)
    if row["channel"] is not None:
        if row["channel"] not in cells:
            raise DataError(
                f"{snippets.source} holds no cell {row['channel']!r} (it holds {', '.join(cells[:5])}"
                f"{' ...' if len(cells) > 5 else ''}); for a folder, the channel column names one of its cells."
            )
        cells = [row["channel"]]
    return [
        row | {"channel": cell, "group": row["group"] or cell_day(cell), "snippets": snippets.select(ids == cell)}
        for cell in cells
    ]


def _cells_by_class(root: Path) -> pd.DataFrame:
    """The cells of a folder laid out by class, labelled by their class folder's name."""
    rows, seen = [], {}
    for folder, label, kind in class_folders(root):
        snippets = read_snippet_folder(folder)
        for row in _folder_cells(
            snippets, dict(path=str(folder), file=str(folder.relative_to(root)), channel=None, group="")
        ):
            if row["channel"] in seen:
                raise DataError(
                    f"the cell {row['channel']} has per-spike files in {seen[row['channel']]} and in {folder}: "
                    "keep each cell's files in one folder (of one class)."
                )
            seen[row["channel"]] = folder
            rows.append(row | {"label": label, "type": kind})
    return pd.DataFrame(rows)


def cells_of_analyzer(analyzer, labels: pd.DataFrame) -> pd.DataFrame:
    """The labelled units of one SortingAnalyzer as labelled cells: each with the snippets its ``serotonergic``
    extension gave the model (its ``"waveforms"`` output: on the unit's channel, in the paper's format).

    Parameters
    ----------
    analyzer : SortingAnalyzer
        With the ``serotonergic`` extension computed (``compute_serotonergic``).
    labels : pandas.DataFrame
        ``unit_id, label`` and optional ``type``: a person's labels
        (:func:`~spikeinterface_sero.curation.read_curation` of a SpikeInterface curation file).

    Returns
    -------
    pandas.DataFrame
        The rows of :func:`read_labelled_cells`, one per labelled unit (``channel`` its unit id, no day: one
        analyzer is one recording).
    """
    extension = analyzer.get_extension("serotonergic") if analyzer.has_extension("serotonergic") else None
    if extension is None:
        raise DataError(
            "the analyzer has no serotonergic extension: compute it first (compute_serotonergic), so its units' "
            "snippets are the ones the model reads."
        )
    waveforms, spikes = np.asarray(extension.get_data("waveforms")), extension.get_data("spikes")
    by_text = {str(u): u for u in analyzer.unit_ids}
    missing = sorted(str(u) for u in labels["unit_id"] if str(u) not in by_text)
    if missing:
        raise DataError(f"the curation labels units {missing[:5]} that the analyzer does not hold.")
    rows, unit_text = [], spikes["unit_id"].astype(str).to_numpy()
    for unit, label, kind in zip(
        labels["unit_id"].astype(str), labels["label"], labels.get("type", pd.Series([""] * len(labels))), strict=True
    ):
        mine = unit_text == unit
        snippets = Snippets(
            waveforms=waveforms[mine],
            trigger_samples=spikes["sample_index"].to_numpy(dtype=np.int64)[mine],
            segment_index=spikes["segment_index"].to_numpy(dtype=np.int64)[mine],
            unit_ids=np.full(int(mine.sum()), unit),
            cell_ids=np.full(int(mine.sum()), unit),
            source="analyzer",
        )
        row = dict(path="", file=f"unit {unit}", channel=unit, group="", label=label, type=kind or "")
        rows.append(row | {"snippets": snippets})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ their dataset
def dataset_from_labels(
    labels, *, max_per_cell: int | None = None, seed: int = 0, purpose: str = "adapting"
) -> SpikeDataset:
    """The spike dataset of a lab's labelled cells, in any form :func:`read_labelled_cells` reads.

    Parameters
    ----------
    labels : str, pathlib.Path, pandas.DataFrame or SpikeDataset
        The labelled cells (:func:`read_labelled_cells`), or a dataset already read (used as it is).
    max_per_cell : int or None, default: None
        Spikes kept per cell (seeded, :func:`~spikeinterface_sero.training.data.cap_per_cell`).
    seed : int, default: 0
        Seed of the noise masks and of the cap.
    purpose : str, default: "adapting"
        What the cells are for, in the messages.

    Returns
    -------
    SpikeDataset
    """
    if isinstance(labels, SpikeDataset):
        return labels if max_per_cell is None else cap_per_cell(labels, max_per_cell, seed=seed)
    return dataset_from_labelled_cells(
        read_labelled_cells(labels, purpose=purpose), max_per_cell=max_per_cell, seed=seed
    )


def dataset_from_labelled_cells(cells: pd.DataFrame, *, max_per_cell: int | None = None, seed: int = 0) -> SpikeDataset:
    """The spike dataset of the cells :func:`read_labelled_cells` gives.

    The cells of .abf files go through the detection once
    (:func:`~spikeinterface_sero.training.data.dataset_from_table`, with its noise masks of the spike-free
    stretches); a cell of a CSV folder gives its spikes as they are. The group of a cell is its day (the
    table's ``group`` or ``day``, else the date its name gives); when some cells have a day, a cell without
    one is a group of its own (an .abf file's cells: its recording), and when none has, every cell is. The
    cells come in the order of their ids, so the same cells give the same dataset (and the same capped spikes)
    whether they come from .abf files or from CSV folders.

    Parameters
    ----------
    cells : pandas.DataFrame
        The rows of :func:`read_labelled_cells`.
    max_per_cell : int or None, default: None
        Spikes kept per cell (seeded).
    seed : int, default: 0
        Seed of the noise masks and of the cap.

    Returns
    -------
    SpikeDataset
    """
    cells = cells.reset_index(drop=True)
    from_folders = np.array([s is not None for s in cells["snippets"]], dtype=bool)
    _check_unique(cells[from_folders])
    with_days = bool((cells["group"].astype(str) != "").any())
    parts = []
    if (~from_folders).any():
        parts.append(_recordings_part(cells[~from_folders].reset_index(drop=True), with_days, seed))
    if from_folders.any():
        parts.append(_folders_part(cells[from_folders], with_days))
    dataset = parts[0] if len(parts) == 1 else concat_datasets(parts)
    dataset.cells = dataset.cells.sort_index()  # one order of cells (the cap's draws follow it), whatever the form
    dataset = dataset.subset(np.argsort(dataset.cell, kind="stable"))
    return dataset if max_per_cell is None else cap_per_cell(dataset, max_per_cell, seed=seed)


def _check_unique(cells: pd.DataFrame) -> None:
    """Each cell of the CSV folders once: the same cell in two rows would merge two cells' spikes."""
    seen: dict[str, str] = {}
    for cell, file in zip(cells["channel"].astype(str), cells["file"].astype(str), strict=True):
        if cell in seen:
            raise DataError(
                f"the cell {cell} is labelled twice (from {seen[cell]} and {file}): list each cell once "
                "(a folder's row labels all its cells; a channel column picks one)."
            )
        seen[cell] = file


def _recordings_part(rows: pd.DataFrame, with_days: bool, seed: int) -> SpikeDataset:
    """The cells of the .abf files, detected as ``sero train`` detects them (one read per row)."""
    table = pd.DataFrame({"file": rows["path"], "label": rows["label"], "channel": rows["channel"]})
    if with_days:  # a recording without a day is a group of its own
        table["group"] = [g or f"recording {Path(f).name}" for g, f in zip(rows["group"], rows["file"], strict=True)]
    dataset = dataset_from_table(table, seed=seed, source_name="labelled cells")
    names = dict(zip(rows["path"].astype(str), rows["file"].astype(str), strict=True))
    dataset.cells["source"] = [names.get(s, s) for s in dataset.cells["source"]]
    return dataset


def _folders_part(rows: pd.DataFrame, with_days: bool) -> SpikeDataset:
    """The cells of the CSV folders: their spikes as they are (they are the snippets, no detection)."""
    snippets = list(rows["snippets"])
    X = np.concatenate([np.asarray(s.waveforms, dtype=np.float32).reshape(len(s), -1) for s in snippets])
    sizes = [len(s) for s in snippets]
    cell = np.repeat(rows["channel"].astype(str).to_numpy(), sizes)
    group = None
    if with_days:
        group = np.repeat([g or c for g, c in zip(rows["group"], rows["channel"], strict=True)], sizes)
    dataset = dataset_from_arrays(
        X,
        np.repeat(rows["label"].to_numpy(), sizes),
        cell,
        group,
        trigger=np.concatenate([np.asarray(s.trigger_samples) for s in snippets]),
        segment=np.concatenate([np.asarray(s.segment_index) for s in snippets]),
        source={"kind": "csv_folders", "folders": sorted(set(rows["path"].astype(str)))},
    )
    dataset.cells["source"] = rows.set_index(rows["channel"].astype(str))["file"].reindex(dataset.cells.index)
    dataset.cells["channel"] = dataset.cells.index
    return dataset
