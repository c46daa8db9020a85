"""Nothing lost, third part: a lost Dask scheduler costs only the unfinished files, which are reported, and
SIGTERM stops a Dask run keeping the finished rows; one writer per table from the Python API as from the CLI; the report folder written whole by one writer at a time
(kill tests: old or new, never half)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from spikeinterface_sero import batch, cli, files
from spikeinterface_sero.datasets import simulate_drn_recording, write_abf
from spikeinterface_sero.errors import SeroError
from spikeinterface_sero.export import write_table
from spikeinterface_sero.pipeline import make_report

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """One short one-cell recording."""
    path = tmp_path_factory.mktemp("lost3") / "cell.abf"
    sim = simulate_drn_recording("serotonergic", duration_s=3.0, seed=40, firing_rate_hz=3.0)
    write_abf(path, sim.traces, sim.sampling_frequency)
    return path


def _environment():
    return dict(os.environ, PYTHONPATH=str(ROOT), SERO_MODEL_ENGINE="numpy", TF_CPP_MIN_LOG_LEVEL="3")


def _wait_for(condition, seconds: float, process=None) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        assert process is None or process.poll() is None, "the run ended early"
        time.sleep(0.05)


def _stop(process) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


# ------------------------------------------------------------------------------- a lost Dask scheduler
# the run's classify_file, defined in __main__, goes to the Dask worker by value: files named slow_* never end;
# the client marks each file whose rows it gathered
_DASK_RUN = """
import sys, time
from pathlib import Path
from spikeinterface_sero import batch, cli, pipeline
real = pipeline.classify_file
def classify_file(path, **kwargs):
    if Path(path).name.startswith("slow"):
        time.sleep(300)
    return real(path, **kwargs)
pipeline.classify_file = classify_file
gather = batch._dask_rows
def gathered(future, path):  # the client holds the file's rows: said with a file
    rows = gather(future, path)
    Path({marker!r}, "gathered_" + Path(path).stem).write_text("")
    return rows
batch._dask_rows = gathered
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.fixture
def cluster(tmp_path):
    """A real dask.distributed scheduler and one worker, each its own process (so the scheduler can be killed)."""
    pytest.importorskip("distributed")
    address_file = tmp_path / "scheduler.json"
    module = "distributed.cli.dask_scheduler"
    scheduler = subprocess.Popen(
        [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
        + ["--scheduler-file", str(address_file)],
        env=_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        _wait_for(lambda: address_file.exists() and address_file.stat().st_size > 0, 60, scheduler)
        time.sleep(0.2)  # the file is written whole
        address = json.loads(address_file.read_text())["address"]
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "1", "--nthreads", "3"]
            + ["--no-nanny", "--no-dashboard"],
            env=_environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        yield scheduler, address
    finally:
        for process in (worker, scheduler):
            if process is not None:
                _stop(process)


def _dask_run(recording, tmp_path, address) -> tuple[subprocess.Popen, Path, Path]:
    """``sero classify --scheduler`` on a fast file and two that never end, running, the fast file's rows
    gathered by the client."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("fast.abf", "slow_1.abf", "slow_2.abf"):
        (inputs / name).write_bytes(recording.read_bytes())
    out = tmp_path / "results.csv"
    command = [sys.executable, "-c", _DASK_RUN.format(marker=str(tmp_path)), "classify", str(inputs)]
    command += ["--method", "criteria", "--scheduler", address, "--out", str(out), "--quiet"]
    run = subprocess.Popen(command, env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for((tmp_path / "gathered_fast").exists, 120, run)
    except BaseException:
        _stop(run)
        raise
    return run, inputs, out


def _finish(run) -> tuple[str, str, float]:
    """The run's output, and how long it took to end."""
    start = time.monotonic()
    try:
        printed, err = run.communicate(timeout=60)
    finally:
        _stop(run)
    return printed, err, time.monotonic() - start


def _rows(out: Path) -> pd.DataFrame:
    table = pd.read_csv(out, keep_default_na=False)
    table.index = [Path(f).stem for f in table["file"]]
    assert table.loc["fast", "error"] == "" and table.loc["fast", "sero_call"] != ""
    return table


def test_a_lost_dask_scheduler_costs_only_the_unfinished_files_which_are_reported(recording, tmp_path, cluster):
    scheduler, address = cluster
    run, inputs, out = _dask_run(recording, tmp_path, address)
    scheduler.send_signal(signal.SIGKILL)
    printed, err, seconds = _finish(run)  # bounded: the client learns of the loss when its comm closes
    assert seconds < 30 and run.returncode == 1 and "Traceback" not in err
    table = _rows(out)
    for name in ("slow_1", "slow_2"):
        assert table.loc[name, "error"] == batch.SCHEDULER_LOST
        assert f"FAILED {inputs / name}.abf: the Dask scheduler was lost" in err
    assert "rerun these files" in err and "1 cell(s) from 3 file(s); 2 file(s) failed" in printed
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".results.csv")]  # no lock, no temporary left


