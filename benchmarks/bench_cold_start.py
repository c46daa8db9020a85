"""Cold start: a one-cell ``sero classify`` in a fresh process vs a bare ``import tensorflow``, same run.

    python benchmarks/bench_cold_start.py [--spikes 300] [--repeats 3] [--model FOLDER] [--json OUT]

The file is one simulated serotonergic cell (``datasets.simulate_drn_recording``, ~300 spikes at 3 Hz)
written as an int16 ABF 2 file with ``datasets.write_abf``. Every command runs in a new Python process
(the wall time of the whole process, from a ``subprocess.run`` here); the commands take turns in each
round, after one untimed round that warms the operating system's file cache (a user's second command;
what is measured is the processes' own start-up: imports, model loading, first prediction):

* ``import tensorflow``      ``python -c "import tensorflow"``: what TensorFlow alone costs at start-up
* ``import package``         ``python -c "import spikeinterface_sero"``
* ``sero classify``          the console script, ``sero classify one_cell.abf --out ... --quiet``, with
                             ``SERO_MODEL_ENGINE=numpy`` (the default engine)
* ``cli main, in process``   the same command through ``spikeinterface_sero.cli.main`` in ``python -c``,
                             which then reports whether TensorFlow was imported on the way
* ``cli main, no eager tf``  the same, with the CLI's up-front TensorFlow import (``cli._NEEDS_TF``)
                             switched off: what ``sero classify`` costs once the CLI no longer imports
                             TensorFlow for it
* ``classify_file (API)``    ``pipeline.classify_file`` in ``python -c`` (no CLI): the same work
                             without anything the CLI adds

The package's bytecode is written first (``compile_bytecode``): where ``PYTHONDONTWRITEBYTECODE`` is set,
Python would compile its modules again in every process, which no user's second command does.

Goal: the median ``sero classify`` time <= 0.4 x the median ``import tensorflow`` time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 0.4


def make_one_cell_abf(path: Path, n_spikes: int = 300, rate_hz: float = 3.0, seed: int = 0) -> Path:
    """A one-cell ABF file with about ``n_spikes`` action currents."""
    from spikeinterface_sero.datasets import simulate_drn_recording, write_abf

    rec = simulate_drn_recording(
        "serotonergic", duration_s=n_spikes / rate_hz + 2.0, seed=seed, firing_rate_hz=rate_hz, cv_isi=0.3
    )
    write_abf(path, rec.traces, rec.sampling_frequency, units="pA")
    return path


def compile_bytecode() -> bool:
    """Write the package's bytecode (``__pycache__``), as a user's first run (or ``pip install``) does.

    A sandbox that sets ``PYTHONDONTWRITEBYTECODE`` (this project's machines do) would otherwise make every
    process compile the package's modules again (about 0.2 s), which no user's second command pays.
    Returns whether the variable was set.
    """
    import compileall

    import spikeinterface_sero

    compileall.compile_dir(Path(spikeinterface_sero.__file__).parent, quiet=1)
    return bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))


def _timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    return time.perf_counter() - t0, r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spikes", type=int, default=300, help="spikes in the simulated cell (about)")
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds (median and best reported)")
    ap.add_argument("--model", default=None, help="model folder (default: the bundled demo model)")
    ap.add_argument("--workdir", default=None, help="where the .abf file and outputs go (default: a temp dir)")
    ap.add_argument("--json", default=None, metavar="OUT", help="also write the results as JSON")
    args = ap.parse_args(argv)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="sero-cold-"))
    work.mkdir(parents=True, exist_ok=True)
    abf = make_one_cell_abf(work / "one_cell.abf", n_spikes=args.spikes)
    compiled = compile_bytecode()
    py = sys.executable
    sero = Path(py).with_name("sero")
    if not sero.is_file():
        sero = None
    model = ["--model", str(Path(args.model).resolve())] if args.model else []
    env = dict(os.environ, SERO_MODEL_ENGINE="numpy", TF_CPP_MIN_LOG_LEVEL="3")
    out_csv = work / "out.csv"
    cli_args = ["classify", str(abf), "--out", str(out_csv), "--overwrite", "--quiet", *model]
    in_process = (
        "import sys\n"
        "from spikeinterface_sero.cli import main\n"
        f"rc = main({cli_args!r})\n"
        "print('TENSORFLOW_IMPORTED=' + str('tensorflow' in sys.modules))\n"
        "sys.exit(rc)\n"
    )
    no_eager_tf = in_process.replace(
        "from spikeinterface_sero.cli import main\n",
        "import spikeinterface_sero.cli as cli\n"
        "from spikeinterface_sero.cli import main\n"
        "getattr(cli, '_NEEDS_TF', set()).clear() if isinstance(getattr(cli, '_NEEDS_TF', None), set) else None\n",
    )
    api = (
        "import sys\n"
        "from spikeinterface_sero.pipeline import classify_file\n"
        f"rows = classify_file({str(abf)!r}, model_folder={args.model!r})\n"
        "assert not rows['error'].astype(bool).any(), rows['error'].tolist()\n"
        "print('N_SPIKES=' + str(int(rows['n_spikes'].sum())))\n"
        "print('TENSORFLOW_IMPORTED=' + str('tensorflow' in sys.modules))\n"
    )
    commands = {
        "import tensorflow": [py, "-c", "import tensorflow"],
        "import package": [py, "-c", "import spikeinterface_sero"],
        "cli main, in process": [py, "-c", in_process],
        "cli main, no eager tf": [py, "-c", no_eager_tf],
        "classify_file (API)": [py, "-c", api],
    }
    if sero is not None:
        commands["sero classify"] = [str(sero), *cli_args]
    times: dict[str, list[float]] = {name: [] for name in commands}
    notes: dict[str, str] = {}
    for round_ in range(args.repeats + 1):  # round 0: warm the file cache, not timed
        for name, cmd in commands.items():
            t, r = _timed(cmd, env, work)
            if r.returncode != 0:
                tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
                raise SystemExit(f"{name} failed (exit {r.returncode}): " + " | ".join(tail))
            for line in r.stdout.splitlines():
                if line.startswith(("TENSORFLOW_IMPORTED=", "N_SPIKES=")):
                    notes[f"{name}: {line.split('=')[0].lower()}"] = line.split("=", 1)[1]
            if round_:
                times[name].append(t)

    med = {name: statistics.median(v) for name, v in times.items()}
    best = {name: min(v) for name, v in times.items()}
    tf_med = med["import tensorflow"]
    main_name = "sero classify" if "sero classify" in med else "cli main, in process"
    ratio = med[main_name] / tf_med
    n_spikes = notes.get("classify_file (API): n_spikes")
    print(
        f"one-cell .abf ({n_spikes} spikes), {args.repeats} rounds, {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'command (fresh process)':<26}{'median s':>10}{'best s':>9}{'x import tf':>13}")
    for name in commands:
        print(f"{name:<26}{med[name]:>10.2f}{best[name]:>9.2f}{med[name] / tf_med:>13.2f}")
    for k, v in notes.items():
        if k.endswith("tensorflow_imported"):
            print(f"  {k.split(':')[0]} imported TensorFlow: {v}")
    if compiled:
        print("  PYTHONDONTWRITEBYTECODE is set here: the package's bytecode was written first (compileall)")
    verdict = "met" if ratio <= GOAL else "NOT met"
    print(f"{main_name} / import tensorflow = {ratio:.2f} (goal <= {GOAL}: {verdict})")
    result = {
        "n_spikes": int(n_spikes) if n_spikes and n_spikes.isdigit() else None,
        "repeats": args.repeats,
        "median_s": med,
        "best_s": best,
        "times_s": times,
        "ratio_classify_to_tf_import": ratio,
        "ratio_api_to_tf_import": med["classify_file (API)"] / tf_med,
        "goal": GOAL,
        "goal_met": ratio <= GOAL,
        "tensorflow_imported": {k.split(":")[0]: v == "True" for k, v in notes.items() if "tensorflow" in k},
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
