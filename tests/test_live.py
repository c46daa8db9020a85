"""The live page of a watch session (live.py): its state, its server and what a real browser shows."""

import json
import pickle
import re
import shutil
import urllib.request

import numpy as np
import pandas as pd
import pytest

from spikeinterface_sero.errors import ParameterError
from spikeinterface_sero.live import MEAN_CURRENTS, LiveBoard, LiveServer, with_mean_currents


def _row(file, **values):
    row = dict(
        file=file,
        channel="0",
        cell_id=file.removesuffix(".abf"),
        sero_label="serotonergic",
        sero_call="serotonergic",
        sero_probability=0.93,
        sero_reliable=True,
        sero_unsure_reasons="",
        n_spikes=240,
        firing_rate_hz=1.4,
        sero_safe_after_spikes=31.0,
        sero_safe_after_s=22.5,
        error="",
    )
    row.update(values)
    return pd.DataFrame([row])


UNSURE = dict(sero_call="unsure", sero_reliable=False, sero_probability=0.7, sero_unsure_reasons="not_validated_on_rig")
FAILED = dict(sero_label="error", sero_call="", sero_reliable=False, error="not an ABF file", n_spikes=np.nan)


@pytest.fixture(scope="module")
def classified(tmp_path_factory):
    """Two files classified as sero watch classifies them: (rows with their mean currents, the stored means)."""
    from spikeinterface_sero.datasets import write_abf
    from spikeinterface_sero.pipeline import classify_file
    from spikeinterface_sero.testing import synthetic_trace

    folder = tmp_path_factory.mktemp("live")
    out = []
    for i, amplitude in enumerate((200.0, 120.0)):
        trace = synthetic_trace(duration_s=3.0, spike_times_s=np.arange(0.2, 2.8, 0.1), amplitude_pa=amplitude, seed=i)
        path = write_abf(folder / f"cell{i + 1}.abf", trace, 40_000.0, data_format="float32")
        rows, analyzer = classify_file(path, return_analyzer=True)
        ext = analyzer.get_extension("serotonergic")
        units = ext.get_data("spikes")["unit_id"].astype(str).to_numpy()
        stored = ext.get_data("waveforms")[units == str(analyzer.unit_ids[0])].mean(axis=0)
        out.append((with_mean_currents(rows, analyzer), stored))
    return out


def test_the_mean_current_is_the_mean_of_the_stored_snippets_and_travels_with_the_rows(classified):
    rows, stored = classified[0]
    (channel,) = rows["channel"]
    carried = pickle.loads(pickle.dumps(rows)).attrs[MEAN_CURRENTS]  # as a worker process hands the rows back
    assert list(carried) == [channel] and len(carried[channel]) == 160
    np.testing.assert_allclose(carried[channel], stored, atol=5e-4)  # 0.001 pA steps
    assert min(carried[channel]) < -100  # the snippets the model saw: a negative-going action current in pA
    board = LiveBoard()
    board.update(rows)
    (row,) = json.loads(board.state_json())["rows"]
    np.testing.assert_allclose(row["mean_current"], stored, atol=5e-4)
    board.update(rows, mean_currents={channel: [0.0] * 159})  # not 160 finite values: nothing drawn
    assert board.state()["rows"][0]["mean_current"] is None


def test_rows_whose_extension_kept_no_snippets_stand_without_a_drawing(tmp_path, caplog):
    from spikeinterface_sero.datasets import write_abf
    from spikeinterface_sero.pipeline import classify_file
    from spikeinterface_sero.testing import synthetic_trace

    trace = synthetic_trace(duration_s=2.0, spike_times_s=np.arange(0.2, 1.8, 0.1), seed=3)
    rows, analyzer = classify_file(write_abf(tmp_path / "old.abf", trace, 40_000.0), return_analyzer=True)
    del analyzer.get_extension("serotonergic").data["spike_waveforms"]  # as an earlier version stored it
    assert MEAN_CURRENTS not in with_mean_currents(rows, analyzer).attrs and "compute it again" in caplog.text
    board = LiveBoard()
    board.update(rows)
    (row,) = board.state()["rows"]
    assert row["mean_current"] is None and row["n_spikes"] == rows["n_spikes"].iloc[0] > 0 and not row["error"]


