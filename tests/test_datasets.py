"""Tests of spikeinterface_sero.datasets: the ABF writer (round trips through Neo and SpikeInterface) and
the DRN recording simulator."""

from __future__ import annotations

import datetime
import logging
import warnings

import numpy as np
import pytest

from spikeinterface_sero.datasets import AbfWriteError, abf_sampling_rate, int16_scaling, write_abf
from spikeinterface_sero.errors import AbfError

EPS32 = float(np.finfo(np.float32).eps)


def _neo_read(path):
    from neo.rawio import AxonRawIO

    r = AxonRawIO(str(path))
    r.parse_header()
    segs = []
    for s in range(r.header["nb_segment"][0]):
        raw = r.get_analogsignal_chunk(0, s, stream_index=0)
        segs.append(r.rescale_signal_raw_to_float(raw, dtype="float32", stream_index=0))
    return r, segs


def _si_read(path):
    from spikeinterface.extractors import read_axon

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "mix of voltage and non-voltage units"
        return read_axon(str(path))


def _int16_tol(channel):
    gain, _ = int16_scaling(channel)
    return 0.5 * gain * (1 + 1e-6) + 2 * EPS32 * float(np.nanmax(np.abs(channel)))


# ------------------------------------------------------------------------------------------------ writer
@pytest.mark.parametrize("version", [1, 2])
def test_gapfree_float32_bit_exact(tmp_path, version):
    rng = np.random.default_rng(0)
    x = (rng.normal(0, 5, 3 * 40_000) - 80).astype(np.float32)
    x[100:140] -= 300.0
    p = write_abf(tmp_path / "a.abf", x, 40_000.0, data_format="float32", version=version)
    r, segs = _neo_read(p)
    assert r._sampling_rate == 40_000.0
    assert r.header["nb_segment"] == [1]
    ch = r.header["signal_channels"]
    assert list(ch["name"]) == ["IN 0"] and list(ch["units"]) == ["pA"]
    assert r._axon_info["fFileVersionNumber"] == pytest.approx(1.83 if version == 1 else 2.9)
    assert np.array_equal(segs[0][:, 0], x)

    rec = _si_read(p)
    assert rec.get_sampling_frequency() == 40_000.0
    assert rec.get_num_segments() == 1 and rec.get_num_channels() == 1
    assert list(rec.get_property("physical_unit")) == ["pA"]
    assert np.array_equal(rec.get_traces(return_in_uV=True)[:, 0], x)


@pytest.mark.parametrize("version", [1, 2])
def test_gapfree_int16_within_half_step(tmp_path, version, caplog):
    rng = np.random.default_rng(1)
    x = (rng.normal(0, 5, 2 * 40_000) + 60).astype(np.float32)
    x[5000:5010] = -450.0
    with caplog.at_level(logging.WARNING):
        p = write_abf(tmp_path / "b.abf", x, 40_000.0, data_format="int16", version=version)
        r, segs = _neo_read(p)
    assert "buggy" not in caplog.text  # telegraph fields are real header fields, not data
    assert r.header["signal_channels"]["dtype"][0] == "int16"
    gain, offset = int16_scaling(x)
    assert r.header["signal_channels"]["gain"][0] == pytest.approx(gain, rel=1e-12)
    assert r.header["signal_channels"]["offset"][0] == pytest.approx(offset, abs=1e-9)
    err = np.abs(segs[0][:, 0].astype(np.float64) - x)
    assert err.max() <= _int16_tol(x)
    rec = _si_read(p)
    assert np.abs(rec.get_traces(return_in_uV=True)[:, 0] - x).max() <= _int16_tol(x)


