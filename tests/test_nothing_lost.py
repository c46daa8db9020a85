"""Nothing lost: a batch survives any single file (any exception, a killed worker), writes are atomic,
outputs are checked before any work and not overwritten without being asked, the watcher appends whole
lines and recovers from a torn one."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spikeinterface_sero import batch, cli, files, pipeline, watch
from spikeinterface_sero.datasets import simulate_drn_recording, write_abf
from spikeinterface_sero.errors import SeroError
from spikeinterface_sero.export import RESULT_COLUMNS, write_table
from spikeinterface_sero.files import append_line, atomic_path, check_output_path


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("lost")
    for i in range(3):
        sim = simulate_drn_recording("serotonergic", duration_s=4.0, seed=20 + i, firing_rate_hz=3.0)
        write_abf(root / f"cell_{i}.abf", sim.traces, sim.sampling_frequency)
    return root


def _files(folder):
    return sorted(Path(folder).glob("*.abf"))


def test_any_exception_of_one_file_is_an_error_row(folder, monkeypatch):
    real = pipeline.abf_to_analyzer

    def flaky(path, **kwargs):
        if Path(path).name == "cell_1.abf":
            raise ValueError("resampler says no")
        if Path(path).name == "cell_2.abf":
            raise MemoryError()
        return real(path, **kwargs)

    monkeypatch.setattr(pipeline, "abf_to_analyzer", flaky)
    table = pipeline.classify_files(_files(folder), method="criteria")
    assert list(table["file"].map(lambda f: Path(f).name)) == ["cell_0.abf", "cell_1.abf", "cell_2.abf"]
    assert table.loc[0, "error"] == ""
    assert "ValueError: resampler says no" in table.loc[1, "error"]
    assert "MemoryError" in table.loc[2, "error"]


def _die_on_cell_1(path, **kwargs):
    if Path(path).name == "cell_1.abf":
        os.kill(os.getpid(), signal.SIGKILL)
    return pipeline.classify_file(path, **kwargs)


def test_a_killed_worker_costs_only_its_file(folder):
    files = _files(folder)
    done = {}
    batch.run_in_processes(_die_on_cell_1, files, 2, dict(method="criteria"), done)
    assert sorted(done) == [0, 1, 2]
    assert done[0]["error"].iloc[0] == "" and done[2]["error"].iloc[0] == ""
    assert "worker process died" in done[1]["error"].iloc[0]


def test_ctrl_c_keeps_the_finished_rows(folder, monkeypatch):
    real = pipeline.classify_file

    def interrupted(path, **kwargs):
        if Path(path).name == "cell_1.abf":
            raise KeyboardInterrupt
        return real(path, **kwargs)

    monkeypatch.setattr(pipeline, "classify_file", interrupted)
    with pytest.raises(pipeline.BatchInterrupted) as stop:
        pipeline.classify_files(_files(folder), method="criteria")
    table = stop.value.table
    assert table.loc[0, "error"] == "" and "interrupted" in table.loc[1, "error"]
    assert len(table) == 3


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "results.csv"
    old = pd.DataFrame({"a": [1, 2]})
    write_table(old, path)
    before = path.read_bytes()

    def crash(self, *args, **kwargs):
        Path(args[0]).write_text("half a ro")  # the temporary file gets half a table, then the process dies
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", crash)
    with pytest.raises(OSError):
        write_table(pd.DataFrame({"a": [3]}), path, overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]  # no temporary left behind


def test_a_killed_writers_temporary_file_is_cleaned_up_later(tmp_path):
    path = tmp_path / "r.csv"
    stale, fresh = tmp_path / ".r.csv.abc123.part.csv", tmp_path / ".r.csv.def456.part.csv"
    stale.write_text("half")
    fresh.write_text("being written")
    os.utime(stale, (0, 0))  # last touched long ago: its writer died
    with atomic_path(path) as temporary:
        temporary.write_text("new")
    assert not stale.exists() and fresh.exists() and path.read_text() == "new"


def test_atomic_path_replaces_in_one_step(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("old")
    with atomic_path(path) as temporary:
        temporary.write_text("new")
        assert path.read_text() == "old"  # not visible until done
    assert path.read_text() == "new"


@pytest.mark.parametrize(
    "name, message",
    [
        ("missing_dir/r.csv", "does not exist"),
        ("r.xlsx", "must end in"),
        ("existing.csv", "--overwrite"),
        ("a_folder", "is a folder"),
    ],
)
def test_bad_out_is_refused_before_any_work(folder, tmp_path, capsys, monkeypatch, name, message):
    (tmp_path / "existing.csv").write_text("x\n")
    (tmp_path / "a_folder").mkdir()
    calls = []
    monkeypatch.setattr(pipeline, "classify_file", lambda *a, **k: calls.append(a))
    rc = cli.main(["classify", str(folder), "--method", "criteria", "--out", str(tmp_path / name)])
    assert rc == 2 and calls == []
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "missing_dir").exists()


def test_classify_overwrites_only_when_asked(folder, tmp_path):
    out = tmp_path / "r.csv"
    assert cli.main(["classify", str(folder), "--method", "criteria", "--out", str(out)]) == 0
    first = out.read_bytes()
    assert cli.main(["classify", str(folder), "--method", "criteria", "--out", str(out)]) == 2
    assert out.read_bytes() == first
    assert cli.main(["classify", str(folder), "--method", "criteria", "--out", str(out), "--overwrite"]) == 0


def test_out_under_a_file_or_without_permission_is_one_clear_error(tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(SeroError, match="does not exist"):
        check_output_path(tmp_path / "a_file" / "r.csv")

    def refused(*args, **kwargs):  # as for a folder without write permission: the probe file cannot be made
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.tempfile, "mkstemp", refused)
    with pytest.raises(SeroError, match="no permission"):
        check_output_path(tmp_path / "r.csv")


def test_append_line_never_glues_onto_a_torn_row(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3,")  # the last append died half way
    append_line(path, "5,6")
    assert path.read_text() == "a,b\n1,2\n3,\n5,6\n"


def test_watcher_drops_a_torn_row_and_retries_failed_files(folder, tmp_path):
    out = tmp_path / "live.csv"
    files = _files(folder)
    good = pipeline.classify_file(files[0], method="criteria")
    failed = pipeline.classify_file(tmp_path / "nothing.abf", method="criteria")
    failed["file"] = str(files[1])  # its only row is an error: it must be tried again
    header = pd.DataFrame(columns=RESULT_COLUMNS).to_csv(index=False)
    body = pd.concat([good, failed]).reindex(columns=RESULT_COLUMNS).to_csv(header=False, index=False)
    out.write_text(header + body + str(files[2]) + ",0,cell")  # torn: no newline, half the columns
    seen = []
    table = watch.watch_folder(
        folder, out=out, method="criteria", process_existing=True, settle_s=0.0, timeout_s=8.0, on_result=seen.append
    )
    classified = sorted(Path(f).name for f in table["file"])
    assert classified == ["cell_1.abf", "cell_2.abf"]  # not cell_0 (already done), cell_1 again, cell_2 (torn)
    back = pd.read_csv(out)  # parses: the torn row is gone
    assert list(back.columns) == RESULT_COLUMNS
    assert sorted(Path(f).name for f in back.loc[back["error"].isna(), "file"]) == [
        "cell_0.abf",
        "cell_1.abf",
        "cell_2.abf",
    ]


def test_watcher_sees_a_file_saved_right_after_it_says_watching(folder, tmp_path):
    sim = simulate_drn_recording("serotonergic", duration_s=3.0, seed=5, firing_rate_hz=3.0)
    live = tmp_path / "live"
    live.mkdir()
    stop = threading.Event()
    seen = []

    def save_now():  # the moment "watching" is printed
        write_abf(live / "new.abf", sim.traces, sim.sampling_frequency)

    def collect(rows):
        seen.append(rows)
        stop.set()

    watch.watch_folder(
        live, method="criteria", settle_s=0.2, on_start=save_now, on_result=collect, stop_event=stop, timeout_s=20
    )
    assert seen and Path(seen[0]["file"].iloc[0]).name == "new.abf"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--settle", "nan"], "settle"),
        (["--out", "BINARY"], "not a sero results table"),
    ],
)
def test_watch_argument_errors_are_one_line(tmp_path, capsys, args, message):
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    args = [str(binary) if a == "BINARY" else a for a in args]
    rc = cli.main(["watch", str(tmp_path), "--method", "criteria", "--timeout", "1", *args])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err


def test_dead_time_out_of_range_is_an_error_not_a_crash(folder, capsys):
    rc = cli.main(["classify", str(_files(folder)[0]), "--method", "criteria", "--dead-time-ms", "1e308"])
    assert rc == 2  # refused before any file is read
    assert "--dead-time-ms must be " in capsys.readouterr().err  # in the words of the CLI


def test_unreachable_dask_scheduler_is_one_clear_error(folder, capsys):
    rc = cli.main(
        ["classify", str(folder), "--method", "criteria", "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9"]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "cannot reach the Dask scheduler" in err and "Traceback" not in err


def test_error_rows_keep_the_columns(tmp_path):
    row = pipeline.classify_file(tmp_path / "absent.abf")
    assert list(row.columns) == RESULT_COLUMNS and row["error"].iloc[0] != ""
    assert np.isnan(row["sero_probability"].iloc[0])


def test_train_with_two_cells_per_class_is_one_clear_error(tmp_path, capsys):
    from spikeinterface_sero.datasets import dataset_table, simulate_dataset

    recordings = simulate_dataset(
        {"serotonergic": 2, "non_serotonergic": 2}, duration_s=4.0, seed=1, out_dir=tmp_path / "abf", n_groups=2
    )
    table = dataset_table(recordings)
    table["file"] = [str(tmp_path / "abf" / f) for f in table["file"]]
    table.to_csv(tmp_path / "t.csv", index=False)
    rc = cli.main(["train", "--table", str(tmp_path / "t.csv"), "--out", str(tmp_path / "m"), "--kernels", "20"])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot hold out" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()
