"""Throughput of the streamed synthetic-data generator (smoothed spike + noise mask), in snippets/s.

    python benchmarks/bench_synthetic.py [--n-spikes 20000] [--n-masks 600] [--seconds 1.5] [--json OUT]

Measures, on ``--n-spikes`` random training spikes and ``--n-masks`` masks:

* ``sample(n)`` into a preallocated array, for batch sizes 64 ... 65536 (the vectorised core: two
  gathers and an add);
* ``batch(epoch, index, n)``: the same plus a fresh seeded generator per batch (what training uses, so
  each batch is a pure function of seed, epoch and index);
* the Keras ``PyDataset`` stream's ``__getitem__`` (all synthetic, one-hot targets for 12 outputs and the
  (n, 160, 2, 1) member input built by ``model.to_member_input``) at batch 64 and 1024.

Target: >= 1 million snippets/s for the generator. Training itself runs at a few hundred samples/s on
2 CPU cores (benchmarks/bench_training.py), so the stream is never the bottleneck.
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


def rate(fn, n_per_call: int, seconds: float) -> float:
    """Snippets per second of ``fn`` (best of 3 rounds of ``seconds / 3``)."""
    fn()  # warm-up
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        k = 0
        while True:
            fn()
            k += 1
            dt = time.perf_counter() - t0
            if dt > seconds / 3:
                break
        best = max(best, k * n_per_call / dt)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-spikes", type=int, default=20_000)
    ap.add_argument("--n-masks", type=int, default=600)
    ap.add_argument("--seconds", type=float, default=1.5, help="time per measurement")
    ap.add_argument("--json", default=None, metavar="OUT")
    args = ap.parse_args(argv)

    from spikeinterface_sero.model import to_member_input
    from spikeinterface_sero.training.synthetic import SyntheticGenerator, make_training_stream, smooth3

    rng = np.random.default_rng(0)
    X = rng.normal(0, 50, (args.n_spikes, 160)).astype(np.float32)
    y = rng.integers(0, 2, args.n_spikes)
    masks = rng.normal(0, 5, (args.n_masks, 160)).astype(np.float32)
    t0 = time.perf_counter()
    S = smooth3(X)
    smooth_rate = args.n_spikes / (time.perf_counter() - t0)
    gen = SyntheticGenerator(S, y, masks, seed=0)

    results = {
        "n_spikes": args.n_spikes,
        "n_masks": args.n_masks,
        "smooth3_snippets_per_s": smooth_rate,
        "sample": {},
        "batch": {},
        "stream": {},
    }
    print(f"{'what':<44}{'batch':>8}{'snippets/s':>16}")
    for n in (64, 256, 1024, 8192, 65536):
        out = np.empty((n, 160), np.float32)
        r = np.random.default_rng(1)
        v = rate(lambda n=n, out=out, r=r: gen.sample(n, r, out=out), n, args.seconds)
        results["sample"][n] = v
        print(f"{'generator.sample (preallocated output)':<44}{n:>8}{v:>16,.0f}")
    for n in (64, 1024, 8192):
        counter = iter(range(10**12))
        v = rate(lambda n=n, c=counter: gen.batch(0, next(c), n), n, args.seconds)
        results["batch"][n] = v
        print(f"{'generator.batch (seeded per batch)':<44}{n:>8}{v:>16,.0f}")
    names = [f"k{k}" for k in range(20, 32)]
    for n in (64, 1024):
        stream = make_training_stream(
            X[:0],
            y[:0],
            generator=gen,
            n_synthetic=n * 1000,
            batch_size=n,
            seed=0,
            to_input=to_member_input,
            output_names=names,
        )
        counter = iter(range(10**12))
        v = rate(lambda stream=stream, c=counter: stream[next(c) % len(stream)], n, args.seconds)
        results["stream"][n] = v
        print(f"{'PyDataset __getitem__ (+ member input)':<44}{n:>8}{v:>16,.0f}")
    best = max(results["sample"].values())
    at64 = results["batch"][64]
    print(f"\nsmooth3: {smooth_rate:,.0f} snippets/s (once per training set)")
    print(
        f"generator peak {best:,.0f} snippets/s; at the training batch size 64: {at64:,.0f} snippets/s "
        f"(target >= 1,000,000: {'met' if best >= 1e6 else 'NOT met'})"
    )
    results["platform"] = {"python": sys.version.split()[0], "machine": platform.machine(), "cpus": os.cpu_count()}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
