"""The decision rule, in one place: P(SER) per spike, the spike and cell rules, the interval, reliability.

Every caller (the ``serotonergic`` extension, the batch runner, the Neo bridge, evaluation, the watcher)
goes through :func:`decide_units`; nothing else derives a probability, a label or a reliability flag.
The rules and their reasons are in ``docs/architecture.md`` ("The decision").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .conformal import NOT_CALIBRATED, SET_BOTH, SET_EMPTY, check_rig_validation, prediction_sets
from .constants import (
    DEFAULT_CI,
    DEFAULT_MIN_SPIKES,
    DEFAULT_N_BOOT,
    LABELS,
    MAX_CLIPPED_FRACTION,
    MAX_END_OFFSET_RATIO,
    MAX_FIRING_RATE_HZ,
    MAX_HALF_WIDTH_MS,
    MAX_N_BOOT,
    MAX_OUTWARD_RATIO,
    MAX_SHORT_ISI_FRACTION,
    MAX_TEMPERATURE,
    MAX_TRAINING_SHAPES,
    MIN_CALIBRATION_CELLS,
    MIN_CALIBRATION_CELLS_PER_CLASS,
    MIN_OUTWARD_RATIO,
    MIN_SHAPE_CONSISTENCY,
    MIN_SNR,
    NBEFORE,
    PEAK_EDGE_SAMPLES,
    SAMPLING_FREQUENCY,
    SHORT_ISI_MS,
    SNIPPET_LENGTH,
    TRAINING_DISTANCE_MARGIN,
    TRAINING_DISTANCE_QUANTILE,
)
from .errors import DataError
from .features import UNDETERMINED, add_sero_type
from .fingerprint import (
    NOT_VALIDATED,
    VALIDATED,
    cell_fingerprints,
    match_rigs,
    mean_normalised_shapes,
    nearest_distances,
)
from .schema import UNIT_COLUMN_DESCRIPTIONS, UNIT_COLUMNS
from .sequential import safe_moments
from .sessions import check_rig_session, session_status
from .stimulus import stimulus_reasons

__all__ = [
    "DecisionParams",
    "describe_rule",
    "reliable_domain",
    "CONVERTED_FROM",
    "UNIT_COLUMNS",
    "UNIT_COLUMN_DESCRIPTIONS",
    "CELL_COLUMNS",
    "consensus_of",
    "spike_probability",
    "spike_votes_ser",
    "cell_decisions",
    "running_cell_probability",
    "calibrate",
    "uncalibrate",
    "fit_temperature",
    "action_current_quality",
    "describe_training_snippets",
    "describe_training_data",
    "training_distance",
    "decide_units",
    "QUALITY_OK",
]

#: ``sero_quality`` of a cell that passes every action-current check
QUALITY_OK = "ok"
#: domains whose snippets are like the model's training data (current at 40 kHz, or resampled to it)
_RELIABLE_DOMAINS = {"in_domain", "resampled"}
#: ``sero_domain`` part of a current read in another unit and scaled to pA (``converted_from_nA``): reliable
CONVERTED_FROM = "converted_from_"
_BASELINE_SAMPLES = 30  # the first 0.75 ms of the window: before the spike

SER, NSER = LABELS

#: columns of :func:`cell_decisions`
CELL_COLUMNS = [
    "sero_label",
    "sero_probability",
    "sero_probability_low",
    "sero_probability_high",
    "sero_reliable",
    "n_spikes",
    "fraction_spikes_ser",
]
_QUALITY_COLUMNS = [
    "sero_quality",
    "snr",
    "shape_consistency",
    "outward_ratio",
    "half_width_ms",
    "training_distance",
]
#: ``sero_quality`` reason of a cell whose shape is far from every training cell's
UNLIKE_TRAINING = "unlike_training_data"
#: format name of the training-data description a model folder keeps
TRAINING_DATA_FORMAT = "sero-training-shapes-1"
_FEATURE_COLUMNS = ["firing_rate_hz", "cv_isi", "lv", "udi_ms", "criteria_label"]
_CHUNK_ELEMENTS = 500_000  # bootstrap indices drawn per pass (bounds the temporary array to ~4 MB)


@dataclass(frozen=True)
class DecisionParams:
    """How a cell's call and its interval are made.

    Parameters
    ----------
    n_boot : int, default: 1000
        Bootstrap resamples of the cell's spikes for the interval of the cell probability (10 to 100,000:
        the time grows with resamples x spikes).
    ci : float, default: 0.95
        Coverage of the percentile interval.
    seed : int, default: 0
        Seed of the bootstrap. The resamples depend only on the seed and the cell's spikes, so a cell's
        interval does not depend on its name or on the other cells.
    min_spikes : int, default: 20
        A call is reliable only with at least this many spikes (the interval reflects the spread over the
        spikes there are and is optimistic for a handful; the paper's training cells had at least 15).
    """

    n_boot: int = DEFAULT_N_BOOT
    ci: float = DEFAULT_CI
    seed: int = 0
    min_spikes: int = DEFAULT_MIN_SPIKES

    def __post_init__(self):
        for name in ("n_boot", "seed", "min_spikes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise DataError(f"{name} must be an integer, not {value!r}.")
            object.__setattr__(self, name, int(value))
        if not 10 <= self.n_boot <= MAX_N_BOOT:
            raise DataError(
                f"n_boot must be from 10 to {MAX_N_BOOT:,} (bootstrap resamples of the informational interval; "
                f"the default {DEFAULT_N_BOOT} is plenty), not {self.n_boot}."
            )
        if self.seed < 0:
            raise DataError(f"seed must be a non-negative integer, not {self.seed}.")
        if self.min_spikes < 1:
            raise DataError(f"min_spikes must be at least 1, not {self.min_spikes}.")
        if not isinstance(self.ci, (int, float, np.floating)) or not 0.0 < float(self.ci) < 1.0:
            raise DataError(f"ci must be a number between 0 and 1 (e.g. 0.95), not {self.ci!r}.")
        object.__setattr__(self, "ci", float(self.ci))

    def to_dict(self) -> dict:
        """The parameters as JSON values."""
        return asdict(self)


def consensus_of(member_outputs) -> np.ndarray:
    """The ensemble's consensus: the mean of the members' (SER, NSER) outputs, (n, n_members, 2) -> (n, 2)."""
    outputs = np.asarray(member_outputs, dtype=np.float64)
    if outputs.ndim != 3 or outputs.shape[2] != 2:
        raise DataError(f"member outputs have shape {outputs.shape}; expected (n_spikes, n_members, 2).")
    if outputs.shape[1] == 0:
        return np.zeros((outputs.shape[0], 2))
    return outputs.mean(axis=1)


def spike_probability(consensus) -> np.ndarray:
    """P(SER) of each spike (or of each mean): c0 / (c0 + c1), 0.5 where both outputs are 0."""
    c = np.asarray(consensus, dtype=np.float64)
    total = c[..., 0] + c[..., 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, c[..., 0] / np.where(total > 0, total, 1.0), 0.5)


def spike_votes_ser(consensus) -> np.ndarray:
    """The spike rule: a spike votes serotonergic when its SER output is larger than its NSER output."""
    c = np.asarray(consensus, dtype=np.float64)
    return c[..., 0] > c[..., 1]


def _check_consensus(consensus, cell_ids) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(consensus, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != 2:
        raise DataError(f"consensus has shape {c.shape}; expected (n, 2) (the ensemble's mean output per spike).")
    if not np.isfinite(c).all() or (c < 0).any():
        raise DataError("consensus contains NaN, inf or negative values; expected member outputs in [0, 1].")
    ids = np.asarray(cell_ids)
    if ids.ndim != 1 or ids.shape[0] != c.shape[0]:
        raise DataError(f"cell_ids has shape {ids.shape}; expected one id per spike ({c.shape[0]},).")
    return c, ids


def _interval(spikes: np.ndarray, estimate: float, params: DecisionParams) -> tuple[float, float]:
    """Percentile bootstrap interval of the cell probability, widened to contain the estimate."""
    n = spikes.shape[0]
    if n == 1:
        return 0.0, 1.0
    rng = np.random.default_rng([params.seed, n])
    chunk = max(1, min(params.n_boot, _CHUNK_ELEMENTS // n))
    boot = np.empty(params.n_boot)
    for start in range(0, params.n_boot, chunk):
        size = min(chunk, params.n_boot - start)
        indices = rng.integers(0, n, size=(size, n))
        boot[start : start + size] = spike_probability(spikes[indices].mean(axis=1))
    alpha = (1.0 - params.ci) / 2.0
    low, high = (float(v) for v in np.quantile(boot, [alpha, 1.0 - alpha]))
    return min(low, estimate), max(high, estimate)


def calibrate(probability, calibration: dict | None) -> np.ndarray:
    """A model's calibration applied to cell probabilities: temperature scaling of the log-odds.

    ``calibration`` is ``{"method": "temperature", "temperature": T}`` (from the model folder) or None
    (probabilities as they are). The map is monotone and keeps 0.5 at 0.5, so labels and whether an interval
    is clear of 0.5 do not change; only the probabilities and their interval do.
    """
    p = np.asarray(probability, dtype=np.float64)
    if not calibration:
        return p
    if calibration.get("method") != "temperature":
        raise DataError(f"unknown calibration method {calibration.get('method')!r}; expected 'temperature'.")
    temperature = float(calibration["temperature"])
    if not np.isfinite(temperature) or temperature <= 0:
        raise DataError(f"the calibration temperature must be a positive number, not {temperature!r}.")
    clipped = np.clip(p, 1e-12, 1 - 1e-12)
    calibrated = 1.0 / (1.0 + np.exp(-np.log(clipped / (1 - clipped)) / temperature))
    return np.where(np.isfinite(p), calibrated, np.nan)


def uncalibrate(probability, calibration: dict | None) -> np.ndarray:
    """The ensemble's own probabilities back from calibrated ones: :func:`calibrate` undone (its inverse
    temperature); as they are without a calibration."""
    if not calibration:
        return np.asarray(probability, dtype=np.float64)
    return calibrate(probability, dict(calibration, temperature=1.0 / float(calibration["temperature"])))


def fit_temperature(probability, is_ser) -> dict:
    """The temperature that minimises the negative log-likelihood of cell calls on held-out cells.

    One parameter, so that it can be fitted on the few validation cells a lab has (Platt scaling fits two
    and isotonic regression many, which a dozen cells cannot support). The targets are Platt's (1999)
    smoothed ones, ``(n_ser + 1) / (n_ser + 2)`` for serotonergic cells and ``1 / (n_nser + 2)`` for the others,
    so that a validation set the model separates perfectly does not drive the temperature to zero (every
    probability to 0 or 1): with 6 cells of each class the fit aims at 0.875 / 0.125, which is all 12 cells
    can tell. Errors justify softening, not a small set: when every held-out cell is called right the
    temperature is at most 1 (the ensemble's own probabilities, or sharper ones when they were
    under-confident). Fewer than :data:`~spikeinterface_sero.constants.MIN_CALIBRATION_CELLS` cells (or
    :data:`~spikeinterface_sero.constants.MIN_CALIBRATION_CELLS_PER_CLASS` of a class) fit nothing
    (temperature 1, saying so), and the temperature stays within 1/4-4
    (:data:`~spikeinterface_sero.constants.MAX_TEMPERATURE`): 4 cells with one wrong once gave 13, which
    pulled every new cell to 0.3-0.4. Returns the calibration dict.
    """
    from scipy.optimize import minimize_scalar

    p = np.clip(np.asarray(probability, dtype=np.float64), 1e-6, 1 - 1e-6)
    y = np.asarray(is_ser, dtype=bool)
    if p.size < 2 or y.all() or not y.any():
        raise DataError("fitting a calibration needs held-out cells of both classes.")
    if p.size < MIN_CALIBRATION_CELLS or min(int(y.sum()), int((~y).sum())) < MIN_CALIBRATION_CELLS_PER_CLASS:
        return {
            "method": "temperature",
            "temperature": 1.0,
            "n_cells": int(p.size),
            "targets": f"not fitted: {int(y.sum())} + {int((~y).sum())} held-out cells are too few (at least "
            f"{MIN_CALIBRATION_CELLS}, {MIN_CALIBRATION_CELLS_PER_CLASS} of each class); the ensemble's own "
            "probabilities are kept",
        }
    logit = np.log(p / (1 - p))
    n_ser, n_nser = int(y.sum()), int((~y).sum())
    target = np.where(y, (n_ser + 1) / (n_ser + 2), 1 / (n_nser + 2))

    def nll(log_temperature):
        q = np.clip(1.0 / (1.0 + np.exp(-logit / np.exp(log_temperature))), 1e-12, 1 - 1e-12)
        return -float(np.mean(target * np.log(q) + (1 - target) * np.log(1 - q)))

    best = minimize_scalar(nll, bounds=(-np.log(MAX_TEMPERATURE), np.log(MAX_TEMPERATURE)), method="bounded")
    temperature = float(np.exp(best.x))
    out = {"method": "temperature", "temperature": temperature, "n_cells": int(p.size)}
    out["targets"] = "Platt's smoothed targets"
    if temperature > 1.0 and np.array_equal(p > 0.5, y):
        # every held-out cell on its right side: nothing shows the ensemble is overconfident, and softening
        # it towards (n + 1) / (n + 2) would only say the set is small (its intervals say that already)
        out["temperature"] = 1.0
        out["targets"] += "; not softened: every held-out cell was called right"
    return out


def _is_reliable(n_spikes: int, low: float, high: float, params: DecisionParams) -> bool:
    """A call is reliable with enough spikes and an interval clear of 0.5."""
    return bool(n_spikes >= params.min_spikes and (low > 0.5 or high < 0.5))


def cell_decisions(
    consensus, cell_ids, params: DecisionParams | None = None, calibration: dict | None = None
) -> pd.DataFrame:
    """The cell rule with its interval, for every cell of ``cell_ids`` (order of first appearance).

    Parameters
    ----------
    consensus : np.ndarray
        (n, 2) consensus of the ensemble per spike (:func:`consensus_of`).
    cell_ids : array-like
        (n,) the cell of each spike.
    params : DecisionParams or None, default: None
        None: the defaults.
    calibration : dict or None, default: None
        The model's calibration (:func:`calibrate`), applied to the probability and its interval.

    Returns
    -------
    pandas.DataFrame
        Indexed by cell id, :data:`CELL_COLUMNS`: ``sero_label`` is serotonergic when the mean consensus
        over the cell's spikes favours SER (Corradetti et al. 2024); ``sero_probability`` is P(SER) of
        that mean, with its bootstrap interval; ``sero_reliable`` (here only: enough spikes and an interval
        clear of 0.5, for evaluations without a rig; :func:`decide_units` replaces it by the full rule);
        ``n_spikes``; ``fraction_spikes_ser``
        (spikes whose own consensus votes SER).
    """
    params = DecisionParams() if params is None else params
    c, ids = _check_consensus(consensus, cell_ids)
    if c.shape[0] == 0:
        return pd.DataFrame({col: [] for col in CELL_COLUMNS}, index=pd.Index([], name="cell_id"))
    codes, uniques = pd.factorize(ids, sort=False)
    if (codes < 0).any():
        raise DataError(f"{int((codes < 0).sum())} spikes have no cell id (None/NaN); give every spike a cell id.")
    rows = []
    for code in range(len(uniques)):
        spikes = c[codes == code]
        mean = spikes.mean(axis=0)
        estimate = float(spike_probability(mean))
        low, high = _interval(spikes, estimate, params)
        estimate, low, high = (float(v) for v in calibrate([estimate, low, high], calibration))
        n = int(spikes.shape[0])
        label = SER if spike_votes_ser(mean) else NSER
        fraction = float(spike_votes_ser(spikes).mean())
        rows.append((label, estimate, low, high, _is_reliable(n, low, high, params), n, fraction))
    table = pd.DataFrame(rows, columns=CELL_COLUMNS, index=pd.Index(list(uniques), name="cell_id"))
    table["n_spikes"] = table["n_spikes"].astype("int64")
    table["sero_reliable"] = table["sero_reliable"].astype(bool)
    return table


def running_cell_probability(consensus, calibration: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The cell rule's value after each spike of one cell: what :func:`cell_decisions` would give the cell's
    first 1, 2, ... n spikes (in the order given).

    Parameters
    ----------
    consensus : np.ndarray
        (n, 2) consensus of the cell's spikes (:func:`consensus_of`), in the order they were recorded.
    calibration : dict or None, default: None
        The model's calibration (:func:`calibrate`).

    Returns
    -------
    raw : np.ndarray
        (n,) P(SER) of the running mean consensus, the ensemble's own scale (above 0.5: the call is SER).
    calibrated : np.ndarray
        (n,) the same on the calibrated cell scale (``sero_probability``'s).
    """
    c, _ = _check_consensus(consensus, np.zeros(len(np.asarray(consensus))))
    running = np.cumsum(c, axis=0) / np.arange(1, c.shape[0] + 1)[:, None]
    raw = spike_probability(running)
    return raw, calibrate(raw, calibration)


