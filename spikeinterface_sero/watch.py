"""Classify recordings while the experiment runs (``sero watch``): the part of a file written so far while
the acquisition program writes it, each .abf file once it is completely written, per-sweep files grouped into
one cell; rows appended whole to a results table. When a file counts as finished: ``docs/tutorial.md``
("Watching a folder"); growing files and grouping: ``docs/live.md``.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .errors import AbfError, ParameterError, SeroError
from .export import RESULT_COLUMNS, error_row, tidy
from .files import append_line, check_output_folder, check_output_path, check_writable, output_lock
from .grouping import cell_key, check_group, read_cell
from .io import abf_progress, read_abf
from .live import with_mean_currents
from .model import load_model
from .pipeline import classify_file, classify_recording
from .report import REPORT_TABLE, write_summary_html
from .schema import RESULT_SCHEMA, TEXT
from .session_runs import SessionBook, check_sessions
from .sessions import unlike_message

__all__ = ["watch_folder", "FolderWatcher", "check_group"]

log = logging.getLogger(__name__)

#: watchdog event types that mean "someone wrote to this path" (not our own opens and reads)
_WRITE_EVENTS = {"created", "modified", "moved", "closed"}
#: the session's rows are joined into one table when they hold more frames than this: a one-row frame of the
#: results table takes about 40 kB, under 1 kB as a row of one table (benchmarks/bench_live_session.py)
_SESSION_FRAMES = 32
#: the options of classify_file that say how a file is read (the others say how it is classified)
_READ_OPTIONS = ("channel", "allow_low_rate", "allow_any_unit")
#: the ``acquisition`` word of a row that covers only the part of a file written so far
RECORDING = "recording"


@dataclass
class _Pending:
    sig: tuple | None = None  # (size, mtime_ns) at the last look
    last_change: float = field(default_factory=time.monotonic)
    partial_at: float = float("-inf")  # when the part written so far was last classified
    partial_written: int = 0  # the samples it held


def _progress(path: Path) -> dict | None:
    """:func:`~.io.abf_progress`, or None while the file cannot be looked at (too short, gone)."""
    try:
        return abf_progress(path)
    except (SeroError, OSError):
        return None


def _growing(progress: dict | None) -> bool:
    """The acquisition program is writing the file: its header does not count samples yet, some are written."""
    return progress is not None and progress["gap_free"] and progress["declared"] == 0 and progress["written"] > 0


def _sig(path: Path):
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


def _is_abf(path) -> bool:
    return str(path).lower().endswith(".abf")


def _incomplete_reason(path: Path) -> str | None:
    """None when the file opens as a complete ABF file; otherwise the reader's message. Only the header and
    the data layout are checked (cheap); other problems (no current channel ...) are left to classify_file,
    which records them. A header that counts no samples while samples follow it is a file still being
    written (docs/live.md)."""
    progress = _progress(path)
    if progress is not None and progress["declared"] == 0 and progress["written"] > 0:
        return f"{path.name}: its header does not count its samples yet: the acquisition program has not finished it"
    try:
        read_abf(path, allow_low_rate=True, allow_any_unit=True, validate=False)
    except AbfError as e:
        return str(e)
    except SeroError:
        return None
    except Exception as e:  # a reader failure that io does not translate: treat as not finished
        return f"{path.name}: cannot be opened yet ({type(e).__name__}: {e})"
    return None


class _ResultsCsv:
    """The results table on disk: created with its header when missing, rows appended and flushed."""

    def __init__(self, path: Path, columns: list[str]):
        self.path = path
        self.columns = columns
        if path.exists() and path.stat().st_size > 0:
            try:
                with open(path, newline="", encoding="utf-8") as handle:
                    header = next(csv.reader(handle), [])
            except (UnicodeDecodeError, csv.Error):
                header = ["(not text)"]
            if header != columns:
                raise SeroError(
                    f"{path} exists but is not a sero results table (it starts with "
                    f"{', '.join(header[:6])}...); choose another --out file or move it away."
                )
            self._drop_torn_last_line()
        else:
            append_line(path, _csv_line(columns))

    def _drop_torn_last_line(self) -> None:
        """A crash during an append can leave half a row without its newline: it is dropped (its file is
        classified again, as it never got a whole row)."""
        with open(self.path, "rb+") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 1))
            if handle.read(1) == b"\n":
                return
            handle.seek(0)
            data = handle.read()
            handle.truncate(data.rfind(b"\n") + 1)
            log.warning("%s ended with a torn row (an interrupted write); it was dropped", self.path)

    def files(self) -> dict[str, str]:
        """Every file in the table, with the error of its latest rows ("" when classified)."""
        table = self.latest()
        return {str(f): str(e) for f, e in zip(table["file"], table["error"])}

    def append(self, rows: pd.DataFrame) -> None:
        """Whole rows only: each row is one line, written and flushed in one call; a row torn by an earlier
        failed write (a full disk) is dropped first."""
        self._drop_torn_last_line()
        text = rows.reindex(columns=self.columns).to_csv(header=False, index=False, lineterminator="\n")
        append_line(self.path, text)

    def read(self) -> pd.DataFrame:
        """Every row on disk, text columns as text (a channel "0" stays "0")."""
        text = {name: str for name, column in RESULT_SCHEMA.items() if column.kind == TEXT and name in self.columns}
        return tidy(pd.read_csv(self.path, keep_default_na=True, dtype=text).reindex(columns=self.columns))

    def latest(self) -> pd.DataFrame:
        """One block of rows per file: the latest (a file classified again, or retried after a failure,
        supersedes its earlier rows), so pages and counts show each file once."""
        return latest_rows(self.read())


def latest_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of each file's last block (rows of one file are appended together)."""
    if table.empty:
        return table
    files = table["file"].astype(str)
    block = (files != files.shift()).cumsum()
    last = block.groupby(files).transform("max")
    return table[block == last].reset_index(drop=True)


