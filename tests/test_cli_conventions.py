"""The conventions of every `sero` command: options that explain themselves and show their defaults, no output
replaced without --overwrite (refused before any work), messages in the command line's words, the watcher's
--quiet, DEMO note, `?` marker and exit status."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

from spikeinterface_sero import cli
from spikeinterface_sero.constants import SAMPLING_FREQUENCY as FS
from spikeinterface_sero.datasets import simulate_dataset, write_abf
from spikeinterface_sero.errors import SeroError
from spikeinterface_sero.model import load_model
from spikeinterface_sero.testing import synthetic_trace


def _subcommands():
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices


@pytest.fixture(scope="module")
def abf(tmp_path_factory):
    """A short recording of one cell: 5 spikes, too few for a reliable call."""
    folder = tmp_path_factory.mktemp("conventions")
    trace = synthetic_trace(duration_s=3.0, spike_times_s=[0.3, 0.9, 1.4, 2.1, 2.6], seed=2)
    return write_abf(folder / "A240101#001.abf", trace, FS, data_format="float32")


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labelled")
    simulate_dataset({"serotonergic": 2, "non_serotonergic": 2}, duration_s=5.0, seed=3, out_dir=folder)
    return folder / "labels.csv"


def test_every_option_of_every_command_explains_itself_and_shows_its_default():
    commands = _subcommands()
    assert {"snippets", "info", "classify", "import-models", "demo", "watch", "train", "evaluate"} <= set(commands)
    missing, hidden = [], []
    for name, parser in commands.items():
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            label = f"{name} {'/'.join(action.option_strings) or action.dest}"
            if not (action.help or "").strip():
                missing.append(label)
            elif action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
                if "default" not in formatter._get_help_string(action):
                    hidden.append(label)
    assert not missing, f"options without help: {missing}"
    assert not hidden, f"defaults not shown in --help: {hidden}"


def test_help_of_every_command_shows_the_defaults(capsys):
    for name in _subcommands():
        with pytest.raises(SystemExit):
            cli.main([name, "--help"])
        text = capsys.readouterr().out
        assert text.startswith(f"usage: sero {name}")
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: the recipe's, 25)" in text and "(default: default)" in text and "(default: -50.0)" in text


def _refused(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]  # one line; a progress line may precede
    assert len(errors) == 1 and "--overwrite" in errors[0] and "Traceback" not in err, err
    return errors[0]


def test_classify_refuses_to_replace_a_report(abf, tmp_path, capsys):
    report = tmp_path / "report"
    args = ["classify", str(abf), "--method", "criteria", "--report", str(report), "--quiet"]
    assert cli.main(args) == 0
    page = (report / "index.html").read_bytes()
    assert cli.main(args) == 2
    _refused(capsys)
    assert (report / "index.html").read_bytes() == page
    assert cli.main(args + ["--overwrite"]) == 0


def test_evaluate_refuses_to_replace_a_report_before_any_work(labelled, tmp_path, capsys, monkeypatch):
    out = tmp_path / "evaluation"
    args = ["evaluate", "--table", str(labelled), "--model", str(tmp_path / "no_model"), "--out", str(out)]
    out.mkdir()
    (out / "report.json").write_text("{}\n")
    calls = []
    monkeypatch.setattr(cli.evaluate, "evaluate_table", lambda *a, **k: calls.append(a))
    assert cli.main(args) == 2 and calls == []  # refused before the model or a recording is read
    _refused(capsys)
    assert (out / "report.json").read_text() == "{}\n"
    (tmp_path / "a_file").write_text("x")
    assert cli.main(args[:-1] + [str(tmp_path / "a_file")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_evaluate_overwrites_when_asked(labelled, tmp_path, capsys):
    out = tmp_path / "evaluation"
    args = ["evaluate", "--table", str(labelled), "--model", str(load_model(None).info["folder"])]
    args += ["--out", str(out), "--quiet"]
    assert cli.main(args) == 0
    first = (out / "report.json").read_text()
    assert cli.main(args) == 2
    _refused(capsys)
    assert (out / "report.json").read_text() == first
    assert cli.main(args + ["--overwrite"]) == 0
    assert {"confusion_cell.png", "reliability.png", "cells.csv"} <= {p.name for p in out.iterdir()}


def test_demo_refuses_to_replace_its_results_before_any_work(tmp_path, capsys, monkeypatch):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "results.csv").write_text("earlier\n")
    assert cli.main(["demo", "--out", str(out), "--cells", "1", "--duration", "2", "--no-report"]) == 2
    _refused(capsys)
    assert (out / "results.csv").read_text() == "earlier\n" and not (out / "recordings").exists()


def test_demo_runs_on_a_first_run_where_nothing_exists_yet(tmp_path, capsys, monkeypatch):
    """The README's main job: ``sero demo`` in a folder where its output folder does not exist yet."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--cells", "1", "--duration", "5"]) == 0
    out = tmp_path / "sero_demo_output"
    assert (out / "report" / "index.html").is_file() and len(pd.read_csv(out / "results.csv")) == 3
    assert "report: sero_demo_output/report/index.html" in capsys.readouterr().out
    (tmp_path / "a_file").write_text("")
    assert cli.main(["demo", "--out", str(tmp_path / "a_file"), "--cells", "1", "--duration", "2"]) == 2
    assert "--out must be a folder" in capsys.readouterr().err


