"""Day shift: train on simulated cells of some recording days, classify the cells of other days whose noise
level, noise spectrum, drift, electrode filtering, amplitude and atypical fraction differ; each recipe side
by side.

    python benchmarks/bench_day_shift.py                 # 48 training cells, 60 test cells, 3 members, 8 epochs
    python benchmarks/bench_day_shift.py --quick         # 18 + 18 cells of 20 s, 2 members, 2 epochs (~2 min)
    python benchmarks/bench_day_shift.py --recipes paper,default --kernels 20-31 --epochs 25 --json out.json
    python benchmarks/bench_day_shift.py --recipes "" --models demo   # the bundled demo model on the test days

Training days (4, one of them the validation day for early stopping and the temperature): noise 2-8 pA rms,
1/f corner 50-500 Hz and slope 0.8-1.2, hum <= 4 pA at 50 Hz, drift <= 30 pA, electrode filter 5-10 kHz,
amplitude gain 0.8-1.25, little amplitude drift, 1 % overlapping events; 16 typical, 8 atypical SER and
24 NSER cells. Test days (4 others): noise 4-12 pA, 1/f corner 20-1000 Hz and slope 0.6-1.6, hum <= 8 pA
at 50 or 60 Hz, drift 10-60 pA, electrode filter 2-6 kHz, gain 0.6-2, amplitude drift -40..+20 %, up to
5 % overlapping events; 18 typical, 12 atypical SER and 30 NSER cells (the day-shift set of issue 13),
their widths overlapping more than on the training days (NSER UDI 0.3-1.0 ms, atypical SER 0.5-1.1 ms).
Every cell goes through the package's data path (.abf file, detection at -50 pA, at most 200 spikes per
cell). The recipes differ only in their recipe (``training.train.RECIPES``); the kernels and the epochs
are cut the same way for all to keep the run short on a shared CPU (the full 12-member, 25-epoch figures
need ``--kernels 20-31 --epochs 25``). Goals on the other days (issue 13): cell balanced accuracy >= 0.97,
atypical SER recall >= 0.90, ECE <= 0.05.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from spikeinterface_sero.datasets.simulator import simulate_dataset  # noqa: E402
from spikeinterface_sero.training.data import balance_classes, dataset_from_table  # noqa: E402
from spikeinterface_sero.training.evaluate import evaluate  # noqa: E402
from spikeinterface_sero.training.train import parse_kernels, train_ensemble  # noqa: E402

TRAIN_DAYS = {
    "noise_sd_pa": (2.0, 8.0),
    "noise_knee_hz": (50.0, 500.0),
    "noise_exponent": (0.8, 1.2),
    "lowpass_hz": (8000.0, 10000.0),
    "hum_pa": (0.0, 4.0),
    "hum_hz": [50.0],
    "drift_pa": (5.0, 30.0),
    "electrode_filter_hz": (5000.0, 10000.0),
    "amplitude_scale": (0.8, 1.25),
    "amplitude_drift": (-0.1, 0.1),
    "overlap_fraction": (0.0, 0.01),
}
TEST_DAYS = {
    "noise_sd_pa": (4.0, 12.0),
    "noise_knee_hz": (20.0, 1000.0),
    "noise_exponent": (0.6, 1.6),
    "lowpass_hz": (5000.0, 10000.0),
    "hum_pa": (0.0, 8.0),
    "hum_hz": [50.0, 60.0],
    "drift_pa": (10.0, 60.0),
    "electrode_filter_hz": (2000.0, 6000.0),
    "amplitude_scale": (0.6, 2.0),
    "amplitude_drift": (-0.4, 0.2),
    "overlap_fraction": (0.0, 0.05),
}
# The cells of the test days overlap more in width than the simulator's own types: non-serotonergic cells
# up to a UDI of 1.0 ms and atypical serotonergic cells down to 0.5 ms (the errors issue 13 reports).
TEST_TYPES = {"non_serotonergic": {"udi_ms": (0.3, 1.0)}, "atypical_serotonergic": {"udi_ms": (0.5, 1.1)}}
FULL = dict(
    train_cells={"serotonergic": 16, "atypical_serotonergic": 8, "non_serotonergic": 24},
    test_cells={"serotonergic": 18, "atypical_serotonergic": 12, "non_serotonergic": 30},
    duration_s=60.0,
    kernels="20,25,30",
    epochs=8,
)
QUICK = dict(
    train_cells={"serotonergic": 6, "atypical_serotonergic": 4, "non_serotonergic": 8},
    test_cells={"serotonergic": 6, "atypical_serotonergic": 4, "non_serotonergic": 8},
    duration_s=20.0,
    kernels="20,25",
    epochs=2,
)


def simulate(folder: Path, counts: dict, day_ranges: dict, prefix: str, seed: int, duration_s: float, types=None):
    """The cells of 4 simulated days as .abf files, read back through the package's data path."""
    recordings = simulate_dataset(
        counts,
        duration_s=duration_s,
        seed=seed,
        out_dir=folder,
        n_groups=4,
        data_format="float32",
        day_ranges=day_ranges,
        day_prefix=prefix,
        type_ranges=types,
    )
    dataset = dataset_from_table(folder / "labels.csv", max_per_cell=200, noise_per_cell=64, seed=seed)
    return dataset, {r.cell_id: r.cell_type for r in recordings}


