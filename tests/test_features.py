"""Tests of spikeinterface_sero.features: Elephant firing features, UDI, classical criteria, typing."""

from __future__ import annotations

import warnings

import neo
import numpy as np
import pandas as pd
import pytest
import quantities as pq
import spikeinterface.core as sc
from elephant import statistics as elephant_statistics
from elephant.waveform_features import waveform_width

from spikeinterface_sero.errors import DataError, ParameterError, SeroError, SnippetError
from spikeinterface_sero.features import (
    DEFAULT_MAX_CV,
    DEFAULT_MAX_RATE_HZ,
    DEFAULT_MIN_UDI_MS,
    FEATURE_COLUMNS,
    SERO_TYPES,
    add_sero_type,
    cell_features,
    criteria_classify,
    features_from_sorting,
    features_table,
    firing_features,
    sero_type,
    spike_trains_for_cell,
    udi_ms,
    udi_per_spike_ms,
)

FS = 40_000.0
DT_MS = 1000.0 / FS  # one sample: 0.025 ms
ONE_SAMPLE = DT_MS + 1e-9  # one sample, with room for float rounding


# ------------------------------------------------------------------------------------------------
# synthetic data
# ------------------------------------------------------------------------------------------------
def _bump(t, center, half_width):
    """Raised-cosine lobe: exactly 0 outside center +- half_width, maximum 1 at center."""
    u = (t - center) / half_width
    return np.where(np.abs(u) < 1, 0.5 * (1 + np.cos(np.pi * u)), 0.0)


def action_currents(udi, n=1, trough_ms=1.1, neg_amp=200.0, pos_amp=60.0, noise=0.0, jitter_ms=0.0, seed=0):
    """(n, 160) negative-going action currents in pA: a fast negative lobe at ``trough_ms`` and a
    smaller, slower positive lobe ``udi`` ms later (lobes do not overlap, so the extrema are exact)."""
    rng = np.random.default_rng(seed)
    t = np.arange(160) / FS * 1000.0  # ms
    w_neg = min(0.15, 0.45 * udi)
    w_pos = min(0.6, udi - w_neg - 0.01)
    out = np.empty((n, 160))
    for i in range(n):
        t0 = trough_ms + (rng.normal(0, jitter_ms) if jitter_ms else 0.0)
        out[i] = -neg_amp * _bump(t, t0, w_neg) + pos_amp * _bump(t, t0 + udi, w_pos)
    if noise:
        out += rng.normal(0, noise, out.shape)
    return out.astype(np.float32)


def one_segment(times, t_stop, t_start=0.0):
    return spike_trains_for_cell([np.asarray(times, float)], [t_start], [t_stop])


# ------------------------------------------------------------------------------------------------
# UDI
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("udi", [0.5, 1.5])
@pytest.mark.parametrize("trough_ms", [1.1, 1.1123])  # on and off the sample grid
def test_udi_of_clean_action_current_within_one_sample(udi, trough_ms):
    x = action_currents(udi, n=3, trough_ms=trough_ms)
    for method in ("mean", "median"):
        assert abs(udi_ms(x, FS, method=method) - udi) <= ONE_SAMPLE
    assert np.all(np.abs(udi_per_spike_ms(x, FS) - udi) <= ONE_SAMPLE)


@pytest.mark.parametrize("udi", [0.5, 1.5])
def test_udi_of_noisy_jittered_snippets(udi):
    # noise on the flat top of the slow positive phase moves its argmax: allow two samples
    x = action_currents(udi, n=300, noise=8.0, jitter_ms=0.05, seed=1)
    assert abs(udi_ms(x, FS) - udi) <= 2 * ONE_SAMPLE
    assert abs(udi_ms(x, FS, method="median") - udi) <= 2 * ONE_SAMPLE
    # the 0.5 ms and 1.5 ms cells are told apart by a wide margin
    assert udi_ms(action_currents(1.5, n=50, noise=8.0), FS) - udi_ms(action_currents(0.5, n=50, noise=8.0), FS) > 0.9


