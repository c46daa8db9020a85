"""sero watch: files are classified once they are completely written, never half-written, exactly once."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spikeinterface_sero import pipeline, watch
from spikeinterface_sero.constants import SAMPLING_FREQUENCY as FS
from spikeinterface_sero.datasets import write_abf
from spikeinterface_sero.pipeline import RESULT_COLUMNS
from spikeinterface_sero.testing import synthetic_trace
from spikeinterface_sero.watch import watch_folder

SETTLE = 0.5
FAST = dict(
    method="criteria", settle_s=SETTLE, poll_s=0.05, incomplete_s=4.0, rescan_s=0.5
)  # margin for loaded CI machines


def _abf_bytes(tmp_path: Path, name: str, seed: int, duration_s: float = 2.0) -> bytes:
    times = np.arange(0.1, duration_s - 0.1, 0.3) + 0.01 * seed
    x = synthetic_trace(duration_s=duration_s, spike_times_s=times, seed=seed)
    p = write_abf(tmp_path / "src" / name, x, FS, data_format="float32")
    return p.read_bytes()


def _write_in_chunks(path: Path, data: bytes, cuts, pause_s: float) -> None:
    """Like an acquisition program: header + part of the data, flush, pause, more, ... the rest."""
    with open(path, "wb") as f:
        start = 0
        for cut in list(cuts) + [len(data)]:
            f.write(data[start:cut])
            f.flush()
            os.fsync(f.fileno())
            start = cut
            if cut < len(data):
                time.sleep(pause_s)


class _Spy:
    """Records, for each classification, the file and its size at that moment."""

    def __init__(self, monkeypatch):
        self.calls: list[tuple[str, int]] = []
        self.results: list[pd.DataFrame] = []
        real = pipeline.classify_file

        def spy(path, **kw):
            self.calls.append((str(path), os.path.getsize(path)))
            return real(path, **kw)

        monkeypatch.setattr(watch, "classify_file", spy)

    def on_result(self, rows):
        self.results.append(rows)

    def wait_for(self, n: int, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while len(self.results) < n and time.monotonic() < end:
            time.sleep(0.05)
        assert len(self.results) >= n, f"only {len(self.results)} of {n} files classified: {self.calls}"


def _start(folder, spy, **kw):
    stop = threading.Event()
    box = {}

    def run():
        try:
            box["table"] = watch_folder(folder, stop_event=stop, on_result=spy.on_result, **{**FAST, **kw})
        except BaseException as e:  # noqa: BLE001 - re-raised in the test thread
            box["error"] = e

    th = threading.Thread(target=run, daemon=True)
    th.start()
    time.sleep(0.3)  # observer running
    return stop, th, box


def _stop(stop, th, box):
    stop.set()
    th.join(timeout=10)
    assert not th.is_alive(), "the watcher did not stop"
    if "error" in box:
        raise box["error"]
    return box["table"]


def test_watch_classifies_finished_files_once(tmp_path, monkeypatch):
    folder = tmp_path / "acq"
    folder.mkdir()
    out = tmp_path / "results.csv"
    spy = _Spy(monkeypatch)
    chunked = _abf_bytes(tmp_path, "chunked.abf", 1)
    copied = _abf_bytes(tmp_path, "copied.abf", 2)
    moved = _abf_bytes(tmp_path, "moved.abf", 3)
    resumed = _abf_bytes(tmp_path, "resumed.abf", 4)
    stop, th, box = _start(folder, spy, out=out)
    try:
        # pauses longer than the settle time: the truncated file must still not be classified
        writer = threading.Thread(
            target=_write_in_chunks, args=(folder / "chunked.abf", chunked, [3000, len(chunked) // 2], 0.8)
        )
        writer.start()
        shutil.copyfile(tmp_path / "src" / "copied.abf", folder / "copied.abf")
        staged = tmp_path / "staged.abf"
        staged.write_bytes(moved)
        os.replace(staged, folder / "moved.abf")
        (folder / "notes.txt").write_text("not a recording\n")
        (folder / "fake.abf").write_text("a text file with an .abf name\n")
        # a recording that stops half-way (acquisition paused): error row, then classified when completed
        half = len(resumed) // 2
        (folder / "resumed.abf").write_bytes(resumed[:half])
        writer.join()
        spy.wait_for(5)
        assert {Path(p).name for p, _ in spy.calls} == {
            "chunked.abf",
            "copied.abf",
            "moved.abf",
            "fake.abf",
            "resumed.abf",
        }
        with open(folder / "resumed.abf", "ab") as f:
            f.write(resumed[half:])
        spy.wait_for(6)
        time.sleep(3 * SETTLE)  # nothing more may come
    finally:
        table = _stop(stop, th, box)

    finals = {
        "chunked.abf": len(chunked),
        "copied.abf": len(copied),
        "moved.abf": len(moved),
        "resumed.abf": len(resumed),
    }
    names = [Path(p).name for p, _ in spy.calls]
    assert sorted(names) == sorted(["chunked.abf", "copied.abf", "moved.abf", "fake.abf", "resumed.abf", "resumed.abf"])
    for p, size in spy.calls:
        name = Path(p).name
        if name in finals and not (name == "resumed.abf" and size == half):
            assert size == finals[name], f"{name} classified at {size} of {finals[name]} bytes"
    # the half file got an error row (after its grace period), the completed one a real row
    assert [s for p, s in spy.calls if Path(p).name == "resumed.abf"] == [half, len(resumed)]

    csv = pd.read_csv(out, keep_default_na=False)
    assert list(csv.columns) == RESULT_COLUMNS
    assert len(csv) == 6 and len(table) == 6
    by_name = {n: g for n, g in csv.groupby(csv["file"].map(lambda f: Path(f).name))}
    assert set(by_name) == {"chunked.abf", "copied.abf", "moved.abf", "fake.abf", "resumed.abf"}
    for name in ("chunked.abf", "copied.abf", "moved.abf"):
        row = by_name[name].iloc[0]
        assert (
            row["error"] == ""
            and int(row["n_spikes"]) > 3
            and row["sero_label"] in ("serotonergic", "non_serotonergic")
        )
    assert "not an Axon Binary Format" in by_name["fake.abf"].iloc[0]["error"]
    res = by_name["resumed.abf"]
    assert "truncated" in res.iloc[0]["error"] and res.iloc[1]["error"] == ""


def test_watch_existing_files_resume_and_timeout(tmp_path, monkeypatch):
    folder = tmp_path / "acq"
    folder.mkdir()
    (folder / "old.abf").write_bytes(_abf_bytes(tmp_path, "old.abf", 5))
    out = tmp_path / "results.csv"
    spy = _Spy(monkeypatch)
    t0 = time.monotonic()
    t = watch_folder(folder, out=out, timeout_s=1.0, **FAST)  # existing files are not new
    assert 0.9 < time.monotonic() - t0 < 5 and t.empty and spy.calls == []
    assert list(pd.read_csv(out).columns) == RESULT_COLUMNS  # created with its header
    t = watch_folder(folder, out=out, timeout_s=1.5, process_existing=True, on_result=spy.on_result, **FAST)
    assert len(t) == 1 and len(spy.calls) == 1
    t = watch_folder(folder, out=out, timeout_s=1.0, process_existing=True, **FAST)  # resume: already in out
    assert t.empty and len(spy.calls) == 1 and len(pd.read_csv(out)) == 1


def test_watch_bad_arguments(tmp_path):
    from spikeinterface_sero.errors import SeroError

    with pytest.raises(SeroError, match="not a folder"):
        watch_folder(tmp_path / "missing", timeout_s=0.1, method="criteria")
    bad = tmp_path / "other.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(SeroError, match="not a sero results table"):
        watch_folder(tmp_path, out=bad, timeout_s=0.1, method="criteria")


def test_sero_watch_cli(tmp_path, capsys):
    from spikeinterface_sero.cli import main

    folder = tmp_path / "acq"
    folder.mkdir()
    (folder / "A140313#073.abf").write_bytes(_abf_bytes(tmp_path, "x.abf", 6))
    out, report = tmp_path / "live.csv", tmp_path / "live_report"
    rc = main(
        [
            "watch",
            str(folder),
            "--out",
            str(out),
            "--report",
            str(report),
            "--method",
            "criteria",
            "--existing",
            "--settle",
            "0.2",
            "--timeout",
            "2",
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0
    assert "watching" in text and "A140313#073" in text and "stopped: 1 cell(s) classified, 0 file(s) failed" in text
    assert len(pd.read_csv(out)) == 1
    page = (report / "index.html").read_text()
    assert (
        'http-equiv="refresh"' in page and "A140313#073" in page and len(list(report.glob("*.png"))) == 2
    )  # the cell and its detection view


def test_a_report_folder_without_out_keeps_every_session_in_its_index(tmp_path):
    """Without --out the report folder keeps its own results.csv: a second session adds to the index instead
    of replacing it with its own cells."""
    folder, report = tmp_path / "acq", tmp_path / "live_report"
    folder.mkdir()
    (folder / "A140313#001.abf").write_bytes(_abf_bytes(tmp_path, "a.abf", 1))
    first = watch_folder(folder, report_dir=report, process_existing=True, timeout_s=3.0, **FAST)
    assert len(first) == 1 and len(pd.read_csv(report / "results.csv")) == 1
    (folder / "A140314#002.abf").write_bytes(_abf_bytes(tmp_path, "b.abf", 2))
    second = watch_folder(folder, report_dir=report, process_existing=True, timeout_s=3.0, **FAST)
    assert list(second["file"].map(lambda f: Path(f).name)) == ["A140314#002.abf"]  # the first is not redone
    page = (report / "index.html").read_text()
    assert "A140313#001" in page and "A140314#002" in page and 'href="results.csv"' in page
    assert sorted(Path(f).name for f in pd.read_csv(report / "results.csv")["file"]) == [
        "A140313#001.abf",
        "A140314#002.abf",
    ]
