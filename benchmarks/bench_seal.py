"""A watch on the seal on simulated failures of seeds, lengths and onsets it was not tuned on.

For each kind (datasets.seal_failures): how often it is named first, how far its start is from the true onset,
how often a healthy recording is flagged, and whether the call on the stable stretch equals the call on the
healthy recording of the same cell (the bundled demo model through the decision module).

    python benchmarks/bench_seal.py [--seeds 20] [--duration 120] [--onset 60]
"""

from __future__ import annotations

import argparse
import collections
import time
import warnings

import numpy as np

from spikeinterface_sero.datasets.seal_failures import SEAL_FAILURES, simulate_seal_failure
from spikeinterface_sero.decision import cell_decisions, consensus_of
from spikeinterface_sero.model import load_model
from spikeinterface_sero.seal import watch_seal
from spikeinterface_sero.snippets import main_channel_waveforms, recording_to_analyzer

CELL_TYPES = ("serotonergic", "non_serotonergic", "atypical_serotonergic")


def _spikes(simulated):
    analyzer = recording_to_analyzer(simulated.to_recording())
    spikes = analyzer.sorting.to_spike_vector()[analyzer.get_extension("random_spikes").get_data()]
    return main_channel_waveforms(analyzer), spikes["sample_index"] / analyzer.sampling_frequency


def _call(ensemble, waveforms):
    if not len(waveforms):
        return "undetermined"
    consensus = consensus_of(ensemble.predict_members(waveforms))
    return str(cell_decisions(consensus, np.zeros(len(waveforms), int))["sero_label"].iloc[0])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--onset", type=float, default=60.0)
    parser.add_argument("--first-seed", type=int, default=5000)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    ensemble = load_model(None)
    named, errors, same_call = collections.Counter(), collections.defaultdict(list), collections.Counter()
    started = time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        cell_type = CELL_TYPES[seed % 3]
        healthy_call = None
        for kind in SEAL_FAILURES:
            simulated = simulate_seal_failure(kind, cell_type, args.duration, args.onset, seed=seed)
            waveforms, times = _spikes(simulated)
            report = watch_seal(waveforms, times, end_s=simulated.duration_s)
            call = _call(ensemble, waveforms[report.stable])
            if kind == "healthy":
                healthy_call = call
                named[kind] += not report.events
                continue
            if report.events and report.events[0][0] == kind:
                named[kind] += 1
                errors[kind].append(report.events[0][1] - args.onset)
            same_call[kind] += call == healthy_call
    print(
        f"{args.seeds} cells per kind ({args.duration:g} s, onset {args.onset:g} s), {time.perf_counter() - started:.0f} s"
    )
    print(
        f"{'kind':<12} {'named first':>12} {'start - onset (median, max |.|)':>34} {'stable-stretch call = healthy call':>36}"
    )
    for kind in SEAL_FAILURES:
        if kind == "healthy":
            print(f"{kind:<12} {named[kind]:>5} of {args.seeds} not flagged")
            continue
        e = np.asarray(errors[kind])
        spread = f"{np.median(e):+.1f} s, {np.abs(e).max():.1f} s" if e.size else "-"
        print(f"{kind:<12} {named[kind]:>5} of {args.seeds} {spread:>34} {same_call[kind]:>25} of {args.seeds}")


if __name__ == "__main__":
    main()