def test_mean_method_is_unbiased_when_the_positive_phase_is_buried_in_noise():
    # a narrow spike whose positive phase (10 pA) is below the per-sample noise (20 pA): per-spike
    # argmax lands anywhere after the trough, so the median of per-spike widths is far too wide
    # (it would call a narrow-spiking cell "wide"); the mean snippet averages the noise out first.
    x = action_currents(0.5, n=300, pos_amp=10.0, noise=20.0, seed=6)
    assert abs(udi_ms(x, FS, method="mean") - 0.5) <= 0.1
    assert udi_ms(x, FS, method="median") > 0.7


def test_udi_uses_the_sampling_frequency():
    x = action_currents(1.0, n=2)  # 40 samples
    assert udi_ms(x, FS) == pytest.approx(1.0)
    assert udi_ms(x, 20_000.0) == pytest.approx(2.0)  # same samples read at half the rate


def test_udi_per_spike_matches_elephant_waveform_width():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (400, 160)).cumsum(axis=1)  # random walks: arbitrary trough/peak places
    x[:5] = action_currents(0.8, n=5)
    ours = udi_per_spike_ms(x, FS)
    ref = np.array([waveform_width(row) for row in x], float) * DT_MS
    ref[ref == 0] = np.nan  # no positive phase after the trough -> NaN by design
    np.testing.assert_allclose(ours, ref, equal_nan=True)
    # and the mean method is elephant's width of the mean snippet
    assert udi_ms(x, FS) == pytest.approx(waveform_width(x.mean(axis=0)) * DT_MS)


def test_polarity_positive_on_flipped_snippets_gives_same_udi():
    x = action_currents(1.25, n=40, noise=5.0, seed=2)
    ref = udi_ms(x, FS)
    assert udi_ms(-x, FS, polarity="positive") == ref
    assert udi_ms(-x, FS, polarity="auto") == ref
    assert udi_ms(x, FS, polarity="auto") == ref
    np.testing.assert_array_equal(udi_per_spike_ms(-x, FS, polarity="positive"), udi_per_spike_ms(x, FS))
    # reading flipped snippets with the wrong polarity measures something else
    assert udi_ms(-x, FS, polarity="negative") != pytest.approx(ref, abs=ONE_SAMPLE)


def test_udi_accepts_one_channel_layouts_and_quantities():
    x = action_currents(0.9, n=4)
    ref = udi_ms(x, FS)
    assert udi_ms(x[:, :, None], FS) == ref  # SpikeInterface (n, samples, channels)
    assert udi_ms(x[:, None, :], FS) == ref  # Neo waveforms (n, channels, samples)
    assert udi_ms(x[0], FS) == ref  # one snippet
    assert udi_ms(x * pq.pA, FS) == ref


def test_udi_undefined_and_bad_input():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(udi_ms(np.empty((0, 160)), FS))
        assert udi_per_spike_ms(np.empty((0, 160)), FS).shape == (0,)
        assert np.isnan(udi_ms(np.zeros((3, 160)), FS))  # flat: no positive phase after a trough
    bad = action_currents(1.0, n=2)
    bad[0, 10] = np.nan
    with pytest.raises(SnippetError):
        udi_ms(bad, FS)
    with pytest.raises(ParameterError, match="polarity"):
        udi_ms(action_currents(1.0), FS, polarity="down")
    with pytest.raises(ParameterError, match="method"):
        udi_ms(action_currents(1.0), FS, method="max")
    with pytest.raises(SnippetError):
        udi_ms(np.zeros((2, 3, 160)), FS)
    with pytest.raises(ParameterError, match="sampling_frequency"):
        udi_ms(action_currents(1.0), 0)


def test_udi_is_vectorised_fast():
    x = np.tile(action_currents(1.0, n=1), (50_000, 1))
    widths = udi_per_spike_ms(x, FS)  # 50 000 snippets: one numpy pass, well under a second
    assert widths.shape == (50_000,) and np.all(widths == pytest.approx(1.0))