def _shape_checks(waveforms: np.ndarray) -> tuple[list[str], dict]:
    """The shape checks of one cell's (n, 160) negative-going snippets: failed reasons and the measures."""
    measures = dict(snr=np.nan, shape_consistency=np.nan, outward_ratio=np.nan, half_width_ms=np.nan)
    if waveforms.shape[0] == 0:
        return ["no_spikes"], measures
    x = waveforms.astype(np.float64) - np.median(waveforms[:, :_BASELINE_SAMPLES], axis=1, keepdims=True)
    mean = x.mean(axis=0)
    search = slice(NBEFORE - 10, NBEFORE + 40)  # the inward peak follows the trigger within 1 ms
    trough = search.start + int(np.argmin(mean[search]))
    depth = -float(mean[trough])
    if depth <= 0:
        return ["no_inward_peak"], measures
    reasons = []
    noise = 1.4826 * np.median(np.abs(x[:, :_BASELINE_SAMPLES] - np.median(x[:, :_BASELINE_SAMPLES])))
    measures["snr"] = depth / noise if noise > 0 else np.inf
    if measures["snr"] < MIN_SNR:
        reasons.append("low_snr")
    peak = trough + int(np.argmax(mean[trough:]))
    measures["outward_ratio"] = float(mean[peak]) / depth
    if measures["outward_ratio"] < MIN_OUTWARD_RATIO:
        reasons.append("monophasic")
    elif measures["outward_ratio"] > MAX_OUTWARD_RATIO:
        reasons.append("outward_phase_too_large")
    elif peak >= mean.size - PEAK_EDGE_SAMPLES:
        reasons.append("outward_peak_at_window_edge")
    if abs(float(mean[-15:].mean())) > MAX_END_OFFSET_RATIO * depth:
        reasons.append("no_return_to_baseline")
    below = mean < -depth / 2
    left, right = trough, trough
    while left > 0 and below[left - 1]:
        left -= 1
    while right < mean.size - 1 and below[right + 1]:
        right += 1
    measures["half_width_ms"] = (right - left + 1) * 1000.0 / SAMPLING_FREQUENCY
    if measures["half_width_ms"] > MAX_HALF_WIDTH_MS:
        reasons.append("inward_phase_too_wide")
    centred = x - x.mean(axis=1, keepdims=True)
    reference = mean - mean.mean()
    norms = np.linalg.norm(centred, axis=1) * np.linalg.norm(reference)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.where(norms > 0, centred @ reference / norms, 0.0)
    measures["shape_consistency"] = float(np.median(correlation))
    if measures["shape_consistency"] < MIN_SHAPE_CONSISTENCY:
        reasons.append("inconsistent_shapes")
    at_minimum = (waveforms == waveforms.min(axis=1, keepdims=True)).sum(axis=1)
    if float((at_minimum >= 3).mean()) > MAX_CLIPPED_FRACTION:
        reasons.append("clipped")
    return reasons, measures


