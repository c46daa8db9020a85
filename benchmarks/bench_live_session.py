"""Memory over a long live session: 200 cells arriving over a time-compressed 4-hour session of `sero watch --serve`.

Each cell is one .abf file of a realistic recording (simulated DRN cells, SER and NSER, 60-120 s at 40 kHz,
int16), written into the watched folder as an acquisition program writes it (``write_abf_in_pieces``: the
provisional header, 10 s pieces, the finished header) over its acquisition time divided by ``--compress``, one
file after another, one every ``hours * 3600 / cells / compress`` seconds (or as soon as the previous row is on
the page when the watcher is slower). ``sero watch FOLDER --serve`` runs in a subprocess, exactly as at the
rig (its defaults: the part written so far classified every 5 s while a file grows); the page is read like a
browser does: one server-sent event stream open all the time and ``/state``
polled every second. After every ``--every`` files (once their rows are on the page) the watch process's
resident memory (VmRSS and RssAnon from ``/proc/PID/status``) is sampled.

Reported: the samples, the slope of a least-squares line through those from the ``--every``-th file on (the
first file loads what every file uses; MB per 100 cells; also over the second half of the session only), the maximum, and the size of the page's state at the end. Goal: flat
(the slope near 0: the board keeps a fixed-size row and a 160-point mean current per cell; nothing else grows
with the session). The recordings are a pool of ``--pool`` distinct simulated cells, reused in turn (the
watcher classifies every file anew; simulating 200 cells would only slow the benchmark).

    python benchmarks/bench_live_session.py                 # 200 cells, 4 hours compressed 60 times
    python benchmarks/bench_live_session.py --quick         # a smoke run (20 cells, still warming up)
    python benchmarks/bench_live_session.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from pathlib import Path

import numpy as np

from spikeinterface_sero.datasets import write_abf_in_pieces

PIECE_S = 10.0  # seconds of recording per piece the acquisition program appends


def _recordings(pool: int, low_s: float, high_s: float) -> list:
    """``pool`` simulated recordings (alternately SER and NSER, ``low_s`` to ``high_s`` long): (traces, fs)."""
    from spikeinterface_sero.datasets import simulate_drn_recording

    durations = np.random.default_rng(0).uniform(low_s, high_s, pool)
    out = []
    for i, duration in enumerate(durations):
        kind = ("serotonergic", "non_serotonergic")[i % 2]
        simulated = simulate_drn_recording(kind, duration_s=float(duration), seed=100 + i)
        out.append((simulated.traces.astype(np.float32), simulated.sampling_frequency))
    return out


def _memory_mb(pid: int) -> dict:
    """VmRSS and RssAnon of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


class _Browser:
    """What a browser does with the page: one event stream open, /state polled every second."""

    def __init__(self, url: str):
        self.url = url
        self.stop = threading.Event()
        self.state: dict = {"rows": []}
        self.events = 0
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._poll, self._stream)]
        for thread in self.threads:
            thread.start()

    def _poll(self) -> None:
        while not self.stop.is_set():
            try:
                self.state = json.loads(urllib.request.urlopen(self.url + "state", timeout=30).read())
            except OSError:
                pass
            self.stop.wait(1.0)

    def _stream(self) -> None:
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(self.url + "events", timeout=60) as stream:
                    for line in stream:
                        self.events += line.startswith(b"data: ")
                        if self.stop.is_set():
                            return
            except OSError:
                self.stop.wait(1.0)

    def rows(self) -> int:
        return len(self.state.get("rows", []))