# ------------------------------------------------------------------------------------------------
# firing features
# ------------------------------------------------------------------------------------------------
def test_poisson_vs_regular_cv_and_lv():
    rng = np.random.default_rng(4)
    poisson = np.cumsum(rng.exponential(0.2, 3000))  # 5 Hz Poisson
    regular = np.arange(1, 1201) * 0.5 + rng.normal(0, 0.01, 1200)  # 2 Hz pacemaker, 10 ms jitter
    fp = firing_features(one_segment(poisson, poisson[-1] + 0.1))
    fr = firing_features(one_segment(regular, 601.0))
    assert fp["cv_isi"] == pytest.approx(1.0, abs=0.08)
    assert fp["lv"] == pytest.approx(1.0, abs=0.1)
    assert fr["cv_isi"] < 0.05 and fr["lv"] < 0.01
    assert fr["firing_rate_hz"] == pytest.approx(1200 / 601.0)
    assert fp["n_isi"] == 2999 and fr["n_isi"] == 1199


def test_two_segments_rate_is_total_over_total_and_no_cross_gap_isi():
    # sweep A: 10 s, spikes every 1 s; sweep B starts 90 s later: 30 s, spikes every 1 s
    a = np.arange(10) + 0.5
    b = 100.0 + np.arange(30) + 0.5
    trains = spike_trains_for_cell([a, b], [0.0, 100.0], [10.0, 130.0])
    f = firing_features(trains)
    assert f["firing_rate_hz"] == pytest.approx(40 / 40.0)  # 40 spikes / 40 s recorded, not / 130 s
    assert f["n_isi"] == 9 + 29
    assert f["cv_isi"] == pytest.approx(0.0, abs=1e-9)  # a 90.5 s cross-gap ISI would give CV ~ 2.3
    assert f["lv"] == pytest.approx(0.0, abs=1e-9)
    # the same spikes wrongly merged into one train: the cross-gap ISI dominates
    merged = firing_features(one_segment(np.concatenate([a, b]), 130.0))
    assert merged["cv_isi"] > 2.0 and merged["lv"] > 0.05

    # rate is not the mean of per-sweep rates when sweeps differ in length
    c = spike_trains_for_cell([np.arange(10) + 0.5, 20 + np.array([1.0, 11.0, 21.0])], [0, 20], [10, 50])
    assert firing_features(c)["firing_rate_hz"] == pytest.approx(13 / 40)


def test_lv_pairs_only_within_a_segment():
    # each sweep perfectly regular, at different rates: LV = 0 (no pair straddles the gap),
    # while the pooled CV of ISIs sees both interval lengths
    a = np.arange(6) * 1.0 + 0.1
    b = 50 + np.arange(6) * 2.0 + 0.1
    f = firing_features(spike_trains_for_cell([a, b], None, [10.0, 70.0]))
    assert f["lv"] == pytest.approx(0.0, abs=1e-12)
    assert f["cv_isi"] == pytest.approx(np.std([1.0] * 5 + [2.0] * 5) / 1.5)


@pytest.mark.parametrize(
    "times, expect",
    [
        ([], {"firing_rate_hz": 0.0, "n_isi": 0, "n_spikes": 0}),
        ([1.0], {"firing_rate_hz": 0.1, "n_isi": 0, "n_spikes": 1}),
        ([1.0, 2.0], {"firing_rate_hz": 0.2, "n_isi": 1, "n_spikes": 2}),
    ],
)
def test_zero_one_two_spike_cells_give_nan_without_warnings(times, expect):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trains = one_segment(times, 10.0)
        snippets = action_currents(1.2, n=len(times)) if times else np.empty((0, 160))
        f = cell_features(trains, snippets)
    assert np.isnan(f["cv_isi"]) and np.isnan(f["lv"])
    for key, value in expect.items():
        assert f[key] == pytest.approx(value)
    assert np.isnan(f["udi_ms"]) if not times else f["udi_ms"] == pytest.approx(1.2, abs=ONE_SAMPLE)


