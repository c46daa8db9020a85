"""The live page at the rig: the delay from a file's last byte to its row on the page, and memory over a session.

Files are written into a watched folder in pieces, as an acquisition program writes them (`--speed` times
real time; 1 = acquisition speed), by `sero watch --serve`'s own parts (watch_folder feeding a LiveBoard);
the delay is measured from the last byte written to the page's state showing the file's row.

    python benchmarks/bench_live.py [--cells 5] [--duration 120] [--speed 20] [--settle 0.5]
    python benchmarks/bench_live.py --cells 200 --duration 72 --speed 50   # a 4-hour session of 200 cells
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from spikeinterface_sero.datasets import simulate_drn_recording, write_abf
from spikeinterface_sero.live import LiveBoard
from spikeinterface_sero.watch import watch_folder

PIECES = 20  # the file grows in this many pieces


def _write_growing(path: Path, traces: np.ndarray, fs: float, seconds: float) -> float:
    """Write the file's bytes in PIECES pieces over ``seconds``; the time of the last byte."""
    staging = path.with_suffix(".staging")
    write_abf(staging, traces, fs, data_format="int16")
    data = staging.read_bytes()
    staging.unlink()
    step = -(-len(data) // PIECES)
    with open(path, "wb") as file:
        for start in range(0, len(data), step):
            file.write(data[start : start + step])
            file.flush()
            time.sleep(seconds / PIECES)
    return time.monotonic()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of recording per cell")
    parser.add_argument("--speed", type=float, default=20.0, help="times acquisition speed")
    parser.add_argument("--settle", type=float, default=0.5, help="seconds unchanged before a file counts as done")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    board, stop = LiveBoard(), threading.Event()
    seen: dict[str, float] = {}

    def on_result(rows) -> None:
        board.update(rows)
        for file in rows["file"]:
            seen.setdefault(Path(file).name, time.monotonic())

    with tempfile.TemporaryDirectory() as folder:
        started = threading.Event()
        watcher = threading.Thread(
            target=watch_folder,
            args=(folder,),
            kwargs=dict(settle_s=args.settle, poll_s=0.05, stop_event=stop, on_result=on_result, on_start=started.set),
            daemon=True,
        )
        watcher.start()
        started.wait(60)
        delays, rss = [], []
        for cell in range(args.cells):
            kind = ("serotonergic", "non_serotonergic")[cell % 2]
            simulated = simulate_drn_recording(kind, duration_s=args.duration, seed=cell)
            name = f"cell{cell:03d}.abf"
            last_byte = _write_growing(
                Path(folder) / name, simulated.traces, simulated.sampling_frequency, args.duration / args.speed
            )
            while name not in seen and time.monotonic() - last_byte < 120:
                time.sleep(0.01)
            delays.append(seen.get(name, np.nan) - last_byte)
            rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        stop.set()
        watcher.join(30)
    print(
        f"{args.cells} cells of {args.duration:g} s written at {args.speed:g}x acquisition speed, settle {args.settle:g} s"
    )
    print(
        f"delay from the last byte to the row on the page: median {statistics.median(delays):.2f} s, max {max(delays):.2f} s"
    )
    print(
        f"  of which the settle time (a file unchanged for {args.settle:g} s counts as finished): {args.settle:.2f} s"
    )
    print(f"peak RSS after the first cell {rss[0]:.0f} MB, after the last {rss[-1]:.0f} MB")


if __name__ == "__main__":
    main()
