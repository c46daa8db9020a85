"""A guarantee on a rig: conformal sets cover at their level, a model never validated gives no reliable call."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spikeinterface_sero.conformal import (
    RIG_VALIDATION_FORMAT,
    check_rig_validation,
    fit_conformal,
    guarantee,
    minimum_cells,
    prediction_sets,
    rig_guarantee,
)
from spikeinterface_sero.constants import LABELS
from spikeinterface_sero.decision import decide_units
from spikeinterface_sero.errors import DataError
from spikeinterface_sero.schema import UNIT_COLUMNS

SER, NSER = LABELS


def _cells(rng, n_per_class: int):
    """Synthetic cell probabilities: SER cells mostly high, NSER mostly low, with overlap (a hard rig)."""
    p = np.concatenate([rng.beta(5, 2, n_per_class), rng.beta(2, 5, n_per_class)])
    return p, np.array([SER] * n_per_class + [NSER] * n_per_class, dtype=object)


@pytest.mark.parametrize("n_per_class", [9, 20])
def test_coverage_holds_per_class_within_the_finite_sample_bound(n_per_class):
    """Split conformal: level <= expected coverage <= level + 1/(n+1) for each class (continuous scores)."""
    rng = np.random.default_rng(0)
    level, coverage, repeats = 0.9, {SER: [], NSER: []}, 200
    for _ in range(repeats):
        fit = fit_conformal(*_cells(rng, n_per_class), level=level)
        p, y = _cells(rng, 500)
        sets = prediction_sets(p, fit)
        for label in LABELS:
            coverage[label].append(np.isin(sets[y == label], [label, "both"]).mean())
    # a calibration set's coverage is Beta(k, n + 1 - k) distributed: 3.5 standard errors of the mean of the repeats
    slack = 3.5 * np.sqrt(level * (1 - level) / (n_per_class + 2) / repeats)
    for label in LABELS:
        mean = float(np.mean(coverage[label]))
        assert level - slack <= mean <= level + 1.0 / (n_per_class + 1) + slack, (label, mean)


def test_too_few_cells_of_a_class_give_sets_that_always_hold_it():
    assert minimum_cells(0.9) == 9 and minimum_cells(0.95) == 19 and minimum_cells(0.8) == 4
    rng = np.random.default_rng(1)
    p = np.concatenate([rng.uniform(0.8, 1.0, 8), rng.uniform(0.0, 0.2, 12)])
    y = np.array([SER] * 8 + [NSER] * 12, dtype=object)
    fit = fit_conformal(p, y, level=0.9)
    assert fit["quantiles"][SER] is None and fit["quantiles"][NSER] is not None
    assert "8 serotonergic cells are too few" in fit["notes"][0]
    assert set(prediction_sets(np.linspace(0, 1, 50), fit)) <= {SER, "both"}  # SER is never left out
    assert "too few serotonergic cells" in guarantee({"conformal": fit, "days": [], "name": "x"})


def test_sets_single_both_and_empty():
    fit = {"level": 0.9, "quantiles": {SER: 0.3, NSER: 0.2}}
    assert prediction_sets([0.95, 0.1, 0.5, np.nan], fit).tolist() == [SER, NSER, "empty", "not_calibrated"]
    wide = {"level": 0.9, "quantiles": {SER: 0.7, NSER: 0.6}}
    assert prediction_sets([0.5], wide).tolist() == ["both"]
    assert prediction_sets([0.5], None).tolist() == ["not_calibrated"]


def test_bad_fits_and_levels_are_refused():
    with pytest.raises(DataError, match="level"):
        fit_conformal([0.9, 0.1], [SER, NSER], level=0.99999 + 1)
    with pytest.raises(DataError, match="labels must be"):
        fit_conformal([0.9, 0.1], [SER, "maybe"])
    with pytest.raises(DataError, match="format"):
        check_rig_validation({"rigs": []})
    bad = {"format": RIG_VALIDATION_FORMAT, "rigs": [{"conformal": {"level": 0.9, "quantiles": {SER: 2.0}}}]}
    with pytest.raises(DataError, match="quantile"):
        check_rig_validation(bad)


def _rig(fit) -> dict:
    return {
        "format": RIG_VALIDATION_FORMAT,
        "rigs": [{"name": "rig A", "date": "2026-12-06", "days": ["d1", "d2"], "conformal": fit, "fingerprint": {}}],
    }


def _decide(p_ser, rig_validation, rig_status):
    """decide_units on one-spike-per-member cells of the given P(SER), 25 spikes each, quality ok."""
    n = len(p_ser)
    outputs = np.repeat(np.column_stack([p_ser, 1 - np.asarray(p_ser)])[:, None, :], 25, axis=0)[:, None, :, :]
    outputs = np.repeat(outputs.reshape(n * 25, 1, 2), 3, axis=1)
    unit_index = np.repeat(np.arange(n), 25)
    ids = [f"c{i}" for i in range(n)]
    quality = pd.DataFrame(
        {
            "sero_quality": "ok",
            "sero_rig": rig_status,
            "rig_index": [0 if s == "validated" else -1 for s in rig_status],
        },
        index=pd.Index(ids, name="unit_id"),
    )
    table, _ = decide_units(outputs, unit_index, ids, quality=quality, rig_validation=rig_validation)
    return table


def test_a_model_never_validated_on_a_rig_gives_no_reliable_call():
    table = _decide([0.99, 0.01, 0.6], None, ["not_validated"] * 3)
    assert list(table.columns) == UNIT_COLUMNS
    assert not table["sero_reliable"].any()
    assert (table["sero_call"] == "unsure").all() and (table["sero_set"] == "not_calibrated").all()
    assert (table["sero_unsure_reasons"] == "not_validated_on_rig").all()


def test_reliable_only_with_a_one_label_set_on_a_validated_rig_and_every_unsure_call_says_why():
    fit = {"method": "mondrian_split_conformal", "level": 0.9, "quantiles": {SER: 0.2, NSER: 0.2}}
    status = ["validated", "validated", "validated", "unlike_validated_rigs"]
    table = _decide([0.99, 0.01, 0.5, 0.99], _rig(fit), status)
    assert table["sero_set"].tolist() == [SER, NSER, "empty", "not_calibrated"]
    assert table["sero_reliable"].tolist() == [True, True, False, False]
    assert table["sero_call"].tolist() == [SER, NSER, "unsure", "unsure"]
    assert table["sero_unsure_reasons"].tolist() == ["", "", "set_empty", "unlike_validated_rigs"]
    unsure = table[~table["sero_reliable"]]
    assert (unsure["sero_unsure_reasons"] != "").all() and (unsure["sero_call"] == "unsure").all()
    wide = {"level": 0.9, "quantiles": {SER: 0.7, NSER: 0.7}}
    assert _decide([0.5], _rig(wide), ["validated"])["sero_unsure_reasons"].tolist() == ["set_both"]


def test_the_guarantee_in_words_names_the_level_the_cells_and_the_date():
    fit = fit_conformal(np.r_[np.full(10, 0.9), np.full(10, 0.1)], [SER] * 10 + [NSER] * 10)
    text = rig_guarantee(_rig(fit))
    assert "at least 90% of serotonergic cells" in text and "10 + 10 labelled cells on 2 day(s)" in text
    assert "2026-12-06" in text
    assert rig_guarantee(None) == "not validated on this rig: no call is reliable"


def test_through_the_extension_only_the_validated_model_gives_a_reliable_call(tmp_path):
    """The same clear cell: reliable with the demo (validated on its simulator), unsure with the same members
    whose folder holds no rig validation (as the published models until sero validate has run)."""
    import json
    import shutil

    from spikeinterface_sero.analyzers import recording_to_analyzer
    from spikeinterface_sero.conformal import NO_GUARANTEE
    from spikeinterface_sero.datasets import simulate_drn_recording
    from spikeinterface_sero.model import demo_model_folder

    unvalidated = tmp_path / "model"
    shutil.copytree(demo_model_folder(), unvalidated)
    info = json.loads((unvalidated / "model_info.json").read_text())
    info.pop("rig_validation")
    (unvalidated / "model_info.json").write_text(json.dumps(info))
    analyzer = recording_to_analyzer(simulate_drn_recording("serotonergic", duration_s=30.0, seed=301).to_recording())
    validated = analyzer.compute("serotonergic")
    assert validated.get_data()["sero_reliable"].tolist() == [True]
    assert "at least 90% of serotonergic cells" in validated.get_data("provenance")["guarantee"]
    ext = analyzer.compute("serotonergic", model_folder=str(unvalidated))
    units = ext.get_data()
    assert units["sero_label"].tolist() == [SER] and not units["sero_reliable"].any()
    assert units[["sero_rig", "sero_set", "sero_call", "sero_unsure_reasons"]].values.tolist() == [
        ["not_validated", "not_calibrated", "unsure", "not_validated_on_rig"]
    ]
    assert ext.get_data("provenance")["guarantee"] == NO_GUARANTEE


def _day_measures(rng, centres) -> pd.DataFrame:
    """Fingerprint measures of cells on days whose noise level and downstroke differ a little from day to day:
    each day one tight cluster of 5 cells around its own centre (log10 units)."""
    from spikeinterface_sero.fingerprint import FINGERPRINT_FEATURES

    rows = []
    for day, centre in enumerate(centres):
        for _ in range(5):
            row = {name: float(10 ** rng.normal(0.0, 0.01)) for name in FINGERPRINT_FEATURES}
            row.update(noise_pa=float(10 ** (centre + rng.normal(0, 0.01))), outward_ratio=0.5 + rng.normal(0, 0.01))
            row.update(downstroke_slope=float(10 ** (-0.5 - centre / 2 + rng.normal(0, 0.01))))
            row.update(noise_low_band=rng.normal(0, 0.05), noise_mid_band=rng.normal(-1, 0.05))
            row.update(noise_roll_off=rng.normal(-2, 0.05), group=f"day{day}")
            rows.append(row)
    return pd.DataFrame(rows)


def test_a_rigs_limits_are_learnt_from_other_days_so_a_new_day_of_the_rig_is_not_flagged():
    """Cells cluster by day: judged against their own day's cells (leave one cell out) a new day lies far
    from every cell; judged against the other days (leave one day out, the default with >= 3 named days) a
    new day between the rig's days is like the rig, and a cell far beyond them still is not."""
    from spikeinterface_sero.fingerprint import fingerprint_distance, fit_fingerprint

    rng = np.random.default_rng(5)
    rig = _day_measures(rng, [0.0, 0.3, 0.6, 0.9])
    new_day = _day_measures(rng, [0.45]).drop(columns="group")
    far = _day_measures(rng, [3.0]).drop(columns="group")
    by_day = fit_fingerprint(rig)
    by_cell = fit_fingerprint(rig.drop(columns="group"))
    assert by_day["own_distances"] == "leave one day out" and by_cell["own_distances"] == "leave one cell out"
    assert by_day["neighbours"]["limit"] > 2 * by_cell["neighbours"]["limit"]
    assert (fingerprint_distance(new_day, by_day) <= 0).all()
    assert (fingerprint_distance(new_day, by_cell) > 0).all()
    assert (fingerprint_distance(far, by_day) > 0).all()
    assert fit_fingerprint(rig, groups=["one"] * len(rig))["own_distances"] == "leave one cell out"  # one day
    # the spectrum's neighbour check needs days of the rig to learn from; one day's spectrum is the density's
    assert "spectrum" in by_day and "spectrum" not in by_cell and "density" in by_cell


