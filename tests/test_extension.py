"""The `serotonergic` SortingAnalyzer extension: compute, persistence, unit operations, properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import spikeinterface_sero as sero
from spikeinterface_sero.errors import SeroError, SnippetError
from spikeinterface_sero.testing import numpy_recording, synthetic_trace

KERNELS = (20, 25, 31)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    from spikeinterface_sero.model import random_ensemble, save_model

    folder = tmp_path_factory.mktemp("model") / "tiny"
    save_model(random_ensemble(KERNELS, seed=3), folder, description="random weights for tests", demo=False)
    return str(folder)


def _recording():
    rng = np.random.default_rng(5)
    c0 = synthetic_trace(duration_s=6.0, spike_times_s=np.sort(rng.uniform(0.05, 5.9, 12)), seed=1)
    c1 = synthetic_trace(duration_s=6.0, spike_times_s=np.sort(rng.uniform(0.05, 5.9, 30)), seed=2, amplitude_pa=120.0)
    c2 = synthetic_trace(duration_s=6.0, spike_times_s=np.sort(rng.uniform(0.05, 5.9, 7)), seed=3)
    return numpy_recording(np.c_[c0, c1, c2])


@pytest.fixture
def analyzer():
    return sero.recording_to_analyzer(_recording())


def test_compute_gives_unit_table_properties_and_spike_data(analyzer, model_folder):
    ext = analyzer.compute("serotonergic", model_folder=model_folder)
    units = ext.get_data()
    assert list(units.index) == list(analyzer.unit_ids)
    for col in (
        "sero_label",
        "sero_probability",
        "sero_probability_low",
        "sero_probability_high",
        "n_spikes",
        "fraction_spikes_ser",
        "firing_rate_hz",
        "cv_isi",
        "lv",
        "udi_ms",
        "criteria_label",
        "sero_type",
    ):
        assert col in units.columns, col
    assert set(units["sero_label"]) <= {"serotonergic", "non_serotonergic"}
    assert (units["sero_probability_low"] <= units["sero_probability"]).all()
    assert (units["sero_probability"] <= units["sero_probability_high"]).all()
    assert units["n_spikes"].tolist() == [analyzer.sorting.get_unit_spike_train(u).size for u in analyzer.unit_ids]
    # the cell decision is the paper's rule applied to the stored member outputs
    members = ext.get_data(outputs="members")
    spikes = ext.get_data(outputs="spikes")
    assert members.shape == (len(spikes), len(KERNELS), 2)
    for u in analyzer.unit_ids:
        m = (spikes["unit_id"] == u).to_numpy()
        mean = members[m].mean(axis=1).mean(axis=0)
        assert units.loc[u, "sero_label"] == ("serotonergic" if mean[0] > mean[1] else "non_serotonergic")
        assert units.loc[u, "sero_probability"] == pytest.approx(mean[0] / mean.sum(), abs=1e-6)
    # properties for tools without this package
    assert list(analyzer.sorting.get_property("sero_label")) == units["sero_label"].tolist()
    np.testing.assert_allclose(analyzer.sorting.get_property("sero_probability"), units["sero_probability"])
    # the function form returns the same table
    again = sero.compute_serotonergic(analyzer, model_folder=model_folder)
    pd.testing.assert_frame_equal(again, units)


def test_criteria_method_needs_no_model(analyzer):
    units = analyzer.compute("serotonergic", method="criteria").get_data()
    assert (units["sero_label"] == units["criteria_label"]).all()
    assert (units["sero_type"].str.startswith("typical") | (units["sero_type"] == "undetermined")).all()


@pytest.mark.parametrize("fmt", ["binary_folder", "zarr"])
def test_save_and_reload_identical(analyzer, model_folder, tmp_path, fmt):
    analyzer.compute("serotonergic", model_folder=model_folder)
    folder = tmp_path / ("an.zarr" if fmt == "zarr" else "an")
    analyzer.save_as(format=fmt, folder=folder)
    back = sero.load_sorting_analyzer(folder)
    a = analyzer.get_extension("serotonergic")
    b = back.get_extension("serotonergic")
    pd.testing.assert_frame_equal(
        b.get_data().astype(object), a.get_data().astype(object), check_dtype=False, check_index_type=False
    )
    np.testing.assert_array_equal(b.get_data(outputs="members"), a.get_data(outputs="members"))
    np.testing.assert_array_equal(b.data["spike_probability"], a.data["spike_probability"])
    assert b.params == a.params
    assert list(back.sorting.get_property("sero_label")) == list(analyzer.sorting.get_property("sero_label"))


def test_select_and_remove_units(analyzer, model_folder):
    full = analyzer.compute("serotonergic", model_folder=model_folder).get_data()
    keep = [analyzer.unit_ids[0], analyzer.unit_ids[2]]
    for sub in (analyzer.select_units(keep), analyzer.remove_units([analyzer.unit_ids[1]])):
        ext = sub.get_extension("serotonergic")
        pd.testing.assert_frame_equal(ext.get_data(), full.loc[keep])
        spikes = ext.get_data(outputs="spikes")
        assert set(spikes["unit_id"]) == set(keep)
        assert len(spikes) == ext.get_data(outputs="members").shape[0]


def test_merge_and_split_recompute_new_units(analyzer, model_folder):
    analyzer.compute("serotonergic", model_folder=model_folder)
    u = list(analyzer.unit_ids)
    # each unit's waveforms hold its own channel only: cells on different channels merge hard (recomputed)
    merged = analyzer.merge_units([[u[0], u[2]]], new_id_strategy="append", merging_mode="hard")
    units = merged.get_extension("serotonergic").get_data()
    new = [x for x in merged.unit_ids if x not in u][0]
    n0 = analyzer.sorting.get_unit_spike_train(u[0]).size + analyzer.sorting.get_unit_spike_train(u[2]).size
    assert units.loc[new, "n_spikes"] == n0
    assert merged.sorting.get_property("sero_label") is not None
    # unchanged units keep their result exactly
    pd.testing.assert_series_equal(
        units.loc[u[1]], analyzer.get_extension("serotonergic").get_data().loc[u[1]], check_names=False
    )
    spikes = analyzer.sorting.get_unit_spike_train(u[1])
    idx = np.arange(spikes.size)
    split = analyzer.split_units({u[1]: [idx[idx % 2 == 0], idx[idx % 2 == 1]]})
    su = split.get_extension("serotonergic").get_data()
    new_ids = [x for x in split.unit_ids if x not in u]
    assert len(new_ids) == 2 and su.loc[new_ids, "n_spikes"].sum() == spikes.size


def test_recomputing_the_parent_drops_stale_result(analyzer, model_folder):
    analyzer.compute("serotonergic", model_folder=model_folder)
    analyzer.compute("waveforms", ms_before=1.0, ms_after=3.0)
    assert not analyzer.has_extension("serotonergic")
    assert analyzer.compute("serotonergic", model_folder=model_folder).get_data().shape[0] == 3


def test_wrong_waveform_window_says_how_to_fix(model_folder):
    from spikeinterface.core import create_sorting_analyzer

    a = sero.recording_to_analyzer(_recording())
    b = create_sorting_analyzer(a.sorting, a.recording, sparse=False)
    b.compute(["random_spikes", "waveforms"], extension_params={"waveforms": dict(ms_before=1.0, ms_after=2.0)})
    with pytest.raises(SnippetError, match="ms_before=1.0, ms_after=3.0"):
        b.compute("serotonergic", model_folder=model_folder)


def test_bad_parameters(analyzer, model_folder):
    with pytest.raises(SeroError, match="method"):
        analyzer.compute("serotonergic", model_folder=model_folder, method="svm")
    with pytest.raises(SeroError):
        analyzer.compute("serotonergic", model_folder="/nonexistent/model")


def test_reliability_needs_spikes_a_validated_rig_and_a_one_label_set(analyzer, model_folder):
    units = analyzer.compute("serotonergic", model_folder=model_folder, min_spikes=10).get_data()
    n = units["n_spikes"]
    one_label = (units["sero_set"] == units["sero_label"]) & (units["sero_rig"] == "validated")
    assert units["sero_reliable"].dtype == bool
    assert (units["sero_reliable"] == ((n >= 10) & one_label & (units["sero_quality"] == "ok"))).all()
    assert not units.loc[n < 10, "sero_reliable"].any()  # the 7-spike cell is never a reliable call
    few = units["sero_unsure_reasons"].str.split("+").apply(lambda reasons: "few_spikes" in reasons)
    assert (few == (n < 10)).all()
    assert (units["sero_call"] == np.where(units["sero_reliable"], units["sero_label"], "unsure")).all()
    with pytest.raises(SeroError, match="min_spikes"):
        analyzer.compute("serotonergic", model_folder=model_folder, min_spikes=0)


def test_job_keywords_set_the_inference_threads(analyzer, model_folder, monkeypatch):
    """SpikeInterface's job keywords are accepted; n_jobs x max_threads_per_worker become engine threads."""
    from spikeinterface.core.job_tools import get_usable_cpu_count

    from spikeinterface_sero.model.numpy_engine import NumpyEngine

    seen = []
    original = NumpyEngine.predict_members

    def spy(self, x, batch_size=512, threads=None):
        seen.append(threads)
        return original(self, x, batch_size=batch_size, threads=threads)

    monkeypatch.setattr(NumpyEngine, "predict_members", spy)
    one = analyzer.compute("serotonergic", model_folder=model_folder).get_data()
    assert set(seen) == {None}  # one process: the engine's own default, as SpikeInterface leaves it unlimited
    workers = min(2, get_usable_cpu_count())  # SpikeInterface caps n_jobs at the cores available
    seen.clear()
    job = dict(n_jobs=2, chunk_duration="1s", progress_bar=False, mp_context="spawn", pool_engine="thread")
    two = analyzer.compute("serotonergic", model_folder=model_folder, **job).get_data()
    assert set(seen) == {None if workers == 1 else workers}
    seen.clear()
    analyzer.compute("serotonergic", model_folder=model_folder, n_jobs=2, max_threads_per_worker=3)
    assert set(seen) == {None if workers == 1 else 3 * workers}
    pd.testing.assert_frame_equal(two, one, check_exact=False, rtol=1e-6)