def test_degenerate_cells_are_nan_not_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = firing_features([])
        assert np.isnan(f["firing_rate_hz"]) and f["n_isi"] == 0
        f = firing_features(one_segment([], 0.0))  # zero recorded duration
        assert np.isnan(f["firing_rate_hz"])
        f = firing_features(one_segment([1.0, 1.0, 1.0], 2.0))  # duplicate times: no 0/0 warning
        assert f["n_isi"] == 2
        # three spikes: the first CV, LV over one pair
        f = firing_features(one_segment([1.0, 2.0, 4.0], 5.0))
        assert f["cv_isi"] == pytest.approx(np.std([1.0, 2.0]) / 1.5)
        assert f["lv"] == pytest.approx(3 * (1 / 3) ** 2)
        # one spike per sweep in many sweeps: no ISI anywhere
        f = firing_features(spike_trains_for_cell([[0.5], [10.5], [20.5]], [0, 10, 20], [10, 20, 30]))
        assert f["n_isi"] == 0 and np.isnan(f["cv_isi"]) and f["firing_rate_hz"] == pytest.approx(0.1)


def test_spike_trains_for_cell_builds_neo_trains():
    trains = spike_trains_for_cell([[0.3, 0.1, 0.2], 5.0 + np.array([0.5])], [0, 5], 6.0, cell_id="c1")
    assert len(trains) == 2 and all(isinstance(st, neo.SpikeTrain) for st in trains)
    np.testing.assert_allclose(trains[0].rescale(pq.s).magnitude, [0.1, 0.2, 0.3])  # sorted
    assert trains[1].t_start == 5 * pq.s and trains[1].t_stop == 6 * pq.s
    assert trains[0].annotations["cell_id"] == "c1" and trains[1].annotations["segment_index"] == 1
    # quantities are rescaled
    q = spike_trains_for_cell([np.array([100.0, 200.0]) * pq.ms], None, 1 * pq.s)
    np.testing.assert_allclose(q[0].magnitude, [0.1, 0.2])
    with pytest.raises(DataError, match="outside"):
        spike_trains_for_cell([[11.0]], [0], [10.0])
    with pytest.raises(DataError, match="segment"):
        spike_trains_for_cell([[1.0], [2.0]], [0], [10.0, 20.0, 30.0])
    with pytest.raises(DataError):
        spike_trains_for_cell([[np.nan]], [0], [10.0])
    with pytest.raises(SeroError):
        firing_features([[1.0, 2.0]])  # not SpikeTrains


def test_firing_features_sorts_unsorted_user_trains():
    st = neo.SpikeTrain([3.0, 1.0, 2.0, 4.5] * pq.s, t_stop=5 * pq.s)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = firing_features(st)
    assert f["cv_isi"] == pytest.approx(np.std([1.0, 1.0, 1.5]) / np.mean([1.0, 1.0, 1.5]))


@pytest.mark.parametrize("seed", range(6))
def test_firing_features_equal_elephants_statistics(seed):
    """The numpy rate, CV and LV are Elephant's: per segment, pooled the way firing_features documents."""
    rng = np.random.default_rng(seed)
    trains = []
    for _ in range(int(rng.integers(1, 4))):
        duration = float(rng.uniform(5, 60))
        times = np.sort(rng.uniform(0, duration, int(rng.integers(0, 40))))
        trains.append(neo.SpikeTrain(times * pq.s, t_stop=duration * pq.s))
    ours = firing_features(trains)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # elephant's isi passes quantities' deprecated copy=
        isis = [elephant_statistics.isi(st).rescale(pq.s).magnitude for st in trains if len(st) > 1]
        rates = [float(elephant_statistics.mean_firing_rate(st).rescale(pq.Hz)) for st in trains]
        lvs = [(elephant_statistics.lv(i), i.size - 1) for i in isis if i.size >= 2]
    durations = [float(st.t_stop - st.t_start) for st in trains]
    assert ours["firing_rate_hz"] == pytest.approx(np.dot(rates, durations) / sum(durations))
    pooled = np.concatenate(isis) if isis else np.empty(0)
    assert ours["n_isi"] == pooled.size
    if pooled.size >= 2:
        assert ours["cv_isi"] == pytest.approx(elephant_statistics.cv(pooled))
    else:
        assert np.isnan(ours["cv_isi"])
    if lvs:
        assert ours["lv"] == pytest.approx(sum(v * n for v, n in lvs) / sum(n for _, n in lvs))
    else:
        assert np.isnan(ours["lv"])


