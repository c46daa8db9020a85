"""The examples run, and docs/api.md matches the code, so neither can rot.

Every ``examples/*.py`` is run as a user would (``python examples/<name>.py --out DIR``, in a fresh
process, in an empty working directory) on the small simulated data it makes itself; it must exit 0 and
leave its outputs. docs/api.md must be what ``python docs/gen_api.py`` writes from the current code.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

#: outputs each example must leave under --out (paths relative to it)
EXPECTED = {
    "01_classify_abf.py": ["results.csv", "recordings/labels.csv"],
    "02_spikeinterface_workflow.py": [
        "analyzer",
        "phy/params.py",
        "phy/cluster_sero_label.tsv",
        "cell.nwb",
        "units.csv",
    ],
    "03_neo_elephant.py": ["neo_summary.json"],
    "04_snippets_csv.py": ["csv", "csv_cells.csv"],
    "05_train_your_own.py": [
        "my_model/model_info.json",
        "my_model/README.md",
        "evaluation/report.json",
        "training_summary.json",
    ],
    "06_import_published_models.py": ["published_model/model_info.json", "synthetic_model/model_info.json"],
}


def _examples() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def test_every_example_is_tested():
    assert _examples() == sorted(EXPECTED), "add the new example and its expected outputs to EXPECTED"


def _run(name: str, tmp: Path) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp / name[:-3] / "out"
    out.parent.mkdir(parents=True)
    env = dict(os.environ, MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--out", str(out)],
        cwd=out.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc, out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Start every example at once, two at a time (most of each run is TensorFlow's start-up, single
    threaded); each test below waits for its own."""
    tmp = tmp_path_factory.mktemp("examples")
    pool = ThreadPoolExecutor(max_workers=2)
    # the longest first, so that the others run beside it
    order = ["02_spikeinterface_workflow.py"] + [n for n in sorted(EXPECTED) if n != "02_spikeinterface_workflow.py"]
    futures = {name: pool.submit(_run, name, tmp) for name in order}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name, runs):
    proc, out = runs[name].result()
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    for rel in EXPECTED[name]:
        assert (out / rel).exists(), f"{name} did not write {rel}; it printed:\n{proc.stdout[-3000:]}"
    if name == "04_snippets_csv.py":
        assert len(list((out / "csv").glob("*_trigger_*.csv"))) > 10
    if name in ("01_classify_abf.py", "02_spikeinterface_workflow.py", "03_neo_elephant.py", "04_snippets_csv.py"):
        # without --model: the bundled demo model, announced as such
        assert "DEMONSTRATION" in proc.stdout


def _gen_api():
    spec = importlib.util.spec_from_file_location("gen_api", ROOT / "docs" / "gen_api.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_api_reference_is_up_to_date():
    text = _gen_api().render()
    current = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert current == text, "docs/api.md is out of date: run `python docs/gen_api.py` and commit docs/api.md"


def test_api_reference_is_deterministic():
    gen = _gen_api()
    assert gen.render() == gen.render()
