"""The session check of the bundled demo model: its reliable calls with each cell judged alone
(``sessions="none"``) and with each recording session judged together (``sessions="day"``, the default), on
longer recordings of the membrane rig (an unseen rig: ``datasets.membrane``) and of the demo's own simulator
(other days, varied and default settings). Each set: 30 cells (10 typical SER, 10 atypical SER, 10 NSER)
written as .abf files over 3 or 4 recording days into one folder, classified by ``classify_files``.

    python benchmarks/bench_sessions.py                 # the sets of docs/validate.md ("Sessions"), ~10 min
    python benchmarks/bench_sessions.py --held-out      # seeds no choice looked at
    python benchmarks/bench_sessions.py --json out.json

The numbers are in docs/validate.md ("Sessions").
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

from spikeinterface_sero.datasets.membrane import simulate_membrane_dataset
from spikeinterface_sero.datasets.simulator import VARIED_DAYS, simulate_dataset
from spikeinterface_sero.pipeline import classify_files
from spikeinterface_sero.session_runs import session_of

COUNTS = {"serotonergic": 10, "atypical_serotonergic": 10, "non_serotonergic": 10}
#: (family, seed, seconds per cell): the sets that showed the leak (docs/validate.md), and the demo's own
LOOKED_AT = [
    ("membrane", 90_000, 120.0),
    ("membrane", 91_000, 120.0),
    ("membrane", 92_000, 60.0),
    ("demo, varied days", 93_000, 120.0),
    ("demo, default settings", 94_000, 120.0),
]
HELD_OUT = [
    ("membrane", 96_100, 120.0),
    ("membrane", 96_200, 120.0),
    ("membrane", 96_300, 60.0),
    ("demo, varied days", 96_400, 120.0),
    ("demo, default settings", 96_500, 120.0),
]


def _simulate(family: str, seed: int, duration: float, folder: Path) -> list:
    if family == "membrane":
        return simulate_membrane_dataset(COUNTS, duration, seed=seed, out_dir=folder, n_days=3)
    ranges = VARIED_DAYS if "varied" in family else None
    return simulate_dataset(COUNTS, duration, seed=seed, out_dir=folder, n_groups=4, day_ranges=ranges)


def _figures(table, truth: dict) -> dict:
    reliable = table[table["sero_reliable"]]
    right = sum(truth[str(Path(f).resolve())] == label for f, label in zip(reliable["file"], reliable["sero_label"]))
    return {
        "like_rig_alone": int((table["sero_rig"] == "validated").sum()),
        "session_unlike": int((table["sero_rig"] == "session_unlike_validated_rigs").sum()),
        "reliable": int(len(reliable)),
        "reliable_right": int(right),
    }


def run_set(family: str, seed: int, duration: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-sessions-") as folder:
        recordings = _simulate(family, seed, duration, Path(folder))
        files = [r.file for r in recordings]
        truth = {str(Path(r.file).resolve()): r.label.replace("atypical_", "") for r in recordings}
        out = {"family": family, "seed": seed, "duration_s": duration, "cells": len(files)}
        out["sessions"] = len({session_of(f) for f in files})
        for rule in ("none", "day"):
            start = time.perf_counter()
            table = classify_files(files, sessions=rule)
            out[rule] = {**_figures(table, truth), "seconds": round(time.perf_counter() - start, 1)}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held-out", action="store_true", help="the sets no choice looked at")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    results = []
    print("set | cells | sessions | alone: like / reliable / right | sessions: reliable / right | seconds")
    for family, seed, duration in HELD_OUT if args.held_out else LOOKED_AT:
        r = run_set(family, seed, duration)
        results.append(r)
        print(
            f"{family} seed {seed} {duration:g} s | {r['cells']} | {r['sessions']} | "
            f"{r['none']['like_rig_alone']} / {r['none']['reliable']} / {r['none']['reliable_right']} | "
            f"{r['day']['reliable']} / {r['day']['reliable_right']} (session_unlike {r['day']['session_unlike']}) | "
            f"{r['none']['seconds']} / {r['day']['seconds']}",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
