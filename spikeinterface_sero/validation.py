"""Validate a model on the user's rig: labelled cells through the extension, honest figures, a conformal fit.

``validate`` classifies each labelled cell with the ``serotonergic`` extension, measures the figures a person
needs before trusting the model there, fits the conformal predictor and the rig's fingerprint, writes an
HTML page (+ PNG + JSON) and records the rig in the model folder. How to read it: ``docs/validate.md``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .adapt import is_paper_format
from .analyzers import abf_to_analyzer, main_channel_waveforms
from .conformal import RIG_VALIDATION_FORMAT, fit_conformal, guarantee, minimum_cells, prediction_sets
from .constants import DEFAULT_CONFORMAL_LEVEL, DEFAULT_MIN_SPIKES, LABELS
from .curation import read_curation
from .decision import QUALITY_OK, reliable_domain
from .errors import DataError, ModelError, ParameterError, SeroError
from .extension import analyzer_from_snippets
from .files import atomic_path, check_output_path
from .fingerprint import VALIDATED, cell_fingerprints, fingerprint_distance, fit_fingerprint, mean_normalised_shapes
from .model import demo_model_folder
from .sessions import judge_session, session_status
from .snippet_folders import read_snippet_folder
from .snippet_formats import Snippets
from .training.evaluate import calibration as calibration_figures
from .training.evaluate import cell_intervals
from .training.labelled_cells import read_labelled_cells
from .validation_page import page_html, write_reliability_png

__all__ = [
    "ValidationResult",
    "read_labelled_cells",
    "classify_labelled_cells",
    "classify_curated_units",
    "validate",
    "record_rig",
]

SER, NSER = LABELS
_TARGET_HALF_WIDTH = 0.05  # +-5 points
_Z95 = 1.959963984540054
_INFO, _CARD = "model_info.json", "README.md"


@dataclass
class ValidationResult:
    """What :func:`validate` measured and wrote.

    Attributes
    ----------
    cells : pandas.DataFrame
        One row per labelled cell: the truth, the model's call, the out-of-fold set and reliability, the
        fingerprint measures.
    figures : dict
        The figures of the page (JSON values).
    rig : dict
        The rig entry recorded in the model folder (conformal fit, fingerprint, figures).
    model_folder : pathlib.Path
        Where the rig was recorded (the original folder, or its copy).
    files : dict
        The page, JSON, PNG and cell table written.
    """

    cells: pd.DataFrame
    figures: dict
    rig: dict
    model_folder: Path
    files: dict

    @property
    def rig_text(self) -> str:
        """The guarantee of the recorded rig, in words."""
        return guarantee(self.rig)


def _model_waveforms(analyzer, ext) -> tuple[np.ndarray, np.ndarray]:
    """The snippets the model saw and each one's unit position: the extension's own when it serves them,
    else the paper-format analyzer's main-channel waveforms (flipped for a positive polarity)."""
    try:
        waveforms = np.asarray(ext.get_data("waveforms"))
        spikes = ext.get_data("spikes")
        positions = {unit: i for i, unit in enumerate(analyzer.unit_ids)}
        return waveforms, np.array([positions[u] for u in spikes["unit_id"]], dtype=np.int64)
    except SeroError:  # an extension that does not serve them: they are the analyzer's (paper format)
        pass
    if not is_paper_format(analyzer):
        raise DataError(
            "validating cells of an analyzer that is not in the paper's format (pA, 40 kHz, 160 samples) "
            "needs the extension's 'waveforms' output; recompute the serotonergic extension."
        )
    spikes = analyzer.sorting.to_spike_vector()[analyzer.get_extension("random_spikes").get_data()]
    waveforms = main_channel_waveforms(analyzer)
    if ext.get_data("provenance").get("polarity") == "positive":
        waveforms = -waveforms
    return waveforms, spikes["unit_index"].astype(np.int64)