def test_sigterm_stops_a_dask_run_and_keeps_the_finished_rows(recording, tmp_path, cluster):
    scheduler, address = cluster
    run, inputs, out = _dask_run(recording, tmp_path, address)
    run.send_signal(signal.SIGTERM)
    printed, err, seconds = _finish(run)
    assert seconds < 30 and run.returncode == 130 and "Traceback" not in err
    table = _rows(out)
    assert "interrupted" in table.loc["slow_1", "error"] and "interrupted" in table.loc["slow_2", "error"]
    assert scheduler.poll() is None  # the user's cluster is left running


# ------------------------------------------------------------------------------- one writer per table (Python API)
@contextlib.contextmanager
def locked_by_another_process(path):
    """The lock of ``path`` as a run in another process that is writing it leaves it: its pid, alive."""
    writer = subprocess.Popen(["sleep", "600"])
    lock = Path(path).absolute().with_name(f".{Path(path).name}.lock")
    lock.write_text(f"{writer.pid}\n")
    try:
        yield writer
    finally:
        _stop(writer)


def test_the_python_table_writer_takes_the_same_lock_as_the_cli(tmp_path):
    table = pd.DataFrame({"file": ["a.abf"], "error": [""]})
    out = tmp_path / "results.csv"
    with locked_by_another_process(out) as writer:
        with pytest.raises(SeroError, match=rf"pid {writer.pid}.*choose another path"):
            write_table(table, out)
        assert not out.exists()
    # the writer is gone: its lock is taken over, and the table written; no lock is left behind
    assert write_table(table, out) == out and len(pd.read_csv(out)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]
    # a second writer in another thread of this process is refused too, while the first holds the table
    with files.output_lock(out):
        refused = []
        other = threading.Thread(target=lambda: refused.append(_refusal(write_table, table, out, overwrite=True)))
        other.start()
        other.join()
        assert "another thread of this process" in refused[0]
        write_table(table, out, overwrite=True)  # the thread that holds the lock writes (as sero classify --out)


def _refusal(function, *args, **kwargs) -> str:
    try:
        function(*args, **kwargs)
    except SeroError as e:
        return str(e)
    return ""


