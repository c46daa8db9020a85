"""The authors' per-spike CSV format: write it from an .abf file, read it back, classify it.

    python examples/04_snippets_csv.py [--out DIR] [--model MODEL_FOLDER]

Corradetti et al. stored every spike as ``<cell>_trigger_<sample>.csv``: a header line and 160 rows of
``time (s), current (pA)``, 1 ms before to 3 ms after the -50 pA trigger at 40 kHz. This script makes a
two-sweep .abf recording, cuts its snippets, writes them in that format (``sero snippets cell.abf --out
DIR --format csv`` does the same), reads them back exactly, shows how malformed files are handled, and
classifies the cell from the CSV files alone. See docs/csv-format.md.

Model: ``--model``, else the bundled DEMONSTRATION model (simulated data; not for scientific
conclusions).
"""

import argparse
import warnings
from pathlib import Path

import numpy as np

import spikeinterface_sero as sero
from spikeinterface_sero import detection, model, snippet_formats
from spikeinterface_sero.datasets import simulate_drn_recording, write_abf


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="sero_examples/04_snippets_csv", help="output folder")
    parser.add_argument("--model", default=None, help="model folder (default: the bundled demo model)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # A two-sweep (episodic) recording of one cell: two 4-s simulated traces as sweeps of one .abf file.
    sweeps = [simulate_drn_recording("non_serotonergic", duration_s=4.0, seed=s).traces for s in (7, 8)]
    abf = write_abf(
        out / "A240108#001.abf", np.stack(sweeps)[:, :, None], 40_000.0, mode="episodic", data_format="float32"
    )

    # Snippets (n, 160) in pA, trigger at index 40. The cell id of a one-channel file is the file stem.
    snippets = detection.abf_to_snippets(abf)
    print(snippets)

    # Write one file per spike. <sample> counts from the start of the first sweep, with the sweeps laid end
    # to end, so a spike at sample s of sweep 1 is named s + (samples in sweep 0).
    csv_dir = out / "csv"
    n = snippet_formats.write_snippet_csv_folder(snippets, csv_dir, overwrite=True)
    names = sorted((p.name for p in csv_dir.glob("*.csv")), key=lambda s: int(s[:-4].rsplit("_", 1)[1]))
    print(f"wrote {n} files, e.g. {names[0]} ... {names[-1]}")
    first = csv_dir / names[0]
    print("".join(first.read_text().splitlines(keepends=True)[:3]), end="")  # header + first two rows

    # Read back: (X (n, 160) float32 pA, cell ids, trigger sample numbers), sorted by cell then sample.
    # The 9 significant digits make the float32 round trip exact.
    X, cells, samples = snippet_formats.read_snippet_csv_folder(csv_dir)
    order = np.argsort(snippets.trigger_samples + np.where(snippets.segment_index == 1, len(sweeps[0]), 0))
    assert np.array_equal(X, snippets.waveforms[order]), "the CSV round trip should be exact"
    print(f"read back {len(X)} snippets of cell(s) {sorted(set(cells.tolist()))}: identical to the originals")

    # A file with the right name but the wrong content raises SnippetError, unless on_bad="skip".
    (csv_dir / "A240108#001_trigger_1.csv").write_text("Time (s),Current (pA)\n0,1\n")
    try:
        snippet_formats.read_snippet_csv_folder(csv_dir)
    except sero.SeroError as e:
        print("on_bad='raise' (default):", e)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        X2, _, _ = snippet_formats.read_snippet_csv_folder(csv_dir, on_bad="skip")
    print(f"on_bad='skip': {len(X2)} snippets; warning: {caught[0].message}")
    (csv_dir / "A240108#001_trigger_1.csv").unlink()

    # Classify the cell from the CSV files: the paper's cell rule with a 95 % bootstrap interval.
    folder = args.model  # None = the bundled demo model
    if args.model is None:
        print("Using the bundled DEMONSTRATION model (simulated data; not for scientific conclusions).")
    ensemble = model.load_model(folder)
    table = ensemble.classify_cells(X, cells)
    print(table.to_string(float_format="%.3f"))
    table.to_csv(out / "csv_cells.csv")
    print(f"wrote {out / 'csv_cells.csv'}")


if __name__ == "__main__":
    main()