def _unit_rows(analyzer, ext, unit_ids) -> list[dict]:
    """Per unit of ``unit_ids``: the extension's call, P(SER), checks, and the fingerprint measures and shape."""
    units = ext.get_data()
    waveforms, unit_index = _model_waveforms(analyzer, ext)
    n = len(analyzer.unit_ids)
    rates = units.reindex(list(analyzer.unit_ids))["firing_rate_hz"].to_numpy(dtype=float)
    measures = cell_fingerprints(waveforms, unit_index, n, firing_rate_hz=rates)
    shapes = mean_normalised_shapes(waveforms, unit_index, n)
    rows = []
    for unit_id in unit_ids:
        position = list(analyzer.unit_ids).index(unit_id)
        unit = units.loc[unit_id]
        out = {key: unit[key] for key in ("sero_label", "sero_probability", "member_spread", "n_spikes")}
        out.update(sero_quality=unit["sero_quality"], sero_domain=unit["sero_domain"], sero_type=unit["sero_type"])
        out.update(measures.iloc[position].to_dict())
        out["shape"] = shapes[position]
        rows.append(out)
    return rows


def _compute(analyzer, model_folder, trust: bool, seed: int):
    return analyzer.compute("serotonergic", model_folder=model_folder, trust_model=trust, seed=seed, progress_bar=False)


def _cell_analyzer(row, seed: int):
    """The analyzer of one labelled cell: its snippets' (a CSV cell, the path ``sero classify FOLDER`` takes)
    or its .abf file's."""
    channel = None if pd.isna(row["channel"]) else str(row["channel"])
    snippets = row.get("snippets")
    if not isinstance(snippets, Snippets) and Path(row["path"]).is_dir():  # cells listed without their snippets
        snippets = read_snippet_folder(row["path"])
        if channel is not None:  # else every cell of the folder, refused below unless it is one
            snippets = snippets.select(np.asarray(snippets.cell_ids) == channel)
    if isinstance(snippets, Snippets):
        return analyzer_from_snippets(snippets, seed=seed)
    return abf_to_analyzer(row["path"], channel=channel, seed=seed)


def _one_cell(row, model_folder, trust: bool, seed: int) -> dict:
    analyzer = _cell_analyzer(row, seed)
    if len(analyzer.unit_ids) != 1:
        raise DataError(
            f"{row['file']} holds {len(analyzer.unit_ids)} cells: give the labelled cell's channel in the table's "
            "channel column."
        )
    return _unit_rows(analyzer, _compute(analyzer, model_folder, trust, seed), analyzer.unit_ids)[0]


def classify_curated_units(analyzer, labels: pd.DataFrame, model_folder=None, *, trust: bool = False, seed: int = 0):
    """The labelled units of one analyzer (``labels``: :func:`~spikeinterface_sero.curation.read_curation`) through the extension."""
    by_text = {str(u): u for u in analyzer.unit_ids}
    missing = sorted(str(u) for u in labels["unit_id"] if str(u) not in by_text)
    if missing:
        raise DataError(f"the curation labels units {missing[:5]} that the analyzer does not hold.")
    unit_ids = [by_text[str(u)] for u in labels["unit_id"]]
    rows = _unit_rows(analyzer, _compute(analyzer, model_folder, trust, seed), unit_ids)
    cells = pd.DataFrame(
        {
            "path": "",
            "file": [str(u) for u in unit_ids],
            "channel": None,
            "group": "",
            "label": labels["label"].to_list(),
        }
        | {"type": labels["type"].fillna("").to_list()}
    )
    return pd.concat([cells, pd.DataFrame(rows)], axis=1)


