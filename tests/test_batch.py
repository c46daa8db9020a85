"""Many files: ``sero classify FOLDER`` gives the same table with the loop, joblib (``--n-jobs 2``) and a
Dask cluster (``--engine dask --scheduler ADDRESS``); bad files give error rows, the others are still
processed, and the exit status is non-zero."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spikeinterface_sero import cli
from spikeinterface_sero.constants import SAMPLING_FREQUENCY as FS
from spikeinterface_sero.datasets import write_abf
from spikeinterface_sero.errors import SeroError
from spikeinterface_sero.pipeline import RESULT_COLUMNS, classify_files
from spikeinterface_sero.testing import synthetic_trace

GOOD = {  # file name -> (spike times in s, sweeps, channels)
    "a_cell.abf": ([0.1, 0.35, 0.62, 0.9, 1.3, 1.55], 1, 1),
    "b_two_cells.abf": ([0.2, 0.5, 0.8, 1.1, 1.4], 1, 2),
    "c_sweeps.abf": ([0.15, 0.4, 0.7], 3, 1),
    "d_quiet.abf": ([], 1, 1),  # no spike: a row with 0 spikes, not an error
}
BAD = ["e_not_abf.abf", "f_truncated.abf"]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    from spikeinterface_sero import model as M

    root = tmp_path_factory.mktemp("batch")
    folder = root / "abf"
    for i, (name, (spikes, n_sweeps, n_ch)) in enumerate(GOOD.items()):
        sweeps = [
            np.stack(
                [
                    synthetic_trace(duration_s=1.8, spike_times_s=spikes, seed=10 * i + s + c, noise_pa=2.0)
                    for c in range(n_ch)
                ],
                axis=1,
            )
            for s in range(n_sweeps)
        ]
        if n_sweeps == 1:
            write_abf(folder / name, sweeps[0], FS, data_format="int16")
        else:
            write_abf(folder / name, np.stack(sweeps), FS, mode="episodic", data_format="int16")
    (folder / BAD[0]).write_text("this is a CSV file, not an Axon recording\n1,2,3\n")
    data = (folder / "a_cell.abf").read_bytes()
    (folder / BAD[1]).write_bytes(data[:700])
    model = M.save_model(M.random_ensemble((20, 25), seed=1), root / "model", description="test", demo=False)
    return folder, model, root


def _run_cli(args) -> tuple[int, pd.DataFrame]:
    out = args[args.index("--out") + 1]
    rc = cli.main(args)
    return rc, pd.read_csv(out, keep_default_na=False, na_values=[""])


def _check_table(t: pd.DataFrame, folder) -> None:
    assert list(t.columns) == RESULT_COLUMNS
    files = [str(folder / n) for n in sorted([*GOOD, *BAD])]
    assert list(dict.fromkeys(t["file"])) == files  # rows in file order
    err = t[t["sero_label"] == "error"]
    assert sorted(err["file"].map(lambda f: f.rsplit("/", 1)[-1])) == BAD
    assert err["error"].str.len().gt(20).all()
    ok = t[t["sero_label"] != "error"]
    assert len(ok) == sum(n_ch for _, _, n_ch in GOOD.values())  # one row per cell
    assert (ok["error"].fillna("") == "").all()
    n = ok.groupby("file")["n_spikes"].sum()
    for name, (spikes, n_sweeps, n_ch) in GOOD.items():
        assert n[str(folder / name)] == len(spikes) * n_sweeps * n_ch


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6, atol=1e-9)


def test_loop_and_joblib_give_the_same_table(batch, capsys):
    folder, model, root = batch
    common = ["classify", str(folder), "--model", str(model), "--quiet"]
    rc_loop, loop = _run_cli([*common, "--out", str(root / "loop.csv")])
    rc_job, job = _run_cli([*common, "--n-jobs", "2", "--out", str(root / "joblib.csv")])
    err = capsys.readouterr().err
    assert rc_loop == 1 and rc_job == 1  # some files failed, the others were processed
    assert err.count("FAILED") == 2 * len(BAD)
    _check_table(loop, folder)
    _same(loop, job)


def test_dask_cluster_gives_the_same_table(batch):
    from dask.distributed import LocalCluster

    folder, model, root = batch
    loop = classify_files([folder], model_folder=model)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        rc, dask_t = _run_cli(
            [
                "classify",
                str(folder),
                "--model",
                str(model),
                "--quiet",
                "--engine",
                "dask",
                "--scheduler",
                cluster.scheduler_address,
                "--out",
                str(root / "dask.csv"),
            ]
        )
    assert rc == 1
    _check_table(dask_t, folder)
    ref = root / "loop_api.csv"
    loop.to_csv(ref, index=False)
    _same(pd.read_csv(ref, keep_default_na=False, na_values=[""]), dask_t)


def test_folder_without_abf_files_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["classify", str(tmp_path), "--quiet"]) == 2  # a folder without .abf files
    assert "holds no .abf files" in capsys.readouterr().err


def test_zero_n_jobs_is_a_usage_error_not_a_traceback(batch, capsys):
    folder, model, root = batch
    assert cli.main(["classify", str(folder / "a_cell.abf"), "--model", str(model), "--n-jobs", "0", "--quiet"]) == 2
    assert "--n-jobs must be a non-zero integer" in capsys.readouterr().err  # in the words of the CLI


def test_parallel_workers_keep_the_progress_bar(batch, capsys):
    """--n-jobs 2: the bar over files advances as the workers finish, and nothing else is printed."""
    folder, model, root = batch
    files = sorted(folder.glob("*.abf"))
    table = classify_files(files, n_jobs=2, progress=True, model_folder=str(model))
    captured = capsys.readouterr()
    assert set(table["file"].map(lambda f: f.split("/")[-1])) == {f.name for f in files}
    assert f"{len(files)}/{len(files)}" in captured.err and "classify" in captured.err


def _report_threads(path, **kwargs) -> pd.DataFrame:
    """A worker's job that says how many threads it was given: the numpy engine's and BLAS's."""
    from threadpoolctl import threadpool_info

    from spikeinterface_sero.model.numpy_engine import default_threads

    blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return pd.DataFrame({"file": [str(path)], "engine": [default_threads()], "blas": [max(blas, default=-1)]})