def action_current_quality(
    waveforms,
    spike_unit_index,
    unit_ids,
    *,
    firing_rate_hz=None,
    isis_s=None,
    training_data: dict | None = None,
    rig_validation: dict | None = None,
) -> pd.DataFrame:
    """Is each cell a loose-seal action current like the model's training data? The named checks.

    Parameters
    ----------
    waveforms : np.ndarray
        (n_spikes, 160) snippets in the model's orientation (negative-going), 40 kHz, trigger at 40.
    spike_unit_index : np.ndarray
        (n_spikes,) index into ``unit_ids`` of each spike's unit.
    unit_ids : sequence
        The cells.
    firing_rate_hz : sequence of float or None, default: None
        Per cell, the firing rate over the recording.
    isis_s : sequence of np.ndarray or None, default: None
        Per cell, the inter-spike intervals within sweeps, in seconds.
    training_data : dict or None, default: None
        The model's description of its training snippets (``ensemble.info["training_data"]``,
        :func:`describe_training_snippets`): a cell farther than its limit fails ``unlike_training_data``.
        None (the published models do not describe theirs): only the shape checks above.
    rig_validation : dict or None, default: None
        The model's validated rigs (``ensemble.info["rig_validation"]``, ``docs/validate.md``): each cell's
        fingerprint is compared with theirs (``sero_rig``, ``rig_index``, ``rig_distance``); None: every
        cell is ``not_validated``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``unit_id``: ``sero_quality`` (``"ok"``, or the failed checks joined by ``+``: low_snr,
        monophasic, outward_phase_too_large, outward_peak_at_window_edge, no_return_to_baseline, inward_phase_too_wide,
        inconsistent_shapes, clipped, stimulus_artefact, rate_too_high, refractory_violations, unlike_training_data, no_inward_peak,
        no_spikes) and the measures ``snr``, ``shape_consistency``, ``outward_ratio``, ``half_width_ms``,
        ``training_distance``. The thresholds and
        their sources are in ``docs/quality.md``.
    """
    unit_ids = list(unit_ids)
    waveforms = np.asarray(waveforms)
    spike_unit_index = np.asarray(spike_unit_index, dtype=np.int64)
    distance = training_distance(waveforms, spike_unit_index, len(unit_ids), training_data)
    rows = []
    for position in range(len(unit_ids)):
        cell_waveforms = waveforms[spike_unit_index == position]
        reasons, measures = _shape_checks(cell_waveforms)
        reasons += stimulus_reasons(cell_waveforms, None if isis_s is None else isis_s[position])
        measures["training_distance"] = float(distance[position])
        if distance[position] > 1.0:
            reasons.append(UNLIKE_TRAINING)
        if firing_rate_hz is not None and np.isfinite(firing_rate_hz[position]):
            if firing_rate_hz[position] > MAX_FIRING_RATE_HZ:
                reasons.append("rate_too_high")
        if isis_s is not None and len(isis_s[position]):
            if float((np.asarray(isis_s[position]) < SHORT_ISI_MS / 1000.0).mean()) > MAX_SHORT_ISI_FRACTION:
                reasons.append("refractory_violations")
        rows.append(dict(sero_quality="+".join(reasons) if reasons else QUALITY_OK, **measures))
    table = pd.DataFrame(rows, index=pd.Index(unit_ids, name="unit_id"), columns=_QUALITY_COLUMNS)
    measures = cell_fingerprints(waveforms, spike_unit_index, len(unit_ids), firing_rate_hz=firing_rate_hz)
    if rig_validation:
        check_rig_validation(rig_validation)
    shapes = mean_normalised_shapes(waveforms, spike_unit_index, len(unit_ids))
    status, rig, rig_distance = match_rigs(measures, rig_validation, shapes)
    table["sero_rig"], table["rig_index"], table["rig_distance"] = status, rig, rig_distance
    return table


