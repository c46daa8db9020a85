"""From .abf files to one label per cell: the main job, in Python.

    python examples/01_classify_abf.py [--out DIR] [--model MODEL_FOLDER]

Simulates two short dorsal-raphe recordings (one serotonergic, one not) as real Axon .abf files, then
classifies every cell with :func:`spikeinterface_sero.pipeline.classify_files` (what ``sero classify``
runs) and writes ``results.csv``. With your own recordings, pass their paths instead of the simulated ones.

Model: ``--model`` (a model folder, e.g. from ``sero import-models`` or ``sero train``); without it the
bundled DEMONSTRATION model (trained on simulated data; not for scientific conclusions).
"""

import argparse
from pathlib import Path

from spikeinterface_sero.datasets import simulate_dataset
from spikeinterface_sero.export import write_table
from spikeinterface_sero.pipeline import classify_files


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="sero_examples/01_classify_abf", help="output folder")
    parser.add_argument("--model", default=None, help="model folder (default: the bundled demo model)")
    args = parser.parse_args()
    out = Path(args.out)

    # 1. Two simulated 8-s recordings, written as .abf files (one gap-free pA channel each) + labels.csv.
    recs = simulate_dataset(
        {"serotonergic": 1, "non_serotonergic": 1}, duration_s=8.0, seed=1, out_dir=out / "recordings", n_groups=1
    )
    files = [r.file for r in recs]
    print("recordings:", ", ".join(Path(f).name for f in files))

    # 2. Classify: read (Neo), detect the -50 pA crossings, cut 160-point snippets, run the ensemble.
    #    A file that cannot be read gives one row with its error message instead of stopping the run.
    if args.model is None:
        print("Using the bundled DEMONSTRATION model (simulated data; not for scientific conclusions).")
    table = classify_files(files, model_folder=args.model)  # None = the bundled demo model

    # 3. One row per cell. sero_probability is P(serotonergic) of the cell, with a 95 % bootstrap interval
    #    over its spikes; sero_type compares the CNN label with the classical criteria (typical/atypical).
    cols = [
        "cell_id",
        "n_spikes",
        "sero_label",
        "sero_probability",
        "sero_probability_low",
        "sero_probability_high",
        "sero_type",
        "firing_rate_hz",
        "udi_ms",
    ]
    print(table[cols].to_string(index=False, float_format="%.3g"))
    truth = {str(Path(r.file)): r.label for r in recs}
    print("simulated as:", {Path(f).stem: lab for f, lab in truth.items()})
    path = write_table(table, out / "results.csv")  # .csv, .tsv or .json by the suffix
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