@pytest.mark.parametrize("name", ["trust_model", "flip_positive", "reextract"])
def test_flags_must_be_real_booleans(analyzer, model_folder, name):
    from spikeinterface_sero.errors import ParameterError

    with pytest.raises(ParameterError, match=f"{name} must be True or False"):
        analyzer.compute("serotonergic", model_folder=model_folder, **{name: "false"})
    assert not analyzer.has_extension("serotonergic")


def test_several_extensions_at_once_with_n_jobs(model_folder):
    """``analyzer.compute([...], n_jobs=4)`` with SpikeInterface's default waveform window: refused with the
    call that fixes it, labelled with the paper's window or with ``reextract=True`` (the same labels)."""
    from spikeinterface.core import create_sorting_analyzer

    recording = _recording()
    sorting = sero.recording_to_analyzer(recording).sorting
    chain = ["random_spikes", "waveforms", "templates", "serotonergic"]
    params = dict(model_folder=model_folder, n_boot=20)
    short = create_sorting_analyzer(sorting, recording, sparse=False)
    with pytest.raises(SnippetError, match="reextract=True"):
        short.compute(chain, n_jobs=4, extension_params={"serotonergic": params})
    paper = create_sorting_analyzer(sorting, recording, sparse=False)
    window = dict(ms_before=1.0, ms_after=3.0)
    paper.compute(chain, n_jobs=4, extension_params={"waveforms": window, "serotonergic": params})
    again = create_sorting_analyzer(sorting, recording, sparse=False)
    again.compute(chain, n_jobs=4, extension_params={"serotonergic": dict(params, reextract=True)})
    expected = paper.get_extension("serotonergic").get_data()
    pd.testing.assert_frame_equal(again.get_extension("serotonergic").get_data(), expected)
    assert again.get_extension("waveforms").params["ms_after"] == 3.0
    assert again.get_extension("serotonergic").get_data("provenance")["adaptation"]["reextracted"]


