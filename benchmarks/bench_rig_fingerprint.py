"""The rig check of the bundled demo model: which cells its stored rig validation calls like the validated rig,
and how many reliable calls are right, on other days of its own simulator, on classic simulator days, on a
stand-in other rig (a 0.9-1.3 kHz filter, 15-25 pA flat noise) and on the membrane rig (datasets.membrane).

    python benchmarks/bench_rig_fingerprint.py                # 14 + 6 + 14 + 20 cells of 60 s (~4 min on 2 cores)
    python benchmarks/bench_rig_fingerprint.py --quick --json out.json    # 20 s cells, fewer of them

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
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    table = pd.DataFrame([_row(name, r) for name, recordings in _sets(args.quick).items() for r in recordings])
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
    result = {"figures": figures, "seconds": time.perf_counter() - start, "quick": args.quick}
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == "__main__":
    main()
