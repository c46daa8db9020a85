"""Training throughput: all members fused in one Keras model vs fitting one member after another.

    python benchmarks/bench_training.py [--n-spikes 512] [--epochs 2] [--rounds 3] [--kernels 20-31] [--bf16]
                                        [--json OUT]

Both paths train the published members (``model.build_member``) with Adam, binary cross-entropy and batch
64 on the same spikes:

* **naive**: the authors' way, for each kernel ``build_member(k)``, ``compile``, ``fit(x, y)`` on numpy
  arrays, one member after the other;
* **fused**: all members as parallel branches of one model (``training.train.build_fused_model``), one
  fit on the ``PyDataset`` stream; end to end this is :func:`spikeinterface_sero.training.train_ensemble`
  itself (building, tracing, the split into standalone members included);
* **fused bf16** (``--bf16``): the fused model under ``precision="mixed_bfloat16"`` (bfloat16 compute,
  float32 weights; AMX / AVX512-BF16 on CPUs that have them).

Two measurements, samples/s through *all* members (a sample counts once however many members it trains):

1. end to end, ``--epochs`` epochs, everything included;
2. steady state, one epoch each with models already built and traced, the paths taking turns over
   ``--rounds`` rounds (best kept), so that a change in machine load hits all paths alike. CPU seconds
   of the process are reported too (on a shared machine wall time depends on the other jobs).
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


def clock():
    return time.perf_counter(), time.process_time()


def since(t):
    w, c = clock()
    return w - t[0], c - t[1]


def naive_end_to_end(X, y, kernels, epochs, batch_size):
    import keras

    from spikeinterface_sero.model import build_member, to_member_input

    x4 = to_member_input(X)
    t = np.eye(2, dtype=np.float32)[y]
    t0 = clock()
    for k in kernels:
        keras.utils.set_random_seed(k)
        m = build_member(k)
        m.compile(optimizer=keras.optimizers.Adam(), loss="binary_crossentropy", metrics=["accuracy"])
        m.fit(x4, t, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)
    return since(t0)


def fused_end_to_end(X, y, kernels, epochs, batch_size):
    from spikeinterface_sero.training import dataset_from_arrays, train_ensemble

    ds = dataset_from_arrays(X, y, [f"c{v}{i % 8}" for i, v in enumerate(y)])
    t0 = clock()
    train_ensemble(
        ds,
        None,
        kernels=kernels,
        epochs=epochs,
        batch_size=batch_size,
        early_stopping="none",
        progress_bar=False,
        seed=0,
        deterministic=False,
    )
    return since(t0)


def steady_state(X, y, kernels, batch_size, rounds, bf16):
    """Best (wall, cpu) seconds of one epoch per path, paths interleaved."""
    import keras

    from spikeinterface_sero.model import build_member, to_member_input
    from spikeinterface_sero.training.synthetic import make_training_stream
    from spikeinterface_sero.training.train import branch_name, build_fused_model, compile_fused

    x4 = to_member_input(X)
    t = np.eye(2, dtype=np.float32)[y]
    names = [branch_name(k) for k in kernels]
    paths = {}
    for label, precision in [("fused", "float32")] + ([("fused bf16", "mixed_bfloat16")] if bf16 else []):
        fused, _ = build_fused_model(kernels, precision=precision)
        compile_fused(fused, kernels)
        stream = make_training_stream(X, y, batch_size=batch_size, seed=0, to_input=to_member_input, output_names=names)
        fused.fit(stream, epochs=1, verbose=0)  # build + trace
        paths[label] = lambda f=fused, s=stream: f.fit(s, epochs=1, verbose=0)
    members = []
    for k in kernels:
        m = build_member(k)
        m.compile(optimizer=keras.optimizers.Adam(), loss="binary_crossentropy", metrics=["accuracy"])
        m.fit(x4[: 2 * batch_size], t[: 2 * batch_size], epochs=1, batch_size=batch_size, verbose=0)
        members.append(m)
    paths["naive"] = lambda: [m.fit(x4, t, epochs=1, batch_size=batch_size, shuffle=True, verbose=0) for m in members]
    best = {p: (np.inf, np.inf) for p in paths}
    for _ in range(rounds):
        for p, fn in paths.items():
            t0 = clock()
            fn()
            w, c = since(t0)
            best[p] = (min(best[p][0], w), min(best[p][1], c))
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-spikes", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3, help="steady-state rounds, paths interleaved (best kept)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--kernels", default="20-31")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--bf16", action="store_true", help="also time fused training in mixed bfloat16")
    ap.add_argument("--json", default=None, metavar="OUT")
    args = ap.parse_args(argv)

    import tensorflow as tf

    from spikeinterface_sero.testing import labelled_synthetic_snippets
    from spikeinterface_sero.training import parse_kernels

    kernels = parse_kernels(args.kernels)
    X, y = labelled_synthetic_snippets(args.n_spikes)  # broad spikes labelled SER, narrow ones NSER
    n, E = args.n_spikes, args.epochs
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    gpus = tf.config.list_physical_devices("GPU")
    print(
        f"{len(kernels)} members (kernels {kernels[0]}-{kernels[-1]}), {n} spikes x {E} epochs, batch "
        f"{args.batch_size}; {os.cpu_count()} CPUs, {'GPU' if gpus else 'no GPU'}, load average {load}"
    )

    rows = {"fused": {}, "naive": {}}
    print("end to end ...", flush=True)
    rows["fused"]["end_to_end"] = fused_end_to_end(X, y, kernels, E, args.batch_size)
    rows["naive"]["end_to_end"] = naive_end_to_end(X, y, kernels, E, args.batch_size)
    print("steady state ...", flush=True)
    for p, v in steady_state(X, y, kernels, args.batch_size, args.rounds, args.bf16).items():
        rows.setdefault(p, {})["steady_epoch"] = v

    print(
        f"\n{'path':<12}{'end-to-end wall s':>18}{'cpu s':>8}{'samples/s':>11}"
        f"{'epoch wall s':>14}{'cpu s':>8}{'samples/s':>11}{'per cpu s':>11}"
    )
    for p, r in rows.items():
        e2e = r.get("end_to_end")
        st = r["steady_epoch"]
        r["end_to_end_samples_per_s"] = n * E / e2e[0] if e2e else None
        r["steady_samples_per_s"] = n / st[0]
        r["steady_samples_per_cpu_s"] = n / st[1]
        e2e_txt = f"{e2e[0]:>18.1f}{e2e[1]:>8.1f}{n * E / e2e[0]:>11.0f}" if e2e else f"{'-':>18}{'-':>8}{'-':>11}"
        print(f"{p:<12}{e2e_txt}{st[0]:>14.2f}{st[1]:>8.2f}{n / st[0]:>11.0f}{n / st[1]:>11.0f}")
    f, v = rows["fused"], rows["naive"]
    print(
        f"\nfused vs naive: end to end x{v['end_to_end'][0] / f['end_to_end'][0]:.2f} (wall), steady state "
        f"x{v['steady_epoch'][0] / f['steady_epoch'][0]:.2f} (wall), x{v['steady_epoch'][1] / f['steady_epoch'][1]:.2f} (cpu)"
    )
    if "fused bf16" in rows:
        b = rows["fused bf16"]
        print(
            f"fused bf16 vs naive: steady state x{v['steady_epoch'][0] / b['steady_epoch'][0]:.2f} (wall), "
            f"x{v['steady_epoch'][1] / b['steady_epoch'][1]:.2f} (cpu)"
        )
    out = {
        "n_spikes": n,
        "epochs": E,
        "kernels": kernels,
        "batch_size": args.batch_size,
        "rows": rows,
        "load_average": load,
        "gpu": bool(gpus),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "tensorflow": tf.__version__,
    }
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
