"""The live page of a watch session: every cell as a row that updates itself, served on the rig computer.

A :class:`LiveBoard` holds the session's rows (one per cell, each with its mean action current; a failed file
once, with its reason); :class:`LiveServer` serves the page (one self-contained HTML file, no outside
scripts), the state as JSON (``/state``) and its changes as server-sent events (``/events``), on a local
address only. :func:`with_mean_currents` puts each cell's mean action current, read from the extension, on a
file's rows so that it travels with them (``docs/live.md``).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

import numpy as np
import pandas as pd

from .arguments import check_integer
from .constants import SNIPPET_LENGTH
from .errors import ParameterError, SeroError
from .report.reader import read_run
from .report.words import call_headline, call_of, reasons_text

__all__ = ["LiveBoard", "LiveServer", "LOCAL_HOSTS", "MEAN_CURRENTS", "mean_currents", "with_mean_currents"]

log = logging.getLogger(__name__)

#: the addresses the page may be served on: this computer only
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_ROW_FIELDS = (
    "file",
    "channel",
    "cell_id",
    "sero_label",
    "sero_call",
    "sero_probability",
    "sero_reliable",
    "sero_unsure_reasons",
    "sero_set",
    "sero_rig",
    "n_spikes",
    "firing_rate_hz",
    "sero_type",
    "sero_quality",
    "sero_safe_after_spikes",
    "sero_safe_after_s",
    "sero_safe_label",
    "acquisition",
    "model",
    "error",
)
_EVENT_WAIT_S = 15.0  # a comment line this often keeps the event stream open through proxies
#: the key of ``rows.attrs`` under which a file's rows carry their cells' mean action currents
MEAN_CURRENTS = "sero_mean_currents"
_CURRENT_DECIMALS = 3  # pA: 1 fA, far below the recording's noise; keeps the page's state small


def mean_currents(analyzer) -> dict[str, list[float]]:
    """Each cell's mean action current: the mean of the snippets the model saw (``ext.get_data("waveforms")``
    rows of the unit, pA, after the polarity flip and the adaptation), never recomputed from the recording.

    Parameters
    ----------
    analyzer : SortingAnalyzer
        With the ``serotonergic`` extension.

    Returns
    -------
    dict
        Unit id as text (the results table's ``channel``) -> its 160 values in pA, rounded to 0.001 pA; a
        unit without classified spikes is left out.
    """
    _, cells = read_run(analyzer)
    return {
        cell.channel: np.round(cell.waveforms.mean(axis=0).astype(np.float64), _CURRENT_DECIMALS).tolist()
        for cell in cells
        if len(cell.waveforms)
    }


def with_mean_currents(rows: pd.DataFrame, analyzer) -> pd.DataFrame:
    """``rows`` with its cells' mean action currents in ``rows.attrs[MEAN_CURRENTS]`` (:func:`mean_currents`),
    so that they travel with the rows (a worker process's pickled rows included) to :meth:`LiveBoard.update`.

    Parameters
    ----------
    rows : pandas.DataFrame
        The results rows of one file (``pipeline.classify_file``).
    analyzer : SortingAnalyzer or None
        The file's classified analyzer (``classify_file(..., return_analyzer=True)``); None for a failed file.

    Returns
    -------
    pandas.DataFrame
        ``rows`` itself (without currents when the extension holds no snippets: a warning says why).
    """
    if analyzer is not None and analyzer.has_extension("serotonergic"):
        try:
            rows.attrs[MEAN_CURRENTS] = mean_currents(analyzer)
        except SeroError as error:  # an extension without its snippets: the rows stand, without drawings
            log.warning("no mean action currents for the live page: %s", error)
    return rows


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _json_value(value.item())
    return value if isinstance(value, (bool, int, float, str)) or value is None else str(value)


def _encode(value: dict) -> bytes:
    return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()


def _current_values(current) -> list[float] | None:
    """A mean current as the page draws it: SNIPPET_LENGTH finite numbers, else None (nothing drawn)."""
    if current is None:
        return None
    values = np.round(np.asarray(current, dtype=np.float64).ravel(), _CURRENT_DECIMALS)
    if values.shape != (SNIPPET_LENGTH,) or not np.isfinite(values).all():
        return None
    return values.tolist()


def _record(row: dict, currents: dict) -> dict:
    """One row as the page shows it: the columns, the headline and reasons in the report's words, and the
    cell's mean action current (None when unknown)."""
    record = {k: _json_value(row.get(k)) for k in _ROW_FIELDS}
    record["mean_current"] = None
    if not record["error"]:
        record.update(headline=call_headline(row), call_class=call_of(row), reasons=reasons_text(row))
        record["mean_current"] = _current_values(currents.get(str(row.get("channel"))))
    return record


class LiveBoard:
    """The state of a watch session, as the live page shows it.

    Per cell the board keeps one row of fixed size (the columns the page shows and its 160-point mean action
    current), per file its latest rows only: its memory grows with the number of cells, by a few kB each, and
    with nothing else (``docs/live.md``, ``benchmarks/bench_live_session.py``).

    Parameters
    ----------
    title : str, default: "Serotonergic classification (live)"
        The page title.
    notes : sequence of str, default: ()
        Lines shown above the table on every view (the demo-model note, the rig's guarantee or "not validated
        on this rig").
    """

    def __init__(self, title: str = "Serotonergic classification (live)", notes=()):
        self._title = str(title)
        self._notes = [str(n) for n in notes]
        self._rows: dict[str, list[bytes]] = {}  # file -> its rows (a file classified again replaces its rows)
        self._current_file = ""
        self._version = 0
        self._text = (-1, b"")  # (version, the state as JSON): made once per change, whatever the readers
        self._changed = threading.Condition()

    def update(self, rows: pd.DataFrame, mean_currents: dict | None = None) -> None:
        """Replace the rows of the files in ``rows`` (the results table of one file, or several).

        Parameters
        ----------
        rows : pandas.DataFrame
            Rows of the results table (``schema.RESULT_COLUMNS``).
        mean_currents : dict or None, default: None
            The row's ``channel`` -> the cell's mean action current (pA, the 160 samples the model saw); None:
            the currents the rows carry (``rows.attrs[MEAN_CURRENTS]``, :func:`with_mean_currents`), if any.
            The keys are the channels of one file: give the rows of each file in its own call.
        """
        currents = rows.attrs.get(MEAN_CURRENTS, {}) if mean_currents is None else mean_currents
        currents = {str(channel): current for channel, current in currents.items()}
        # read from a copy: pandas' copy-on-write would otherwise tie a reference per column to the caller's rows
        records = [_record(r, currents) for r in rows.copy().to_dict("records")]
        with self._changed:
            for file in dict.fromkeys(r["file"] for r in records):
                # kept as JSON text: a fixed-size row per cell (about 2 kB with its mean current)
                self._rows[str(file)] = [_encode(r) for r in records if r["file"] == file]
                self._current_file = str(file)
            self._version += 1
            self._changed.notify_all()

    def state(self) -> dict:
        """What the page shows: title, notes, the current file's rows first, then every row (each with its
        ``mean_current``: 160 values in pA, or None), and a version."""
        return json.loads(self.state_json())

    def state_json(self) -> bytes:
        """:meth:`state` as JSON (UTF-8), made once per version however many pages read it."""
        with self._changed:
            if self._text[0] != self._version:
                head = dict(version=self._version, title=self._title, notes=self._notes)
                current = b",".join(self._rows.get(self._current_file, []))
                every = b",".join(row for rows in self._rows.values() for row in rows)
                text = _encode(head)[:-1] + b',"current":[' + current + b'],"rows":[' + every + b"]}"
                self._text = (self._version, text)
            return self._text[1]

    def wait_for_change(self, version: int, timeout_s: float) -> int:
        """Block until the state is newer than ``version`` (or ``timeout_s``); the version now."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != version, timeout=timeout_s)
            return self._version


def _page() -> bytes:
    return resources.files("spikeinterface_sero").joinpath("templates/live.html").read_bytes()


def _handler(board: LiveBoard, stopping: threading.Event):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # the terminal shows the results, not the requests
            pass

        def _send(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path in ("/", "/index.html"):
                self._send(_page(), "text/html; charset=utf-8")
            elif self.path == "/state":
                self._send(board.state_json(), "application/json")
            elif self.path == "/events":
                self._stream()
            else:
                self.send_error(404)

        def _stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            version = -1
            try:
                while not stopping.is_set():
                    now = board.wait_for_change(version, _EVENT_WAIT_S)
                    if now == version:
                        self.wfile.write(b": still here\n\n")
                    else:
                        version = now
                        self.wfile.write(b"data: " + board.state_json() + b"\n\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return

    return Handler


class LiveServer:
    """Serve a :class:`LiveBoard` on this computer (a background thread), until :meth:`stop`.

    Parameters
    ----------
    board : LiveBoard
        What to show.
    host : str, default: "127.0.0.1"
        A local address (:data:`LOCAL_HOSTS`): the page is never served to the network.
    port : int, default: 0
        The port; 0 picks a free one (see :attr:`url`).
    """

    def __init__(self, board: LiveBoard, host: str = "127.0.0.1", port: int = 0):
        if host not in LOCAL_HOSTS:
            raise ParameterError(f"host must be a local address ({', '.join(LOCAL_HOSTS)}), not {host!r}.")
        port = check_integer(port, "port", minimum=0, maximum=65535)
        self._stopping = threading.Event()
        ThreadingHTTPServer.daemon_threads = True
        self._server = ThreadingHTTPServer((host, port), _handler(board, self._stopping))
        self._thread = threading.Thread(target=self._server.serve_forever, name="sero-live", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The page's address."""
        host, port = self._server.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def stop(self) -> None:
        """Stop serving (open event streams end within a few seconds)."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
