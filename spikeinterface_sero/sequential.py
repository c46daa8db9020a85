"""The moment a call is safe: an anytime-valid sequential test on the running cell decision.

The cell rule calls a cell serotonergic when the mean over its spikes of d = c_SER - c_NSER (the ensemble's
consensus) is positive. Spike after spike, two betting martingales test "the mean is not positive" and "the
mean is not negative" (Waudby-Smith & Ramdas 2024, JRSS-B 86:1, testing by betting; Ville's inequality). The
first spike at which one of them reaches 2 / alpha is the moment the call is safe: if the spikes' d values
had a constant mean (no drift), a call made at that moment would be on the other side of the whole
recording's mean with probability at most alpha, however long one watches. Why and how: docs/quality.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .arguments import check_number
from .constants import LABELS

__all__ = ["DEFAULT_SAFE_ALPHA", "SAFE_COLUMNS", "safe_moment", "safe_moments"]

#: error rate of the sequential rule (a call made at the safe moment is wrong with probability at most this)
DEFAULT_SAFE_ALPHA = 0.05
#: columns of :func:`safe_moments`
SAFE_COLUMNS = ["sero_safe_after_spikes", "sero_safe_after_s", "sero_safe_label"]
_MAX_BET = 0.5  # d lies in [-1, 1]: a bet of at most 1/2 keeps the wealth positive (at least half each spike)
_PRIOR_VARIANCE = 0.25  # the running variance starts as one of a d spread over [-1, 1]'s middle half


def _log_wealth(d: np.ndarray) -> np.ndarray:
    """log wealth after each spike of a bettor against "mean of d <= 0", betting a predictable fraction.

    The fraction (aGRAPA, Waudby-Smith & Ramdas 2024) uses only the spikes before: running mean over running
    second moment, clipped to [0, 1/2]."""
    n = np.arange(1, d.size + 1, dtype=np.float64)
    previous = np.concatenate([[0.0], np.cumsum(d)[:-1]]) / np.maximum(n - 1, 1)
    previous_square = np.concatenate([[0.0], np.cumsum(d * d)[:-1]])
    second = (previous_square + _PRIOR_VARIANCE) / n  # shrunk towards the prior with few spikes
    bet = np.clip(previous / np.maximum(second, 1e-12), 0.0, _MAX_BET)
    return np.cumsum(np.log1p(bet * d))


def safe_moment(difference, *, alpha: float = DEFAULT_SAFE_ALPHA) -> tuple[int | None, str | None]:
    """The number of spikes after which the call of one cell is safe, and that call.

    Parameters
    ----------
    difference : array-like
        (n,) d = c_SER - c_NSER of the cell's spikes in the order they were recorded, each in [-1, 1].
    alpha : float, default: 0.05
        The error rate of the rule.

    Returns
    -------
    n_spikes : int or None
        Spikes needed (None: the call never became safe in this recording).
    label : str or None
        "serotonergic" or "non_serotonergic" (None with ``n_spikes``).
    """
    alpha = check_number(alpha, "alpha", minimum=0.0, maximum=1.0, strict=True)
    d = np.clip(np.asarray(difference, dtype=np.float64).reshape(-1), -1.0, 1.0)
    if d.size == 0:
        return None, None
    level = np.log(2.0 / alpha)  # alpha / 2 for each side
    crossed = [np.flatnonzero(_log_wealth(sign * d) >= level) for sign in (1.0, -1.0)]
    firsts = [int(c[0]) if c.size else None for c in crossed]
    candidates = [(first, label) for first, label in zip(firsts, LABELS) if first is not None]
    if not candidates:
        return None, None
    first, label = min(candidates)
    return first + 1, label


def safe_moments(consensus, spike_unit_index, unit_ids, times_s, *, alpha: float = DEFAULT_SAFE_ALPHA) -> pd.DataFrame:
    """:func:`safe_moment` of every unit, with the time of the deciding spike.

    Parameters
    ----------
    consensus : np.ndarray
        (n_spikes, 2) consensus (SER, NSER) of each spike (``decision.consensus_of``).
    spike_unit_index : np.ndarray
        (n_spikes,) index into ``unit_ids`` of each spike's unit.
    unit_ids : sequence
        The units.
    times_s : np.ndarray
        (n_spikes,) time of each spike from the start of the recording (s); spikes are taken in this order.
    alpha : float, default: 0.05
        The error rate of the rule.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``unit_id``: ``sero_safe_after_spikes`` (float, NaN when never safe),
        ``sero_safe_after_s`` (the deciding spike's time, NaN when never) and ``sero_safe_label`` ("" when
        never).
    """
    c = np.asarray(consensus, dtype=np.float64).reshape(-1, 2)
    index = np.asarray(spike_unit_index, dtype=np.int64)
    times = np.asarray(times_s, dtype=np.float64)
    rows = []
    for position in range(len(unit_ids)):
        mine = np.flatnonzero(index == position)
        mine = mine[np.argsort(times[mine], kind="stable")]
        n, label = safe_moment(c[mine, 0] - c[mine, 1], alpha=alpha)
        when = float(times[mine[n - 1]]) if n is not None else np.nan
        rows.append((np.nan if n is None else float(n), when, label or ""))
    return pd.DataFrame(rows, columns=SAFE_COLUMNS, index=pd.Index(list(unit_ids), name="unit_id"))