def _unfiltered(measures: pd.DataFrame, share: float = 1.0) -> pd.DataFrame:
    """The same cells with noise less filtered (a gentler roll-off, more low-band power), by ``share``."""
    out = measures.copy()
    out["noise_roll_off"] += 1.5 * share
    out["noise_low_band"] += 0.5 * share
    return out


def test_a_rig_of_two_kinds_of_days_judges_a_noise_spectrum_by_the_nearest_kind():
    """Days of two kinds (filtered and unfiltered noise): the Gaussian density of the noise spectrum stretches
    between the kinds and takes a cell whose spectrum lies halfway, unlike any of the rig's days; the spectrum's
    nearest-neighbour check, its limit learnt from other days, flags it and keeps a new day of either kind."""
    from spikeinterface_sero.fingerprint import fingerprint_distance, fit_fingerprint

    rng = np.random.default_rng(7)
    unfiltered = _unfiltered(_day_measures(rng, [0.0] * 3)).assign(group=lambda t: t["group"] + "u")
    fingerprint = fit_fingerprint(pd.concat([_day_measures(rng, [0.0] * 3), unfiltered], ignore_index=True))
    assert "spectrum" in fingerprint and "density" in fingerprint
    new_day = _day_measures(rng, [0.0]).drop(columns="group")
    for share, like in ((0.0, True), (1.0, True), (0.5, False)):
        distance = fingerprint_distance(_unfiltered(new_day, share), fingerprint)
        assert ((distance <= 0) == like).all(), share
    without_spectrum = {key: value for key, value in fingerprint.items() if key != "spectrum"}
    assert (fingerprint_distance(_unfiltered(new_day, 0.5), without_spectrum) <= 0).all()  # the density takes it


