"""Training package: labels, datasets, balancing, caps, leak-free splits, synthetic stream, fused training,
model folders, evaluation."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from spikeinterface_sero.errors import TrainingError
from spikeinterface_sero.testing import biphasic_action_current
from spikeinterface_sero.training import (
    LeakageWarning,
    SyntheticGenerator,
    balance_classes,
    calibration,
    cap_per_cell,
    cell_kfold,
    check_no_leakage,
    choose_masks,
    confusion,
    dataset_from_arrays,
    dataset_from_table,
    evaluate,
    evaluate_predictions,
    leak_free_split,
    make_training_stream,
    noise_masks_from_traces,
    parse_kernels,
    parse_label,
    read_label_table,
    smooth3,
    spike_free_starts,
    spike_level_split,
    train_ensemble,
)
from spikeinterface_sero.training.synthetic import epoch_plan

T = np.arange(160)


def _toy(n_cells=12, per_cell=40, seed=0, groups=4, noise=6.0, unequal=False):
    """Easy two-class set: broad (SER) vs narrow (NSER) negative-first spikes, cells spread over groups."""
    rng = np.random.default_rng(seed)
    X, y, c, g = [], [], [], []
    for i in range(n_cells):
        lab = i % 2
        n = per_cell + (30 * i if unequal else 0)
        w = 7.0 if lab == 0 else 2.5
        base = biphasic_action_current(T - 45, 200.0, w, 3 * w, positive_width_factor=1.5)
        X.append(base + rng.normal(0, noise, (n, 160)))
        y += [lab] * n
        c += [f"cell{i:02d}"] * n
        g += [f"day{(i // 2) % groups}"] * n  # a day holds a SER and an NSER cell
    return dataset_from_arrays(np.concatenate(X), y, c, group=g)


# ------------------------------------------------------------------------------------------------ labels
@pytest.mark.parametrize(
    "value,expected",
    [
        ("serotonergic", 0),
        ("SER", 0),
        ("ser", 0),
        (" Serotonergic ", 0),
        ("non_serotonergic", 1),
        ("NSER", 1),
        ("nser", 1),
        ("Non-Serotonergic", 1),
    ],
)
def test_parse_label(value, expected):
    assert parse_label(value) == expected


def test_bad_label_names_the_row(tmp_path):
    (tmp_path / "a.abf").write_bytes(b"")
    (tmp_path / "b.abf").write_bytes(b"")
    (tmp_path / "t.csv").write_text("file,label\na.abf,SER\nb.abf,5-HT\n")
    with pytest.raises(TrainingError, match=r"'5-HT'.*row 3"):
        read_label_table(tmp_path / "t.csv")
    (tmp_path / "t2.csv").write_text("file,label,group\na.abf,SER,d1\nsub/b.abf,NSER,d2\n")
    with pytest.raises(TrainingError, match="not found"):
        read_label_table(tmp_path / "t2.csv")
    (tmp_path / "t3.csv").write_text("path,label\na.abf,SER\n")
    with pytest.raises(TrainingError, match="file"):
        read_label_table(tmp_path / "t3.csv")


def test_label_table_paths_relative_to_table(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.abf").write_bytes(b"")
    (tmp_path / "t.csv").write_text("file,label,channel,group\nsub/b.abf,NSER,0,d1\n")
    rows = read_label_table(tmp_path / "t.csv")
    assert rows.loc[0, "path"] == (tmp_path / "sub" / "b.abf").resolve()
    assert rows.loc[0, "y"] == 1 and rows.loc[0, "channel"] == "0" and rows.loc[0, "group"] == "d1"


def test_parse_kernels():
    assert parse_kernels("20-31") == list(range(20, 32))
    assert parse_kernels("20,22-23") == [20, 22, 23]
    with pytest.raises(TrainingError):
        parse_kernels("40")


# ---------------------------------------------------------------------------------------- cap / balance
def test_balance_and_cap_counts():
    ds = _toy(n_cells=6, per_cell=50, unequal=True)  # cells have 50, 80, ..., 200 spikes
    counts = np.bincount(ds.y)
    assert counts[0] != counts[1]
    b = balance_classes(ds, seed=1)
    nb = np.bincount(b.y)
    assert nb[0] == nb[1] == counts.min()
    # the minority class is kept whole, the majority subsampled; same seed -> same subset
    assert np.array_equal(b.X[b.y == np.argmin(counts)], ds.X[ds.y == np.argmin(counts)])
    assert np.array_equal(balance_classes(ds, seed=1).X, b.X)
    assert not np.array_equal(balance_classes(ds, seed=2).X, b.X)

    capped = cap_per_cell(ds, 100, seed=0)
    per = capped.cells["n_spikes"]
    orig = ds.cells["n_spikes"]
    assert (per == np.minimum(orig, 100)).all()
    assert (pd.Series(capped.cell).value_counts().reindex(per.index) == per).all()
    # kept spikes are real rows of the original, in original order
    keep = np.flatnonzero(ds.cell == "cell05")
    sub = capped.X[capped.cell == "cell05"]
    pos = [int(np.flatnonzero((ds.X[keep] == s).all(axis=1))[0]) for s in sub]
    assert pos == sorted(pos) and len(set(pos)) == 100


def test_dataset_save_load_roundtrip(tmp_path):
    ds = _toy(n_cells=4, per_cell=5)
    ds = dataset_from_arrays(ds.X, ds.y, ds.cell, ds.group, noise=np.ones((2, 160)), noise_cell=["cell00", "cell01"])
    back = type(ds).load(ds.save(tmp_path / "d.npz"))
    assert np.array_equal(back.X, ds.X) and np.array_equal(back.cell, ds.cell) and back.has_groups
    assert back.cells.equals(ds.cells) and np.array_equal(back.noise, ds.noise)
    sub = ds.select_cells(["cell01"])
    assert list(sub.cells.index) == ["cell01"] and list(sub.noise_cell) == ["cell01"]


# ------------------------------------------------------------------------------------------------ splits
def test_leak_free_splits_have_no_overlap():
    ds = _toy(n_cells=16, per_cell=10, groups=8)
    for by in ("group", "cell"):
        sp = leak_free_split(ds, val_fraction=0.2, test_fraction=0.2, by=by, seed=3)
        check_no_leakage(sp, ds)
        sides = [set(ds.cell[i]) for i in (sp.train, sp.val, sp.test)]
        assert all(sides) and not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
        if by == "group":
            gs = [set(ds.group[i]) for i in (sp.train, sp.val, sp.test)]
            assert not (gs[0] & gs[1]) and not (gs[0] & gs[2]) and not (gs[1] & gs[2])
        assert len(sp.train) + len(sp.val) + len(sp.test) == len(ds)
        d = sp.describe(ds)
        assert d["leak_free"] and d["cells_on_more_than_one_side"] == 0
        assert {0, 1} <= set(ds.y[sp.test])  # stratified by cell label

    folds = cell_kfold(ds, n_splits=4, by="group", seed=0)
    seen = []
    for f in folds:
        check_no_leakage(f, ds)
        seen += list(np.unique(ds.cell[f.test]))
    assert sorted(seen) == sorted(ds.cells.index)  # every cell tested exactly once


def test_spike_level_split_warns_and_leaks():
    ds = _toy(n_cells=4, per_cell=50)
    with pytest.warns(LeakageWarning, match="leakage"):
        sp = spike_level_split(ds, seed=42)
    assert len(sp.test) == pytest.approx(0.15 * len(ds), abs=2)
    assert set(ds.cell[sp.train]) & set(ds.cell[sp.test])
    assert not sp.describe(ds)["leak_free"]
    with pytest.raises(TrainingError, match="both"):
        check_no_leakage(sp, ds)


# ------------------------------------------------------------------------------------------- synthetic
def test_smooth3_is_the_3_point_moving_mean():
    x = np.random.default_rng(0).normal(0, 50, (5, 160)).astype(np.float32)
    s = smooth3(x)
    ref = pd.DataFrame(x.T.astype(np.float64)).rolling(3, center=True, min_periods=1).mean().to_numpy().T
    np.testing.assert_allclose(s, ref, rtol=0, atol=1e-4)
    np.testing.assert_allclose(s[:, 7], (x[:, 6].astype(float) + x[:, 7] + x[:, 8]) / 3, atol=1e-4)


def test_spike_free_windows_keep_the_margin():
    rng = np.random.default_rng(1)
    n, margin = 200_000, 200
    trig = np.sort(rng.choice(np.arange(100, n - 200), 60, replace=False))
    starts = spike_free_starts(n, trig, margin=margin)
    assert len(starts) > 100
    assert (starts >= 0).all() and (starts + 160 <= n).all()
    assert (np.diff(starts) >= 160).all()  # non-overlapping
    for s in starts:  # window [s, s+160) vs spike zone [t-40-margin, t+120+margin)
        assert ((s + 160 <= trig - 40 - margin) | (s >= trig + 120 + margin)).all()
    # masks: a trace that is huge inside every spike zone gives only small, mean-free masks
    trace = rng.normal(0, 2.0, n).astype(np.float32) + 30.0
    for t in trig:
        trace[max(0, t - 40 - margin + 1) : t + 120 + margin - 1] = -1000.0
    masks = noise_masks_from_traces([trace], [trig], n_masks=50, margin=margin, rng=0)
    assert masks.shape == (50, 160)
    assert np.abs(masks).max() < 20
    np.testing.assert_allclose(masks.mean(axis=1), 0, atol=1e-4)


def test_generator_deterministic_balanced_and_exact():
    ds = _toy(n_cells=6, per_cell=30)
    masks, info = choose_masks(ds, 600, seed=0, source="residual")
    assert info["source"] == "residual" and len(masks) == 180  # at most one per snippet
    gen = SyntheticGenerator(smooth3(ds.X), ds.y, masks, seed=5)
    x1, y1, spk, msk = gen.batch(epoch=2, index=7, n=1001)
    x2, y2, _, _ = gen.batch(epoch=2, index=7, n=1001)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert not np.array_equal(gen.batch(epoch=3, index=7, n=1001)[0], x1)
    assert not np.array_equal(SyntheticGenerator(smooth3(ds.X), ds.y, masks, seed=6).batch(2, 7, 1001)[0], x1)
    assert abs(int((y1 == 0).sum()) - int((y1 == 1).sum())) == 1
    np.testing.assert_array_equal(ds.y[spk], y1)  # each sample's label is its spike's
    np.testing.assert_array_equal(x1, smooth3(ds.X)[spk] + masks[msk])  # values = smoothed spike + mask
    X, y = gen.generate(20_000)
    assert (y == 0).sum() == (y == 1).sum() == 10_000


def test_residual_fallback_warns_and_recording_masks_preferred():
    ds = _toy(n_cells=4, per_cell=20)
    with pytest.warns(UserWarning, match="no recording traces"):
        choose_masks(ds, 10)
    pool = np.random.default_rng(0).normal(0, 3, (40, 160)).astype(np.float32)
    ds2 = dataset_from_arrays(ds.X, ds.y, ds.cell, noise=pool, noise_cell=np.repeat(ds.cells.index, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m, info = choose_masks(ds2, 8, seed=0)
    assert info["source"] == "given" and info["n_cells"] == 4  # round-robin over cells
    assert all((pool == r).all(axis=1).any() for r in m)


def test_training_stream_epoch_composition():
    ds = _toy(n_cells=4, per_cell=25)  # 100 real spikes
    gen = SyntheticGenerator.from_dataset(
        dataset_from_arrays(ds.X, ds.y, ds.cell, noise=np.zeros((4, 160)), noise_cell=ds.cells.index), seed=0
    )
    nb, real, syn = epoch_plan(100, 1000, 64)
    assert nb == 18 and real.sum() == 100 and syn.sum() == 1000 and (real + syn <= 64).all()
    stream = make_training_stream(ds.X, ds.y, generator=gen, n_synthetic=1000, batch_size=64, seed=1)
    batches = [stream.get_batch(i) for i in range(len(stream))]
    xr = np.concatenate([x[~s] for x, _, s in batches])
    assert sum(int(s.sum()) for _, _, s in batches) == 1000
    # every real spike exactly once per epoch
    assert sorted(map(bytes, xr)) == sorted(map(bytes, ds.X))
    again = stream.get_batch(3)
    assert np.array_equal(again[0], batches[3][0])
    stream.on_epoch_end()
    assert not np.array_equal(stream.get_batch(3)[0], batches[3][0])


def test_dataset_from_table_with_simulated_abf(tmp_path):
    from spikeinterface_sero.datasets import simulate_dataset
    from spikeinterface_sero.io import read_abf

    recs = simulate_dataset(
        {"serotonergic": 2, "non_serotonergic": 2}, duration_s=6.0, seed=3, out_dir=tmp_path, n_groups=2
    )
    ds = dataset_from_table(tmp_path / "labels.csv", noise_per_cell=20, noise_margin_ms=5.0, seed=0)
    assert ds.has_groups and ds.n_cells == 4 and set(ds.group) == {"day01", "day02"}
    for r in recs:
        c = r.file.stem
        assert ds.cells.loc[c, "label"] == r.label and ds.cells.loc[c, "group"] == r.group
        n = int((ds.cell == c).sum())
        assert abs(n - len(r.spike_samples)) <= 2  # every simulated spike detected, cell identity kept
    assert ds.noise.shape == (80, 160) and ds.source["noise_source"] == "recording"
    np.testing.assert_allclose(ds.noise.mean(axis=1), 0, atol=1e-3)
    # every mask is a stretch of its recording at least the margin away from every spike
    margin = 200
    for r in recs:
        tr = read_abf(r.file).get_traces(segment_index=0, return_in_uV=True)[:, 0].astype(np.float64)
        d = np.diff(tr)
        for m in ds.noise[ds.noise_cell == r.file.stem][:5]:
            dm = np.diff(m.astype(np.float64))
            cand = np.flatnonzero(np.abs(d[: len(d) - 158] - dm[0]) < 1e-3)
            hits = [s for s in cand if np.allclose(d[s : s + 159], dm, atol=1e-3)]
            assert hits, "mask not found in its recording"
            s = hits[0]
            t = np.asarray(r.spike_samples)
            assert ((s + 160 <= t - 40 - margin + 3) | (s >= t + 120 + margin - 3)).all()
    capped = dataset_from_table(tmp_path / "labels.csv", noise_per_cell=0, max_per_cell=10)
    assert (capped.cells["n_spikes"] <= 10).all() and capped.noise is None
    assert (capped.cells["n_detected"] >= capped.cells["n_spikes"]).all()


def test_dataset_from_csv_folders(tmp_path):
    from spikeinterface_sero.snippets import Snippets, write_snippet_csv_folder
    from spikeinterface_sero.training import dataset_from_csv_folders

    rng = np.random.default_rng(0)
    for sub, cells in (("SER", ["A140313#073", "A140314#001"]), ("NSER", ["A140313#080"])):
        ids = np.repeat(cells, 3)
        w = rng.normal(0, 20, (len(ids), 160)).astype(np.float32)
        sn = Snippets(w, np.arange(len(ids)) * 1000 + 500, np.zeros(len(ids), int), np.zeros(len(ids), str), ids)
        write_snippet_csv_folder(sn, tmp_path / sub)
    ds = dataset_from_csv_folders(tmp_path, group="day")
    assert ds.n_cells == 3 and len(ds) == 9
    assert ds.cells.loc["A140313#080", "label"] == "non_serotonergic"
    assert ds.cells.loc["A140314#001", "group"] == "A140314" and ds.has_groups
    assert ds.noise is None and ds.source["noise_source"] == "none"


# ------------------------------------------------------------------------------------------------ training
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    ds = _toy(n_cells=12, per_cell=35, groups=6)
    sp = leak_free_split(ds, val_fraction=0.2, test_fraction=0.2, seed=0)
    tr, va, te = sp.apply(ds)
    out = tmp_path_factory.mktemp("models") / "m"
    ens, hist = train_ensemble(
        tr,
        va,
        kernels=[20, 23],
        epochs=2,
        synthetic=128,
        seed=0,
        out=out,
        test=te,
        split=sp.describe(ds),
        progress_bar=False,
        keep_fused=True,
        noise="residual",
        description="unit test model",
        precision="float32",  # the exact member-vs-branch checks below; "auto" takes bfloat16 on AVX512-BF16 CPUs
    )
    return ds, tr, va, te, ens, hist, out


def test_fused_training_reduces_loss_and_members_match(trained):
    ds, tr, va, te, ens, hist, out = trained
    h = hist["history"]
    assert hist["epochs_run"] == 2 and h["loss"][1] < h["loss"][0]
    assert {"k20_loss", "k23_loss", "val_k20_loss", "val_k23_loss"} <= set(h)
    # the summed loss is the sum of the members' losses (up to Keras' batch-size weighting of the means)
    assert h["val_loss"][1] == pytest.approx(h["val_k20_loss"][1] + h["val_k23_loss"][1], rel=1e-2)
    from spikeinterface_sero.model import check_member_architecture, to_member_input

    fused = hist["fused_model"]
    x = to_member_input(te.X[:64])
    branch = fused.predict(x, verbose=0)
    for j, k in enumerate([20, 23]):
        m = ens.members[j]
        assert check_member_architecture(m) == k  # the published member, standalone
        np.testing.assert_allclose(m.predict(x, verbose=0), branch[f"k{k}"], rtol=0, atol=1e-6)
    pm = ens.predict_members(te.X[:64])
    np.testing.assert_allclose(pm[:, 0], branch["k20"], atol=1e-4)
    assert hist["test_metrics"]["spike_accuracy"] > 0.9


def test_model_folder_written_and_loadable(trained):
    ds, tr, va, te, ens, hist, out = trained
    from spikeinterface_sero.model import load_model

    info = json.loads((out / "model_info.json").read_text())
    assert info["kernels"] == [20, 23] and info["demo"] is False
    assert "held-out test" in info["metrics"] and "validation" in info["metrics"]
    assert "by group" in info["training"]["split"]
    card = (out / "README.md").read_text()
    assert "unit test model" in card and "training_set" in card
    full = json.loads((out / "training.json").read_text())
    assert full["split"]["leak_free"] and full["split"]["test"]["cell_ids"]
    loaded = load_model(out)
    np.testing.assert_allclose(loaded.predict(te.X), ens.predict(te.X), atol=1e-6)
    with pytest.raises(TrainingError, match="exists"):
        train_ensemble(tr, va, kernels=[20], epochs=1, out=out, progress_bar=False)


def test_training_is_reproducible_from_seed():
    ds = _toy(n_cells=4, per_cell=30)
    kw = dict(kernels=[20], epochs=1, synthetic=64, seed=11, progress_bar=False, noise="residual")
    a, _ = train_ensemble(ds, None, **kw)
    b, _ = train_ensemble(ds, None, **kw)
    for wa, wb in zip(a.members[0].get_weights(), b.members[0].get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_train_from_table_and_evaluate_table(tmp_path):
    from spikeinterface_sero.datasets import simulate_dataset
    from spikeinterface_sero.training import evaluate_table, train_from_table

    simulate_dataset(
        {"serotonergic": 3, "non_serotonergic": 3}, duration_s=8.0, seed=1, out_dir=tmp_path / "sim", n_groups=3
    )
    res = train_from_table(
        tmp_path / "sim" / "labels.csv",
        tmp_path / "model",
        kernels="20",
        epochs=1,
        synthetic=64,
        seed=0,
        val_fraction=0.34,
        test_fraction=0.34,
        progress_bar=False,
    )
    s = json.loads(json.dumps(res.summary()))
    assert s["split"]["by"] == "group" and s["split"]["leak_free"] and s["split"]["groups_on_more_than_one_side"] == 0
    assert s["sides"]["test"]["groups"] == 1 and s["sides"]["train"]["groups"] == 1
    assert (tmp_path / "model" / "evaluation" / "report.json").is_file()
    info = json.loads((tmp_path / "model" / "model_info.json").read_text())
    assert "recording" in info["training"]["synthetic"] and "held-out test" in info["metrics"]
    r = evaluate_table(tmp_path / "sim" / "labels.csv", tmp_path / "model", tmp_path / "rep")
    assert r["cell"]["n"] == 6 and sum(map(sum, r["cell"]["counts"])) == 6
    assert (tmp_path / "rep" / "confusion_cell.png").is_file()


# ---------------------------------------------------------------------------------------------- evaluation
def test_confusion_counts_and_normalisations():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    p = np.array([0, 0, 0, 1, 1, 1, 1, 1, 0, 0])
    c = confusion(y, p)
    assert c["counts"] == [[3, 1], [2, 4]]  # [[TP, FN], [FP, TN]]
    assert c["row_normalised"] == [[0.75, 0.25], [pytest.approx(1 / 3), pytest.approx(2 / 3)]]
    assert c["column_normalised"] == [[0.6, 0.2], [0.4, 0.8]]
    assert c["rates"]["TPR"] == 0.75 and c["rates"]["PPV"] == 0.6 and c["rates"]["NPV"] == 0.8
    assert "normalize='pred'" in c["normalisation"]["column_normalised"]


def test_evaluate_hand_made_case(tmp_path):
    # 3 cells: A (SER, 3 spikes), B (SER, 2 spikes), C (NSER, 3 spikes); two "members"
    cell = ["A", "A", "A", "B", "B", "C", "C", "C"]
    y = [0, 0, 0, 0, 0, 1, 1, 1]
    ds = dataset_from_arrays(np.zeros((8, 160)), y, cell)
    ser = np.array([0.9, 0.8, 0.3, 0.2, 0.4, 0.1, 0.6, 0.2])  # member output for unit 0
    P = np.stack([np.stack([ser, 1 - ser], 1)] * 2, axis=1)
    r = evaluate_predictions(P, ds, kernels=[20, 21])
    # spikes: SER predicted for 0.9, 0.8 (A), 0.6 (C)
    assert r["spike"]["counts"] == [[2, 3], [1, 2]]
    assert r["spike"]["accuracy"] == pytest.approx(4 / 8)
    # cells: A mean 0.667 -> SER, B 0.3 -> NSER, C 0.3 -> NSER
    assert r["cell"]["counts"] == [[1, 1], [0, 1]]
    assert r["cell"]["rates"]["TPR"] == 0.5 and r["cell"]["rates"]["PPV"] == 1.0
    assert 0 <= r["spike"]["calibration"]["ece"] <= 1 and 0 <= r["cell"]["calibration"]["ece"] <= 1
    assert len(r["per_kernel"]) == 2 and r["per_kernel"][0]["spike_accuracy"] == pytest.approx(0.5)

    class Stub:  # duck-typed ensemble
        kernels = (20, 21)
        info = {}

        def predict_members(self, X, batch_size=0):
            return P

    r2 = evaluate(Stub(), ds, tmp_path / "rep")
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["spike"]["counts"] == [[2, 3], [1, 2]] and rep["cells"][0]["cell_id"] == "A"
    assert "PPV" in rep["spike"]["normalisation"]["column_normalised"]
    for f in ("confusion_spike.png", "confusion_cell.png", "reliability.png", "per_kernel.png", "cells.csv"):
        assert (tmp_path / "rep" / f).stat().st_size > 0
    assert r2["cell"]["accuracy"] == pytest.approx(2 / 3)


def test_ece_values():
    assert calibration([1, 0, 1, 0], [1.0, 0.0, 1.0, 0.0])["ece"] == 0.0
    assert calibration([0, 0, 0, 0], [1.0, 1.0, 1.0, 1.0])["ece"] == 1.0
    e = calibration(np.random.default_rng(0).integers(0, 2, 500), np.random.default_rng(1).random(500))["ece"]
    assert 0 <= e <= 1


def test_training_fits_a_calibration_the_whole_path_applies(trained, tmp_path):
    """The temperature fitted on the validation cells is stored in model_info.json, read back, and applied
    by the decision module wherever cells are classified; labels do not change."""
    import json

    from spikeinterface_sero.decision import calibrate, cell_decisions, consensus_of
    from spikeinterface_sero.model import load_model

    ds, tr, va, te, ens, hist, out = trained
    stored = json.loads((out / "model_info.json").read_text())["calibration"]
    assert stored["method"] == "temperature" and stored["temperature"] > 0
    assert hist["calibration"]["fitted_on"] == "validation cells"
    loaded = load_model(out)
    assert loaded.info["calibration"]["temperature"] == stored["temperature"]
    outputs = loaded.predict_members(te.X)
    raw = cell_decisions(consensus_of(outputs), te.cell)
    calibrated = cell_decisions(consensus_of(outputs), te.cell, calibration=loaded.info["calibration"])
    np.testing.assert_allclose(
        calibrated["sero_probability"], calibrate(raw["sero_probability"], loaded.info["calibration"])
    )
    assert list(calibrated["sero_label"]) == list(raw["sero_label"])
    assert "Calibration" in (out / "README.md").read_text()


def test_training_describes_its_snippets_and_the_card_is_honest(trained):
    """The model folder keeps a description of its training snippets (issue 12), the loaded model checks
    cells against it, and the card of a lab's own model does not claim the authors' validation; its
    measured accuracy carries intervals over cells and the small-set warnings."""
    from spikeinterface_sero.decision import training_distance
    from spikeinterface_sero.model import load_model

    ds, tr, va, te, ens, hist, out = trained
    info = json.loads((out / "model_info.json").read_text())
    description = info["training_data"]
    assert description["n_cells"] == tr.n_cells and description["n_spikes"] == len(tr)
    assert len(description["shapes"]) == tr.n_cells and description["limit"] > 0
    loaded = load_model(out)
    codes = pd.factorize(te.cell)[0]
    distance = training_distance(te.X, codes, codes.max() + 1, loaded.info["training_data"])
    assert np.isfinite(distance).all() and (distance < 1).all()  # held-out cells of the same kind are alike
    card = (out / "README.md").read_text()
    assert "not been validated by the method's authors" in card and "Validated by its authors" not in card
    assert "training cells described by their mean normalised shapes" in card
    test_metrics = info["metrics"]["held-out test"]
    low, high = test_metrics["cell_accuracy_interval"]
    assert low <= test_metrics["cell_accuracy"] <= high
    assert any("cells" in w for w in test_metrics["warnings"])  # a handful of test cells: said plainly


def test_a_table_row_without_spikes_is_named(tmp_path):
    """A recording where no spike crosses the threshold: one TrainingError naming the row, no reshape crash."""
    from spikeinterface_sero.datasets import write_abf

    quiet = write_abf(
        tmp_path / "quiet.abf", np.random.default_rng(0).normal(0, 2, 40_000).astype(np.float32), 40_000.0
    )
    (tmp_path / "labels.csv").write_text(f"file,label\n{quiet.name},serotonergic\n")
    with pytest.raises(TrainingError, match=r"no spikes detected in quiet.abf \(table row 2\)"):
        dataset_from_table(tmp_path / "labels.csv")
