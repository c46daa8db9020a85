"""Evaluation of an ensemble on labelled spikes: spike- and cell-level confusion matrices (with the
normalisation stated), accuracy, balanced accuracy, ROC AUC, each member alone, and calibration.

The full explanation is in ``docs/training.md`` (section "Module notes: spikeinterface_sero.training.evaluate").
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..constants import (
    DEFAULT_N_BOOT,
    DEFAULT_THRESHOLD_PA,
    LABELS,
    MIN_CELLS_PER_CLASS,
    MIN_EVALUATION_CELLS,
    MIN_EVALUATION_GROUPS,
)
from ..decision import DecisionParams, cell_decisions, consensus_of, spike_probability, spike_votes_ser
from ..errors import TrainingError
from ..files import atomic_path
from ..model import load_model
from .data import SpikeDataset, dataset_from_table

NORMALISATION_NOTE = {
    "rows": "true class (0 serotonergic, 1 non_serotonergic)",
    "columns": "predicted class (0 serotonergic, 1 non_serotonergic)",
    "positive_class": "serotonergic",
    "counts": "[[TP, FN], [FP, TN]] with serotonergic as the positive class",
    "row_normalised": "each row divided by its sum (sklearn normalize='true'): diagonal = recall; "
    "[0][0] = TPR (sensitivity, SER recall), [0][1] = FNR, [1][0] = FPR, [1][1] = TNR (specificity, NSER recall)",
    "column_normalised": "each column divided by its sum (sklearn normalize='pred'): diagonal = precision; "
    "[0][0] = PPV (precision of SER calls), [1][1] = NPV (precision of NSER calls). The authors' notebook "
    "used normalize='pred' and reported these numbers as TPR/TNR: they are PPV/NPV.",
}


def _f(value):
    """float or None (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def decide(consensus) -> np.ndarray:
    """Spike decision from (n, 2) consensus as a class index: 0 (serotonergic) or 1 (the decision module's rule)."""
    return np.where(spike_votes_ser(consensus), 0, 1).astype(np.int64)


p_ser_of = spike_probability  # P(SER) per spike, from the decision module


def confusion(y_true, y_pred) -> dict:
    """Raw counts, row-normalised (recall) and column-normalised (precision) 2x2 matrices, with the rates
    named. Rows = true class, columns = predicted class; serotonergic (0) is positive. An undefined
    rate (a class absent from the truth or from the predictions) is ``None``."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    count_matrix = confusion_matrix(y_true, y_pred, labels=[0, 1]).astype(np.int64)
    # by hand, not normalize="true"/"pred": sklearn writes 0 where a row or column is empty, this keeps None
    with np.errstate(invalid="ignore", divide="ignore"):
        rows = count_matrix / count_matrix.sum(axis=1, keepdims=True)
        columns = count_matrix / count_matrix.sum(axis=0, keepdims=True)
    if len(y_true):  # per class: precision = (PPV, NPV), recall = (TPR, TNR)
        precision, recall, _, _ = precision_recall_fscore_support(y_true, y_pred, labels=[0, 1], zero_division=np.nan)
    else:
        precision = recall = np.full(2, np.nan)

    return {
        "counts": count_matrix.tolist(),
        "row_normalised": [[_f(v) for v in r] for r in rows],
        "column_normalised": [[_f(v) for v in r] for r in columns],
        "rates": {
            "TPR": _f(recall[0]),
            "TNR": _f(recall[1]),
            "FPR": _f(rows[1, 0]),  # the off-diagonal of the recall matrix: fp / (fp + tn)
            "FNR": _f(rows[0, 1]),  # fn / (fn + tp)
            "PPV": _f(precision[0]),
            "NPV": _f(precision[1]),
        },
        "normalisation": dict(NORMALISATION_NOTE),
    }


def calibration(y_ser, p_ser, n_bins: int = 10) -> dict:
    """Reliability of P(SER): per equal-width bin the count, mean P(SER) and observed SER fraction;
    expected calibration error (ECE, in [0, 1]); and sklearn's ``calibration_curve`` output."""
    from sklearn.calibration import calibration_curve

    y_ser = np.asarray(y_ser, dtype=np.float64)
    probabilities = np.clip(np.asarray(p_ser, dtype=np.float64), 0.0, 1.0)
    n = len(probabilities)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bin_indices = np.clip(np.digitize(probabilities, edges[1:-1], right=True), 0, n_bins - 1)  # sklearn's binning
    bins, ece = [], 0.0
    for b in range(n_bins):
        in_bin = bin_indices == b
        n_in_bin = int(in_bin.sum())
        mean_probability = float(probabilities[in_bin].mean()) if n_in_bin else None
        fraction_ser = float(y_ser[in_bin].mean()) if n_in_bin else None
        if n_in_bin:
            ece += n_in_bin / n * abs(fraction_ser - mean_probability)
        bins.append(
            {
                "lo": float(edges[b]),
                "hi": float(edges[b + 1]),
                "n": n_in_bin,
                "mean_p_ser": mean_probability,
                "frac_ser": fraction_ser,
            }
        )
    out = {
        "ece": _f(ece) if n else None,
        "n_bins": int(n_bins),
        "bins": bins,
        "what": "P(serotonergic) against the observed fraction of serotonergic spikes/cells",
    }
    if n and len(np.unique(y_ser)) == 2:
        prob_true, prob_pred = calibration_curve(y_ser, probabilities, n_bins=n_bins, strategy="uniform")
        out["calibration_curve"] = {"prob_true": prob_true.tolist(), "prob_pred": prob_pred.tolist()}
    return out


def _scores(y, predicted, p_ser) -> dict:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

    y = np.asarray(y)
    out = {"n": int(len(y)), "accuracy": _f(accuracy_score(y, predicted)) if len(y) else None}
    two_classes = len(np.unique(y)) == 2
    with np.errstate(all="ignore"):
        out["balanced_accuracy"] = _f(balanced_accuracy_score(y, predicted)) if two_classes else None
        out["roc_auc"] = _f(roc_auc_score((y == 0).astype(int), p_ser)) if two_classes else None
    return out


def _wilson(successes: int, trials: int, confidence: float) -> list | None:
    """Wilson score interval of a proportion (scipy), or None without trials."""
    from scipy.stats import binomtest

    if trials == 0:
        return None
    interval = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=confidence, method="wilson")
    return [float(interval.low), float(interval.high)]