@pytest.mark.filterwarnings("ignore")
def test_the_demos_stored_rig_holds_other_days_of_its_simulator_and_flags_the_membrane_rig():
    """The bundled demo's rig validation (varied and classic days of its simulator, limits learnt leaving one
    day out): cells of new days and default settings of its simulator are like it, membrane cells are not."""
    from spikeinterface_sero.analyzers import recording_to_analyzer
    from spikeinterface_sero.datasets import simulate_dataset, simulate_drn_recording
    from spikeinterface_sero.datasets.membrane import simulate_membrane_dataset
    from spikeinterface_sero.datasets.simulator import VARIED_DAYS

    def rig_status(recordings):
        out = []
        for recording in recordings:
            analyzer = recording_to_analyzer(recording.to_recording())
            out.append(analyzer.compute("serotonergic", progress_bar=False).get_data()["sero_rig"].iloc[0])
        return out

    kinds = ("serotonergic", "atypical_serotonergic", "non_serotonergic")
    default = [simulate_drn_recording(kinds[i % 3], duration_s=15.0, seed=500 + i) for i in range(6)]
    varied = simulate_dataset(
        {"serotonergic": 2, "non_serotonergic": 2}, 15.0, seed=43, n_groups=2, day_ranges=VARIED_DAYS
    )
    membrane = simulate_membrane_dataset({"serotonergic": 1, "non_serotonergic": 2}, 15.0, seed=44, n_days=1)
    own = rig_status(default + varied)
    assert own.count("validated") >= len(own) - 1  # at most 1 of 10 (the goal: <= 5 % of many)
    assert rig_status(membrane) == ["unlike_validated_rigs"] * 3


