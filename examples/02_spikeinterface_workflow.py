"""The serotonergic classification as one more step of a SpikeInterface workflow.

    python examples/02_spikeinterface_workflow.py [--out DIR] [--model MODEL_FOLDER]

read_abf -> recording (pA, 40 kHz) -> SortingAnalyzer with 160-point waveforms -> analyzer.compute(
"serotonergic") -> unit table, sorting properties, per-spike outputs -> save / reload the analyzer ->
Phy folder, NWB file, CSV table.

Model: ``--model``, else the bundled DEMONSTRATION model (simulated data; not for scientific
conclusions).
"""

import argparse
from pathlib import Path

import spikeinterface_sero as sero  # importing the package registers the "serotonergic" extension
from spikeinterface_sero.datasets import simulate_drn_recording
from spikeinterface_sero.export import export_to_phy, results_table, write_nwb, write_table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="sero_examples/02_spikeinterface_workflow", help="output folder")
    parser.add_argument("--model", default=None, help="model folder (default: the bundled demo model)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_folder = args.model  # None = the bundled demo model
    if args.model is None:
        print("Using the bundled DEMONSTRATION model (simulated data; not for scientific conclusions).")

    # A simulated 8-s serotonergic recording written as an .abf file (stands in for your recording).
    abf = simulate_drn_recording("serotonergic", duration_s=8.0, seed=3).to_abf(out / "cell.abf")

    # 1. Reading: a SpikeInterface recording in pA at 40 kHz, one segment per sweep. Any other 40 kHz pA
    #    recording works as well (e.g. from spikeinterface.extractors), through recording_to_analyzer.
    recording = sero.read_abf(abf)
    print(recording)

    # 2. Detection (-50 pA from the local baseline) and the analyzer: one unit per channel (cell),
    #    "random_spikes" + "waveforms" (1 ms before, 3 ms after = 160 samples). sero.abf_to_analyzer(abf)
    #    does steps 1 and 2 in one call.
    analyzer = sero.recording_to_analyzer(recording, format="binary_folder", folder=out / "analyzer", overwrite=True)

    # 3. The serotonergic step. The unit table (index unit_id) holds the label, P(serotonergic) with its
    #    95 % bootstrap interval, spike counts, Elephant firing features, the classical-criteria label and
    #    sero_type (typical / atypical).
    ext = analyzer.compute("serotonergic", model_folder=model_folder)
    units = ext.get_data()
    print(units.T.to_string())
    spikes = ext.get_data(outputs="spikes")  # one row per classified spike: unit, segment, sample, p_ser
    print(f"{len(spikes)} spikes, mean P(SER) per spike {spikes['p_ser'].mean():.3f}")

    # 4. The labels are also sorting properties: Phy, spikeinterface-gui and neuroconv see them.
    for key in ("sero_label", "sero_probability", "sero_type"):
        print(key, "=", analyzer.sorting.get_property(key))

    # 5. The result is saved with the analyzer. Reload it in a new session with
    #    sero.load_sorting_analyzer (or spikeinterface's own loader after `import spikeinterface_sero`).
    reloaded = sero.load_sorting_analyzer(out / "analyzer")
    assert reloaded.get_extension("serotonergic").get_data()["sero_label"].equals(units["sero_label"])

    # 6. Export: a Phy folder (cluster_sero_label.tsv, ...), an NWB file (Units table, mean action current
    #    in picoamperes) and a plain table.
    export_to_phy(analyzer, out / "phy", remove_if_exists=True)
    write_nwb(analyzer, out / "cell.nwb", overwrite=True)
    write_table(results_table(analyzer, file=str(abf)), out / "units.csv")
    print(f"wrote {out / 'phy'}, {out / 'cell.nwb'} and {out / 'units.csv'}")


if __name__ == "__main__":
    main()
