"""Reading .abf files: channels, units, rates, sweeps, and one clear error for every kind of bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_abf_files

from spikeinterface_sero import abf_to_analyzer, read_abf
from spikeinterface_sero.constants import SAMPLING_FREQUENCY as FS
from spikeinterface_sero.datasets.abf_writer import write_abf
from spikeinterface_sero.errors import AbfError, ChannelError, DataError, SamplingRateError, SeroError
from spikeinterface_sero.snippets import abf_to_snippets
from spikeinterface_sero.testing import numpy_recording, synthetic_trace

SPIKES = np.array([0.11, 0.52, 0.93, 1.37, 1.81])


@pytest.fixture
def abf40(tmp_path):
    x = synthetic_trace(duration_s=2.0, spike_times_s=SPIKES, noise_pa=1.5)
    return write_abf(tmp_path / "A240101#001.abf", x, FS, data_format="float32"), x


def test_float_abf_reads_back_exactly_in_pa_with_probe(abf40):
    path, x = abf40
    rec = read_abf(path)
    assert rec.sampling_frequency == 40000.0 and rec.get_num_segments() == 1
    assert list(rec.get_property("physical_unit")) == ["pA"]
    np.testing.assert_array_equal(rec.get_traces(return_in_uV=True)[:, 0], x)
    assert rec.get_probegroup() is not None
    assert rec.get_annotation("resampled") is False


@pytest.mark.parametrize("unit,factor", [("nA", 1e-3), ("A", 1e-12)])
def test_other_current_units_are_scaled_to_pa(tmp_path, unit, factor):
    x = synthetic_trace(duration_s=0.5, spike_times_s=[0.2])
    path = write_abf(
        tmp_path / "u.abf", (x.astype(np.float64) * factor).astype(np.float32), FS, units=unit, data_format="float32"
    )
    got = read_abf(path).get_traces(return_in_uV=True)[:, 0]
    np.testing.assert_allclose(got, x, rtol=1e-5, atol=1e-3)


def test_channel_choice_automatic_by_id_and_by_name(tmp_path):
    x = synthetic_trace(duration_s=0.5, spike_times_s=[0.2])
    vm = np.full_like(x, -60.0) + np.linspace(0, 1, x.size).astype(np.float32)
    path = write_abf(
        tmp_path / "mixed.abf",
        np.c_[vm, x],
        FS,
        units=["mV", "pA"],
        channel_names=["Vm", "Imemb"],
        data_format="float32",
    )
    auto = read_abf(path)
    assert list(auto.channel_ids) == ["1"]
    np.testing.assert_array_equal(auto.get_traces(return_in_uV=True)[:, 0], x)
    assert list(read_abf(path, channel="Imemb").channel_ids) == ["1"]
    assert list(read_abf(path, channel=1).channel_ids) == ["1"]
    with pytest.raises(ChannelError, match="'Vm'.*mV.*allow_any_unit"):
        read_abf(path, channel="Vm")
    assert list(read_abf(path, channel="Vm", allow_any_unit=True).channel_ids) == ["0"]
    with pytest.raises(ChannelError, match="no channel 'IN 7'.*id 0 'Vm' \\[mV\\]"):
        read_abf(path, channel="IN 7")


def test_no_current_channel_lists_channels_and_how_to_pick(tmp_path):
    path = write_abf(tmp_path / "vm.abf", synthetic_trace(duration_s=0.3), FS, units="mV", channel_names=["Vm"])
    with pytest.raises(ChannelError) as e:
        read_abf(path)
    msg = str(e.value)
    assert "no current channel" in msg and "id 0 'Vm' [mV]" in msg and "channel=" in msg
    assert "\n" not in msg


def test_low_rate_refused_unless_allowed(tmp_path):
    path = write_abf(
        tmp_path / "slow.abf",
        synthetic_trace(sampling_frequency=10_000.0, duration_s=1.0, spike_times_s=SPIKES[:2]),
        10_000.0,
    )
    with pytest.raises(SamplingRateError, match="10000 Hz.*allow_low_rate"):
        read_abf(path)
    rec = read_abf(path, allow_low_rate=True)
    assert rec.sampling_frequency == 40000.0 and rec.get_annotation("resampled") is True


@pytest.mark.parametrize("fs", [20_000.0, 50_000.0])
def test_abf_at_other_rates_gives_the_same_triggers(tmp_path, fs):
    ref = abf_to_snippets(
        write_abf(
            tmp_path / "a40.abf",
            synthetic_trace(spike_times_s=SPIKES, noise_pa=0.0, duration_s=2.0),
            FS,
            data_format="float32",
        )
    )
    x = synthetic_trace(sampling_frequency=fs, duration_s=2.0, spike_times_s=SPIKES, noise_pa=0.0)
    sn = abf_to_snippets(write_abf(tmp_path / f"a{int(fs)}.abf", x, fs, data_format="float32"))
    assert sn.waveforms.shape == (len(SPIKES), 160)
    assert np.max(np.abs(sn.trigger_samples - ref.trigger_samples)) <= 1


@pytest.mark.parametrize("version", [1, 2])
def test_episodic_sweeps_become_segments(tmp_path, version):
    sweeps = np.stack([synthetic_trace(duration_s=0.5, spike_times_s=[0.1, 0.3], seed=i) for i in range(3)])[..., None]
    path = write_abf(
        tmp_path / "ep.abf",
        sweeps,
        FS,
        mode="episodic",
        version=version,
        data_format="float32",
        sweep_t_starts=[0.0, 1.0, 2.0],
    )
    rec = read_abf(path)
    assert rec.get_num_segments() == 3
    assert [round(rec.get_start_time(s), 6) for s in range(3)] == [0.0, 1.0, 2.0]
    sn = abf_to_snippets(path)
    assert np.bincount(sn.segment_index).tolist() == [2, 2, 2]


def test_event_driven_variable_length_sweeps(tmp_path):
    sweeps = [
        synthetic_trace(duration_s=d, spike_times_s=[0.05], seed=i)[:, None] for i, d in enumerate([0.1, 0.25, 0.4])
    ]
    path = write_abf(
        tmp_path / "ev.abf", sweeps, FS, mode="event-driven", data_format="float32", sweep_t_starts=[0.0, 1.0, 3.0]
    )
    rec = read_abf(path)
    assert [rec.get_num_samples(s) for s in range(3)] == [4000, 10000, 16000]
    assert len(abf_to_snippets(path)) == 3


def test_int16_file_is_within_quantisation(tmp_path):
    x = synthetic_trace(duration_s=0.5, spike_times_s=[0.2], noise_pa=3.0)
    rec = read_abf(write_abf(tmp_path / "i16.abf", x, FS, data_format="int16"))
    gain = rec.get_channel_gains()[0]
    assert np.max(np.abs(rec.get_traces(return_in_uV=True)[:, 0] - x)) <= gain / 2 + 1e-3


def test_one_call_to_analyzer(abf40):
    path, _ = abf40
    analyzer = abf_to_analyzer(path)
    wf = analyzer.get_extension("waveforms")
    assert (wf.nbefore, wf.nafter) == (40, 120)
    assert wf.get_data().shape == (len(SPIKES), 160, 1)
    assert analyzer.sorting.get_property("cell_id").tolist() == ["A240101#001"]
    assert analyzer.sorting.get_unit_spike_train("0").size == len(SPIKES)


# ------------------------------------------------------------------------------------------ bad input
def _one_line_error(exc_type, fn, *args, match=None, **kwargs):
    with pytest.raises(exc_type, match=match) as e:
        fn(*args, **kwargs)
    assert "\n" not in str(e.value) and len(str(e.value)) > 30
    return str(e.value)


def test_not_an_abf_file(tmp_path):
    p = tmp_path / "notes.abf"
    p.write_text("this is a text file, not a recording\n" * 5)
    _one_line_error(AbfError, read_abf, p, match="not an Axon Binary Format file")
    _one_line_error(AbfError, read_abf, tmp_path / "missing.abf", match="no such file")
    (tmp_path / "empty.abf").write_bytes(b"")
    _one_line_error(AbfError, read_abf, tmp_path / "empty.abf", match="truncated or empty")


@pytest.mark.parametrize("version", [1, 2])
def test_truncated_file(abf40, tmp_path, version):
    _, x = abf40
    p = write_abf(tmp_path / f"t{version}.abf", x, FS, version=version)
    data = p.read_bytes()
    for cut in (300, len(data) // 2):
        q = tmp_path / f"cut{cut}.abf"
        q.write_bytes(data[:cut])
        _one_line_error(AbfError, read_abf, q, match="truncated or corrupt")


def test_unsupported_acquisition_mode(abf40, tmp_path):
    _, x = abf40
    p = write_abf(tmp_path / "mode.abf", x, FS, version=1)
    raw = bytearray(p.read_bytes())
    raw[8:10] = np.int16(4).tobytes()  # ABF1 nOperationMode -> 4, high-speed oscilloscope
    p.write_bytes(bytes(raw))
    _one_line_error(AbfError, read_abf, p, match="acquisition mode 4 .*not supported")


def test_constant_channel(tmp_path):
    p = write_abf(tmp_path / "flat.abf", np.full(4000, -20.0, np.float32), FS, data_format="float32")
    _one_line_error(DataError, read_abf, p, match="constant")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_samples(tmp_path, bad):
    x = synthetic_trace(duration_s=0.3)
    x[1234] = bad
    p = write_abf(tmp_path / "nan.abf", x, FS, data_format="float32")
    _one_line_error(DataError, read_abf, p, match="NaN/inf.*sample 1234")


def test_empty_recording_is_refused():

    from spikeinterface_sero.io import validate_recording

    _one_line_error(DataError, validate_recording, numpy_recording(np.zeros((0, 1), np.float32)), match="no samples")


@pytest.mark.parametrize("path", shared_abf_files(), ids=lambda p: p.name)
def test_every_shared_file_gives_snippets_or_one_clear_error(path):
    try:
        sn = abf_to_snippets(path)
    except SeroError as e:
        assert "\n" not in str(e) and path.name in str(e)
        return
    assert sn.waveforms.ndim == 2 and sn.waveforms.shape[1] == 160
    assert np.isfinite(sn.waveforms).all()


def test_cell_ids_name_the_channel_when_the_file_holds_several_cells(tmp_path):
    x = synthetic_trace(duration_s=0.5, spike_times_s=[0.2])
    vm = np.linspace(-60, -59, x.size).astype(np.float32)
    multi = write_abf(tmp_path / "four.abf", np.c_[x, x, x, x], FS, data_format="float32")
    one = abf_to_snippets(multi, channel="1").cell_ids.tolist() + abf_to_snippets(multi, channel="3").cell_ids.tolist()
    assert one == ["four_ch1", "four_ch3"]  # picking one channel at a time gives distinct cells
    single = write_abf(tmp_path / "A1#001.abf", np.c_[vm, x], FS, units=["mV", "pA"], data_format="float32")
    assert abf_to_snippets(single).cell_ids.tolist() == ["A1#001"]  # one current channel: the authors' name