def test_int16_forced_gain_and_clip(tmp_path):
    x = np.linspace(-2000, 2000, 8000)
    with pytest.raises(AbfWriteError, match="int16 range"):
        write_abf(tmp_path / "c.abf", x, 40_000, int16_gain=0.0305, int16_offset=0.0)
    p = write_abf(tmp_path / "c.abf", x, 40_000, int16_gain=0.0305, int16_offset=0.0, clip=True)
    _, segs = _neo_read(p)
    y = segs[0][:, 0]
    assert y.max() == pytest.approx(32767 * int16_scaling(x, 0.0305, 0.0)[0], rel=1e-6)
    inside = np.abs(x) < 900
    g = int16_scaling(x, 0.0305, 0.0)[0]
    assert g == pytest.approx(0.0305, rel=1e-6)
    assert np.abs(y[inside] - x[inside]).max() <= 0.5 * g * (1 + 1e-6) + 2 * EPS32 * 900


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("fmt", ["int16", "float32"])
def test_multichannel_mixed_units(tmp_path, version, fmt):
    rng = np.random.default_rng(2)
    n = 8000
    x = np.stack(
        [rng.normal(-60, 3, n), rng.normal(-200, 30, n), rng.normal(0.1, 0.01, n), np.full(n, 5.0)], axis=1
    ).astype(np.float32)
    names = ["Vm", "Im 1", "I_nA", "const"]
    units = ["mV", "pA", "nA", "A"]
    p = write_abf(
        tmp_path / "m.abf", x, 20_000.0, units=units, channel_names=names, data_format=fmt, version=version
    )
    r, segs = _neo_read(p)
    ch = r.header["signal_channels"]
    assert list(ch["name"]) == names and list(ch["units"]) == units and list(ch["id"]) == ["0", "1", "2", "3"]
    assert r._sampling_rate == 20_000.0
    for c in range(4):
        if fmt == "float32":
            assert np.array_equal(segs[0][:, c], x[:, c])
        else:
            assert np.abs(segs[0][:, c].astype(np.float64) - x[:, c]).max() <= _int16_tol(x[:, c])
    assert np.all(segs[0][:, 3] == np.float32(5.0))  # a constant channel reads back exactly
    rec = _si_read(p)
    assert list(rec.get_property("physical_unit")) == units
    assert list(rec.get_property("channel_name")) == names


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("fmt", ["int16", "float32"])
def test_episodic_multi_sweep(tmp_path, version, fmt):
    rng = np.random.default_rng(3)
    sweeps = rng.normal(0, 10, (5, 4000, 2)).astype(np.float32)
    t_starts = [0.0, 1.0, 2.0, 3.5, 10.0]
    p = write_abf(
        tmp_path / "e.abf",
        sweeps,
        40_000,
        units=["pA", "nA"],
        mode="episodic",
        data_format=fmt,
        version=version,
        sweep_t_starts=t_starts,
    )
    r, segs = _neo_read(p)
    assert r.header["nb_segment"] == [5]
    rec = _si_read(p)
    assert rec.get_num_segments() == 5
    for i in range(5):
        assert rec.get_num_samples(i) == 4000
        assert rec.get_times(i)[0] == pytest.approx(t_starts[i], abs=1e-12)
        got = rec.get_traces(segment_index=i, return_in_uV=True)
        if fmt == "float32":
            assert np.array_equal(got, sweeps[i])
        else:
            for c in range(2):
                assert np.abs(got[:, c].astype(np.float64) - sweeps[i, :, c]).max() <= _int16_tol(
                    sweeps[:, :, c]
                )
    from neo.io import AxonIO

    blk = AxonIO(str(p)).read_block()
    assert len(blk.segments) == 5
    assert float(blk.segments[3].analogsignals[0].t_start.rescale("s")) == pytest.approx(3.5)


@pytest.mark.parametrize("version", [1, 2])
def test_event_driven_variable_length(tmp_path, version):
    rng = np.random.default_rng(4)
    sweeps = [rng.normal(0, 1, n).astype(np.float32) for n in (3000, 5000, 1234)]
    p = write_abf(
        tmp_path / "v.abf", sweeps, 10_000, mode="event-driven", data_format="float32", version=version
    )
    rec = _si_read(p)
    assert [rec.get_num_samples(i) for i in range(3)] == [3000, 5000, 1234]
    assert [rec.get_times(i)[0] for i in range(3)] == pytest.approx([0.0, 0.3, 0.8])
    for i in range(3):
        assert np.array_equal(rec.get_traces(segment_index=i)[:, 0], sweeps[i])
    with pytest.raises(AbfWriteError, match="equal length"):
        write_abf(tmp_path / "w.abf", sweeps, 10_000, mode="episodic")


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("fs", [10_000.0, 20_000.0, 50_000.0, 100_000.0, 30_000.0])
def test_sampling_rates(tmp_path, version, fs):
    x = np.random.default_rng(5).normal(0, 1, (3000, 2)).astype(np.float32)
    p = write_abf(tmp_path / "r.abf", x, fs, data_format="float32", version=version)
    r, segs = _neo_read(p)
    assert r._sampling_rate == abf_sampling_rate(fs, 2, version)
    assert r._sampling_rate == pytest.approx(fs, rel=1e-7)
    if version == 2 and fs != 30_000.0:
        assert r._sampling_rate == fs  # exact whenever 1e6/fs is a float32
    assert _si_read(p).get_sampling_frequency() == r._sampling_rate
    assert np.array_equal(segs[0], x)