def cell_intervals(y_true, y_pred, *, groups=None, confidence: float = 0.95):
    """Intervals over cells for the cell-level figures, and plain warnings when the set is too small.

    Accuracy, SER recall (TPR) and NSER recall (TNR) get Wilson score intervals (each cell one trial; unlike
    a bootstrap, they do not collapse to a point when every cell is right); the balanced accuracy gets the
    mean of the TPR and TNR bounds (conservative: both ends at once).

    Parameters
    ----------
    y_true, y_pred : array-like
        (n_cells,) true and predicted class per cell (0 serotonergic, 1 non-serotonergic).
    groups : array-like or None, default: None
        (n_cells,) recording day (or other group) of each cell, for the warning on few groups.
    confidence : float, default: 0.95
        Coverage of every interval.

    Returns
    -------
    dict
        ``accuracy_interval``, ``balanced_accuracy_interval``, ``TPR_interval``, ``TNR_interval`` (``[low,
        high]`` or None when undefined), ``interval_method`` and ``warnings`` (a list of sentences).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    correct = y_true == y_pred
    ser, nser = y_true == 0, y_true == 1
    out = {
        "accuracy_interval": _wilson(correct.sum(), len(y_true), confidence),
        "TPR_interval": _wilson((correct & ser).sum(), ser.sum(), confidence),
        "TNR_interval": _wilson((correct & nser).sum(), nser.sum(), confidence),
        "balanced_accuracy_interval": None,
        "interval_method": f"{confidence:.0%} Wilson score intervals over cells (accuracy, TPR, TNR); the mean "
        "of the TPR and TNR bounds for the balanced accuracy",
    }
    if ser.any() and nser.any():
        out["balanced_accuracy_interval"] = [
            (out["TPR_interval"][0] + out["TNR_interval"][0]) / 2,
            (out["TPR_interval"][1] + out["TNR_interval"][1]) / 2,
        ]
    warnings = []
    if len(y_true) < MIN_EVALUATION_CELLS:
        width = out["accuracy_interval"]
        warnings.append(
            f"only {len(y_true)} cells: figures on so few cells are rough"
            + (f" (accuracy interval {width[0]:.2f}-{width[1]:.2f})" if width else "")
            + f"; evaluate on at least {MIN_EVALUATION_CELLS} cells of both classes"
        )
    for present, name in ((ser, LABELS[0]), (nser, LABELS[1])):
        if not present.any():
            warnings.append(f"no {name} cells: the balanced accuracy and the {name} recall cannot be measured")
        elif present.sum() < MIN_CELLS_PER_CLASS:
            warnings.append(f"only {int(present.sum())} {name} cells: its recall is rough")
    if groups is not None:
        n_groups = len(pd.unique(np.asarray(groups)))
        if n_groups < MIN_EVALUATION_GROUPS:
            warnings.append(
                f"cells from only {n_groups} recording day(s)/group(s): the figure may not hold on another day"
            )
    out["warnings"] = warnings
    return out


def _bce(onehot, probabilities) -> float:
    """Keras' binary cross-entropy of the 2-unit outputs (mean over units and samples)."""
    clipped = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1 - 1e-7)
    t = np.asarray(onehot, dtype=np.float64)
    return float(np.mean(-(t * np.log(clipped) + (1 - t) * np.log(1 - clipped))))