def _start_watch(folder: Path, out: Path, settle_s: float):
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "spikeinterface_sero.cli", "watch", str(folder), "--serve", "--quiet"]
    command += ["--settle", str(settle_s), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    url = None
    for line in process.stdout:
        found = re.search(r"live page: (http://127\.0\.0\.1:\d+/)", line)
        url = found.group(1) if found else url
        if line.startswith("watching"):
            break
    if url is None:
        process.kill()
        raise SystemExit("sero watch --serve did not start")
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # keep the pipe empty
    return process, url


def _slope(cells, values) -> float:
    """MB per 100 cells of a least-squares line (nan with fewer than 2 points)."""
    return float(np.polyfit(cells, values, 1)[0] * 100) if len(cells) >= 2 else float("nan")


def _session(args, folder: Path, pool: list[bytes], process, browser: _Browser) -> list[dict]:
    slot_s = args.hours * 3600 / args.cells / args.compress  # the compressed time between two cells
    samples, start = [], time.monotonic()
    for cell in range(args.cells):
        traces, fs = pool[cell % len(pool)]
        write_abf_in_pieces(folder / f"cell{cell:03d}.abf", traces, fs, piece_s=PIECE_S, speed=args.compress)
        deadline = time.monotonic() + 300
        while browser.rows() < cell + 1 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        if (cell + 1) % args.every == 0 or cell == 0:
            samples.append(
                dict(cells=cell + 1, elapsed_s=round(time.monotonic() - start, 1), **_memory_mb(process.pid))
            )
            print(f"  {samples[-1]}", flush=True)
        time.sleep(max(0.0, start + (cell + 1) * slot_s - time.monotonic()))
    return samples


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--hours", type=float, default=4.0, help="the session's length before compression")
    parser.add_argument("--compress", type=float, default=60.0, help="times faster than the real session")
    parser.add_argument("--every", type=int, default=20, help="sample the memory after every this many files")
    parser.add_argument("--pool", type=int, default=10, help="distinct simulated recordings, reused in turn")
    parser.add_argument("--duration", type=float, nargs=2, default=(60.0, 120.0), help="recording length range (s)")
    parser.add_argument("--settle", type=float, default=0.5, help="sero watch --settle")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20 cells in 0.4 h, a sample every 5")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.quick:  # a tenth of the session, at the same pace
        args.cells, args.every, args.pool, args.hours = 20, 5, 4, args.hours / 10
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "today"
        folder.mkdir()
        pool = _recordings(args.pool, *args.duration)
        process, url = _start_watch(folder, Path(tmp) / "today.csv", args.settle)
        browser = _Browser(url)
        try:
            samples = _session(args, folder, pool, process, browser)
            state_kb = len(urllib.request.urlopen(url + "state", timeout=30).read()) / 1024
            rows_on_page = browser.rows()
        finally:
            browser.stop.set()
            process.terminate()
            process.wait(timeout=60)
    warm = [s for s in samples if s["cells"] >= args.every]  # the first file loads what every file uses
    cells = [s["cells"] for s in warm]
    rss = [s["VmRSS"] for s in warm]
    half = [i for i, c in enumerate(cells) if c > args.cells / 2]
    result = dict(
        cells=args.cells,
        session_hours=args.hours,
        compress=args.compress,
        rows_on_page=rows_on_page,
        events_received=browser.events,
        samples=samples,
        slope_mb_per_100_cells=round(_slope(cells, rss), 2),
        slope_second_half_mb_per_100_cells=round(_slope([cells[i] for i in half], [rss[i] for i in half]), 2),
        anon_slope_mb_per_100_cells=round(_slope(cells, [s["RssAnon"] for s in warm]), 2),
        max_rss_mb=round(max(s["VmRSS"] for s in samples), 1),
        state_kb=round(state_kb, 1),
    )
    print(
        f"{args.cells} cells over {args.hours:g} h compressed {args.compress:g}x; {rows_on_page} rows on the page; "
        f"RSS slope {result['slope_mb_per_100_cells']:.2f} MB per 100 cells (second half "
        f"{result['slope_second_half_mb_per_100_cells']:.2f}; anonymous {result['anon_slope_mb_per_100_cells']:.2f}), "
        f"max {result['max_rss_mb']:.0f} MB; the page's state {state_kb:.0f} kB"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