def classify_labelled_cells(
    cells: pd.DataFrame, model_folder=None, *, trust: bool = False, seed: int = 0, progress=None
):
    """Each labelled cell through the ``serotonergic`` extension: its call, P(SER), quality and fingerprint.

    ``progress`` (a callable taking ``(done, total)``) is told after each cell."""
    rows = []
    for done, (_, row) in enumerate(cells.iterrows(), start=1):
        rows.append(_one_cell(row, model_folder, trust, seed))
        if progress is not None:
            progress(done, len(cells))
    cells = cells.drop(columns=["snippets"], errors="ignore").reset_index(drop=True)
    return pd.concat([cells, pd.DataFrame(rows)], axis=1)


# ------------------------------------------------------------------------------------------- cross-fitting
def _usable(cells: pd.DataFrame, min_spikes: int) -> np.ndarray:
    """Cells a set would be given to: passing the checks, like the training data, with enough spikes."""
    return (
        (cells["sero_quality"] == QUALITY_OK)
        & cells["sero_domain"].map(reliable_domain).astype(bool)
        & (cells["n_spikes"] >= min_spikes)
        & cells["sero_label"].isin(LABELS)
    ).to_numpy()


def _folds(cells: pd.DataFrame, level: float) -> tuple[list[np.ndarray], str]:
    """Held-out folds: whole days when every fold keeps enough cells per class, else one cell at a time."""
    groups = cells["group"].to_numpy()
    days = [g for g in pd.unique(groups) if g]
    need = minimum_cells(level)
    if len(days) >= 3 and (groups != "").all():
        folds = [np.flatnonzero(groups == day) for day in days]
        if all(
            ((cells["label"].to_numpy()[np.setdiff1d(np.arange(len(cells)), f)] == y).sum() >= need)
            for f in folds
            for y in LABELS
        ):
            return folds, f"leave one day out ({len(days)} days)"
    return [np.array([i]) for i in range(len(cells))], "leave one cell out"


def _shapes(cells: pd.DataFrame) -> np.ndarray | None:
    """(n_cells, 160) the cells' mean normalised shapes, None when the table does not hold them."""
    return np.vstack(cells["shape"].to_list()) if "shape" in cells and len(cells) else None


def cross_fit(cells: pd.DataFrame, *, level: float, min_spikes: int) -> tuple[pd.DataFrame, str]:
    """Out-of-fold conformal sets, rig matches and reliability: each fold's cells judged by a fit on the others."""
    usable = _usable(cells, min_spikes)
    out = cells.copy()
    out["usable"], out["oof_set"], out["oof_rig"], out["oof_rig_distance"] = usable, "not_calibrated", "", np.nan
    out["oof_session"] = ""
    folds, how = _folds(out, level)
    for fold in folds:
        train = np.setdiff1d(np.flatnonzero(usable), fold)
        if len(train) < 2 or len(set(out["label"].iloc[train])) < 2:
            continue
        fit = fit_conformal(out["sero_probability"].iloc[train], out["label"].iloc[train], level=level)
        fingerprint = fit_fingerprint(out.iloc[train], _shapes(out.iloc[train]))
        distance = fingerprint_distance(out.iloc[fold], fingerprint, _shapes(out.iloc[fold]))
        status = np.where(distance <= 0.0, VALIDATED, "unlike_validated_rigs").astype(object)
        if how.startswith("leave one day out"):  # a held-out day is a session: judged as classify judges one
            session = judge_session(distance[usable[fold]], {"rigs": [{"fingerprint": fingerprint}]})
            out.loc[out.index[fold], "oof_session"] = (
                "" if session is None else ("like" if session["like"] else "unlike")
            )
            status = session_status(status, session)
        out.loc[out.index[fold], "oof_rig_distance"] = distance
        out.loc[out.index[fold], "oof_rig"] = status
        out.loc[out.index[fold], "oof_set"] = prediction_sets(out["sero_probability"].iloc[fold], fit)
    out["oof_reliable"] = (
        usable & (out["oof_rig"] == VALIDATED).to_numpy() & (out["oof_set"] == out["sero_label"]).to_numpy()
    )
    return out, how


