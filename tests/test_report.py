"""Reports: one decodable PNG per cell and its detection view, index.html listing every cell and every failed
file (every image and link it references exists), demo banner."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from spikeinterface_sero.constants import SAMPLING_FREQUENCY as FS
from spikeinterface_sero.datasets import write_abf
from spikeinterface_sero.detection import DetectionParams, recording_to_snippets
from spikeinterface_sero.errors import SeroError
from spikeinterface_sero.pipeline import classify_files, make_report
from spikeinterface_sero.report import (
    DEMO_BANNER,
    cell_plot_name,
    detection_plot_name,
    plot_detection,
    write_summary_html,
)
from spikeinterface_sero.testing import numpy_recording, synthetic_trace


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from spikeinterface_sero.model import random_ensemble, save_model

    root = tmp_path_factory.mktemp("models")
    ens = random_ensemble((20, 25), seed=1)
    return {
        "demo": save_model(ens, root / "demo", description="test demo", demo=True),
        "real": save_model(ens, root / "real", description="test", demo=False),
    }


@pytest.fixture(scope="module")
def abf_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("abf")
    rng = np.random.default_rng(3)
    busy = synthetic_trace(duration_s=8.0, spike_times_s=np.sort(rng.uniform(0.05, 7.95, 30)), seed=1)
    a = write_abf(d / "A140313#073.abf", busy, FS, data_format="float32")
    ch0 = synthetic_trace(duration_s=4.0, spike_times_s=np.arange(0.2, 3.9, 0.4), seed=2)
    ch1 = synthetic_trace(duration_s=4.0, spike_times_s=[], seed=4)  # a silent cell: 0 spikes
    b = write_abf(d / "pair.abf", np.c_[ch0, ch1], FS, data_format="float32")
    bad = d / "broken.abf"
    bad.write_bytes(a.read_bytes()[:5000])  # truncated copy
    return [a, b, bad]


def _red_band(png) -> bool:
    """True when the top strip of the image holds the banner's red (#B00020)."""
    import matplotlib.image as mpimg

    img = mpimg.imread(png)
    top = img[: int(0.06 * img.shape[0]), :, :3]
    return bool((np.abs(top - np.array([0xB0, 0x00, 0x20]) / 255.0).max(axis=2) < 0.05).sum() > 200)