def _csv_line(values) -> str:
    return pd.DataFrame([list(values)]).to_csv(header=False, index=False, lineterminator="\n")


def _make_handler(events: list, lock: threading.Lock):
    from watchdog.events import FileSystemEventHandler

    class _Handler(FileSystemEventHandler):
        def on_any_event(self, event):
            if event.is_directory or event.event_type not in _WRITE_EVENTS | {"deleted"}:
                return
            now = time.monotonic()
            paths = [event.src_path] + ([event.dest_path] if getattr(event, "dest_path", "") else [])
            with lock:
                for p in paths:
                    p = os.fsdecode(p)
                    if _is_abf(p):
                        events.append((p, event.event_type, now))

    return _Handler()


class FolderWatcher:
    """The state of one watch session: pending files, classified files, rows not yet on disk.

    Made by :func:`watch_folder` (its parameters); :meth:`run` blocks until stopped. A results table that
    cannot be written (a full or read-only disk) is said once; its rows are kept in memory and written when
    the disk takes them again (and at the end, or to a fallback file, by the caller's ``flush``).
    """

    def __init__(self, folder: Path, options: dict, classify_kwargs: dict):
        self.folder = folder
        self.options = options
        self.classify_kwargs = classify_kwargs
        self.pending: dict[str, _Pending] = {}
        self.done: dict[str, tuple] = {}  # path -> (sig when classified, was an "incomplete" error)
        self.baseline: dict[str, tuple] = {}
        self.session: list[pd.DataFrame] = []
        self.unwritten: list[pd.DataFrame] = []  # rows the disk did not take yet
        self.write_error: str | None = None
        self.events: list = []
        self.lock = threading.Lock()
        self.results: _ResultsCsv | None = None
        self.failures: dict[str, str] = {}  # file -> error of its latest rows
        self.recording_sessions: SessionBook | None = options.get("recording_sessions")

    # ------------------------------------------------------------------ listing and events
    def listing(self) -> dict[str, tuple]:
        """Every .abf file in the folder with its (size, mtime)."""
        found = {}
        for p in self.folder.rglob("*") if self.options["recursive"] else self.folder.iterdir():
            if _is_abf(p.name) and p.is_file():
                s = _sig(p)
                if s is not None:
                    found[str(p)] = s
        return found

    def start(self, already: dict[str, str]) -> None:
        """The files there now: the baseline, or with ``process_existing`` pending (those without classified
        rows in the table: new ones and failed ones)."""
        if not self.options["process_existing"]:
            self.baseline = self.listing()
            return
        for p in self.listing():
            if already.get(p) == "":  # classified: resumed, not redone
                self.done[p] = (_sig(Path(p)), False)
                continue
            if p in already:  # failed: tried again, its failure appended again only if it changes
                self.failures[p] = already[p]
            self.pending[p] = _Pending(sig=None, last_change=time.monotonic())

    def touched(self, path: str, when: float) -> None:
        """Someone wrote to ``path``: (again) pending, unless nothing changed."""
        if path in self.done:
            sig = _sig(Path(path))
            if sig is None or sig == self.done[path][0]:
                return
            if not self.done.pop(path)[1]:
                log.warning(
                    "%s changed after it was classified; classifying it again (the new rows supersede the earlier "
                    "ones)",
                    path,
                )
        elif path in self.baseline:
            if _sig(Path(path)) == self.baseline[path]:
                return
            self.baseline.pop(path)
        p = self.pending.setdefault(path, _Pending(sig=None, last_change=when))
        p.last_change = max(p.last_change, when)

    def take_events(self, now: float, last_scan: float) -> float:
        """The events since the last look, and a re-listing every ``rescan_s``; returns the last scan time."""
        with self.lock:
            batch, self.events[:] = list(self.events), []
        for path, kind, when in batch:
            if kind != "deleted":
                self.touched(path, when)
            elif not Path(path).exists():
                self.pending.pop(path, None)
                self.done.pop(path, None)
        if now - last_scan < self.options["rescan_s"]:
            return last_scan
        for path in self.listing():
            if path not in self.pending:
                self.touched(path, now)
        return now

    # ------------------------------------------------------------------ classification
    def settled(self, path: str) -> tuple | None:
        """(sig, incomplete reason) once ``path`` is ready to classify; None while it is still being written."""
        p = self.pending[path]
        sig = _sig(Path(path))
        now = time.monotonic()
        if sig is None:  # deleted or moved away
            self.pending.pop(path)
            return None
        if sig != p.sig:
            p.sig, p.last_change = sig, now
            return None
        quiet = now - p.last_change
        if quiet < self.options["settle_s"]:
            return None
        reason = _incomplete_reason(Path(path))
        if reason is not None and quiet < self.options["settle_s"] + self.options["incomplete_s"]:
            return None
        return sig, reason

    def cell_of(self, path: str) -> tuple[str, list[str]]:
        """The row key of ``path`` (the file, or its cell's name beside it with ``group``) and the files to
        classify together (the cell's finished files and ``path``)."""
        cell = cell_key(path, self.options["group"])
        if cell is None:
            return path, [path]
        members = [p for p in self.done if p != path and self.cell_of_name(p) == cell]
        return cell, [*members, path]

    def cell_of_name(self, path: str) -> str:
        return cell_key(path, self.options["group"]) or path

    def classify(self, path: str, progress: dict | None = None, partial: bool = False) -> tuple[str, pd.DataFrame]:
        """(row key, rows) of ``path``: a finished single file as ``sero classify`` does it; a cell's files,
        or the part of a file written so far, read and classified the same way (``partial``: no plots)."""
        key, paths = self.cell_of(path)
        book = self.recording_sessions
        rig_session = None if book is None else book.verdict(path)
        try:
            if key == path and not _growing(progress):
                rows, analyzer = classify_file(
                    path,
                    model_folder=self.options["model_folder"],
                    report_dir=self.options["report_dir"],
                    rig_session=rig_session,
                    return_analyzer=True,
                    **self.classify_kwargs,
                )
            else:
                read_options = {k: self.classify_kwargs[k] for k in _READ_OPTIONS if k in self.classify_kwargs}
                rest = {k: v for k, v in self.classify_kwargs.items() if k not in _READ_OPTIONS}
                rows, analyzer = classify_recording(
                    lambda: read_cell(paths, Path(key), read_options, growing=True),
                    key,
                    model_folder=self.options["model_folder"],
                    report_dir=None if partial else self.options["report_dir"],
                    rig_session=rig_session,
                    return_analyzer=True,
                    **rest,
                )
            return key, with_mean_currents(rows, analyzer)  # each cell's mean action current, for the live page
        except Exception as e:  # a bug must not end a live session: record it like a failed file
            log.exception("classifying %s failed", path)
            return key, error_row(
                key, f"unexpected error while classifying ({type(e).__name__}: {e}); please report it"
            )

    def grow(self, path: str, progress: dict | None) -> None:
        """While the acquisition program writes ``path``: the part written so far classified every
        ``update_s`` seconds, its rows marked ``recording`` (a failure waits for the finished file)."""
        update_s = self.options["update_s"]
        pending = self.pending[path]
        if update_s is None or not _growing(progress) or progress["written"] <= pending.partial_written:
            return
        now = time.monotonic()
        if now - pending.partial_at < update_s:
            return
        pending.partial_at, pending.partial_written = now, progress["written"]
        key, rows = self.classify(path, progress, partial=True)
        if len(rows) and not str(rows["error"].iloc[0]):
            rows["acquisition"] = RECORDING
            self.record(key, rows)

    def finished(self, path: str, progress: dict | None) -> tuple | None:
        """(sig, None) as soon as the header says the file is complete (it declares its samples, and they are
        all there: no settle wait); else the settle timer's answer (:meth:`settled`)."""
        if progress is not None and progress["complete"]:
            sig = _sig(Path(path))
            return None if sig is None else (sig, None)
        return self.settled(path)

    def step(self) -> bool:
        """Classify every pending file that is complete or has settled; the part written so far of those
        still being written. True when rows came (the time it took may have settled other files)."""
        rows_before = len(self.session)
        for path in list(self.pending):
            progress = _progress(Path(path))
            if not (progress is not None and progress["complete"]):
                self.grow(path, progress)
                progress = _progress(Path(path))  # it may have been finished while the part was classified
            ready = self.finished(path, progress) if path in self.pending else None
            if ready is None:
                continue
            sig, reason = ready
            if _growing(progress):
                log.warning("%s stopped growing but its header was never finalised; classifying what was written", path)
            key, rows = self.classify(path, progress)
            if _sig(Path(path)) != sig:  # written to while we read it: not finished after all
                self.pending[path].sig, self.pending[path].last_change = _sig(Path(path)), time.monotonic()
                log.info("%s changed while it was being classified; waiting for it to settle", path)
                continue
            self.pending.pop(path)
            self.done[path] = (sig, reason is not None)
            self.record(key, rows)
            self.judge_session(key, path)
        return len(self.session) > rows_before

    def judge_session(self, key: str, path: str) -> None:
        """The session check once a file is finished (``docs/validate.md``, "Sessions"): when its recording
        session has just been found unlike every validated rig, its finished cells are classified again with
        that verdict, their new rows superseding the earlier ones."""
        if self.recording_sessions is None or not len(rows := pd.concat(self.session, ignore_index=True)):
            return
        latest = latest_rows(rows[rows["acquisition"].astype(str) != RECORDING])
        again = self.recording_sessions.judge(key, path, latest)
        if again:
            log.warning("%s", unlike_message(self.recording_sessions.verdict(path)))
        for made_by in again.values():
            self.record(*self.classify(made_by))

    def record(self, path: str, rows: pd.DataFrame) -> None:
        """A file's rows: to the session, the table (a failure repeated word for word is not appended
        again: failures once), the page and the caller."""
        error = str(rows["error"].iloc[0]) if len(rows) else ""
        repeated = bool(error) and self.failures.get(path) == error
        if error:
            self.failures[path] = error
        else:
            self.failures.pop(path, None)
        self.session.append(rows)
        if len(self.session) > _SESSION_FRAMES:  # one table, not a frame per file: memory flat (docs/live.md)
            self.session = [pd.concat(self.session, ignore_index=True)]
        if self.results is not None and not repeated:
            self.unwritten.append(rows)
            self.flush()
        self.update_page()
        if self.options["on_result"] is not None:
            self.options["on_result"](rows)

    # ------------------------------------------------------------------ writing
    def flush(self) -> bool:
        """Write the rows the disk has not taken yet; True when none is left. A failure is said once, and
        again when writing works again."""
        while self.unwritten:
            try:
                self.results.append(self.unwritten[0])
            except OSError as e:
                if self.write_error is None:
                    self.write_error = e.strerror or str(e)
                    log.warning(
                        "cannot write %s (%s); the results are kept in memory and written when the disk takes them",
                        self.results.path,
                        self.write_error,
                    )
                return False
            self.unwritten.pop(0)
        if self.write_error is not None:
            log.warning("%s can be written again; the results kept in memory are in it now", self.results.path)
            self.write_error = None
        return True

    def update_page(self) -> None:
        report_dir = self.options["report_dir"]
        if report_dir is None or self.results is None:
            return
        try:
            table = latest_rows(pd.concat([self.results.read(), *self.unwritten], ignore_index=True))
            write_summary_html(
                table,
                report_dir,
                title="Serotonergic classification (live)",
                refresh_s=10,
                write_csv=not self.options["own_table"],
            )
        except OSError as e:  # the page waits for the disk, as the table does
            log.info("the live page could not be written (%s)", e)

    def unwritten_rows(self) -> pd.DataFrame:
        """The rows not on disk (after a last try to write them)."""
        if self.results is not None and self.unwritten:
            self.flush()
        return pd.concat(self.unwritten, ignore_index=True) if self.unwritten else pd.DataFrame(columns=RESULT_COLUMNS)

    # ------------------------------------------------------------------ the loop
    def run(self, stop_event: threading.Event | None, timeout_s: float | None, on_start) -> pd.DataFrame:
        """Watch until ``stop_event`` is set or ``timeout_s`` has passed; returns the session's rows."""
        observer = self._observer()
        observer.start()  # before the listing: a file saved from now on is seen, by the listing or by an event
        try:
            self.start(self.results.files() if (self.results is not None and self.options["process_existing"]) else {})
            if on_start is not None:
                on_start()
            start = last_scan = time.monotonic()
            while not (stop_event is not None and stop_event.is_set()):
                now = time.monotonic()
                if timeout_s is not None and now - start >= timeout_s:
                    break
                last_scan = self.take_events(now, last_scan)
                worked = self.step()
                if self.unwritten:
                    self.flush()
                if not worked:  # after work, look again at once: other files may have settled meanwhile
                    (stop_event.wait if stop_event is not None else time.sleep)(self.options["poll_s"])
        finally:
            observer.stop()
            observer.join(timeout=10)
        return pd.concat(self.session, ignore_index=True) if self.session else pd.DataFrame(columns=RESULT_COLUMNS)

    def _observer(self):
        if self.options["use_polling"]:
            from watchdog.observers.polling import PollingObserver as _Observer

            observer = _Observer(timeout=min(1.0, self.options["poll_s"]))
        else:
            from watchdog.observers import Observer as _Observer

            observer = _Observer()
        observer.schedule(_make_handler(self.events, self.lock), str(self.folder), recursive=self.options["recursive"])
        return observer