def test_a_failed_file_has_no_mean_current_and_the_board_keeps_one_row_per_cell():
    board = LiveBoard()
    board.update(_row("bad.abf", **FAILED), {"0": np.zeros(160)})
    for i in range(50):  # a growing file classified again and again: still one row, one current
        board.update(_row("a.abf", n_spikes=i + 1), {"0": np.full(160, -float(i))})
    state = board.state()
    assert [r["file"] for r in state["rows"]] == ["bad.abf", "a.abf"]
    assert state["rows"][0]["mean_current"] is None and state["rows"][1]["mean_current"] == [-49.0] * 160
    assert state["version"] == 51 and board.state_json() is board.state_json()  # one JSON text per version


def test_a_file_classified_again_replaces_its_rows_and_the_state_is_valid_json():
    board = LiveBoard(notes=["DEMO model"])
    board.update(_row("a.abf", **UNSURE))
    board.update(_row("b.abf", **FAILED))
    board.update(_row("a.abf", sero_safe_after_spikes=np.nan))
    state = json.loads(json.dumps(board.state(), allow_nan=False))
    assert [r["file"] for r in state["rows"]] == ["a.abf", "b.abf"]
    assert state["current"][0]["file"] == "a.abf" and state["current"][0]["sero_safe_after_spikes"] is None
    assert state["version"] == 3 and state["notes"] == ["DEMO model"]


def test_the_page_is_served_on_this_computer_only_and_fetches_nothing_from_elsewhere():
    with pytest.raises(ParameterError, match="local address"):
        LiveServer(LiveBoard(), host="0.0.0.0")
    server = LiveServer(LiveBoard())
    try:
        page = urllib.request.urlopen(server.url, timeout=10).read().decode()
        state = json.loads(urllib.request.urlopen(server.url + "state", timeout=10).read())
    finally:
        server.stop()
    assert "<script>" in page and "src=" not in page and "http://" not in page.replace("http://www.w3.org", "")
    assert state["rows"] == []


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("Debian's chromium and chromium-driver are not installed here (.ci/run installs them)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.binary_location = chromium
    try:
        return webdriver.Chrome(service=Service(driver), options=options)
    except Exception as error:  # a browser that cannot start here (no shared memory, a sandbox): say why
        pytest.skip(f"chromium cannot start headless here: {type(error).__name__}: {str(error)[:200]}")


def _wait_for_version(browser, version):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 15).until(
        lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-version") == str(version)
    )
    return b_text(browser, "current"), b_text(browser, "rows"), b_text(browser, "notes")


def b_text(browser, element_id):
    from selenium.webdriver.common.by import By

    return browser.find_element(By.ID, element_id).text


def test_a_real_browser_shows_each_file_as_it_arrives_unsure_calls_never_as_labels():
    board = LiveBoard(notes=["DEMO model trained on simulated recordings: not for scientific conclusions"])
    server = LiveServer(board)
    browser = _browser()
    try:
        browser.get(server.url)
        board.update(_row("cell1.abf", **UNSURE), {"0": np.sin(np.arange(160) / 10.0)})
        current, rows, notes = _wait_for_version(browser, 1)
        assert "UNSURE (leans SER, P(SER) 0.70)" in current and "SEROTONERGIC" not in current.replace("UNSURE", "")
        assert "not yet stable" not in current  # the moment is known for this cell: 31 spikes
        # an unsure call is never "enough", even once its leaning has stopped changing
        assert "stopped changing after 31 spikes (22.5 s), but the call is unsure" in current
        assert "enough" not in current and "why unsure: model not validated on this rig" in current
        assert "DEMO model" in notes
        board.update(_row("cell2.abf"))
        current, rows, _ = _wait_for_version(browser, 2)
        assert "SEROTONERGIC" in current and "cell2.abf" in current and "cell1.abf" not in current
        assert "enough: the call is stable after 31 spikes (22.5 s)" in current
        board.update(_row("bad.abf", **FAILED))
        board.update(_row("bad.abf", **FAILED))  # seen again: still one row
        current, rows, _ = _wait_for_version(browser, 4)
        assert "FAILED" in current and "reason: not an ABF file" in current
        assert rows.count("bad.abf") == 1 and rows.count("cell1.abf") == 1 and rows.count("cell2.abf") == 1
    finally:
        browser.quit()
        server.stop()