def test_40k_exact_in_both_versions():
    for version in (1, 2):
        for n_ch in (1, 2, 4):
            assert abf_sampling_rate(40_000.0, n_ch, version) == 40_000.0
        assert abf_sampling_rate(40_000.0, 3, 2) == 40_000.0


@pytest.mark.parametrize("version", [1, 2])
def test_bad_input_fixtures(tmp_path, version):
    """The writer can make the awkward files other modules must reject or handle."""
    rng = np.random.default_rng(6)
    # NaN / inf (float32 only)
    x = rng.normal(0, 1, 5000).astype(np.float32)
    x[[10, 20, 30]] = [np.nan, np.inf, -np.inf]
    p = write_abf(tmp_path / "nan.abf", x, 40_000, data_format="float32", version=version)
    assert np.array_equal(_si_read(p).get_traces()[:, 0], x, equal_nan=True)
    with pytest.raises(AbfWriteError, match="NaN"):
        write_abf(tmp_path / "nan16.abf", x, 40_000, data_format="int16", version=version)
    # constant channel, int16
    p = write_abf(tmp_path / "const.abf", np.full(5000, -37.5), 40_000, version=version)
    assert np.all(_neo_read(p)[1][0] == np.float32(-37.5))
    # mV only, "A" and "nA" units, empty unit and blank name
    for unit in ("mV", "A", "nA", ""):
        p = write_abf(
            tmp_path / f"u_{unit or 'none'}.abf",
            x[:100].repeat(50),
            40_000,
            units=unit,
            data_format="float32",
            version=version,
        )
        assert list(_neo_read(p)[0].header["signal_channels"]["units"]) == [unit]
    p = write_abf(
        tmp_path / "blank.abf", np.zeros((4000, 2)), 40_000, channel_names=["", "Im"], version=version
    )
    assert list(_neo_read(p)[0].header["signal_channels"]["name"]) == ["ch0", "Im"]
    # "µA" is stored as Windows-1252 µ and read as "uA"
    p = write_abf(tmp_path / "micro.abf", np.zeros(4000), 40_000, units="µA", version=version)
    assert list(_neo_read(p)[0].header["signal_channels"]["units"]) == ["uA"]


def test_header_date_and_errors(tmp_path):
    from neo.io import AxonIO

    when = datetime.datetime(2014, 3, 13, 10, 20, 30)
    for version in (1, 2):
        p = write_abf(
            tmp_path / f"d{version}.abf", np.zeros(4000), 40_000, rec_datetime=when, version=version
        )
        assert AxonIO(str(p)).read_block(lazy=True).rec_datetime == when
    with pytest.raises(AbfError):
        write_abf(tmp_path / "x.abf", np.zeros((0, 1)), 40_000)
    with pytest.raises(ValueError):
        write_abf(tmp_path / "x.abf", np.zeros(100), -1.0)
    with pytest.raises(AbfWriteError, match="10 characters"):
        write_abf(tmp_path / "x.abf", np.zeros(100), 40_000, channel_names=["a very long name"], version=1)
    with pytest.raises(AbfWriteError, match="channel"):
        write_abf(tmp_path / "x.abf", np.zeros((100, 2)), 40_000, units=["pA"])
    with pytest.raises(AbfWriteError, match="episodic"):
        write_abf(tmp_path / "x.abf", [np.zeros(100), np.zeros(100)], 40_000)
