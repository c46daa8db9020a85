"""sero watch on files the acquisition program is still writing, and on one file per sweep grouped into one cell."""

from __future__ import annotations

import datetime
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spikeinterface_sero import cli
from spikeinterface_sero.constants import SAMPLING_FREQUENCY as FS
from spikeinterface_sero.datasets import AbfInPieces, write_abf
from spikeinterface_sero.errors import DataError, ParameterError
from spikeinterface_sero.io import abf_progress, read_abf
from spikeinterface_sero.pipeline import classify_file
from spikeinterface_sero.testing import synthetic_trace
from spikeinterface_sero.watch import watch_folder

SPIKES_PER_S = 4
#: settle time far longer than the test waits: a final row can only come from the finished header
LONG_SETTLE = 60.0
FAST = dict(method="criteria", poll_s=0.05, rescan_s=0.5, update_s=0.2)


def _trace(duration_s: float, seed: int) -> np.ndarray:
    times = np.arange(0.05, duration_s - 0.05, 1.0 / SPIKES_PER_S) + 0.01 * seed
    return synthetic_trace(duration_s=duration_s, spike_times_s=times, seed=seed)


class _Rows:
    """The rows the watcher hands over, as they come."""

    def __init__(self):
        self.blocks: list[pd.DataFrame] = []
        self.lock = threading.Lock()

    def __call__(self, rows: pd.DataFrame) -> None:
        with self.lock:
            self.blocks.append(rows.copy())

    def wait(self, condition, timeout: float = 30.0) -> pd.DataFrame:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                for rows in self.blocks:
                    if condition(rows):
                        return rows
            time.sleep(0.02)
        raise AssertionError(f"no such rows within {timeout} s; got {[b.to_dict('records') for b in self.blocks]}")


def _watch(folder: Path, rows: _Rows, **options):
    stop, started, box = threading.Event(), threading.Event(), {}

    def run():
        try:
            box["table"] = watch_folder(folder, stop_event=stop, on_result=rows, on_start=started.set, **options)
        except BaseException as e:  # noqa: BLE001 - re-raised in the test thread
            box["error"] = e
            started.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(60)
    return stop, thread, box


def _stop(stop, thread, box) -> pd.DataFrame:
    stop.set()
    thread.join(timeout=20)
    assert not thread.is_alive()
    if "error" in box:
        raise box["error"]
    return box["table"]


@pytest.mark.parametrize("version", [2, 1])
def test_progress_and_reading_of_a_file_being_written(tmp_path, version):
    x = _trace(2.0, seed=1)
    writer = AbfInPieces(tmp_path / "growing.abf", x, FS, version=version)
    writer.begin()
    assert abf_progress(writer.path) == dict(complete=False, declared=0, written=0, n_channels=1, gap_free=True)
    with pytest.raises(DataError, match="holds no samples yet"):
        read_abf(writer.path, growing=True)
    writer.append(30_001)
    progress = abf_progress(writer.path)
    assert not progress["complete"] and progress["written"] == 30_001 and progress["declared"] == 0
    part = read_abf(writer.path, growing=True)
    assert part.get_num_samples(0) == 30_001
    whole = read_abf(write_abf(tmp_path / "whole.abf", x, FS, version=version))
    np.testing.assert_array_equal(
        part.get_traces(return_in_uV=True), whole.get_traces(end_frame=30_001, return_in_uV=True)
    )
    writer.finish()
    assert writer.path.read_bytes() == (tmp_path / "whole.abf").read_bytes()  # the finished file is write_abf's
    assert abf_progress(writer.path)["complete"]
    assert read_abf(writer.path, growing=True).get_num_samples(0) == x.size


def test_a_copy_in_progress_is_not_complete(tmp_path):
    data = write_abf(tmp_path / "source.abf", _trace(1.0, seed=2), FS).read_bytes()
    copy = tmp_path / "copy.abf"
    copy.write_bytes(data[: len(data) - 4000])  # the header counts samples that are not there yet
    progress = abf_progress(copy)
    assert not progress["complete"] and progress["declared"] > progress["written"] > 0


def test_growing_file_rows_while_recording_then_the_final_call_without_settle_wait(tmp_path):
    folder = tmp_path / "acq"
    folder.mkdir()
    x = _trace(6.0, seed=3)
    rows = _Rows()
    stop, thread, box = _watch(folder, rows, settle_s=LONG_SETTLE, **FAST)
    try:
        writer = AbfInPieces(folder / "cell.abf", x, FS)
        writer.begin()
        writer.append(int(2 * FS))
        first = rows.wait(lambda r: (r["acquisition"] == "recording").all())
        assert first["n_spikes"].tolist() == [2 * SPIKES_PER_S]  # the spikes of the part written so far
        writer.append(int(2 * FS))
        rows.wait(lambda r: (r["acquisition"] == "recording").all() and r["n_spikes"].iloc[0] == 4 * SPIKES_PER_S)
        writer.finish()
        finished_at = time.monotonic()
        final = rows.wait(lambda r: (r["acquisition"] == "").all(), timeout=20)
        assert time.monotonic() - finished_at < LONG_SETTLE / 3  # from the header, not the settle timer
    finally:
        table = _stop(stop, thread, box)
    expected = classify_file(folder / "cell.abf", method="criteria")
    pd.testing.assert_frame_equal(final.reset_index(drop=True), expected.reset_index(drop=True))
    assert final["n_spikes"].tolist() == [6 * SPIKES_PER_S]
    assert table["acquisition"].iloc[-1] == "" and (table["acquisition"].iloc[:-1] == "recording").all()