# ------------------------------------------------------------------------- like the model's training data?
def describe_training_snippets(waveforms, cell_ids, *, seed: int = 0) -> dict:
    """A compact, JSON-able description of a model's training snippets, for :func:`training_distance`.

    Each training cell is summarised by its mean normalised snippet (each spike z-scored over its 160
    samples, as the members' LayerNormalization sees it). The description keeps at most
    :data:`~spikeinterface_sero.constants.MAX_TRAINING_SHAPES` of these shapes and a limit: the
    :data:`~spikeinterface_sero.constants.TRAINING_DISTANCE_QUANTILE` quantile of the training cells' own
    leave-one-out distances to their nearest neighbour, times
    :data:`~spikeinterface_sero.constants.TRAINING_DISTANCE_MARGIN`.

    Parameters
    ----------
    waveforms : np.ndarray
        (n_spikes, 160) training snippets in pA, negative-going.
    cell_ids : array-like
        (n_spikes,) the cell of each snippet.
    seed : int, default: 0
        Seeds the choice of the shapes kept when there are more cells than the maximum.

    Returns
    -------
    dict
        ``format``, ``n_cells``, ``n_spikes``, ``limit`` (RMS distance in z-score units), ``quantile``,
        ``margin`` and ``shapes`` (a list of lists, rounded to 4 decimals).
    """
    codes, uniques = pd.factorize(np.asarray(cell_ids), sort=False)
    if len(uniques) < 2:
        raise DataError("describing the training data needs snippets of at least two cells.")
    shapes = mean_normalised_shapes(waveforms, codes, len(uniques))
    own = nearest_distances(shapes, shapes, leave_one_out=True)
    limit = float(TRAINING_DISTANCE_MARGIN * np.quantile(own, TRAINING_DISTANCE_QUANTILE))
    keep = np.arange(len(shapes))
    if len(keep) > MAX_TRAINING_SHAPES:
        keep = np.sort(np.random.default_rng(seed).choice(keep, MAX_TRAINING_SHAPES, replace=False))
    return {
        "format": TRAINING_DATA_FORMAT,
        "n_cells": int(len(uniques)),
        "n_spikes": int(len(codes)),
        "limit": limit,
        "quantile": float(TRAINING_DISTANCE_QUANTILE),
        "margin": float(TRAINING_DISTANCE_MARGIN),
        "shapes": np.round(shapes[keep], 4).tolist(),
    }


