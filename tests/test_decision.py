"""The decision module: the one place where P(SER), the spike and cell rules, the interval and
reliability are computed."""

import numpy as np
import pytest

from spikeinterface_sero.decision import (
    DecisionParams,
    cell_decisions,
    consensus_of,
    decide_units,
    spike_probability,
)
from spikeinterface_sero.errors import DataError


def test_cell_decisions_rule_and_columns():
    cons = np.array(
        [
            [0.9, 0.1],
            [0.8, 0.3],
            [0.2, 0.7],  # cell A: mean (0.633, 0.367) -> SER
            [0.4, 0.6],
            [0.45, 0.5],  # cell B: NSER
            [0.3, 0.3],
        ]
    )  # cell C: one spike, tie -> NSER (paper: SER only when m0 > m1)
    ids = np.array(["A", "A", "A", "B", "B", "C"])
    df = cell_decisions(cons, ids)
    assert list(df.index) == ["A", "B", "C"]
    assert list(df.columns) == [
        "sero_label",
        "sero_probability",
        "sero_probability_low",
        "sero_probability_high",
        "sero_reliable",
        "n_spikes",
        "fraction_spikes_ser",
    ]
    assert df.loc["A", "sero_label"] == "serotonergic"
    assert df.loc["B", "sero_label"] == "non_serotonergic"
    assert df.loc["C", "sero_label"] == "non_serotonergic"
    m = cons[:3].mean(axis=0)
    assert df.loc["A", "sero_probability"] == pytest.approx(m[0] / m.sum())
    assert df.loc["A", "fraction_spikes_ser"] == pytest.approx(2 / 3)
    assert df.loc["B", "fraction_spikes_ser"] == 0.0
    assert list(df["n_spikes"]) == [3, 2, 1]
    assert (df.loc["C", "sero_probability_low"], df.loc["C", "sero_probability_high"]) == (0.0, 1.0)
    # not a majority vote: mean of vectors decides even when most spikes vote the other way
    cons2 = np.array([[0.55, 0.45], [0.55, 0.45], [0.0, 1.0]])
    df2 = cell_decisions(cons2, ["x", "x", "x"])
    assert df2.loc["x", "sero_label"] == "non_serotonergic" and df2.loc["x", "fraction_spikes_ser"] > 0.5


def test_cell_interval_contains_estimate_and_narrows():
    rng = np.random.default_rng(0)

    def cell(n):
        c0 = np.clip(rng.normal(0.6, 0.25, n), 0.0, 1.0)
        return np.c_[c0, 1.0 - c0]

    few, many = cell(8), cell(800)
    df = cell_decisions(np.concatenate([few, many]), ["few"] * 8 + ["many"] * 800, DecisionParams(n_boot=1000, seed=1))
    for cid in ("few", "many"):
        r = df.loc[cid]
        assert r.sero_probability_low <= r.sero_probability <= r.sero_probability_high
        assert 0.0 <= r.sero_probability_low < r.sero_probability_high <= 1.0
    width = df.sero_probability_high - df.sero_probability_low
    assert width["many"] < 0.35 * width["few"]
    # seeded by the spikes: same interval whatever the other cells are, whatever the cell is called
    df_again = cell_decisions(many, ["many"] * 800, DecisionParams(n_boot=1000, seed=1))
    assert df_again.loc["many", "sero_probability_low"] == df.loc["many", "sero_probability_low"]
    renamed = cell_decisions(many, ["another name"] * 800, DecisionParams(n_boot=1000, seed=1))
    assert renamed.iloc[0]["sero_probability_low"] == df.loc["many", "sero_probability_low"]


def test_cell_decisions_validation():
    with pytest.raises(DataError):
        cell_decisions(np.zeros((3, 3)), ["a"] * 3)
    with pytest.raises(DataError):
        cell_decisions(np.zeros((3, 2)), ["a"] * 2)
    with pytest.raises(DataError):
        cell_decisions(np.array([[np.nan, 0.1]]), ["a"])
    with pytest.raises(DataError, match="no cell id"):
        cell_decisions(np.full((2, 2), 0.5), np.array(["a", None], dtype=object))
    assert len(cell_decisions(np.zeros((0, 2)), [])) == 0


def test_spike_probability_one_rule_for_ties_at_zero():
    assert spike_probability(np.array([[0.0, 0.0]]))[0] == 0.5
    assert spike_probability(np.array([[0.3, 0.1]]))[0] == pytest.approx(0.75)


@pytest.mark.parametrize(
    "kwargs",
    [dict(n_boot=0), dict(n_boot=9), dict(n_boot=1.5), dict(seed=-1), dict(min_spikes=0), dict(ci=1.0), dict(ci="x")],
)
def test_decision_params_refuse_what_the_rule_cannot_use(kwargs):
    with pytest.raises(DataError):
        DecisionParams(**kwargs)


def test_reliable_needs_enough_spikes_and_an_interval_clear_of_half():
    rng = np.random.default_rng(3)
    c0 = np.clip(rng.normal(0.9, 0.05, 200), 0, 1)
    clear = np.c_[c0, 1 - c0]
    table = cell_decisions(
        np.concatenate([clear[:10], clear, np.full((50, 2), 0.5)]),
        ["few"] * 10 + ["many"] * 200 + ["tie"] * 50,
        DecisionParams(min_spikes=20),
    )
    assert table["sero_reliable"].to_dict() == {"few": False, "many": True, "tie": False}


