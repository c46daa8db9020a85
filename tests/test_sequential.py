"""The moment a call is safe (sequential.py): its error rate, its speed, its agreement with the whole-file call."""

import numpy as np
import pytest

from spikeinterface_sero.errors import ParameterError
from spikeinterface_sero.sequential import safe_moment, safe_moments


def _spikes(rng, mean, n, sd=0.4):
    return np.clip(rng.normal(mean, sd, n), -1.0, 1.0)


def test_a_cell_without_a_side_is_rarely_called_and_never_more_often_than_the_error_rate():
    rng = np.random.default_rng(1)
    calls = [safe_moment(_spikes(rng, 0.0, 1500))[0] is not None for _ in range(400)]
    # Ville's inequality: at most alpha (0.05) of such cells ever get a safe call; the binomial margin of 400 draws
    assert np.mean(calls) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 400)


def test_clearer_cells_are_safe_sooner_and_on_their_own_side():
    rng = np.random.default_rng(2)
    medians = []
    for mean in (0.8, 0.4, 0.15):
        results = [safe_moment(_spikes(rng, mean, 3000)) for _ in range(50)]
        assert all(label == "serotonergic" for _, label in results)
        medians.append(np.median([n for n, _ in results]))
    assert medians[0] < medians[1] < medians[2]
    n, label = safe_moment(_spikes(rng, -0.6, 500))
    assert label == "non_serotonergic" and n < 60


def test_the_safe_call_agrees_with_the_whole_recording_call():
    rng = np.random.default_rng(3)
    agree = []
    for _ in range(300):
        d = _spikes(rng, rng.uniform(-0.3, 0.3), 800)
        n, label = safe_moment(d)
        if n is not None:
            agree.append(label == ("serotonergic" if d.mean() > 0 else "non_serotonergic"))
    assert len(agree) > 100 and np.mean(agree) >= 0.98


def test_per_unit_moments_follow_the_spike_times_not_the_array_order():
    rng = np.random.default_rng(4)
    d = np.concatenate([np.full(30, -0.9), np.full(30, 0.9)])  # NSER-looking first, then SER-looking
    consensus = np.column_stack([(1 + d) / 2, (1 - d) / 2])
    times = np.arange(60, dtype=float) / 10.0
    order = rng.permutation(60)
    table = safe_moments(consensus[order], np.zeros(60, int), ["cell"], times[order])
    row = table.loc["cell"]
    assert row["sero_safe_label"] == "non_serotonergic"
    assert row["sero_safe_after_s"] == pytest.approx(times[int(row["sero_safe_after_spikes"]) - 1])
    none = safe_moments(np.full((5, 2), 0.5), np.zeros(5, int), ["flat"], np.arange(5.0))
    assert np.isnan(none.loc["flat", "sero_safe_after_spikes"]) and none.loc["flat", "sero_safe_label"] == ""


@pytest.mark.parametrize("alpha", [0, 1, "0.05", float("nan")])
def test_the_error_rate_is_checked(alpha):
    with pytest.raises(ParameterError, match="alpha"):
        safe_moment([0.5, 0.5], alpha=alpha)


def test_the_running_cell_value_is_the_cell_rule_on_the_spikes_so_far():
    """decision.running_cell_probability (drawn on the cell page): after k spikes, what cell_decisions gives
    the first k spikes, on the calibrated scale; its side of 0.5 is the cell rule's label."""
    from spikeinterface_sero.decision import cell_decisions, running_cell_probability

    rng = np.random.default_rng(5)
    consensus = rng.uniform(0.0, 1.0, (40, 2))  # sigmoid members: the two outputs need not sum to 1
    calibration = {"method": "temperature", "temperature": 2.0}
    raw, calibrated = running_cell_probability(consensus, calibration)
    for k in (1, 7, 40):
        cell = cell_decisions(consensus[:k], np.zeros(k, int), calibration=calibration).iloc[0]
        assert calibrated[k - 1] == pytest.approx(cell["sero_probability"])
        assert (raw[k - 1] > 0.5) == (cell["sero_label"] == "serotonergic")
    assert np.array_equal(running_cell_probability(consensus)[1], running_cell_probability(consensus)[0])