def check_training_description(description) -> dict:
    """``description`` (from a model folder) checked: a dict as :func:`describe_training_snippets` writes.

    Raises :class:`~spikeinterface_sero.errors.DataError` naming what is wrong.
    """
    if not isinstance(description, dict) or description.get("format") != TRAINING_DATA_FORMAT:
        raise DataError(f"the training-data description is not in the {TRAINING_DATA_FORMAT!r} format.")
    limit = description.get("limit")
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not 0 < float(limit) < float("inf"):
        raise DataError(f"the training-data description's limit must be a positive number, not {limit!r}.")
    try:
        shapes = np.asarray(description.get("shapes"), dtype=np.float64)
    except (TypeError, ValueError):
        shapes = np.zeros((0, 0))
    if shapes.ndim != 2 or shapes.shape[0] < 1 or shapes.shape[1] != SNIPPET_LENGTH or not np.isfinite(shapes).all():
        raise DataError(
            f"the training-data description's shapes must be a list of {SNIPPET_LENGTH}-sample shapes of finite numbers."
        )
    return description


def describe_training_data(description: dict | None) -> str:
    """One line on what a model's training-data description allows (for provenance and model cards)."""
    if not description:
        return (
            "absent (the model folder does not describe its training snippets, as for the published models): "
            "only the action-current checks judge whether a cell is like its training data"
        )
    return (
        f"{description.get('n_cells')} training cells described by their mean normalised shapes; a cell farther "
        f"than {float(description['limit']):.3g} (RMS, z-score units) from every one is unlike_training_data"
    )


