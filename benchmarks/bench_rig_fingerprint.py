"""The rig check of the bundled demo model: which cells its stored rig validation calls like the validated rig,
and how many reliable calls are right, on other days of its own simulator, on classic simulator days, on a
stand-in other rig (a 0.9-1.3 kHz filter, 15-25 pA flat noise) and on the membrane rig (datasets.membrane).

    python benchmarks/bench_rig_fingerprint.py                # 14 + 6 + 14 + 20 cells of 60 s (~4 min on 2 cores)
    python benchmarks/bench_rig_fingerprint.py --quick --json out.json    # 20 s cells, fewer of them
    python benchmarks/bench_rig_fingerprint.py --more-seeds   # also seeds 2030 (demo), 300-307 (default), 11 (membrane)
    python benchmarks/bench_rig_fingerprint.py --held-out     # only the sets no choice looked at (30 s cells)

The numbers are in docs/validate.md ("Measured").
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import pandas as pd

from spikeinterface_sero.datasets.membrane import simulate_membrane_dataset
from spikeinterface_sero.datasets.simulator import VARIED_DAYS, simulate_dataset, simulate_drn_recording
from spikeinterface_sero.snippets import recording_to_analyzer

STAND_IN = dict(VARIED_DAYS, electrode_filter_hz=(900.0, 1300.0), noise_sd_pa=(15.0, 25.0), noise_exponent=(0.0, 0.2))


KINDS = ("serotonergic", "atypical_serotonergic", "non_serotonergic")
COUNTS = {"serotonergic": 4, "atypical_serotonergic": 3, "non_serotonergic": 7}
MEMBRANE = {"serotonergic": 7, "atypical_serotonergic": 3, "non_serotonergic": 10}


def _default_settings(seeds, duration: float) -> list:
    """Cells of the demo simulator's default settings (``simulate_drn_recording``), the kinds in turn."""
    return [simulate_drn_recording(KINDS[i % 3], duration_s=duration, seed=seed) for i, seed in enumerate(seeds)]


def _more_seeds(duration: float) -> dict:
    """Other seeds of both families than the sets above."""
    return {
        "more seeds: demo simulator, seed 2030": simulate_dataset(
            COUNTS, duration, seed=2030, n_groups=4, day_ranges=VARIED_DAYS, day_prefix="fresh"
        ),
        "more seeds: default settings, seeds 300-307": _default_settings(range(300, 308), duration),
        "more seeds: membrane rig, seed 11": simulate_membrane_dataset(MEMBRANE, duration, seed=11, n_days=3),
    }


def _held_out(duration: float) -> dict:
    """Sets that no choice of the fingerprint or of the demo's rig validation looked at (docs/validate.md)."""
    sets = {"held out: default settings, seeds 98000-98059": _default_settings(range(98_000, 98_060), duration)}
    for seed in (2036, 2037):
        sets[f"held out: demo simulator, seed {seed}"] = simulate_dataset(
            COUNTS, duration, seed=seed, n_groups=4, day_ranges=VARIED_DAYS, day_prefix="fresh"
        )
    sets["held out: stand-in rig, seed 2028"] = simulate_dataset(
        COUNTS, duration, seed=2028, n_groups=2, day_ranges=STAND_IN, day_prefix="rigB"
    )
    for seed in (17, 18):
        sets[f"held out: membrane rig, seed {seed}"] = simulate_membrane_dataset(
            MEMBRANE, duration, seed=seed, n_days=3
        )
    return sets


def _sets(quick: bool) -> dict:
    scale, duration = (2, 20.0) if quick else (1, 60.0)
    counts = {
        key: max(1, n // scale)
        for key, n in {"serotonergic": 4, "atypical_serotonergic": 3, "non_serotonergic": 7}.items()
    }
    membrane = {
        key: max(1, n // scale)
        for key, n in {"serotonergic": 7, "atypical_serotonergic": 3, "non_serotonergic": 10}.items()
    }
    classic = [
        simulate_drn_recording(kind, duration_s=30.0, seed=300 + seed)
        for kind in ("serotonergic", "atypical_serotonergic", "non_serotonergic")
        for seed in (1, 2)
    ]
    return {
        "demo simulator, other days": simulate_dataset(
            counts, duration, seed=2024, n_groups=4, day_ranges=VARIED_DAYS, day_prefix="other"
        ),
        "classic simulator days": classic,
        "stand-in rig (1 kHz filter, 15-25 pA noise)": simulate_dataset(
            counts, duration, seed=2025, n_groups=2, day_ranges=STAND_IN, day_prefix="rigB"
        ),
        "membrane rig": simulate_membrane_dataset(membrane, duration, seed=7, n_days=2),
    }


def _row(name: str, recording) -> dict:
    analyzer = recording_to_analyzer(recording.to_recording())  # held: the extension keeps only a weak reference
    units = analyzer.compute("serotonergic", progress_bar=False).get_data()
    unit = units.iloc[0]
    return dict(
        set=name,
        label=recording.label,
        call=unit["sero_label"],
        rig=unit["sero_rig"],
        reliable=bool(unit["sero_reliable"]),
    )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter cells")
    parser.add_argument("--json", default=None, help="write the figures here")
    parser.add_argument("--more-seeds", action="store_true", help="also other seeds of both families (30 s cells)")
    parser.add_argument("--held-out", action="store_true", help="only the held-out sets (30 s cells)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    sets = _held_out(30.0) if args.held_out else _sets(args.quick) | (_more_seeds(30.0) if args.more_seeds else {})
    table = pd.DataFrame([_row(name, r) for name, recordings in sets.items() for r in recordings])
    figures = {}
    for name, group in table.groupby("set", sort=False):
        reliable = group[group["reliable"]]
        figures[name] = dict(
            cells=len(group),
            like_the_validated_rig=int((group["rig"] == "validated").sum()),
            reliable=len(reliable),
            reliable_right=int((reliable["call"] == reliable["label"]).sum()),
        )
        print(f"{name}: {figures[name]}")
    own = table[~table["set"].str.contains("stand-in|membrane")]
    other = table[table["set"].str.contains("stand-in|membrane")]
    other_reliable = other[other["reliable"]]
    summary = dict(
        own_rig_cells=len(own),
        own_rig_flagged=int((own["rig"] != "validated").sum()),
        other_rig_cells=len(other),
        other_rig_reliable=len(other_reliable),
        other_rig_reliable_wrong=int((other_reliable["call"] != other_reliable["label"]).sum()),
    )
    print(
        f"the demo simulator's own cells flagged: {summary['own_rig_flagged']} of {len(own)} (goal <= 5 %); "
        f"other rigs: {summary['other_rig_reliable']} reliable calls of {len(other)} cells, "
        f"{summary['other_rig_reliable_wrong']} wrong (goal: right >= 95 %)"
    )
    result = {"figures": figures, "summary": summary, "seconds": time.perf_counter() - start, "quick": args.quick}
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == "__main__":
    main()
