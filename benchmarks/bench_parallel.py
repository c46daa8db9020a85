"""``sero classify --n-jobs 2`` vs the loop (``--n-jobs 1``) on 12 one-cell files, each a fresh process.

    python benchmarks/bench_parallel.py [--files 12] [--spikes 600] [--jobs 2] [--repeats 3] [--json OUT]

The files are simulated serotonergic cells (``bench_cold_start.make_one_cell_abf``, a different seed each,
about ``--spikes`` action currents at 3 Hz) written as int16 ABF 2 files. Each round runs the console script
(``sero classify FILES --out ... --overwrite --quiet``) once with ``--n-jobs 1`` and once with ``--n-jobs N``,
in turns, after one untimed round that warms the file cache; the medians are compared. Both runs must give
the same table (checked). Also reported: whether the parallel run printed anything on stderr besides the
results (stray worker log lines).

A third run, the loop with the threads each worker gets (``SERO_NUM_THREADS`` = cores // N: one on 2 cores
with 2 workers), measures the work itself: no split of it over N workers can beat ``worker-thread loop / N``
plus the start-up both runs pay. The loop already runs the ensemble on every core (the numpy engine's
threads), so against the loop the best possible speed-up is ``loop / (worker-thread loop / N)``, printed as
the bound.

Goal (issue #14): the parallel run at least 1.5 x faster than the loop with 2 workers. On a machine whose
cores are shared with other work the speed-up is bounded by the cores free at the time: the load average
is printed with the numbers. The package's bytecode is written first (``bench_cold_start.compile_bytecode``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOAL = 1.5


def make_files(folder: Path, n_files: int, n_spikes: int) -> list[Path]:
    """``n_files`` one-cell ABF files (cached in ``folder``)."""
    sys.path.insert(0, str(HERE))
    from bench_cold_start import make_one_cell_abf

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for k in range(n_files):
        path = folder / f"cell_{n_spikes}sp_s{k:02d}.abf"
        if not path.is_file():
            tmp = path.with_suffix(".tmp.abf")
            make_one_cell_abf(tmp, n_spikes=n_spikes, seed=100 + k)
            os.replace(tmp, path)
        files.append(path)
    return files


def _run(sero: Path, files: list[Path], out: Path, n_jobs: int, env: dict) -> tuple[float, str, str]:
    """One ``sero classify`` run: its wall time, stderr and the results table."""
    cmd = [str(sero), "classify", *map(str, files), "--out", str(out), "--overwrite", "--quiet"]
    cmd += ["--n-jobs", str(n_jobs)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        raise SystemExit(f"--n-jobs {n_jobs} failed (exit {r.returncode}): " + " | ".join(tail))
    return seconds, r.stderr, out.read_text(encoding="utf-8")


def _table(text: str) -> list[str]:
    """The results CSV without the columns that may differ between runs (none expected: order and values)."""
    return [line for line in text.splitlines() if line.strip()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=12, help="number of one-cell files (default 12)")
    ap.add_argument("--spikes", type=int, default=600, help="spikes per file, about (default 600: ~200 s)")
    ap.add_argument("--jobs", type=int, default=2, help="workers of the parallel run (default 2)")
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds (default 3)")
    ap.add_argument("--workdir", default=None, help="where the files are cached")
    ap.add_argument("--json", default=None, metavar="OUT", help="also write the results as JSON")
    args = ap.parse_args(argv)

    work = Path(args.workdir or Path(tempfile.gettempdir()) / "sero-bench" / "parallel")
    files = make_files(work, args.files, args.spikes)
    from bench_cold_start import compile_bytecode

    compile_bytecode()
    sero = Path(sys.executable).with_name("sero")
    if not sero.is_file():
        raise SystemExit(f"the console script {sero} is not installed (pip install -e .)")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    from spikeinterface_sero.batch import thread_environment, worker_threads

    threads = worker_threads(args.jobs)  # what each worker of the parallel run gets
    runs = {  # name: (n_jobs, environment)
        "loop": (1, env),
        "loop, worker threads": (1, dict(env, **thread_environment(threads))),
        "parallel": (args.jobs, env),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    stray, tables = {}, {}
    loads = []
    for round_ in range(args.repeats + 1):  # round 0 warms the file cache and is not timed
        for name, (n_jobs, run_env) in runs.items():
            seconds, stderr, text = _run(sero, files, work / f"out_{n_jobs}.csv", n_jobs, run_env)
            tables[name] = _table(text)
            stray[name] = [line for line in stderr.splitlines() if line.strip()]
            if round_:
                times[name].append(seconds)
        loads.append(os.getloadavg()[0])
    same = tables["loop"] == tables["parallel"] == tables["loop, worker threads"]
    median = {name: statistics.median(values) for name, values in times.items()}
    loop, parallel = median["loop"], median["parallel"]
    speedup = loop / parallel
    bound = loop / (median["loop, worker threads"] / args.jobs)
    print(
        f"{len(files)} one-cell files (~{args.spikes} spikes each), {args.repeats} rounds, {os.cpu_count()} CPU cores, "
        f"load average {min(loads):.1f}-{max(loads):.1f}"
    )
    print(f"{'run (fresh process)':<32}{'median s':>10}{'best s':>9}   all s")
    labels = {
        "loop": "loop (--n-jobs 1)",
        "loop, worker threads": f"loop, {threads} thread(s) (--n-jobs 1)",
        "parallel": f"--n-jobs {args.jobs}",
    }
    for name, values in times.items():
        print(f"{labels[name]:<32}{median[name]:>10.2f}{min(values):>9.2f}   {' '.join(f'{v:.2f}' for v in values)}")
    verdict = "met" if speedup >= GOAL else "NOT met"
    print(f"speed-up over the loop {speedup:.2f} x (goal >= {GOAL}: {verdict}); same table: {same}")
    print(
        f"speed-up over the loop with {threads} thread(s) {median['loop, worker threads'] / parallel:.2f} x; "
        f"bound over the loop (that loop split perfectly over {args.jobs} workers, no start-up): {bound:.2f} x"
    )
    print(
        f"stderr lines of the parallel run: {len(stray['parallel'])}"
        + (f": {stray['parallel'][:3]}" if stray["parallel"] else "")
    )
    result = {
        "files": len(files),
        "spikes_per_file": args.spikes,
        "jobs": args.jobs,
        "repeats": args.repeats,
        "times_s": times,
        "loop_median_s": loop,
        "threads_per_worker": threads,
        "loop_worker_threads_median_s": median["loop, worker threads"],
        "parallel_median_s": parallel,
        "speedup": speedup,
        "speedup_over_worker_thread_loop": median["loop, worker threads"] / parallel,
        "bound_over_loop": bound,
        "goal": GOAL,
        "goal_met": speedup >= GOAL,
        "same_table": same,
        "stray_stderr_lines": len(stray["parallel"]),
        "cpu_count": os.cpu_count(),
        "load_average": loads,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
