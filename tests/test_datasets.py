"""Tests of spikeinterface_sero.datasets: the ABF writer (round trips through Neo and SpikeInterface) and
the DRN recording simulator."""

from __future__ import annotations

import datetime
import logging
import warnings

import numpy as np
import pytest

from spikeinterface_sero.datasets import (
    CELL_TYPES,
    AbfWriteError,
    SimulatorError,
    abf_sampling_rate,
    dataset_table,
    int16_scaling,
    simulate_dataset,
    simulate_drn_recording,
    spike_waveform,
    write_abf,
)
from spikeinterface_sero.datasets.simulator import VARIED_DAYS
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
    p = write_abf(tmp_path / "m.abf", x, 20_000.0, units=units, channel_names=names, data_format=fmt, version=version)
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
                assert np.abs(got[:, c].astype(np.float64) - sweeps[i, :, c]).max() <= _int16_tol(sweeps[:, :, c])
    from neo.io import AxonIO

    blk = AxonIO(str(p)).read_block()
    assert len(blk.segments) == 5
    assert float(blk.segments[3].analogsignals[0].t_start.rescale("s")) == pytest.approx(3.5)


@pytest.mark.parametrize("version", [1, 2])
def test_event_driven_variable_length(tmp_path, version):
    rng = np.random.default_rng(4)
    sweeps = [rng.normal(0, 1, n).astype(np.float32) for n in (3000, 5000, 1234)]
    p = write_abf(tmp_path / "v.abf", sweeps, 10_000, mode="event-driven", data_format="float32", version=version)
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
    p = write_abf(tmp_path / "blank.abf", np.zeros((4000, 2)), 40_000, channel_names=["", "Im"], version=version)
    assert list(_neo_read(p)[0].header["signal_channels"]["name"]) == ["ch0", "Im"]
    # "µA" is stored as Windows-1252 µ and read as "uA"
    p = write_abf(tmp_path / "micro.abf", np.zeros(4000), 40_000, units="µA", version=version)
    assert list(_neo_read(p)[0].header["signal_channels"]["units"]) == ["uA"]


def test_header_date_and_errors(tmp_path):
    from neo.io import AxonIO

    when = datetime.datetime(2014, 3, 13, 10, 20, 30)
    for version in (1, 2):
        p = write_abf(tmp_path / f"d{version}.abf", np.zeros(4000), 40_000, rec_datetime=when, version=version)
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


# ------------------------------------------------------------------------------------------------ simulator
UDI_RANGE = {
    "serotonergic": (1.0, 2.0),
    "atypical_serotonergic": (0.6, 1.1),
    "non_serotonergic": (0.3, 0.8),
}


def _mean_spike_udi_ms(sim):
    """UDI of the mean spike: trough -> highest point after it, within 3 ms (the paper's window)."""
    fs = sim.sampling_frequency
    x = sim.traces.astype(np.float64)
    pre, post = int(1.5e-3 * fs), int(3e-3 * fs)
    peaks = sim.peak_samples[(sim.peak_samples > pre) & (sim.peak_samples < x.size - post)]
    snips = np.stack([x[p - pre : p + post] for p in peaks])
    snips -= np.median(snips[:, : int(0.5e-3 * fs)], axis=1, keepdims=True)
    m = snips.mean(axis=0)
    i0 = int(np.argmin(m))
    return (int(np.argmax(m[i0:])) * 1000.0 / fs), m


