"""A conformal guarantee on a rig: class-conditional (Mondrian) split-conformal prediction sets of cells.

Fitted on a rig's labelled cells (``sero validate``), stored in the model folder's ``model_info.json`` as
``rig_validation`` (one entry per validated rig), read by :func:`spikeinterface_sero.decision.decide_units`.
Why and how: ``docs/validate.md``.
"""

from __future__ import annotations

import math

import numpy as np

from .constants import DEFAULT_CONFORMAL_LEVEL, LABELS
from .errors import DataError

__all__ = [
    "RIG_VALIDATION_FORMAT",
    "SET_BOTH",
    "SET_EMPTY",
    "NOT_CALIBRATED",
    "NO_GUARANTEE",
    "fit_conformal",
    "prediction_sets",
    "minimum_cells",
    "check_rig_validation",
    "guarantee",
    "rig_guarantee",
]

SER, NSER = LABELS
#: format name of a model folder's ``rig_validation``
RIG_VALIDATION_FORMAT = "sero-rig-validation-1"
#: ``sero_set`` of a cell whose set holds both labels, none, or of a model without a rig calibration
SET_BOTH, SET_EMPTY, NOT_CALIBRATED = "both", "empty", "not_calibrated"
#: the guarantee's words for a model not validated on any rig (every call unsure until sero validate has run)
NO_GUARANTEE = "not validated on this rig: no call is reliable"


def minimum_cells(level: float) -> int:
    """The fewest labelled cells of a class for which a set at ``level`` can leave that class out:
    the smallest n with ceil((n + 1) * level) <= n (9 at 0.90, 19 at 0.95)."""
    _check_level(level)
    return int(math.ceil(level / (1.0 - level) - 1e-9))


def _check_level(level) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0.5 <= float(level) < 1.0:
        raise DataError(f"level must be a number from 0.5 to below 1 (e.g. 0.9), not {level!r}.")
    return float(level)


def _quantile(scores: np.ndarray, level: float) -> float | None:
    """The finite-sample conformal quantile: the ceil((n + 1) level)-th smallest score; None (every set holds
    the class) when there are too few scores for the level."""
    n = scores.size
    rank = int(math.ceil((n + 1) * level - 1e-9))
    if rank > n:
        return None
    return float(np.sort(scores)[rank - 1])


def fit_conformal(probability, labels, *, level: float = DEFAULT_CONFORMAL_LEVEL) -> dict:
    """Per-class conformal quantiles of the nonconformity 1 - P(true label) of labelled cells.

    Parameters
    ----------
    probability : array-like
        (n_cells,) calibrated cell P(SER) (``sero_probability``) of cells the model did not train on, or
        out-of-fold probabilities when the same cells trained it.
    labels : array-like
        (n_cells,) "serotonergic" or "non_serotonergic".
    level : float, default: 0.9
        Coverage per class: at least ``level`` of the rig's SER cells get a set holding SER, and of its NSER
        cells one holding NSER.

    Returns
    -------
    dict
        ``method``, ``level``, ``n_cells`` (per class), ``quantiles`` (per class; None when the class has
        fewer than :func:`minimum_cells` cells, so that its sets always hold it) and ``notes``.
    """
    level = _check_level(level)
    p = np.asarray(probability, dtype=np.float64)
    y = np.asarray(labels, dtype=object)
    if p.ndim != 1 or p.shape != y.shape or not np.isfinite(p).all():
        raise DataError("fit_conformal needs one finite probability and one label per cell.")
    unknown = sorted({str(v) for v in y} - set(LABELS))
    if unknown:
        raise DataError(f"labels must be {SER!r} or {NSER!r}, not {unknown}.")
    fit = {"method": "mondrian_split_conformal", "level": level, "n_cells": {}, "quantiles": {}, "notes": []}
    for label in LABELS:
        own = y == label
        scores = 1.0 - (p[own] if label == SER else 1.0 - p[own])
        fit["n_cells"][label] = int(own.sum())
        fit["quantiles"][label] = _quantile(scores, level)
        if fit["quantiles"][label] is None:
            fit["notes"].append(
                f"{int(own.sum())} {label} cells are too few for a set at {level:.0%} to leave {label} out "
                f"(at least {minimum_cells(level)} needed): every set holds {label}"
            )
    return fit


