"""Run every benchmark and print one table (name, metric, value, target, pass/fail).

    python benchmarks/run_all.py [--quick] [--json OUT] [--only NAME ...] [--strict]

Each benchmark runs in its own subprocess with its ``--json`` option (so that each gets a fresh
TensorFlow and its own memory), and each is also runnable alone:

=============  =========================  ==============================================================
name           script                     measures
=============  =========================  ==============================================================
end_to_end     bench_end_to_end.py        .abf -> labels, time per stage; before-inference share < 30 %
memory         bench_memory.py            peak RSS, 1-min vs 60-min recording, and 1-min vs 30-min noise with
                                          ~400 crossings/s under a 5 GB cap; differences < 100 MB
parallel       bench_parallel.py          ``sero classify --n-jobs 2`` vs the loop on 12 files; >= 1.5 x
cold_start     bench_cold_start.py        one-cell ``sero classify`` vs ``import tensorflow``; <= 0.4 x
inference      bench_inference.py         fused vs naive ensemble inference (spikes/s)
synthetic      bench_synthetic.py         synthetic-snippet generator (snippets/s), >= 1e6
training       bench_training.py          fused vs naive ensemble training (samples/s)
fuzz           fuzz_abf.py                mutated / truncated .abf files: processed, refused, escaped (0)
=============  =========================  ==============================================================

A script that is not present is listed as "not present"; one that fails is listed with its last error
line (the others still run). ``--quick`` uses smaller sizes (whole run about 6 minutes on 2 cores):
a 3-minute end-to-end file, 1 vs 10 minutes for memory, fewer spikes / rounds / cases elsewhere.
Exit status: 0 when every present benchmark ran (1 if one failed to run; with ``--strict`` also 1 when a
target is missed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _num(x):
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _row(name, metric, value, target="", passed=None):
    return dict(name=name, metric=metric, value=value, target=target, passed=passed)


# -------------------------------------------------------------------------------------------- row extraction
def rows_end_to_end(r: dict) -> list[dict]:
    sys.path.insert(0, str(HERE))
    import bench_end_to_end

    return bench_end_to_end.summary_rows(r)


def rows_memory(r: dict) -> list[dict]:
    sys.path.insert(0, str(HERE))
    import bench_memory

    return bench_memory.summary_rows(r)


def rows_parallel(r: dict) -> list[dict]:
    out = [
        _row("parallel", f"loop, {r['files']} files (median s)", r["loop_median_s"]),
        _row("parallel", f"--n-jobs {r['jobs']} (median s)", r["parallel_median_s"]),
        _row("parallel", f"speed-up, {r['jobs']} workers", r["speedup"], f">= {r['goal']:g}", r["goal_met"]),
        _row("parallel", "speed-up over the loop with the workers' threads", r["speedup_over_worker_thread_loop"]),
        _row("parallel", "bound over the loop (work split perfectly)", r["bound_over_loop"]),
        _row("parallel", "same table as the loop", r["same_table"], "True", r["same_table"]),
        _row(
            "parallel", "stderr lines of the parallel run", r["stray_stderr_lines"], "0", r["stray_stderr_lines"] == 0
        ),
    ]
    return out


def rows_cold_start(r: dict) -> list[dict]:
    out = [_row("cold_start", f"{name} (median s)", value) for name, value in r["median_s"].items()]
    ratio = r["ratio_classify_to_tf_import"]
    out.append(_row("cold_start", "sero classify / import tensorflow", ratio, f"<= {r['goal']:g}", r["goal_met"]))
    return out


def rows_inference(r: dict) -> list[dict]:
    out = []
    for row in r.get("rows", []):
        if _num(row.get("spikes_per_s")) is not None:
            out.append(_row("inference", f"{row.get('path', '?')} (spikes/s)", row["spikes_per_s"]))
    if _num(r.get("speedup_vs_naive")) is not None:  # the target: >= 5x the naive model.predict loop
        out.append(
            _row(
                "inference",
                "fused speed-up vs naive predict loop (batch 32, Keras' default)",
                r["speedup_vs_naive"],
                ">= 5",
                r["speedup_vs_naive"] >= 5,
            )
        )
    if _num(r.get("speedup_vs_naive_large_batch")) is not None:  # for information: a tuned naive loop
        out.append(
            _row(
                "inference",
                "fused speed-up vs naive predict loop with large batches",
                r["speedup_vs_naive_large_batch"],
            )
        )
    if _num(r.get("consensus_max_abs_diff")) is not None:
        out.append(
            _row(
                "inference",
                "consensus max |fused - naive|",
                r["consensus_max_abs_diff"],
                "< 1e-5",
                r["consensus_max_abs_diff"] < 1e-5,
            )
        )
    return out


def rows_synthetic(r: dict) -> list[dict]:
    out = []
    sample = {int(k): v for k, v in (r.get("sample") or {}).items() if _num(v) is not None}
    batch = {int(k): v for k, v in (r.get("batch") or {}).items() if _num(v) is not None}
    stream = {int(k): v for k, v in (r.get("stream") or {}).items() if _num(v) is not None}
    if sample:
        best = max(sample.values())
        out.append(_row("synthetic", "generator.sample, best batch (snippets/s)", best, ">= 1e6", best >= 1e6))
    for n, v in sorted(batch.items()):
        out.append(_row("synthetic", f"generator.batch, batch {n} (snippets/s)", v))
    for n, v in sorted(stream.items()):
        out.append(_row("synthetic", f"PyDataset stream, batch {n} (snippets/s)", v))
    return out


def rows_training(r: dict) -> list[dict]:
    out = []
    rows = r.get("rows") or {}
    for path, d in rows.items():
        for key, label in (
            ("end_to_end_samples_per_s", "end to end"),
            ("steady_samples_per_s", "steady epoch"),
            ("steady_samples_per_cpu_s", "steady epoch, per CPU s"),
        ):
            if _num(d.get(key)) is not None:
                out.append(_row("training", f"{path}, {label} (samples/s)", d[key]))
    f, v = rows.get("fused", {}), rows.get("naive", {})
    for path in ("fused", "fused bf16"):
        s = _num((rows.get(path) or {}).get("speedup_vs_naive_wall"))
        if s is not None:
            out.append(_row("training", f"{path} speed-up vs naive, steady epoch (wall)", s, ">= 4", s >= 4))
    if _num(f.get("end_to_end_samples_per_s")) and _num(v.get("end_to_end_samples_per_s")):
        s = f["end_to_end_samples_per_s"] / v["end_to_end_samples_per_s"]
        out.append(_row("training", "fused speed-up vs naive, end to end (incl. build + tracing)", s))
    return out


def rows_fuzz(r: dict) -> list[dict]:
    out = [_row("fuzz", f"cases (seed {r.get('seed')})", r.get("cases"))]
    for k, v in (r.get("counts") or {}).items():
        out.append(_row("fuzz", k, v))
    out.append(_row("fuzz", "escaped (not processed, not SeroError)", r.get("n_escaped"), "0", r.get("n_escaped") == 0))
    return out


#: name, script, full arguments, quick arguments, row extraction
BENCHMARKS = [
    ("end_to_end", "bench_end_to_end.py", [], ["--minutes", "3"], rows_end_to_end),
    ("memory", "bench_memory.py", [], ["--minutes", "1", "10", "--no-stages"], rows_memory),
    ("parallel", "bench_parallel.py", [], ["--spikes", "300", "--repeats", "1"], rows_parallel),
    ("cold_start", "bench_cold_start.py", [], ["--repeats", "1"], rows_cold_start),
    ("inference", "bench_inference.py", [], ["--n-spikes", "1024", "--repeats", "2"], rows_inference),
    (
        "synthetic",
        "bench_synthetic.py",
        [],
        ["--n-spikes", "5000", "--n-masks", "200", "--seconds", "0.3"],
        rows_synthetic,
    ),
    (
        "training",
        "bench_training.py",
        [],
        ["--n-spikes", "256", "--epochs", "1", "--rounds", "1", "--kernels", "20-23"],
        rows_training,
    ),
    ("fuzz", "fuzz_abf.py", ["--cases", "5000"], ["--cases", "1000"], rows_fuzz),
]


def run_one(name, script, args, extract, timeout_s: float, tmp: Path) -> tuple[list[dict], dict | None, float]:
    path = HERE / script
    if not path.is_file():
        return [_row(name, "not present", script)], None, 0.0
    out_json = tmp / f"{name}.json"
    cmd = [sys.executable, str(path), *args, "--json", str(out_json)]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"},
        )
    except subprocess.TimeoutExpired:
        return [_row(name, "did not finish", f"timeout after {timeout_s:.0f} s", passed=False)], None, timeout_s
    dt = time.perf_counter() - t0
    if not out_json.is_file():
        err = [ln for ln in (p.stderr or "").strip().splitlines() if ln.strip()]
        return [_row(name, f"failed (exit {p.returncode})", err[-1] if err else "no output", passed=False)], None, dt
    result = json.loads(out_json.read_text())
    try:
        rows = extract(result)
    except Exception as e:  # a changed JSON layout: show the printed lines instead
        rows = []
        result["_extract_error"] = repr(e)
    if not rows:
        lines = [ln for ln in (p.stdout or "").splitlines() if ln.strip()][-8:]
        rows = [_row(name, "output", ln) for ln in lines]
    if p.returncode != 0:  # it wrote its results and reported a problem by its exit status
        rows.append(_row(name, "exit status", p.returncode, "0", False))
    rows.append(_row(name, "benchmark wall time (s)", dt))
    return rows, result, dt


def _fmt(v) -> str:
    if isinstance(v, float):
        if v != v:
            return "nan"
        a = abs(v)
        if a >= 1e5:
            return f"{v:,.0f}"
        if a >= 100:
            return f"{v:.1f}"
        if a >= 1e-3 or v == 0:
            return f"{v:.3f}"
        return f"{v:.2e}"
    return str(v)


def _short(text: str, width: int = 48) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def print_table(rows: list[dict]) -> None:
    cells = [
        (
            r["name"],
            r["metric"],
            _short(_fmt(r["value"])),
            str(r["target"] or ""),
            {True: "pass", False: "FAIL", None: ""}[r["passed"]],
        )
        for r in rows
    ]
    header = ("benchmark", "metric", "value", "target", "result")
    w = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w[i]) for i, h in enumerate(header)))
    print("  ".join("-" * x for x in w))
    prev = None
    for c in cells:
        if prev is not None and c[0] != prev:
            print()
        prev = c[0]
        print("  ".join((c[i].rjust(w[i]) if i == 2 else c[i].ljust(w[i])) for i in range(5)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (about 6 minutes in all)")
    ap.add_argument("--json", default=None, metavar="OUT", help="write every row and raw result as JSON")
    ap.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="NAME",
        help="run only these (" + ", ".join(b[0] for b in BENCHMARKS) + ")",
    )
    ap.add_argument("--timeout", type=float, default=None, help="seconds per benchmark (default 1200, quick 300)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args(argv)
    timeout = args.timeout or (300.0 if args.quick else 1200.0)
    all_rows, raw = [], {}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sero-run-all-") as tmp:
        for name, script, full, quick, extract in BENCHMARKS:
            if args.only and name not in args.only:
                continue
            print(f"running {name} ...", file=sys.stderr, flush=True)
            rows, result, _ = run_one(name, script, quick if args.quick else full, extract, timeout, Path(tmp))
            all_rows += rows
            raw[name] = result
    total = time.perf_counter() - t_all
    print()
    print_table(all_rows)
    n_pass = sum(r["passed"] is True for r in all_rows)
    n_fail = sum(r["passed"] is False for r in all_rows)
    broken = [r for r in all_rows if r["metric"].startswith(("failed", "did not finish"))]
    for r in broken:
        print(f"\n{r['name']} {r['metric']}: {r['value']}")
    print(
        f"\n{n_pass} target(s) met, {n_fail} missed or failed; {total:.0f} s in all"
        + (" (quick sizes)" if args.quick else "")
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"quick": args.quick, "seconds": total, "rows": all_rows, "results": raw}, indent=2, default=str)
        )
    if broken or (args.strict and n_fail):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
