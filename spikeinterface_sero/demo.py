"""``sero demo``: simulate a few dorsal-raphe recordings, classify them with the bundled demonstration model,
print the table next to the ground truth and write a small report.

Everything here is simulated (see :mod:`spikeinterface_sero.datasets`) and the bundled model was trained on
simulated recordings: the demo shows the workflow, it says nothing about real neurons.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd

from .arguments import check_integer, check_number
from .datasets import simulate_dataset
from .errors import ParameterError, SeroError
from .export import write_table
from .files import check_output_path, whole_folder
from .pipeline import classify_files
from .report import write_summary_html

__all__ = ["run_demo"]

DEFAULT_CELLS = {"serotonergic": 2, "atypical_serotonergic": 2, "non_serotonergic": 2}
#: the demo's bounds: a recording at most 10 minutes, at most 20 cells per type, and at most an hour of
#: simulated recording in all (an hour at 40 kHz is about 0.6 GB of .abf files and a few minutes of work)
MAX_DURATION_S = 600.0
MAX_CELLS_PER_TYPE = 20
MAX_TOTAL_S = 3600.0


def check_demo_size(n_cells: dict, duration_s: float, *, cells_name: str, duration_name: str) -> None:
    """The demo's size within its bounds, before anything is simulated (names in the caller's words)."""
    check_number(duration_s, duration_name, minimum=1.0, maximum=MAX_DURATION_S)
    for count in n_cells.values():
        check_integer(count, cells_name, minimum=0, maximum=MAX_CELLS_PER_TYPE)
    total = sum(n_cells.values()) * float(duration_s)
    if total > MAX_TOTAL_S:
        raise ParameterError(
            f"{cells_name} and {duration_name} ask for {total:g} s of simulated recording; the demo makes at most "
            f"{MAX_TOTAL_S:g} s (about 0.6 GB): fewer cells or shorter recordings."
        )


def run_demo(
    out_dir="sero_demo_output",
    *,
    n_cells_per_type: dict | None = None,
    duration_s: float = 30.0,
    seed: int = 2024,
    model_folder=None,
    report: bool = True,
    n_jobs: int = 1,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Simulate, classify, compare with the ground truth. Writes ``recordings/*.abf``, ``results.csv`` and
    (with ``report``) ``report/index.html`` under ``out_dir``; returns the results table with the columns
    ``true_label``, ``true_cell_type`` and ``correct`` added. An earlier demo's output is replaced only with
    ``overwrite`` (checked before any work)."""
    counts = dict(DEFAULT_CELLS if n_cells_per_type is None else n_cells_per_type)
    check_demo_size(counts, duration_s, cells_name="n_cells_per_type", duration_name="duration_s")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SeroError(f"{out} is a file; out_dir must be a folder (CLI: --out).")
    try:
        out.mkdir(parents=True, exist_ok=True)  # the demo's own folder, as on a first run
    except OSError as e:
        raise SeroError(f"cannot create {out} ({e.strerror or e}); choose another out_dir (CLI: --out).") from None
    results = check_output_path(out / "results.csv", overwrite=overwrite, suffixes=(".csv",), what="demo results")
    with contextlib.ExitStack() as stack:
        report_dir = None
        if report:  # one writer, written whole; an earlier report replaced only with overwrite (checked now)
            report_dir = stack.enter_context(
                whole_folder(out / "report", overwrite=overwrite, what="demo report", flag="out_dir")
            )
        recs = simulate_dataset(counts, duration_s=duration_s, seed=seed, out_dir=out / "recordings", n_groups=2)
        table = classify_files([r.file for r in recs], model_folder=model_folder, report_dir=report_dir, n_jobs=n_jobs)
        truth = {str(Path(r.file).resolve()): r for r in recs}
        known = [truth.get(str(Path(f).resolve())) for f in table["file"]]
        table["true_label"] = [r.label if r is not None else "" for r in known]
        table["true_cell_type"] = [r.cell_type if r is not None else "" for r in known]
        table["correct"] = table["sero_label"] == table["true_label"]
        write_table(table, results, overwrite=overwrite)
        if report_dir is not None:
            write_summary_html(table, report_dir)
    return table
