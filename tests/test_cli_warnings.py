"""The `sero` command's warning format is its own while it runs and is put back when it returns."""

from __future__ import annotations

import warnings

import pytest

from spikeinterface_sero import cli
from spikeinterface_sero.cli import main
from spikeinterface_sero.cli.common import command_warnings
from spikeinterface_sero.constants import SAMPLING_FREQUENCY as FS
from spikeinterface_sero.datasets.abf_writer import write_abf
from spikeinterface_sero.testing import synthetic_trace


def _shown_after(action) -> list[str]:
    """The text of a warning raised after ``action()``, formatted as Python's own ``showwarning`` does."""
    action()
    shown = []
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: shown.append(
            warnings.formatwarning(message, category, filename, lineno, line)
        )
        warnings.warn("a later warning", UserWarning, stacklevel=1)
    return shown


@pytest.fixture(scope="module")
def abf_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("abf")
    trace = synthetic_trace(duration_s=2.0, spike_times_s=[0.3, 0.9, 1.6])
    return write_abf(folder / "A240101#001.abf", trace, FS, data_format="float32")


def test_the_command_format_holds_while_it_runs_and_goes_after():
    before = warnings.formatwarning
    with command_warnings("snippets"):
        assert (
            warnings.formatwarning("too few spikes", UserWarning, "x.py", 1)
            == "sero snippets: warning: too few spikes\n"
        )
    assert warnings.formatwarning is before


def test_sero_snippets_from_python_leaves_later_warnings_without_its_prefix(abf_file, tmp_path, capsys):
    before = warnings.formatwarning
    code = []
    shown = _shown_after(
        lambda: code.append(main(["snippets", str(abf_file), "--out", str(tmp_path / "s.npz"), "--quiet"]))
    )
    assert code == [0] and (tmp_path / "s.npz").exists()
    assert warnings.formatwarning is before
    assert len(shown) == 1 and "a later warning" in shown[0]
    assert "sero snippets" not in shown[0] and "UserWarning" in shown[0]


def test_a_refused_command_puts_the_format_back(tmp_path, capsys):
    before = warnings.formatwarning
    assert main(["snippets", str(tmp_path), "--out", str(tmp_path / "x.npz")]) == 2  # a folder without .abf files
    assert "sero snippets: error:" in capsys.readouterr().err
    assert warnings.formatwarning is before


def test_a_command_that_crashes_puts_the_format_back(abf_file, tmp_path, monkeypatch):
    def crash(args):
        raise RuntimeError("a bug in the command")

    monkeypatch.setattr(cli.snippets, "run", crash)
    before = warnings.formatwarning
    with pytest.raises(RuntimeError, match="a bug in the command"):
        main(["snippets", str(abf_file), "--out", str(tmp_path / "s.npz"), "--quiet"])
    assert warnings.formatwarning is before
