"""Training throughput: the fused ensemble vs fitting one member after another, with the roofline beside it.

    python benchmarks/bench_training.py [--n-spikes 1024] [--epochs 2] [--rounds 2] [--kernels 20-31]
                                        [--json OUT]

Every path trains the published members (``model.build_member``) with Adam, binary cross-entropy and batch
64 on the same spikes:

* **naive**: the authors' way, for each kernel ``build_member(k)``, ``compile``, ``fit(x, y)`` on numpy
  arrays, one member after the other;
* **keras branches**: every member as a parallel branch of one Keras functional model (what 0.1.0 did);
* **fused**: :func:`spikeinterface_sero.training.fused.build_fused_members`, what ``train_ensemble`` uses:
  all members in one layer, the time column's path computed once per step, in float32;
* **fused bf16**: the same with bfloat16 convolutions (``precision="mixed_bfloat16"``; AMX / AVX512-BF16).

Samples/s count a sample once however many members it trains. Alongside: the GFLOP/s that rate means
(the published members' forward + backward work, both columns, about 3x the forward FLOPs), the same-run
float32 and bfloat16 matmul rate (the machine's roofline proxy), and what the paper's synthetic schedule
(12.7 M samples through 12 members) would take. End to end = ``--epochs`` epochs including building and
tracing (``train_ensemble`` itself for the fused path); steady = one epoch with the models built and traced,
the paths taking turns over ``--rounds`` rounds (best kept), with process CPU seconds beside the wall time.
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


def member_flops(kernel: int) -> float:
    """Forward FLOPs of one published member on one sample (both columns, as Keras computes them)."""
    length1 = 160 - kernel + 1
    pooled1 = length1 // 2
    length2 = pooled1 - kernel + 1
    pooled2 = length2 // 2
    conv = 2 * 2 * (length1 * kernel * 32 + length2 * kernel * 32 * 64)  # 2 columns, multiply + add
    return float(conv + 2 * pooled2 * 64 * 2)


def matmul_gflops(dtype: str, size: int = 1024, repeats: int = 20) -> float:
    import tensorflow as tf

    a = tf.random.normal((size, size), dtype=tf.float32)
    a = tf.cast(a, dtype)
    (a @ a).numpy()
    t0 = time.perf_counter()
    for _ in range(repeats):
        c = a @ a
    c.numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - t0) / 1e9


def keras_branches_model(kernels):
    """0.1.0's fused model: every build_member as a branch of one functional model."""
    import keras

    from spikeinterface_sero.model import MEMBER_INPUT_SHAPE, build_member
    from spikeinterface_sero.training.train import branch_name

    snippet = keras.Input(shape=MEMBER_INPUT_SHAPE)
    return keras.Model(snippet, {branch_name(k): build_member(k)(snippet) for k in kernels})


