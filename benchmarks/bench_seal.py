"""A watch on the seal on simulated failures of seeds, lengths and onsets it was not tuned on.

For each kind (datasets.seal_failures): how often it is named first, how far its start is from the true onset
(median and 90th percentile of the error), whether the call on the stable stretch equals the call on the
healthy recording of the same cell (the bundled demo model through the decision module). Then how often a
healthy cell is flagged (any event) in three populations: the seal-failure simulator's healthy recordings
(the seeds above), a dataset of widened days (``simulate_dataset(day_ranges=VARIED_DAYS)``) and the second
simulator family (``simulate_membrane_dataset``, as ``bench_transfer.py`` makes its days), with what tripped.

    python benchmarks/bench_seal.py [--seeds 20] [--duration 120] [--onset 60]
    python benchmarks/bench_seal.py --seeds 12 --healthy-seeds 7100 7101 --healthy-duration 30
"""

from __future__ import annotations

import argparse
import collections
import time
import warnings

import numpy as np

from spikeinterface_sero.datasets import VARIED_DAYS, simulate_dataset, simulate_membrane_dataset
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


def _watch(simulated):
    waveforms, times = _spikes(simulated)
    return watch_seal(waveforms, times, end_s=simulated.duration_s), waveforms


def _call(ensemble, waveforms):
    if not len(waveforms):
        return "undetermined"
    consensus = consensus_of(ensemble.predict_members(waveforms))
    return str(cell_decisions(consensus, np.zeros(len(waveforms), int))["sero_label"].iloc[0])


def failures(args, ensemble) -> collections.Counter:
    """Each failure kind on ``args.seeds`` cells; prints its table and returns the healthy recordings' flags."""
    named, errors, same_call = collections.Counter(), collections.defaultdict(list), collections.Counter()
    flagged = collections.Counter()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        cell_type = CELL_TYPES[seed % 3]
        healthy_call = None
        for kind in SEAL_FAILURES:
            report, waveforms = _watch(simulate_seal_failure(kind, cell_type, args.duration, args.onset, seed=seed))
            call = _call(ensemble, waveforms[report.stable])
            if kind == "healthy":
                healthy_call = call
                flagged.update(event for event, _ in report.events[:1])
                flagged["cells"] += 1
                continue
            if report.events and report.events[0][0] == kind:
                named[kind] += 1
                errors[kind].append(report.events[0][1] - args.onset)
            same_call[kind] += call == healthy_call
    print(f"{args.seeds} cells per kind ({args.duration:g} s, onset {args.onset:g} s)")
    print(
        f"{'kind':<12} {'named first':>12} {'start - onset: median, |.| median, 90th pct, max':>50} {'call = healthy':>15}"
    )
    for kind in SEAL_FAILURES[1:]:
        e = np.asarray(errors[kind])
        spread = "-"
        if e.size:
            spread = f"{np.median(e):+.2f} s, {np.median(np.abs(e)):.2f}, {np.quantile(np.abs(e), 0.9):.2f}, {np.abs(e).max():.2f} s"
        print(f"{kind:<12} {named[kind]:>5} of {args.seeds} {spread:>50} {same_call[kind]:>8} of {args.seeds}")
    return flagged


def healthy_flags(recordings) -> collections.Counter:
    """How many of ``recordings`` (healthy cells) the seal watch flags, by the first event it names."""
    flagged = collections.Counter()
    for simulated in recordings:
        report, _ = _watch(simulated)
        flagged.update(event for event, _ in report.events[:1])
        flagged["cells"] += 1
    return flagged


def _say(name: str, flagged: collections.Counter) -> None:
    cells = flagged.pop("cells")
    what = ", ".join(f"{kind} {n}" for kind, n in sorted(flagged.items())) or "none"
    share = 100.0 * sum(flagged.values()) / max(cells, 1)
    print(f"{name:<58} {sum(flagged.values()):>3} of {cells:<4} flagged ({share:.1f} %; {what})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--onset", type=float, default=60.0)
    parser.add_argument("--first-seed", type=int, default=5000)
    parser.add_argument("--healthy-seeds", type=int, nargs="*", default=[7100, 7101], help="seeds of the datasets")
    parser.add_argument("--healthy-duration", type=float, default=30.0, help="s per cell of the healthy datasets")
    parser.add_argument("--healthy-cells", type=int, default=20, help="cells per type of the VARIED_DAYS dataset")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    flagged = failures(args, load_model(None))
    print("\nhealthy cells flagged (any event; the first event named)")
    _say(f"seal-failure simulator, seeds {args.first_seed}-{args.first_seed + args.seeds - 1}", flagged)
    for seed in args.healthy_seeds:
        cells = simulate_dataset(args.healthy_cells, args.healthy_duration, seed=seed, day_ranges=VARIED_DAYS)
        _say(f"VARIED_DAYS, seed {seed}, {args.healthy_duration:g} s", healthy_flags(cells))
        cells = simulate_membrane_dataset(None, args.healthy_duration, seed=seed)
        _say(f"membrane family, seed {seed}, {args.healthy_duration:g} s", healthy_flags(cells))
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