def evaluate_predictions(
    member_outputs,
    dataset: SpikeDataset,
    *,
    kernels=None,
    n_bins: int = 10,
    n_boot: int = DEFAULT_N_BOOT,
    per_kernel: bool = True,
    model_calibration: dict | None = None,
) -> dict:
    """:func:`evaluate` from precomputed member outputs ``(n, m, 2)`` (e.g. ``Ensemble.predict_members``);
    ``model_calibration`` (the model folder's) is applied to the cell probabilities; the cell calibration is
    then reported both ways (``cell["calibration_uncalibrated"]``)."""
    outputs = np.asarray(member_outputs, dtype=np.float64)
    if outputs.ndim != 3 or outputs.shape[0] != len(dataset) or outputs.shape[2] != 2:
        raise TrainingError(f"member outputs have shape {outputs.shape}; expected ({len(dataset)}, m, 2)")
    y = dataset.y
    onehot = dataset.onehot()
    consensus = consensus_of(outputs)
    predicted = decide(consensus)
    probability = p_ser_of(consensus)
    spike = _scores(y, predicted, probability)
    spike["bce"] = _f(_bce(onehot, consensus)) if len(y) else None
    spike.update(confusion(y, predicted))
    spike["calibration"] = calibration(y == 0, probability, n_bins=n_bins)

    cells = cell_decisions(consensus, dataset.cell, DecisionParams(n_boot=n_boot), model_calibration)
    true_cell = dataset.cells["y"].reindex(cells.index.astype(str)).to_numpy(dtype=np.int64)
    cell_pred = np.where(cells["sero_label"].to_numpy() == LABELS[0], 0, 1)
    cell_p = cells["sero_probability"].to_numpy(dtype=np.float64)
    cell = _scores(true_cell, cell_pred, cell_p)
    cell.update(confusion(true_cell, cell_pred))
    cell["calibration"] = calibration(true_cell == 0, cell_p, n_bins=n_bins)
    cell_groups = dataset.cells["group"].reindex(cells.index.astype(str)).to_numpy() if dataset.has_groups else None
    cell.update(cell_intervals(true_cell, cell_pred, groups=cell_groups))
    if model_calibration:
        uncalibrated = cell_decisions(consensus, dataset.cell, DecisionParams(n_boot=10))["sero_probability"].to_numpy()
        cell["calibration_uncalibrated"] = calibration(true_cell == 0, uncalibrated, n_bins=n_bins)
    cell_table = cells.copy()
    cell_table.insert(0, "true_label", [LABELS[int(v)] for v in true_cell])
    cell_table.insert(1, "correct", cell_pred == true_cell)
    if dataset.has_groups:
        cell_table.insert(2, "group", dataset.cells["group"].reindex(cells.index.astype(str)).to_numpy())

    result = {
        "dataset": dataset.summary(),
        "labels": {"0": LABELS[0], "1": LABELS[1]},
        "positive_class": LABELS[0],
        "decision": {
            "spike": "serotonergic when mean member output[0] > output[1]; P(SER) = c0 / (c0 + c1)",
            "cell": "mean of the spike consensus over the cell's spikes; serotonergic when mean[0] > mean[1]",
        },
        "n_members": int(outputs.shape[1]),
        "kernels": None if kernels is None else [int(k) for k in kernels],
        "spike": spike,
        "cell": cell,
        "cells": cell_table,
        "warnings": list(cell["warnings"]),
    }
    if per_kernel:
        rows = []
        codes, unique_cells = pd.factorize(dataset.cell)
        counts = np.bincount(codes, minlength=len(unique_cells))
        cell_truth = dataset.cells["y"].reindex(pd.Index(unique_cells).astype(str)).to_numpy(dtype=np.int64)
        for j in range(outputs.shape[1]):
            member_output = outputs[:, j, :]
            member_predicted = decide(member_output)
            spike_scores = _scores(y, member_predicted, p_ser_of(member_output))
            cell_mean = np.zeros((len(unique_cells), 2))
            np.add.at(cell_mean, codes, member_output)
            cell_mean /= counts[:, None]
            cell_predicted = decide(cell_mean)
            cell_scores = _scores(cell_truth, cell_predicted, p_ser_of(cell_mean))
            rows.append(
                {
                    "kernel": None if kernels is None else int(list(kernels)[j]),
                    "spike_accuracy": spike_scores["accuracy"],
                    "spike_balanced_accuracy": spike_scores["balanced_accuracy"],
                    "spike_roc_auc": spike_scores["roc_auc"],
                    "spike_bce": _f(_bce(onehot, member_output)) if len(y) else None,
                    "cell_accuracy": cell_scores["accuracy"],
                    "cell_balanced_accuracy": cell_scores["balanced_accuracy"],
                }
            )
        result["per_kernel"] = rows
    return result