# --------------------------------------------------------------------------------------------------- figures
def _exact(successes: int, trials: int) -> list | None:
    """Clopper-Pearson 95 % interval (scipy), None without trials."""
    from scipy.stats import binomtest

    if trials == 0:
        return None
    interval = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=0.95, method="exact")
    return [float(interval.low), float(interval.high)]


def _more_cells(successes: int, trials: int) -> int:
    """More cells of a class that would bring its recall's 95 % interval to +-5 points (normal
    approximation at the Agresti-Coull estimate)."""
    p = (successes + 2.0) / (trials + 4.0)
    return max(0, int(math.ceil(_Z95**2 * p * (1 - p) / _TARGET_HALF_WIDTH**2)) - int(trials))


def _recall(cells: pd.DataFrame, mask: np.ndarray) -> dict:
    right = int((cells["sero_label"].to_numpy()[mask] == cells["label"].to_numpy()[mask]).sum())
    n = int(mask.sum())
    return {
        "n": n,
        "right": right,
        "recall": right / n if n else None,
        "interval": _exact(right, n),
        "more_cells_for_5_points": _more_cells(right, n) if n else None,
    }


def compute_figures(cells: pd.DataFrame) -> dict:
    """The page's figures from :func:`cross_fit`'s table (JSON values)."""
    called = cells["sero_label"].isin(LABELS).to_numpy()
    c = cells[called]
    truth, typ = c["label"].to_numpy(), c["type"].to_numpy()
    per_class = {
        "typical serotonergic": _recall(c, (truth == SER) & (typ != "atypical")),
        "atypical serotonergic": _recall(c, (truth == SER) & (typ == "atypical")),
        "serotonergic (all)": _recall(c, truth == SER),
        "non_serotonergic": _recall(c, truth == NSER),
    }
    if not per_class["atypical serotonergic"]["n"]:
        per_class.pop("atypical serotonergic")
    y_true = (truth == NSER).astype(int)
    y_pred = (c["sero_label"].to_numpy() == NSER).astype(int)
    intervals = cell_intervals(y_true, y_pred, groups=c["group"].to_numpy())
    recalls = [per_class["serotonergic (all)"]["recall"], per_class["non_serotonergic"]["recall"]]
    reliable = cells["oof_reliable"].to_numpy(dtype=bool)
    right_reliable = int((cells["sero_label"][reliable] == cells["label"][reliable]).sum())
    usable = cells["usable"].to_numpy(dtype=bool)
    covered = {
        label: _share([s in (label, "both") for s in cells["oof_set"][usable & (cells["label"] == label).to_numpy()]])
        for label in LABELS
    }
    spread = cells["member_spread"].to_numpy(dtype=float)
    right = (cells["sero_label"] == cells["label"]).to_numpy()
    return {
        "n_cells": int(len(cells)),
        "n_called": int(called.sum()),
        "n_usable": int(usable.sum()),
        "days": sorted({g for g in cells["group"] if g}),
        "per_class": per_class,
        "balanced_accuracy": float(np.mean(recalls)) if None not in recalls else None,
        "balanced_accuracy_interval": intervals["balanced_accuracy_interval"],
        "interval_method": "Clopper-Pearson 95 % per class; " + intervals["interval_method"],
        "warnings": intervals["warnings"],
        "calibration": calibration_figures((truth == SER).astype(float), c["sero_probability"].to_numpy(float)),
        "reliable_share": float(reliable.mean()) if len(reliable) else None,
        "reliable_n": int(reliable.sum()),
        "reliable_precision": right_reliable / int(reliable.sum()) if reliable.any() else None,
        "reliable_precision_interval": _exact(right_reliable, int(reliable.sum())),
        "set_coverage": covered,
        "same_rig_flagged_unlike": _share(cells["oof_rig"][usable] == "unlike_validated_rigs"),
        "same_rig_sessions_unlike": _sessions_unlike(cells),
        "member_spread_right": _nanmean(spread[right]),
        "member_spread_wrong": _nanmean(spread[~right]),
    }