def test_a_file_whose_header_is_never_finished_is_classified_after_the_settle_time(tmp_path):
    folder = tmp_path / "acq"
    folder.mkdir()
    rows = _Rows()
    stop, thread, box = _watch(folder, rows, settle_s=0.5, incomplete_s=0.5, **{**FAST, "update_s": None})
    try:
        writer = AbfInPieces(folder / "crashed.abf", _trace(3.0, seed=4), FS)
        writer.append(int(3 * FS))  # every sample, but the acquisition program never updates the header
        final = rows.wait(lambda r: True)
    finally:
        _stop(stop, thread, box)
    assert final["error"].tolist() == [""] and final["acquisition"].tolist() == [""]
    assert final["n_spikes"].tolist() == [3 * SPIKES_PER_S]


def test_files_of_one_cell_are_one_unit_with_their_sweeps_in_recording_order(tmp_path):
    folder = tmp_path / "acq"
    folder.mkdir()
    start = datetime.datetime(2024, 3, 1, 10, 0, 0)
    traces = {i: _trace(1.5, seed=10 + i) for i in range(3)}
    rows = _Rows()
    stop, thread, box = _watch(folder, rows, settle_s=LONG_SETTLE, group=r"(?P<cell>.+)_\d+\.abf", **FAST)
    try:
        # sweep 2 arrives before sweep 1: the recording times, not the arrival, give the order
        for n, i in enumerate((0, 2, 1), start=1):
            write_abf(
                folder / f"A1_{i:03d}.abf", traces[i], FS, rec_datetime=start + datetime.timedelta(seconds=10 * i)
            )
            rows.wait(lambda r, n=n: r["file"].iloc[0].endswith("A1") and r["n_spikes"].iloc[0] == 6 * n)
        write_abf(folder / "B7_001.abf", traces[0], FS)
        other = rows.wait(lambda r: r["file"].iloc[0].endswith("B7"))
    finally:
        table = _stop(stop, thread, box)
    singles = [classify_file(folder / f"A1_{i:03d}.abf", method="criteria") for i in range(3)]
    cell = table[table["file"] == str(folder.resolve() / "A1")].iloc[-1]
    assert cell["cell_id"] == "A1" and cell["error"] == ""
    assert cell["n_spikes"] == sum(int(s["n_spikes"].iloc[0]) for s in singles) == 18
    assert other["n_spikes"].tolist() == [6] and set(table["file"]) == {str(folder.resolve() / n) for n in ("A1", "B7")}


@pytest.mark.parametrize("group", ["(", r"(?P<sweep>\d+)\.abf"])
def test_a_bad_group_is_one_error_before_work(tmp_path, capsys, group):
    with pytest.raises(ParameterError, match="group"):
        watch_folder(tmp_path, group=group, method="criteria", timeout_s=0.1)
    assert cli.main(["watch", str(tmp_path), "--method", "criteria", "--timeout", "0.1", "--group", group]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--group" in err[0] and "cell" in err[0] and "Traceback" not in err[0]


def test_sero_watch_group_gives_one_cell_on_the_command_line(tmp_path, capsys):
    for i in range(2):
        write_abf(tmp_path / f"A1_{i:03d}.abf", _trace(1.5, seed=i), FS)
    out = tmp_path / "results.csv"
    args = ["watch", str(tmp_path), "--existing", "--method", "criteria", "--timeout", "3", "--settle", "0.2"]
    assert cli.main([*args, "--group", r"(?P<cell>.+)_\d+\.abf", "--out", str(out)]) == 0
    assert "stopped: 1 cell(s) classified, 0 file(s) failed" in capsys.readouterr().out
    table = pd.read_csv(out, keep_default_na=False)
    assert set(table["file"]) == {str(tmp_path.resolve() / "A1")} and set(table["cell_id"]) == {"A1"}
    assert table["n_spikes"].iloc[-1] == 12


def test_an_episodic_file_being_written_waits_for_its_finished_header(tmp_path):
    folder = tmp_path / "acq"
    folder.mkdir()
    sweeps = np.stack([_trace(1.0, seed=30 + i) for i in range(3)])[:, :, None]
    rows = _Rows()
    stop, thread, box = _watch(folder, rows, settle_s=0.2, incomplete_s=LONG_SETTLE, **FAST)
    try:
        writer = AbfInPieces(folder / "episodes.abf", sweeps, FS, mode="episodic")
        writer.append(int(1.5 * FS))  # a sweep and a half: no synch array yet, nothing to read while it grows
        time.sleep(1.5)
        assert rows.blocks == []
        writer.finish()
        final = rows.wait(lambda r: True)
    finally:
        _stop(stop, thread, box)
    expected = classify_file(folder / "episodes.abf", method="criteria")
    pd.testing.assert_frame_equal(final.reset_index(drop=True), expected.reset_index(drop=True))