class _Page(HTMLParser):
    """The structure of index.html: open/close balance, every link and image, the table's rows."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.links, self.images, self.header, self.rows = [], [], [], 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag not in self.VOID:
            self.stack.append(tag)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "th" and "thead" in self.stack:
            self.header += 1
        if tag == "tr" and "tbody" in self.stack:
            self.rows.append(0)
        if tag == "td":
            self.rows[-1] += int(attrs.get("colspan", 1))

    def handle_endtag(self, tag):
        if tag not in self.VOID:
            assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
            self.stack.pop()


def _check_page(report):
    """index.html is well formed, every row has one cell per column, and every image and link it references
    exists; returns the parsed page."""
    page = _Page()
    page.feed((report / "index.html").read_text(encoding="utf-8"))
    page.close()
    assert page.stack == [] and page.header > 0
    assert all(n == page.header for n in page.rows), (page.header, page.rows)
    for target in page.images + page.links:
        assert (report / target).is_file(), target
    return page


def _check_report(report, table, detection_views=None):
    """``detection_views``: the cell ids that must have a detection view (None: every cell), linked from their
    row, those without spikes with the reason."""
    import matplotlib.image as mpimg

    text = (report / "index.html").read_text(encoding="utf-8")
    page = _check_page(report)
    cells = table[table["error"] == ""]
    errors = table[table["error"] != ""]
    pngs = sorted(p for p in report.glob("*.png") if not p.name.endswith("_detection.png"))  # one per cell
    # the population view, unless no cell has a UDI (no spikes anywhere): it would be empty
    has_udi = pd.to_numeric(cells["udi_ms"], errors="coerce").notna().any()
    assert (report / "views" / "population.png").is_file() == has_udi == ("population.png" in text)
    assert len(pngs) == len(cells) > 0
    expected = set(cells["cell_id"]) if detection_views is None else set(detection_views)
    for _, r in cells[cells["cell_id"].isin(expected)].iterrows():
        name = detection_plot_name(r["cell_id"], r["file"], r["channel"])
        assert (report / name).is_file() and f"thumbnails/{name}" in page.images and f'href="{name}"' in text, name
        if int(r["n_spikes"]) == 0:
            assert f'<a class="why" href="{name}">why no spikes?</a><span class="reason">no crossing of' in text
    for png in pngs:
        assert png.stat().st_size > 10_000
        img = mpimg.imread(png)
        assert img.ndim == 3 and img.shape[0] > 500 and img.shape[1] > 1000 and float(img.std()) > 0.01
        assert re.fullmatch(r"[A-Za-z0-9._-]+", png.name)
    for _, r in cells.iterrows():
        assert html.escape(r["cell_id"]) in text
        name = cell_plot_name(r["cell_id"], r["file"], r["channel"])
        assert f'href="{name}"' in text and (report / name).is_file()
        # the table shows a thumbnail of each figure, at its own size, linking to the full figure
        assert f'<a href="{name}"><img src="thumbnails/{name}"' in text
        thumbnail = mpimg.imread(report / "thumbnails" / name)
        assert thumbnail.shape[:2] == (150, 230) and float(thumbnail.std()) > 0.01
    assert '<div class="table-box"><table class="sortable">' in text  # wide tables scroll in their own box
    for _, r in errors.iterrows():
        assert html.escape(r["error"]) in text
    assert text.count('<tr class="error">') == len(errors)
    assert text.count("<tr class=") == len(table)
    return text, pngs


def test_classify_report_demo_model(abf_files, models, tmp_path):
    report = tmp_path / "report"
    table = classify_files(abf_files, model_folder=models["demo"], report_dir=report)
    write_summary_html(table, report)
    assert set(table["cell_id"]) == {"A140313#073", "pair_ch0", "pair_ch1", ""}
    assert (table["error"] != "").sum() == 1 and "truncated" in table.loc[table["error"] != "", "error"].iloc[0]
    assert int(table.loc[table["cell_id"] == "pair_ch1", "n_spikes"].iloc[0]) == 0
    text, pngs = _check_report(report, table)
    assert DEMO_BANNER in text
    assert all(_red_band(p) for p in pngs)
    assert "A140313_073_" in " ".join(p.name for p in pngs)  # '#' made safe
    calls = table.loc[table["error"] == "", "sero_call"].tolist()
    for call, chip in (("serotonergic", "reliable SER"), ("non_serotonergic", "reliable NSER"), ("unsure", "unsure")):
        assert f">{calls.count(call)} {chip}</span>" in text
    assert (report / "results.csv").is_file()
    # the same summary from the table read back from disk (NaN errors, numbers as text)
    back = pd.read_csv(report / "results.csv")
    write_summary_html(back, tmp_path / "again")
    assert (tmp_path / "again" / "index.html").read_text().count('<tr class="error">') == 1


def test_make_report_analyzers_and_paths_real_model(abf_files, models, tmp_path):
    from spikeinterface_sero import abf_to_analyzer

    analyzer = abf_to_analyzer(abf_files[1])  # not classified yet: make_report computes the extension
    saved = abf_to_analyzer(abf_files[0], format="binary_folder", folder=tmp_path / "saved_analyzer")
    saved.compute("serotonergic", model_folder=str(models["real"]))
    index = make_report(
        [analyzer, tmp_path / "saved_analyzer", abf_files[2]], tmp_path / "rep", model_folder=models["real"]
    )
    table = pd.read_csv(tmp_path / "rep" / "results.csv", keep_default_na=False)
    assert len(table) == 4
    # the saved analyzer's sorting need not carry the detection settings: only the in-memory one must have views
    text, pngs = _check_report(tmp_path / "rep", table, detection_views={"pair_ch0", "pair_ch1"})
    assert index.name == "index.html" and DEMO_BANNER not in text
    assert not any(_red_band(p) for p in pngs)
    assert str(models["real"]) in text


def test_criteria_report_and_names(abf_files, tmp_path):
    index = make_report(abf_files[0], tmp_path / "crit", method="criteria")
    text = index.read_text()
    assert "classical criteria" in text and DEMO_BANNER not in text
    assert sorted(p.name for p in (tmp_path / "crit").glob("*.png")) == [
        cell_plot_name("A140313#073", str(abf_files[0]), "0"),
        detection_plot_name("A140313#073", str(abf_files[0]), "0"),
    ]
    names = {
        cell_plot_name(c, f, "0")
        for c in ("A140313#073", "a/b\\c:d?*", "", "..", "Zelle ß", "<x>")
        for f in ("one.abf", "two.abf")
    }
    assert len(names) == 12
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.png", n) for n in names)


def test_summary_has_a_population_view_and_every_image_it_references_exists(tmp_path):
    import re

    import pandas as pd

    from spikeinterface_sero.export import RESULT_COLUMNS

    rows = pd.DataFrame(
        {
            "file": ["a.abf", "b.abf", "c.abf"],
            "cell_id": ["a", "b", "c"],
            "sero_label": ["serotonergic", "non_serotonergic", "serotonergic"],
            "sero_reliable": [True, True, False],
            "sero_quality": ["ok", "ok", "monophasic"],
            "udi_ms": [1.5, 0.4, 2.7],
            "firing_rate_hz": [1.2, 9.0, 4.0],
            "cv_isi": [0.2, 0.8, 0.4],
            "error": ["", "", ""],
        }
    ).reindex(columns=RESULT_COLUMNS)
    rows["error"] = ""
    index = write_summary_html(rows, tmp_path)
    html = index.read_text()
    assert "population.png" in html and '<span class="reasons">monophasic</span>' in html
    assert html.count('<tr class="unsure">') == 1 and html.count('<tr class="serotonergic">') == 1
    assert '<table class="sortable">' in html and "<script>" in html  # click a header to sort
    for image in re.findall(r'src="([^"]+)"', html):
        assert (tmp_path / image).is_file(), image


# ------------------------------------------------------------------------------------------------- detection view
def _lines(fig):
    """The data drawn on the detection view's trace panel, by label."""
    return {line.get_label(): line for line in fig.axes[0].get_lines()}


