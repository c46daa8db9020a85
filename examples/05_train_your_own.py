"""Train an ensemble on your own labelled recordings, evaluate it on held-out cells, use the model folder.

    python examples/05_train_your_own.py [--out DIR] [--epochs N]

Your data: a label table (CSV) with one row per recording, ``file,label[,channel,group]``; ``label`` is
serotonergic / non_serotonergic (or SER / NSER); ``group`` is the recording day, slice or animal,
so that the split keeps each group on one side. Here the recordings and their table are simulated
(``simulate_dataset`` writes ``labels.csv`` with a group per simulated day), and the ensemble is tiny
(2 members, 2 epochs) so that the script runs in seconds: such a model is NOT a useful classifier. The
published setting is 12 members (kernels 20-31), 25 epochs, early stopping, at most 700 spikes per cell:
``sero train --table labels.csv --out my_model/`` or ``train_from_table(table, out)`` with the defaults.
See docs/training-your-own.md (guide) and docs/training.md (reference).
"""

import argparse
import json
from pathlib import Path

from spikeinterface_sero import detection
from spikeinterface_sero.datasets import simulate_dataset
from spikeinterface_sero.model import load_model
from spikeinterface_sero.training import evaluate_table, train_from_table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="sero_examples/05_train_your_own", help="output folder")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs (published: 25)")
    args = parser.parse_args()
    out = Path(args.out)

    # 1. Labelled recordings: 9 simulated cells over 3 recording days -> .abf files + labels.csv.
    #    (Serotonergic cells fire at ~1 Hz: 15 s gives each a few tens of spikes.)
    cells = {"serotonergic": 3, "atypical_serotonergic": 2, "non_serotonergic": 4}
    simulate_dataset(cells, duration_s=15.0, seed=1, out_dir=out / "train_data", n_groups=3)
    table = out / "train_data" / "labels.csv"
    print(table.read_text())

    # 2. Train: read and cut the snippets, split by group (day) into train / validation / test without
    #    leakage, balance the classes, train the members together, evaluate on the held-out test cells,
    #    and write the model folder with its model card (README.md) and an evaluation report. With only 3
    #    days the split warns that validation and test get a whole day each.
    result = train_from_table(
        table,
        out / "my_model",
        kernels=(20, 21),
        epochs=args.epochs,
        max_per_cell=100,
        seed=0,
        progress_bar=False,
        overwrite=True,
        description="Example model: 2 members, 2 epochs on 9 simulated cells. Not for use.",
    )
    summary = result.summary()
    for side, d in summary["sides"].items():  # which cells ended up where
        print(f"{side:5s}: {d['cells']} cells, {d['spikes']} spikes, {d['groups']} group(s)")
    test = summary["test_metrics"]
    low, high = test["cell_accuracy_interval"]
    print(
        f"held-out test cells: accuracy {test['cell_accuracy']:.2f} [{low:.2f}-{high:.2f}] over {test['cells']} cells"
    )
    for warning in test["warnings"]:  # a handful of test cells says little, and the figures say so
        print("  warning:", warning)
    (out / "training_summary.json").write_text(json.dumps(summary, indent=1) + "\n")

    # 3. Evaluate on new recordings (other simulated days): spike- and cell-level accuracy, confusion
    #    matrices with their normalisation stated, ROC AUC, calibration, each member alone.
    simulate_dataset(
        {"serotonergic": 1, "non_serotonergic": 1}, duration_s=10.0, seed=2, out_dir=out / "new_data", n_groups=1
    )
    ev = evaluate_table(out / "new_data" / "labels.csv", result.folder, out / "evaluation")
    print(f"new cells: cell accuracy {ev['cell']['accuracy']:.2f}, spike accuracy {ev['spike']['accuracy']:.2f}")

    # 4. The model folder is used like any other: Python, the analyzer extension, or `sero classify --model`.
    ensemble = load_model(result.folder)
    print(ensemble, "- demo model:", ensemble.is_demo)
    snippets = detection.abf_to_snippets(next((out / "new_data").glob("*.abf")))
    print(ensemble.classify_cells(snippets).to_string(float_format="%.3f"))
    print(f"model card: {Path(result.folder) / 'README.md'}")


if __name__ == "__main__":
    main()
