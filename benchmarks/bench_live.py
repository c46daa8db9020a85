"""The live page at the rig: the delay from a file's last byte to its row on the page, and memory over a session.

Each cell's file is written into a watched folder the way an acquisition program writes it while recording
(`datasets.AbfInPieces`: the header with provisional counts, a piece of `--piece` seconds of recording every
`--piece / --speed` seconds, the header finalised at the end; docs/live.md), watched by `sero watch --serve`'s
own parts (watch_folder feeding a LiveBoard served by a LiveServer). The delay is measured from the last byte
of the file (the finished header) to the page's data endpoint (`/state`, over HTTP) showing the file's final
row; the rows shown while the file grew ("recording") are counted.

    python benchmarks/bench_live.py [--cells 5] [--duration 120] [--speed 20] [--update 5]
    python benchmarks/bench_live.py --cells 200 --duration 72 --speed 50   # a 4-hour session of 200 cells
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import threading
import time
import urllib.request
import warnings
from pathlib import Path

import numpy as np

from spikeinterface_sero.datasets import AbfInPieces, simulate_drn_recording
from spikeinterface_sero.live import LiveBoard, LiveServer
from spikeinterface_sero.watch import watch_folder


class _PageWatch:
    """Polls the page's /state and notes when each file's row first shows each n_spikes and state."""

    def __init__(self, url: str):
        self.url = url.rstrip("/") + "/state"
        self.seen: dict[tuple, float] = {}  # (file name, acquisition, n_spikes) -> first seen
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            with urllib.request.urlopen(self.url, timeout=5) as response:
                state = json.load(response)
            now = time.monotonic()
            for row in state["rows"]:
                key = (Path(row["file"]).name, row.get("acquisition") or "", row["n_spikes"])
                self.seen.setdefault(key, now)
            time.sleep(0.01)

    def final(self, name: str):
        return min((t for (f, a, _), t in self.seen.items() if f == name and a == ""), default=None)

    def partial(self, name: str) -> list[tuple[int, float]]:
        return sorted((n, t) for (f, a, n), t in self.seen.items() if f == name and a == "recording")


def _write_cell(path: Path, traces: np.ndarray, fs: float, piece_s: float, speed: float) -> tuple[list, float]:
    """The file written in pieces at ``speed`` times acquisition speed: (time of each piece's last byte,
    sample count after it), and the time of the finished header."""
    writer = AbfInPieces(path, traces, fs, data_format="int16")
    writer.begin()
    pieces = []
    while writer.written < writer.n_samples:
        time.sleep(piece_s / speed)
        pieces.append((time.monotonic(), writer.append(int(piece_s * fs))))
    writer.finish()
    return pieces, time.monotonic()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of recording per cell")
    parser.add_argument("--speed", type=float, default=20.0, help="times acquisition speed")
    parser.add_argument("--piece", type=float, default=1.0, help="seconds of recording per piece written")
    parser.add_argument("--update", type=float, default=5.0, help="seconds between updates while a file grows")
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between looks at pending files")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    board, stop = LiveBoard(), threading.Event()
    server = LiveServer(board)
    page = _PageWatch(server.url)
    finals, updates, rss = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        started = threading.Event()
        options = dict(settle_s=2.0, poll_s=args.poll, update_s=args.update, stop_event=stop)
        watcher = threading.Thread(
            target=watch_folder,
            args=(folder,),
            kwargs=dict(options, on_result=board.update, on_start=started.set),
            daemon=True,
        )
        watcher.start()
        started.wait(120)
        for cell in range(args.cells):
            kind = ("serotonergic", "non_serotonergic")[cell % 2]
            simulated = simulate_drn_recording(kind, duration_s=args.duration, seed=cell)
            name = f"cell{cell:03d}.abf"
            _, last_byte = _write_cell(
                Path(folder) / name, simulated.traces, simulated.sampling_frequency, args.piece, args.speed
            )
            while page.final(name) is None and time.monotonic() - last_byte < 120:
                time.sleep(0.01)
            finals.append((page.final(name) or np.nan) - last_byte)
            updates.append(len(page.partial(name)))
            rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        stop.set()
        watcher.join(30)
    page.stop.set()
    server.stop()
    print(
        f"{args.cells} cells of {args.duration:g} s written in {args.piece:g} s pieces at {args.speed:g}x "
        f"acquisition speed; updates every {args.update:g} s while growing, looks every {args.poll:g} s"
    )
    print(
        f"last byte -> final row on the page (/state): median {statistics.median(finals):.2f} s, max {max(finals):.2f} s"
        f"  (per file: {', '.join(f'{d:.2f}' for d in finals)})"
    )
    print(f"rows shown while the files grew ('recording'): {statistics.mean(updates):.1f} per file")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"peak RSS after the first cell {rss[0]:.0f} MB, after the last {rss[-1]:.0f} MB")


if __name__ == "__main__":
    main()
