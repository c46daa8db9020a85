"""Classify recordings while the experiment runs (``sero watch``): each .abf file once it is completely
written, rows appended whole to a results table. When a file counts as finished: ``docs/tutorial.md``
("Watching a folder").
"""

from __future__ import annotations

import csv
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .errors import AbfError, SeroError
from .export import RESULT_COLUMNS, error_row
from .files import append_line, check_output_path
from .io import read_abf
from .model import load_model
from .pipeline import classify_file
from .report import REPORT_TABLE, write_summary_html

__all__ = ["watch_folder"]

log = logging.getLogger(__name__)

#: watchdog event types that mean "someone wrote to this path" (not our own opens and reads)
_WRITE_EVENTS = {"created", "modified", "moved", "closed"}


@dataclass
class _Pending:
    sig: tuple | None = None  # (size, mtime_ns) at the last look
    last_change: float = field(default_factory=time.monotonic)


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
    which records them."""
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

    def files(self) -> set[str]:
        """Files with at least one classified row: the others (errors, incomplete files) are tried again."""
        table = self.read()
        return set(table.loc[table["error"] == "", "file"].dropna().astype(str))

    def append(self, rows: pd.DataFrame) -> None:
        """Whole rows only: each row is one line, written and flushed in one call."""
        text = rows.reindex(columns=self.columns).to_csv(header=False, index=False, lineterminator="\n")
        append_line(self.path, text)

    def read(self) -> pd.DataFrame:
        table = pd.read_csv(self.path, keep_default_na=True, dtype={"file": str, "error": str})
        return table.fillna({"error": ""})


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
    **classify_kwargs,
) -> pd.DataFrame:
    """Watch ``folder`` and classify each .abf file once it is completely written; block until
    ``stop_event`` is set or ``timeout_s`` has passed (Ctrl-C in a terminal).

    Parameters
    ----------
    folder : the folder the acquisition software writes into.
    out : results table (.csv); created with its header if missing, one block of rows appended per file.
        With ``process_existing``, files already listed in it are not classified again (resume).
    model_folder : the model (None: the bundled demonstration model). It is loaded before watching starts,
        so a bad model fails at once.
    settle_s : seconds without any change before a file counts as finished.
    process_existing : also classify the .abf files already in the folder (default: only new ones, and
        existing ones that change).
    stop_event : a ``threading.Event``; setting it stops the watcher (within ``poll_s``).
    on_start : called once watching has begun (the model loaded, the folder listed, the observer running):
        the place to say "watching".
    on_result : called with each file's rows (a DataFrame with
        :data:`~spikeinterface_sero.RESULT_COLUMNS`) as they come; an exception it raises stops
        the watcher.
    poll_s : how often pending files are looked at.
    timeout_s : stop after this many seconds (None: until stopped).
    incomplete_s : extra seconds a file that is unchanged but does not open as a complete ABF file is given
        before its error row is recorded (default ``3 * settle_s``).
    recursive : also watch subfolders.
    report_dir : write each cell's plot there and keep ``index.html`` up to date (it reloads itself). Without
        ``out`` the results are appended to ``report_dir/results.csv``, so that a later session adds to the
        same index.
    use_polling : poll the folder instead of OS notifications (network drives).
    rescan_s : the folder is also re-listed this often, in case an event was missed.
    classify_kwargs : detection and model options of :func:`spikeinterface_sero.pipeline.classify_file`
        (``channel``, ``threshold``, ``mad_multiplier``, ``polarity``, ``method``, ``trust_model`` ...).

    Returns the rows classified during this call (a DataFrame).
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise SeroError(f"{folder} is not a folder; pass the folder the acquisition software saves .abf files into.")
    folder = folder.resolve()
    settle_s, poll_s = float(settle_s), float(poll_s)
    if not (0 <= settle_s < float("inf")) or not (0 < poll_s < float("inf")):
        raise SeroError(f"settle_s must be a number >= 0 and poll_s > 0 (seconds), not {settle_s!r} and {poll_s!r}.")
    own_table = out is None and report_dir is not None
    if own_table:
        # the report folder keeps its own table, so that its index lists every cell classified into it
        # (an earlier session's too) instead of only this session's
        Path(report_dir).mkdir(parents=True, exist_ok=True)
        out = Path(report_dir) / REPORT_TABLE
    if out is not None and not Path(out).exists():
        check_output_path(out, suffixes=(".csv",), what="results table")
    incomplete_s = 3.0 * settle_s if incomplete_s is None else float(incomplete_s)
    for bad in ("report_dir", "return_analyzer"):
        classify_kwargs.pop(bad, None)
    if classify_kwargs.get("method", "cnn") == "cnn":
        load_model(model_folder, trust=bool(classify_kwargs.get("trust_model", False)))  # fail fast, warm cache
    results = _ResultsCsv(Path(out), RESULT_COLUMNS) if out is not None else None
    already = results.files() if (results is not None and process_existing) else set()

    def listing() -> dict[str, tuple]:
        it = folder.rglob("*") if recursive else folder.iterdir()
        found = {}
        for p in it:
            if _is_abf(p.name) and p.is_file():
                s = _sig(p)
                if s is not None:
                    found[str(p)] = s
        return found

    events: list = []
    lock = threading.Lock()
    if use_polling:
        from watchdog.observers.polling import PollingObserver as _Observer
    else:
        from watchdog.observers import Observer as _Observer
    observer = _Observer(timeout=min(1.0, poll_s)) if use_polling else _Observer()
    observer.schedule(_make_handler(events, lock), str(folder), recursive=recursive)
    observer.start()  # before the listing: a file saved from now on is seen, by the listing or by an event

    pending: dict[str, _Pending] = {}
    done: dict[str, tuple] = {}  # path -> (sig when classified, was an "incomplete" error)
    baseline = {} if process_existing else listing()
    if process_existing:
        for p in listing():
            if p in already:
                done[p] = (_sig(Path(p)), False)
            else:
                pending[p] = _Pending(sig=None, last_change=time.monotonic())
    if on_start is not None:
        on_start()

    session: list[pd.DataFrame] = []
    start = time.monotonic()
    last_scan = start

    def touched(path: str, when: float) -> None:
        if path in done:
            sig = _sig(Path(path))
            if sig is None or sig == done[path][0]:
                return
            was_incomplete = done.pop(path)[1]
            if not was_incomplete:
                log.warning(
                    "%s changed after it was classified; classifying it again (the new rows supersede "
                    "the earlier ones)",
                    path,
                )
        elif path in baseline:
            if _sig(Path(path)) == baseline[path]:
                return
            baseline.pop(path)
        p = pending.setdefault(path, _Pending(sig=None, last_change=when))
        p.last_change = max(p.last_change, when)

    def classify(path: str) -> pd.DataFrame:
        try:
            rows = classify_file(path, model_folder=model_folder, report_dir=report_dir, **classify_kwargs)
        except Exception as e:  # a bug must not end a live session: record it like a failed file
            log.exception("classifying %s failed", path)
            rows = error_row(path, f"unexpected error while classifying ({type(e).__name__}: {e}); please report it")
        return rows

    try:
        while True:
            if stop_event is not None and stop_event.is_set():
                break
            now = time.monotonic()
            if timeout_s is not None and now - start >= timeout_s:
                break
            with lock:
                batch, events[:] = list(events), []
            for path, kind, when in batch:
                if kind == "deleted":
                    if not Path(path).exists():
                        pending.pop(path, None)
                        done.pop(path, None)
                    continue
                touched(path, when)
            if now - last_scan >= rescan_s:
                last_scan = now
                for path in listing():
                    if path not in pending:
                        touched(path, now)
            for path in list(pending):
                p = pending[path]
                sig = _sig(Path(path))
                now = time.monotonic()
                if sig is None:  # deleted or moved away
                    pending.pop(path)
                    continue
                if sig != p.sig:
                    p.sig, p.last_change = sig, now
                    continue
                quiet = now - p.last_change
                if quiet < settle_s:
                    continue
                reason = _incomplete_reason(Path(path))
                if reason is not None and quiet < settle_s + incomplete_s:
                    continue
                rows = classify(path)
                if _sig(Path(path)) != sig:  # written to while we read it: not finished after all
                    p.sig, p.last_change = _sig(Path(path)), time.monotonic()
                    log.info("%s changed while it was being classified; waiting for it to settle", path)
                    continue
                pending.pop(path)
                done[path] = (sig, reason is not None)
                if results is not None:
                    results.append(rows)
                session.append(rows)
                if report_dir is not None:
                    write_summary_html(
                        results.read(),
                        report_dir,
                        title="Serotonergic classification (live)",
                        refresh_s=10,
                        write_csv=not own_table,
                    )
                if on_result is not None:
                    on_result(rows)
            if stop_event is not None:
                stop_event.wait(poll_s)
            else:
                time.sleep(poll_s)
    finally:
        observer.stop()
        observer.join(timeout=10)
    return pd.concat(session, ignore_index=True) if session else pd.DataFrame(columns=RESULT_COLUMNS)