@pytest.fixture(scope="module")
def two_cells():
    """A busy cell on channel 0 and a silent one on channel 1 (noise and drift only)."""
    rng = np.random.default_rng(7)
    busy = synthetic_trace(duration_s=6.0, spike_times_s=np.sort(rng.uniform(0.05, 5.95, 40)), noise_pa=6.0, seed=3)
    silent = synthetic_trace(duration_s=6.0, spike_times_s=[], noise_pa=3.0, seed=5)
    return numpy_recording(np.c_[busy, silent])


@pytest.mark.parametrize(
    "params",
    [DetectionParams(), DetectionParams(mad_multiplier=5.0), DetectionParams(baseline_window_ms=None)],
    ids=["-50 pA", "5 x MAD", "fixed baseline"],
)
def test_detection_view_draws_the_detectors_threshold_and_every_trigger(two_cells, params):
    snippets = recording_to_snippets(two_cells, params)
    triggers = snippets.all_trigger_samples[snippets.all_unit_ids == "0"]
    fig = plot_detection(two_cells, [triggers], params, channel_id="0", seconds=2.0, title="busy")
    lines = _lines(fig)
    t = lines["current"].get_xdata()
    trace, baseline, threshold = (np.asarray(lines[k].get_ydata()) for k in ("current", "baseline", "threshold"))
    samples = np.round(t * FS).astype(np.int64)
    assert samples.size == int(2.0 * FS) and np.all(np.diff(samples) == 1)
    assert np.allclose(trace, two_cells.get_traces(start_frame=samples[0], end_frame=samples[-1] + 1)[:, 0])
    # the threshold drawn is the detector's: its reported threshold from the baseline drawn ...
    assert np.allclose(threshold - baseline, snippets.thresholds_pa["cell_ch0"], atol=1e-3)
    if params.baseline_window_ms is None:
        assert np.all(baseline == 0)
    else:  # the running median follows the drift, it is not one number
        assert np.ptp(baseline) > 5
    # ... and every trigger in the stretch is marked, at the first sample at or beyond the drawn threshold
    marked = np.round(lines[next(k for k in lines if k.startswith("triggers"))].get_xdata() * FS).astype(np.int64)
    inside = triggers[(triggers >= samples[0]) & (triggers <= samples[-1])]
    assert marked.size > 5 and np.array_equal(np.sort(marked), np.sort(inside))
    local = marked - samples[0]
    local = local[local > 0]
    assert np.all(trace[local] <= threshold[local] + 1e-3) and np.all(trace[local - 1] > threshold[local - 1] - 1e-3)
    # and no crossing of the drawn threshold went without a trigger (except within the dead time of one)
    below = trace <= threshold
    starts = np.flatnonzero(below[1:] & ~below[:-1]) + 1 + samples[0]
    dead = params.dead_time_ms * FS / 1000.0
    after = starts - triggers[np.clip(np.searchsorted(triggers, starts, side="right") - 1, 0, None)]
    assert np.all(np.isin(starts, triggers) | ((after >= 0) & (after <= dead)))
    # the stretch is the densest: no other window of the same length holds more triggers
    counts = np.searchsorted(triggers, triggers + samples.size) - np.arange(triggers.size)
    assert inside.size == counts.max()
    titles = [ax.get_title(loc="left") for ax in fig.axes[1:]]  # the zooms, weakest to strongest
    assert len(titles) == 4 and titles[0].startswith("weakest") and titles[-1].startswith("strongest")
    peaks = [abs(float(re.search(r"peak (-?[0-9.]+) pA", title).group(1))) for title in titles]
    assert peaks == sorted(peaks)