def test_cell_features_uses_neo_waveforms_when_no_snippets():
    x = action_currents(1.4, n=3)
    st = neo.SpikeTrain([1.0, 2.0, 3.0] * pq.s, t_stop=4 * pq.s, waveforms=x[:, None, :] * pq.pA)
    f = cell_features([st])
    assert f["udi_ms"] == pytest.approx(1.4, abs=ONE_SAMPLE) and f["n_spikes"] == 3
    assert set(f) == {"firing_rate_hz", "cv_isi", "lv", "n_isi", "udi_ms", "n_spikes"}


# ------------------------------------------------------------------------------------------------
# tables from SpikeInterface sortings
# ------------------------------------------------------------------------------------------------
def _two_segment_sorting():
    # unit "ser": 1 Hz regular in both sweeps; unit "fast": 10 Hz regular; unit "one": one spike
    seg_samples, seg_labels = [], []
    for _ in range(2):
        s = [np.arange(10) * 40_000 + 20_000, np.arange(100) * 4_000 + 2_000, np.array([123_456])]
        lab = [["ser"] * 10, ["fast"] * 100, ["one"]]
        order = np.argsort(np.concatenate(s), kind="stable")
        seg_samples.append(np.concatenate(s)[order])
        seg_labels.append(np.concatenate(lab)[order])
    return sc.NumpySorting.from_samples_and_labels(seg_samples, seg_labels, FS)


