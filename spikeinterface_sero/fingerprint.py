"""A fingerprint of a rig, from the snippets the model saw: is a cell recorded like a validated rig's cells?

Each cell is measured (baseline noise level and its spectrum shape, the steepness of the downstroke as a
proxy of the filter corner, the noise's roll-off above the filter corner, amplitude, shape and rate); a rig's
fingerprint is the range of its validated cells' measures, the cells themselves (in the measures, in their
noise spectrum and in their shapes) and the Gaussian density of their noise spectrum, with limits learnt from
each cell's distance to the rig's other days. A cell unlike every stored rig is ``unlike_validated_rigs``.
What each measure catches and the numbers on a second rig: ``docs/validate.md``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .constants import (
    LAYER_NORM_EPSILON,
    MIN_FINGERPRINT_DAYS,
    MIN_SESSION_CELLS,
    NBEFORE,
    RIG_DENSITY_LEVEL,
    RIG_FINGERPRINT_MARGIN,
    RIG_JOINT_QUANTILE,
    RIG_SHAPE_QUANTILE,
    SAMPLING_FREQUENCY,
    SNIPPET_LENGTH,
)
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
    "normalised_snippets",
    "mean_normalised_shapes",
    "nearest_distances",
]

#: ``sero_rig``: like a validated rig, unlike every validated rig, or the model has no rig validation
VALIDATED, UNLIKE_VALIDATED_RIGS, NOT_VALIDATED = "validated", "unlike_validated_rigs", "not_validated"
#: the measures of a cell (name: compared in log units?)
FINGERPRINT_FEATURES = {
    "noise_pa": True,  # robust SD of the pre-trigger baseline
    "noise_high_frequency": True,  # var(diff) / (2 var) of the baseline: 1 white, near 0 low-pass/1-f noise
    "downstroke_slope": True,  # steepest fall of the mean spike per sample over its depth: the filter corner
    "amplitude_pa": True,  # depth of the mean spike below its baseline
    "half_width_ms": True,  # width of the inward peak at half depth
    "outward_ratio": False,  # outward phase over inward depth
    "firing_rate_hz": True,  # mean rate over the recording (NaN for snippets without their recording)
    # the noise left in the snippets, log10 power of a band over 2-5 kHz (low: the 1/f part, mid: the corner)
    "noise_low_band": False,  # 0.25-1 kHz
    "noise_mid_band": False,  # 5-9 kHz
    "noise_roll_off": False,  # log10 power 16-20 kHz / 10-13 kHz: how steep the filter falls (its order)
}
_BASELINE = slice(0, 30)  # the first 0.75 ms: before the spike
_FLOOR = {True: 0.1, False: 0.05}  # smallest span of a range (log units / linear units)
_NEIGHBOUR_FEATURES = [
    "noise_pa",
    "noise_high_frequency",
    "downstroke_slope",
    "amplitude_pa",
    "half_width_ms",
    "outward_ratio",
]
# the density judges the noise spectrum alone: set by the amplifier, the electrode filter and the room
_DENSITY_FEATURES = ("noise_low_band", "noise_mid_band", "noise_roll_off")
# the ranges judge what the rig sets (noise, filter, the shape the electrode passes), not what differs from
# cell to cell and seal to seal (amplitude, rate): those enter the neighbour check or only describe the rig
_RANGE_FEATURES = ("noise_pa", "noise_high_frequency", "downstroke_slope", "half_width_ms", "outward_ratio")


def normalised_snippets(waveforms: np.ndarray) -> np.ndarray:
    """Each snippet z-scored over its samples, as the members' LayerNormalization sees it."""
    x = np.asarray(waveforms, dtype=np.float64)
    x = x.reshape(x.shape[0], -1)
    centred = x - x.mean(axis=1, keepdims=True)
    return centred / np.sqrt((centred**2).mean(axis=1, keepdims=True) + LAYER_NORM_EPSILON)


def mean_normalised_shapes(waveforms, spike_unit_index, n_units: int) -> np.ndarray:
    """(n_units, 160) mean normalised snippet of each unit (NaN rows for units without spikes)."""
    index = np.asarray(spike_unit_index, dtype=np.int64)
    if not len(index):
        return np.full((n_units, SNIPPET_LENGTH), np.nan)
    z = normalised_snippets(waveforms)
    counts = np.bincount(index, minlength=n_units)[:n_units]
    sums = np.zeros((n_units, z.shape[1]))
    np.add.at(sums, index, z)
    return np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], np.nan)


