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
    merged = analyzer.merge_units([[u[0], u[2]]], new_id_strategy="append")
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


def test_reliability_needs_spikes_and_a_clear_interval(analyzer, model_folder):
    units = analyzer.compute("serotonergic", model_folder=model_folder, min_spikes=10).get_data()
    n = units["n_spikes"]
    clear = (units["sero_probability_low"] > 0.5) | (units["sero_probability_high"] < 0.5)
    assert units["sero_reliable"].dtype == bool
    assert (units["sero_reliable"] == ((n >= 10) & clear)).all()
    assert not units.loc[n < 10, "sero_reliable"].any()  # the 7-spike cell is never a reliable call
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
