"""Earned calls: what is not a loose-seal action current never gets a reliable label, and says why."""

from __future__ import annotations

import neo
import numpy as np
import pandas as pd
import pytest
from conftest import shared_abf_files

import spikeinterface_sero as sero
from spikeinterface_sero.datasets import ARTEFACT_KINDS, simulate_artefact, simulate_drn_recording, write_abf
from spikeinterface_sero.decision import QUALITY_OK, action_current_quality
from spikeinterface_sero.neo_bridge import annotate_spiketrains
from spikeinterface_sero.pipeline import classify_files

#: the check each artefact must fail (at least; others may fail too)
EXPECTED = {
    "current_steps": "no_return_to_baseline",
    "membrane_test": "monophasic",
    "mains_hum": "rate_too_high",
    "inverted_intracellular_aps": "outward_peak_at_window_edge",
    "noise_bursts": "inconsistent_shapes",
    "clipped_spikes": "clipped",
    "monophasic_events": "monophasic",
    "white_noise": "refractory_violations",
}


@pytest.fixture(scope="module")
def artefact_table(tmp_path_factory):
    root = tmp_path_factory.mktemp("artefacts")
    files = [
        write_abf(root / f"{kind}.abf", simulate_artefact(kind, 12.0, seed=3), 40_000.0, data_format="float32")
        for kind in ARTEFACT_KINDS
    ]
    return classify_files(files)


@pytest.mark.parametrize("kind", ARTEFACT_KINDS)
def test_each_artefact_is_refused_with_its_reason(artefact_table, kind):
    row = artefact_table[artefact_table["file"].str.endswith(f"{kind}.abf")].iloc[0]
    assert row["error"] == "" and row["n_spikes"] > 0  # the detector found "spikes": the checks must catch them
    assert not row["sero_reliable"]
    assert EXPECTED[kind] in row["sero_quality"].split("+")


@pytest.fixture(scope="module")
def genuine_table(tmp_path_factory):
    root = tmp_path_factory.mktemp("genuine")
    files = []
    for cell_type in ("serotonergic", "atypical_serotonergic", "non_serotonergic"):
        for seed in (1, 2):
            sim = simulate_drn_recording(cell_type, duration_s=30.0, seed=300 + seed)
            files.append(write_abf(root / f"{cell_type}_{seed}.abf", sim.traces, sim.sampling_frequency))
    return classify_files(files)


def test_genuine_simulated_cells_pass_every_check(genuine_table):
    assert (genuine_table["sero_quality"] == QUALITY_OK).all(), genuine_table[["file", "sero_quality"]]
    assert genuine_table["snr"].min() > 10 and genuine_table["shape_consistency"].min() > 0.9
    # reliable = in domain, enough spikes and an interval clear of 0.5; most genuine cells earn it
    assert genuine_table["sero_reliable"].mean() >= 0.5


def test_the_shared_recordings_of_other_kinds_are_never_reliable(shared_abf):
    table = classify_files(shared_abf_files(), allow_low_rate=True)
    cells = table[table["error"] == ""]
    assert len(cells) >= 15
    assert not cells["sero_reliable"].any(), cells.loc[cells["sero_reliable"], ["file", "sero_quality"]]
    assert (cells["sero_quality"] != QUALITY_OK).sum() >= len(cells) - 2


def test_current_clamp_aps_read_as_current_are_not_reliable(shared_abf):
    table = classify_files([shared_abf / "19114001.abf"], channel="0", allow_any_unit=True)
    assert table.loc[0, "n_spikes"] > 1000 and not table.loc[0, "sero_reliable"]
    assert "rate_too_high" in table.loc[0, "sero_quality"]


def test_quality_is_everywhere_a_user_looks(tmp_path):
    sim = simulate_drn_recording("serotonergic", duration_s=20.0, seed=8)
    path = write_abf(tmp_path / "cell.abf", sim.traces, sim.sampling_frequency)
    analyzer = sero.abf_to_analyzer(path)
    with pytest.warns(sero.errors.DemoModelWarning):
        units = sero.serotonergic_label_units(analyzer, n_boot=100)
    for key in ("sero_reliable", "sero_quality"):
        assert list(analyzer.sorting.get_property(key)) == list(units[key])
    table = classify_files([path])
    assert {"sero_reliable", "sero_quality", "n_spikes", "sero_probability_low"} <= set(table.columns)
    trains = annotate_spiketrains(neo.AxonIO(str(path)).read_block(), n_boot=100)
    assert trains[0].annotations["sero_quality"] == units["sero_quality"].iloc[0]
    from pynwb import NWBHDF5IO

    from spikeinterface_sero.export import write_nwb

    write_nwb(analyzer, tmp_path / "cell.nwb")
    with NWBHDF5IO(str(tmp_path / "cell.nwb"), "r") as io:
        nwb_units = io.read().units.to_dataframe()
    assert nwb_units["sero_quality"].iloc[0] == units["sero_quality"].iloc[0]
    assert bool(nwb_units["sero_reliable"].iloc[0]) == bool(units["sero_reliable"].iloc[0])


def test_checks_on_synthetic_shapes():
    t = np.arange(160)
    spike = -200 * np.exp(-0.5 * ((t - 45) / 3.0) ** 2) + 60 * np.exp(-0.5 * ((t - 80) / 8.0) ** 2)
    rng = np.random.default_rng(0)
    good = spike + rng.normal(0, 3, (40, 160))
    step = np.where(t >= 42, -300.0, 0.0) + rng.normal(0, 3, (40, 160))
    flat = np.clip(good, -80, None)
    waveforms = np.concatenate([good, step, flat]).astype(np.float32)
    quality = action_current_quality(waveforms, np.repeat([0, 1, 2], 40), ["good", "step", "clipped"])
    assert quality.loc["good", "sero_quality"] == QUALITY_OK
    assert "no_return_to_baseline" in quality.loc["step", "sero_quality"]
    assert "clipped" in quality.loc["clipped", "sero_quality"]
    assert pd.isna(action_current_quality(np.zeros((0, 160)), [], ["x"]).loc["x", "snr"])
