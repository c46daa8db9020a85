"""Earned calls: how often an artefact gets a reliable label, how many genuine cells do, and how accurate the
reliable calls are.

    python benchmarks/bench_quality.py            # 8 artefact kinds x 3 seeds, 60 genuine simulated cells
    python benchmarks/bench_quality.py --quick    # 8 x 1, 12 cells
    python benchmarks/bench_quality.py --model my_model/

Genuine cells are simulated with seeds the bundled demo model was not trained on ("other days"). Goals
(issue 12): artefact cells called reliable 0 %, genuine cells reliable >= 70 %, accuracy among reliable
calls >= 95 %, cell-level ECE after the model's calibration <= 0.05 (before it reported beside it;
``--plots DIR`` writes the reliability diagram).
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

import pandas as pd  # noqa: E402

from spikeinterface_sero.datasets import (  # noqa: E402
    ARTEFACT_KINDS,
    simulate_artefact,
    simulate_drn_recording,
    write_abf,
)
from spikeinterface_sero.errors import DemoModelWarning  # noqa: E402
from spikeinterface_sero.pipeline import classify_files  # noqa: E402

CELL_TYPES = ("serotonergic", "atypical_serotonergic", "non_serotonergic")
OTHER_DAYS_SEED = 90_000  # far from the seeds of the demo model's training recordings


def _calibration(genuine: pd.DataFrame, model_folder, plots) -> dict:
    """Cell-level ECE of the genuine cells with the model's calibration and without it (its inverse undone),
    and, with ``plots``, their reliability diagram."""
    from spikeinterface_sero.decision import uncalibrate
    from spikeinterface_sero.model import load_model
    from spikeinterface_sero.training.evaluate import calibration

    cells = genuine[genuine["n_spikes"] > 0]
    is_ser = (cells["truth"] == "serotonergic").to_numpy()
    after = cells["sero_probability"].to_numpy(dtype=float)
    fitted = load_model(model_folder).info.get("calibration")
    before = uncalibrate(after, fitted)
    out = {
        "calibration": fitted,
        "cell_ece_before_calibration": calibration(is_ser, before)["ece"],
        "cell_ece_after_calibration": calibration(is_ser, after)["ece"] if fitted else None,
        "ece_cells": int(len(cells)),
    }
    if plots:
        from matplotlib.figure import Figure
        from sklearn.calibration import CalibrationDisplay

        figure = Figure(figsize=(5, 5))
        axes = figure.add_subplot()
        CalibrationDisplay.from_predictions(is_ser, before, n_bins=5, ax=axes, name="before calibration")
        if fitted:
            CalibrationDisplay.from_predictions(is_ser, after, n_bins=5, ax=axes, name="after calibration")
        axes.set_title(f"Cell P(SER) on {len(cells)} genuine cells of other days")
        Path(plots).mkdir(parents=True, exist_ok=True)
        figure.savefig(Path(plots) / "reliability_cells.png", dpi=100, bbox_inches="tight")
    return out


def run(n_artefact_seeds: int, n_cells: int, model_folder=None, duration_s: float = 30.0, plots=None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        artefacts = [
            write_abf(
                root / f"artefact_{kind}_{seed}.abf",
                simulate_artefact(kind, duration_s, seed=seed),
                40_000.0,
                data_format="float32",
            )
            for kind in ARTEFACT_KINDS
            for seed in range(n_artefact_seeds)
        ]
        truth = {}
        genuine = []
        for i in range(n_cells):
            cell_type = CELL_TYPES[i % 3]
            sim = simulate_drn_recording(cell_type, duration_s=duration_s, seed=OTHER_DAYS_SEED + i)
            path = write_abf(root / f"cell_{i:03d}.abf", sim.traces, sim.sampling_frequency)
            truth[str(path)] = sim.label
            genuine.append(path)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DemoModelWarning)
            art = classify_files(artefacts, model_folder=model_folder)
            gen = classify_files(genuine, model_folder=model_folder)
        seconds = time.perf_counter() - start
    gen["truth"] = gen["file"].map(truth)
    calibration_result = _calibration(gen, model_folder, plots)
    reliable = gen[gen["sero_reliable"].fillna(False).astype(bool)]
    unsure = gen[~gen["sero_reliable"].fillna(False).astype(bool)]
    art_cells = art[art["error"] == ""]
    reasons = art_cells["sero_quality"].str.split("+").explode().value_counts().to_dict()
    return {
        "artefact_cells": int(len(art_cells)),
        "artefact_reliable_fraction": float(art_cells["sero_reliable"].fillna(False).astype(bool).mean()),
        "artefact_quality_ok_fraction": float((art_cells["sero_quality"] == "ok").mean()),
        "genuine_cells": int(len(gen)),
        "genuine_quality_ok_fraction": float((gen["sero_quality"] == "ok").mean()),
        "genuine_reliable_fraction": float(len(reliable) / max(1, len(gen))),
        "accuracy_among_reliable": float((reliable["sero_label"] == reliable["truth"]).mean())
        if len(reliable)
        else None,
        "accuracy_all_genuine": float((gen["sero_label"] == gen["truth"]).mean()),
        "genuine_unsure_reasons": unsure["sero_unsure_reasons"].str.split("+").explode().value_counts().to_dict(),
        "genuine_unsure_cells": [
            {
                "file": Path(row["file"]).name,
                "truth": row["truth"],
                "label": row["sero_label"],
                "probability": round(float(row["sero_probability"]), 3),
                "set": row["sero_set"],
                "rig": row["sero_rig"],
                "reasons": row["sero_unsure_reasons"],
            }
            for _, row in unsure.iterrows()
        ],
        "artefact_reasons": reasons,
        **calibration_result,
        "seconds": seconds,
        "model": str(model_folder or "bundled demo model"),
    }


def summary_rows(result: dict) -> list[tuple[str, str, str]]:
    def pct(v):
        return "-" if v is None else f"{100 * v:.0f} %"

    return [
        ("artefact cells called reliable", pct(result["artefact_reliable_fraction"]), "0 %"),
        ("genuine simulated cells reliable", pct(result["genuine_reliable_fraction"]), ">= 70 %"),
        ("accuracy among reliable calls", pct(result["accuracy_among_reliable"]), ">= 95 %"),
        ("cell ECE before calibration", _ece(result["cell_ece_before_calibration"]), "-"),
        ("cell ECE after calibration", _ece(result["cell_ece_after_calibration"]), "<= 0.05"),
    ]


def _ece(value) -> str:
    return "- (model not calibrated)" if value is None else f"{value:.3f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 seed per artefact kind, 12 genuine cells")
    parser.add_argument("--model", default=None, help="model folder (default: the bundled demo model)")
    parser.add_argument("--cells", type=int, default=None, help="genuine cells (default 60, --quick 12)")
    parser.add_argument("--plots", default=None, metavar="DIR", help="write the reliability diagram here")
    parser.add_argument("--json", default=None, metavar="OUT")
    args = parser.parse_args(argv)
    n_cells = args.cells or (12 if args.quick else 60)
    result = run(1 if args.quick else 3, n_cells, model_folder=args.model, plots=args.plots)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"model: {result['model']}  ({result['seconds']:.0f} s)")
    print(
        f"artefacts: {result['artefact_cells']} cells, reliable {100 * result['artefact_reliable_fraction']:.0f} %, "
        f"quality ok {100 * result['artefact_quality_ok_fraction']:.0f} %"
    )
    print("  checks failed by artefacts: " + ", ".join(f"{k} {v}" for k, v in result["artefact_reasons"].items()))
    among = result["accuracy_among_reliable"]
    print(
        f"genuine: {result['genuine_cells']} cells, quality ok {100 * result['genuine_quality_ok_fraction']:.0f} %, "
        f"reliable {100 * result['genuine_reliable_fraction']:.0f} %, accuracy among reliable "
        + ("-" if among is None else f"{100 * among:.0f} %")
        + f", accuracy over all {100 * result['accuracy_all_genuine']:.0f} %"
    )
    print(
        "  why the other genuine cells are unsure: "
        + (", ".join(f"{k} {v}" for k, v in result["genuine_unsure_reasons"].items()) or "-")
    )
    for cell in result["genuine_unsure_cells"]:
        print("    " + "  ".join(f"{k} {v}" for k, v in cell.items()))
    print(pd.DataFrame(summary_rows(result), columns=["what", "measured", "goal"]).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