def evaluate(
    ensemble,
    dataset: SpikeDataset,
    out_dir=None,
    *,
    batch_size: int = 4096,
    n_bins: int = 10,
    n_boot: int = DEFAULT_N_BOOT,
    per_kernel: bool = True,
    title: str | None = None,
) -> dict:
    """Evaluate ``ensemble`` on a labelled dataset; with ``out_dir`` also write the report
    (``report.json``, ``per_kernel.csv``, ``cells.csv`` and PNG plots).

    Returns a dict: ``spike`` and ``cell`` (n, accuracy, balanced_accuracy, roc_auc, counts,
    row_normalised (recall: TPR/TNR), column_normalised (precision: PPV/NPV), rates, normalisation notes,
    calibration with ECE), ``per_kernel`` (each member alone), ``cells`` (a DataFrame of per-cell
    decisions; a list of records in the JSON), ``dataset`` and ``files`` (when written).
    """
    if not isinstance(dataset, SpikeDataset):
        raise TrainingError(f"evaluate needs a SpikeDataset, got {type(dataset).__name__}")
    if not len(dataset):
        raise TrainingError("the evaluation set is empty")
    member_outputs = ensemble.predict_members(dataset.X, batch_size=batch_size)
    result = evaluate_predictions(
        member_outputs,
        dataset,
        kernels=getattr(ensemble, "kernels", None),
        n_bins=n_bins,
        n_boot=n_boot,
        per_kernel=per_kernel,
        model_calibration=(getattr(ensemble, "info", None) or {}).get("calibration") or None,
    )
    info = getattr(ensemble, "info", {}) or {}
    result["model"] = {"folder": info.get("folder"), "name": info.get("name"), "demo": bool(info.get("demo", False))}
    if out_dir is not None:
        write_report(result, out_dir, title=title)
    return result


