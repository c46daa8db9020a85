"""The main job: .abf files in, one row per cell out (``sero classify``), on one core, many, or a Dask cluster.

:func:`classify_file` reads one file, detects, builds the SortingAnalyzer, runs the ``serotonergic``
extension and returns its rows; a file that cannot be processed gives one row with its error message
instead (the run goes on). :func:`classify_files` does it for many files with the engines SpikeInterface's
own batch runner uses: ``"loop"``, ``"joblib"`` (``n_jobs`` processes on this machine) and ``"dask"``
(``scheduler`` = the address of a ``dask.distributed`` scheduler, or a ``Client``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .constants import DEFAULT_DEAD_TIME_MS, DEFAULT_THRESHOLD_PA
from .errors import DemoModelWarning, SeroError
from .export import RESULT_COLUMNS, error_row, export_to_phy, results_table, tidy, write_nwb
from .extension import load_sorting_analyzer
from .model import load_model
from .report import write_cell_reports, write_summary_html
from .snippets import DetectionParams, abf_to_analyzer

__all__ = ["classify_file", "classify_files", "make_report", "expand_inputs", "BatchInterrupted", "RESULT_COLUMNS"]


class BatchInterrupted(SeroError):
    """The run was interrupted (Ctrl-C); ``table`` holds the rows of the files finished so far."""

    def __init__(self, table: pd.DataFrame):
        super().__init__(f"interrupted: {int((table['error'] == '').sum())} rows of finished files kept")
        self.table = table


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
    nwb_dir=None,
    phy_dir=None,
    nwb_metadata: dict | None = None,
    overwrite: bool = False,
    return_analyzer: bool = False,
):
    """Classify every cell of one .abf file. Returns the results rows (a DataFrame with
    :data:`RESULT_COLUMNS`), or ``(rows, analyzer)`` with ``return_analyzer=True``. A file that cannot be
    processed returns one row whose ``error`` column says why (it never raises for bad input).

    ``report_dir``, ``nwb_dir`` and ``phy_dir`` (folders) also get the file's per-cell plots, its NWB file
    ``<stem>.nwb`` (with ``nwb_metadata``: subject, experimenter ... of :func:`~spikeinterface_sero.export.
    write_nwb`) and its Phy folder ``<stem>/``; ``overwrite`` lets those replace existing ones."""
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
            analyzer.compute(
                "serotonergic",
                model_folder=model_folder,
                method=method,
                trust_model=trust_model,
                seed=seed,
                progress_bar=False,  # one bar per file is the batch runner's job
            )
        table = results_table(analyzer, file=str(path))
        if report_dir is not None:
            write_cell_reports(analyzer, report_dir, file=str(path))
        if nwb_dir is not None:
            write_nwb(analyzer, nwb_output(nwb_dir, path), overwrite=overwrite, **(nwb_metadata or {}))
        if phy_dir is not None:
            export_to_phy(analyzer, phy_output(phy_dir, path), remove_if_exists=overwrite, copy_binary=False)
        return (table, analyzer) if return_analyzer else table
    except SeroError as e:
        row = error_row(path, str(e))
        return (row, None) if return_analyzer else row
    except (Exception, MemoryError) as e:  # a batch survives any single file: the row says what happened
        row = error_row(path, f"unexpected error ({type(e).__name__}: {e}); please report it")
        return (row, None) if return_analyzer else row


def _detection_params(options: dict) -> DetectionParams:
    """The detection options of :func:`classify_file` as validated :class:`DetectionParams` (the threshold is
    ignored when ``mad_multiplier`` is given)."""
    chosen = {key: options[key] for key in ("polarity", "dead_time_ms", "mad_multiplier") if key in options}
    if options.get("mad_multiplier") is None:
        chosen.pop("mad_multiplier", None)
        chosen["threshold"] = options.get("threshold", DEFAULT_THRESHOLD_PA)
    return DetectionParams(**chosen)


def nwb_output(nwb_dir, path) -> Path:
    """Where :func:`classify_file` writes the NWB file of ``path``."""
    return Path(nwb_dir) / f"{Path(path).stem}.nwb"


def phy_output(phy_dir, path) -> Path:
    """Where :func:`classify_file` writes the Phy folder of ``path``."""
    return Path(phy_dir) / Path(path).stem


def check_exports(files, *, nwb_dir=None, phy_dir=None, overwrite: bool = False, overwrite_hint="overwrite=True"):
    """Before any work: the export folders exist (or are made) and nothing in them is replaced unasked."""
    for folder, output in ((nwb_dir, nwb_output), (phy_dir, phy_output)):
        if folder is None:
            continue
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise SeroError(f"{folder} is a file; give a folder for the exports.")
        if not folder.parent.is_dir():
            raise SeroError(f"the folder {folder.parent} does not exist: create it first, or choose another folder.")
        existing = [str(output(folder, f)) for f in files if output(folder, f).exists()]
        if existing and not overwrite:
            raise SeroError(f"{existing[0]} exists; pass {overwrite_hint} to replace it, or choose another folder.")
        folder.mkdir(exist_ok=True)


def classify_files(
    paths, *, n_jobs: int = 1, engine: str | None = None, scheduler=None, progress: bool = False, **kwargs
) -> pd.DataFrame:
    """Classify every cell of many .abf files: :func:`classify_file` per file, one table.

    Parameters
    ----------
    paths : str, Path or list of them
        Files, or folders (their .abf files, recursively).
    n_jobs : int, default: 1
        Worker processes for ``engine="joblib"`` (-1: every core).
    engine : "loop" | "joblib" | "dask" | None, default: None
        As SpikeInterface's ``run_sorter_jobs``; None: "dask" with a ``scheduler``, "joblib" with
        ``n_jobs`` other than 1, else "loop".
    scheduler : str, dask.distributed.Client or None, default: None
        The Dask scheduler (e.g. ``"tcp://10.0.0.5:8786"``) for ``engine="dask"``.
    progress : bool, default: False
        A progress bar over files (loop engine).
    **kwargs
        Options of :func:`classify_file` (detection, model, exports).

    Returns
    -------
    pandas.DataFrame
        :data:`RESULT_COLUMNS`, rows in the order of the files; a file that failed has one row whose
        ``error`` says why (a killed worker costs only its own file).

    Raises
    ------
    BatchInterrupted
        On Ctrl-C; its ``table`` holds the rows of the files finished so far.
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
    _detection_params(kwargs)  # every option is checked before the first file is read
    check_exports(
        files, nwb_dir=kwargs.get("nwb_dir"), phy_dir=kwargs.get("phy_dir"), overwrite=kwargs.get("overwrite", False)
    )
    if kwargs.get("method", "cnn") == "cnn":
        # a model that does not load is one error for the run, not one error row per file
        load_model(kwargs.get("model_folder"), trust=kwargs.get("trust_model", False))
    if engine == "dask" and scheduler is None:
        raise SeroError(
            "engine='dask' needs scheduler=<address of a dask.distributed scheduler> (CLI: --scheduler tcp://host:8786)."
        )
    done: dict[int, pd.DataFrame] = {}
    try:
        if engine == "loop":
            for index, path in enumerate(
                tqdm(files, desc="classify", unit="file", disable=not progress or len(files) < 2)
            ):
                done[index] = classify_file(path, **kwargs)
        elif engine == "joblib":
            _run_in_processes(files, n_jobs, kwargs, done)
        else:
            _run_on_dask(files, scheduler, kwargs, done)
    except KeyboardInterrupt:
        raise BatchInterrupted(_assemble(files, done, "interrupted before this file was finished")) from None
    return _assemble(files, done, "not classified")


