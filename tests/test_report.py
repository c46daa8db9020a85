"""Reports: one decodable PNG per cell, index.html listing every cell and every failed file, demo banner."""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest

from spikeinterface_sero.constants import SAMPLING_FREQUENCY as FS
from spikeinterface_sero.datasets import write_abf
from spikeinterface_sero.pipeline import classify_files, make_report
from spikeinterface_sero.report import DEMO_BANNER, cell_plot_name, write_summary_html
from spikeinterface_sero.testing import synthetic_trace


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


def _check_report(report, table):
    import matplotlib.image as mpimg

    text = (report / "index.html").read_text(encoding="utf-8")
    cells = table[table["error"] == ""]
    errors = table[table["error"] != ""]
    pngs = sorted(report.glob("*.png"))  # one per cell; the population view is in views/
    assert (report / "views" / "population.png").is_file()
    assert len(pngs) == len(cells) > 0
    for png in pngs:
        assert png.stat().st_size > 10_000
        img = mpimg.imread(png)
        assert img.ndim == 3 and img.shape[0] > 500 and img.shape[1] > 1000 and float(img.std()) > 0.01
        assert re.fullmatch(r"[A-Za-z0-9._-]+", png.name)
    for _, r in cells.iterrows():
        assert html.escape(r["cell_id"]) in text
        name = cell_plot_name(r["cell_id"], r["file"], r["channel"])
        assert f'href="{name}"' in text and (report / name).is_file()
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
    assert "SEROTONERGIC" in text or "NON-SEROTONERGIC" in text
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
    text, pngs = _check_report(tmp_path / "rep", table)
    assert index.name == "index.html" and DEMO_BANNER not in text
    assert not any(_red_band(p) for p in pngs)
    assert str(models["real"]) in text


def test_criteria_report_and_names(abf_files, tmp_path):
    index = make_report(abf_files[0], tmp_path / "crit", method="criteria")
    text = index.read_text()
    assert "classical criteria" in text and DEMO_BANNER not in text
    assert len(list((tmp_path / "crit").glob("*.png"))) == 1
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
    assert "population.png" in html and "no: monophasic" in html and 'class="serotonergic unsure"' in html
    assert '<table class="sortable">' in html and "<script>" in html  # click a header to sort
    for image in re.findall(r'src="([^"]+)"', html):
        assert (tmp_path / image).is_file(), image