def training_distance(waveforms, spike_unit_index, n_units: int, description: dict | None) -> np.ndarray:
    """How far each unit's mean normalised shape is from the nearest training cell's, relative to the limit.

    Parameters
    ----------
    waveforms : np.ndarray
        (n_spikes, 160) snippets in the model's orientation (negative-going), pA.
    spike_unit_index : np.ndarray
        (n_spikes,) index of each spike's unit.
    n_units : int
        The number of units.
    description : dict or None
        The model's :func:`describe_training_snippets` (``model_info.json``'s ``training_data``); None: the
        model does not describe its training data (the published models), and every distance is NaN.

    Returns
    -------
    np.ndarray
        (n_units,) distance / limit: above 1 the unit is unlike the training data; NaN without spikes or
        without a description.
    """
    distance = np.full(n_units, np.nan)
    if description is None or not len(np.asarray(spike_unit_index)):
        return distance
    check_training_description(description)
    shapes = mean_normalised_shapes(waveforms, spike_unit_index, n_units)
    has = np.isfinite(shapes).all(axis=1)
    if has.any():
        reference = np.asarray(description["shapes"], dtype=np.float64)
        distance[has] = nearest_distances(shapes[has], reference) / float(description["limit"])
    return distance


def _member_spread(outputs: np.ndarray, spike_unit_index: np.ndarray, n_units: int) -> np.ndarray:
    """Per unit, the standard deviation over members of each member's own cell P(SER) (NaN without spikes)."""
    spread = np.full(n_units, np.nan)
    if outputs.shape[1] < 2:
        return spread
    for position in range(n_units):
        spikes = outputs[spike_unit_index == position]
        if spikes.shape[0]:
            spread[position] = float(np.std(spike_probability(spikes.mean(axis=0))))
    return spread