def watch_folder(
    folder,
    *,
    out=None,
    model_folder=None,
    settle_s: float = 2.0,
    process_existing: bool = False,
    stop_event: threading.Event | None = None,
    on_result=None,
    on_start=None,
    poll_s: float = 0.5,
    timeout_s: float | None = None,
    incomplete_s: float | None = None,
    recursive: bool = False,
    report_dir=None,
    use_polling: bool = False,
    rescan_s: float = 5.0,
    on_unwritten=None,
    update_s: float | None = 5.0,
    group=None,
    sessions: str = "day",
    **classify_kwargs,
) -> pd.DataFrame:
    r"""Watch ``folder`` and classify each .abf file once it is completely written; block until
    ``stop_event`` is set or ``timeout_s`` has passed (Ctrl-C in a terminal).

    Parameters
    ----------
    folder : str or Path
        The folder the acquisition software writes into.
    out : str, Path or None, default: None
        Results table (.csv); created with its header if missing, one block of rows appended per file. One
        watcher per table (a lock file beside it). With ``process_existing``, files already listed in it are
        not classified again (resume); a file classified again supersedes its earlier rows, and a failure
        repeated word for word is not appended again.
    model_folder : str, Path or None, default: None
        The model (None: the bundled demonstration model), loaded before watching starts.
    settle_s : float, default: 2.0
        Seconds without any change before a file counts as finished, when its header does not say so (a
        file whose header counts all the samples it holds is finished at once: docs/live.md).
    process_existing : bool, default: False
        Also classify the .abf files already in the folder (default: only new ones, and existing ones that
        change).
    stop_event : threading.Event or None, default: None
        Setting it stops the watcher (within ``poll_s``).
    on_result : callable or None, default: None
        Called with each file's rows (:data:`~spikeinterface_sero.RESULT_COLUMNS`) as they come; an
        exception it raises stops the watcher.
    on_start : callable or None, default: None
        Called once watching has begun (the model loaded, the folder listed, the observer running).
    poll_s : float, default: 0.5
        How often pending files are looked at.
    timeout_s : float or None, default: None
        Stop after this many seconds (None: until stopped).
    incomplete_s : float or None, default: None
        Extra seconds a file that is unchanged but does not open as a complete ABF file is given before its
        error row is recorded (None: ``3 * settle_s``).
    recursive : bool, default: False
        Also watch subfolders.
    report_dir : str, Path or None, default: None
        Each cell's plot and ``index.html`` (reloads itself), one row block per file. Without ``out`` the
        results are appended to ``report_dir/results.csv``, so that a later session adds to the same index.
    use_polling : bool, default: False
        Poll the folder instead of OS notifications (network drives).
    rescan_s : float, default: 5.0
        The folder is also re-listed this often, in case an event was missed.
    on_unwritten : callable or None, default: None
        Called at the end with the rows the table could not take (a full disk), when there are any; without
        it they are only in the returned rows.
    update_s : float or None, default: 5.0
        While the acquisition program writes a (gap-free) file, the part written so far is classified this
        often, its rows marked ``acquisition="recording"`` and replaced by the final rows when the file is
        complete (None: only finished files).
    group : str, re.Pattern or None, default: None
        A regular expression with a named group ``cell`` (e.g. ``r"(?P<cell>.+)_\d+\.abf"``): files whose
        names match it with the same ``cell`` are one cell, their sweeps the segments of one recording in the
        order they were recorded; the cell's row (file: the folder / cell) is updated as each file arrives.
    sessions : "day" | "none", default: "day"
        The session check, as in :func:`~spikeinterface_sero.pipeline.classify_files`: once the finished cells of
        a folder recorded on one date are mostly unlike every rig the model was validated on, they and every
        later cell of that session are classified again with that verdict (``session_unlike_validated_rigs``,
        not reliable), their new rows superseding the earlier ones. "none": each cell judged alone.
    **classify_kwargs
        Detection and model options of :func:`spikeinterface_sero.pipeline.classify_file`.

    Returns
    -------
    pandas.DataFrame
        The rows classified during this call.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise SeroError(f"{folder} is not a folder; pass the folder the acquisition software saves .abf files into.")
    group = check_group(group)
    sessions = check_sessions(sessions)
    if update_s is not None and not (0 < float(update_s) < float("inf")):
        raise ParameterError(f"update_s must be a number of seconds > 0 or None, not {update_s!r}.")
    settle_s, poll_s = float(settle_s), float(poll_s)
    if not (0 <= settle_s < float("inf")) or not (0 < poll_s < float("inf")):
        raise SeroError(f"settle_s must be a number >= 0 and poll_s > 0 (seconds), not {settle_s!r} and {poll_s!r}.")
    own_table = out is None and report_dir is not None
    if report_dir is not None:
        check_output_folder(report_dir, what="report folder")
    if out is not None and Path(out).exists():
        check_writable(Path(out).absolute().parent, "results table")
    if own_table:
        # the report folder keeps its own table, so that its index lists every cell classified into it
        # (an earlier session's too) instead of only this session's
        Path(report_dir).mkdir(parents=True, exist_ok=True)
        out = Path(report_dir) / REPORT_TABLE
    if out is not None and not Path(out).exists():
        check_output_path(out, suffixes=(".csv",), what="results table")
    for bad in ("report_dir", "return_analyzer"):
        classify_kwargs.pop(bad, None)
    rig_validation = None
    if classify_kwargs.get("method", "cnn") == "cnn":  # fail fast, warm cache
        rig_validation = load_model(model_folder, trust=classify_kwargs.get("trust_model", False)).info.get(
            "rig_validation"
        )
    classify_kwargs.pop("rig_session", None)  # the watch judges the sessions
    options = dict(
        model_folder=model_folder,
        settle_s=settle_s,
        poll_s=poll_s,
        incomplete_s=3.0 * settle_s if incomplete_s is None else float(incomplete_s),
        process_existing=process_existing,
        recursive=recursive,
        report_dir=report_dir,
        use_polling=use_polling,
        rescan_s=float(rescan_s),
        on_result=on_result,
        own_table=own_table,
        update_s=None if update_s is None else float(update_s),
        group=group,
        recording_sessions=SessionBook(rig_validation) if sessions == "day" and rig_validation else None,
    )
    watcher = FolderWatcher(folder.resolve(), options, classify_kwargs)
    with (
        output_lock(out, what="results table", flag="--out") if out is not None else contextlib.nullcontext(),
        # one writer per report folder, as sero classify --report and make_report
        output_lock(report_dir, what="report folder", flag="--report") if report_dir else contextlib.nullcontext(),
    ):
        watcher.results = _ResultsCsv(Path(out), RESULT_COLUMNS) if out is not None else None
        try:
            return watcher.run(stop_event, timeout_s, on_start)
        finally:
            left = watcher.unwritten_rows()
            if len(left) and on_unwritten is not None:
                on_unwritten(left)