def test_snippets_refuses_to_replace_csv_snippet_files(abf, tmp_path, capsys):
    args = ["snippets", str(abf), "--out", str(tmp_path / "csv"), "--quiet"]
    assert cli.main(args) == 0
    assert cli.main(args) == 2
    _refused(capsys)
    assert cli.main(args + ["--overwrite"]) == 0


def test_train_refuses_an_existing_model_folder_before_reading_recordings(labelled, tmp_path, capsys, monkeypatch):
    out = tmp_path / "model"
    out.mkdir()
    (out / "model_info.json").write_text("{}")
    calls = []

    def train_from_table(*args, **kwargs):
        calls.append(args)
        raise SeroError("training started")

    monkeypatch.setattr(cli.train, "train_from_table", train_from_table)
    monkeypatch.setattr(cli, "_quiet_import_tensorflow", lambda: None)  # not needed to refuse
    assert cli.main(["train", "--table", str(labelled), "--out", str(out), "--quiet"]) == 2 and calls == []
    _refused(capsys)
    assert cli.main(["train", "--table", str(labelled), "--out", str(out), "--quiet", "--overwrite"]) == 2
    assert len(calls) == 1 and "training started" in capsys.readouterr().err


def test_import_models_refuses_an_existing_folder(tmp_path, capsys, monkeypatch):
    source = tmp_path / "published"
    source.mkdir()
    (source / "ModConvBinNormN20.keras").write_bytes(b"not read: the target is refused first")
    out = tmp_path / "imported"
    out.mkdir()
    (out / "model_info.json").write_text("{}")
    monkeypatch.setattr(cli, "_quiet_import_tensorflow", lambda: None)
    assert cli.main(["import-models", str(source), "--out", str(out)]) == 2
    assert "overwrite=True" not in _refused(capsys)
    assert (out / "model_info.json").read_text() == "{}"


def test_watch_appends_to_its_own_table_only(abf, tmp_path, capsys):
    folder = tmp_path / "acquisition"
    folder.mkdir()
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    args = ["watch", str(folder), "--method", "criteria", "--timeout", "0.2", "--settle", "0"]
    assert cli.main(args + ["--out", str(other)]) == 2
    assert "not a sero results table" in capsys.readouterr().err
    assert other.read_text() == "a,b\n1,2\n"


def test_failures_name_flags_not_python_arguments(tmp_path, capsys):
    voltage = write_abf(tmp_path / "voltage.abf", synthetic_trace(duration_s=1.0, spike_times_s=[0.5]), FS, units="mV")
    assert cli.main(["classify", str(voltage), "--method", "criteria", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "--any-unit" in err and "--channel" in err
    assert "allow_any_unit" not in err and "channel=" not in err and "(CLI:" not in err


def _watch(folder, *extra):
    # 4 s: a finished file is classified at the first look, a broken one after settle + incomplete time (0.4 s)
    # counted from then, so both rows need the first classification (seconds on a loaded machine) and a bit more
    return ["watch", str(folder), "--existing", "--settle", "0.1", "--timeout", "4", *extra]


@pytest.fixture
def acquisition(abf, tmp_path):
    folder = tmp_path / "acquisition"
    folder.mkdir()
    (folder / abf.name).write_bytes(abf.read_bytes())
    (folder / "broken.abf").write_bytes(b"ABF2" + bytes(100))
    return folder


def test_watch_says_demo_marks_unsure_calls_and_fails_after_failures(acquisition, capsys):
    assert cli.main(_watch(acquisition)) == 1  # a file failed
    captured = capsys.readouterr()
    assert "loading the model" in captured.err
    lines = captured.out.splitlines()
    assert any(line.startswith("NOTE: labels from the bundled DEMONSTRATION model") for line in lines)
    (cell,) = [line for line in lines if "A240101#001" in line]
    assert "UNSURE (leans " in cell and "  serotonergic  " not in cell  # 5 spikes: never a label headline
    assert any("FAILED broken.abf" in line for line in lines)
    assert lines[-1] == "stopped: 1 cell(s) classified, 1 file(s) failed"


def test_watch_quiet_prints_only_failures_and_the_summary(acquisition, capsys):
    assert cli.main(_watch(acquisition, "--quiet")) == 1
    captured = capsys.readouterr()
    assert "loading the model" not in captured.err
    lines = [line for line in captured.out.splitlines() if line.strip()]
    assert not any("A240101#001" in line for line in lines)
    assert any("FAILED broken.abf" in line for line in lines)
    assert lines[-1] == "stopped: 1 cell(s) classified, 1 file(s) failed"


def test_watch_exits_zero_without_failures(abf, tmp_path):
    folder = tmp_path / "clean"
    folder.mkdir()
    (folder / abf.name).write_bytes(abf.read_bytes())
    out = tmp_path / "live.csv"
    assert cli.main(_watch(folder, "--quiet", "--method", "criteria", "--out", str(out))) == 0
    assert pd.read_csv(out)["cell_id"].tolist() == ["A240101#001"]


def test_the_applications_stay_small_rooms():
    """Every function of the command line, the batch runner, the watcher, the demo and files.py at McCabe
    complexity <= 15 (ruff's C901)."""
    import shutil
    import subprocess
    from pathlib import Path

    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install ruff)")
    package = Path(cli.__file__).resolve().parents[1]
    paths = [package / "cli", *(package / f"{name}.py" for name in ("pipeline", "watch", "demo", "files"))]
    checked = subprocess.run(
        [ruff, "check", "--select", "C901", "--config", "lint.mccabe.max-complexity=15", *map(str, paths)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout
