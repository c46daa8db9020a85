"""Peak memory of the classify path for a short and a long recording (each in a fresh process).

    python benchmarks/bench_memory.py [--minutes 1 60] [--noise-minutes 1 30] [--channels 1 4 16]
                                      [--model FOLDER] [--json OUT]

Each recording (synthetic 40 kHz int16 ABF, see ``bench_end_to_end.py``; the 60-minute file is 288 MB)
is classified by ``pipeline.classify_file`` in its own subprocess, after TensorFlow is imported and the
model loaded (those cost the same for every file). Reported per run:

* ``peak_rss``: the process's peak resident set, the number the target uses. It is read as ``VmHWM``
  from ``/proc/self/status``, not ``resource.getrusage().ru_maxrss``: Linux carries ``ru_maxrss`` over
  fork + exec, so a child of a process that once held 3 GB reports >= 3 GB (measured);
* ``peak_anon`` / ``peak_file``: peaks of RssAnon (heap: arrays we allocate) and RssFile (file-backed
  pages, e.g. Neo's memory map of the .abf) sampled every 10 ms from ``/proc/self/status``, to tell
  where a growth comes from;
* the peak after each stage (read, detect, waveforms, classify) from a second, stage-by-stage pass.

Target: the 60-minute run needs less than 100 MB more than the 1-minute run (the file is read and
detected in chunks, never whole).

Many crossings (issue #14): pure 5 pA noise files (1 and 30 minutes) classified with ``threshold=-8`` pA,
hundreds of "spikes" a second (about 700,000 in 30 minutes), each in a subprocess whose address space is
capped at 5 GB (``resource.setrlimit(RLIMIT_AS)``; the default numpy engine, no TensorFlow). Every
crossing is counted (the firing rate is exact) but a cell keeps the waveforms of at most
``MAX_WAVEFORMS_PER_CELL`` spikes, so the peak should be flat: target, the 30-minute noisy file needs less
than 100 MB more than the 1-minute one, and no MemoryError. (Before the cap, 10 minutes of such noise,
275,000 crossings, peaked at 1.94 GB and 30 minutes failed under 5 GB.)

Many channels (issue #25): an int16 ABF 2 file of ``n`` current channels (each a cell, 30 s, 600 spikes)
classified in a subprocess per ``n`` (``--channels 1 4 16``), the peak after building the analyzer and after
classifying. Each unit's waveforms keep its own channel (a SpikeInterface ChannelSparsity), so the peak grows
linearly with the channels; target: the analyzer stage's growth per added channel in the last step at most 1.5
times that in the first (the whole run's peak also holds the inference's working memory, a ceiling reached at a
few thousand spikes that hides the growth at one channel). Measured (2 shared CPUs, ``--channels 1 4 16
64``): own channel, analyzer stage 180 / 199 / 271 / 522 MB (6.4, 6.0, 5.2 MB per added channel), whole run
228 / 233 / 271 / 522 MB; the dense waveforms before, 179 / 198 / 398 MB for 1 / 4 / 16 channels (6.3 then
16.7 MB per channel, growing with the square: 64 such channels peaked at 3.3 GB).

What was measured (Neo 0.14.6, SpikeInterface 0.105.3, 2 CPUs): file-mapped RSS does not grow with the
recording. AxonRawIO maps each requested chunk on its own (``neo.rawio.utils.
get_memmap_chunk_from_opened_file``) and the map is released with the chunk, so no page of the 288 MB file
stays resident; SpikeInterface's ``compute("waveforms")`` reads 1 s chunks as well (read + detect +
waveforms: +25 MB for 60 vs 1 min, the snippets and spike vectors). The growth is in the inference stage
and does not scale with the length: it is a ceiling reached at a few thousand spikes, TensorFlow's
working memory for one ``Ensemble.predict_members`` batch (4096 spikes x 12 members: ~370 MB) plus the
bootstrap of ``model.cell_decisions`` (4M resampled indices per chunk: ~95 MB). ``--predict-batch 512``
shows the first part's share (and 512 is not slower on 2 CPUs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
TARGET_MB = 100.0
NOISE_SD_PA = 5.0
NOISE_THRESHOLD_PA = -8.0  # 1.6 noise SDs: a crossing every few ms
ADDRESS_SPACE_CAP_GB = 5.0


def _status_kb() -> dict:
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


class _Sampler(threading.Thread):
    """Peaks of VmRSS / RssAnon / RssFile, sampled every ``dt`` seconds; ``mark(name)`` closes a stage (its
    peaks are kept under that name) and starts the next."""

    def __init__(self, dt: float = 0.01):
        super().__init__(daemon=True)
        self.dt, self.peak, self.stage_peaks, self._stop_evt = dt, {}, {}, threading.Event()
        self._lock = threading.Lock()
        self._stage = {}

    def _sample(self):
        with self._lock:
            for k, v in _status_kb().items():
                self.peak[k] = max(self.peak.get(k, 0), v)
                self._stage[k] = max(self._stage.get(k, 0), v)

    def run(self):
        while not self._stop_evt.is_set():
            self._sample()
            time.sleep(self.dt)

    def mark(self, name: str) -> None:
        self._sample()
        with self._lock:
            self.stage_peaks[name] = {k: v / 1024.0 for k, v in self._stage.items()}
            self._stage = {}

    def stop(self) -> dict:
        self._stop_evt.set()
        self.join()
        self._sample()
        return {k: v / 1024.0 for k, v in self.peak.items()}


def _maxrss_mb() -> float:
    """Peak resident set of this process in MB: ``VmHWM`` (the peak of this address space) where
    /proc exists, else ``ru_maxrss``. Linux keeps ``ru_maxrss`` across fork + exec, so a child started by a
    process that once used 5 GB reports at least 5 GB there; VmHWM starts afresh at exec."""
    hwm = _status_kb().get("VmHWM")
    if hwm:
        return hwm / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def child(path: str, model: str, stages: bool, predict_batch: int | None = None) -> dict:
    """Runs in the fresh subprocess: set-up (imports, model), then the classify path on ``path``."""
    import warnings

    warnings.filterwarnings("ignore")
    import tensorflow  # noqa: F401

    from spikeinterface_sero import model as M
    from spikeinterface_sero.pipeline import classify_file

    if predict_batch:  # diagnostic: the same path with another inference batch size
        import functools

        orig = M.Ensemble.predict_members

        @functools.wraps(orig)
        def predict_members(self, snippets, batch_size=predict_batch):
            return orig(self, snippets, batch_size=min(batch_size, predict_batch))

        M.Ensemble.predict_members = predict_members

    M.load_model(model)
    base = {"rss_after_setup_mb": _status_kb().get("VmRSS", 0) / 1024.0, "maxrss_after_setup_mb": _maxrss_mb()}
    out = dict(base)
    sampler = _Sampler()
    sampler.start()
    t0 = time.perf_counter()
    if not stages:
        rows = classify_file(path, model_folder=model)
        if rows["error"].iloc[0]:
            raise RuntimeError(rows["error"].iloc[0])
        out["n_spikes"] = int(rows["n_spikes"].sum())
    else:
        from spikeinterface_sero.io import read_abf
        from spikeinterface_sero.snippets import create_analyzer, recording_to_snippets, snippets_to_sorting

        rec = read_abf(path)
        sampler.mark("read")
        sn = recording_to_snippets(rec)
        sampler.mark("detect")
        an = create_analyzer(snippets_to_sorting(sn, rec), rec)
        sampler.mark("waveforms")
        an.compute("serotonergic", model_folder=model)
        sampler.mark("classify")
        out["n_spikes"] = len(sn)
    out["seconds"] = time.perf_counter() - t0
    peaks = sampler.stop()
    out["peak_rss_mb"] = _maxrss_mb()
    out["peak_anon_mb"] = peaks.get("RssAnon", float("nan"))
    out["peak_file_mb"] = peaks.get("RssFile", float("nan"))
    out["peak_rss_sampled_mb"] = peaks.get("VmRSS", float("nan"))
    out["stage_peaks_mb"] = sampler.stage_peaks
    return out


def noise_child(path: str, model: str, cap_gb: float) -> dict:
    """Runs in the fresh subprocess: the address space capped, then ``classify_file`` on a noise file."""
    import warnings

    if cap_gb > 0:
        limit = int(cap_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    warnings.filterwarnings("ignore")
    from spikeinterface_sero.constants import MAX_WAVEFORMS_PER_CELL
    from spikeinterface_sero.pipeline import classify_file

    out = {"rss_after_setup_mb": _status_kb().get("VmRSS", 0) / 1024.0}
    sampler = _Sampler()
    sampler.start()
    t0 = time.perf_counter()
    rows = classify_file(path, model_folder=model, threshold=NOISE_THRESHOLD_PA)
    out["seconds"] = time.perf_counter() - t0
    peaks = sampler.stop()
    out["error"] = str(rows["error"].iloc[0])
    out["n_spikes"] = int(rows["n_spikes"].sum())  # classified: at most MAX_WAVEFORMS_PER_CELL
    out["firing_rate_hz"] = float(rows["firing_rate_hz"].iloc[0]) if not out["error"] else float("nan")
    out["sero_quality"] = str(rows["sero_quality"].iloc[0]) if "sero_quality" in rows else ""
    out["max_waveforms_per_cell"] = MAX_WAVEFORMS_PER_CELL
    out["peak_rss_mb"] = _maxrss_mb()
    out["peak_anon_mb"] = peaks.get("RssAnon", float("nan"))
    return out


def make_noise_abf(minutes: float, workdir, seed: int = 0) -> Path:
    """Write (once; cached) ``minutes`` of white noise (5 pA SD, no spikes) as an int16 ABF 2 file."""
    import numpy as np

    from spikeinterface_sero.constants import SAMPLING_FREQUENCY
    from spikeinterface_sero.datasets import write_abf

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"noise_{NOISE_SD_PA:g}pA_{minutes:g}min_s{seed}.abf"
    if not path.is_file():
        x = np.random.default_rng(seed).normal(0.0, NOISE_SD_PA, int(minutes * 60 * SAMPLING_FREQUENCY))
        tmp = path.with_suffix(".tmp.abf")
        write_abf(tmp, x.astype(np.float32), SAMPLING_FREQUENCY, units="pA", data_format="int16")
        del x
        os.replace(tmp, path)
    return path


CHANNEL_SECONDS = 30.0
CHANNEL_RATE_HZ = 20.0  # 600 spikes per channel


def make_channels_abf(n_channels: int, workdir) -> Path:
    """Write (once; cached) ``n_channels`` current channels of 30 s, each a cell firing at 20 Hz, int16 ABF 2."""
    import numpy as np

    from spikeinterface_sero.constants import SAMPLING_FREQUENCY
    from spikeinterface_sero.datasets import write_abf
    from spikeinterface_sero.testing import synthetic_trace

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"channels_{n_channels}x{CHANNEL_SECONDS:g}s.abf"
    if not path.is_file():
        times = np.arange(0.5 / CHANNEL_RATE_HZ, CHANNEL_SECONDS - 0.01, 1.0 / CHANNEL_RATE_HZ)
        columns = [synthetic_trace(duration_s=CHANNEL_SECONDS, spike_times_s=times, seed=c) for c in range(n_channels)]
        tmp = path.with_suffix(".tmp.abf")
        write_abf(tmp, np.stack(columns, axis=1), SAMPLING_FREQUENCY, units="pA", data_format="int16")
        os.replace(tmp, path)
    return path


def channels_child(path: str, model: str) -> dict:
    """Runs in the fresh subprocess: the analyzer, then the classification, each stage's peak RSS."""
    import warnings

    warnings.filterwarnings("ignore")
    from spikeinterface_sero import abf_to_analyzer

    out = {"rss_after_setup_mb": _status_kb().get("VmRSS", 0) / 1024.0}
    t0 = time.perf_counter()
    analyzer = abf_to_analyzer(path)
    out["peak_analyzer_mb"] = _maxrss_mb()
    out["waveforms_shape"] = list(analyzer.get_extension("waveforms").get_data().shape)
    units = analyzer.compute("serotonergic", model_folder=model).get_data()
    out["peak_rss_mb"] = _maxrss_mb()
    out["n_spikes"] = int(units["n_spikes"].sum())
    out["seconds"] = time.perf_counter() - t0
    return out


def run_channels(channels=(1, 4, 16), workdir=None, model=None) -> dict:
    sys.path.insert(0, str(HERE))
    import bench_end_to_end as E

    workdir = workdir or E.DEFAULT_WORKDIR
    folder, kind = E.model_folder(workdir, model)
    runs = []
    for n in channels:
        path = make_channels_abf(int(n), workdir)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--channels-child", str(path), "--model", str(folder)]
        p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        if p.returncode:
            raise RuntimeError(f"channels child failed ({p.returncode}):\n{p.stderr[-3000:]}")
        r = json.loads(p.stdout.strip().splitlines()[-1])
        r.update(channels=int(n))
        runs.append(r)

    def slopes(key):
        return [(b[key] - a[key]) / (b["channels"] - a["channels"]) for a, b in zip(runs, runs[1:])]

    # the analyzer stage is what grows with the channels; the whole run's peak also holds the inference's
    # working memory, a ceiling reached at a few thousand spikes that hides the growth at one channel
    analyzer = slopes("peak_analyzer_mb")
    passed = len(analyzer) < 2 or analyzer[-1] <= 1.5 * max(analyzer[0], 1.0)
    return {
        "model": kind,
        "runs": runs,
        "analyzer_mb_per_channel": analyzer,
        "mb_per_channel": slopes("peak_rss_mb"),
        "passed": passed,
    }


def measure_noise(path: Path, model: Path, cap_gb: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--noise-child", str(path), "--model", str(model)]
    cmd += ["--address-space-gb", str(cap_gb)]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if p.returncode:
        tail = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"exit {p.returncode}: {tail[0]}", "peak_rss_mb": float("nan")}
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_noise(minutes=(1.0, 30.0), workdir=None, model=None, cap_gb: float = ADDRESS_SPACE_CAP_GB) -> dict:
    sys.path.insert(0, str(HERE))
    import bench_end_to_end as E

    workdir = workdir or E.DEFAULT_WORKDIR
    folder, kind = E.model_folder(workdir, model)
    runs = []
    for m in minutes:
        r = measure_noise(make_noise_abf(m, workdir), folder, cap_gb)
        r.update(minutes=m)
        runs.append(r)
    ok = all(not r.get("error") for r in runs)
    diff = runs[-1]["peak_rss_mb"] - runs[0]["peak_rss_mb"] if ok else float("nan")
    return {"model": kind, "address_space_gb": cap_gb, "runs": runs, "diff_mb": diff, "passed": ok and diff < TARGET_MB}


def measure(path: Path, model: Path, stages: bool = False, predict_batch: int | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(path), "--model", str(model)]
    if stages:
        cmd.append("--stages")
    if predict_batch:
        cmd += ["--predict-batch", str(predict_batch)]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if p.returncode:
        raise RuntimeError(f"memory child failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def run(minutes=(1.0, 60.0), workdir=None, model=None, stages: bool = True, predict_batch: int | None = None) -> dict:
    sys.path.insert(0, str(HERE))
    import bench_end_to_end as E

    workdir = workdir or E.DEFAULT_WORKDIR
    folder, kind = E.model_folder(workdir, model)  # a snapshot of the demo model, or random members
    runs = []
    for m in minutes:
        path, n_true = E.make_abf(m, workdir)
        r = measure(path, folder, predict_batch=predict_batch)
        r.update(minutes=m, file_mb=path.stat().st_size / 1e6, n_spikes_true=n_true)
        if stages:
            r["stages"] = measure(path, folder, stages=True, predict_batch=predict_batch)["stage_peaks_mb"]
        runs.append(r)
    short, long_ = runs[0], runs[-1]
    diff = long_["peak_rss_mb"] - short["peak_rss_mb"]
    out = {
        "benchmark": "memory",
        "model": kind,
        "predict_batch": predict_batch,
        "runs": runs,
        "diff_mb": diff,
        "target_mb": TARGET_MB,
        "passed": diff < TARGET_MB,
        "diff_anon_mb": long_["peak_anon_mb"] - short["peak_anon_mb"],
        "diff_file_mb": long_["peak_file_mb"] - short["peak_file_mb"],
    }
    if stages:

        def before(x):  # peak of the stages before inference (read, detect, waveforms)
            return max(v.get("VmRSS", 0.0) for k, v in x["stages"].items() if k != "classify")

        def during(x):
            return x["stages"]["classify"].get("VmRSS", 0.0)

        out["diff_before_inference_mb"] = before(long_) - before(short)
        out["diff_inference_stage_mb"] = during(long_) - during(short)
    return out


def summary_rows(r: dict) -> list[dict]:
    rows = []
    for x in r["runs"]:
        rows.append(
            dict(
                name="memory",
                metric=f"peak RSS, {x['minutes']:g}-min file ({x['file_mb']:.0f} MB) (MB)",
                value=x["peak_rss_mb"],
                target="",
                passed=None,
            )
        )
    rows.append(
        dict(
            name="memory",
            metric="peak RSS difference, long - short (MB)",
            value=r["diff_mb"],
            target=f"< {r['target_mb']:g}",
            passed=r["passed"],
        )
    )
    rows.append(
        dict(
            name="memory",
            metric="  of which heap (RssAnon) / file-mapped (RssFile) (MB)",
            value=f"{r['diff_anon_mb']:.1f} / {r['diff_file_mb']:.1f}",
            target="",
            passed=None,
        )
    )
    if "diff_before_inference_mb" in r:
        rows.append(
            dict(
                name="memory",
                metric="  difference, read+detect+waveforms stages (MB)",
                value=r["diff_before_inference_mb"],
                target=f"< {r['target_mb']:g}",
                passed=r["diff_before_inference_mb"] < r["target_mb"],
            )
        )
        rows.append(
            dict(
                name="memory",
                metric="  difference, inference stage (MB)",
                value=r["diff_inference_stage_mb"],
                target="",
                passed=None,
            )
        )
    noise = r.get("noise")
    if noise:
        for x in noise["runs"]:
            what = "failed" if x.get("error") else f"{x['firing_rate_hz'] * x['minutes'] * 60:,.0f} spikes"
            rows.append(
                dict(
                    name="memory",
                    metric=f"peak RSS, noisy {x['minutes']:g}-min file ({what}), {noise['address_space_gb']:g} GB cap (MB)",
                    value=x.get("error") or x["peak_rss_mb"],
                    target="",
                    passed=None if not x.get("error") else False,
                )
            )
        rows.append(
            dict(
                name="memory",
                metric="peak RSS difference, noisy long - short (MB)",
                value=noise["diff_mb"],
                target=f"< {TARGET_MB:g}",
                passed=noise["passed"],
            )
        )
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--minutes",
        type=float,
        nargs="*",
        default=[1.0, 60.0],
        help="recording lengths; the first and last are compared (default 1 60; none to skip)",
    )
    ap.add_argument("--model", default=None, help="model folder (default: demo model, else random 12 members)")
    ap.add_argument("--workdir", default=None, help="where generated files are cached")
    ap.add_argument("--no-stages", action="store_true", help="skip the stage-by-stage pass")
    ap.add_argument("--json", default=None, metavar="OUT", help="also write the results as JSON")
    ap.add_argument(
        "--predict-batch",
        type=int,
        default=None,
        metavar="N",
        help="diagnostic: cap Ensemble.predict_members' batch size at N in the measured processes",
    )
    ap.add_argument(
        "--noise-minutes",
        type=float,
        nargs="*",
        default=[1.0, 30.0],
        help="noisy (many-crossings) file lengths, compared first to last (default 1 30; none to skip)",
    )
    ap.add_argument(
        "--address-space-gb",
        type=float,
        default=ADDRESS_SPACE_CAP_GB,
        help="address-space cap of the noisy runs (default 5; 0: none)",
    )
    ap.add_argument(
        "--channels",
        type=int,
        nargs="*",
        default=[],
        help="channel counts of the many-channels case, e.g. 1 4 16 (default: none)",
    )
    ap.add_argument("--channels-child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--noise-child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--stages", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.model, args.stages, args.predict_batch)))
        return 0
    if args.noise_child:
        print(json.dumps(noise_child(args.noise_child, args.model, args.address_space_gb)))
        return 0
    if args.channels_child:
        print(json.dumps(channels_child(args.channels_child, args.model)))
        return 0
    if args.channels and not args.minutes:
        r = {"channels": run_channels(tuple(args.channels), args.workdir, args.model)}
        _print_channels(r["channels"])
        if args.json:
            Path(args.json).write_text(json.dumps(r, indent=2))
        return 0
    r = run(tuple(args.minutes), args.workdir, args.model, stages=not args.no_stages, predict_batch=args.predict_batch)
    if args.noise_minutes:
        r["noise"] = run_noise(tuple(args.noise_minutes), args.workdir, args.model, args.address_space_gb)
    print(
        f"model: {r['model']}"
        + (f"; predict_members batch size capped at {r['predict_batch']}" if r["predict_batch"] else "")
    )
    print(
        f"{'file':<14}{'MB':>6}{'spikes':>8}{'seconds':>9}{'setup':>9}{'maxrss':>9}{'anon':>9}{'file-map':>10}"
        "   (MB; setup = after imports + model load)"
    )
    for x in r["runs"]:
        print(
            f"{x['minutes']:>5g} min     {x['file_mb']:>6.0f}{x['n_spikes']:>8}{x['seconds']:>9.1f}"
            f"{x['maxrss_after_setup_mb']:>9.0f}{x['peak_rss_mb']:>9.0f}{x['peak_anon_mb']:>9.0f}"
            f"{x['peak_file_mb']:>10.0f}"
        )
        if "stages" in x:
            print(
                "    stage peaks (RSS / anon / file-mapped): "
                + ", ".join(
                    f"{k} {v.get('VmRSS', 0):.0f}/{v.get('RssAnon', 0):.0f}/{v.get('RssFile', 0):.0f}"
                    for k, v in x["stages"].items()
                )
            )
    print(
        f"difference {r['diff_mb']:.1f} MB (heap {r['diff_anon_mb']:.1f}, file-mapped {r['diff_file_mb']:.1f}); "
        f"target < {r['target_mb']:g} MB: {'PASS' if r['passed'] else 'FAIL'}"
    )
    if "diff_before_inference_mb" in r:
        print(
            f"  peak difference in read + detect + waveforms: {r['diff_before_inference_mb']:.1f} MB; "
            f"in the inference stage: {r['diff_inference_stage_mb']:.1f} MB"
        )
    noise = r.get("noise")
    if noise:
        print(
            f"noisy files (5 pA white noise, threshold {NOISE_THRESHOLD_PA:g} pA, {noise['address_space_gb']:g} GB cap):"
        )
        for x in noise["runs"]:
            if x.get("error"):
                print(f"{x['minutes']:>5g} min     FAILED: {x['error']}")
                continue
            print(
                f"{x['minutes']:>5g} min     {x['firing_rate_hz'] * x['minutes'] * 60:>9,.0f} spikes counted "
                f"({x['firing_rate_hz']:.0f} Hz), {x['n_spikes']} classified, {x['seconds']:.1f} s, "
                f"peak RSS {x['peak_rss_mb']:.0f} MB, quality {x['sero_quality']}"
            )
        print(
            f"noisy difference {noise['diff_mb']:.1f} MB; target < {TARGET_MB:g} MB: "
            f"{'PASS' if noise['passed'] else 'FAIL'}"
        )
    if args.channels:
        r["channels"] = run_channels(tuple(args.channels), args.workdir, args.model)
        _print_channels(r["channels"])
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return 0


def _print_channels(result: dict) -> None:
    print("many channels (each a cell, 30 s, 600 spikes):")
    for x in result["runs"]:
        print(
            f"{x['channels']:>5} channels  waveforms {tuple(x['waveforms_shape'])}, {x['n_spikes']} spikes, "
            f"{x['seconds']:.1f} s, peak RSS after the analyzer {x['peak_analyzer_mb']:.0f} MB, "
            f"after classifying {x['peak_rss_mb']:.0f} MB"
        )
    analyzer = ", ".join(f"{v:.1f}" for v in result["analyzer_mb_per_channel"])
    total = ", ".join(f"{v:.1f}" for v in result["mb_per_channel"])
    print(
        f"growth per channel (MB), analyzer stage: {analyzer}; whole run: {total}; "
        f"linear (analyzer: last <= 1.5 x first): {'PASS' if result['passed'] else 'FAIL'}"
    )


if __name__ == "__main__":
    sys.exit(main())
