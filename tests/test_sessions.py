"""The session check: a session (a folder's cells of one recording date) unlike every validated rig leaves none
of its cells reliable, in the rows and every export, whichever way they were classified."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time

import numpy as np
import pandas as pd
import pytest

from spikeinterface_sero import watch
from spikeinterface_sero.constants import MIN_SESSION_CELLS
from spikeinterface_sero.datasets.simulator import simulate_dataset
from spikeinterface_sero.errors import ParameterError, SessionUnlikeRigWarning
from spikeinterface_sero.fingerprint import VALIDATED, cell_fingerprints, fit_fingerprint
from spikeinterface_sero.model import demo_model_folder
from spikeinterface_sero.pipeline import classify_file, classify_files
from spikeinterface_sero.session_runs import session_of
from spikeinterface_sero.sessions import SESSION_UNLIKE, check_rig_session, judge_session

_RIGS = {"rigs": [{"fingerprint": {"session": {"limit": -0.1}}}]}


def test_judge_session_is_the_median_cell_against_the_limit():
    like = judge_session([-0.5, -0.4, -0.3, -0.2, 0.9, np.nan], _RIGS, session="a")
    assert like == {"session": "a", "cells": 5, "median_rig_distance": -0.3, "limit": -0.1, "like": True}
    unlike = judge_session([-0.5, -0.4, 0.0, 0.2, 0.9], _RIGS)
    assert unlike["like"] is False and unlike["median_rig_distance"] == 0.0
    assert judge_session([0.5] * (MIN_SESSION_CELLS - 1), _RIGS) is None  # too few cells: no judgement
    # a rig validated on too few days to learn a limit: most cells unlike it alone
    assert judge_session([-0.5] * 4 + [0.5] * 5, {"rigs": [{"fingerprint": {}}]})["like"] is False
    assert judge_session([-0.5] * 5 + [0.5] * 4, {"rigs": [{"fingerprint": {}}]})["like"] is True
    assert judge_session([0.5] * 9, None) is None
    # with several rigs, the most lenient limit
    two = {"rigs": [{"fingerprint": {"session": {"limit": -0.3}}}, {"fingerprint": {"session": {"limit": 0.1}}}]}
    assert judge_session([0.0] * 5, two)["like"] is True


def test_rig_session_parameter_is_checked():
    verdict = judge_session([0.3] * 6, _RIGS, session="s")
    assert check_rig_session(verdict) == verdict and check_rig_session(None) is None
    assert json.loads(json.dumps(check_rig_session(verdict))) == verdict
    for bad in (
        {"like": False},
        {**verdict, "like": True},
        {**verdict, "cells": 2},
        "unlike",
        {**verdict, "limit": "x"},
    ):
        with pytest.raises(ParameterError, match="rig_session"):
            check_rig_session(bad)


def test_fit_fingerprint_learns_the_session_limit_from_the_worst_own_day():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 5, (400, 160))
    x[:, 40:60] -= 150 * np.hanning(20)
    index = np.repeat(np.arange(20), 20)
    measures = cell_fingerprints(x, index, 20)
    days = np.repeat(["a", "b", "c", "d"], 5)
    fitted = fit_fingerprint(measures, groups=days)
    session = fitted["session"]
    assert set(session["own_day_medians"]) == {"a", "b", "c", "d"}
    worst = max(session["own_day_medians"].values())
    assert session["limit"] == (worst / 2 if worst < 0 else worst)
    assert "session" not in fit_fingerprint(measures)  # no days: no session check
    assert "session" not in fit_fingerprint(measures.iloc[:12], groups=days[:12])  # days of < 5 cells


@pytest.fixture(scope="module")
def one_day(tmp_path_factory):
    """Six cells of the demo simulator recorded on one day, in one folder; a copy of the demo model whose
    session limit no session of any rig passes (to see the check act on cells that are like the rig alone)."""
    root = tmp_path_factory.mktemp("sessions")
    recordings = simulate_dataset(
        {"serotonergic": 3, "non_serotonergic": 3}, 20.0, seed=4242, out_dir=root / "day", n_groups=1
    )
    strict = root / "strict_model"
    shutil.copytree(demo_model_folder(), strict)
    info = json.loads((strict / "model_info.json").read_text())
    info["rig_validation"]["rigs"][0]["fingerprint"]["session"]["limit"] = -0.99
    (strict / "model_info.json").write_text(json.dumps(info))
    return [r.file for r in recordings], strict


def test_a_session_like_the_rig_changes_nothing(one_day):
    files, _ = one_day
    judged = classify_files(files)
    alone = classify_files(files, sessions="none")
    assert (judged["sero_rig"] == VALIDATED).sum() >= MIN_SESSION_CELLS
    pd.testing.assert_frame_equal(judged, alone)


def test_a_session_unlike_the_rig_leaves_no_cell_reliable_in_any_output(one_day, tmp_path):
    files, strict = one_day
    alone = classify_files(files, model_folder=strict, sessions="none")
    assert alone["sero_reliable"].sum() >= 3  # alone, these cells are like the rig and reliable
    with pytest.warns(SessionUnlikeRigWarning, match="unlike every validated rig .* none of its cells is reliable"):
        judged = classify_files(files, model_folder=strict, nwb_dir=tmp_path / "nwb", report_dir=tmp_path / "report")
    was_validated = (alone["sero_rig"] == VALIDATED).to_numpy()
    assert (judged["sero_rig"][was_validated] == SESSION_UNLIKE).all()
    assert not judged["sero_reliable"].any() and set(judged["sero_call"]) <= {"unsure", "undetermined"}
    assert judged["sero_unsure_reasons"][was_validated].str.contains(SESSION_UNLIKE).all()
    # the label itself and the distance stay: the session check only withdraws trust
    assert (judged["sero_label"] == alone["sero_label"]).all()
    np.testing.assert_allclose(judged["sero_rig_distance"], alone["sero_rig_distance"])
    # every export says what the rows say: the NWB units tables were written with the session's verdict
    from pynwb import NWBHDF5IO

    for row in judged.itertuples():
        with NWBHDF5IO(str(tmp_path / "nwb" / (row.cell_id + ".nwb")), "r") as io:
            units = io.read().units.to_dataframe()
        assert list(units["sero_rig"]) == [row.sero_rig] and not units["sero_reliable"].any()
    # one answer whatever the path: the file alone, given its session's verdict, gives the batch's row
    verdict = judge_session(
        alone["sero_rig_distance"],
        json.loads((strict / "model_info.json").read_text())["rig_validation"],
        session=session_of(files[0]),
    )
    single = classify_file(files[0], model_folder=strict, rig_session=verdict)
    pd.testing.assert_frame_equal(
        single.drop(columns="export_error"), judged.iloc[[0]].drop(columns="export_error").reset_index(drop=True)
    )


def test_sessions_are_a_folder_and_a_recording_date(one_day, tmp_path):
    files, _ = one_day
    assert len({session_of(f) for f in files}) == 1
    assert session_of(files[0]).startswith(str(files[0].parent) + " 20")  # the header's date
    # the batch reads the date from the rows, which say what the header says
    from spikeinterface_sero.io import abf_info

    rows = classify_files(files[:2], sessions="none")
    assert rows["recorded"].tolist() == [abf_info(f)["recorded"] for f in files[:2]] and rows["recorded"].iloc[0]
    assert session_of(files[0], rows["recorded"].iloc[0]) == session_of(files[0])
    with pytest.raises(ParameterError, match="sessions"):
        classify_files(files, sessions="folder")


def test_the_watch_withdraws_trust_from_a_session_found_unlike(one_day, tmp_path):
    files, strict = one_day
    folder = tmp_path / "acq"
    folder.mkdir()
    for f in files:
        shutil.copy(f, folder / f.name)
    stop, rows = threading.Event(), []
    box = {}

    def run():
        box["table"] = watch.watch_folder(
            folder,
            model_folder=strict,
            process_existing=True,
            stop_event=stop,
            on_result=rows.append,
            settle_s=0.2,
            poll_s=0.05,
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    end = time.monotonic() + 120
    while time.monotonic() < end and not (
        rows and len(latest := watch.latest_rows(pd.concat(rows))) == len(files) and not latest["sero_reliable"].any()
    ):
        time.sleep(0.1)
    stop.set()
    thread.join(timeout=30)
    latest = watch.latest_rows(box["table"])
    assert len(latest) == len(files)
    assert not latest["sero_reliable"].any() and (latest["sero_rig"] != VALIDATED).all()
    assert (latest["sero_rig"] == SESSION_UNLIKE).sum() >= 3
    # the cells classified before the verdict were reliable, and were superseded, not forgotten
    assert box["table"]["sero_reliable"].any() and len(box["table"]) > len(files)


def test_validation_holds_each_day_out_as_a_session():
    from spikeinterface_sero.fingerprint import mean_normalised_shapes
    from spikeinterface_sero.validation import compute_figures, cross_fit

    rng = np.random.default_rng(11)
    rows = []
    for day, width in (("a", 20), ("b", 20), ("c", 20), ("d", 44)):  # day d: another electrode, wider spikes
        for cell in range(6):
            x = rng.normal(0, 4, (60, 160))
            x[:, 40 : 40 + width] -= rng.uniform(120, 180) * np.hanning(width)
            label = "serotonergic" if cell % 2 else "non_serotonergic"
            p = rng.uniform(0.8, 0.99) if cell % 2 else rng.uniform(0.01, 0.2)
            measures = cell_fingerprints(x, np.zeros(60, int), 1).iloc[0].to_dict()
            shape = mean_normalised_shapes(x, np.zeros(60, int), 1)[0]
            rows.append(
                dict(
                    measures,
                    group=day,
                    label=label,
                    type="",
                    sero_label=label,
                    sero_probability=p,
                    n_spikes=60,
                    sero_quality="ok",
                    sero_domain="in_domain",
                    member_spread=0.01,
                    shape=shape,
                )
            )
    cells, how = cross_fit(pd.DataFrame(rows), level=0.9, min_spikes=20)
    assert how.startswith("leave one day out")
    assert compute_figures(cells)["same_rig_sessions_unlike"] == {"judged": 4, "unlike": 1, "days": ["d"]}
    assert not cells.loc[cells["group"] == "d", "oof_reliable"].any()


def test_sero_classify_says_which_session_is_unlike_the_rig(one_day, tmp_path):
    from spikeinterface_sero.cli import main

    files, strict = one_day
    said = f"session {re.escape(str(files[0].parent))} 20.*unlike every validated rig.*none of its cells is reliable"
    command = ["classify", *map(str, files), "--model", str(strict), "--quiet"]
    with pytest.warns(SessionUnlikeRigWarning, match=said):  # printed as 'sero classify: warning: session ...'
        assert main([*command, "--out", str(tmp_path / "t.csv")]) == 0
    table = pd.read_csv(tmp_path / "t.csv")
    assert not table["sero_reliable"].any() and (table["sero_rig"] == SESSION_UNLIKE).sum() >= 3
    assert main([*command, "--out", str(tmp_path / "u.csv"), "--sessions", "none"]) == 0
    assert pd.read_csv(tmp_path / "u.csv")["sero_reliable"].sum() >= 3