def test_features_from_sorting():
    sorting = _two_segment_sorting()
    snippets = {"ser": action_currents(1.6, n=20), "fast": action_currents(0.5, n=20)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = features_from_sorting(sorting, snippets, segment_durations_s=[10.0, 10.0])
    assert list(df.columns) == list(FEATURE_COLUMNS)
    assert df.index.name == "unit_id" and set(df.index) == {"ser", "fast", "one"}
    assert df.loc["ser", "firing_rate_hz"] == pytest.approx(1.0)
    assert df.loc["fast", "firing_rate_hz"] == pytest.approx(10.0)
    assert df.loc["one", "firing_rate_hz"] == pytest.approx(2 / 20)
    assert df.loc["ser", "cv_isi"] == pytest.approx(0.0, abs=1e-9)  # no ISI across the sweep boundary
    assert df.loc["ser", "n_isi"] == 18 and df.loc["one", "n_isi"] == 0
    assert df.loc["one", "n_spikes"] == 2 and np.isnan(df.loc["one", "udi_ms"])
    assert abs(df.loc["ser", "udi_ms"] - 1.6) <= ONE_SAMPLE
    assert abs(df.loc["fast", "udi_ms"] - 0.5) <= ONE_SAMPLE

    # durations from a registered recording; the same answer
    rec = sc.NumpyRecording([np.zeros((400_000, 1), np.float32)] * 2, FS)
    sorting.register_recording(rec)
    pd.testing.assert_frame_equal(features_from_sorting(sorting, snippets), df)


def test_features_from_sorting_needs_durations():
    sorting = _two_segment_sorting()
    with pytest.raises(DataError, match="segment_durations_s"):
        features_from_sorting(sorting, {})
    with pytest.raises(DataError, match="segment"):
        features_from_sorting(sorting, {}, segment_durations_s=[10.0])
    with pytest.raises(DataError, match="outside"):
        features_from_sorting(sorting, {}, segment_durations_s=[10.0, 2.0])


def test_features_table_by_cell():
    cells = {
        "A#1": one_segment(np.arange(1, 20) * 0.5, 10.0),
        "A#2": one_segment([], 10.0),
    }
    df = features_table(cells, {"A#1": action_currents(1.1, n=5)})
    assert df.index.name == "cell_id" and list(df.index) == ["A#1", "A#2"]
    assert df.loc["A#1", "udi_ms"] == pytest.approx(1.1, abs=ONE_SAMPLE)
    assert df.loc["A#2", "firing_rate_hz"] == 0.0 and np.isnan(df.loc["A#2", "udi_ms"])
    assert features_table({}).shape == (0, len(FEATURE_COLUMNS))


# ------------------------------------------------------------------------------------------------
# classical criteria
# ------------------------------------------------------------------------------------------------
def _features(**cols):
    base = {"udi_ms": [1.5], "firing_rate_hz": [1.0], "cv_isi": [0.2]}
    base.update({k: [v] for k, v in cols.items()})
    return pd.DataFrame(base)


def _label(**kw):
    thresholds = {k: kw.pop(k) for k in ("min_udi_ms", "max_rate_hz", "max_cv") if k in kw}
    return criteria_classify(_features(**kw), **thresholds)["criteria_label"].iloc[0]


def test_default_thresholds_are_documented_values():
    assert (DEFAULT_MIN_UDI_MS, DEFAULT_MAX_RATE_HZ, DEFAULT_MAX_CV) == (1.0, 3.0, 0.5)


@pytest.mark.parametrize(
    "column, at, beyond",
    [
        ("udi_ms", DEFAULT_MIN_UDI_MS, np.nextafter(DEFAULT_MIN_UDI_MS, 0)),
        ("firing_rate_hz", DEFAULT_MAX_RATE_HZ, np.nextafter(DEFAULT_MAX_RATE_HZ, 10)),
        ("cv_isi", DEFAULT_MAX_CV, np.nextafter(DEFAULT_MAX_CV, 10)),
    ],
)
def test_each_criterion_switches_exactly_at_its_threshold(column, at, beyond):
    assert _label(**{column: at}) == "serotonergic"  # equal to the threshold passes
    assert _label(**{column: beyond}) == "non_serotonergic"


def test_thresholds_are_parameters():
    assert _label(udi_ms=0.8) == "non_serotonergic"
    assert _label(udi_ms=0.8, min_udi_ms=0.8) == "serotonergic"
    assert _label(firing_rate_hz=5.0, max_rate_hz=5.0) == "serotonergic"
    assert _label(firing_rate_hz=5.0, max_rate_hz=None) == "serotonergic"  # criterion switched off
    assert _label(cv_isi=0.7, max_cv=0.8) == "serotonergic"
    with pytest.raises(ParameterError, match="min_udi_ms"):
        _label(min_udi_ms=-1)
    with pytest.raises(DataError, match="udi_ms"):
        criteria_classify(pd.DataFrame({"firing_rate_hz": [1.0], "cv_isi": [0.1]}))


def test_udi_from_snippets_switches_label_at_40_samples():
    fast_regular = {"firing_rate_hz": [1.0], "cv_isi": [0.1]}
    at = udi_ms(action_currents(1.0, n=3), FS)  # 40 samples = 1.000 ms
    below = udi_ms(action_currents(1.0 - DT_MS, n=3), FS)  # 39 samples
    df = criteria_classify(pd.DataFrame({"udi_ms": [at, below], **{k: v * 2 for k, v in fast_regular.items()}}))
    assert list(df["criteria_label"]) == ["serotonergic", "non_serotonergic"]


def test_undefined_features():
    df = criteria_classify(
        pd.DataFrame(
            {
                "udi_ms": [np.nan, 1.5, 1.5, 0.5, np.nan],
                "firing_rate_hz": [1.0, 1.0, 8.0, 1.0, np.nan],
                "cv_isi": [0.1, np.nan, np.nan, np.nan, np.nan],
            },
            index=["no_width", "sparse_ser", "sparse_fast", "sparse_narrow", "nothing"],
        )
    )
    assert df["criteria_label"].to_dict() == {
        "no_width": "undetermined",  # the width is required
        "sparse_ser": "serotonergic",  # CV undefined: judged on width and rate
        "sparse_fast": "non_serotonergic",
        "sparse_narrow": "non_serotonergic",
        "nothing": "undetermined",
    }
    assert df["criteria_regular"].isna().loc["sparse_ser"]
    assert df.loc["sparse_fast", "criteria_slow"] == False  # noqa: E712 (nullable boolean)
    assert str(df["criteria_wide"].dtype) == "boolean"
    # width switched off: rate + CV alone; nothing defined -> undetermined
    off = criteria_classify(df[["udi_ms", "firing_rate_hz", "cv_isi"]], min_udi_ms=None)
    assert off.loc["no_width", "criteria_label"] == "serotonergic"
    assert off.loc["nothing", "criteria_label"] == "undetermined"


def test_criteria_on_a_real_features_table():
    rng = np.random.default_rng(5)
    cells = {
        "typical_ser": one_segment(np.arange(1, 40) * 0.5 + rng.normal(0, 0.01, 39), 20.0),
        "fast_irregular": one_segment(np.sort(rng.uniform(0, 20, 300)), 20.0),
        "two_spikes": one_segment([1.0, 2.0], 20.0),
    }
    snippets = {
        "typical_ser": action_currents(1.6, n=39),
        "fast_irregular": action_currents(0.4, n=300),
        "two_spikes": action_currents(1.6, n=2),
    }
    df = criteria_classify(features_table(cells, snippets))
    assert df["criteria_label"].to_dict() == {
        "typical_ser": "serotonergic",
        "fast_irregular": "non_serotonergic",
        "two_spikes": "serotonergic",  # wide and slow; CV undefined
    }


# ------------------------------------------------------------------------------------------------
# typical / atypical
# ------------------------------------------------------------------------------------------------
SER, NSER, UND = "serotonergic", "non_serotonergic", "undetermined"
TABLE = [
    (SER, SER, "typical_serotonergic"),
    (SER, NSER, "atypical_serotonergic"),
    (NSER, NSER, "typical_non_serotonergic"),
    (NSER, SER, "atypical_non_serotonergic"),
    (SER, UND, UND),
    (NSER, UND, UND),
    (UND, SER, UND),
    (UND, NSER, UND),
    (UND, UND, UND),
    (None, SER, UND),
    (SER, np.nan, UND),
    (pd.NA, NSER, UND),
]


@pytest.mark.parametrize("cnn, criteria, expected", TABLE)
def test_sero_type_table(cnn, criteria, expected):
    assert sero_type(cnn, criteria) == expected
    assert expected in SERO_TYPES


def test_sero_type_rejects_unknown_labels():
    with pytest.raises(DataError):
        sero_type("SER", SER)
    with pytest.raises(DataError):
        sero_type(SER, 1)


def test_add_sero_type_vectorised_matches_scalar():
    df = pd.DataFrame(
        {"sero_label": [c for c, _, _ in TABLE], "criteria_label": [k for _, k, _ in TABLE]},
        index=[f"c{i}" for i in range(len(TABLE))],
    )
    out = add_sero_type(df)
    assert list(out["sero_type"]) == [e for _, _, e in TABLE]
    assert "sero_type" not in df.columns  # a copy
    out2 = add_sero_type(df.rename(columns={"sero_label": "cnn"}), cnn_col="cnn", out_col="t")
    assert list(out2["t"]) == [e for _, _, e in TABLE]
    with pytest.raises(DataError, match="criteria_classify"):
        add_sero_type(df.drop(columns="criteria_label"))
