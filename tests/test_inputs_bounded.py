"""Inputs are bounded and checked: files that are not regular files, sizes a file declares, header strings
and dates, and the arguments of the public functions (issues 23 and 25)."""

from __future__ import annotations

import datetime
import io
import os
import struct
import sys
import threading
import zipfile

import numpy as np
import pytest
from conftest import SHARED_ABF, shared_abf_files

from spikeinterface_sero.constants import SAMPLING_FREQUENCY as FS
from spikeinterface_sero.datasets import write_abf
from spikeinterface_sero.errors import AbfError, SnippetError
from spikeinterface_sero.io import abf_info, header_text, read_abf
from spikeinterface_sero.snippets import abf_to_snippets, load_npz, save_npz
from spikeinterface_sero.testing import synthetic_trace

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")


def _within(seconds: float, function, *args, **kwargs):
    """Call ``function`` in a thread; fail when it has not returned (or raised) within ``seconds``."""
    outcome = {}

    def target():
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            outcome["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{function.__name__} still blocked after {seconds} s"
    return outcome


# ------------------------------------------------------------------------------- not regular files
@needs_fifo
@pytest.mark.parametrize("reader", [read_abf, abf_info, abf_to_snippets])
def test_a_fifo_named_abf_is_refused_at_once(tmp_path, reader):
    fifo = tmp_path / "cell.abf"
    os.mkfifo(fifo)
    outcome = _within(20, reader, fifo)
    assert isinstance(outcome.get("error"), AbfError), outcome
    assert "named pipe" in str(outcome["error"]) and "\n" not in str(outcome["error"])


@needs_fifo
@pytest.mark.parametrize("command", ["info", "classify"])
def test_the_cli_refuses_a_fifo_at_once(tmp_path, capsys, command):
    from spikeinterface_sero.cli import main

    fifo = tmp_path / "cell.abf"
    os.mkfifo(fifo)
    outcome = _within(60, main, [command, str(fifo)])
    assert "error" not in outcome, outcome
    assert outcome["value"] != 0
    captured = capsys.readouterr()
    assert "named pipe" in captured.out + captured.err


@needs_fifo
def test_a_fifo_named_npz_is_refused_at_once(tmp_path):
    fifo = tmp_path / "snippets.npz"
    os.mkfifo(fifo)
    outcome = _within(20, load_npz, fifo)
    assert isinstance(outcome.get("error"), SnippetError) and "named pipe" in str(outcome["error"])


def test_a_device_is_refused():
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    outcome = _within(20, read_abf, "/dev/zero")
    assert isinstance(outcome.get("error"), AbfError) and "not a regular file" in str(outcome["error"])


# ------------------------------------------------------------------------------ declared sizes: npz
def _npz_with_header(path, shape, payload: bytes, dtype="<f4"):
    """A zip whose waveforms.npy member declares ``shape`` but holds only ``payload`` after its header."""
    from numpy.lib import format as npy_format

    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("waveforms.npy", buffer.getvalue() + payload)
    return path


def test_an_npz_header_declaring_4_billion_values_is_refused_before_allocation(tmp_path):
    import tracemalloc

    bomb = _npz_with_header(tmp_path / "bomb.npz", (4_000_000_000,), b"\0" * 64)
    tracemalloc.start()
    with pytest.raises(SnippetError, match="declares .*16000000000 bytes.* holds only 64 bytes"):
        load_npz(bomb)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50e6  # nothing near the declared 16 GB was asked for


def test_an_npz_member_declaring_more_than_deflate_can_give_is_refused(tmp_path):
    path = _npz_with_header(tmp_path / "ratio.npz", (10,), b"\0" * 40)
    data = bytearray(path.read_bytes())
    # the uncompressed size in the central directory: 2**31 bytes for a member of a few dozen bytes
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 2**31)
    path.write_bytes(bytes(data))
    with pytest.raises(SnippetError, match="declares 2147483648 bytes"):
        load_npz(path)


def test_a_real_npz_still_round_trips(tmp_path):
    recording_file = write_abf(tmp_path / "c.abf", synthetic_trace(duration_s=1.0, spike_times_s=[0.2, 0.6]), FS)
    snippets = abf_to_snippets(recording_file)
    back = load_npz(save_npz(snippets, tmp_path / "s.npz"))
    np.testing.assert_array_equal(back.waveforms, snippets.waveforms)
    assert back.cell_ids.tolist() == snippets.cell_ids.tolist()