@pytest.mark.parametrize("cell_type", CELL_TYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_simulated_cell_matches_its_parameters(cell_type, seed):
    sim = simulate_drn_recording(cell_type, duration_s=40.0, seed=seed)
    p = sim.params
    assert sim.traces.dtype == np.float32 and sim.traces.shape == (40 * 40_000,)
    assert sim.sampling_frequency == 40_000.0
    assert sim.label == ("non_serotonergic" if cell_type == "non_serotonergic" else "serotonergic")
    # spike count follows the drawn rate
    expected = p["firing_rate_hz"] * 40.0
    assert abs(len(sim.peak_samples) - expected) <= 0.25 * expected + 3
    assert p["n_spikes"] == len(sim.peak_samples) == len(sim.spike_samples)
    # never closer than the refractory period (peak samples may move by one sample with the jitter)
    assert np.diff(sim.peak_samples).min() >= p["refractory_ms"] * 40 - 2
    # triggers come shortly before the negative peaks
    lead = sim.peak_samples - sim.spike_samples
    assert lead.min() >= 0 and lead.max() <= 40
    # the spike width (UDI) of the mean spike is the drawn one, inside the type's range
    lo, hi = UDI_RANGE[cell_type]
    assert lo <= p["udi_ms"] <= hi
    udi, mean_spike = _mean_spike_udi_ms(sim)
    # a broad SER positive phase is flat, so noise moves its maximum: tolerance grows with the width
    tol = 0.1 + 0.1 * p["udi_ms"]
    assert udi == pytest.approx(p["udi_ms"], abs=tol)
    assert lo - tol <= udi <= hi + tol
    # negative-going, well beyond the -50 pA trigger level
    assert mean_spike.min() < -60 and 0 < mean_spike.max() < -mean_spike.min()


def test_firing_statistics_by_type():
    stats = {ct: [simulate_drn_recording(ct, 20.0, seed=s).params for s in range(6)] for ct in CELL_TYPES}
    ser = stats["serotonergic"]
    nser = stats["non_serotonergic"]
    assert all(0.4 <= p["firing_rate_hz"] <= 3.0 and p["cv_isi"] < 0.5 for p in ser)
    assert all(3.0 <= p["firing_rate_hz"] <= 15.0 and 0.5 <= p["cv_isi"] <= 1.2 for p in nser)
    assert all(2.0 <= p["firing_rate_hz"] <= 8.0 for p in stats["atypical_serotonergic"])
    assert all(80 <= p["amplitude_pa"] <= 600 and 3 <= p["noise_sd_pa"] <= 10 for v in stats.values() for p in v)
    assert np.median([p["measured_cv_isi"] for p in ser]) < np.median([p["measured_cv_isi"] for p in nser])


def test_atypical_keeps_a_serotonergic_shape_signature():
    """At the same UDI, atypical SER spikes repolarise more slowly (asymmetric positive phase) than NSER
    spikes: the simulator's documented modelling assumption."""
    t = np.arange(-1.0, 3.0, 0.01)

    def asymmetry(w):
        i0 = int(np.argmin(w))
        i1 = i0 + int(np.argmax(w[i0:]))
        half = 0.5 * w[i1]
        decay = np.argmax(w[i1:] < half)
        rise = np.argmax(w[i0:i1][::-1] < half)
        return decay / rise

    aty = [asymmetry(spike_waveform(t, "atypical_serotonergic", seed=s, udi_ms=0.7)) for s in range(12)]
    nser = [asymmetry(spike_waveform(t, "non_serotonergic", seed=s, udi_ms=0.7)) for s in range(12)]
    assert np.median(aty) > 1.3 * np.median(nser)
    w = spike_waveform(t, "serotonergic", seed=0, amplitude_pa=250.0, udi_ms=1.5)
    assert w.min() == pytest.approx(-250.0, rel=1e-3)
    assert (int(np.argmax(w[np.argmin(w) :]))) * 0.01 == pytest.approx(1.5, abs=0.011)


def test_reproducible_and_seed_dependent():
    a = simulate_drn_recording("ser", 5.0, seed=42)
    b = simulate_drn_recording("serotonergic", 5.0, seed=42)
    c = simulate_drn_recording("serotonergic", 5.0, seed=43)
    assert np.array_equal(a.traces, b.traces) and np.array_equal(a.peak_samples, b.peak_samples)
    assert a.params == b.params
    assert not np.array_equal(a.traces, c.traces)
    assert a.params["udi_ms"] != c.params["udi_ms"]


def test_overrides_and_clean_trace():
    sim = simulate_drn_recording(
        "nser",
        4.0,
        seed=1,
        noise_sd_pa=0,
        drift_pa=0,
        hum_pa=0,
        holding_pa=-20.0,
        firing_rate_hz=5.0,
        amplitude_pa=300.0,
        amplitude_jitter=0.0,
        shape_jitter=0.0,
        udi_ms=0.5,
    )
    x = sim.traces
    assert sim.params["firing_rate_hz"] == 5.0 and sim.params["udi_ms"] == 0.5
    assert np.median(x) == pytest.approx(-20.0, abs=0.5)
    # -20 pA holding - 300 pA peak; the sampled trough misses the continuous one by <= half a sample
    assert np.all((x[sim.peak_samples] >= -320.5) & (x[sim.peak_samples] <= -270.0))
    udi, _ = _mean_spike_udi_ms(sim)
    assert udi == pytest.approx(0.5, abs=0.026)
    with pytest.raises(SimulatorError, match="unknown simulator parameter"):
        simulate_drn_recording("ser", 1.0, seed=0, firing_rate=2.0)
    with pytest.raises(SimulatorError, match="cell_type"):
        simulate_drn_recording("pyramidal", 1.0)
    with pytest.raises(ValueError):
        simulate_drn_recording("ser", 1.0, udi_ms=-1.0)
    silent = simulate_drn_recording("ser", 1.0, seed=0, firing_rate_hz=0.0)
    assert silent.peak_samples.size == 0 and np.isfinite(silent.traces).all()


def test_other_sampling_rate():
    sim = simulate_drn_recording("ser", 10.0, sampling_frequency=20_000.0, seed=3, firing_rate_hz=2.0)
    assert sim.traces.size == 200_000 and sim.sampling_frequency == 20_000.0
    udi, _ = _mean_spike_udi_ms(sim)
    assert udi == pytest.approx(sim.params["udi_ms"], abs=0.2)


def test_simulation_is_fast():
    import time

    simulate_drn_recording("nser", 1.0, seed=0)  # warm imports
    # CPU time of this process (not wall time), so other jobs on the machine do not make it flaky;
    # measured ~0.2 s for 60 s at 40 kHz with 900 spikes
    t0 = time.process_time()
    sim = simulate_drn_recording("non_serotonergic", 60.0, seed=0, firing_rate_hz=15.0)
    assert time.process_time() - t0 < 1.0
    assert sim.traces.size == 2_400_000


def test_to_recording_with_sorting_analyzer():
    import spikeinterface.core as sc

    sim = simulate_drn_recording("ser", 20.0, seed=5, firing_rate_hz=2.0)
    rec = sim.to_recording()
    assert rec.get_num_channels() == 1 and list(rec.channel_ids) == ["0"]
    assert list(rec.get_property("physical_unit")) == ["pA"]
    assert rec.get_channel_gains()[0] == 1.0 and rec.get_channel_offsets()[0] == 0.0
    assert rec.has_probe()
    assert np.array_equal(rec.get_traces(return_in_uV=True)[:, 0], sim.traces)
    sorting = sc.NumpySorting.from_samples_and_labels(
        [sim.peak_samples],
        [np.zeros(sim.peak_samples.size, dtype=int)],
        rec.sampling_frequency,
        unit_ids=["0"],
    )
    analyzer = sc.create_sorting_analyzer(sorting, rec, format="memory", sparse=False)
    analyzer.compute(["random_spikes", "templates"], verbose=False)
    template = analyzer.get_extension("templates").get_templates(unit_ids=["0"])[0, :, 0]
    baseline = np.median(sim.traces)
    assert template.min() - baseline == pytest.approx(-sim.params["amplitude_pa"], rel=0.2)


def test_simulate_dataset_writes_abf_and_labels(tmp_path):
    import pandas as pd

    counts = {"serotonergic": 3, "atypical_serotonergic": 1, "non_serotonergic": 3}
    recs = simulate_dataset(counts, duration_s=3.0, seed=7, out_dir=tmp_path, n_groups=3, data_format="int16")
    assert len(recs) == 7
    labels = pd.read_csv(tmp_path / "labels.csv", dtype=str)
    assert list(labels.columns) == ["file", "label", "channel", "group", "cell_type"]
    assert sorted(labels["cell_type"].value_counts().to_dict().items()) == sorted(counts.items())
    assert set(labels["label"]) == {"serotonergic", "non_serotonergic"}
    assert (labels["channel"] == "0").all()
    assert labels["group"].nunique() == 3
    for _, grp in labels.groupby("group"):
        assert set(grp["label"]) == {"serotonergic", "non_serotonergic"}  # every day has both kinds
    for rec, row in zip(recs, labels.itertuples()):
        assert rec.file == tmp_path / row.file and rec.group == row.group and rec.label == row.label
        si_rec = _si_read(rec.file)
        assert si_rec.get_sampling_frequency() == 40_000.0
        assert list(si_rec.get_property("physical_unit")) == ["pA"]
        got = si_rec.get_traces(return_in_uV=True)[:, 0].astype(np.float64)
        assert np.abs(got - rec.traces).max() <= _int16_tol(rec.traces)
    assert (tmp_path / "params.csv").is_file()
    table = dataset_table(recs)
    assert list(table.columns[:5]) == ["file", "label", "channel", "group", "cell_type"]
    # deterministic
    again = simulate_dataset(counts, duration_s=3.0, seed=7, n_groups=3)
    assert all(np.array_equal(a.traces, b.traces) for a, b in zip(recs, again))
    assert [a.cell_id for a in again] == [r.cell_id for r in recs]


@pytest.mark.parametrize("amplitude_pa", [120.0, 400.0, 800.0])
def test_ground_truth_trigger_is_the_detectors_minus_50_pa_crossing(amplitude_pa):
    """The truth trigger is the -50 pA crossing at every amplitude (it was half the peak above 100 pA)."""
    from spikeinterface_sero.snippets import recording_to_snippets

    sim = simulate_drn_recording(
        "serotonergic",
        duration_s=10.0,
        seed=2,
        amplitude_pa=amplitude_pa,
        amplitude_jitter=0.0,
        noise_sd_pa=0.0,
        drift_pa=0.0,
        hum_pa=0.0,
        holding_pa=0.0,
    )
    detected = recording_to_snippets(sim.to_recording(), baseline_window_ms=None).trigger_samples
    assert len(detected) == len(sim.spike_samples) > 5
    np.testing.assert_array_equal(np.sort(detected), np.sort(sim.spike_samples))


def test_one_count_means_that_many_cells_of_every_type():
    recordings = simulate_dataset(2, duration_s=1.0, seed=0)
    assert sorted(r.cell_type for r in recordings) == sorted(
        ["serotonergic", "atypical_serotonergic", "non_serotonergic"] * 2
    )


# ------------------------------------------------------------------------------- day-to-day variety (issue 13)
FS = 40_000.0
QUIET = dict(noise_sd_pa=0.0, drift_pa=0.0, hum_pa=0.0, holding_pa=0.0)


def _noise_only(seed=0, **params):
    from scipy.signal import welch

    sim = simulate_drn_recording("nser", 20.0, seed=seed, firing_rate_hz=0.0, drift_pa=0.0, **params)
    return welch(sim.traces, fs=FS, nperseg=1 << 15)


# ---------------------------------------------------------------------------------------------- simulator
def test_hum_appears_in_the_spectrum_only_when_asked():
    f, with_hum = _noise_only(hum_pa=5.0, hum_hz=60.0, noise_sd_pa=3.0)
    _, without = _noise_only(hum_pa=0.0, hum_hz=60.0, noise_sd_pa=3.0)
    at_60 = np.argmin(np.abs(f - 60.0))
    neighbours = (np.abs(f - 60.0) > 5) & (np.abs(f - 60.0) < 30)
    assert with_hum[at_60] > 30 * np.median(with_hum[neighbours])
    assert without[at_60] < 3 * np.median(without[neighbours])


def test_one_over_f_power_follows_the_knee_and_the_slope():
    def low_to_high(**params):
        f, power = _noise_only(noise_sd_pa=5.0, hum_pa=0.0, lowpass_hz=10_000.0, **params)
        return power[(f > 5) & (f < 20)].mean() / power[(f > 3000) & (f < 5000)].mean()

    white = low_to_high(noise_knee_hz=0.0)
    assert white == pytest.approx(1.0, rel=0.3)
    assert low_to_high(noise_knee_hz=1000.0) > 20 * white
    assert low_to_high(noise_knee_hz=1000.0, noise_exponent=1.6) > 3 * low_to_high(
        noise_knee_hz=1000.0, noise_exponent=0.6
    )


def test_drift_is_present_when_asked():
    def block_spread(drift_pa):
        sim = simulate_drn_recording(
            "nser", 30.0, seed=4, firing_rate_hz=0.0, noise_sd_pa=3.0, hum_pa=0.0, drift_pa=drift_pa
        )
        return sim.traces.reshape(30, -1).mean(axis=1).std()

    assert block_spread(40.0) > 10.0 > 1.0 > block_spread(0.0)


def _rise_time_ms(sim):
    """20-80 % rise time of the negative deflection, mean over spikes (noise-free recording), linear
    interpolation between samples."""
    times = []
    for peak in sim.peak_samples:
        window = sim.traces[peak - 60 : peak + 1].astype(np.float64)
        depth = -window[-1]
        crossings = []
        for level in (0.2, 0.8):  # the last sample above -level * depth before the peak
            i = np.flatnonzero(window > -level * depth)[-1]
            crossings.append(i + (window[i] + level * depth) / (window[i] - window[i + 1]))
        times.append((crossings[1] - crossings[0]) * 1000.0 / FS)
    return float(np.mean(times))


def test_electrode_filtering_slows_the_rise_and_the_truth_stays_the_minus_50_pa_crossing():
    from spikeinterface_sero.snippets import recording_to_snippets

    plain = simulate_drn_recording("nser", 10.0, seed=3, amplitude_pa=200.0, firing_rate_hz=5.0, **QUIET)
    filtered = simulate_drn_recording(
        "nser", 10.0, seed=3, amplitude_pa=200.0, firing_rate_hz=5.0, electrode_filter_hz=2000.0, **QUIET
    )
    assert _rise_time_ms(filtered) > 1.3 * _rise_time_ms(plain)
    # a filtered peak is shallower and later than the unfiltered one
    assert filtered.traces.min() > plain.traces.min()
    for sim in (plain, filtered):
        detected = recording_to_snippets(sim.to_recording(), baseline_window_ms=None).trigger_samples
        np.testing.assert_array_equal(np.sort(detected), np.sort(sim.spike_samples))
        assert np.all(sim.traces[sim.spike_samples] <= -50.0) and np.all(sim.traces[sim.spike_samples - 1] > -50.0)


def test_amplitude_drifts_within_the_recording():
    sim = simulate_drn_recording(
        "ser", 60.0, seed=1, firing_rate_hz=2.0, amplitude_jitter=0.0, amplitude_drift=-0.4, **QUIET
    )
    depth = -sim.traces[sim.peak_samples]
    first, last = depth[: len(depth) // 5].mean(), depth[-len(depth) // 5 :].mean()
    assert last / first == pytest.approx(0.6 / 0.92, rel=0.08)  # means of the first and last fifths


def test_overlapping_events_occur_at_the_set_rate():
    clean = simulate_drn_recording("nser", 40.0, seed=5, firing_rate_hz=10.0, overlap_fraction=0.0)
    assert clean.overlap_samples.size == 0
    for fraction in (0.05, 0.2):
        sim = simulate_drn_recording("nser", 40.0, seed=5, firing_rate_hz=10.0, overlap_fraction=fraction)
        n = sim.params["n_spikes"]
        assert abs(len(sim.overlap_samples) - fraction * n) <= 4 * np.sqrt(n * fraction * (1 - fraction)) + 2
        nearest = np.abs(sim.overlap_samples[:, None] - sim.peak_samples[None, :]).min(axis=1)
        assert nearest.max() <= 3.2e-3 * FS  # each overlaps a spike's window (-1..+3 ms)
        # the events are another cell's: the cell's own spikes and their truth trigger do not change
        np.testing.assert_array_equal(sim.spike_samples, clean.spike_samples)
        assert not np.array_equal(sim.traces, clean.traces)


def test_varied_days_differ_and_cells_of_a_day_share_them():
    recordings = simulate_dataset(2, duration_s=2.0, seed=3, n_groups=3, day_ranges=VARIED_DAYS, day_prefix="d")
    by_day = {}
    for r in recordings:
        by_day.setdefault(r.group, []).append(r.params)
    assert sorted(by_day) == ["d01", "d02", "d03"]
    for key, value in VARIED_DAYS.items():
        for params in by_day.values():
            for p in params:
                if isinstance(value, list):
                    assert p[key] in value
                else:
                    assert 0.85 * value[0] - 1e-9 <= p[key] <= 1.15 * value[1] + 1e-9
    filters = {g: np.mean([p["electrode_filter_hz"] for p in ps]) for g, ps in by_day.items()}
    assert max(filters.values()) > 1.1 * min(filters.values())  # the days differ
    for ps in by_day.values():  # within a day up to +-15 %
        values = [p["electrode_filter_hz"] for p in ps]
        assert max(values) / min(values) <= 1.15 / 0.85 + 1e-9
    with pytest.raises(SimulatorError, match="unknown simulator parameter"):
        simulate_dataset(1, duration_s=1.0, day_ranges={"noise": (1.0, 2.0)})
    with pytest.raises(SimulatorError, match="range"):
        simulate_dataset(1, duration_s=1.0, day_ranges={"noise_sd_pa": (5.0, 1.0)})


def test_type_ranges_widen_one_cell_type_only():
    recordings = simulate_dataset(
        {"serotonergic": 3, "non_serotonergic": 6},
        duration_s=1.0,
        seed=2,
        n_groups=2,
        type_ranges={"nser": {"udi_ms": (0.9, 1.0)}},
    )
    for r in recordings:
        if r.cell_type == "non_serotonergic":
            assert 0.9 <= r.params["udi_ms"] <= 1.0  # outside the type's own 0.3-0.8 ms
        else:
            assert 1.0 <= r.params["udi_ms"] <= 2.0
    with pytest.raises(SimulatorError, match="type_ranges"):
        simulate_dataset(1, duration_s=1.0, type_ranges={"nser": {"width": (1.0, 2.0)}})


# ------------------------------------------------------------------------------ the second family (membrane rig)
def test_membrane_cell_is_detected_where_its_truth_says():
    from spikeinterface_sero.datasets import simulate_membrane_recording
    from spikeinterface_sero.snippets import recording_to_snippets

    quiet = dict(pink_sd_pa=0.0, white_sd_pa=0.0, hum_pa=0.0, holding_pa=0.0, amplitude_jitter=0.0)
    for cell_type in CELL_TYPES:
        sim = simulate_membrane_recording(cell_type, duration_s=10.0, seed=4, amplitude_pa=300.0, **quiet)
        assert sim.params["family"] == "membrane" and sim.traces.dtype == np.float32
        assert sim.label == ("non_serotonergic" if cell_type == "non_serotonergic" else "serotonergic")
        lead = sim.peak_samples - sim.spike_samples
        assert len(sim.spike_samples) > 5 and lead.min() >= 0 and lead.max() <= 40
        detected = recording_to_snippets(sim.to_recording(), baseline_window_ms=None).trigger_samples
        np.testing.assert_array_equal(np.sort(detected), np.sort(sim.spike_samples))


def test_membrane_firing_follows_its_type():
    from spikeinterface_sero.datasets import simulate_membrane_recording

    cv = {
        t: np.mean([simulate_membrane_recording(t, 40.0, seed=s).params["measured_cv_isi"] for s in range(4)])
        for t in CELL_TYPES
    }
    rate = {
        t: np.mean([simulate_membrane_recording(t, 40.0, seed=s).params["measured_rate_hz"] for s in range(4)])
        for t in CELL_TYPES
    }
    assert cv["serotonergic"] < 0.4 < cv["non_serotonergic"] and cv["atypical_serotonergic"] > 0.4  # NSER-like firing
    assert rate["serotonergic"] < 3.0 < rate["atypical_serotonergic"]


def _normalised_shapes(waveform, seeds):
    t_ms = (np.arange(160) - 50) / 40.0
    shapes, is_ser = [], []
    for cell_type in CELL_TYPES:
        for seed in seeds:
            w = waveform(t_ms, cell_type, seed=seed)
            shapes.append((w - w.mean()) / w.std())
            is_ser.append(cell_type != "non_serotonergic")
    return np.array(shapes), np.array(is_ser)


def test_the_second_family_has_another_class_boundary():
    """A shape boundary learnt on the first family is at chance on the second, and the reverse; each family is
    separable on its own: the families are different rigs, not re-parameterisations."""
    from sklearn.linear_model import LogisticRegression

    from spikeinterface_sero.datasets import membrane_spike_waveform

    def balanced(model, x, y):
        predicted = model.predict(x)
        return 0.5 * ((predicted[y] == 1).mean() + (predicted[~y] == 0).mean())

    first, first_y = _normalised_shapes(spike_waveform, range(12))
    first_test, first_test_y = _normalised_shapes(spike_waveform, range(100, 108))
    second, second_y = _normalised_shapes(membrane_spike_waveform, range(12))
    second_test, second_test_y = _normalised_shapes(membrane_spike_waveform, range(100, 108))
    on_first = LogisticRegression(max_iter=2000).fit(first, first_y)
    on_second = LogisticRegression(max_iter=2000).fit(second, second_y)
    assert balanced(on_first, first_test, first_test_y) >= 0.95
    assert balanced(on_second, second_test, second_test_y) >= 0.9
    assert balanced(on_first, second_test, second_test_y) <= 0.7
    assert balanced(on_second, first_test, first_test_y) <= 0.7


def test_membrane_dataset_writes_days_abf_and_labels(tmp_path):
    import pandas as pd

    from spikeinterface_sero.datasets import simulate_membrane_dataset

    counts = {"serotonergic": 2, "atypical_serotonergic": 1, "non_serotonergic": 3}
    recs = simulate_membrane_dataset(counts, duration_s=2.0, seed=3, out_dir=tmp_path, n_days=2)
    labels = pd.read_csv(tmp_path / "labels.csv", dtype=str)
    assert list(labels.columns) == ["file", "label", "channel", "group", "cell_type"]
    assert sorted(labels["cell_type"].value_counts().to_dict().items()) == sorted(counts.items())
    assert sorted(labels["group"].unique()) == ["rig2day01", "rig2day02"]
    filters = {day: [r.params["filter_hz"] for r in recs if r.group == day] for day in ("rig2day01", "rig2day02")}
    assert abs(np.mean(filters["rig2day01"]) - np.mean(filters["rig2day02"])) > 0  # days differ
    for rec in recs:
        got = _si_read(rec.file).get_traces(return_in_uV=True)[:, 0].astype(np.float64)
        assert np.abs(got - rec.traces).max() <= _int16_tol(rec.traces)
    again = simulate_membrane_dataset(counts, duration_s=2.0, seed=3, n_days=2)
    assert all(np.array_equal(a.traces, b.traces) for a, b in zip(recs, again))
    default = simulate_membrane_dataset(duration_s=0.5, seed=0)
    ser = [r for r in default if r.label == "serotonergic"]
    assert len(default) == 60 and sum(r.cell_type == "atypical_serotonergic" for r in ser) / len(ser) == 0.3
    with pytest.raises(SimulatorError, match="unknown membrane parameter"):
        simulate_membrane_dataset(counts, duration_s=1.0, seed=0, filter_khz=3.0)
