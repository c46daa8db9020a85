"""Stimulus and pacing artefacts are not action currents: the ``stimulus_artefact`` check (docs/quality.md)."""

from __future__ import annotations

import numpy as np
import pytest

from spikeinterface_sero.datasets import (
    VARIED_DAYS,
    simulate_dataset,
    simulate_drn_recording,
    simulate_membrane_dataset,
    write_abf,
)
from spikeinterface_sero.datasets.stimulus import simulate_stimulus_train
from spikeinterface_sero.pipeline import classify_files
from spikeinterface_sero.snippets import recording_to_snippets
from spikeinterface_sero.stimulus import STIMULUS_ARTEFACT, stimulus_measures, stimulus_reasons

#: the brief's train (biphasic 0.2 ms, exactly 2 Hz, identical) and what a rig does to it
TRAINS = {
    "plain": {},
    "amplifier_filter_5khz": dict(filter_hz=5000.0),
    "filter_2khz_noisy": dict(filter_hz=2000.0, amplitude_pa=300.0, noise_sd_pa=10.0),
    "anodic_first_20hz": dict(cathodic_first=False, rate_hz=20.0),
    "large": dict(amplitude_pa=2000.0),
}


@pytest.fixture(scope="module")
def train_table(tmp_path_factory):
    root = tmp_path_factory.mktemp("stimulus")
    files = [
        write_abf(
            root / f"{name}.abf", simulate_stimulus_train(12.0, seed=i, **kwargs), 40_000.0, data_format="float32"
        )
        for i, (name, kwargs) in enumerate(TRAINS.items())
    ]
    return classify_files(files)


@pytest.mark.parametrize("name", list(TRAINS))
def test_stimulus_trains_get_the_reason_and_no_reliable_call(train_table, name):
    row = train_table[train_table["file"].str.endswith(f"{name}.abf")].iloc[0]
    assert row["error"] == "" and row["n_spikes"] >= 20  # detected, so only the checks stand between it and a call
    assert STIMULUS_ARTEFACT in row["sero_quality"].split("+")
    assert not row["sero_reliable"] and row["sero_call"] != row["sero_label"]


def _cell_measures(recording):
    snippets = recording_to_snippets(recording)
    triggers = np.sort(
        snippets.all_trigger_samples if snippets.all_trigger_samples is not None else snippets.trigger_samples
    )
    isis = np.diff(triggers) / recording.get_sampling_frequency()
    return snippets.waveforms, isis


def test_no_healthy_simulated_cell_of_either_family_gets_the_reason():
    first = simulate_dataset(2, duration_s=15.0, seed=11, n_groups=3, day_ranges=VARIED_DAYS)
    classic = simulate_dataset(1, duration_s=15.0, seed=12, n_groups=3)
    second = simulate_membrane_dataset(
        {"serotonergic": 3, "atypical_serotonergic": 2, "non_serotonergic": 4}, duration_s=15.0, seed=5, n_days=3
    )
    assert len({r.group for r in first}) == 3 and len({r.group for r in second}) == 3
    for recording in first + classic + second:
        waveforms, isis = _cell_measures(recording.to_recording())
        assert len(waveforms) >= 5
        assert stimulus_reasons(waveforms, isis) == [], (recording.cell_id, stimulus_measures(waveforms, isis))


@pytest.fixture(scope="module")
def healthy_cell():
    return _cell_measures(simulate_drn_recording("non_serotonergic", duration_s=15.0, seed=4).to_recording())


def test_each_criterion_alone_names_the_artefact(healthy_cell):
    waveforms, isis = healthy_cell
    assert stimulus_reasons(waveforms, isis) == []
    # 1. exactly periodic, shapes as a neuron's
    assert stimulus_reasons(waveforms, np.full(len(isis), 0.5)) == [STIMULUS_ARTEFACT]
    # 2. identical events (one shape plus recording noise), irregular times
    rng = np.random.default_rng(0)
    identical = waveforms.mean(axis=0) + rng.normal(0.0, 0.5, waveforms.shape)
    assert stimulus_measures(identical, isis)["amplitude_spread"] < 0.01
    assert stimulus_reasons(identical, isis) == [STIMULUS_ARTEFACT]
    # 3. an edge within a sample: faster than an action current through the electrode; amplitudes vary
    square = np.zeros(waveforms.shape[1])
    square[40:44], square[44:48] = -300.0, 300.0
    fast = square * rng.uniform(0.8, 1.2, (len(waveforms), 1)) + rng.normal(0.0, 2.0, waveforms.shape)
    assert stimulus_measures(fast, isis)["onset_ms"] < 0.03
    assert stimulus_reasons(fast, isis) == [STIMULUS_ARTEFACT]


def test_too_few_events_say_nothing_about_periodicity_or_identity(healthy_cell):
    waveforms, _ = healthy_cell
    few = waveforms[:4].mean(axis=0)[None, :].repeat(4, axis=0)
    measures = stimulus_measures(few, np.full(3, 0.5))
    assert np.isnan(measures["isi_jitter_ms"]) and np.isnan(measures["amplitude_spread"])
    assert stimulus_reasons(few, np.full(3, 0.5)) == []
    assert stimulus_reasons(waveforms, None) == []  # snippet files: no intervals, the shape measures only
