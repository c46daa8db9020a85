"""Is a session (cells recorded together: one day on one rig) like the rig the model was validated on?

A cell fingerprint judges one cell, and a few cells of an unseen rig pass it; a session whose typical cell is
unlike the rig is not that rig, and its cells that pass alone are not trusted either. The rule, its limit and
what it was measured on: ``docs/validate.md`` ("Sessions").
"""

from __future__ import annotations

import numpy as np

from .arguments import check_flag, check_integer, check_number
from .constants import MIN_SESSION_CELLS
from .errors import ParameterError
from .fingerprint import VALIDATED

__all__ = [
    "SESSION_UNLIKE",
    "DEFAULT_SESSION_LIMIT",
    "judge_session",
    "check_rig_session",
    "describe_session",
    "unlike_message",
    "session_status",
]

#: ``sero_rig`` of a cell like a validated rig alone whose session is unlike every validated rig
SESSION_UNLIKE = "session_unlike_validated_rigs"
_KEYS = ("session", "cells", "median_rig_distance", "limit", "like")


#: the session limit of a rig validated on too few days to learn one: most of the session's cells unlike it alone
DEFAULT_SESSION_LIMIT = 0.0


def _session_limit(rig_validation: dict | None) -> float | None:
    """The most lenient session limit over the validated rigs, :data:`DEFAULT_SESSION_LIMIT` for a rig that has
    none (None: no validated rig)."""
    limits = [
        float(((rig.get("fingerprint") or {}).get("session") or {}).get("limit", DEFAULT_SESSION_LIMIT))
        for rig in (rig_validation or {}).get("rigs") or []
    ]
    return max(limits) if limits else None


def judge_session(rig_distances, rig_validation: dict | None, *, session: str = "") -> dict | None:
    """The session check on a session's cells.

    Parameters
    ----------
    rig_distances : sequence of float
        Each cell's ``sero_rig_distance`` (how unlike the nearest validated rig it is; NaN: not measured).
    rig_validation : dict or None
        The model's validated rigs (``model_info.json``'s ``rig_validation``).
    session : str, default: ""
        The session's name, as the outputs show it (e.g. its folder and recording date).

    Returns
    -------
    dict or None
        ``session``, ``cells`` (cells measured), ``median_rig_distance``, ``limit`` and ``like`` (JSON values;
        the ``rig_session`` parameter of the ``serotonergic`` extension), or None when the model has no
        validated rig or fewer than :data:`MIN_SESSION_CELLS` cells were measured: no session judgement. The
        limit is the most lenient of the rigs' (a rig validated on too few days to learn one: 0, where most of
        the session's cells are unlike it alone).
    """
    limit = _session_limit(rig_validation)
    distances = np.asarray(rig_distances, dtype=np.float64).ravel()
    distances = distances[np.isfinite(distances)]
    if limit is None or len(distances) < MIN_SESSION_CELLS:
        return None
    median = float(np.median(distances))
    return {
        "session": str(session),
        "cells": int(len(distances)),
        "median_rig_distance": median,
        "limit": limit,
        "like": bool(median <= limit),
    }


def check_rig_session(value) -> dict | None:
    """A ``rig_session`` parameter (:func:`judge_session`'s result, or None) as JSON values; ParameterError
    when it is not one."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != set(_KEYS):
        raise ParameterError(
            "rig_session must be None or the result of spikeinterface_sero.sessions.judge_session "
            f"(a dict with {', '.join(_KEYS)}), not {value!r}."
        )
    out = {
        "session": str(value["session"]),
        "cells": check_integer(value["cells"], "rig_session['cells']", minimum=MIN_SESSION_CELLS),
        "median_rig_distance": check_number(value["median_rig_distance"], "rig_session['median_rig_distance']"),
        "limit": check_number(value["limit"], "rig_session['limit']"),
        "like": check_flag(value["like"], "rig_session['like']"),
    }
    if out["like"] != (out["median_rig_distance"] <= out["limit"]):
        raise ParameterError("rig_session['like'] must say whether median_rig_distance is within limit.")
    return out


def describe_session(rig_session: dict | None) -> str:
    """The session verdict in words ("" without one)."""
    if not rig_session:
        return ""
    where = f"session {rig_session['session']}: " if rig_session["session"] else "session: "
    verdict = "like the validated rig" if rig_session["like"] else "unlike every validated rig"
    median = rig_session["median_rig_distance"]
    return (
        f"{where}{verdict} (median cell distance {median:.2f} over {rig_session['cells']} cells, "
        f"limit {rig_session['limit']:.2f})"
    )


def unlike_message(rig_session: dict) -> str:
    """What a user is told of a session judged unlike every validated rig (a warning, a log line)."""
    return f"{describe_session(rig_session)}: none of its cells is reliable"


def session_status(status, rig_session: dict | None) -> np.ndarray:
    """Each cell's ``sero_rig`` once its session is judged: a cell like a validated rig alone becomes
    :data:`SESSION_UNLIKE` in a session unlike every validated rig; otherwise unchanged."""
    status = np.asarray(status, dtype=object)
    if rig_session is None or rig_session["like"]:
        return status
    return np.where(status == VALIDATED, SESSION_UNLIKE, status).astype(object)