def _drawn(browser, selector):
    """The (x, y) points of each mean-current drawing the page shows under ``selector``."""
    from selenium.webdriver.common.by import By

    paths = browser.find_elements(By.CSS_SELECTOR, selector + " svg.mean-current path")
    return [np.array(re.findall(r"[ML](-?[\d.]+),(-?[\d.e-]+)", p.get_attribute("d")), dtype=float) for p in paths]


def test_a_real_browser_draws_each_cells_stored_mean_current_and_the_current_cell_large_at_the_top(classified):
    board = LiveBoard()
    server = LiveServer(board)
    browser = _browser()
    try:
        browser.get(server.url)
        for version, (rows, _) in enumerate(classified, start=1):
            board.update(rows)
            current, _, _ = _wait_for_version(browser, version)
        assert "cell2.abf" in current and "cell1.abf" not in current and "pA at its trough" in current
        (top,) = _drawn(browser, "#current")
        listed = _drawn(browser, "#rows")  # newest first
        assert len(listed) == 2 and all(points.shape == (160, 2) for points in [top, *listed])
        for points, (_, stored) in zip([top, listed[1], listed[0]], [classified[1], *classified]):
            assert np.array_equal(points[:, 0], np.arange(160))  # x: the sample
            np.testing.assert_allclose(-points[:, 1], stored, atol=5e-4)  # y: -current (pA), drawn downwards
        from selenium.webdriver.common.by import By

        sizes = [e.size["width"] for e in browser.find_elements(By.CSS_SELECTOR, "svg.mean-current")]
        assert sizes[0] > 2 * max(sizes[1:])  # the current cell's drawing is the large one
    finally:
        browser.quit()
        server.stop()


def test_sero_watch_serves_the_live_page_and_each_finished_file_reaches_it(tmp_path):
    import os
    import re
    import subprocess
    import sys
    import time

    from spikeinterface_sero.datasets import write_abf
    from spikeinterface_sero.testing import synthetic_trace

    folder = tmp_path / "today"
    folder.mkdir()
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "spikeinterface_sero.cli", "watch", str(folder), "--serve", "--settle", "0.5"]
    process = subprocess.Popen([*command, "--timeout", "60"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        url = None
        for line in process.stdout:
            found = re.search(r"live page: (http://127\.0\.0\.1:\d+/)", line)
            url = found.group(1) if found else url
            if line.startswith("watching"):
                break
        assert url is not None
        trace = synthetic_trace(duration_s=4.0, spike_times_s=np.arange(0.2, 3.8, 0.15), seed=1)
        write_abf(tmp_path / "cell.abf", trace, 40_000.0, data_format="float32").rename(folder / "cell.abf")
        deadline, state = time.monotonic() + 45, {}
        while time.monotonic() < deadline and not state.get("rows"):
            time.sleep(0.3)
            state = json.loads(urllib.request.urlopen(url + "state", timeout=10).read())
        (row,) = state["rows"]
        assert row["file"].endswith("cell.abf") and row["n_spikes"] > 0 and not row["error"]
        # the mean current the watch process read from its extension: the same as classifying the file here
        from spikeinterface_sero.pipeline import classify_file

        _, analyzer = classify_file(folder / "cell.abf", return_analyzer=True)
        stored = analyzer.get_extension("serotonergic").get_data("waveforms").mean(axis=0)
        np.testing.assert_allclose(row["mean_current"], stored, atol=5e-4)
        assert row["sero_call"] in ("unsure", "serotonergic", "non_serotonergic")
        assert any("DEMONSTRATION" in note.upper() or "demo" in note.lower() for note in state["notes"])
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_long_watch_session_keeps_its_rows_as_one_table_and_hands_each_file_with_its_currents(classified):
    from spikeinterface_sero.watch import FolderWatcher

    handed = []
    watcher = FolderWatcher(None, dict(report_dir=None, on_result=handed.append), {})
    rows, _ = classified[0]
    for i in range(100):  # a session of 100 files
        one = rows.copy()
        one["file"] = f"cell{i:03d}.abf"
        watcher.record(f"cell{i:03d}.abf", one)
    assert len(watcher.session) <= 33  # joined into one table as it goes, not a frame per file
    session = pd.concat(watcher.session, ignore_index=True)
    assert session["file"].tolist() == [f"cell{i:03d}.abf" for i in range(100)]
    assert all(MEAN_CURRENTS in r.attrs for r in handed)  # the page still gets each file's currents