def nearest_distances(
    shapes: np.ndarray, reference: np.ndarray, *, leave_one_out: bool = False, groups=None
) -> np.ndarray:
    """Root-mean-square distance of each shape to its nearest reference shape (with ``leave_one_out``, the
    reference is ``shapes`` itself and a shape is not its own neighbour, nor, with ``groups``, any shape of
    its own group: its recording day)."""
    squared = (shapes**2).sum(1)[:, None] + (reference**2).sum(1)[None, :] - 2.0 * shapes @ reference.T
    if leave_one_out:
        squared[_own(len(shapes), groups)] = np.inf
    return np.sqrt(np.maximum(squared, 0.0).min(axis=1) / shapes.shape[1])


def _own(n: int, groups=None) -> np.ndarray:
    """(n, n) which reference cells a cell may not be compared with: itself, and its own day's cells."""
    if groups is None:
        return np.eye(n, dtype=bool)
    groups = np.asarray(groups, dtype=object)
    return groups[:, None] == groups[None, :]


def _days(measures: pd.DataFrame, groups) -> np.ndarray | None:
    """The cells' recording days when at least :data:`MIN_FINGERPRINT_DAYS` are named (``groups``, else the
    measures' ``group`` column); None: leave one cell out instead."""
    if groups is None and "group" in measures:
        groups = measures["group"]
    if groups is None:
        return None
    groups = np.asarray(groups, dtype=object)
    named = np.array([isinstance(g, str) and g != "" for g in groups])
    if len(groups) != len(measures) or not named.all() or len(set(groups)) < MIN_FINGERPRINT_DAYS:
        return None
    return groups


def _band_power(power: np.ndarray, frequency: np.ndarray, low: float, high: float) -> float:
    return float(power[(frequency >= low) & (frequency <= high)].sum())


def _noise_spectrum(x: np.ndarray) -> tuple[float, float, float]:
    """(low band, mid band, roll-off) of the noise left in the snippets once each is fitted by the cell's mean spike, its
    time derivative and an offset (jitter in amplitude and time is fitted away); Hann-windowed periodogram."""
    mean = x.mean(axis=0)
    design = np.column_stack([mean, np.gradient(mean), np.ones(x.shape[1])])
    coefficients = np.linalg.lstsq(design, x.T, rcond=None)[0]
    residual = x - (design @ coefficients).T
    power = (np.abs(np.fft.rfft(residual * np.hanning(x.shape[1]), axis=1)) ** 2).mean(axis=0)
    frequency = np.fft.rfftfreq(x.shape[1], 1.0 / SAMPLING_FREQUENCY)
    bands = [(250.0, 1e3), (5e3, 9e3), (16e3, 20e3), (2e3, 5e3), (10e3, 13e3)]
    low, mid, top, reference, below_top = (_band_power(power, frequency, *band) for band in bands)
    if min(low, mid, top, reference, below_top) <= 0:
        return np.nan, np.nan, np.nan
    return float(np.log10(low / reference)), float(np.log10(mid / reference)), float(np.log10(top / below_top))


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
    if len(x) >= 3 and np.isfinite(x).all():
        out["noise_low_band"], out["noise_mid_band"], out["noise_roll_off"] = _noise_spectrum(x)
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
    x = np.asarray(waveforms, dtype=np.float64)
    x = x.reshape(len(x), -1) if x.size else np.zeros((0, SNIPPET_LENGTH))
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


def _matrix(measures: pd.DataFrame, names) -> np.ndarray:
    return np.column_stack(
        [
            _scaled(measures[n], FINGERPRINT_FEATURES[n]) if n in measures else np.full(len(measures), np.nan)
            for n in names
        ]
    )


def _nearest(points: np.ndarray, reference: np.ndarray, *, leave_one_out: bool = False, groups=None) -> np.ndarray:
    """RMS over the measures both have of the standardised difference to the nearest reference cell (not
    itself nor its day's cells with ``leave_one_out``: see :func:`nearest_distances`)."""
    difference = points[:, None, :] - reference[None, :, :]
    counted = np.isfinite(difference).sum(axis=2)
    squared = np.where(counted > 0, np.nansum(difference**2, axis=2) / np.maximum(counted, 1), np.inf)
    if leave_one_out:
        squared[_own(len(points), groups)] = np.inf
    return np.sqrt(squared.min(axis=1))