@pytest.mark.parametrize(("cores", "asked", "expected"), [(4, None, 2), (5, None, 2), (2, None, 1), (4, 3, 3)])
def test_workers_share_the_cores_between_their_threads(batch, monkeypatch, cores, asked, expected):
    """--n-jobs 2 on N cores: each worker runs N // 2 inference and BLAS threads (one each on 2 cores), or
    --threads-per-worker; never N threads each (oversubscribed) nor one each on a bigger machine (idle cores)."""
    from spikeinterface_sero.batch import run_in_processes

    folder, model, root = batch
    monkeypatch.setenv("SERO_NUM_THREADS", str(cores))  # the cores this process may use, as default_threads reads
    files = sorted(folder.glob("*.abf"))[:4]
    done = {}
    run_in_processes(_report_threads, files, 2, {}, done, max_threads_per_worker=asked)
    table = pd.concat(done.values())
    assert len(table) == 4
    assert table["engine"].tolist() == [expected] * 4
    # BLAS pools never grow past the size they started with (the machine's cores): limited, not raised
    started_with = _report_threads("parent")["blas"].iloc[0]
    assert table["blas"].tolist() == [min(expected, started_with)] * 4


def test_threads_per_worker_is_checked_before_the_work_in_the_words_of_each_interface(batch, capsys):
    folder, model, root = batch
    args = ["classify", str(folder / "a_cell.abf"), "--model", str(model), "--n-jobs", "2", "--quiet"]
    assert cli.main([*args, "--threads-per-worker", "0"]) == 2
    err = capsys.readouterr().err
    assert "--threads-per-worker must be a positive integer" in err and "Traceback" not in err
    with pytest.raises(SeroError, match="max_threads_per_worker must be a positive integer"):
        classify_files([folder / "a_cell.abf"], n_jobs=2, max_threads_per_worker=1.5, model_folder=str(model))