# ------------------------------------------------------------------------------ declared sizes: ABF
def _sparse_day_long_abf(tmp_path):
    """A valid 24 h gap-free 40 kHz ABF2 file: 1 s of real data, the rest a hole (a sparse file, ~100 kB on
    disk). Clampex writes the data section's sample count as an int64; 24 h is 3.456e9 samples."""
    if not sys.platform.startswith(("linux", "darwin")):
        pytest.skip("needs a file system with sparse files")
    x = np.random.default_rng(0).normal(0.0, 5.0, 40_000).astype(np.float32)
    path = write_abf(tmp_path / "day.abf", x, FS)
    with open(path, "rb") as handle:
        block, _, _ = struct.unpack_from("<IIq", handle.read(76 + 16 * 11), 76 + 16 * 10)  # the DataSection
    n_samples = 24 * 3600 * 40_000
    with open(path, "r+b") as handle:
        handle.seek(76 + 16 * 10 + 8)
        handle.write(struct.pack("<q", n_samples))
    os.truncate(path, block * 512 + 2 * n_samples)
    if os.stat(path).st_blocks * 512 > 50e6:
        path.unlink()
        pytest.skip("this file system does not keep holes in files")
    return path, x, n_samples


def test_a_24_hour_gap_free_file_is_read(tmp_path):
    path, x, n_samples = _sparse_day_long_abf(tmp_path)
    recording = read_abf(path)
    assert recording.get_num_samples(0) == n_samples and recording.get_total_duration() == 86_400.0
    head = recording.get_traces(start_frame=0, end_frame=1000, return_in_uV=True)[:, 0]
    assert np.abs(head - x[:1000]).max() < 0.01  # int16 quantisation
    tail = recording.get_traces(start_frame=n_samples - 10, end_frame=n_samples, return_in_uV=True)
    assert tail.shape == (10, 1)
    assert abf_info(path)["duration_s"] == 86_400.0


# ------------------------------------------------------------------------------ header strings, dates
def test_header_text_keeps_clean_text_only():
    assert header_text("C:\\P\\a.pro\x00garbage\xff") == "C:\\P\\a.pro"
    assert header_text(b"  IN 0 \x00\x01\x02") == "IN 0"
    assert header_text("\ufffd\ufffd|\x7f\x02") == ""  # binary garbage
    assert header_text("abcdef", max_length=3) == "abc"
    assert header_text(None) == ""


@pytest.mark.parametrize("version", [1, 2])
def test_a_protocol_path_reads_back_as_written(tmp_path, version):
    x = synthetic_trace(duration_s=0.5)
    path = write_abf(tmp_path / "p.abf", x, FS, version=version, protocol_path="C:\\Protocols\\gap free.pro")
    assert abf_info(path)["protocol"] == "C:\\Protocols\\gap free.pro"
    assert read_abf(path).get_annotation("abf_protocol") == "C:\\Protocols\\gap free.pro"


