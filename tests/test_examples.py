"""The examples run and the docs build, so neither can rot.

Every ``examples/*.py`` is run as a user would (``python examples/<name>.py --out DIR``, in a fresh
process, in an empty working directory) on the small simulated data it makes itself; it must exit 0 and
leave its outputs. The Sphinx site (docs/conf.py) must build with warnings as errors, and its API page must
document every public name.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
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


#: the modules docs/api.rst documents, each with every name of its ``__all__``
API_MODULES = [
    "io",
    "grouping",
    "snippet_formats",
    "snippet_folders",
    "detection",
    "analyzers",
    "features",
    "decision",
    "sequential",
    "seal",
    "schema",
    "conformal",
    "fingerprint",
    "sessions",
    "stimulus",
    "model",
    "adapt",
    "extension",
    "neo_bridge",
    "datasets",
    "training",
    "export",
    "validation",
    "text",
    "report",
    "pipeline",
]


@pytest.fixture(scope="module")
def docs_html(tmp_path_factory):
    """The Sphinx site built as CI builds it, warnings as errors: the build's process and its html folder."""
    out = tmp_path_factory.mktemp("docs")
    env = dict(os.environ, MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-d", str(out / "doctrees")]
    proc = subprocess.run(
        [*command, str(ROOT / "docs"), str(out / "html")],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc, out / "html"


def test_docs_build_without_warnings(docs_html):
    proc, html = docs_html
    assert proc.returncode == 0, (
        "the docs do not build cleanly; run `python -m sphinx -W --keep-going -b html docs docs/_build/html` "
        f"(Sphinx, numpydoc and myst-parser come with the test extra):\n{proc.stdout[-2000:]}\n{proc.stderr[-6000:]}"
    )
    for page in ["index", "api", "tutorial", "architecture"]:
        assert (html / f"{page}.html").is_file(), f"the build wrote no {page}.html"


def test_api_reference_documents_every_public_name(docs_html):
    _, html = docs_html
    page = (html / "api.html").read_text(encoding="utf-8")
    documented = set(re.findall(r'class="sig sig-object py" id="([^"]+)"', page))
    expected = []
    for short in API_MODULES:
        module = importlib.import_module(f"spikeinterface_sero.{short}")
        expected += [f"{module.__name__}.{name}" for name in module.__all__]
    errors = importlib.import_module("spikeinterface_sero.errors")
    expected += [
        f"{errors.__name__}.{name}"
        for name, value in vars(errors).items()
        if inspect.isclass(value) and value.__module__ == errors.__name__ and not name.startswith("_")
    ]
    expected.append("spikeinterface_sero.__version__")
    missing = [name for name in expected if name not in documented]
    assert not missing, (
        f"docs/api.rst does not document {missing}: give each a docstring (a ``#:`` comment for a constant) "
        "and, for a constant the module imports from another module, add an ``autodata`` line to docs/api.rst"
    )
    # each top-level name of the package is in the package's section, linked to its documentation
    import spikeinterface_sero

    package_section = re.search(r'<section id="module-spikeinterface_sero">(.*?)</section>', page, re.S).group(1)
    for name in spikeinterface_sero.__all__:
        if name == "__version__":
            continue
        targets = [target for target in documented if target.endswith(f".{name}")]
        assert any(f'href="#{target}"' in package_section for target in targets), (
            f"spikeinterface_sero.{name} is not in the package's summary table in docs/api.rst"
        )
