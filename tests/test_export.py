"""Sharing results: Phy (read back with SpikeInterface), NWB (read back with pynwb), CSV/JSON tables; Neo."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import spikeinterface_sero as sero
from spikeinterface_sero.constants import SAMPLING_FREQUENCY as FS
from spikeinterface_sero.export import export_to_phy, results_table, write_nwb, write_table
from spikeinterface_sero.testing import numpy_recording, synthetic_trace


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    from spikeinterface_sero.model import random_ensemble, save_model

    folder = tmp_path_factory.mktemp("model") / "tiny"
    save_model(random_ensemble((20, 27), seed=1), folder, description="random weights for tests", demo=False)
    return str(folder)


@pytest.fixture(scope="module")
def analyzer(model_folder):
    rng = np.random.default_rng(2)
    rec = numpy_recording(
        np.c_[
            synthetic_trace(duration_s=4.0, spike_times_s=np.sort(rng.uniform(0.05, 3.9, 15))),
            synthetic_trace(duration_s=4.0, spike_times_s=np.sort(rng.uniform(0.05, 3.9, 9)), seed=4),
        ]
    )
    a = sero.recording_to_analyzer(rec)
    a.compute("serotonergic", model_folder=model_folder)
    return a


def test_phy_export_and_read_back(analyzer, tmp_path):
    from spikeinterface.extractors import read_phy

    out = export_to_phy(analyzer, tmp_path / "phy", copy_binary=False)
    labels = pd.read_csv(out / "cluster_sero_label.tsv", sep="\t")
    probs = pd.read_csv(out / "cluster_sero_probability.tsv", sep="\t")
    units = analyzer.get_extension("serotonergic").get_data()
    assert labels["sero_label"].tolist() == units["sero_label"].tolist()
    np.testing.assert_allclose(probs["sero_probability"], units["sero_probability"], rtol=1e-6)
    back = read_phy(out)
    assert list(back.get_property("sero_label")) == units["sero_label"].tolist()
    np.testing.assert_allclose(
        back.get_property("sero_probability").astype(float), units["sero_probability"], rtol=1e-6
    )


def test_nwb_units_table_in_picoamperes(analyzer, tmp_path):
    from pynwb import NWBHDF5IO

    path = write_nwb(analyzer, tmp_path / "cells.nwb")
    units = analyzer.get_extension("serotonergic").get_data()
    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        df = nwb.units.to_dataframe()
        assert nwb.units.waveform_unit == "picoamperes"
        assert nwb.units.waveform_rate == FS
        assert df["sero_label"].tolist() == units["sero_label"].tolist()
        np.testing.assert_allclose(df["sero_probability"], units["sero_probability"])
        wf = np.asarray(df["waveform_mean"].iloc[0])
        assert wf.shape == (160, 1)
        assert wf[40, 0] < -40  # the mean action current at the trigger is below threshold, in pA
        u0 = analyzer.unit_ids[0]
        np.testing.assert_allclose(df["spike_times"].iloc[0], analyzer.sorting.get_unit_spike_train(u0) / FS)
    with pytest.raises(sero.SeroError, match="exists"):
        write_nwb(analyzer, path)


def test_csv_and_json_tables(analyzer, tmp_path):
    t = results_table(analyzer, file="x.abf")
    assert {"file", "channel", "cell_id", "sero_label", "sero_probability", "sero_type", "n_spikes"} <= set(t.columns)
    back = pd.read_csv(write_table(t, tmp_path / "r.csv"))
    assert back["sero_label"].tolist() == t["sero_label"].tolist()
    recs = json.loads(write_table(t, tmp_path / "r.json").read_text())
    assert [r["sero_label"] for r in recs] == t["sero_label"].tolist()
    with pytest.raises(sero.SeroError, match="csv"):
        write_table(t, tmp_path / "r.xlsx")


def test_neo_block_from_abf_annotated(tmp_path, model_folder):
    import neo

    from spikeinterface_sero.datasets.abf_writer import write_abf
    from spikeinterface_sero.neo_bridge import analyzer_from_neo, annotate_spiketrains

    spikes = [0.1, 0.4, 0.8, 1.3, 1.7]
    path = write_abf(
        tmp_path / "c.abf", synthetic_trace(duration_s=2.0, spike_times_s=spikes), FS, data_format="float32"
    )
    block = neo.AxonIO(str(path)).read_block()
    trains = annotate_spiketrains(block, model_folder)
    assert len(trains) == 1 and len(trains[0]) == len(spikes)
    st = trains[0]
    assert st.annotations["sero_label"] in ("serotonergic", "non_serotonergic")
    assert 0 <= st.annotations["sero_probability"] <= 1
    assert st.array_annotations["sero_p_ser"].shape == (len(spikes),)
    assert st in block.segments[0].spiketrains
    # same answer as the analyzer route on the same file
    a = sero.abf_to_analyzer(path)
    units = a.compute("serotonergic", model_folder=model_folder, n_boot=1000).get_data()
    assert units["sero_probability"].iloc[0] == pytest.approx(st.annotations["sero_probability"], abs=1e-6)
    # and back: Neo block + these spike trains -> analyzer with the same spikes
    b = analyzer_from_neo(block, spiketrains=trains)
    assert b.sorting.get_unit_spike_train(b.unit_ids[0]).size == len(spikes)
    np.testing.assert_allclose(b.get_extension("waveforms").get_data()[:, :, 0], st.waveforms[:, 0, :].magnitude)


def test_neo_spiketrains_with_wrong_waveforms_refused(model_folder):
    import neo
    import quantities as pq

    from spikeinterface_sero.errors import SnippetError
    from spikeinterface_sero.neo_bridge import annotate_spiketrains

    st = neo.SpikeTrain(
        [0.1, 0.2] * pq.s, t_stop=1 * pq.s, waveforms=np.zeros((2, 1, 90)) * pq.pA, sampling_rate=30 * pq.kHz
    )
    with pytest.raises(SnippetError, match="160 samples at 40 kHz"):
        annotate_spiketrains([st], model_folder)
