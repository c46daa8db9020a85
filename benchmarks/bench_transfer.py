"""Another rig: the bundled demo model on the membrane simulator's rig, before and after ``sero adapt``.

    python benchmarks/bench_transfer.py                 # day A: 20 labelled cells, day B: 60 cells
    python benchmarks/bench_transfer.py --quick         # day B: 30 cells of 20 s
    python benchmarks/bench_transfer.py --modes temperature,head --json results.json
    python benchmarks/bench_transfer.py --unlabelled 10      # + 10 unlabelled recordings of day D: noise masks

Day A (10 SER of which 3 atypical, 10 NSER) is what a lab labels; day B (21 typical SER, 9 atypical SER, 30
NSER) is a later day of the same rig, with its own temperature, filter, noise and gain; day C (20 more
labelled cells, as day A) validates the adapted model on cells it was not adapted on. Goals (issue 22):
adapted model on day B balanced accuracy >= 0.95, atypical SER recall >= 0.90, reliable calls right >= 95 %,
>= 60 % of cells reliable; the unadapted demo model: reliable calls right >= 95 % (also measured after
``validation.validate`` of the demo model on day A, the rig record). The adaptation's time is
measured on whatever else the machine is doing (its load average is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from spikeinterface_sero.datasets import simulate_membrane_dataset  # noqa: E402
from spikeinterface_sero.pipeline import classify_files  # noqa: E402
from spikeinterface_sero.training.evaluate import calibration  # noqa: E402
from spikeinterface_sero.training.finetune import DEFAULT_ADAPT_MODES, adapt_model  # noqa: E402

DAY_A = {"serotonergic": 7, "atypical_serotonergic": 3, "non_serotonergic": 10}


def figures(table: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Day-B figures of a results table against the simulated truth."""
    second = table["cell_id"].astype(str) != table["file"].map(lambda f: Path(f).stem)  # one simulated cell a file
    merged = table[~second].assign(name=table["file"].map(lambda f: Path(f).name)).merge(truth, on="name")
    right = merged["sero_label"] == merged["label"]
    ser = merged["label"] == "serotonergic"
    atypical = merged["cell_type"] == "atypical_serotonergic"
    reliable = merged["sero_reliable"].astype(bool)
    return {
        "cells": int(len(merged)),
        "extra_rows_of_a_second_cell": int(second.sum()),  # the seal watch's newcomers: none was simulated
        "balanced_accuracy": round(0.5 * (right[ser].mean() + right[~ser].mean()), 3),
        "typical_ser_recall": round(float(right[ser & ~atypical].mean()), 3),
        "atypical_ser_recall": round(float(right[atypical].mean()), 3),
        "nser_recall": round(float(right[~ser].mean()), 3),
        "reliable_share": round(float(reliable.mean()), 3),
        "reliable_right": round(float(right[reliable].mean()), 3) if reliable.any() else None,
        "reliable_wrong_cells": int((reliable & ~right).sum()),
        "cell_ece": round(float(calibration(ser.to_numpy(), merged["sero_probability"].to_numpy())["ece"]), 3),
        "sero_rig": merged["sero_rig"].value_counts().to_dict(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="day B: 30 cells of 20 s")
    parser.add_argument("--mode", default="auto", help="the adaptation's mode (auto: nested cross-validation)")
    parser.add_argument("--modes", default=",".join(DEFAULT_ADAPT_MODES), help="the candidates of --mode auto")
    parser.add_argument(
        "--unlabelled", type=int, default=0, help="unlabelled recordings of another day (D) for the noise masks"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the days (day A: 1000 + seed, day B: 2000 + seed)")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--no-validate", action="store_true", help="skip validating the demo model on day A")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    duration = 20.0 if args.quick else 30.0
    day_b = {"serotonergic": 11, "atypical_serotonergic": 4, "non_serotonergic": 15} if args.quick else None
    results: dict = {"load_average_at_start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        simulate_membrane_dataset(DAY_A, duration, seed=1000 + args.seed, out_dir=root / "A", day_prefix="rigA")
        simulate_membrane_dataset(day_b, duration, seed=2000 + args.seed, out_dir=root / "B", day_prefix="rigB")
        truth = pd.read_csv(root / "B" / "labels.csv").rename(columns={"file": "name"})
        files = sorted(str(p) for p in (root / "B").glob("*.abf"))
        results["demo_on_day_b"] = figures(classify_files(files), truth)
        if not args.no_validate:  # the demo model validated on day A (validation.validate), then day B
            from spikeinterface_sero.validation import validate

            validate(None, root / "A" / "labels.csv", report_dir=root / "validation", out=root / "demo_validated")
            validated = classify_files(files, model_folder=root / "demo_validated")
            results["validated_demo_on_day_b"] = figures(validated, truth)
        unlabelled = None
        if args.unlabelled:
            counts = {"serotonergic": args.unlabelled // 2, "non_serotonergic": args.unlabelled - args.unlabelled // 2}
            simulate_membrane_dataset(counts, duration, seed=4000 + args.seed, out_dir=root / "D", day_prefix="rigD")
            (root / "D" / "labels.csv").unlink()  # unlabelled: only the recordings
            unlabelled = [root / "D"]
        start = time.perf_counter()
        report = adapt_model(
            None,
            root / "A" / "labels.csv",
            root / "adapted",
            mode=args.mode,
            modes=args.modes.split(","),
            unlabelled=unlabelled,
        )
        results["adapt_seconds"] = round(time.perf_counter() - start, 1)
        results["load_average_after_adapt"] = os.getloadavg()
        keys = ("mode", "written", "message", "choices", "final_mode", "before", "after", "candidates", "test")
        results["adapt"] = {k: report[k] for k in (*keys, "noise_masks")}
        if report["written"]:
            results["adapted_on_day_b"] = figures(classify_files(files, model_folder=root / "adapted"), truth)
            if not args.no_validate:
                _validated_adapted(root, files, truth, results, duration, args.seed)
    print(json.dumps(results, indent=1, default=_plain))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=_plain) + "\n", encoding="utf-8")
    return 0


def _validated_adapted(root: Path, files, truth, results: dict, duration: float, seed: int) -> None:
    """The adapted model validated on day A (its own training cells: optimistic) and on day C (20 new
    labelled cells of the same rig), each then on day B."""
    from spikeinterface_sero.validation import validate

    simulate_membrane_dataset(DAY_A, duration, seed=3000 + seed, out_dir=root / "C", day_prefix="rigC")
    for day in ("A", "C"):
        folder = root / f"adapted_validated_{day}"
        validate(root / "adapted", root / day / "labels.csv", report_dir=root / f"validation_{day}", out=folder)
        table = classify_files(files, model_folder=folder)
        results[f"adapted_validated_on_day_{day.lower()}_on_day_b"] = figures(table, truth)


def _plain(value):
    return (
        value.tolist() if isinstance(value, np.ndarray) else bool(value) if isinstance(value, np.bool_) else str(value)
    )


if __name__ == "__main__":
    sys.exit(main())