def _sessions_unlike(cells: pd.DataFrame) -> dict:
    """How many of the rig's own days, each held out as a session, the session check judged unlike the rig
    fitted on the other days (``judged``: days with enough cells and days to judge)."""
    if "oof_session" not in cells:
        return {"judged": 0, "unlike": 0, "days": []}
    days = cells.groupby("group")["oof_session"].first()
    judged = days[days != ""]
    return {
        "judged": int(len(judged)),
        "unlike": int((judged == "unlike").sum()),
        "days": sorted(judged.index[judged == "unlike"]),
    }


def _share(values) -> float | None:
    values = np.asarray(list(values), dtype=bool)
    return float(values.mean()) if values.size else None


def _nanmean(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


# -------------------------------------------------------------------------------------- the model folder
def _is_protected(folder: Path) -> bool:
    """The bundled demo and the authors' models as imported (not yet validated copies) are never changed in place."""
    if folder.resolve() == demo_model_folder().resolve():
        return True
    try:
        info = json.loads((folder / _INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool((info.get("source") or {}).get("imported_from")) and not info.get("rig_validation")


def _target_folder(model_folder: Path, out, overwrite: bool, *, copy: bool = True) -> Path:
    """Where the rig is recorded: the folder itself, or a copy in ``out`` (checked first with ``copy=False``)."""
    if out is None:
        import os

        if _is_protected(model_folder) or not os.access(model_folder, os.W_OK):
            raise ParameterError(
                f"{model_folder} is the bundled demo, an imported published model or read-only: it is not changed "
                "in place. Give a new folder for the validated copy: out=<new folder> (CLI: --out <new folder>)."
            )
        return model_folder
    out = Path(out).expanduser().absolute()
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ParameterError(
                f"{out} exists and is not empty: choose a new folder or pass overwrite=True (CLI: --overwrite)."
            )
        if copy:
            shutil.rmtree(out)
    if copy:
        shutil.copytree(model_folder, out, dirs_exist_ok=True)
    return out


def record_rig(model_folder, rig: dict) -> None:
    """Add (or replace, by name) ``rig`` in the folder's ``rig_validation`` and rewrite its card."""
    from .model.info import _model_card, _read_info

    folder = Path(model_folder)
    info = json.loads((folder / _INFO).read_text(encoding="utf-8"))
    entries = [r for r in (info.get("rig_validation") or {}).get("rigs", []) if r.get("name") != rig["name"]]
    info["rig_validation"] = {"format": RIG_VALIDATION_FORMAT, "rigs": [*entries, _jsonable(rig)]}
    with atomic_path(folder / _INFO) as temporary:
        temporary.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    with atomic_path(folder / _CARD) as temporary:
        temporary.write_text(_model_card(_read_info(folder)), encoding="utf-8")


def validate(
    model_folder,
    labels,
    *,
    report_dir,
    out=None,
    rig_name: str | None = None,
    level: float = DEFAULT_CONFORMAL_LEVEL,
    min_spikes: int = DEFAULT_MIN_SPIKES,
    trust: bool = False,
    seed: int = 0,
    overwrite: bool = False,
    progress=None,
    cells: pd.DataFrame | None = None,
    analyzer=None,
) -> ValidationResult:
    """Validate ``model_folder`` on labelled cells of one rig and record the rig in the folder (or its copy).

    Parameters
    ----------
    model_folder : str or pathlib.Path or None
        The model; None: the bundled demo (then ``out`` is required).
    labels : str or pathlib.Path or pandas.DataFrame
        The labelled cells (:func:`read_labelled_cells`): a table ``file, label`` (.abf files or folders of
        per-spike CSV files) or a folder of per-spike CSV files laid out by class (``SER/``, ``NSER/`` ...);
        with ``analyzer``, a SpikeInterface curation file (:func:`~spikeinterface_sero.curation.read_curation`)
        or a table ``unit_id, label, type``.
    report_dir : str or pathlib.Path
        Where ``validation.html``, ``validation.json``, ``reliability.png`` and ``cells.csv`` go.
    out : str or pathlib.Path or None, default: None
        A new folder for a validated copy of the model; None: the folder itself (refused for the demo, the
        authors' imported models and read-only folders).
    rig_name : str or None, default: None
        The rig's name (default ``rig<N>``); a rig of the same name is replaced.
    level : float, default: 0.9
        Per-class coverage of the conformal sets.
    min_spikes : int, default: 20
        The extension's ``min_spikes``: fewer spikes, no set.
    trust, seed, overwrite : the extension's ``trust_model`` and ``seed``; replace existing outputs.
    progress : callable or None, default: None
        Told ``(done, total)`` after each cell.
    cells : pandas.DataFrame or None, default: None
        Already classified cells (:func:`classify_labelled_cells`), instead of classifying ``labels`` again.
    analyzer : SortingAnalyzer or None, default: None
        The units ``labels`` names are this analyzer's (one rig; no recording days).

    Returns
    -------
    ValidationResult
    """
    source = Path(model_folder).expanduser().absolute() if model_folder is not None else demo_model_folder()
    if not (source / _INFO).is_file():
        raise ModelError(f"{source} is not a model folder ({_INFO} missing).")
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    files = {name: report_dir / name for name in ("validation.html", "validation.json", "reliability.png", "cells.csv")}
    for path in files.values():
        check_output_path(path, overwrite=overwrite)
    _target_folder(source, out, overwrite, copy=False)  # refused before any work
    if cells is None and analyzer is not None:
        manual = labels if isinstance(labels, pd.DataFrame) else read_curation(labels)
        cells = classify_curated_units(analyzer, manual, source, trust=trust, seed=seed)
    if cells is None:
        cells = classify_labelled_cells(read_labelled_cells(labels), source, trust=trust, seed=seed, progress=progress)
    judged, how = cross_fit(cells, level=level, min_spikes=min_spikes)
    usable = judged["usable"].to_numpy(dtype=bool)
    if len(set(judged["label"][usable])) < 2:
        raise DataError("no labelled cell of one class passes the checks with enough spikes: nothing to fit on.")
    figures = compute_figures(judged)
    target = _target_folder(source, out, overwrite)
    existing = json.loads((target / _INFO).read_text(encoding="utf-8")).get("rig_validation") or {}
    rig = {
        "name": rig_name or f"rig{len(existing.get('rigs', [])) + 1}",
        "date": _dt.date.today().isoformat(),
        "n_cells": int(usable.sum()),
        "days": figures["days"],
        "level": float(level),
        "conformal": fit_conformal(judged["sero_probability"][usable], judged["label"][usable], level=level),
        "fingerprint": fit_fingerprint(judged[usable], _shapes(judged[usable])),
        "scores": "calibrated cell P(SER) of cells the model did not train on",
        "cross_fitting": how,
        "figures": {k: figures[k] for k in ("balanced_accuracy", "balanced_accuracy_interval", "reliable_share")}
        | {"reliable_precision": figures["reliable_precision"], "ece": figures["calibration"]["ece"]},
    }
    record_rig(target, rig)
    with atomic_path(files["validation.json"]) as temporary:
        temporary.write_text(json.dumps(_jsonable({"rig": rig, "figures": figures}), indent=1), encoding="utf-8")
    with atomic_path(files["cells.csv"]) as temporary:
        judged.drop(columns=["shape", "path"], errors="ignore").to_csv(temporary, index=False)
    write_reliability_png(figures, files["reliability.png"])
    with atomic_path(files["validation.html"]) as temporary:
        temporary.write_text(page_html(figures, rig, judged, how, target), encoding="utf-8")
    return ValidationResult(cells=judged, figures=figures, rig=rig, model_folder=target, files=files)