def _dense(analyzer):
    """The same detection with every channel's waveforms kept (the detection keeps each unit on its own
    channel): units on different channels can then be soft-merged, as these tests do."""
    from spikeinterface.core import create_sorting_analyzer

    dense = create_sorting_analyzer(analyzer.sorting, analyzer.recording, sparse=False)
    dense.compute({"random_spikes": dict(method="all"), "waveforms": dict(ms_before=1.0, ms_after=3.0)})
    return dense


def _text_of(analyzer) -> dict:
    """Every text value of the unit table and of the text sorting properties."""
    from spikeinterface_sero.extension import SERO_PROPERTIES
    from spikeinterface_sero.schema import TEXT, UNIT_SCHEMA

    table = analyzer.get_extension("serotonergic").get_data()
    text = {f"table:{c}": [str(v) for v in table[c]] for c, column in UNIT_SCHEMA.items() if column.kind == TEXT}
    for key in SERO_PROPERTIES:
        if UNIT_SCHEMA[key].kind == TEXT:
            text[f"property:{key}"] = [str(v) for v in analyzer.sorting.get_property(key)]
            assert text[f"property:{key}"] == text[f"table:{key}"], key
    return text


@pytest.mark.parametrize("fmt", ["binary_folder", "zarr"])
def test_text_survives_recompute_merge_and_split_in_every_format(model_folder, tmp_path, fmt):
    """SpikeInterface writes zarr properties in place into their first fixed width: nothing may be cut."""
    from spikeinterface_sero.extension import SERO_PROPERTIES
    from spikeinterface_sero.schema import TEXT, UNIT_SCHEMA

    suffix = ".zarr" if fmt == "zarr" else ""
    memory = _dense(sero.recording_to_analyzer(_recording()))
    disk = memory.save_as(format=fmt, folder=tmp_path / f"an{suffix}")
    units = list(memory.unit_ids)
    short = [key for key in SERO_PROPERTIES if UNIT_SCHEMA[key].kind == TEXT]
    results = []
    for analyzer in (memory, disk):
        for key in short:  # written before, shorter (an earlier run, a curation tool)
            analyzer.set_sorting_property(key, np.array(["x"] * len(units)))
        analyzer.compute("serotonergic", model_folder=model_folder, method="criteria")
        analyzer.compute("serotonergic", model_folder=model_folder, n_boot=20)  # recompute: other values
        steps = {"computed": analyzer}
        on_disk = analyzer is disk
        kwargs = {
            name: dict(format=fmt, folder=tmp_path / f"{name}{suffix}") if on_disk else dict(format="memory")
            for name in ("hard", "split", "soft")
        }
        # cells on different channels merge hard; the parts of a split unit (one channel) merge soft
        steps["hard"] = analyzer.merge_units([[units[0], units[2]]], merging_mode="hard", **kwargs["hard"])
        train = np.arange(analyzer.sorting.get_unit_spike_train(units[1]).size)
        steps["split"] = analyzer.split_units({units[1]: [train[::2], train[1::2]]}, **kwargs["split"])
        parts = [u for u in steps["split"].unit_ids if u not in units]
        steps["soft"] = steps["split"].merge_units([parts], merging_mode="soft", **kwargs["soft"])
        texts = {name: _text_of(step) for name, step in steps.items()}
        if analyzer is disk:
            for name, step in steps.items():
                texts[f"{name} reloaded"] = _text_of(sero.load_sorting_analyzer(step.folder))
        results.append(texts)
    reference, saved = results
    for name, text in saved.items():
        assert text == reference[name.replace(" reloaded", "")], name
    labels = {v for text in reference.values() for v in text["table:sero_label"]}
    assert labels <= {"serotonergic", "non_serotonergic", "undetermined"}
    assert any(len(v) > 1 for text in reference.values() for v in text["property:sero_quality"])