def test_detection_view_of_a_silent_channel_says_why(two_cells):
    params = DetectionParams()
    fig = plot_detection(two_cells, [np.zeros(0, np.int64)], params, channel_id="1", seconds=2.5, title="silent")
    lines = _lines(fig)
    trace, baseline, threshold = (np.asarray(lines[k].get_ydata()) for k in ("current", "baseline", "threshold"))
    assert trace.size == int(2.5 * FS) and np.allclose(threshold - baseline, -50.0, atol=1e-3)
    assert np.allclose(trace, two_cells.get_traces(end_frame=trace.size)[:, 1])
    (why,) = [text.get_text() for text in fig.texts if text.get_gid() == "why"]
    deepest = float((trace - baseline).min())
    noise = 1.4826 * float(np.median(np.abs(trace - baseline)))
    assert 2.0 < noise < 4.0 and -50.0 < deepest < -3 * noise  # 3 pA of noise, nothing near -50 pA
    assert why == (
        f"no crossing of -50 pA: largest inward excursion {deepest:.3g} pA, noise {noise:.2g} pA (in the first 2.5 s)"
    )
    assert "triggers (0)" in lines


def test_detection_view_lays_sweeps_end_to_end_and_refuses_bad_input(tmp_path):
    from spikeinterface.core import NumpyRecording

    sweeps = [synthetic_trace(duration_s=0.5, spike_times_s=[], seed=s)[:, None] for s in range(4)]
    recording = NumpyRecording(sweeps, sampling_frequency=FS)
    fig = plot_detection(recording, [np.zeros(0, np.int64)] * 4, None, seconds=1.2)
    trace = np.asarray(_lines(fig)["current"].get_ydata())
    assert np.allclose(trace, np.concatenate([sweeps[0][:, 0], sweeps[1][:, 0], sweeps[2][: int(0.2 * FS), 0]]))
    with pytest.raises(SeroError, match="one array per segment"):
        plot_detection(recording, [np.zeros(0, np.int64)], None)
    with pytest.raises(SeroError, match="not a channel"):
        plot_detection(recording, [np.zeros(0, np.int64)] * 4, None, channel_id="7")


def test_no_detection_view_without_the_detectors_settings(tmp_path):
    from spikeinterface_sero.analyzers import create_analyzer, snippets_to_sorting

    recording = numpy_recording(synthetic_trace(duration_s=3.0, spike_times_s=np.arange(0.2, 2.9, 0.25), seed=2))
    snippets = recording_to_snippets(recording)
    analyzer = create_analyzer(snippets_to_sorting(snippets, recording), recording)  # spikes from "elsewhere"
    index = make_report(analyzer, tmp_path, method="criteria")
    assert not list(tmp_path.glob("*_detection.png")) and len(list(tmp_path.glob("*.png"))) == 1
    assert '<td class="detection">-</td>' in index.read_text()
    _check_page(tmp_path)


def test_pclamp11_4ch_gets_a_no_spike_view_per_channel(shared_abf, tmp_path):
    from PIL import Image

    path = shared_abf / "pclamp11_4ch.abf"
    index = make_report(path, tmp_path, method="criteria")
    table = pd.read_csv(tmp_path / "results.csv", keep_default_na=False)
    assert len(table) == 4 and (table["n_spikes"] == 0).all() and (table["error"] == "").all()
    _check_report(tmp_path, table)
    text = index.read_text()
    assert text.count("why no spikes?") == 4
    for _, r in table.iterrows():
        with Image.open(tmp_path / detection_plot_name(r["cell_id"], r["file"], r["channel"])) as image:
            why = image.text["Description"]
            assert image.size[0] >= 1000
        assert why.startswith("no crossing of -50 pA: largest inward excursion") and "over the whole recording" in why
        assert html.escape(why) in text


