"""End to end, .abf file to cell labels: time per stage of the real pipeline.

    python benchmarks/bench_end_to_end.py [--minutes 10] [--rate-hz 3.33] [--model FOLDER] [--json OUT]

The recording is a synthetic 40 kHz single-channel loose-seal trace (``spikeinterface_sero.testing.
long_synthetic_trace``: offset + slow drift + noise + biphasic action currents, about 2,000 spikes in 10
minutes) written as int16 (like Clampex) with ``write_abf``; generated files are cached in ``--workdir``.

Stages (the pieces of ``pipeline.classify_file``, called one by one):

* imports+first_call  the same three stages on a 2 s file first: imports of SpikeInterface / Neo / SciPy
  parts and first-call set-up, paid once per process (reported, not counted in the shares)
* read       ``io.read_abf`` (open with Neo, channel choice, pA gains, validation scan)
* detect     ``snippets.recording_to_snippets`` (baseline + threshold crossings, chunked)
* waveforms  ``snippets_to_sorting`` + ``create_analyzer`` (SpikeInterface ``random_spikes`` + ``waveforms``)
* tf import  ``import tensorflow`` (once per process)
* model load ``model.load_model`` (checksums + 12 Keras members)
* inference  ``analyzer.compute("serotonergic")``: ensemble prediction (first call, graph tracing included)
  + cell decision (bootstrap interval) + firing features; also timed a second time (warm)

Target: the stages before inference (read + detect + waveforms) take < 30 % of the total, where the total
is computed twice: with model loading (TF import + load + first prediction) and without (warm prediction).
The model is the bundled demo model when ``spikeinterface_sero/models/demo`` exists, else a 12-member
random-weight ensemble saved once with ``model.save_model`` (the speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

GEN_VERSION = 1  # bump when the synthetic trace changes (cached files are keyed on it)
DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "sero-bench"


# ------------------------------------------------------------------------------------------- synthetic data
def make_abf(minutes: float, workdir=DEFAULT_WORKDIR, rate_hz: float = 10 / 3, seed: int = 0) -> tuple[Path, int]:
    """Write (once; cached in ``workdir``) ``testing.long_synthetic_trace`` as an int16 ABF 2 file;
    (path, n_spikes)."""
    from spikeinterface_sero.constants import SAMPLING_FREQUENCY
    from spikeinterface_sero.testing import long_synthetic_trace, write_abf

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"synth_v{GEN_VERSION}_{minutes:g}min_{rate_hz:.3f}hz_s{seed}.abf"
    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file():
        return path, int(json.loads(meta.read_text())["n_spikes"])
    x, n_spikes = long_synthetic_trace(minutes * 60.0, rate_hz=rate_hz, seed=seed)
    tmp = path.with_suffix(".tmp.abf")
    write_abf(tmp, x, SAMPLING_FREQUENCY, units="pA", data_format="int16")
    del x
    os.replace(tmp, path)
    meta.write_text(json.dumps({"n_spikes": n_spikes, "minutes": minutes, "rate_hz": rate_hz, "seed": seed}))
    return path, n_spikes


def model_folder(workdir=DEFAULT_WORKDIR, model=None) -> tuple[Path, str]:
    """(folder, what it is): ``model`` if given, the bundled demo model if installed, else a random
    12-member ensemble saved once in ``workdir`` (made in a subprocess, so that this process's TensorFlow
    import is still timed)."""
    if model is not None:
        return Path(model), "given model"
    import shutil

    from spikeinterface_sero.model import demo_model_folder

    demo = demo_model_folder()
    if (demo / "model_info.json").is_file():
        # a snapshot, so that a demo model being retrained meanwhile does not change under the benchmark
        snap = Path(workdir) / "demo_model_snapshot"
        try:
            shutil.rmtree(snap, ignore_errors=True)
            shutil.copytree(demo, snap)
            if (snap / "model_info.json").is_file():
                return snap, "bundled demo model"
        except OSError:
            pass
    folder = Path(workdir) / "random12_model"
    if not (folder / "model_info.json").is_file():
        code = (
            "import sys; from spikeinterface_sero import model as M; "
            "M.save_model(M.random_ensemble(), sys.argv[1], description='benchmark: 12 untrained random "
            "members (kernels 20-31)', demo=False, overwrite=True)"
        )
        subprocess.run(
            [sys.executable, "-c", code, str(folder)], check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        )
    return folder, "random ensemble (untrained)"


# ------------------------------------------------------------------------------------------------ benchmark
def run(minutes: float = 10.0, rate_hz: float = 10 / 3, workdir=DEFAULT_WORKDIR, model=None) -> dict:
    path, n_true = make_abf(minutes, workdir, rate_hz)
    folder, model_kind = model_folder(workdir, model)

    import warnings

    from spikeinterface_sero import model as M
    from spikeinterface_sero.io import read_abf
    from spikeinterface_sero.pipeline import classify_file
    from spikeinterface_sero.snippets import create_analyzer, recording_to_snippets, snippets_to_sorting

    warnings.filterwarnings("ignore", message=".*DEMONSTRATION model.*")
    t = {}
    # one-time costs of a process (imports of SpikeInterface/Neo/SciPy parts, first-call set-up), paid on a
    # 2 s file so that the stages below measure the per-file work
    small, _ = make_abf(2 / 60, workdir, rate_hz)
    t0 = time.perf_counter()
    r0 = read_abf(small)
    s0 = recording_to_snippets(r0)
    create_analyzer(snippets_to_sorting(s0, r0), r0)
    t["imports+first_call"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    rec = read_abf(path)
    t["read"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    snips = recording_to_snippets(rec)
    t["detect"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sorting = snippets_to_sorting(snips, rec)
    analyzer = create_analyzer(sorting, rec)
    analyzer.sorting.annotate(sero_detection=snips.detection)
    t["waveforms"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    import tensorflow  # noqa: F401

    t["tf_import"] = time.perf_counter() - t0
    warnings.filterwarnings("ignore", message=".*DEMONSTRATION model.*")  # TensorFlow's import resets filters
    t0 = time.perf_counter()
    M.clear_model_cache()
    ens = M.load_model(folder)
    t["model_load"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ext = analyzer.compute("serotonergic", model_folder=str(folder), seed=0)
    t["inference"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    analyzer.compute("serotonergic", model_folder=str(folder), seed=0)
    t["inference_warm"] = time.perf_counter() - t0
    units = ext.get_data()
    n_spikes = int(units["n_spikes"].sum())

    # the same file through pipeline.classify_file (model cached, TensorFlow imported): warm end to end
    t0 = time.perf_counter()
    rows = classify_file(path, model_folder=folder)
    t["classify_file_warm"] = time.perf_counter() - t0
    if rows["error"].iloc[0]:
        raise RuntimeError(f"classify_file failed: {rows['error'].iloc[0]}")

    pre = t["read"] + t["detect"] + t["waveforms"]
    infer_cold = t["tf_import"] + t["model_load"] + t["inference"]
    total_cold = pre + infer_cold
    total_warm = pre + t["inference_warm"]
    return {
        "benchmark": "end_to_end",
        "file": str(path),
        "file_mb": path.stat().st_size / 1e6,
        "minutes": minutes,
        "n_spikes_true": n_true,
        "n_spikes_detected": int(len(snips)),
        "n_spikes_classified": n_spikes,
        "label": str(units["sero_label"].iloc[0]),
        "model": model_kind,
        "n_members": len(ens.members),
        "stages_s": t,
        "before_inference_s": pre,
        "inference_with_loading_s": infer_cold,
        "inference_without_loading_s": t["inference_warm"],
        "total_with_loading_s": total_cold,
        "total_without_loading_s": total_warm,
        "before_inference_share_with_loading": pre / total_cold,
        "before_inference_share_without_loading": pre / total_warm,
        "target_share": 0.30,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
    }


def summary_rows(r: dict) -> list[dict]:
    """Rows (name, metric, value, target, passed) for the run_all table."""
    s = r["stages_s"]
    rows = [dict(name="end_to_end", metric=f"{k} (s)", value=v, target="", passed=None) for k, v in s.items()]
    rows += [
        dict(
            name="end_to_end", metric="model", value=f"{r['model']}, {r['n_members']} members", target="", passed=None
        ),
        dict(
            name="end_to_end",
            metric="spikes detected / true",
            value=f"{r['n_spikes_detected']} / {r['n_spikes_true']}",
            target="",
            passed=None,
        ),
        dict(
            name="end_to_end",
            metric="total with model loading (s)",
            value=r["total_with_loading_s"],
            target="",
            passed=None,
        ),
        dict(
            name="end_to_end",
            metric="total without model loading (s)",
            value=r["total_without_loading_s"],
            target="",
            passed=None,
        ),
        dict(
            name="end_to_end",
            metric="before-inference share, with loading",
            value=r["before_inference_share_with_loading"],
            target="< 0.30",
            passed=r["before_inference_share_with_loading"] < r["target_share"],
        ),
        dict(
            name="end_to_end",
            metric="before-inference share, without loading",
            value=r["before_inference_share_without_loading"],
            target="< 0.30",
            passed=r["before_inference_share_without_loading"] < r["target_share"],
        ),
    ]
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="recording length (default 10)")
    ap.add_argument(
        "--rate-hz", type=float, default=10 / 3, help="mean firing rate (default 3.33: ~2000 spikes in 10 min)"
    )
    ap.add_argument("--model", default=None, help="model folder (default: demo model, else random 12 members)")
    ap.add_argument("--workdir", default=str(DEFAULT_WORKDIR), help="where generated files are cached")
    ap.add_argument("--json", default=None, metavar="OUT", help="also write the results as JSON")
    args = ap.parse_args(argv)
    r = run(args.minutes, args.rate_hz, args.workdir, args.model)
    print(
        f"{r['minutes']:g} min, {r['file_mb']:.0f} MB int16 ABF, {r['n_spikes_detected']} spikes detected "
        f"({r['n_spikes_true']} simulated), model: {r['model']}; {r['machine']}"
    )
    print(f"{'stage':<22}{'seconds':>9}")
    for k, v in r["stages_s"].items():
        print(f"{k:<22}{v:>9.3f}")
    print(
        f"before inference: {r['before_inference_s']:.2f} s = {100 * r['before_inference_share_with_loading']:.1f} % "
        f"of {r['total_with_loading_s']:.2f} s with model loading (TF import + load + first prediction), "
        f"{100 * r['before_inference_share_without_loading']:.1f} % of {r['total_without_loading_s']:.2f} s "
        f"without (warm prediction); target < 30 %"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