def prediction_sets(probability, fit: dict | None) -> np.ndarray:
    """The conformal set of each cell: "serotonergic", "non_serotonergic", "both" or "empty" (NaN
    probability or no fit: "not_calibrated").

    A label is in the set when its nonconformity 1 - P(label) is at most its class's quantile.
    """
    p = np.asarray(probability, dtype=np.float64)
    out = np.full(p.shape, NOT_CALIBRATED, dtype=object)
    if not fit:
        return out
    q = [fit["quantiles"][label] for label in LABELS]
    has = np.isfinite(p)
    holds_ser = (1.0 - p <= q[0] + 1e-12) if q[0] is not None else np.ones(p.shape, bool)
    holds_nser = (p <= q[1] + 1e-12) if q[1] is not None else np.ones(p.shape, bool)
    chosen = np.where(holds_ser & holds_nser, SET_BOTH, np.where(holds_ser, SER, np.where(holds_nser, NSER, SET_EMPTY)))
    out[has] = chosen[has]
    return out


def check_rig_validation(value) -> dict:
    """A model folder's ``rig_validation`` checked; :class:`~spikeinterface_sero.errors.DataError` names
    what is wrong."""
    if not isinstance(value, dict) or value.get("format") != RIG_VALIDATION_FORMAT:
        raise DataError(f"the rig validation is not in the {RIG_VALIDATION_FORMAT!r} format.")
    rigs = value.get("rigs")
    if not isinstance(rigs, list):
        raise DataError("the rig validation's 'rigs' must be a list of validated rigs.")
    for number, rig in enumerate(rigs):
        fit = rig.get("conformal") if isinstance(rig, dict) else None
        if not isinstance(fit, dict) or not isinstance(fit.get("quantiles"), dict):
            raise DataError(f"rig {number} of the rig validation has no conformal fit with quantiles.")
        _check_level(fit.get("level"))
        for label in LABELS:
            q = fit["quantiles"].get(label, "missing")
            if q is not None and (isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 <= q <= 1):
                raise DataError(f"rig {number}: the {label} quantile must be a number from 0 to 1 or null, not {q!r}.")
        if not isinstance(rig.get("fingerprint"), dict):
            raise DataError(f"rig {number} of the rig validation has no fingerprint.")
    return value


def guarantee(rig: dict | None) -> str:
    """The guarantee of one validated rig in words (every output that shows a set quotes it)."""
    if not rig:
        return NO_GUARANTEE
    fit = rig["conformal"]
    level = float(fit["level"])
    n = fit.get("n_cells", {})
    short = [label for label in LABELS if fit["quantiles"].get(label) is None]
    text = (
        f"on cells of the rig {rig.get('name', '')!s} (like its fingerprint), at least {level:.0%} of "
        f"serotonergic cells get a set that contains serotonergic and at least {level:.0%} of non-serotonergic "
        f"cells one that contains non_serotonergic (Mondrian split conformal, {n.get(SER, 0)} + {n.get(NSER, 0)} "
        f"labelled cells on {len(rig.get('days', []))} day(s), validated {rig.get('date', '?')})"
    )
    if short:
        text += f"; too few {' and '.join(short)} cells for the level: those sets always hold it"
    return text


def rig_guarantee(value: dict | None) -> str:
    """The guarantee of a model's ``rig_validation`` in words, rig by rig (provenance ``guarantee``, model card,
    validation page)."""
    if not value or not value.get("rigs"):
        return NO_GUARANTEE
    return " ".join(
        f"Validated on rig {number + 1}: {guarantee(rig)}.{_figures_text(rig.get('figures'))}"
        for number, rig in enumerate(value["rigs"])
    )


def _figures_text(figures: dict | None) -> str:
    """The validation's figures in one sentence (cross-fitted where the page says so)."""
    names = {  # shares in per cent (a share of 1 reads "100%", not "1"); the ECE as a probability
        "balanced_accuracy": ("balanced accuracy", True),
        "reliable_share": ("reliable share", True),
        "reliable_precision": ("reliable calls right", True),
        "ece": ("ECE", False),
    }
    parts = [
        f"{words} {100 * float(figures[key]):.3g}%" if share else f"{words} {float(figures[key]):.3g}"
        for key, (words, share) in names.items()
        if (figures or {}).get(key) is not None
    ]
    return f" Figures: {', '.join(parts)}." if parts else ""
