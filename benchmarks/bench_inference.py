"""Fused ensemble inference (numpy engine, the default; TensorFlow engine) vs the naive loop of
``model.predict`` per member, on the same spikes.

    python benchmarks/bench_inference.py [--n-spikes 4096] [--model FOLDER] [--json OUT]

The naive path is what the authors' notebooks do: for each member, ``member.predict`` on the full
(n, 160, 2, 1) input (default Keras batch size 32), then the mean. It is also timed with one large batch
(``--naive-batch-size``), which is the fairest naive baseline. The fused paths are
``Ensemble.predict_members``: ``engine="numpy"`` (the default: float32 numpy, members split over the CPUs,
time column precomputed, conv2 through an exact DFT) on all CPUs and on one thread (what a ``--n-jobs``
worker gets), and ``engine="tensorflow"`` (one compiled call for all members, time column precomputed).
Without ``--model`` the members have seeded random weights (the speed does not depend on the weights).
Goal of the numpy engine: >= 5,000 spikes/s for 12 members on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def spikes(n: int, seed: int = 0) -> np.ndarray:
    """n action-current snippets (pA) cut from the project's simulated DRN recordings of all three cell
    types, repeated up to n."""
    from spikeinterface_sero.snippets import recording_to_snippets
    from spikeinterface_sero.testing import simulate_drn_recording

    parts = [
        recording_to_snippets(simulate_drn_recording(t, duration_s=30.0, seed=seed + i).to_recording()).waveforms
        for i, t in enumerate(("serotonergic", "atypical_serotonergic", "non_serotonergic"))
    ]
    x = np.concatenate(parts)
    return np.resize(x, (n, x.shape[1])).astype(np.float32)


def interleaved_best(fns: dict, repeats: int) -> dict:
    """Best time of each function over ``repeats`` rounds, the paths taking turns within each round, so a
    change in machine load affects all of them alike."""
    best = {name: float("inf") for name in fns}
    outs = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            outs[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: (best[name], outs[name]) for name in fns}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-spikes", type=int, default=4096)
    ap.add_argument("--model", default=None, help="model folder (default: 12 random members, kernels 20-31)")
    ap.add_argument(
        "--batch-size",
        type=int,
        default=512,
        help="fused: spikes per call (the library default; numpy uses <= 128 per pass)",
    )
    ap.add_argument("--naive-batch-size", type=int, default=4096, help="second naive run: batch size of predict")
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds, the paths taking turns (best is reported)")
    ap.add_argument("--json", default=None, metavar="OUT", help="also write the results as JSON")
    args = ap.parse_args(argv)

    import tensorflow as tf

    from spikeinterface_sero import model as M

    if args.model:
        ens = M.load_model(args.model)  # numpy engine, weights read with h5py
        tf_ens = M.load_model(args.model, engine="tensorflow")  # members loaded by Keras
    else:
        ens = M.random_ensemble(seed=0)
        tf_ens = ens.with_engine("tensorflow")
    assert ens.engine == "numpy" and tf_ens.engine == "tensorflow"
    x = spikes(args.n_spikes)
    # warm up every path (tracing / compilation / precomputation is not what we measure)
    ens.predict_members(x[:64], batch_size=args.batch_size)
    tf_ens.predict_members(x[:64], batch_size=args.batch_size)
    M.predict_members_naive(tf_ens, x[:64])
    M.predict_members_naive(tf_ens, x[:64], batch_size=args.naive_batch_size)
    one = ens.with_engine("numpy")
    one.threads = 1

    big = f"naive predict, batch {args.naive_batch_size}" + (" (again)" if args.naive_batch_size == 32 else "")
    np_name = f"fused numpy, batch {args.batch_size}"
    tf_name = f"fused TensorFlow, batch {args.batch_size}"
    one_name = "fused numpy, 1 thread"
    timed = interleaved_best(
        {
            "naive predict, batch 32": lambda: M.predict_members_naive(tf_ens, x, batch_size=32),
            big: lambda: M.predict_members_naive(tf_ens, x, batch_size=args.naive_batch_size),
            tf_name: lambda: tf_ens.predict_members(x, batch_size=args.batch_size),
            np_name: lambda: ens.predict_members(x, batch_size=args.batch_size),
            one_name: lambda: one.predict_members(x, batch_size=args.batch_size),
        },
        args.repeats,
    )
    t_naive, naive = timed["naive predict, batch 32"]
    t_naive_big = timed[big][0]
    t_tf, tf_fused = timed[tf_name]
    t_np, np_fused = timed[np_name]
    t_one = timed[one_name][0]
    n = args.n_spikes
    rows = [
        {
            "path": name,
            "seconds": t,
            "spikes_per_s": n / t,
            "speedup_vs_naive32": t_naive / t,
            "max_abs_diff_vs_naive32": float(np.abs(out - naive).max()),
        }
        for name, (t, out) in timed.items()
    ]

    cons_diff = float(np.abs(np_fused.mean(axis=1) - naive.mean(axis=1)).max())
    np_vs_tf = float(np.abs(np_fused - tf_fused).max())
    from spikeinterface_sero.model.numpy_engine import default_threads

    print(
        f"{len(ens)} members, kernels {ens.kernels[0]}-{ens.kernels[-1]}, {n} spikes, "
        f"TensorFlow {tf.__version__}, numpy {np.__version__}, {os.cpu_count()} CPU cores "
        f"(numpy engine: {default_threads()} threads), load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'path':<30}{'seconds':>9}{'spikes/s':>11}{'speedup':>9}{'max |diff|':>12}")
    for r in rows:
        print(
            f"{r['path']:<30}{r['seconds']:>9.3f}{r['spikes_per_s']:>11.0f}{r['speedup_vs_naive32']:>8.1f}x"
            f"{r['max_abs_diff_vs_naive32']:>12.2e}"
        )
    print(
        f"numpy vs TensorFlow fused: {t_tf / t_np:.2f}x the speed, max |diff| {np_vs_tf:.2e}; numpy "
        f"{n / t_np:,.0f} spikes/s (goal >= 5,000: {'met' if n / t_np >= 5000 else 'NOT met'}); "
        f"vs naive (large batch) {t_naive_big / t_np:.1f}x; consensus max |diff| vs naive {cons_diff:.2e}"
    )
    result = {
        "n_spikes": n,
        "n_members": len(ens),
        "kernels": list(ens.kernels),
        "model": args.model or "random (seed 0)",
        "fused_spikes_per_s": n / t_np,  # the library's default path (numpy engine)
        "numpy_spikes_per_s": n / t_np,
        "numpy_1thread_spikes_per_s": n / t_one,
        "tf_fused_spikes_per_s": n / t_tf,
        "numpy_vs_tf_fused_speed": t_tf / t_np,
        "numpy_goal_spikes_per_s": 5000,
        "numpy_goal_met": n / t_np >= 5000,
        "max_abs_diff_numpy_vs_tf_fused": np_vs_tf,
        "naive_spikes_per_s": n / t_naive,
        "naive_large_batch_spikes_per_s": n / t_naive_big,
        "speedup_vs_naive": t_naive / t_np,
        "speedup_vs_naive_large_batch": t_naive_big / t_np,
        "tf_fused_speedup_vs_naive": t_naive / t_tf,
        "max_abs_diff": float(np.abs(np_fused - naive).max()),
        "consensus_max_abs_diff": cons_diff,
        "rows": rows,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "numpy_threads": default_threads(),
        "load_average": os.getloadavg()[0],
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