# ------------------------------------------------------------------------------------------------- what a person reads
@pytest.fixture(scope="module")
def adapted(models):
    """An analyzer not in the paper's format (24 kHz, µV, 4 channels, 2 + 4 ms waveforms), classified with
    ci=0.8 and n_boot=200."""
    import warnings

    from spikeinterface.core import create_sorting_analyzer, generate_ground_truth_recording

    recording, sorting = generate_ground_truth_recording(
        durations=[4.0], sampling_frequency=24_000.0, num_channels=4, num_units=3, seed=11
    )
    recording.set_property("physical_unit", ["uV"] * recording.get_num_channels())
    analyzer = create_sorting_analyzer(sorting, recording, format="memory", sparse=False, return_in_uV=True)
    analyzer.compute(
        ["random_spikes", "waveforms"],
        extension_params={"random_spikes": dict(method="all"), "waveforms": dict(ms_before=2.0, ms_after=4.0)},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analyzer.compute("serotonergic", model_folder=str(models["real"]), ci=0.8, n_boot=200)
    return analyzer


def _texts(fig) -> list[str]:
    """Every text of a figure: its own, its title and its axes' (titles, labels, texts, legends)."""
    found = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        found += [ax.get_title(loc=loc) for loc in ("left", "center", "right")] + [ax.get_xlabel(), ax.get_ylabel()]
        found += [t.get_text() for t in ax.texts]
        if ax.get_legend():
            found += [t.get_text() for t in ax.get_legend().get_texts()]
    return found


def _gid(fig, gid) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_gid") and a.get_gid() == gid)]


def test_report_on_an_adapted_analyzer_shows_what_the_model_saw(adapted, tmp_path):
    from spikeinterface_sero.analyzers import snippets_from_analyzer
    from spikeinterface_sero.export import results_table
    from spikeinterface_sero.report import plot_cell, read_run, write_cell_reports

    with pytest.raises(SeroError):  # re-extracting the paper's snippets from this analyzer is impossible
        snippets_from_analyzer(adapted)
    paths = write_cell_reports(adapted, tmp_path, file="ground_truth.dat")
    assert len(paths) == 3 and all(p.stat().st_size > 10_000 for p in paths)  # no detector: no detection views
    write_summary_html(results_table(adapted, file="ground_truth.dat"), tmp_path)
    _check_page(tmp_path)
    run, cells = read_run(adapted, file="ground_truth.dat")
    ext = adapted.get_extension("serotonergic")
    spikes = ext.get_data(outputs="spikes")
    served = ext.get_data(outputs="waveforms")  # the snippets the model saw, rows aligned with "spikes"
    for cell in cells:
        mine = (spikes["unit_id"].astype(str) == str(cell.unit_id)).to_numpy()
        assert cell.waveforms.shape == (int(mine.sum()), 160) and np.array_equal(cell.p_ser, spikes["p_ser"][mine])
        assert np.array_equal(cell.waveforms, served[mine])
        fig = plot_cell(cell, run)
        (mean,) = [line for line in fig.axes[0].get_lines() if line.get_label().startswith("mean of")]
        assert np.allclose(mean.get_ydata(), cell.waveforms.mean(axis=0))
        assert np.allclose(mean.get_xdata(), (np.arange(160) - 40) / 40.0)


def test_rule_words_follow_the_extensions_parameters(adapted, abf_files, models, tmp_path):
    from spikeinterface_sero.report import plot_cell, read_run

    run, cells = read_run(adapted)
    assert "80 % percentile bootstrap over spikes, 200 resamples" in run.rule
    assert "P(SER) = 0.5 is non-serotonergic" in run.rule and ">=" not in run.rule
    info = " ".join(_gid(plot_cell(cells[0], run), "info")[0].split())
    assert "80 % percentile bootstrap over spikes, 200 resamples" in info and "95 %" not in info
    index = make_report(adapted, tmp_path, model_folder=models["real"])
    text = " ".join(index.read_text().split())
    assert "80 % percentile bootstrap over spikes, 200 resamples" in text and "95 %" not in text
    assert "SER when P(SER) &gt;= 0.5" not in text


def _unsure(row, **values):
    row = row.copy()
    row.update(
        dict(
            sero_label="serotonergic",
            sero_call="unsure",
            sero_probability=0.70,
            sero_reliable=False,
            sero_type="atypical_serotonergic",
            sero_unsure_reasons="quality+domain+few_spikes",
            sero_quality="monophasic+outward_phase_too_large+unlike_training_data+rate_too_high+refractory_violations",
            sero_domain="resampled+converted+filtered+flipped",
        )
    )
    row.update(values)
    return row


def test_an_unsure_cell_is_never_headlined_as_a_label(adapted):
    import dataclasses

    from spikeinterface_sero.report import cell_thumbnail, plot_cell, read_run
    from spikeinterface_sero.report.reader import run_words
    from spikeinterface_sero.report.words import CELL_SCALE, NO_GUARANTEE, SPIKE_SCALE

    run, cells = read_run(adapted)
    cell = dataclasses.replace(cells[0], row=_unsure(cells[0].row))
    fig = plot_cell(cell, run)
    assert fig._suptitle.get_text() == f"{cell.cell_id}:  UNSURE (leans SER, P(SER) 0.70)"
    assert not any("SEROTONERGIC" in text or "typical SER" in text for text in _texts(fig))  # nor typed
    assert cell_thumbnail(cell, run).axes[0].get_title(loc="left") == "UNSURE (leans SER, P(SER) 0.70)"
    plot_cell(dataclasses.replace(cell, cell_id="x$y$", file="a_$1.abf"), run).canvas.draw()  # drawn literally
    # the reasons in full, wrapped inside the box, never cut at its edge
    fig.canvas.draw()
    (info,) = [t for t in fig.axes[1].texts if t.get_gid() == "info"]
    words = " ".join(info.get_text().split())
    for check in ("monophasic", "refractory_violations", "filtered, flipped", "too few spikes"):
        assert check in words, check
    inside, box = info.get_window_extent(), fig.axes[1].get_window_extent()
    assert box.x0 <= inside.x0 and inside.x1 <= box.x1 and box.y0 <= inside.y0 and inside.y1 <= box.y1
    # the two scales named: raw per-spike outputs on the histogram, the calibrated cell value in words
    assert fig.axes[2].get_xlabel() == SPIKE_SCALE and any(CELL_SCALE in t for t in _texts(fig))
    guarantee = adapted.get_extension("serotonergic").get_data(outputs="provenance")["guarantee"].rstrip(".")
    assert [" ".join(t.split()) for t in _gid(fig, "guarantee")] == [f"Guarantee: {guarantee}"]
    assert run_words({}, {}).guarantee == NO_GUARANTEE and not _gid(fig, "demo")
    assert len(_gid(plot_cell(cell, dataclasses.replace(run, demo=True)), "demo")) == 1
    # the same cell when the call is reliable: its label, typed
    reliable = dataclasses.replace(cell, row=_unsure(cells[0].row, sero_call="serotonergic", sero_reliable=True))
    fig = plot_cell(reliable, run)
    assert fig._suptitle.get_text() == f"{cell.cell_id}:  SEROTONERGIC (SER)"
    assert "atypical SER (criteria say NSER)" in " ".join(_gid(fig, "info")[0].split())


def _summary_rows():
    from spikeinterface_sero.schema import RESULT_COLUMNS

    base = dict(n_spikes=40, udi_ms=1.5, firing_rate_hz=1.2, cv_isi=0.3, sero_quality="ok", error="", channel="0")
    rows = [
        dict(base, file="a.abf", cell_id="a", sero_label="serotonergic", sero_call="serotonergic", sero_reliable=True),
        dict(base, file="b.abf", cell_id="b", sero_label="non_serotonergic", sero_call="non_serotonergic"),
        dict(
            base,
            file="c.abf",
            cell_id="c",
            sero_label="serotonergic",
            sero_call="unsure",
            sero_probability=0.7,
            sero_type="atypical_serotonergic",
            sero_unsure_reasons="quality",
            sero_quality="monophasic+refractory_violations",
            sero_manual_label="serotonergic_atypical",
        ),
        dict(
            base, file='d"<i>.abf', cell_id="<b>d</b>", sero_label="undetermined", sero_call="undetermined", n_spikes=0
        ),
        dict(
            base,
            file="/data/" + "x" * 300 + ".abf",
            error="e.abf was sampled at 10000 Hz; pass allow_low_rate=True (CLI: --allow-low-rate). "
            "Say which with choose={20: '<file name>'} or a session, e.g. choose='v199'; channel None; pick a channel "
            "with channel=<id or name> (CLI: --channel) and allow_any_unit=True.",
        ),
    ]
    table = pd.DataFrame(rows).reindex(columns=RESULT_COLUMNS)
    table["header_text"] = [None, b"hell", "=HYPERLINK(1)", np.nan, None]
    return table


def test_summary_counts_and_rows_read_the_call_and_show_no_python_words(tmp_path):
    from spikeinterface_sero.report.words import NO_GUARANTEE

    index = write_summary_html(_summary_rows(), tmp_path)
    text = index.read_text()
    page = _check_page(tmp_path)
    assert len(page.rows) == 5
    for chip in ("1 reliable SER", "1 reliable NSER", "1 unsure", "1 undetermined (no spikes)", "1 failed file(s)"):
        assert f">{chip}</span>" in text, chip
    (unsure,) = re.findall(r'<tr class="unsure">.*?</tr>', text)
    assert '<td class="call">UNSURE (leans SER, P(SER) 0.70)<span class="reasons">' in unsure
    assert "monophasic, refractory_violations" in unsure and "SEROTONERGIC" not in unsure
    assert '<span class="manual">curated: serotonergic atypical</span>' in unsure  # beside the model's call
    assert '<td class="sero_type">-</td>' in unsure  # an unsure cell is not typed
    assert text.count('<tr class="serotonergic">') == 1 and text.count('<tr class="non_serotonergic">') == 1
    assert f'<div class="guarantee">Guarantee: {NO_GUARANTEE}.</div>' in text
    for python in ("allow_low_rate=True", "(CLI:", "choose=", "None", "b'hell'", "nan<", "=True"):
        assert python not in text, python
    assert "pass --allow-low-rate." in text and "choose v199" in text and '<td class="extra">hell</td>' in text
    assert "pick a channel with --channel and allow any unit." in text and "=&lt;" not in text
    assert "<b>d</b>" not in text and "&lt;b&gt;d&lt;/b&gt;" in text and 'title="d&quot;&lt;i&gt;.abf"' in text
    csv = (tmp_path / "results.csv").read_text()
    assert "b'hell'" not in csv and "None" not in csv and "hell" in csv
    assert (
        "'=HYPERLINK(1)" in csv and '<td class="extra">=HYPERLINK(1)</td>' in text
    )  # a formula neutralised in the CSV only


def _scroll_widths(page) -> list[int]:
    """(page width, table box's content width, its visible width) of ``page`` in a 1366 px wide headless
    Chromium."""
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return []
    probe = page.with_name("probe.html")
    script = (
        '<script>var b=document.querySelector(".table-box");document.title=[document.documentElement.scrollWidth,'
        "b.scrollWidth,b.clientWidth].join(' ')</script></body>"
    )
    probe.write_text(page.read_text().replace("</body>", script))
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1366,900", "--dump-dom"]
    out = subprocess.run([*command, probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    probe.unlink()
    return [int(v) for v in re.search(r"<title>([0-9 ]+)</title>", out).group(1).split()]


def test_index_fits_1366_pixels(abf_files, models, tmp_path):
    report = tmp_path / "report"
    table = classify_files(abf_files[:2], model_folder=models["demo"], report_dir=report)
    table = pd.concat([table, _summary_rows().iloc[[4]]], ignore_index=True)  # an error row with a long path
    index = write_summary_html(table, report)
    css = index.read_text().split("<style>")[1].split("</style>")[0]
    assert "max-width:1366px" in css and "overflow-wrap:anywhere" in css
    assert all(int(width) <= 1366 for width in re.findall(r"width:([0-9]+)px", css))
    widths = _scroll_widths(index)
    if widths:  # a headless Chromium is at hand: the page and its table fit a 1366 px wide window
        page, table_content, table_visible = widths
        assert page <= 1366 and table_content <= table_visible, widths


def test_detection_baseline_is_computed_once_per_segment(monkeypatch, tmp_path):
    import sys

    from spikeinterface_sero.analyzers import recording_to_analyzer
    from spikeinterface_sero.detection import detection_trace
    from spikeinterface_sero.report import DetectorLines, write_cell_reports

    rng = np.random.default_rng(5)
    sweeps = [
        np.c_[
            synthetic_trace(duration_s=2.0, spike_times_s=np.sort(rng.uniform(0.1, 1.9, 8)), seed=s),
            synthetic_trace(duration_s=2.0, spike_times_s=[], seed=s + 10),
        ]
        for s in range(2)
    ]
    recording = numpy_recording(sweeps)
    for params in (DetectionParams(), DetectionParams(mad_multiplier=5.0), DetectionParams(baseline_window_ms=None)):
        lines = DetectorLines(recording, params)
        for segment, start, end in ((0, 0, 5000), (1, 30_000, 80_000)):
            for mine, detector in zip(
                lines.stretch(segment, start, end), detection_trace(recording, segment, start, end, params)
            ):
                assert np.array_equal(mine, detector)
    analyzer = recording_to_analyzer(recording)
    analyzer.compute("serotonergic", method="criteria")
    calls = []
    detector = sys.modules[detection_trace.__module__]  # the module of the detector's baseline pass
    original = detector._pass_baseline
    monkeypatch.setattr(detector, "_pass_baseline", lambda *a, **k: calls.append(a[1]) or original(*a, **k))
    paths = write_cell_reports(analyzer, tmp_path)
    assert len(paths) == 4 and sum(p.name.endswith("_detection.png") for p in paths) == 2  # 2 cells, each viewed
    assert sorted(calls) == [0, 1]  # one baseline pass per segment for both cells, their views and thumbnails


def test_population_view_fills_only_reliable_calls():
    from spikeinterface_sero.report import plot_population

    table = _summary_rows().iloc[:4].copy()  # reliable SER, reliable NSER, unsure leaning SER, no spikes
    table.loc[3, "udi_ms"] = np.nan
    fig = plot_population(table, demo=True, guarantee="none here")
    groups = {c.get_label(): c for c in fig.axes[0].collections}
    assert set(groups) == {"SER (reliable)", "NSER (reliable)", "unsure, leans SER"}
    assert (
        len(groups["SER (reliable)"].get_facecolors()) == 1 and len(groups["unsure, leans SER"].get_facecolors()) == 0
    )
    assert fig._suptitle.get_text().startswith(DEMO_BANNER) and _gid(fig, "guarantee") == ["Guarantee: none here"]


def _running_panel(fig):
    (ax,) = [ax for ax in fig.axes if ax.get_title(loc="left").startswith("Running P(SER)")]
    return ax


@pytest.mark.parametrize("duration_s", [20.0, 4.0])
def test_the_cell_page_draws_the_running_p_ser_and_marks_the_safe_moment(duration_s, tmp_path):
    """20 s of a SER cell: the call becomes safe, marked where the extension says; 4 s (4 spikes): never safe
    (the sequential rule needs at least 10 spikes), and the page says so."""
    from spikeinterface_sero.datasets import simulate_drn_recording
    from spikeinterface_sero.report import plot_cell, read_run, write_cell_reports
    from spikeinterface_sero.report.words import CELL_SCALE
    from spikeinterface_sero.snippets import recording_to_analyzer

    spike_times = np.arange(0.3, duration_s - 0.1, 1.0 if duration_s < 10 else 0.33)
    simulated = simulate_drn_recording("serotonergic", duration_s, seed=5, firing_rate_hz=3.0)
    trace = simulated.traces if duration_s > 10 else synthetic_trace(duration_s=duration_s, spike_times_s=spike_times)
    analyzer = recording_to_analyzer(numpy_recording(trace))
    analyzer.compute("serotonergic")
    run, (cell,) = read_run(analyzer)
    row = cell.row
    ax = _running_panel(plot_cell(cell, run))
    (running,) = [line for line in ax.get_lines() if line.get_gid() == "running"]
    # one step per classified spike, at the spike's time; it ends on the cell's stored calibrated P(SER)
    x, y = running.get_xdata(), running.get_ydata()
    assert len(x) == row["n_spikes"] and np.all(np.diff(x) >= 0)
    assert y[-1] == pytest.approx(row["sero_probability"], abs=1e-9)
    assert running.get_label() == CELL_SCALE and ax.get_ylabel() == "P(SER) so far"
    markers = [line for line in ax.get_lines() if line.get_gid() == "safe_moment"]
    never = [text for text in ax.texts if text.get_gid() == "never_safe"]
    if duration_s > 10:
        (marker,) = markers
        n, when = int(row["sero_safe_after_spikes"]), row["sero_safe_after_s"]
        assert marker.get_xdata()[0] == pytest.approx(when) == pytest.approx(x[n - 1])
        assert marker.get_ydata()[0] == pytest.approx(y[n - 1])
        assert marker.get_label() == f"call safe after {n} spikes ({when:.1f} s)"
        assert not never and n < row["n_spikes"]
    else:
        assert np.isnan(row["sero_safe_after_s"]) and not markers and len(never) == 1
    pngs = write_cell_reports(analyzer, tmp_path, detection=False)
    assert len(pngs) == 1 and pngs[0].stat().st_size > 10_000
