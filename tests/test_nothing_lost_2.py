"""Nothing lost, second part: every output proven writable before the work, a failed write at the end goes
to a named fallback, a failed export keeps its row, one writer per output, folders written whole (kill
tests), SIGTERM keeps the finished rows, options checked before the first file, the user's umask, terminal
text escaped and unsure calls shown as UNSURE."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from spikeinterface_sero import cli, export, files, pipeline, watch
from spikeinterface_sero.datasets import simulate_drn_recording, write_abf
from spikeinterface_sero.errors import SeroError
from spikeinterface_sero.testing import synthetic_trace

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three short one-cell recordings."""
    root = tmp_path_factory.mktemp("lost2")
    for i in range(3):
        sim = simulate_drn_recording("serotonergic", duration_s=3.0, seed=40 + i, firing_rate_hz=3.0)
        write_abf(root / f"cell_{i}.abf", sim.traces, sim.sampling_frequency)
    return root


def _abf(folder):
    return sorted(str(p) for p in Path(folder).glob("*.abf"))


def _no_work(monkeypatch):
    """Records every file the batch runner starts, so a test can say that none was."""
    calls = []
    monkeypatch.setattr(pipeline, "classify_file", lambda *a, **k: calls.append(a))
    return calls


def _environment():
    return dict(os.environ, PYTHONPATH=str(ROOT), SERO_MODEL_ENGINE="numpy", TF_CPP_MIN_LOG_LEVEL="3")


# ------------------------------------------------------------------------------- outputs proven writable
UNWRITABLE = ["/proc/sero_results", "/sys/sero_results"]