# ------------------------------------------------------------------------------- the report folder
def test_make_report_is_one_writer_and_refuses_an_earlier_report_without_overwrite(recording, tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    (report / "old_note.txt").write_text("from before")
    with pytest.raises(SeroError, match="overwrite=True"):
        make_report(recording, report, method="criteria")
    assert [p.name for p in report.iterdir()] == ["old_note.txt"]
    with locked_by_another_process(report) as writer, pytest.raises(SeroError, match=rf"pid {writer.pid}.*out_dir"):
        make_report(recording, report, method="criteria", overwrite=True)
    assert [p.name for p in report.iterdir()] == ["old_note.txt"]
    index = make_report(recording, report, method="criteria", overwrite=True)
    assert index == report / "index.html" and index.is_file() and not (report / "old_note.txt").exists()
    assert len(pd.read_csv(report / "results.csv")) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temporary folder, no lock left


@pytest.mark.parametrize("command", ["classify", "watch"])
def test_a_second_report_writer_is_refused_in_the_words_of_the_cli(recording, tmp_path, command, capsys):
    """A report folder another run is writing (sero classify --report, make_report, a watch session's live
    page): a classify run into it, or a watch session, is refused before any work."""
    report = tmp_path / "report"
    inputs = recording if command == "classify" else recording.parent
    options = ["--timeout", "1"] if command == "watch" else []
    with locked_by_another_process(report) as writer:
        rc = cli.main([command, str(inputs), "--method", "criteria", "--report", str(report), *options])
    err = capsys.readouterr().err
    assert rc == 2 and f"pid {writer.pid}" in err and "--report" in err
    assert not report.exists() or not any(report.iterdir())


def _report_state(report: Path, old: dict) -> str:
    """'old' (every file as it was), 'new' (the new report whole: the table, its page, every plot) or what is
    wrong."""
    found = {str(p.relative_to(report)): p.read_bytes() for p in report.rglob("*") if p.is_file()}
    if found == old:
        return "old"
    table = pd.read_csv(report / "results.csv", keep_default_na=False) if (report / "results.csv").exists() else None
    if table is None or "index.html" not in found or "old_note.txt" in found:
        return f"half: {sorted(found)}"
    page = (report / "index.html").read_text()
    plots = [name for name in found if name.endswith(".png") and "/" not in name]  # the cell and detection plots
    complete = len(table) == 1 and (table["error"] == "").all() and len(plots) == 2
    return "new" if complete and all(name in page for name in plots) else f"half: {sorted(found)}"


def _plots_written(parent: Path) -> int:
    """The plots in the report's temporary sibling folder so far; -1 before that folder exists."""
    parts = list(parent.glob(".report.*.part"))
    return sum(len(list(part.glob("*.png"))) for part in parts) if parts else -1


#: when the run is killed: as its temporary folder is made, when the cell's plot is in it (its detection view
#: being drawn), when both plots are (the summary being written)
MOMENTS = {"folder made": 0, "cell plot written": 1, "both plots written": 2}


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_killed_report_run_leaves_the_old_report_or_the_new_one_never_half(recording, tmp_path, moment):
    (tmp_path / "cell.abf").write_bytes(recording.read_bytes())
    report = tmp_path / "report"
    report.mkdir()
    (report / "index.html").write_text("<html>the old report</html>")
    (report / "old_note.txt").write_text("from before")
    old = {name: (report / name).read_bytes() for name in ("index.html", "old_note.txt")}
    command = [sys.executable, "-m", "spikeinterface_sero.cli", "classify", "cell.abf", "--method", "criteria"]
    command += ["--report", str(report), "--overwrite", "--quiet"]
    run = subprocess.Popen(command, env=_environment(), cwd=tmp_path, stdout=subprocess.DEVNULL)
    try:
        _wait_for(lambda: _plots_written(tmp_path) >= MOMENTS[moment], 120, run)
        run.kill()
        run.wait(timeout=60)
    finally:
        _stop(run)
    state = _report_state(report, old)
    assert state == "old" or (state == "new" and moment == "both plots written")
    if moment == "cell plot written":  # the kill's leftovers (a temporary folder, a lock) do not stop the next run
        assert subprocess.run(command, env=_environment(), cwd=tmp_path).returncode == 0
        assert _report_state(report, old) == "new"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cell.abf", "report"]


def test_the_demo_report_is_one_writer_checked_before_the_simulation(tmp_path, monkeypatch):
    """run_demo's report folder: another writer holding it stops the demo before anything is simulated."""
    from spikeinterface_sero import demo

    monkeypatch.setattr(demo, "simulate_dataset", lambda *a, **k: pytest.fail("simulated before the check"))
    out = tmp_path / "demo"
    out.mkdir()
    with locked_by_another_process(out / "report") as writer:
        with pytest.raises(SeroError, match=rf"pid {writer.pid}.*out_dir"):
            demo.run_demo(out, duration_s=5.0)
    assert not (out / "recordings").exists() and not (out / "results.csv").exists()