def _fit_density(measures: pd.DataFrame, level: float = RIG_DENSITY_LEVEL) -> dict | None:
    """Mean, inverse covariance and limit of the rig's noise-spectrum measures: a new cell of the rig lies within
    the limit (Mahalanobis distance) with probability ``level`` if the measures are Gaussian (Hotelling's
    prediction region, which widens for few cells); None with too few cells."""
    from scipy.stats import f as f_distribution

    names = [n for n in _DENSITY_FEATURES if n in measures]
    points = _matrix(measures, names)
    points = points[np.isfinite(points).all(axis=1)]
    n, k = points.shape
    if k < len(_DENSITY_FEATURES) or n < k + 5:
        return None
    covariance = np.cov(points, rowvar=False) + 1e-6 * np.eye(k)
    squared = k * (n - 1) * (n + 1) / (n * (n - k)) * f_distribution.ppf(level, k, n - k)
    return {
        "features": names,
        "mean": [float(v) for v in points.mean(axis=0)],
        "inverse_covariance": np.linalg.inv(covariance).tolist(),
        "limit": float(np.sqrt(squared)),
        "level": float(level),
    }


def _density_distance(measures: pd.DataFrame, density: dict) -> np.ndarray:
    """(n_cells,) Mahalanobis distance of each cell's noise-spectrum measures to the rig's (NaN when missing)."""
    difference = _matrix(measures, density["features"]) - np.asarray(density["mean"])
    squared = np.einsum("ij,jk,ik->i", difference, np.asarray(density["inverse_covariance"]), difference)
    return np.sqrt(np.maximum(squared, 0.0))


def _fit_neighbours(measures: pd.DataFrame, names: list, days, margin: float) -> dict | None:
    """The rig's cells in the measures ``names`` (each standardised by its SD) and the limit a cell's distance
    to the nearest of them must keep: ``1 + margin`` times the 95th percentile of the cells' own distances
    (to other days' cells with ``days``); None without any such distance."""
    points = _matrix(measures, names)
    scale = np.maximum(np.nanstd(points, axis=0), [_FLOOR[FINGERPRINT_FEATURES[n]] for n in names])
    points = points / scale
    own = _nearest(points, points, leave_one_out=True, groups=days)
    if not names or not np.isfinite(own).any():
        return None
    fitted = {
        "features": names,
        "scale": [float(v) for v in scale],
        "cells": np.round(points, 4).tolist(),
        "limit": (1.0 + margin) * float(np.quantile(own[np.isfinite(own)], 0.95)),
    }
    fitted["own_ratios"] = own / fitted["limit"]
    return fitted