def test_spike_times_waveforms_and_segments_of_a_multi_sweep_file(tmp_path, model_folder):
    """Sweeps start at 0, 15 and 30 s: time_s is the recording's own time; the snippets are the model's input;
    a reload without the recording, select, merge and split give the same answers."""
    from spikeinterface_sero.analyzers import main_channel_waveforms
    from spikeinterface_sero.datasets import write_abf
    from spikeinterface_sero.decision import describe_rule
    from spikeinterface_sero.model import load_model

    times = [0.2, 0.45, 0.8, 1.1, 1.35, 1.7]
    sweeps = np.stack(
        [
            np.c_[
                synthetic_trace(duration_s=2.0, spike_times_s=times, seed=i),
                synthetic_trace(duration_s=2.0, spike_times_s=times[::2], seed=10 + i, amplitude_pa=120.0),
            ]
            for i in range(3)
        ]
    )
    path = write_abf(
        tmp_path / "ep.abf", sweeps, 40_000.0, mode="episodic", data_format="float32", sweep_t_starts=[0.0, 15.0, 30.0]
    )
    analyzer = _dense(sero.abf_to_analyzer(path))
    ext = analyzer.compute("serotonergic", model_folder=model_folder, n_boot=20)
    segments = ext.get_data("segments")
    assert segments["segment_index"].tolist() == [0, 1, 2]
    np.testing.assert_allclose(segments["t_start_s"], [0.0, 15.0, 30.0], atol=1e-9)
    np.testing.assert_allclose(segments["duration_s"], [2.0, 2.0, 2.0])
    spikes = ext.get_data("spikes")
    recording = analyzer.recording
    expected = [
        recording.sample_index_to_time(s, segment_index=k) for s, k in zip(spikes.sample_index, spikes.segment_index)
    ]
    np.testing.assert_allclose(spikes["time_s"], expected, atol=1e-9)
    assert sorted(set((spikes["time_s"] // 15).astype(int))) == [0, 1, 2]
    waveforms = ext.get_data("waveforms")
    assert waveforms.dtype == np.float32 and waveforms.shape == (len(spikes), 160)
    np.testing.assert_array_equal(waveforms, main_channel_waveforms(analyzer))  # a paper-format file, as read
    np.testing.assert_allclose(load_model(model_folder).p_ser(waveforms), spikes["p_ser"], atol=1e-6)
    provenance = ext.get_data("provenance")
    assert provenance["rule"] == describe_rule(ext.params) and "20 resamples" in provenance["rule"]
    assert provenance["time_origin"] == "recording"
    flipped = analyzer.copy().compute("serotonergic", model_folder=model_folder, n_boot=20, polarity="positive")
    np.testing.assert_array_equal(flipped.get_data("waveforms"), -waveforms)

    analyzer.save_as(format="zarr", folder=tmp_path / "an.zarr")
    path.rename(tmp_path / "moved.abf")  # the recording is gone
    back = sero.load_sorting_analyzer(tmp_path / "an.zarr")
    assert not back.has_recording()
    again = back.get_extension("serotonergic")
    pd.testing.assert_frame_equal(again.get_data("spikes"), spikes, check_dtype=False)
    pd.testing.assert_frame_equal(again.get_data("segments"), segments)
    np.testing.assert_array_equal(again.get_data("waveforms"), waveforms)
    units = list(back.unit_ids)
    n_first = sum(back.sorting.get_unit_spike_train(units[0], segment_index=k).size for k in range(3))
    train = np.arange(n_first)
    old = {
        (row.unit_id, row.segment_index, row.sample_index): (row.time_s, snippet)
        for row, snippet in zip(spikes.itertuples(), waveforms)
    }
    for changed, parent in (
        (back.select_units(units[1:]), {}),
        (back.split_units({units[0]: [train[::2], train[1::2]]}), units[0]),
    ):
        if parent == units[0]:  # its parts (one channel) merged back, soft: every snippet kept
            new = [u for u in changed.unit_ids if u not in units]
            changed = changed.merge_units([new], merging_mode="soft")
        ext = changed.get_extension("serotonergic")
        now = ext.get_data("spikes")
        assert len(now) == len(ext.get_data("waveforms")) > 0
        pd.testing.assert_frame_equal(ext.get_data("segments"), segments)
        for row, snippet in zip(now.itertuples(), ext.get_data("waveforms")):
            unit = row.unit_id if row.unit_id in units else parent
            if unit is None:  # a merged unit: read on the main channel of the merge
                continue
            time_s, before = old[(unit, row.segment_index, row.sample_index)]
            assert row.time_s == time_s
            np.testing.assert_array_equal(snippet, before)


def test_snippets_without_a_recording_count_time_from_zero(model_folder):
    from spikeinterface_sero.extension import analyzer_from_snippets
    from spikeinterface_sero.snippets import recording_to_snippets

    snippets = recording_to_snippets(_recording())
    analyzer = analyzer_from_snippets(snippets)
    ext = analyzer.compute("serotonergic", model_folder=model_folder, n_boot=20)
    assert ext.get_data("provenance")["time_origin"].startswith("unknown")
    spikes = ext.get_data("spikes")
    np.testing.assert_allclose(spikes["time_s"], spikes["sample_index"] / 40_000.0)
    by_spike = {(str(c), int(s)): w for c, s, w in zip(snippets.cell_ids, snippets.trigger_samples, snippets.waveforms)}
    for row, snippet in zip(spikes.itertuples(), ext.get_data("waveforms")):
        np.testing.assert_array_equal(snippet, by_spike[(str(row.unit_id), int(row.sample_index))])


def test_sero_columns_reach_spikeinterface_units_table(analyzer, model_folder):
    """spikeinterface-gui's unit list is SpikeInterface's ``make_units_table_from_analyzer``, which keeps only
    numeric, bool and fixed-width text properties: every sero property must be one of them."""
    from spikeinterface.widgets.utils import make_units_table_from_analyzer

    from spikeinterface_sero.extension import SERO_PROPERTIES
    from spikeinterface_sero.schema import UNIT_SCHEMA

    units = analyzer.compute("serotonergic", model_folder=model_folder, n_boot=20).get_data()
    shown = make_units_table_from_analyzer(analyzer)
    assert {"sero_call", "sero_confidence", "sero_set", "sero_rig", "sero_manual_label"} <= set(SERO_PROPERTIES)
    for key in SERO_PROPERTIES:
        kind = analyzer.sorting.get_property(key).dtype.kind
        assert kind == {"text": "U", "float": "f", "integer": "i", "boolean": "b"}[UNIT_SCHEMA[key].kind], key
        assert key in shown.columns, key
        if kind == "f":
            np.testing.assert_allclose(shown[key].to_numpy(float), units[key].to_numpy(float), equal_nan=True)
        else:
            assert shown[key].tolist() == units[key].tolist(), key


@pytest.mark.parametrize(
    "case, domain, can_be_reliable",
    [
        ("paper", "in_domain", True),
        ("resampled", "resampled", True),  # read at 20 kHz, resampled to 40 kHz by read_abf
        ("nA", "converted_from_nA", True),  # read in nA, scaled to pA by read_abf
        ("filtered", "filtered", False),  # band-pass filtered: the action current's shape is changed
    ],
)
def test_sero_domain_says_how_the_input_was_read(tmp_path, model_folder, case, domain, can_be_reliable):
    import spikeinterface.preprocessing as spre

    from spikeinterface_sero.datasets import write_abf

    rate = 20_000.0 if case == "resampled" else 40_000.0
    times = np.sort(np.random.default_rng(7).uniform(0.05, 5.9, 30))
    trace = synthetic_trace(sampling_frequency=rate, duration_s=6.0, spike_times_s=times, seed=1)
    scale, unit = (1e-3, "nA") if case == "nA" else (1.0, "pA")
    path = write_abf(tmp_path / f"{case}.abf", trace * scale, rate, units=unit, data_format="float32")
    recording = sero.read_abf(path)
    if case == "filtered":
        recording = spre.bandpass_filter(recording, freq_min=300.0, freq_max=6000.0)
    analyzer = sero.recording_to_analyzer(recording)
    units = analyzer.compute("serotonergic", model_folder=model_folder, n_boot=20).get_data()
    assert units["sero_domain"].tolist() == [domain]
    reasons = units["sero_unsure_reasons"].iloc[0].split("+")
    assert ("domain" not in reasons) == can_be_reliable, reasons
    if not can_be_reliable:
        assert not units["sero_reliable"].iloc[0] and units["sero_call"].iloc[0] == "unsure"
    # recomputed after a reload without the recording: the analyzer's own record says the same
    analyzer.save_as(format="binary_folder", folder=tmp_path / "saved")
    path.rename(tmp_path / "moved.abf")
    back = sero.load_sorting_analyzer(tmp_path / "saved")
    assert not back.has_recording()
    again = back.compute("serotonergic", model_folder=model_folder, n_boot=20).get_data()
    assert again["sero_domain"].tolist() == [domain]