def decide_units(
    member_outputs,
    spike_unit_index,
    unit_ids,
    *,
    params: DecisionParams | None = None,
    features: pd.DataFrame | None = None,
    method: str = "cnn",
    domain="in_domain",
    quality: pd.DataFrame | None = None,
    calibration: dict | None = None,
    rig_validation: dict | None = None,
    spike_times_s=None,
    seal: pd.DataFrame | None = None,
    rig_session: dict | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """The whole decision for a set of units: the per-unit table and P(SER) per spike.

    Parameters
    ----------
    member_outputs : np.ndarray
        (n_spikes, n_members, 2) outputs of the ensemble's members (n_members may be 0 for
        ``method="criteria"``).
    spike_unit_index : np.ndarray
        (n_spikes,) index into ``unit_ids`` of each spike's unit.
    unit_ids : sequence
        The units of the table, in order; a unit without spikes is ``undetermined``.
    params : DecisionParams or None, default: None
        None: the defaults.
    features : pandas.DataFrame or None, default: None
        Classical features indexed by unit id (``firing_rate_hz``, ``cv_isi``, ``lv``, ``udi_ms``,
        ``criteria_label``, from :func:`spikeinterface_sero.features.criteria_classify`): joined to the
        table and used for ``sero_type``.
    method : "cnn" | "criteria", default: "cnn"
        The CNN ensemble's call, or the classical criteria's alone (then no probability).
    domain : str or sequence of str, default: "in_domain"
        How far the input is from the paper's format, for all units or one per unit.
    quality : pandas.DataFrame or None, default: None
        :func:`action_current_quality` of the units. A call is ``sero_reliable`` only when the cell passes
        every check (``sero_quality == "ok"``), its domain is like the training data, it has enough spikes,
        it is like a rig the model was validated on (the quality's ``sero_rig``) and its conformal set at
        that rig holds its label alone. None: not checked, and no call is reliable.
    calibration : dict or None, default: None
        The model's calibration of the cell probability (:func:`calibrate`); None: uncalibrated.
    rig_validation : dict or None, default: None
        The model's validated rigs (``model_info.json``'s ``rig_validation``, ``docs/validate.md``): the
        conformal fit of the rig each cell is like gives its ``sero_set``. None: ``not_calibrated`` sets and
        no reliable call.
    spike_times_s : np.ndarray or None, default: None
        (n_spikes,) each spike's time from the start of the recording (s): the moment each cell's call became
        safe (:func:`spikeinterface_sero.sequential.safe_moments`, ``sero_safe_after_spikes`` and
        ``sero_safe_after_s``). None: not known (NaN).
    seal : pandas.DataFrame or None, default: None
        :func:`spikeinterface_sero.seal.watch_units` of the units (``sero_seal``, ``sero_stable_start_s``,
        ``sero_stable_end_s``), when the spikes given are those of each unit's stable stretch. None: not watched.
    rig_session : dict or None, default: None
        The session check of the session these units were recorded in
        (:func:`spikeinterface_sero.sessions.judge_session`): when the session is unlike every validated rig,
        cells like a validated rig alone are ``session_unlike_validated_rigs`` and not reliable. None: not judged.

    Returns
    -------
    units : pandas.DataFrame
        Indexed by ``unit_id``, :data:`UNIT_COLUMNS`.
    spike_p_ser : np.ndarray
        (n_spikes,) float32 P(SER) of each spike (NaN for ``method="criteria"``).
    """
    if method not in ("cnn", "criteria"):
        raise DataError(f"method must be 'cnn' or 'criteria', not {method!r}.")
    params = DecisionParams() if params is None else params
    unit_ids = list(unit_ids)
    spike_unit_index = np.asarray(spike_unit_index, dtype=np.int64)
    outputs = np.asarray(member_outputs, dtype=np.float64)
    if outputs.ndim != 3 or outputs.shape[0] != spike_unit_index.shape[0]:
        raise DataError(
            f"member outputs have shape {outputs.shape}; expected ({spike_unit_index.shape[0]}, n_members, 2)."
        )
    n_spikes = np.bincount(spike_unit_index, minlength=len(unit_ids))[: len(unit_ids)]
    table = pd.DataFrame(index=pd.Index(unit_ids, name="unit_id"))
    if method == "cnn":
        consensus = consensus_of(outputs)
        spike_p = spike_probability(consensus).astype(np.float32)
        cells = cell_decisions(consensus, spike_unit_index, params, calibration)
        by_index = cells.reindex(range(len(unit_ids)))
        for column in CELL_COLUMNS:
            table[column] = by_index[column].to_numpy()
        table["sero_label"] = table["sero_label"].where(table["sero_label"].notna(), UNDETERMINED)
        table["member_spread"] = _member_spread(outputs, spike_unit_index, len(unit_ids))
    else:
        if features is None:
            raise DataError("method='criteria' needs the classical features (features=...).")
        spike_p = np.full(spike_unit_index.shape[0], np.nan, np.float32)
        table["sero_label"] = features.reindex(unit_ids)["criteria_label"].to_numpy()
        for column in (
            "sero_probability",
            "sero_probability_low",
            "sero_probability_high",
            "fraction_spikes_ser",
            "member_spread",
        ):
            table[column] = np.nan
        table["sero_reliable"] = False
    table["n_spikes"] = n_spikes.astype("int64")
    table["sero_reliable"] = table["sero_reliable"].fillna(False).astype(bool)
    if features is not None:
        joined = features.reindex(unit_ids)
        for column in _FEATURE_COLUMNS:
            table[column] = joined[column].to_numpy()
    else:
        for column in _FEATURE_COLUMNS:
            table[column] = UNDETERMINED if column == "criteria_label" else np.nan
    table = add_sero_type(table, cnn_col="sero_label", criteria_col="criteria_label")
    table["sero_domain"] = domain if isinstance(domain, str) else np.asarray(list(domain), dtype=object)
    if quality is None:
        quality = pd.DataFrame({"sero_quality": "not_checked"}, index=pd.Index(unit_ids, name="unit_id"))
    quality = quality.reindex(unit_ids)
    for column in _QUALITY_COLUMNS:
        table[column] = quality[column].to_numpy() if column in quality.columns else np.nan
    table["sero_quality"] = table["sero_quality"].fillna("not_checked").astype(object)
    table["sero_method"] = method
    _add_rig_columns(table, quality, rig_validation, check_rig_session(rig_session))
    like_training = table["sero_domain"].map(reliable_domain).astype(bool) & (table["sero_quality"] == QUALITY_OK)
    enough = table["n_spikes"].to_numpy() >= params.min_spikes
    one_label = (table["sero_set"] == table["sero_label"]).to_numpy(dtype=bool)
    on_rig = (table["sero_rig"] == VALIDATED).to_numpy(dtype=bool)
    table["sero_reliable"] = (method == "cnn") & enough & like_training.to_numpy(dtype=bool) & on_rig & one_label
    _add_call_columns(table, params)
    _add_moment_columns(table, outputs if method == "cnn" else None, spike_unit_index, spike_times_s, seal)
    for column in (
        "sero_probability",
        "sero_probability_low",
        "sero_probability_high",
        "fraction_spikes_ser",
        "member_spread",
        "sero_confidence",
        *_QUALITY_COLUMNS[1:],
    ):
        table[column] = table[column].astype("float64")
    return table[UNIT_COLUMNS], spike_p


def _add_moment_columns(table, outputs, spike_unit_index, spike_times_s, seal) -> None:
    """The moment each call became safe (NaN when it never did, or settled on the other side than the whole
    recording's call) and the seal watch's columns."""
    table["sero_safe_after_spikes"], table["sero_safe_after_s"] = np.nan, np.nan
    if outputs is not None and spike_times_s is not None and len(table):
        safe = safe_moments(consensus_of(outputs), spike_unit_index, list(range(len(table))), spike_times_s)
        agrees = safe["sero_safe_label"].to_numpy(object) == table["sero_label"].to_numpy(object)
        for column in ("sero_safe_after_spikes", "sero_safe_after_s"):
            table[column] = np.where(agrees, safe[column].to_numpy(dtype=float), np.nan)
    seal = pd.DataFrame(index=table.index) if seal is None else seal.reindex(table.index)
    table["sero_seal"] = seal["sero_seal"].fillna("not_watched") if "sero_seal" in seal else "not_watched"
    for column in ("sero_stable_start_s", "sero_stable_end_s"):
        table[column] = seal[column].to_numpy(dtype=float) if column in seal else np.nan


def _add_rig_columns(
    table: pd.DataFrame, quality: pd.DataFrame, rig_validation: dict | None, rig_session: dict | None
) -> None:
    """``sero_rig`` (from the quality's fingerprint match and the session check), ``sero_rig_distance`` and
    ``sero_set`` (the conformal set at that rig)."""
    n = len(table)
    status = quality["sero_rig"].fillna(NOT_VALIDATED).to_numpy(object) if "sero_rig" in quality else None
    rig = quality["rig_index"].fillna(-1).to_numpy(np.int64) if "rig_index" in quality else np.full(n, -1)
    rigs = (rig_validation or {}).get("rigs") or []
    if status is None or not rigs:  # no fingerprint compared, or nothing validated: no rig vouches for a cell
        status, rig = np.full(n, NOT_VALIDATED, object), np.full(n, -1)
    sets = np.full(n, NOT_CALIBRATED, object)
    p = table["sero_probability"].to_numpy(dtype=np.float64)
    for number, entry in enumerate(rigs):
        here = (rig == number) & (status == VALIDATED)
        if here.any() and table["sero_method"].iloc[0] == "cnn":
            sets[here] = prediction_sets(p[here], entry["conformal"])
    status = session_status(status, rig_session)
    distance = quality["rig_distance"].to_numpy(dtype=np.float64) if "rig_distance" in quality else np.full(n, np.nan)
    table["sero_rig"], table["sero_rig_distance"], table["sero_set"] = status, distance, sets


def reliable_domain(domain) -> bool:
    """Whether a cell of this ``sero_domain`` can be reliable: every ``+`` part keeps the snippets like the
    training data (docs/quality.md): ``in_domain``, ``resampled`` and ``converted_from_<unit>``; ``filtered``,
    voltage, flipped ... do not.

    Parameters
    ----------
    domain : str
        A ``sero_domain`` value.

    Returns
    -------
    bool
    """
    return all(part in _RELIABLE_DOMAINS or part.startswith(CONVERTED_FROM) for part in str(domain).split("+"))


def _unsure_reasons(table: pd.DataFrame, params: DecisionParams) -> list[str]:
    """Why each cell's call is not reliable ("" when it is), in the order a user would fix them."""
    reasons = []
    for row in table.itertuples():
        why = []
        if row.sero_label not in LABELS:
            why.append("no_call")
        if row.sero_method != "cnn":
            why.append("criteria_only")
        if row.n_spikes < params.min_spikes:
            why.append("few_spikes")
        if row.sero_quality != QUALITY_OK:
            why.append("quality")
        if not reliable_domain(row.sero_domain):
            why.append("domain")
        if row.sero_rig != VALIDATED:
            why.append("not_validated_on_rig" if row.sero_rig == NOT_VALIDATED else row.sero_rig)
        elif row.sero_set in (SET_BOTH, SET_EMPTY):
            why.append(f"set_{row.sero_set}")
        elif row.sero_set in LABELS and row.sero_set != row.sero_label:
            why.append("set_disagrees")
        if not why and not row.sero_reliable:
            why.append("not_reliable")
        reasons.append("+".join(why) if not row.sero_reliable else "")
    return reasons


def _add_call_columns(table: pd.DataFrame, params: DecisionParams) -> None:
    """``sero_call``, ``sero_confidence``, ``sero_unsure_reasons``, ``sero_set``, ``sero_rig``, ``sero_manual_label``."""
    label = table["sero_label"].astype(str)
    p = table["sero_probability"].astype("float64")
    table["sero_confidence"] = np.where(label == SER, p, np.where(label == NSER, 1.0 - p, np.nan))
    table["sero_unsure_reasons"] = _unsure_reasons(table, params)
    reliable = table["sero_reliable"].to_numpy(dtype=bool)
    table["sero_call"] = np.where(reliable, label, np.where(label.isin(LABELS), "unsure", label))
    table["sero_manual_label"] = ""


def describe_rule(params) -> str:
    """The cell rule in words, with the interval's coverage and resamples taken from ``params``.

    Parameters
    ----------
    params : DecisionParams or dict
        The decision parameters, or the ``serotonergic`` extension's params (``method``, ``ci``, ``n_boot``).

    Returns
    -------
    str
        What reports and provenance print as "the rule".
    """
    values = params.to_dict() if isinstance(params, DecisionParams) else dict(params)
    if values.get("method", "cnn") == "criteria":
        return (
            "the classical criteria alone (wide spike, slow and regular firing): no ensemble, no P(SER) and no interval"
        )
    ci, n_boot = float(values.get("ci", DEFAULT_CI)), int(values.get("n_boot", DEFAULT_N_BOOT))
    return (
        "serotonergic when the mean SER output of the ensemble over the cell's spikes is larger than the NSER "
        f"output; P(SER) = 0.5 is non-serotonergic; informational interval: {100 * ci:g} % percentile bootstrap "
        f"over spikes, {n_boot} resamples"
    )
