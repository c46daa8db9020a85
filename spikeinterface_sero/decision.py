"""The decision rule, in one place: P(SER) per spike, the spike and cell rules, the interval, reliability.

Every caller (the ``serotonergic`` extension, the batch runner, the Neo bridge, evaluation, the watcher)
goes through :func:`decide_units`; nothing else derives a probability, a label or a reliability flag.
The rules and their reasons are in ``docs/architecture.md`` ("The decision").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .constants import DEFAULT_CI, DEFAULT_MIN_SPIKES, DEFAULT_N_BOOT, LABELS
from .errors import DataError
from .features import UNDETERMINED, add_sero_type

__all__ = [
    "DecisionParams",
    "UNIT_COLUMNS",
    "CELL_COLUMNS",
    "consensus_of",
    "spike_probability",
    "spike_votes_ser",
    "cell_decisions",
    "decide_units",
]

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
#: columns of the per-unit table of :func:`decide_units` (and of the ``serotonergic`` extension)
UNIT_COLUMNS = CELL_COLUMNS + [
    "firing_rate_hz",
    "cv_isi",
    "lv",
    "udi_ms",
    "criteria_label",
    "sero_type",
    "sero_domain",
    "sero_method",
]
_FEATURE_COLUMNS = ["firing_rate_hz", "cv_isi", "lv", "udi_ms", "criteria_label"]
_CHUNK_ELEMENTS = 500_000  # bootstrap indices drawn per pass (bounds the temporary array to ~4 MB)


@dataclass(frozen=True)
class DecisionParams:
    """How a cell's call and its interval are made.

    Parameters
    ----------
    n_boot : int, default: 1000
        Bootstrap resamples of the cell's spikes for the interval of the cell probability (at least 10).
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
        if self.n_boot < 10:
            raise DataError(f"n_boot must be at least 10 (bootstrap resamples of the interval), not {self.n_boot}.")
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


def _is_reliable(n_spikes: int, low: float, high: float, params: DecisionParams) -> bool:
    """A call is reliable with enough spikes and an interval clear of 0.5."""
    return bool(n_spikes >= params.min_spikes and (low > 0.5 or high < 0.5))


def cell_decisions(consensus, cell_ids, params: DecisionParams | None = None) -> pd.DataFrame:
    """The cell rule with its interval, for every cell of ``cell_ids`` (order of first appearance).

    Parameters
    ----------
    consensus : np.ndarray
        (n, 2) consensus of the ensemble per spike (:func:`consensus_of`).
    cell_ids : array-like
        (n,) the cell of each spike.
    params : DecisionParams or None, default: None
        None: the defaults.

    Returns
    -------
    pandas.DataFrame
        Indexed by cell id, :data:`CELL_COLUMNS`: ``sero_label`` is serotonergic when the mean consensus
        over the cell's spikes favours SER (Corradetti et al. 2024); ``sero_probability`` is P(SER) of
        that mean, with its bootstrap interval; ``sero_reliable``; ``n_spikes``; ``fraction_spikes_ser``
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
        n = int(spikes.shape[0])
        label = SER if spike_votes_ser(mean) else NSER
        fraction = float(spike_votes_ser(spikes).mean())
        rows.append((label, estimate, low, high, _is_reliable(n, low, high, params), n, fraction))
    table = pd.DataFrame(rows, columns=CELL_COLUMNS, index=pd.Index(list(uniques), name="cell_id"))
    table["n_spikes"] = table["n_spikes"].astype("int64")
    table["sero_reliable"] = table["sero_reliable"].astype(bool)
    return table


def decide_units(
    member_outputs,
    spike_unit_index,
    unit_ids,
    *,
    params: DecisionParams | None = None,
    features: pd.DataFrame | None = None,
    method: str = "cnn",
    domain="in_domain",
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
        cells = cell_decisions(consensus, spike_unit_index, params)
        by_index = cells.reindex(range(len(unit_ids)))
        for column in CELL_COLUMNS:
            table[column] = by_index[column].to_numpy()
        table["sero_label"] = table["sero_label"].where(table["sero_label"].notna(), UNDETERMINED)
    else:
        if features is None:
            raise DataError("method='criteria' needs the classical features (features=...).")
        spike_p = np.full(spike_unit_index.shape[0], np.nan, np.float32)
        table["sero_label"] = features.reindex(unit_ids)["criteria_label"].to_numpy()
        for column in ("sero_probability", "sero_probability_low", "sero_probability_high", "fraction_spikes_ser"):
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
    table["sero_method"] = method
    for column in ("sero_probability", "sero_probability_low", "sero_probability_high", "fraction_spikes_ser"):
        table[column] = table[column].astype("float64")
    return table[UNIT_COLUMNS], spike_p