def test_a_garbage_abf1_protocol_field_reads_as_no_protocol(tmp_path):
    x = synthetic_trace(duration_s=0.5)
    path = write_abf(tmp_path / "g.abf", x, FS, version=1)
    data = bytearray(path.read_bytes())
    data[4898 : 4898 + 384] = np.random.default_rng(1).integers(1, 256, 384, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    assert abf_info(path)["protocol"] == ""
    assert read_abf(path).get_annotation("abf_protocol") == ""


# pyABF 2.3.8's ``ABF.protocolPath`` ("None" read as "") for a few of the shared files
PYABF_PROTOCOLS = {
    "130618-1-12.abf": "",
    "f1_saved.abf": "",
    "pclamp11_4ch.abf": "",
    "2018_12_09_pCLAMP11_0001.abf": "",
    "multichannelAbf1WithTags.abf": "S:\\Protocols\\permanent\\0402 VC 2s MT-50.pro",
    "File_axon_2.abf": "C:\\Axon\\rk400\\0.1G\\minidigi\\Cc_minidigi.pro",
    "2020_06_16_0000.abf": "C:\\DataShare\\10kHzAquisitionTriggered.pro",
}


@pytest.mark.parametrize("path", shared_abf_files(), ids=lambda p: p.name)
def test_shared_files_have_clean_header_text(path):
    info = abf_info(path)
    protocol = info["protocol"]
    assert protocol == "" or (protocol.isascii() and protocol.isprintable() and protocol.endswith(".pro"))
    assert protocol == PYABF_PROTOCOLS.get(path.name, protocol)
    names = info["channels"]["channel_name"].tolist()
    assert all(name and name.isascii() and name.isprintable() for name in names)
    assert info["recorded"] == "" or 1980 <= datetime.datetime.fromisoformat(info["recorded"]).year


@pytest.mark.parametrize("stem", ["18425108", "pclamp11_4ch"])
def test_abf1_and_abf2_copies_name_the_same_protocol(stem):
    if not (SHARED_ABF / f"{stem}_abf1.abf").is_file():
        pytest.skip("../shared/abf is not present on this machine")
    assert abf_info(SHARED_ABF / f"{stem}.abf")["protocol"] == abf_info(SHARED_ABF / f"{stem}_abf1.abf")["protocol"]


# ABF1 reads a year below 100 as two digits (Neo: 01 -> 2001), so its impossible date is year 1000
@pytest.mark.parametrize("version, year", [(2, 1), (2, 1000), (1, 1000)])
def test_a_header_dated_year_1_is_read_with_an_unknown_date(tmp_path, version, year):
    x = synthetic_trace(duration_s=0.5)
    when = datetime.datetime(year, 1, 1, 0, 0, 1)
    path = write_abf(tmp_path / "y1.abf", x, FS, version=version, rec_datetime=when)
    assert abf_info(path)["recorded"] == ""
    assert read_abf(path).get_annotation("abf_datetime") == ""
    good = write_abf(tmp_path / "ok.abf", x, FS, version=version, rec_datetime=datetime.datetime(2024, 5, 6, 7, 8, 9))
    assert abf_info(good)["recorded"].startswith("2024-05-06T07:08:09")


def test_a_year_1_file_exports_to_nwb(tmp_path):
    pytest.importorskip("pynwb")
    from spikeinterface_sero.cli import main

    x = synthetic_trace(duration_s=2.0, spike_times_s=np.arange(0.1, 1.9, 0.1))
    path = write_abf(tmp_path / "y1.abf", x, FS, rec_datetime=datetime.datetime(1, 1, 1, 0, 0, 1))
    assert main(["classify", str(path), "--nwb", str(tmp_path / "nwb")]) == 0
    assert (tmp_path / "nwb" / "y1.nwb").is_file()


# ------------------------------------------------------------------------------ bad arguments
def _bad_argument_cases():
    """(function, args, kwargs, the argument the message must name) for every public function of the
    reading, detection, snippet-format and feature modules."""
    from spikeinterface_sero import features, snippets
    from spikeinterface_sero import io as sero_io
    from spikeinterface_sero.testing import numpy_recording

    recording = numpy_recording(synthetic_trace(duration_s=0.5, spike_times_s=[0.2])[:, None])
    abf = "missing.abf"
    return [
        (sero_io.read_abf, (None,), {}, "path"),
        (sero_io.read_abf, (42,), {}, "path"),
        (sero_io.read_abf, ("",), {}, "path"),
        (sero_io.read_abf, (abf,), {"channel": 2.5}, "channel"),
        (sero_io.read_abf, (abf,), {"channel": []}, "channel"),
        (sero_io.read_abf, (abf,), {"allow_low_rate": "yes"}, "allow_low_rate"),
        (sero_io.read_abf, (abf,), {"allow_any_unit": "no"}, "allow_any_unit"),
        (sero_io.read_abf, (abf,), {"validate": None}, "validate"),
        (sero_io.abf_channels, (None,), {}, "path"),
        (sero_io.abf_info, (3.5,), {}, "path"),
        (sero_io.validate_recording, ("x",), {}, "recording"),
        (sero_io.validate_recording, (recording,), {"chunk_size": 0}, "chunk_size"),
        (snippets.recording_to_analyzer, ("x",), {}, "recording"),
        (snippets.recording_to_analyzer, (recording,), {"threshold": "x"}, "threshold"),
        (snippets.recording_to_analyzer, (recording,), {"threshold": float("nan")}, "threshold"),
        (snippets.recording_to_analyzer, (recording,), {"max_spikes_per_cell": 0}, "max_spikes_per_cell"),
        (snippets.recording_to_analyzer, (recording,), {"max_spikes_per_cell": "5"}, "max_spikes_per_cell"),
        (snippets.recording_to_analyzer, (recording,), {"seed": "a"}, "seed"),
        (snippets.recording_to_analyzer, (recording,), {"format": "csv"}, "format"),
        (snippets.recording_to_analyzer, (recording,), {"folder": 3}, "folder"),
        (snippets.recording_to_analyzer, (recording,), {"overwrite": "yes"}, "overwrite"),
        (snippets.recording_to_analyzer, (recording,), {"thresold": -50}, "thresold"),
        (snippets.recording_to_analyzer, (recording,), {"polarity": "up"}, "polarity"),
        (snippets.recording_to_analyzer, (recording,), {"dead_time_ms": "2"}, "dead_time_ms"),
        (snippets.recording_to_analyzer, (recording,), {"baseline_window_ms": "x"}, "baseline_window_ms"),
        (snippets.recording_to_analyzer, (recording,), {"mad_multiplier": -1}, "mad_multiplier"),
        (snippets.abf_to_analyzer, (None,), {}, "path"),
        (snippets.abf_to_analyzer, (abf,), {"threshold": "x"}, "threshold"),
        (snippets.abf_to_analyzer, (abf,), {"seed": -1, "max_spikes_per_cell": 5}, "seed"),
        (snippets.abf_to_snippets, (abf,), {"threshold": None}, "threshold"),
        (snippets.recording_to_snippets, (None,), {}, "recording"),
        (snippets.recording_to_snippets, (recording,), {"chunk_duration_s": 0}, "chunk_duration_s"),
        (snippets.recording_to_snippets, (recording,), {"cell_ids": ["a", "b"]}, "cell_ids"),
        (snippets.recording_to_snippets, (recording,), {"params": "x"}, "params"),
        (snippets.create_analyzer, ("x", recording), {}, "sorting"),
        (snippets.create_analyzer, (None, None), {}, "sorting"),
        (snippets.snippets_to_sorting, ("x", recording), {}, "snippets"),
        (snippets.snippets_from_analyzer, ("x",), {}, "analyzer"),
        (snippets.main_channel_waveforms, (None,), {}, "analyzer"),
        (snippets.check_analyzer_waveforms, ("x",), {}, "analyzer"),
        (snippets.read_snippet_csv_folder, (None,), {}, "folder"),
        (snippets.read_snippet_csv_folder, (".",), {"on_bad": "ignore"}, "on_bad"),
        (snippets.write_snippet_csv_folder, ("x", "out"), {}, "snippets"),
        (snippets.save_npz, ("x", "out.npz"), {}, "snippets"),
        (snippets.load_npz, (None,), {}, "path"),
        (snippets.detection_trace, ("x",), {}, "recording"),
        (snippets.detection_trace, (recording,), {"segment_index": "0"}, "segment_index"),
        (snippets.detection_trace, (recording,), {"start_frame": "0"}, "start_frame"),
        (snippets.detection_trace, (recording,), {"params": {"threshold": -50}}, "params"),
        (snippets.DetectionParams, (), {"threshold": "x"}, "threshold"),
        (snippets.DetectionParams, (), {"polarity": None}, "polarity"),
        (features.udi_ms, (np.zeros((2, 160)),), {"sampling_frequency": "x"}, "sampling_frequency"),
        (features.udi_ms, (np.zeros((2, 160)),), {"method": None}, "method"),
        (features.udi_per_spike_ms, (np.zeros((2, 160)),), {"polarity": 3}, "polarity"),
        (features.cell_features, ([],), {"polarity": "up"}, "polarity"),
        (features.firing_features, ("x",), {}, "spike_trains"),
        (features.spike_trains_for_cell, ([[0.1]], 0.0, 1.0), {"sampling_frequency": "x"}, "sampling_frequency"),
        (features.features_table, ("x",), {}, "spike_trains_by_cell"),
        (features.features_from_sorting, ("x",), {}, "sorting"),
        (features.criteria_classify, ("x",), {}, "features"),
        (features.criteria_classify, (features._table({}, "cell_id"),), {"max_cv": "x"}, "max_cv"),
        (features.add_sero_type, ("x",), {}, "df"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_argument_cases())))
def test_bad_arguments_give_one_clear_parameter_error(case, tmp_path, monkeypatch):
    from spikeinterface_sero.errors import ParameterError

    monkeypatch.chdir(tmp_path)
    function, args, kwargs, name = _bad_argument_cases()[case]
    with pytest.raises(ParameterError) as error:
        function(*args, **kwargs)
    message = str(error.value)
    assert name in message and "\n" not in message, message
    assert isinstance(error.value, ValueError)