def steady_state(X, y, kernels, batch_size, rounds):
    """Best (wall, cpu) seconds of one epoch per path, paths interleaved."""
    import keras

    from spikeinterface_sero.model import build_member, to_member_input
    from spikeinterface_sero.training.synthetic import make_training_stream
    from spikeinterface_sero.training.train import branch_name, build_fused_model, compile_fused

    x4 = to_member_input(X)
    t = np.eye(2, dtype=np.float32)[y]
    names = [branch_name(k) for k in kernels]
    builders = {
        "keras branches": lambda: keras_branches_model(kernels),
        "fused": lambda: build_fused_model(kernels)[0],
        "fused bf16": lambda: build_fused_model(kernels, precision="mixed_bfloat16")[0],
    }
    paths = {}
    for label, build in builders.items():
        fused = build()
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
    ap.add_argument("--n-spikes", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=2, help="steady-state rounds, paths interleaved (best kept)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--kernels", default="20-31")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--json", default=None, metavar="OUT")
    args = ap.parse_args(argv)

    import tensorflow as tf

    from spikeinterface_sero.testing import labelled_synthetic_snippets
    from spikeinterface_sero.training import parse_kernels
    from spikeinterface_sero.training.fused import native_bfloat16_cpu, resolve_precision

    kernels = parse_kernels(args.kernels)
    X, y = labelled_synthetic_snippets(args.n_spikes)  # broad spikes labelled SER, narrow ones NSER
    n, E = args.n_spikes, args.epochs
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    gpus = tf.config.list_physical_devices("GPU")
    print(
        f"{len(kernels)} members (kernels {kernels[0]}-{kernels[-1]}), {n} spikes x {E} epochs, batch "
        f"{args.batch_size}; {os.cpu_count()} CPUs, {'GPU' if gpus else 'no GPU'}, load average {load}"
    )
    print(
        f"native bfloat16 on this CPU (AVX512-BF16 / AMX): {native_bfloat16_cpu()}; "
        f"precision='auto' trains with {resolve_precision('auto')}"
    )
    training_flops = 3.0 * sum(member_flops(k) for k in kernels)  # per sample through every member
    proxy = {"float32": matmul_gflops("float32"), "bfloat16": matmul_gflops("bfloat16")}

    rows = {"fused": {}, "naive": {}}
    print("end to end ...", flush=True)
    rows["fused"]["end_to_end"] = fused_end_to_end(X, y, kernels, E, args.batch_size)
    rows["naive"]["end_to_end"] = naive_end_to_end(X, y, kernels, E, args.batch_size)
    print("steady state ...", flush=True)
    for p, v in steady_state(X, y, kernels, args.batch_size, args.rounds).items():
        rows.setdefault(p, {})["steady_epoch"] = v
    proxy_after = {"float32": matmul_gflops("float32"), "bfloat16": matmul_gflops("bfloat16")}
    proxy = {k: max(proxy[k], proxy_after[k]) for k in proxy}

    print(
        f"\n{'path':<16}{'end-to-end s':>13}{'epoch wall s':>14}{'cpu s':>8}{'samples/s':>11}{'per cpu-s':>11}"
        f"{'GFLOP/s':>9}{'x naive (wall)':>16}{'x naive (cpu)':>15}{'paper scale h':>15}"
    )
    naive = rows["naive"]["steady_epoch"]
    for p, r in rows.items():
        e2e = r.get("end_to_end")
        wall, cpu = r["steady_epoch"]
        r["end_to_end_samples_per_s"] = n * E / e2e[0] if e2e else None
        r["steady_samples_per_s"] = n / wall
        r["steady_samples_per_cpu_s"] = n / cpu
        r["gflop_per_s"] = n / wall * training_flops / 1e9
        r["speedup_vs_naive_wall"] = naive[0] / wall
        r["speedup_vs_naive_cpu"] = naive[1] / cpu
        r["paper_scale_hours"] = 12.7e6 / (n / wall) / 3600
        e2e_txt = f"{e2e[0]:>13.1f}" if e2e else f"{'-':>13}"
        print(
            f"{p:<16}{e2e_txt}{wall:>14.2f}{cpu:>8.2f}{n / wall:>11.0f}{n / cpu:>11.0f}{r['gflop_per_s']:>9.1f}"
            f"{r['speedup_vs_naive_wall']:>16.2f}{r['speedup_vs_naive_cpu']:>15.2f}{r['paper_scale_hours']:>15.1f}"
        )
    print(
        f"\nroofline proxy (same run, 1024x1024 matmul): float32 {proxy['float32']:.0f} GFLOP/s, bfloat16 "
        f"{proxy['bfloat16']:.0f} GFLOP/s; training work {training_flops / 1e6:.0f} MFLOP per sample through all "
        f"members, so the float32 roofline is about {proxy['float32'] * 1e9 / training_flops:.0f} samples/s"
    )
    out = {
        "n_spikes": n,
        "epochs": E,
        "kernels": kernels,
        "batch_size": args.batch_size,
        "rows": rows,
        "training_mflop_per_sample": training_flops / 1e6,
        "matmul_gflop_per_s": proxy,
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