def test_decide_units_undetermined_without_spikes_and_any_unit_ids():
    rng = np.random.default_rng(0)
    outputs = rng.dirichlet([1, 1], size=(30, 3))
    units, spike_p = decide_units(outputs, np.repeat([0, 2], 15), ["b", 7, "a"], params=DecisionParams(n_boot=50))
    assert list(units.index) == ["b", 7, "a"]
    assert units.loc[7, "sero_label"] == "undetermined" and units.loc[7, "n_spikes"] == 0
    assert not units.loc[7, "sero_reliable"]
    np.testing.assert_allclose(spike_p, spike_probability(consensus_of(outputs)), rtol=1e-6)
    by_cell = cell_decisions(consensus_of(outputs)[:15], ["x"] * 15, DecisionParams(n_boot=50))
    assert units.loc["b", "sero_probability"] == by_cell.loc["x", "sero_probability"]
    assert units.loc["b", "sero_probability_low"] == by_cell.loc["x", "sero_probability_low"]


def test_temperature_calibration_fixes_overconfidence_and_keeps_labels():
    from spikeinterface_sero.decision import calibrate, fit_temperature

    rng = np.random.default_rng(1)
    honest = rng.uniform(0.02, 0.98, 2000)  # calibrated: a cell of probability p is SER with probability p
    truth = rng.random(2000) < honest
    overconfident = 1 / (1 + np.exp(-4 * np.log(honest / (1 - honest))))  # log-odds x 4
    calibration = fit_temperature(overconfident, truth)
    assert 3.0 < calibration["temperature"] < 5.5
    back = calibrate(overconfident, calibration)
    np.testing.assert_array_equal(back > 0.5, overconfident > 0.5)
    assert np.abs(back - honest).max() < 0.1
    assert calibrate([0.5], calibration)[0] == pytest.approx(0.5)
    with pytest.raises(DataError, match="both classes"):
        fit_temperature([0.9, 0.8], [True, True])


def test_member_spread_reports_disagreement():
    agree = np.tile([[0.9, 0.1]], (20, 3, 1))
    disagree = np.concatenate([np.tile([[0.9, 0.1]], (20, 1, 1)), np.tile([[0.1, 0.9]], (20, 2, 1))], axis=1)
    units, _ = decide_units(
        np.concatenate([agree, disagree]),
        np.repeat([0, 1], 20),
        ["agree", "disagree"],
        params=DecisionParams(n_boot=20),
    )
    assert units.loc["agree", "member_spread"] == pytest.approx(0.0)
    assert units.loc["disagree", "member_spread"] == pytest.approx(np.std([0.9, 0.1, 0.1]))


def test_a_perfectly_separated_validation_set_does_not_make_every_call_certain():
    """Platt's smoothed targets: 12 validation cells all right say P(correct) ~ 0.875, not 1.0."""
    from spikeinterface_sero.decision import calibrate, fit_temperature

    probability = np.array([0.7, 0.8, 0.9, 0.95, 0.99, 0.75, 0.3, 0.2, 0.1, 0.05, 0.01, 0.25])
    truth = probability > 0.5  # every cell on the right side of 0.5
    calibration = fit_temperature(probability, truth)
    assert 0.5 < calibration["temperature"] <= 1.0  # not driven to the lower bound (0.05)
    calibrated = calibrate(probability, calibration)
    assert 0.75 < calibrated[truth].mean() < 0.95 and 0.05 < calibrated[~truth].mean() < 0.25
    certain = np.array([0.999, 0.99, 0.995, 0.001, 0.01, 0.005])  # all right and very sure: not softened
    assert fit_temperature(certain, certain > 0.5)["temperature"] == 1.0
    wrong = np.array([0.999, 0.99, 0.995, 0.98, 0.97, 0.001, 0.01, 0.02, 0.03, 0.995])  # a sure error: softened
    softened = fit_temperature(wrong, np.arange(10) < 5)["temperature"]
    assert 1.0 < softened <= 4.0  # limited: one error among 10 cells does not make every call a coin toss


def test_a_temperature_is_not_fitted_on_too_few_cells():
    """4 validation cells (one wrong) once gave T = 13: new cells then read 0.30-0.40 and were 'reliable'."""
    from spikeinterface_sero.decision import fit_temperature

    few = fit_temperature(np.array([0.9, 0.8, 0.2, 0.9]), np.array([True, True, False, False]))
    assert few["temperature"] == 1.0 and "too few" in few["targets"]


def test_bootstrap_resamples_are_bounded_before_any_work():
    from spikeinterface_sero.constants import MAX_N_BOOT
    from spikeinterface_sero.decision import DecisionParams
    from spikeinterface_sero.errors import SeroError

    DecisionParams(n_boot=MAX_N_BOOT)
    with pytest.raises(SeroError, match="n_boot must be from 10 to 100,000"):
        DecisionParams(n_boot=10**8)