def figures(result: dict, cell_types: dict) -> dict:
    cells = result["cells"]
    types = np.array([cell_types[str(c)] for c in cells.index])
    correct = cells["correct"].to_numpy(dtype=bool)
    atypical = types == "atypical_serotonergic"
    cell = result["cell"]
    return {
        "cells": int(len(cells)),
        "balanced_accuracy": cell["balanced_accuracy"],
        "balanced_accuracy_interval": cell.get("balanced_accuracy_interval"),
        "SER_recall": cell["rates"]["TPR"],
        "atypical_SER_recall": float(correct[atypical].mean()) if atypical.any() else None,
        "atypical_SER_correct": f"{int(correct[atypical].sum())}/{int(atypical.sum())}",
        "NSER_recall": cell["rates"]["TNR"],
        "NSER_correct": f"{int(correct[types == 'non_serotonergic'].sum())}/{int((types == 'non_serotonergic').sum())}",
        "cell_ece": cell["calibration"]["ece"],
        "spike_ece": result["spike"]["calibration"]["ece"],
        "spike_balanced_accuracy": result["spike"]["balanced_accuracy"],
        "errors": [
            {"cell": str(c), "type": t, "p_ser": round(float(p), 3)}
            for c, t, p, ok in zip(cells.index, types, cells["sero_probability"], correct)
            if not ok
        ],
    }


def run(settings: dict, recipes, seed: int = 0, models=()) -> dict:
    kernels = parse_kernels(settings["kernels"])
    with tempfile.TemporaryDirectory(prefix="sero-day-shift-") as temporary:
        root = Path(temporary)
        t0 = time.perf_counter()
        train_all, _ = simulate(
            root / "train", settings["train_cells"], TRAIN_DAYS, "train", 1000 + seed, settings["duration_s"]
        )
        test, test_types = simulate(
            root / "test", settings["test_cells"], TEST_DAYS, "test", 2000 + seed, settings["duration_s"], TEST_TYPES
        )
        simulation_seconds = time.perf_counter() - t0
    groups = sorted(train_all.cells["group"].unique())
    validation_day = groups[-1]  # early stopping, model choice and the temperature on a held-out day
    train_cells = train_all.cells.index[train_all.cells["group"] != validation_day]
    validation_cells = train_all.cells.index[train_all.cells["group"] == validation_day]
    out = {
        "settings": {
            **{k: v for k, v in settings.items()},
            "kernels": kernels,
            "seed": seed,
            "validation_day": validation_day,
            "train_days": TRAIN_DAYS,
            "test_days": TEST_DAYS,
            "test_cell_types": TEST_TYPES,
        },
        "simulation_seconds": round(simulation_seconds, 1),
        "recipes": {},
    }
    for folder in models:  # trained elsewhere (the bundled demo model: "demo"), classified on the same test days
        import warnings

        from spikeinterface_sero.model import demo_model_folder, load_model

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the demo model's warning
            ensemble = load_model(demo_model_folder() if folder == "demo" else folder)
        row = figures(evaluate(ensemble, test, per_kernel=False), test_types)
        row.update(seconds=0.0, epochs_run=None, samples_per_epoch=None, temperature=None)
        out["recipes"]["bundled demo model" if folder == "demo" else f"model {folder}"] = row
    for recipe in recipes:
        train = balance_classes(train_all.select_cells(train_cells), seed=seed)
        validation = balance_classes(train_all.select_cells(validation_cells), seed=seed + 1)
        t1 = time.perf_counter()
        ensemble, history = train_ensemble(
            train,
            validation,
            kernels=kernels,
            recipe=recipe,
            epochs=settings["epochs"],
            seed=seed,
            progress_bar=False,
        )
        result = evaluate(ensemble, test, per_kernel=False)
        row = figures(result, test_types)
        row.update(
            seconds=round(time.perf_counter() - t1, 1),
            epochs_run=history["epochs_run"],
            samples_per_epoch=history["samples_per_epoch"],
            temperature=(history.get("calibration") or {}).get("temperature"),
        )
        out["recipes"][recipe] = row
    return out


def table(out: dict) -> str:
    columns = [
        ("balanced_accuracy", "cell balanced acc."),
        ("atypical_SER_correct", "atypical SER"),
        ("NSER_correct", "NSER"),
        ("cell_ece", "cell ECE"),
        ("spike_ece", "spike ECE"),
        ("seconds", "train s"),
    ]
    lines = ["| recipe | " + " | ".join(c[1] for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in out["recipes"].items():
        values = []
        for key, _ in columns:
            v = row[key]
            values.append(f"{v:.3f}" if isinstance(v, float) else str(v))
        lines.append(f"| {name} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter cells; 2 members, 2 epochs")
    parser.add_argument("--recipes", default="paper,default,real_only", help="comma-separated recipe names")
    parser.add_argument("--kernels", default=None, help="member kernels (default 20,25,30; quick 20,25)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs for every recipe (default 8; quick 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--models",
        default="",
        help="comma-separated model folders to classify the test days with too ('demo': bundled)",
    )
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    if args.kernels:
        settings["kernels"] = args.kernels
    if args.epochs:
        settings["epochs"] = args.epochs
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    out = run(settings, recipes, seed=args.seed, models=models)
    print(table(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
