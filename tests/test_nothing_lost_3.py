"""Nothing lost, third part: a lost Dask scheduler costs only the unfinished files, which are reported; one
writer per table from the Python API as from the CLI; the report folder written whole by one writer at a time
(kill tests: old or new, never half)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from spikeinterface_sero import batch, files
from spikeinterface_sero.datasets import simulate_drn_recording, write_abf

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
# the run's classify_file, defined in __main__, goes to the Dask worker by value: files named slow_* never end
_DASK_RUN = """
import sys, time
from pathlib import Path
from spikeinterface_sero import cli, pipeline
real = pipeline.classify_file
def classify_file(path, marker={marker!r}, **kwargs):
    if Path(path).name.startswith("slow"):
        time.sleep(300)
    rows = real(path, **kwargs)
    Path(marker, "done_" + Path(path).stem).write_text("")
    return rows
pipeline.classify_file = classify_file
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


def test_a_lost_dask_scheduler_costs_only_the_unfinished_files_which_are_reported(recording, tmp_path, cluster):
    scheduler, address = cluster
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("fast.abf", "slow_1.abf", "slow_2.abf"):
        (inputs / name).write_bytes(recording.read_bytes())
    out = tmp_path / "results.csv"
    command = [sys.executable, "-c", _DASK_RUN.format(marker=str(tmp_path)), "classify", str(inputs)]
    command += ["--method", "criteria", "--scheduler", address, "--out", str(out), "--quiet"]
    run = subprocess.Popen(command, env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for((tmp_path / "done_fast").exists, 120, run)
        time.sleep(1.0)  # the finished file's rows reach the client
        scheduler.send_signal(signal.SIGKILL)
        lost = time.monotonic()
        printed, err = run.communicate(timeout=60)  # bounded: the client learns of the loss when the comm closes
    finally:
        _stop(run)
    assert time.monotonic() - lost < 30
    assert run.returncode == 1 and "Traceback" not in err
    table = pd.read_csv(out, keep_default_na=False)
    table.index = [Path(f).stem for f in table["file"]]
    assert table.loc["fast", "error"] == "" and table.loc["fast", "sero_call"] != ""
    for name in ("slow_1", "slow_2"):
        assert table.loc[name, "error"] == batch.SCHEDULER_LOST
        assert f"FAILED {inputs / name}.abf: the Dask scheduler was lost" in err
    assert "rerun these files" in err and "1 cell(s) from 3 file(s); 2 file(s) failed" in printed
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".results.csv")]  # no lock, no temporary left
