"""The sessions of a batch: which inputs were recorded together, and the session check's verdict on each.

A session is the inputs of one folder recorded on one date (the .abf header's; inputs without one: their
folder). The check itself lives in :mod:`spikeinterface_sero.sessions`; ``docs/validate.md`` says why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .arguments import check_choice
from .fingerprint import VALIDATED
from .grouping import CellFiles
from .io import abf_info
from .sessions import judge_session

__all__ = [
    "SESSION_RULES",
    "SessionBook",
    "changed_by_verdict",
    "check_sessions",
    "session_of",
    "sessions_of_rows",
    "unlike_sessions",
]

#: how ``classify_files(sessions=...)`` groups its inputs: by folder and recording date, or not at all
SESSION_RULES = ("day", "none")


def check_sessions(value) -> str:
    """``sessions`` when it is one of :data:`SESSION_RULES` (ParameterError otherwise)."""
    return check_choice(value, "sessions", SESSION_RULES)


def _header_date(path: Path) -> str:
    """The .abf header's recording date, "" when the file has none or cannot be read (its own row then says
    why): for a file not classified yet (``sero watch``)."""
    if path.suffix.lower() != ".abf":
        return ""
    try:
        return str(abf_info(path)["recorded"])
    except Exception:  # the file's classification reports what is wrong with it
        return ""


def session_of(item, recorded: str | None = None) -> str:
    """The session of a batch input (a path or :class:`~spikeinterface_sero.grouping.CellFiles`): its folder,
    and its recording date where the header has one (``"<folder> <date>"``). ``recorded``: the recording's
    start as its rows say it (the results column ``recorded``); None: read from the file's header."""
    path = Path(item.files[0]) if isinstance(item, CellFiles) else Path(str(item))
    date = (_header_date(path) if recorded is None else str(recorded))[:10]
    return f"{path.parent}{' ' + date if date else ''}"


def sessions_of_rows(items: list, rows: dict[int, pd.DataFrame]) -> list[str]:
    """The session of each batch input from its rows' ``recorded`` column (no file read again)."""
    return [session_of(item, _first_text(rows[i]["recorded"]) if i in rows else "") for i, item in enumerate(items)]


def _first_text(values) -> str:
    return next((str(v) for v in values if isinstance(v, str) and v), "")


def changed_by_verdict(rows: pd.DataFrame) -> bool:
    """Whether an unlike session's verdict changes these rows: some cell of theirs is like a validated rig
    alone (the others are unlike it already, and their rows stand)."""
    return bool((rows["sero_rig"] == VALIDATED).any())


def unlike_sessions(sessions: list[str], rows: dict[int, pd.DataFrame], rig_validation: dict | None) -> dict:
    """The session verdicts that are unlike every validated rig: {session: verdict}.

    Parameters
    ----------
    sessions : list of str
        The session of each input (:func:`session_of`), in input order.
    rows : dict
        Input index -> its results rows (``sero_rig_distance`` and ``error``).
    rig_validation : dict or None
        The model's validated rigs.
    """
    out = {}
    for session in dict.fromkeys(sessions):
        parts = [rows[i] for i, s in enumerate(sessions) if s == session and i in rows]
        cells = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        if "sero_rig_distance" not in cells:
            continue
        ok = cells["error"].fillna("").astype(str) == "" if "error" in cells else np.ones(len(cells), bool)
        verdict = judge_session(
            cells.loc[ok, "sero_rig_distance"].to_numpy(dtype=float), rig_validation, session=session
        )
        if verdict is not None and not verdict["like"]:
            out[session] = verdict
    return out


class SessionBook:
    """The sessions of a live watch (``sero watch``): which session each row key belongs to, and the
    sessions found unlike every validated rig (their verdicts; once unlike, a session stays so)."""

    def __init__(self, rig_validation: dict | None):
        self.rig_validation = rig_validation
        self.session_of_path: dict[str, str] = {}
        self.keys: dict[str, dict[str, str]] = {}  # session -> {row key: the path that last made its rows}
        self.unlike: dict[str, dict] = {}

    def session(self, path) -> str:
        path = str(path)
        if path not in self.session_of_path:
            self.session_of_path[path] = session_of(Path(path))
        return self.session_of_path[path]

    def verdict(self, path) -> dict | None:
        """The ``rig_session`` to classify ``path`` with: its session's verdict when unlike, else None."""
        return self.unlike.get(self.session(path))

    def judge(self, key: str, path, latest: pd.DataFrame) -> dict[str, str]:
        """Note that ``path`` made the rows of ``key``; judge its session on ``latest`` (one block of rows
        per key). Returns {row key: path} of the session's rows to classify again when the session has just
        been found unlike every validated rig (those with a cell like a validated rig alone), else {}."""
        name = self.session(path)
        keys = self.keys.setdefault(name, {})
        keys[str(key)] = str(path)
        if name in self.unlike:
            return {}
        rows = latest[latest["file"].astype(str).isin(keys)]
        found = unlike_sessions([name], {0: rows}, self.rig_validation)
        if name not in found:
            return {}
        self.unlike[name] = found[name]
        return {k: v for k, v in keys.items() if changed_by_verdict(rows[rows["file"].astype(str) == k])}
