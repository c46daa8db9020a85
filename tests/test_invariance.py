"""Invariances and one rule everywhere: an inverted recording read with polarity "positive" gives the
original's answer through the CLI, the batch runner, the extension and the Neo bridge; every caller of
the decision rule gives the same numbers on the same spikes."""

from __future__ import annotations

import neo
import numpy as np
import pandas as pd
import pytest

import spikeinterface_sero as sero
from spikeinterface_sero import cli
from spikeinterface_sero.datasets import simulate_drn_recording, write_abf
from spikeinterface_sero.decision import DecisionParams, cell_decisions, consensus_of
from spikeinterface_sero.neo_bridge import annotate_spiketrains
from spikeinterface_sero.pipeline import classify_files
from spikeinterface_sero.training.data import dataset_from_arrays
from spikeinterface_sero.training.evaluate import evaluate_predictions

COLUMNS = ["n_spikes", "sero_label", "sero_probability", "sero_probability_low", "sero_probability_high", "udi_ms"]
POSITIVE = dict(polarity="positive", threshold=50.0)


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    """A simulated serotonergic cell and its exact inverted copy (float32 ABF: no rounding asymmetry)."""
    root = tmp_path_factory.mktemp("invariance")
    sim = simulate_drn_recording("serotonergic", duration_s=12.0, seed=7, firing_rate_hz=2.5)
    original = write_abf(root / "cell.abf", sim.traces, sim.sampling_frequency, data_format="float32")
    inverted = write_abf(root / "inverted.abf", -sim.traces, sim.sampling_frequency, data_format="float32")
    return original, inverted, root


def _units(analyzer) -> pd.DataFrame:
    with pytest.warns(sero.errors.DemoModelWarning):
        ext = analyzer.compute("serotonergic", n_boot=200)
    return ext.get_data()


def test_extension_on_an_inverted_recording_equals_the_original(cell):
    original, inverted, _ = cell
    a = _units(sero.abf_to_analyzer(original))
    b = _units(sero.abf_to_analyzer(inverted, **POSITIVE))
    assert a["n_spikes"].iloc[0] >= 20
    assert a["sero_label"].iloc[0] == "serotonergic" and a["sero_probability"].iloc[0] > 0.5
    pd.testing.assert_frame_equal(a[COLUMNS], b[COLUMNS], atol=1e-5)


def test_batch_runner_and_cli_on_an_inverted_recording_equal_the_original(cell):
    original, inverted, root = cell
    a = classify_files([original])
    b = classify_files([inverted], **POSITIVE)
    pd.testing.assert_frame_equal(a[COLUMNS], b[COLUMNS], atol=1e-5)
    out = root / "cli.csv"
    assert cli.main(["classify", str(inverted), "--polarity", "positive", "--threshold", "50", "--out", str(out)]) == 0
    c = pd.read_csv(out)
    np.testing.assert_allclose(c["sero_probability"], a["sero_probability"].astype(float), atol=1e-4)
    assert list(c["sero_label"]) == list(a["sero_label"])


def test_every_caller_gives_the_same_numbers_on_the_same_spikes(cell):
    original, inverted, _ = cell
    analyzer = sero.abf_to_analyzer(original)
    with pytest.warns(sero.errors.DemoModelWarning):
        ext = analyzer.compute("serotonergic", n_boot=200)
    units = ext.get_data()
    unit = analyzer.unit_ids[0]
    # the decision module on the extension's own member outputs
    direct = cell_decisions(consensus_of(ext.get_data("members")), ["x"] * len(ext.get_data("spikes")))
    direct_200 = cell_decisions(
        consensus_of(ext.get_data("members")), ["x"] * len(ext.get_data("spikes")), DecisionParams(n_boot=200)
    )
    assert direct.loc["x", "sero_probability"] == pytest.approx(units.loc[unit, "sero_probability"], abs=1e-6)
    assert direct_200.loc["x", "sero_probability_low"] == pytest.approx(units.loc[unit, "sero_probability_low"])
    # the Neo bridge, from the inverted file with polarity "positive"
    trains = annotate_spiketrains(neo.AxonIO(str(inverted)).read_block(), n_boot=200, **POSITIVE)
    assert trains[0].annotations["sero_probability"] == pytest.approx(units.loc[unit, "sero_probability"], abs=1e-5)
    assert trains[0].annotations["sero_probability_low"] == pytest.approx(
        units.loc[unit, "sero_probability_low"], abs=1e-5
    )
    assert trains[0].annotations["sero_reliable"] == bool(units.loc[unit, "sero_reliable"])
    assert trains[0].annotations["sero_type"] == units.loc[unit, "sero_type"]
    # evaluation, on the same member outputs
    n = len(ext.get_data("spikes"))
    dataset = dataset_from_arrays(np.zeros((n, 160), np.float32), np.zeros(n, np.int64), np.array(["x"] * n))
    result = evaluate_predictions(ext.get_data("members"), dataset, n_boot=200, per_kernel=False)
    assert result["cells"].loc["x", "sero_probability"] == pytest.approx(units.loc[unit, "sero_probability"])
    assert result["cells"].loc["x", "sero_probability_high"] == pytest.approx(units.loc[unit, "sero_probability_high"])
