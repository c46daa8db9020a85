"""A fingerprint of a rig, from the snippets the model saw: is a cell recorded like a validated rig's cells?

Each cell is measured (baseline noise level and its spectrum shape, the steepness of the downstroke as a
proxy of the filter corner, amplitude, shape and rate); a rig's fingerprint is the range of its validated
cells' measures. A cell outside every stored range by more than the margin is ``unlike_validated_rigs``.
What each measure catches and the numbers on a second rig: ``docs/validate.md``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .constants import NBEFORE, RIG_FINGERPRINT_MARGIN, SAMPLING_FREQUENCY
from .errors import DataError

__all__ = [
    "FINGERPRINT_FEATURES",
    "VALIDATED",
    "UNLIKE_VALIDATED_RIGS",
    "NOT_VALIDATED",
    "cell_fingerprints",
    "fit_fingerprint",
    "fingerprint_distance",
    "match_rigs",
]

VALIDATED, UNLIKE_VALIDATED_RIGS, NOT_VALIDATED = "validated", "unlike_validated_rigs", "not_validated"
#: the measures of a cell (name: compared in log units?)
FINGERPRINT_FEATURES = {
    "noise_pa": True,  # robust SD of the pre-trigger baseline
    "noise_high_frequency": False,  # var(diff) / (2 var) of the baseline: 1 white, near 0 low-pass/1-f noise
    "downstroke_slope": True,  # steepest fall of the mean spike per sample over its depth: the filter corner
    "amplitude_pa": True,  # depth of the mean spike below its baseline
    "half_width_ms": True,  # width of the inward peak at half depth
    "outward_ratio": False,  # outward phase over inward depth
    "firing_rate_hz": True,  # mean rate over the recording (NaN for snippets without their recording)
}
_BASELINE = slice(0, 30)  # the first 0.75 ms: before the spike
_FLOOR = {True: 0.1, False: 0.05}  # smallest span of a range (log units / linear units)


def _one_cell(x: np.ndarray) -> dict:
    base = x[:, _BASELINE] - np.median(x[:, _BASELINE], axis=1, keepdims=True)
    noise = 1.4826 * float(np.median(np.abs(base)))
    variance = base.var(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        whiteness = np.diff(base, axis=1).var(axis=1) / (2.0 * variance)
    mean = (x - np.median(x[:, _BASELINE], axis=1, keepdims=True)).mean(axis=0)
    search = slice(NBEFORE - 10, NBEFORE + 40)
    trough = search.start + int(np.argmin(mean[search]))
    depth = -float(mean[trough])
    out = dict.fromkeys(FINGERPRINT_FEATURES, np.nan)
    out["noise_pa"] = noise
    out["noise_high_frequency"] = float(np.nanmedian(whiteness)) if np.isfinite(whiteness).any() else np.nan
    if depth <= 0:
        return out
    out["amplitude_pa"] = depth
    out["downstroke_slope"] = float(-np.diff(mean[: trough + 1]).min()) / depth if trough > 0 else np.nan
    below = np.flatnonzero(mean < -depth / 2)
    out["half_width_ms"] = (below.max() - below.min() + 1) * 1000.0 / SAMPLING_FREQUENCY if below.size else np.nan
    out["outward_ratio"] = float(mean[trough:].max()) / depth
    return out


def cell_fingerprints(waveforms, spike_unit_index, n_units: int, *, firing_rate_hz=None) -> pd.DataFrame:
    """The fingerprint measures of each unit (rows in unit order; NaN without spikes).

    Parameters
    ----------
    waveforms : np.ndarray
        (n_spikes, 160) snippets in pA, negative-going, as the model saw them.
    spike_unit_index : np.ndarray
        (n_spikes,) index of each spike's unit.
    n_units : int
        The number of units.
    firing_rate_hz : sequence of float or None, default: None
        Per unit, the firing rate over the recording.

    Returns
    -------
    pandas.DataFrame
        (n_units, :data:`FINGERPRINT_FEATURES`).
    """
    x = np.asarray(waveforms, dtype=np.float64).reshape(len(waveforms), -1)
    index = np.asarray(spike_unit_index, dtype=np.int64)
    rows = [
        _one_cell(x[index == u]) if (index == u).any() else dict.fromkeys(FINGERPRINT_FEATURES, np.nan)
        for u in range(n_units)
    ]
    table = pd.DataFrame(rows, columns=list(FINGERPRINT_FEATURES), dtype="float64")
    if firing_rate_hz is not None:
        table["firing_rate_hz"] = np.asarray(firing_rate_hz, dtype=np.float64)
    return table


def _scaled(values, logarithmic: bool) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if not logarithmic:
        return v
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), np.nan)


def fit_fingerprint(measures: pd.DataFrame, *, margin: float = RIG_FINGERPRINT_MARGIN) -> dict:
    """A rig's fingerprint from its validated cells' :func:`cell_fingerprints`: per measure the range
    (log10 for the positive ones) and the margin a cell may lie outside it. JSON values."""
    if len(measures) < 2:
        raise DataError("a rig's fingerprint needs the measures of at least two cells.")
    features = {}
    for name, logarithmic in FINGERPRINT_FEATURES.items():
        v = _scaled(measures[name], logarithmic) if name in measures else np.array([np.nan])
        v = v[np.isfinite(v)]
        if v.size >= 2:
            features[name] = {"low": float(v.min()), "high": float(v.max()), "log10": logarithmic}
    return {"n_cells": int(len(measures)), "margin": float(margin), "features": features}


def fingerprint_distance(measures: pd.DataFrame, fingerprint: dict) -> np.ndarray:
    """(n_cells,) how far outside the rig's ranges each cell lies, in spans of each range (the largest
    over the measures; 0 inside every range, NaN when no measure could be compared)."""
    distance = np.full(len(measures), np.nan)
    for name, bounds in fingerprint["features"].items():
        if name not in measures:
            continue
        v = _scaled(measures[name], bounds["log10"])
        span = max(bounds["high"] - bounds["low"], _FLOOR[bool(bounds["log10"])])
        outside = np.maximum(0.0, np.maximum(bounds["low"] - v, v - bounds["high"])) / span
        distance = np.where(np.isfinite(outside), np.fmax(distance, outside), distance)
    return distance


def match_rigs(measures: pd.DataFrame, rig_validation: dict | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which validated rig each cell is like.

    Returns
    -------
    status : np.ndarray
        (n_cells,) "validated", "unlike_validated_rigs" or "not_validated" (no rig stored).
    rig : np.ndarray
        (n_cells,) index of the nearest validated rig the cell is like, -1 when none.
    distance : np.ndarray
        (n_cells,) :func:`fingerprint_distance` to the nearest rig (NaN without rigs).
    """
    n = len(measures)
    rigs = (rig_validation or {}).get("rigs") or []
    if not rigs:
        return np.full(n, NOT_VALIDATED, object), np.full(n, -1), np.full(n, np.nan)
    distances = np.vstack([fingerprint_distance(measures, rig["fingerprint"]) for rig in rigs])
    filled = np.where(np.isfinite(distances), distances, np.inf)
    nearest = filled.argmin(axis=0)
    best = filled[nearest, np.arange(n)]
    margins = np.array([float(rig["fingerprint"].get("margin", RIG_FINGERPRINT_MARGIN)) for rig in rigs])
    like = best <= margins[nearest]
    status = np.where(like, VALIDATED, UNLIKE_VALIDATED_RIGS).astype(object)
    return status, np.where(like, nearest, -1), np.where(np.isfinite(best), best, np.nan)