@pytest.mark.parametrize("place", UNWRITABLE)
@pytest.mark.parametrize("flag", ["--out", "--report", "--nwb", "--phy"])
def test_an_unwritable_output_is_refused_before_any_work(folder, place, flag, monkeypatch, capsys):
    calls = _no_work(monkeypatch)
    target = place + ".csv" if flag == "--out" else place
    rc = cli.main(["classify", *_abf(folder), "--method", "criteria", flag, target, "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and calls == [] and "cannot write" in err and flag in err and "Traceback" not in err


def test_a_read_only_folder_is_refused_before_any_work(folder, tmp_path, monkeypatch, capsys):
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    mounted = os.geteuid() == 0 and _mount(["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(read_only)])
    if not mounted:
        read_only.chmod(0o555)
        if os.access(read_only, os.W_OK):
            pytest.skip("root ignores folder permissions here and may not mount a read-only tmpfs")
    try:
        calls = _no_work(monkeypatch)
        rc = cli.main(["classify", *_abf(folder), "--method", "criteria", "--out", str(read_only / "r.csv")])
        assert rc == 2 and calls == [] and "cannot write" in capsys.readouterr().err
    finally:
        if mounted:
            _mount([str(read_only)], command="umount")
        else:
            read_only.chmod(0o755)


def _mount(arguments, command="mount") -> bool:
    try:
        return subprocess.run([command, *arguments], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.parametrize("place", UNWRITABLE)
def test_train_and_import_refuse_an_unwritable_out_before_the_work(place, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_quiet_import_tensorflow", lambda: None)
    monkeypatch.setattr(cli.train, "labelled_data", lambda *a, **k: pytest.fail("the data were read"))
    table = tmp_path / "labels.csv"
    table.write_text("file,label\n")
    assert cli.main(["train", "--table", str(table), "--out", place, "--quiet"]) == 2
    assert "cannot write" in capsys.readouterr().err
    monkeypatch.setattr(cli.import_models, "import_models", lambda *a, **k: pytest.fail("imported"))
    assert cli.main(["import-models", str(tmp_path), "--out", place]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_a_write_that_fails_at_the_end_goes_to_a_named_fallback(folder, tmp_path, monkeypatch, capsys):
    out = tmp_path / "results.csv"
    real = export.write_table
    tries = []

    def disk_full(table, path, **kwargs):
        tries.append(Path(path))
        if Path(path) == out:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, path, **kwargs)

    monkeypatch.setattr(cli.classify, "write_table", disk_full)
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["classify", *_abf(folder), "--method", "criteria", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and "No space left" in err and "Traceback" not in err
    (fallback,) = tmp_path.glob("results-saved-*.csv")
    assert tries == [out] and str(fallback) in err
    assert len(pd.read_csv(fallback)) == 3 and not out.exists()


# ------------------------------------------------------------------------------- a failed export keeps its row
def test_a_failed_export_keeps_the_classification(folder, tmp_path, monkeypatch, capsys):
    def broken_nwb(analyzer, path, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline, "write_nwb", broken_nwb)
    out = tmp_path / "results.csv"
    rc = cli.main(["classify", *_abf(folder), "--method", "criteria", "--out", str(out), "--nwb", str(tmp_path / "n")])
    table = pd.read_csv(out, keep_default_na=False)
    assert (
        rc == 1
        and (table["error"] == "").all()
        and table["sero_label"].isin(["serotonergic", "non_serotonergic"]).all()
    )
    assert table["export_error"].str.startswith("NWB: OSError").all()
    assert "EXPORT FAILED" in capsys.readouterr().err


# ------------------------------------------------------------------------------- options before the first file
@pytest.mark.parametrize(
    "option, flag",
    [
        (["--max-spikes", "0"], "--max-spikes"),
        (["--max-spikes", "-1"], "--max-spikes"),
        (["--seed", "-1"], "--seed"),
        (["--mad", "1e-300"], "--mad"),
        (["--channel", ""], "--channel"),
    ],
)
@pytest.mark.parametrize("command", ["classify", "snippets"])
def test_every_option_is_checked_before_the_first_file(folder, tmp_path, option, flag, command, monkeypatch, capsys):
    calls = _no_work(monkeypatch)
    monkeypatch.setattr(cli.snippets, "abf_to_snippets", lambda *a, **k: calls.append(a))
    extra = ["--out", str(tmp_path / "s.npz")] if command == "snippets" else ["--method", "criteria"]
    rc = cli.main([command, *_abf(folder), *extra, *option])
    err = capsys.readouterr().err
    assert rc == 2 and calls == [] and flag in err and "Traceback" not in err


@pytest.mark.parametrize(
    "option, words", [(["--duration", "1e7"], "--duration must be at most"), (["--cells", "100000"], "--cells must be")]
)
def test_demo_sizes_are_bounded_up_front(tmp_path, option, words, capsys):
    rc = cli.main(["demo", "--out", str(tmp_path / "demo"), *option])
    assert rc == 2 and words in capsys.readouterr().err and not (tmp_path / "demo").exists()


# ------------------------------------------------------------------------------- sero snippets --out
def test_snippets_out_format_from_the_suffix_or_one_clear_refusal(folder, tmp_path, capsys):
    one = _abf(folder)[:1]
    assert cli.main(["snippets", *one, "--out", str(tmp_path / "x.csv"), "--quiet"]) == 2
    assert "not one .csv file" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()
    (tmp_path / "taken").write_text("a file")
    assert cli.main(["snippets", *one, "--out", str(tmp_path / "taken"), "--format", "csv", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and "Traceback" not in err
    assert cli.main(["snippets", *one, "--out", str(tmp_path / "y.npz"), "--format", "csv"]) == 2
    assert cli.main(["snippets", *one, "--out", str(tmp_path / "csv"), "--quiet"]) == 0
    assert json.loads((tmp_path / "csv" / pipeline.SNIPPET_MANIFEST).read_text())["files"] > 0
    assert cli.main(["snippets", *one, "--out", str(tmp_path / "csv"), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_a_snippet_folder_short_of_its_manifest_is_refused(folder, tmp_path, capsys):
    out = tmp_path / "csv"
    assert cli.main(["snippets", *_abf(folder)[:1], "--out", str(out), "--quiet"]) == 0
    next(out.glob("*_trigger_*.csv")).unlink()
    assert cli.main(["classify", str(out), "--method", "criteria", "--quiet"]) == 2
    assert "manifest lists" in capsys.readouterr().err


# ------------------------------------------------------------------------------- one writer per output
@contextlib.contextmanager
def locked_by_another_process(path):
    """The lock of ``path`` as a run in another process that is writing it leaves it: its pid, alive."""
    writer = subprocess.Popen(["sleep", "600"])
    lock = Path(path).absolute().with_name(f".{Path(path).name}.lock")
    lock.write_text(f"{writer.pid}\n")
    try:
        yield writer.pid
    finally:
        writer.kill()
        writer.wait()
        lock.unlink(missing_ok=True)


def test_a_second_writer_of_one_out_is_refused_and_a_dead_ones_lock_taken_over(folder, tmp_path, capsys):
    out = tmp_path / "results.csv"
    args = ["classify", *_abf(folder), "--method", "criteria", "--out", str(out), "--quiet"]
    with locked_by_another_process(out) as writer:
        assert cli.main(args) == 2
        assert f"pid {writer}" in capsys.readouterr().err and not out.exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / ".results.csv.lock").write_text(dead.stdout)
    assert cli.main(args) == 0 and len(pd.read_csv(out)) == 3 and not (tmp_path / ".results.csv.lock").exists()


def test_two_concurrent_runs_into_one_out_lose_nothing(folder, tmp_path):
    out = tmp_path / "results.csv"
    command = [sys.executable, "-m", "spikeinterface_sero.cli", "classify", *_abf(folder), "--method", "criteria"]
    runs = [
        subprocess.Popen(
            [*command, "--out", str(out), "--quiet"], env=_environment(), stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    codes = sorted(run.wait(timeout=300) for run in runs)
    assert codes == [0, 2]  # one wrote the table, the other was refused (never both 0 with one table lost)
    assert len(pd.read_csv(out)) == 3


# ------------------------------------------------------------------------------- folders written whole
def _kill_after(command, seconds, cwd):
    process = subprocess.Popen(command, env=_environment(), cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return process.returncode


@pytest.mark.parametrize("seconds", [1.5, 2.5, 3.5])
def test_a_killed_snippets_run_leaves_no_half_folder(folder, tmp_path, seconds):
    out = tmp_path / "csv"
    command = [sys.executable, "-m", "spikeinterface_sero.cli", "snippets", *_abf(folder), "--out", str(out)]
    _kill_after([*command, "--quiet"], seconds, tmp_path)
    if out.exists():  # the new folder whole, with every file its manifest lists
        snippets = pipeline.read_snippet_folder(out)
        assert len(snippets) == json.loads((out / pipeline.SNIPPET_MANIFEST).read_text())["files"]
    assert pipeline.expand_inputs([tmp_path]) in ([], [out]) if out.exists() else True
    assert cli.main(["snippets", *_abf(folder), "--out", str(out), "--overwrite", "--quiet"]) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize("seconds", [2.0, 3.5, 5.0])
def test_a_killed_classify_leaves_phy_folders_old_or_new_and_the_rerun_works(folder, tmp_path, seconds):
    phy = tmp_path / "phy"
    command = [sys.executable, "-m", "spikeinterface_sero.cli", "classify", *_abf(folder), "--method", "criteria"]
    command += ["--phy", str(phy), "--out", str(tmp_path / "r.csv"), "--quiet"]
    _kill_after(command, seconds, tmp_path)
    for exported in phy.glob("*") if phy.exists() else []:
        if not exported.name.startswith("."):
            assert {"params.py", "spike_times.npy", "cluster_sero_label.tsv"} <= {p.name for p in exported.iterdir()}
    assert subprocess.run([*command, "--overwrite"], env=_environment(), cwd=tmp_path).returncode == 0
    assert sorted(p.name for p in phy.iterdir()) == ["cell_0", "cell_1", "cell_2"]


def test_report_into_an_earlier_report_needs_overwrite_and_is_replaced_whole(folder, tmp_path, capsys):
    report = tmp_path / "report"
    args = ["classify", *_abf(folder)[:1], "--method", "criteria", "--report", str(report), "--quiet"]
    assert cli.main(args) == 0
    (report / "old_note.txt").write_text("from before")
    page = (report / "index.html").read_bytes()
    assert cli.main(args) == 2 and "--overwrite" in capsys.readouterr().err
    assert (report / "index.html").read_bytes() == page
    assert cli.main([*args, "--overwrite"]) == 0
    assert (report / "index.html").exists() and not (report / "old_note.txt").exists()


def test_atomic_folder_keeps_the_old_folder_when_the_writer_fails(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old").write_text("old")
    with pytest.raises(RuntimeError), files.atomic_folder(target, overwrite=True) as temporary:
        (temporary / "new").write_text("half")
        raise RuntimeError("killed")
    assert [p.name for p in target.iterdir()] == ["old"] and [p.name for p in tmp_path.iterdir()] == ["out"]
    with files.atomic_folder(target, overwrite=True) as temporary:
        (temporary / "new").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new"] and [p.name for p in tmp_path.iterdir()] == ["out"]
    with pytest.raises(SeroError, match="exists"), files.atomic_folder(target):
        pass


# ------------------------------------------------------------------------------- signals
_SLOW_RUN = """
import os, sys, time
from pathlib import Path
from spikeinterface_sero import cli, pipeline
real = pipeline.classify_file
def classify_file(path, **kwargs):
    if Path(path).name.startswith("slow"):
        Path(sys.argv[1], f"worker_{os.getpid()}").write_text("")
        time.sleep(120)
    rows = real(path, **kwargs)
    Path(sys.argv[1], f"done_{Path(path).stem}").write_text(str(os.getpid()))
    return rows
pipeline.classify_file = classify_file
sys.exit(cli.main(sys.argv[2:]))
"""


def test_sigterm_stops_the_workers_and_keeps_the_finished_rows(folder, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("fast.abf", "slow_1.abf", "slow_2.abf"):
        (inputs / name).write_bytes(Path(_abf(folder)[0]).read_bytes())
    out = tmp_path / "results.csv"
    command = [sys.executable, "-c", _SLOW_RUN, str(tmp_path), "classify", str(inputs), "--method", "criteria"]
    command += ["--n-jobs", "3", "--out", str(out), "--quiet"]
    process = subprocess.Popen(command, env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ((tmp_path / "done_fast").exists() and len(list(tmp_path.glob("worker_*"))) == 2):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.1)
    workers = [int(p.name.split("_")[1]) for p in tmp_path.glob("worker_*")]
    time.sleep(1.0)  # the finished file's rows reach the parent
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130 and "Traceback" not in err
    table = pd.read_csv(out, keep_default_na=False)
    table.index = [Path(f).stem for f in table["file"]]
    assert table.loc["fast", "error"] == "" and "interrupted" in table.loc["slow_1", "error"]
    time.sleep(0.5)
    assert not any(files.pid_alive(pid) and _is_child_of(pid, process.pid) for pid in workers)
    assert not any(files.pid_alive(pid) for pid in workers if _not_zombie(pid))


def _is_child_of(pid: int, parent: int) -> bool:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().split()[3]) == parent
    except (OSError, ValueError, IndexError):
        return False


def _not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False


# ------------------------------------------------------------------------------- modes and terminal text
def test_written_files_get_the_users_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        export.write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
        with files.atomic_folder(tmp_path / "folder") as temporary:
            (temporary / "x").write_text("x")
    finally:
        os.umask(previous)
    assert (tmp_path / "t.csv").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o750


def test_terminal_text_is_escaped_and_unsure_calls_say_so(tmp_path, capsys):
    trace = synthetic_trace(duration_s=3.0, spike_times_s=[0.3, 0.9, 1.4, 2.1, 2.6], seed=2)
    few = write_abf(tmp_path / "few.abf", trace, 40000.0, data_format="float32")
    hostile = tmp_path / "bad\x1b[2Jname.abf"
    hostile.write_bytes(b"not an abf file")
    assert cli.main(["classify", str(few), str(hostile), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err and "\\x1b[2J" in captured.err
    assert "UNSURE (leans " in captured.out  # 5 spikes: never a label headline


# ------------------------------------------------------------------------------- the watcher
def _acquisition(folder, tmp_path):
    acquisition = tmp_path / "acquisition"
    acquisition.mkdir()
    for path in _abf(folder)[:2]:
        (acquisition / Path(path).name).write_bytes(Path(path).read_bytes())
    (acquisition / "broken.abf").write_bytes(b"ABF2" + bytes(100))
    return acquisition


def test_the_watcher_outlives_a_full_disk_and_writes_when_it_can(folder, tmp_path, monkeypatch, caplog):
    acquisition = _acquisition(folder, tmp_path)
    out = tmp_path / "live.csv"
    real = watch.append_line
    refused = []

    def full_for_a_while(path, line):
        if Path(path) == out and len(refused) < 4 and line.count("\n") == 1 and not line.startswith("file,"):
            refused.append(line)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, line)

    monkeypatch.setattr(watch, "append_line", full_for_a_while)
    seen = []
    table = watch.watch_folder(
        acquisition, out=out, method="criteria", process_existing=True, settle_s=0.0, poll_s=0.05, timeout_s=6.0,
        on_result=seen.append,
    )  # fmt: skip
    assert len(table) == 3 and len(refused) == 4
    said = [r.message for r in caplog.records if "No space left" in r.getMessage()]
    assert len(said) == 1  # said once, not per row
    back = pd.read_csv(out, keep_default_na=False)
    assert sorted(Path(f).name for f in back["file"]) == ["broken.abf", "cell_0.abf", "cell_1.abf"]


def test_the_watcher_keeps_what_the_disk_never_took(folder, tmp_path, monkeypatch):
    acquisition = _acquisition(folder, tmp_path)
    out = tmp_path / "live.csv"
    real = watch.append_line

    def read_only_after_the_header(path, line):
        if line.startswith("file,"):
            return real(path, line)
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(watch, "append_line", read_only_after_the_header)
    left = []
    table = watch.watch_folder(
        acquisition, out=out, method="criteria", process_existing=True, settle_s=0.0, poll_s=0.05, timeout_s=5.0,
        on_unwritten=left.append,
    )  # fmt: skip
    assert len(table) == 3 and len(left) == 1 and len(left[0]) == 3


def test_watch_existing_counts_a_failure_once_and_keeps_channels_as_text(folder, tmp_path, capsys):
    acquisition = _acquisition(folder, tmp_path)
    out = tmp_path / "live.csv"
    args = ["watch", str(acquisition), "--existing", "--settle", "0", "--timeout", "3", "--out", str(out)]
    for _ in range(2):
        assert cli.main([*args, "--method", "criteria"]) == 1
        assert capsys.readouterr().out.splitlines()[-1].endswith("1 file(s) failed")
    back = pd.read_csv(out, keep_default_na=False, dtype=str)
    assert (back["file"].map(lambda f: Path(f).name) == "broken.abf").sum() == 1  # failures once
    assert len(back) == 3
    table = watch._ResultsCsv(out, export.RESULT_COLUMNS).latest()
    assert set(table["channel"]) == {"", "0"}  # not "0.0"


def test_one_watcher_per_table(folder, tmp_path, capsys):
    acquisition = _acquisition(folder, tmp_path)
    out = tmp_path / "live.csv"
    with locked_by_another_process(out):
        rc = cli.main(["watch", str(acquisition), "--method", "criteria", "--timeout", "1", "--out", str(out)])
    assert rc == 2 and "another sero process" in capsys.readouterr().err


def test_sigterm_ends_a_watch_session_with_its_summary(folder, tmp_path):
    acquisition = _acquisition(folder, tmp_path)
    out = tmp_path / "live.csv"
    command = [sys.executable, "-m", "spikeinterface_sero.cli", "watch", str(acquisition), "--existing"]
    command += ["--method", "criteria", "--settle", "0", "--out", str(out)]
    process = subprocess.Popen(command, env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out.exists() and len(out.read_text().splitlines()) >= 4):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.2)
    time.sleep(1.0)  # the last row printed too
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 1 and "Traceback" not in stderr
    assert stdout.splitlines()[-1] == "stopped: 2 cell(s) classified, 1 file(s) failed"
    assert not (tmp_path / ".live.csv.lock").exists()


def test_a_real_full_disk_at_the_end_sends_the_table_to_the_fallback(folder, tmp_path, monkeypatch, capsys):
    """A 64 kB tmpfs filled during the run: the table goes to the fallback file, the message says where."""
    disk = tmp_path / "small_disk"
    disk.mkdir()
    if os.geteuid() != 0 or not _mount(["-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)]):
        pytest.skip("a small tmpfs needs root and mount rights, which this machine does not give")
    real = cli.classify.classify_files

    def fill_the_disk_then_classify(*args, **kwargs):  # the disk fills up while the run works
        with pytest.raises(OSError), open(disk / "filler", "wb") as filler:
            while True:
                filler.write(b"x" * 4096)
                filler.flush()
        return real(*args, **kwargs)

    monkeypatch.setattr(cli.classify, "classify_files", fill_the_disk_then_classify)
    try:
        monkeypatch.chdir(tmp_path)
        out = disk / "results.csv"
        rc = cli.main(["classify", *_abf(folder), "--method", "criteria", "--out", str(out), "--quiet"])
        err = capsys.readouterr().err
        assert rc == 1 and "Traceback" not in err and "the results are in" in err
        (fallback,) = tmp_path.glob("results-saved-*.csv")
        assert len(pd.read_csv(fallback)) == 3 and str(fallback) in err
    finally:
        _mount([str(disk)], command="umount")


def test_a_full_disk_that_is_also_the_current_folder_sends_the_table_home(folder, tmp_path, monkeypatch, capsys):
    """The current folder on the full disk too: the fallback is the next place that takes it (the home)."""
    disk, home = tmp_path / "small_disk", tmp_path / "home"
    disk.mkdir()
    home.mkdir()
    if os.geteuid() != 0 or not _mount(["-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)]):
        pytest.skip("a small tmpfs needs root and mount rights, which this machine does not give")
    real = cli.classify.classify_files

    def fill_the_disk_then_classify(*args, **kwargs):
        with pytest.raises(OSError), open(disk / "filler", "wb") as filler:
            while True:
                filler.write(b"x" * 4096)
                filler.flush()
        return real(*args, **kwargs)

    monkeypatch.setattr(cli.classify, "classify_files", fill_the_disk_then_classify)
    monkeypatch.setenv("HOME", str(home))
    try:
        monkeypatch.chdir(disk)
        rc = cli.main(
            ["classify", *_abf(folder), "--method", "criteria", "--out", str(disk / "results.csv"), "--quiet"]
        )
        err = capsys.readouterr().err
        assert rc == 1 and "Traceback" not in err and "the results are in" in err
        (fallback,) = home.glob("results-saved-*.csv")
        assert len(pd.read_csv(fallback)) == 3 and str(fallback) in err
    finally:
        monkeypatch.chdir(tmp_path)
        _mount([str(disk)], command="umount")


def test_a_report_that_fails_at_the_end_keeps_the_table(folder, tmp_path, monkeypatch, capsys):
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cli.classify, "write_summary_html", disk_full)
    out, report = tmp_path / "results.csv", tmp_path / "report"
    rc = cli.main(["classify", *_abf(folder), "--method", "criteria", "--out", str(out), "--report", str(report)])
    err = capsys.readouterr().err
    assert rc == 1 and "could not write the report" in err and "Traceback" not in err
    assert len(pd.read_csv(out)) == 3 and not report.exists()  # no half report: the old state (none)
