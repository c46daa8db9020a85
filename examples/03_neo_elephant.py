"""Neo in, Neo out: annotate the SpikeTrains of an .abf file read with Neo, then use Elephant on them.

    python examples/03_neo_elephant.py [--out DIR] [--model MODEL_FOLDER]

neo.AxonIO -> Block -> annotate_spiketrains(block) detects the -50 pA crossings on every current channel,
attaches one SpikeTrain per cell and sweep (with its 160-point waveforms) and annotates it with the cell's
sero_call / sero_label / sero_probability (and the raw per-spike P(SER) as an array annotation). Elephant then works on
the annotated trains as on any others; here: rate, CV and LV of the serotonergic cells, and a peri-stimulus
style time histogram.

Model: ``--model``, else the bundled DEMONSTRATION model (simulated data; not for scientific
conclusions).
"""

import argparse
import json
from pathlib import Path

import elephant.statistics as es
import neo
import numpy as np
import quantities as pq

from spikeinterface_sero.datasets import simulate_drn_recording
from spikeinterface_sero.neo_bridge import annotate_spiketrains


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="sero_examples/03_neo_elephant", help="output folder")
    parser.add_argument("--model", default=None, help="model folder (default: the bundled demo model)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_folder = args.model  # None = the bundled demo model
    if args.model is None:
        print("Using the bundled DEMONSTRATION model (simulated data; not for scientific conclusions).")

    # A simulated 8-s recording as an .abf file (stands in for yours), read with Neo's own Axon reader.
    abf = simulate_drn_recording("serotonergic", duration_s=8.0, seed=5).to_abf(out / "cell.abf")
    block = neo.AxonIO(filename=str(abf)).read_block(signal_group_mode="split-all")

    # Detect, classify, annotate. The new SpikeTrains are attached to the block's segments.
    trains = annotate_spiketrains(block, model_folder)
    summary = []
    for st in trains:
        a = st.annotations
        print(
            f"{a['cell_id']}: {len(st)} spikes, {a['sero_call']} (model's call {a['sero_label']}), "
            f"P(SER) {a['sero_probability']:.3f} "
            f"[{a['sero_probability_low']:.3f}, {a['sero_probability_high']:.3f}] "
            f"(model is demo: {a['sero_model_is_demo']})"
        )
        # Elephant on the annotated train: rate, CV and LV of the inter-spike intervals.
        isi = es.isi(st)
        row = dict(
            cell_id=a["cell_id"],
            sero_label=a["sero_label"],
            sero_call=a["sero_call"],
            sero_probability=a["sero_probability"],
            n_spikes=len(st),
            rate_hz=float(es.mean_firing_rate(st).rescale("Hz").magnitude),
            cv_isi=float(es.cv(isi)),
            lv=float(es.lv(isi)),
            mean_spike_p_ser_raw=float(np.nanmean(st.array_annotations["sero_p_ser"])),
        )
        summary.append(row)
        print("  Elephant:", {k: round(v, 3) for k, v in row.items() if isinstance(v, float)})

    # Keep only the trains reliably called serotonergic, as one would before a population analysis.
    ser = [st for st in trains if st.annotations["sero_call"] == "serotonergic"]
    print(f"{len(ser)} of {len(trains)} spike train(s) reliably called serotonergic")
    hist = es.time_histogram(trains, bin_size=1 * pq.s, output="rate")
    print("firing rate per 1-s bin (Hz):", np.round(hist.magnitude.ravel(), 2).tolist())

    (out / "neo_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {out / 'neo_summary.json'}")


if __name__ == "__main__":
    main()