def fit_fingerprint(
    measures: pd.DataFrame, shapes=None, *, margin: float = RIG_FINGERPRINT_MARGIN, groups=None
) -> dict:
    """A rig's fingerprint from its validated cells' :func:`cell_fingerprints` (JSON values).

    Two checks: per measure the range of the rig's cells (log10 for the positive ones), which a cell may
    pass by ``margin`` times the range's span; and the rig's cells themselves (standardised by each
    measure's SD), of which a cell must lie near one: within ``1 + margin`` times the 95th percentile of the
    cells' own nearest-neighbour distances, each cell to the cells of the other days when the cells come from
    at least :data:`MIN_FINGERPRINT_DAYS` days (a new day is judged as the rig's own days were), else to the
    other cells. The firing rate enters the ranges only (it is a cell's, not the rig's). The same neighbour
    check on the noise spectrum alone (low and mid band, roll-off: ``spectrum``, only with the cells' days),
    which a rig of several kinds of days keeps as tight as each kind; with enough cells, the Gaussian density of the same three
    measures, whose :data:`RIG_DENSITY_LEVEL` prediction region a cell must lie in. With ``shapes``, the
    cells' mean normalised shapes, their limit the :data:`RIG_SHAPE_QUANTILE` quantile of the same own
    distances.

    Parameters
    ----------
    measures : pandas.DataFrame
        The cells' :func:`cell_fingerprints` (other columns are ignored but ``group``).
    shapes : np.ndarray or None, default: None
        (n_cells, 160) the cells' :func:`mean_normalised_shapes`.
    margin : float, default: RIG_FINGERPRINT_MARGIN
        How far past the rig's own spread a cell may lie (ranges and neighbours).
    groups : sequence of str or None, default: None
        Each cell's recording day; None: the measures' ``group`` column where it has one.

    Returns
    -------
    dict
        The fingerprint (JSON values), ``own_distances`` saying how its limits were learnt.
    """
    if len(measures) < 3:
        raise DataError("a rig's fingerprint needs the measures of at least three cells.")
    days = _days(measures, groups)
    features = {}
    for name, logarithmic in FINGERPRINT_FEATURES.items():
        v = _scaled(measures[name], logarithmic) if name in measures else np.array([np.nan])
        v = v[np.isfinite(v)]
        if v.size >= 2:
            features[name] = {"low": float(v.min()), "high": float(v.max()), "log10": logarithmic}
    out = {
        "n_cells": int(len(measures)),
        "margin": float(margin),
        "own_distances": "leave one day out" if days is not None else "leave one cell out",
        "features": features,
        "neighbours": _fit_neighbours(measures, [n for n in _NEIGHBOUR_FEATURES if n in features], days, margin),
    }
    own_ratios = {}
    if out["neighbours"] is not None:
        own_ratios["neighbours"] = out["neighbours"].pop("own_ratios")
    # the spectrum's own neighbour check judges a rig of several kinds of days by the nearest kind; learnt from
    # one day's cells (leave one cell out) it would flag a new day's filter and noise as another rig, and one
    # kind of day is what the density judges
    spectrum = None
    if days is not None:
        spectrum = _fit_neighbours(measures, [n for n in _DENSITY_FEATURES if n in features], days, margin)
    if spectrum is not None:
        own_ratios["spectrum"] = spectrum.pop("own_ratios")
        out["spectrum"] = spectrum
    density = _fit_density(measures)
    if density is not None:
        out["density"] = density
    if shapes is not None:
        shapes = np.asarray(shapes, dtype=np.float64)
        has = np.isfinite(shapes).all(axis=1)
        own_shape = np.full(len(shapes), np.nan)
        own_shape[has] = nearest_distances(
            shapes[has], shapes[has], leave_one_out=True, groups=None if days is None else days[has]
        )
        limit = float(np.nanquantile(own_shape, RIG_SHAPE_QUANTILE))
        out["shapes"] = {"cells": np.round(shapes[has], 4).tolist(), "limit": limit, "quantile": RIG_SHAPE_QUANTILE}
        own_ratios["shapes"] = own_shape / limit
    joint = _fit_joint(own_ratios) if days is not None else None  # its quantile has no margin: a day's own cells
    if joint is not None:
        out["joint"] = joint
        own_ratios["joint"] = _joint_ratio({k: own_ratios[k] for k in joint["checks"]}) / joint["limit"]
    session = _fit_session(own_ratios, days)
    if session is not None:
        out["session"] = session
    return out


def _fit_session(own_ratios: dict, days) -> dict | None:
    """The session check (a day's cells judged together): a session is unlike the rig when its median cell's
    distance (:func:`fingerprint_distance`, here from the neighbour, noise-spectrum, shape and joint checks) is
    past the limit, halfway between the rig's worst own day (each cell to the other days' cells) and 0, where
    most of a session's cells are unlike the rig by themselves. None without :data:`MIN_FINGERPRINT_DAYS`
    named days of at least :data:`MIN_SESSION_CELLS` cells each."""
    if days is None or not own_ratios:
        return None
    distance = pd.DataFrame(own_ratios).max(axis=1).to_numpy(dtype=np.float64) - 1.0  # NaN: no check measured
    medians = {}
    for day in pd.unique(days):
        values = distance[(days == day) & np.isfinite(distance)]
        if len(values) >= MIN_SESSION_CELLS:
            medians[str(day)] = float(np.median(values))
    if len(medians) < MIN_FINGERPRINT_DAYS:
        return None
    worst = max(medians.values())
    return {
        "statistic": "median cell distance",
        "min_cells": MIN_SESSION_CELLS,
        "own_day_medians": medians,
        "limit": worst / 2.0 if worst < 0 else worst,
    }


def _joint_ratio(ratios: dict) -> np.ndarray:
    """(n_cells,) root mean square of a cell's distance-to-limit ratios over the checks it has."""
    stacked = np.vstack(list(ratios.values()))
    counted = np.isfinite(stacked).sum(axis=0)
    with np.errstate(invalid="ignore"):
        return np.where(counted > 0, np.sqrt(np.nansum(stacked**2, axis=0) / np.maximum(counted, 1)), np.nan)