def test_the_joint_limit_lies_between_a_cell_near_every_limit_and_one_near_a_single_limit():
    """Fitted on a rig's cells of 4 days: a cell at 0.9 of the neighbour, spectrum and shape limits at once
    is beyond the joint limit, though each check alone passes it; a cell near one limit only is within it."""
    from spikeinterface_sero.fingerprint import _joint_ratio, cell_fingerprints, fingerprint_distance, fit_fingerprint

    rng = np.random.default_rng(0)
    n = 40
    measures = pd.DataFrame(
        {
            "noise_pa": rng.normal(10, 1, n),
            "noise_high_frequency": rng.uniform(0.2, 0.3, n),
            "downstroke_slope": rng.uniform(0.1, 0.2, n),
            "amplitude_pa": rng.uniform(100, 300, n),
            "half_width_ms": rng.uniform(0.3, 0.5, n),
            "outward_ratio": rng.uniform(0.2, 0.4, n),
            "firing_rate_hz": rng.uniform(1, 3, n),
            "noise_low_band": rng.normal(0, 0.1, n),
            "noise_mid_band": rng.normal(-1, 0.1, n),
            "noise_roll_off": rng.normal(-2, 0.1, n),
        }
    )
    assert list(measures.columns) == list(cell_fingerprints(np.zeros((0, 160)), np.zeros(0), 0).columns)
    shapes = rng.normal(0, 1, (n, 160))
    fingerprint = fit_fingerprint(measures, shapes, groups=[f"day{i % 4}" for i in range(n)])
    assert fingerprint["joint"]["checks"] == ["neighbours", "shapes", "spectrum"]
    own = {"a": np.array([0.2, 0.3]), "b": np.array([0.4, np.nan])}
    assert np.allclose(_joint_ratio(own), [np.sqrt((0.04 + 0.16) / 2), 0.3])
    limit = fingerprint["joint"]["limit"]
    assert 0.3 < limit < 1.0
    every = _joint_ratio({k: np.array([0.9]) for k in ("neighbours", "spectrum", "shapes")})[0]
    single = _joint_ratio({"neighbours": np.array([0.9]), "spectrum": np.array([0.2]), "shapes": np.array([0.2])})[0]
    assert every > limit > single
    # a cell of the rig itself is judged like it
    assert fingerprint_distance(measures.iloc[:5], fingerprint, shapes[:5]).max() <= 0.0
