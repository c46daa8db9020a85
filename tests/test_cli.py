"""The `sero` command: snippets, classify, import-models; exit codes and one-line errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spikeinterface_sero.cli import main
from spikeinterface_sero.constants import SAMPLING_FREQUENCY as FS
from spikeinterface_sero.datasets.abf_writer import write_abf
from spikeinterface_sero.snippets import load_npz, read_snippet_csv_folder
from spikeinterface_sero.testing import synthetic_trace


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("abf")
    a = write_abf(
        d / "A240101#001.abf",
        synthetic_trace(duration_s=3.0, spike_times_s=[0.2, 0.9, 1.5, 2.2, 2.8]),
        FS,
        data_format="float32",
    )
    b = write_abf(d / "A240101#002.abf", synthetic_trace(duration_s=3.0, spike_times_s=[0.5, 1.1, 2.6], seed=3), FS)
    bad = d / "broken.abf"
    bad.write_bytes(b"ABF2" + bytes(100))
    return a, b, bad


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    from spikeinterface_sero.model import random_ensemble, save_model

    folder = tmp_path_factory.mktemp("m") / "tiny"
    save_model(random_ensemble((20, 25), seed=1), folder, description="random weights for tests", demo=False)
    return str(folder)


def test_snippets_npz_and_csv(files, tmp_path, capsys):
    a, b, _ = files
    assert main(["snippets", str(a), str(b), "--out", str(tmp_path / "s.npz"), "--quiet"]) == 0
    sn = load_npz(tmp_path / "s.npz")
    assert len(sn) == 8 and sn.waveforms.shape == (8, 160)
    assert sorted(set(sn.cell_ids)) == ["A240101#001", "A240101#002"]
    out = capsys.readouterr().out
    assert "A240101#001" in out and "8 snippets" in out
    assert main(["snippets", str(a), "--out", str(tmp_path / "csv"), "--quiet"]) == 0
    X, cells, _ = read_snippet_csv_folder(tmp_path / "csv")
    np.testing.assert_array_equal(X, sn.waveforms[sn.cell_ids == "A240101#001"])


def test_snippets_npz_is_not_overwritten_silently(files, tmp_path, capsys):
    a, b, _ = files
    out = tmp_path / "s.npz"
    assert main(["snippets", str(a), "--out", str(out), "--quiet"]) == 0
    assert main(["snippets", str(b), "--out", str(out), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert sorted(set(load_npz(out).cell_ids)) == ["A240101#001"]  # kept
    assert main(["snippets", str(b), "--out", str(out), "--quiet", "--overwrite"]) == 0
    assert sorted(set(load_npz(out).cell_ids)) == ["A240101#002"]
    # --format npz without the suffix: the message names the file numpy writes
    assert main(["snippets", str(a), "--out", str(tmp_path / "t"), "--format", "npz", "--quiet"]) == 0
    assert str(tmp_path / "t.npz") in capsys.readouterr().out and (tmp_path / "t.npz").exists()


def test_classify_writes_rows_and_error_rows(files, model_folder, tmp_path, capsys):
    a, b, bad = files
    out = tmp_path / "results.csv"
    rc = main(["classify", str(a), str(bad), str(b), "--model", model_folder, "--out", str(out), "--quiet"])
    assert rc == 1  # one file failed, the others were processed
    t = pd.read_csv(out, keep_default_na=False)
    for col in (
        "file",
        "channel",
        "n_spikes",
        "sero_label",
        "sero_probability",
        "sero_type",
        "firing_rate_hz",
        "cv_isi",
        "udi_ms",
    ):
        assert col in t.columns
    assert t["file"].str.endswith(("A240101#001.abf", "broken.abf", "A240101#002.abf")).all()
    good = t[t["error"] == ""]
    assert good["sero_label"].isin(["serotonergic", "non_serotonergic"]).all()
    assert good["n_spikes"].astype(int).tolist() == [5, 3]
    assert "truncated or corrupt" in t.loc[t["error"] != "", "error"].iloc[0]
    captured = capsys.readouterr()
    assert "FAILED" in captured.err and "broken.abf" in captured.err


def test_classify_criteria_method(files, tmp_path):
    a, _, _ = files
    assert main(["classify", str(a), "--method", "criteria", "--out", str(tmp_path / "r.json"), "--quiet"]) == 0
    t = pd.read_json(tmp_path / "r.json")
    assert t["sero_label"].iloc[0] == t["criteria_label"].iloc[0]


def test_usage_errors_are_one_line(tmp_path, capsys):
    assert main(["snippets", str(tmp_path), "--out", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "holds no .abf files" in err
    # a threshold that contradicts the polarity is refused before any file is read
    assert main(["classify", str(tmp_path / "nope.abf"), "--threshold", "50", "--quiet", "--method", "criteria"]) == 2
    assert "does not match polarity" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--version"])


def test_import_models_cli(shared_models, tmp_path, capsys):
    out = tmp_path / "published"
    assert main(["import-models", str(shared_models / "formats"), "--out", str(out)]) == 2
    assert "ModConvBinNormN20" in capsys.readouterr().err  # two files for one kernel: refused, listed
    assert main(["import-models", str(shared_models / "BioModelDNN_BALANCED"), "--out", str(out)]) == 0
    assert "12 member(s)" in capsys.readouterr().out
    assert (out / "model_info.json").exists()


def test_train_then_evaluate_cli(tmp_path, capsys):
    from spikeinterface_sero.datasets import simulate_dataset
    from spikeinterface_sero.model import load_model

    data = tmp_path / "data"
    simulate_dataset(
        {"serotonergic": 2, "atypical_serotonergic": 1, "non_serotonergic": 3},
        duration_s=8.0,
        seed=4,
        out_dir=data,
        n_groups=3,
    )
    model = tmp_path / "model"
    assert (
        main(
            [
                "train",
                "--table",
                str(data / "labels.csv"),
                "--out",
                str(model),
                "--kernels",
                "20,24",
                "--epochs",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    assert "trained 2 member(s)" in capsys.readouterr().out
    ens = load_model(model)
    assert ens.kernels == (20, 24) and not ens.is_demo
    assert (
        main(["evaluate", "--table", str(data / "labels.csv"), "--model", str(model), "--out", str(tmp_path / "ev")])
        == 0
    )
    out = capsys.readouterr().out
    assert "spike" in out and "cell" in out and "precision" in out
    assert (tmp_path / "ev" / "report.json").exists()


def test_classify_with_a_bad_model_fails_once(files, tmp_path, capsys):
    a, b, _ = files
    assert main(["classify", str(a), str(b), "--model", str(tmp_path / "missing"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err and "sero train" in err