def _fit_joint(own_ratios: dict) -> dict | None:
    """The joint check: a cell of the rig may lie near the limit of one check, seldom of all at once. Its
    limit: the :data:`RIG_JOINT_QUANTILE` quantile of the rig's own cells' RMS ratio over the neighbour,
    noise-spectrum and shape checks (each cell to the other days' cells, as for those checks). Fitted only with
    the cells' days: a quantile of one day's own ratios, without a margin, flags a new day of the rig."""
    if len(own_ratios) < 2:
        return None
    own = _joint_ratio(own_ratios)
    if not np.isfinite(own).sum() >= 3:
        return None
    return {"checks": sorted(own_ratios), "limit": float(np.nanquantile(own, RIG_JOINT_QUANTILE))}


def fingerprint_distance(measures: pd.DataFrame, fingerprint: dict, shapes=None) -> np.ndarray:
    """(n_cells,) how unlike the rig each cell is: the largest of (a) how far outside the rig's ranges it
    lies, in spans of each range, over ``margin``, (b) its nearest-neighbour distances (measures, noise
    spectrum) over their limits, minus 1, (c) its noise spectrum's Mahalanobis distance over the density's
    limit, minus 1, (d) its shape's nearest distance over the shape limit, minus 1, and (e) the root mean
    square of the ratios of (b) and (d) over the joint limit, minus 1. At most 0: like the rig; NaN when nothing
    could be compared."""
    distance = np.full(len(measures), np.nan)
    for name, bounds in fingerprint["features"].items():
        if name not in measures or name not in _RANGE_FEATURES:
            continue
        v = _scaled(measures[name], bounds["log10"])
        span = max(bounds["high"] - bounds["low"], _FLOOR[bool(bounds["log10"])])
        outside = np.maximum(0.0, np.maximum(bounds["low"] - v, v - bounds["high"])) / span
        distance = np.where(np.isfinite(outside), np.fmax(distance, outside / fingerprint["margin"] - 1.0), distance)
    ratios = {}
    for key in ("neighbours", "spectrum"):
        neighbours = fingerprint.get(key)
        if neighbours and len(measures):
            points = _matrix(measures, neighbours["features"]) / np.asarray(neighbours["scale"])
            ratios[key] = _nearest(points, np.asarray(neighbours["cells"], dtype=np.float64)) / neighbours["limit"]
            distance = np.where(np.isfinite(ratios[key]), np.fmax(distance, ratios[key] - 1.0), distance)
    density = fingerprint.get("density")
    if density and len(measures):
        far = _density_distance(measures, density) / density["limit"] - 1.0
        distance = np.where(np.isfinite(far), np.fmax(distance, far), distance)
    reference = fingerprint.get("shapes")
    if reference and shapes is not None and len(measures):
        shapes = np.asarray(shapes, dtype=np.float64)
        has = np.isfinite(shapes).all(axis=1)
        nearest = np.full(len(shapes), np.nan)
        if has.any():
            nearest[has] = nearest_distances(shapes[has], np.asarray(reference["cells"], dtype=np.float64))
        ratios["shapes"] = nearest / reference["limit"]
        distance = np.where(np.isfinite(nearest), np.fmax(distance, ratios["shapes"] - 1.0), distance)
    joint = fingerprint.get("joint")
    if joint and all(check in ratios for check in joint["checks"]) and len(measures):
        far = _joint_ratio({check: ratios[check] for check in joint["checks"]}) / joint["limit"] - 1.0
        distance = np.where(np.isfinite(far), np.fmax(distance, far), distance)
    return distance


def match_rigs(
    measures: pd.DataFrame, rig_validation: dict | None, shapes=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which validated rig each cell is like (``shapes``: the cells' :func:`mean_normalised_shapes`).

    Returns
    -------
    status : np.ndarray
        (n_cells,) "validated", "unlike_validated_rigs" or "not_validated" (no rig stored).
    rig : np.ndarray
        (n_cells,) index of the nearest validated rig the cell is like, -1 when none.
    distance : np.ndarray
        (n_cells,) :func:`fingerprint_distance` to the nearest rig (NaN without rigs; at most 0 is like it).
    """
    n = len(measures)
    rigs = (rig_validation or {}).get("rigs") or []
    if not rigs:
        return np.full(n, NOT_VALIDATED, object), np.full(n, -1), np.full(n, np.nan)
    distances = np.vstack([fingerprint_distance(measures, rig["fingerprint"], shapes) for rig in rigs])
    filled = np.where(np.isfinite(distances), distances, np.inf)
    nearest = filled.argmin(axis=0)
    best = filled[nearest, np.arange(n)]
    like = best <= 0.0
    status = np.where(like, VALIDATED, UNLIKE_VALIDATED_RIGS).astype(object)
    return status, np.where(like, nearest, -1), np.where(np.isfinite(best), best, np.nan)
