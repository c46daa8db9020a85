"""The main job: .abf files in, one row per cell out (``sero classify``), on one core, many, or a Dask cluster.

:func:`classify_file` reads one file, detects, builds the SortingAnalyzer, runs the ``serotonergic``
extension and returns its rows; a file that cannot be processed gives one row with its error message
instead (the run goes on). :func:`classify_files` does it for many files with the engines SpikeInterface's
own batch runner uses: ``"loop"``, ``"joblib"`` (``n_jobs`` processes on this machine) and ``"dask"``
(``scheduler`` = the address of a ``dask.distributed`` scheduler, or a ``Client``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .constants import DEFAULT_DEAD_TIME_MS, DEFAULT_THRESHOLD_PA
from .errors import DemoModelWarning, SeroError

__all__ = ["classify_file", "classify_files", "RESULT_COLUMNS", "expand_inputs"]

#: columns of the results table, in order
RESULT_COLUMNS = [
    "file",
    "channel",
    "cell_id",
    "n_spikes",
    "sero_label",
    "sero_probability",
    "sero_probability_low",
    "sero_probability_high",
    "sero_reliable",
    "fraction_spikes_ser",
    "sero_type",
    "firing_rate_hz",
    "cv_isi",
    "lv",
    "udi_ms",
    "criteria_label",
    "sero_domain",
    "sero_method",
    "n_dropped_edge",
    "model",
    "error",
]


def expand_inputs(items) -> list[Path]:
    """Files as given; folders become the .abf files inside them (recursively, sorted)."""
    out: list[Path] = []
    for it in [items] if isinstance(items, (str, Path)) else items:
        p = Path(it)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix.lower() == ".abf" and q.is_file())
            if not found:
                raise SeroError(f"{p} holds no .abf files.")
            out.extend(found)
        else:
            out.append(p)
    return out


def _error_row(path, message: str) -> pd.DataFrame:
    row = {c: np.nan for c in RESULT_COLUMNS}
    row.update(file=str(path), channel="", cell_id="", sero_label="error", sero_type="", error=message)
    return pd.DataFrame([row], columns=RESULT_COLUMNS)


def classify_file(
    path,
    *,
    model_folder=None,
    channel=None,
    threshold: float = DEFAULT_THRESHOLD_PA,
    mad_multiplier: float | None = None,
    polarity: str = "negative",
    dead_time_ms: float = DEFAULT_DEAD_TIME_MS,
    max_spikes_per_cell: int | None = None,
    seed: int = 0,
    allow_low_rate: bool = False,
    allow_any_unit: bool = False,
    method: str = "cnn",
    trust_model: bool = False,
    report_dir=None,
    return_analyzer: bool = False,
):
    """Classify every cell of one .abf file. Returns the results rows (a DataFrame with
    :data:`RESULT_COLUMNS`), or ``(rows, analyzer)`` with ``return_analyzer=True``. A file that cannot be
    processed returns one row whose ``error`` column says why (it never raises for bad input)."""
    from .export import results_table
    from .snippets import abf_to_analyzer

    path = Path(path)
    try:
        det = dict(polarity=polarity, dead_time_ms=dead_time_ms)
        if mad_multiplier is not None:
            det["mad_multiplier"] = mad_multiplier
        else:
            det["threshold"] = threshold
        analyzer = abf_to_analyzer(
            path,
            channel=channel,
            allow_low_rate=allow_low_rate,
            allow_any_unit=allow_any_unit,
            max_spikes_per_cell=max_spikes_per_cell,
            seed=seed,
            **det,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DemoModelWarning)  # the table's "model" column says DEMO instead
            # the detection recorded its polarity in the sorting: the extension reads it from there
            ext = analyzer.compute(
                "serotonergic", model_folder=model_folder, method=method, trust_model=trust_model, seed=seed
            )
        table = results_table(analyzer, file=str(path))
        dropped = analyzer.sorting.get_property("n_dropped_edge")
        table["n_dropped_edge"] = dropped if dropped is not None else np.nan
        if method == "cnn":
            table["model"] = ("DEMO (simulated data) " if ext.get_data("provenance")["model_is_demo"] else "") + str(
                model_folder or "bundled demo model"
            )
        else:
            table["model"] = "classical criteria"
        table["error"] = ""
        for c in RESULT_COLUMNS:
            if c not in table.columns:
                table[c] = np.nan
        table = table[RESULT_COLUMNS]
        if report_dir is not None:
            from .report import write_cell_reports

            write_cell_reports(analyzer, report_dir, file=str(path))
        table = _tidy(table)
        return (table, analyzer) if return_analyzer else table
    except SeroError as e:
        row = _tidy(_error_row(path, str(e)))
        return (row, None) if return_analyzer else row
    except (Exception, MemoryError) as e:  # a batch survives any single file: the row says what happened
        row = _tidy(_error_row(path, f"unexpected error ({type(e).__name__}: {e}); please report it"))
        return (row, None) if return_analyzer else row


def classify_files(
    paths, *, n_jobs: int = 1, engine: str | None = None, scheduler=None, progress: bool = False, **kwargs
) -> pd.DataFrame:
    """:func:`classify_file` over many files; one table, rows in the order of ``paths``.

    engine : "loop" (default for n_jobs=1), "joblib" (default for n_jobs>1: processes on this machine) or
        "dask" (``scheduler``: a scheduler address such as ``"tcp://10.0.0.5:8786"`` or a
        ``dask.distributed.Client``), as SpikeInterface's ``run_sorter_jobs``.
    """
    files = expand_inputs(paths)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise SeroError(f"n_jobs must be a non-zero integer (1 = one process, -1 = every core), not {n_jobs!r}.")
    if engine is None:
        engine = "dask" if scheduler is not None else ("joblib" if n_jobs != 1 else "loop")
    if engine not in ("loop", "joblib", "dask"):
        raise SeroError(f"engine must be 'loop', 'joblib' or 'dask', not {engine!r}.")
    if not files:
        raise SeroError("No input files.")
    if kwargs.get("method", "cnn") == "cnn":
        # a model that does not load is one error for the run, not one error row per file
        from .model import load_model

        load_model(kwargs.get("model_folder"), trust=kwargs.get("trust_model", False))
    if engine == "loop":
        from tqdm.auto import tqdm

        parts = [
            classify_file(f, **kwargs)
            for f in tqdm(files, desc="classify", unit="file", disable=not progress or len(files) < 2)
        ]
    elif engine == "joblib":
        from joblib import Parallel, delayed

        parts = Parallel(n_jobs=n_jobs, backend="loky")(delayed(classify_file)(f, **kwargs) for f in files)
    else:
        if scheduler is None:
            raise SeroError(
                "engine='dask' needs scheduler=<address of a dask.distributed scheduler> "
                "(CLI: --scheduler tcp://host:8786)."
            )
        from dask.distributed import Client

        client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
        try:
            futures = client.map(classify_file, [str(f) for f in files], pure=False, **kwargs)
            parts = client.gather(futures)
        finally:
            if client is not scheduler:
                client.close()
    return _tidy(pd.concat(parts, ignore_index=True))


def _tidy(table: pd.DataFrame) -> pd.DataFrame:
    """Counts as integers (empty for error rows), text columns as text."""
    for col in ("n_spikes", "n_dropped_edge"):
        table[col] = pd.to_numeric(table[col], errors="coerce").round().astype("Int64")
    table["sero_reliable"] = table["sero_reliable"].astype("boolean")  # <NA> for error rows
    for col in (
        "file",
        "channel",
        "cell_id",
        "sero_label",
        "sero_type",
        "criteria_label",
        "sero_domain",
        "sero_method",
        "model",
        "error",
    ):
        table[col] = table[col].astype(object).where(table[col].notna(), "")
    return table