def _assemble(files, done: dict, missing: str) -> pd.DataFrame:
    parts = [done[i] if i in done else error_row(path, missing) for i, path in enumerate(files)]
    return tidy(pd.concat(parts, ignore_index=True))


def _run_in_processes(files, n_jobs: int, kwargs: dict, done: dict, function=None) -> None:
    """Worker processes (loky, as joblib); a worker that dies (killed, out of memory) costs only its file."""
    function = classify_file if function is None else function
    workers = os.cpu_count() if n_jobs < 0 else n_jobs
    # first all files in parallel; a dead worker breaks the whole pool, so the files it took with it are
    # then run one at a time, each in a fresh worker, and only a file that kills its own worker is lost
    broken = _submit_all(function, files, range(len(files)), kwargs, done, workers)
    for index in broken:
        if _submit_all(function, files, [index], kwargs, done, 1):
            done[index] = error_row(
                files[index],
                "the worker process died on this file (killed, or out of memory); try --n-jobs 1 or more memory",
            )


def _submit_all(function, files, indices, kwargs: dict, done: dict, workers: int) -> list[int]:
    """Run ``function`` on the files in worker processes; the indices whose worker died."""
    from concurrent.futures import as_completed
    from concurrent.futures.process import BrokenProcessPool

    from joblib.externals.loky import get_reusable_executor
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    indices = list(indices)
    # one inference thread per worker: the workers are the parallelism (no oversubscribed cores)
    executor = get_reusable_executor(
        max_workers=max(1, min(workers, len(indices))), env={"SERO_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    )
    futures = {executor.submit(function, files[i], **kwargs): i for i in indices}
    broken = []
    for future in as_completed(futures):
        try:
            done[futures[future]] = future.result()
        except (TerminatedWorkerError, BrokenProcessPool):
            broken.append(futures[future])
    return sorted(broken)


def _run_on_dask(files, scheduler, kwargs: dict, done: dict) -> None:
    from dask.distributed import Client

    client = scheduler if isinstance(scheduler, Client) else _connect(scheduler)
    try:
        futures = client.map(classify_file, [str(f) for f in files], pure=False, **kwargs)
        for index, future in enumerate(futures):
            try:
                done[index] = future.result()
            except Exception as e:  # the worker died or the scheduler lost it: this file only
                done[index] = error_row(files[index], f"the Dask worker failed on this file ({type(e).__name__}: {e})")
    finally:
        if client is not scheduler:
            client.close()


def _connect(scheduler):
    from dask.distributed import Client

    try:
        return Client(scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as e:
        raise SeroError(
            f"cannot reach the Dask scheduler at {scheduler!r} ({type(e).__name__}: {e}); check the address "
            "(CLI: --scheduler tcp://host:8786) and that the scheduler is running."
        ) from None


def _analyzer_file(analyzer, i: int) -> str:
    for obj in (getattr(analyzer, "recording", None) if analyzer.has_recording() else None, analyzer.sorting):
        if obj is None:
            continue
        try:
            p = obj.get_annotation("abf_path")
        except Exception:
            p = None
        if p:
            return str(p)
    folder = getattr(analyzer, "folder", None)
    return str(folder) if folder else f"analyzer {i + 1}"


def _is_analyzer_folder(p: Path) -> bool:
    return p.is_dir() and (
        (p / "spikeinterface_info.json").is_file() or (p / ".zattrs").is_file() or p.suffix == ".zarr"
    )


def make_report(
    analyzers_or_paths,
    out_dir,
    *,
    model_folder=None,
    method: str = "cnn",
    trust_model: bool = False,
    title: str = "Serotonergic classification",
    dpi: int = 100,
    **classify_kwargs,
) -> Path:
    """Plots and ``index.html`` for SortingAnalyzers, saved analyzer folders or .abf files (or folders of
    them), mixed as you like; returns the path of ``index.html``.

    An analyzer without the ``serotonergic`` extension is classified first (``model_folder``, ``method``,
    ``trust_model``); .abf files go through :func:`spikeinterface_sero.pipeline.classify_file` with those and
    ``classify_kwargs`` (detection options), and a file that fails appears as a red row.
    """
    items = analyzers_or_paths
    if isinstance(items, (str, os.PathLike)) or hasattr(items, "unit_ids"):
        items = [items]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    for i, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            p = Path(item)
            if _is_analyzer_folder(p):
                item = load_sorting_analyzer(p)
            else:
                for f in expand_inputs(p):
                    parts.append(
                        classify_file(
                            f,
                            model_folder=model_folder,
                            method=method,
                            trust_model=trust_model,
                            report_dir=out_dir,
                            **classify_kwargs,
                        )
                    )
                continue
        analyzer = item
        if not analyzer.has_extension("serotonergic"):
            analyzer.compute("serotonergic", model_folder=model_folder, method=method, trust_model=trust_model)
        file = _analyzer_file(analyzer, i)
        parts.append(results_table(analyzer, file=file))
        write_cell_reports(analyzer, out_dir, file=file, dpi=dpi)
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=RESULT_COLUMNS)
    return write_summary_html(table, out_dir, title=title)