def to_jsonable(result: dict) -> dict:
    """The result with the per-cell DataFrame as records (what ``report.json`` holds)."""
    out = dict(result)
    cells = out.get("cells")
    if isinstance(cells, pd.DataFrame):
        out["cells"] = json.loads(cells.reset_index().to_json(orient="records"))
    return json.loads(json.dumps(out, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def write_report(result: dict, out_dir, *, title: str | None = None) -> dict:
    """Write ``report.json``, ``per_kernel.csv``, ``cells.csv`` and the plots (confusion matrices with
    their normalisation in the titles, reliability diagram with the count per bin, per-kernel accuracy) to
    ``out_dir``. Returns {name: path}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    if isinstance(result.get("cells"), pd.DataFrame):
        with atomic_path(out_dir / "cells.csv") as temporary:
            result["cells"].to_csv(temporary)
        files["cells.csv"] = str(out_dir / "cells.csv")
    if result.get("per_kernel"):
        with atomic_path(out_dir / "per_kernel.csv") as temporary:
            pd.DataFrame(result["per_kernel"]).to_csv(temporary, index=False)
        files["per_kernel.csv"] = str(out_dir / "per_kernel.csv")
    files.update(_plots(result, out_dir, title=title))
    files["report.json"] = str(out_dir / "report.json")
    result["files"] = {k: Path(v).name for k, v in files.items()}
    with atomic_path(out_dir / "report.json") as temporary:
        temporary.write_text(json.dumps(to_jsonable(result), indent=1) + "\n", encoding="utf-8")
    return files


def _save(figure, path: Path) -> None:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")


def _plots(result: dict, out_dir: Path, *, title: str | None = None) -> dict:
    # Figures are made with matplotlib.figure.Figure, not pyplot: no global figure state, Agg canvas for savefig
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import ConfusionMatrixDisplay

    files = {}
    short_labels = ["SER", "NSER"]
    suffix = f" ({title})" if title else ""
    panels = [
        ("counts", "counts", "d", {"vmin": 0}),
        ("row_normalised", "row-normalised = recall\n(diagonal: TPR, TNR)", ".3f", {"vmin": 0, "vmax": 1}),
        (
            "column_normalised",
            "column-normalised = precision\n(diagonal: PPV, NPV;\n= the authors' normalize='pred')",
            ".3f",
            {"vmin": 0, "vmax": 1},
        ),
    ]
    for level in ("spike", "cell"):
        level_result = result[level]
        figure = Figure(figsize=(12, 4.4), layout="constrained")
        for axes, (key, name, value_format, image_kwargs) in zip(figure.subplots(1, 3), panels):
            matrix = np.array([[np.nan if v is None else v for v in row] for row in level_result[key]], dtype=float)
            undefined = ~np.isfinite(matrix)
            shown = np.where(undefined, 0, matrix).astype(np.int64 if value_format == "d" else float)
            display = ConfusionMatrixDisplay(shown, display_labels=short_labels)
            display.plot(ax=axes, cmap="Blues", values_format=value_format, colorbar=False, im_kw=image_kwargs)
            for i, j in zip(*np.nonzero(undefined)):  # a rate over an empty row or column
                display.text_[i, j].set_text("-")
            axes.set_title(name, fontsize=9)
        accuracy = level_result.get("accuracy")
        balanced_accuracy = level_result.get("balanced_accuracy")
        figure.suptitle(
            f"{level}-level confusion{suffix}: n = {level_result['n']}, accuracy "
            f"{'-' if accuracy is None else f'{accuracy:.3f}'}, balanced {'-' if balanced_accuracy is None else f'{balanced_accuracy:.3f}'}"
        )
        plot_path = out_dir / f"confusion_{level}.png"
        _save(figure, plot_path)
        files[plot_path.name] = str(plot_path)

    figure = Figure(figsize=(11, 6.0), layout="constrained")
    grid = figure.subplots(2, 2, sharex=True, height_ratios=[3, 1])
    for (axes, counts_axes), level in zip(grid.T, ("spike", "cell")):
        calibration_result = result[level]["calibration"]
        filled = [b for b in calibration_result["bins"] if b["n"]]
        mean_probabilities = [b["mean_p_ser"] for b in filled]
        observed_fractions = [b["frac_ser"] for b in filled]
        display = CalibrationDisplay(
            observed_fractions, mean_probabilities, None, estimator_name="ensemble", pos_label=LABELS[0]
        )
        display.plot(ax=axes, color="C0")
        ece = calibration_result["ece"]
        axes.set_title(f"{level}: reliability of P(SER), ECE {'-' if ece is None else f'{ece:.3f}'}", fontsize=10)
        axes.set_xlabel("")
        axes.set_ylabel("observed fraction serotonergic")
        axes.set_xlim(-0.02, 1.02)  # markers at 0 and 1 are not cut
        axes.set_ylim(-0.04, 1.04)
        axes.legend(loc="best", fontsize=8)  # away from the points
        # the count of each bin in a bar chart below, so that counts of near bins cannot overlap
        bars = counts_axes.bar(
            [(b["lo"] + b["hi"]) / 2 for b in calibration_result["bins"]],
            [b["n"] for b in calibration_result["bins"]],
            width=[0.9 * (b["hi"] - b["lo"]) for b in calibration_result["bins"]],
            color="C0",
            alpha=0.6,
        )
        counts_axes.bar_label(
            bars, labels=[str(b["n"]) if b["n"] else "" for b in calibration_result["bins"]], fontsize=7
        )
        counts_axes.margins(y=0.35)
        counts_axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: whole numbers on the axis
        counts_axes.set_xlabel("mean predicted P(serotonergic) in bin")
        counts_axes.set_ylabel(f"{level}s in bin")
    plot_path = out_dir / "reliability.png"
    _save(figure, plot_path)
    files[plot_path.name] = str(plot_path)

    if result.get("per_kernel"):
        per_kernel = pd.DataFrame(result["per_kernel"])
        figure = Figure(figsize=(10, 4.0), layout="constrained")
        axes = figure.subplots()
        x = np.arange(len(per_kernel))
        axes.bar(x - 0.2, per_kernel["spike_accuracy"].astype(float), 0.4, label="spike accuracy (member alone)")
        axes.bar(x + 0.2, per_kernel["cell_accuracy"].astype(float), 0.4, label="cell accuracy (member alone)")
        if result["spike"]["accuracy"] is not None:
            axes.axhline(result["spike"]["accuracy"], color="C0", ls="--", lw=1, label="ensemble, spike")
        if result["cell"]["accuracy"] is not None:
            axes.axhline(result["cell"]["accuracy"], color="C1", ls="--", lw=1, label="ensemble, cell")
        axes.set_xticks(x, [str(k) for k in per_kernel["kernel"]])
        axes.set_xlabel("kernel size")
        axes.set_ylabel("accuracy")
        lowest = np.nanmin(per_kernel[["spike_accuracy", "cell_accuracy"]].astype(float).to_numpy())
        axes.set_ylim(max(0.0, lowest - 0.05), 1.02)  # an ensemble line at 1.0 stays visible
        axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)  # beside the bars
        axes.set_title(f"each member alone{suffix}", fontsize=10)
        plot_path = out_dir / "per_kernel.png"
        _save(figure, plot_path)
        files[plot_path.name] = str(plot_path)
    return files


def evaluate_table(
    table,
    model_folder,
    out_dir=None,
    *,
    threshold: float = DEFAULT_THRESHOLD_PA,
    max_per_cell: int | None = None,
    seed: int = 0,
    trust: bool = False,
    snippet_kwargs: dict | None = None,
    progress_bar: bool = False,
) -> dict:
    """Everything ``sero evaluate --table T.csv --model DIR --out REPORT_DIR`` does: read the labelled
    recordings of the table (all spikes, or at most ``max_per_cell`` per cell), load the model folder, and
    :func:`evaluate` (writing the report to ``out_dir`` when given)."""
    ensemble = load_model(model_folder, trust=trust)
    dataset = dataset_from_table(
        table,
        threshold=threshold,
        max_per_cell=max_per_cell,
        seed=seed,
        noise_per_cell=0,
        progress_bar=progress_bar,
        snippet_kwargs=snippet_kwargs,
    )
    return evaluate(
        ensemble, dataset, out_dir, title=Path(str(table)).name if not isinstance(table, pd.DataFrame) else None
    )
