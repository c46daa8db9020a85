"""The main job: .abf files in, one row per cell out (``sero classify``), on one core, many, or a Dask cluster.

:func:`classify_file` reads one file, detects, builds the SortingAnalyzer, runs the ``serotonergic``
extension and returns its rows; a file that cannot be processed gives one row with its error message
instead (the run goes on). A folder of the authors' per-spike CSV files is an input like a file: its
snippets become a recording-free analyzer (:func:`~spikeinterface_sero.extension.analyzer_from_snippets`)
and take the same path from the extension on. :func:`classify_files` does it for many files with the engines SpikeInterface's
own batch runner uses: ``"loop"``, ``"joblib"`` (``n_jobs`` processes on this machine) and ``"dask"``
(``scheduler`` = the address of a ``dask.distributed`` scheduler, or a ``Client``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd

from .analyzers import abf_to_analyzer, recording_to_analyzer
from .batch import BatchInterrupted, check_batch_options, run_files
from .constants import DEFAULT_DEAD_TIME_MS, DEFAULT_THRESHOLD_PA
from .detection import DetectionParams
from .errors import DemoModelWarning, SeroError, SessionUnlikeRigWarning
from .export import RESULT_COLUMNS, error_row, export_to_phy, output_path, results_table, tidy, write_nwb
from .extension import analyzer_from_snippets, load_sorting_analyzer
from .files import atomic_folder, check_output_folder, whole_folder
from .grouping import CellFiles, check_group, group_files, read_cell
from .model import load_model
from .report import write_cell_reports, write_summary_html
from .second_cells import split_second_cells
from .session_runs import changed_by_verdict, check_sessions, sessions_of_rows, unlike_sessions
from .sessions import unlike_message
from .snippet_folders import PART_FOLDER as _PART_FOLDER
from .snippet_folders import (  # noqa: F401  (their home was here: older code imports them from pipeline)
    SNIPPET_MANIFEST,
    check_snippet_folder,
    is_snippet_folder,
    is_snippet_input,
    read_snippet_folder,
    read_snippet_input,
    write_snippet_folder,
)
from .snippet_formats import CSV_NAME as _CSV_NAME
from .snippet_formats import Snippets

__all__ = [
    "classify_file",
    "classify_recording",
    "classify_cell",
    "classify_files",
    "classify_snippets",
    "make_report",
    "expand_inputs",
    "BatchInterrupted",
    "RESULT_COLUMNS",
]


def expand_inputs(items) -> list[Path]:
    """Files as given; a folder becomes the .abf files in it and the folders of per-spike CSV files
    (``<cell>_trigger_<sample>.csv``, the authors' format) at or below it, recursively, sorted.

    Raises SeroError for a folder that holds neither, for a folder that holds .abf files and per-spike CSV
    files side by side (which one was meant?), and for a single per-spike CSV file (give its folder).
    """
    out: list[Path] = []
    for it in [items] if isinstance(items, (str, Path)) else items:
        p = Path(it)
        if p.is_dir():
            abf_files, snippet_folders = [], set()
            for q in p.rglob("*"):
                if any(part.endswith(_PART_FOLDER) for part in q.relative_to(p).parts[:-1]):
                    continue  # a writer's temporary folder (files.atomic_folder): not an input
                if q.suffix.lower() == ".abf" and q.is_file():
                    abf_files.append(q)
                elif _CSV_NAME.match(q.name):
                    snippet_folders.add(q.parent)
            if not abf_files and not snippet_folders:
                raise SeroError(f"{p} holds no .abf files (and no <cell>_trigger_<sample>.csv snippet files).")
            mixed = sorted({q.parent for q in abf_files} & snippet_folders)
            if mixed:
                raise SeroError(
                    f"{mixed[0]} holds both .abf files and per-spike <cell>_trigger_<sample>.csv files; move the "
                    "CSV files into a folder of their own, or name the .abf files one by one."
                )
            out.extend(sorted(abf_files + sorted(snippet_folders)))
        elif _CSV_NAME.match(p.name):
            raise SeroError(f"{p} is one per-spike snippet file; give the folder that holds them ({p.parent}).")
        else:
            out.append(p)
    return out


#: the arguments of classify_file / classify_recording that reach _classify_analyzer (model, outputs) unchanged
_ANALYZER_OPTIONS = (
    "model_folder",
    "method",
    "trust_model",
    "seed",
    "report_dir",
    "nwb_dir",
    "phy_dir",
    "nwb_metadata",
    "overwrite",
    "rig_session",
)


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
    rig_session: dict | None = None,
    return_analyzer: bool = False,
):
    """Classify every cell of one .abf file, or of one folder of per-spike CSV files. Returns the results
    rows (a DataFrame with :data:`RESULT_COLUMNS`), or ``(rows, analyzer)`` with ``return_analyzer=True``. A
    file that cannot be processed returns one row whose ``error`` column says why (it never raises for bad
    input).

    ``report_dir``, ``nwb_dir`` and ``phy_dir`` (folders) also get the file's per-cell plots, its NWB file
    ``<stem>.nwb`` (with ``nwb_metadata``: subject, experimenter ... of :func:`~spikeinterface_sero.export.
    write_nwb`) and its Phy folder ``<stem>/``; ``overwrite`` lets those replace existing ones.
    ``rig_session``: the session check of the session the file belongs to
    (:func:`~spikeinterface_sero.sessions.judge_session`; the ``serotonergic`` extension's parameter), which
    :func:`classify_files` judges; None: the file's cells are judged alone.

    A CSV folder goes through :func:`classify_snippets`: the detection options (``channel``, ``threshold``,
    ``mad_multiplier``, ``dead_time_ms``, ``allow_low_rate``, ``allow_any_unit``) do not apply to it;
    ``polarity`` says which way its spikes go."""
    path = Path(path)
    options = {name: value for name, value in locals().items() if name in _ANALYZER_OPTIONS}
    if is_snippet_input(path):
        return _guarded(
            path,
            lambda: classify_snippets(
                read_snippet_input(path),
                file=path,
                polarity=polarity,
                max_spikes_per_cell=max_spikes_per_cell,
                return_analyzer=True,
                **options,
            ),
            return_analyzer,
        )
    return _guarded(
        path,
        lambda: _classify_analyzer(
            abf_to_analyzer(
                path,
                channel=channel,
                allow_low_rate=allow_low_rate,
                allow_any_unit=allow_any_unit,
                max_spikes_per_cell=max_spikes_per_cell,
                seed=seed,
                **_detection_options(threshold, mad_multiplier, polarity, dead_time_ms),
            ),
            path,
            **options,
        ),
        return_analyzer,
    )


def classify_recording(
    read,
    file,
    *,
    model_folder=None,
    threshold: float = DEFAULT_THRESHOLD_PA,
    mad_multiplier: float | None = None,
    polarity: str = "negative",
    dead_time_ms: float = DEFAULT_DEAD_TIME_MS,
    max_spikes_per_cell: int | None = None,
    seed: int = 0,
    method: str = "cnn",
    trust_model: bool = False,
    report_dir=None,
    nwb_dir=None,
    phy_dir=None,
    nwb_metadata: dict | None = None,
    overwrite: bool = False,
    rig_session: dict | None = None,
    return_analyzer: bool = False,
):
    """Classify the cells of a recording as :func:`classify_file` classifies a file's (the same detection,
    extension and rows): for the part of a file written so far, or the sweeps of several files that are one
    cell (``sero watch``, :func:`classify_cell`). Returns the results rows; a failure (of ``read`` too) is the
    one error row of ``file``; the exports are named after ``file``.

    Parameters
    ----------
    read : callable
        Returns the recording (e.g. ``lambda: read_abf(path, growing=True)``); called inside the guard.
    file : str or Path
        What the rows' ``file`` column says.
    model_folder, threshold, mad_multiplier, polarity, dead_time_ms, max_spikes_per_cell, seed, method, trust_model : as in :func:`classify_file`
        The same meaning and defaults as there.
    report_dir, nwb_dir, phy_dir, nwb_metadata, overwrite, rig_session, return_analyzer : as in :func:`classify_file`
        The same meaning and defaults as there.

    Returns
    -------
    pandas.DataFrame, or (pandas.DataFrame, SortingAnalyzer or None) with ``return_analyzer``
    """
    path = Path(file)
    options = {name: value for name, value in locals().items() if name in _ANALYZER_OPTIONS}
    detection = {
        "threshold": DEFAULT_THRESHOLD_PA,
        **_detection_options(threshold, mad_multiplier, polarity, dead_time_ms),
    }
    return _guarded(
        path,
        lambda: _classify_analyzer(
            recording_to_analyzer(read(), max_spikes_per_cell=max_spikes_per_cell, seed=seed, **detection),
            path,
            **options,
        ),
        return_analyzer,
    )


def classify_cell(
    cell: CellFiles, *, channel=None, allow_low_rate: bool = False, allow_any_unit: bool = False, **kwargs
):
    """Classify the files of one cell (:func:`~spikeinterface_sero.grouping.group_files`) as one recording
    (:func:`~spikeinterface_sero.grouping.read_cell`: their sweeps the segments, in recording order) through
    :func:`classify_recording`; its rows and exports are named after ``cell.key``. A file that cannot be read
    makes the cell's one error row, which names it.

    Parameters
    ----------
    cell : CellFiles
        The cell's key (folder / cell name) and files.
    channel, allow_low_rate, allow_any_unit : as in :func:`classify_file`
        How each file is read.
    **kwargs
        The other options of :func:`classify_file`.

    Returns
    -------
    pandas.DataFrame, or (pandas.DataFrame, SortingAnalyzer or None) with ``return_analyzer=True``
    """
    read_options = dict(channel=channel, allow_low_rate=allow_low_rate, allow_any_unit=allow_any_unit)
    return classify_recording(lambda: read_cell(cell.files, Path(cell.key), read_options), cell.key, **kwargs)


def _classify_item(item, **kwargs):
    """A batch's work item: :func:`classify_cell` of a :class:`~spikeinterface_sero.grouping.CellFiles`,
    else :func:`classify_file` of a path."""
    return classify_cell(item, **kwargs) if isinstance(item, CellFiles) else classify_file(item, **kwargs)


def _detection_options(threshold, mad_multiplier, polarity, dead_time_ms) -> dict:
    options = dict(polarity=polarity, dead_time_ms=dead_time_ms)
    if mad_multiplier is not None:
        options["mad_multiplier"] = mad_multiplier
    else:
        options["threshold"] = threshold
    return options


def _guarded(path, work, return_analyzer: bool):
    """``work()`` gives (rows, analyzer); any failure becomes the one error row of ``path``."""
    try:
        table, analyzer = work()
        return (table, analyzer) if return_analyzer else table
    except SeroError as e:
        row = error_row(path, str(e))
        return (row, None) if return_analyzer else row
    except (Exception, MemoryError) as e:  # a batch survives any single file: the row says what happened
        row = error_row(path, f"unexpected error ({type(e).__name__}: {e}); please report it")
        return (row, None) if return_analyzer else row


def classify_snippets(
    snippets: Snippets,
    *,
    file=None,
    polarity: str = "negative",
    max_spikes_per_cell: int | None = None,
    seed: int = 0,
    model_folder=None,
    method: str = "cnn",
    trust_model: bool = False,
    report_dir=None,
    nwb_dir=None,
    phy_dir=None,
    nwb_metadata: dict | None = None,
    overwrite: bool = False,
    rig_session: dict | None = None,
    return_analyzer: bool = False,
):
    """Classify every cell of snippets that come without their recording (the authors' per-spike CSV
    folders, :func:`read_snippet_folder`; ``.npz`` files, :func:`~spikeinterface_sero.snippets.load_npz`).

    The snippets become a recording-free SortingAnalyzer
    (:func:`~spikeinterface_sero.extension.analyzer_from_snippets`) on which the ``serotonergic`` extension
    runs as on the analyzer of an .abf file: the same decision, quality checks and results columns. The
    spike times are the trigger samples; without segment durations (CSV files) the firing rate is NaN.

    Parameters
    ----------
    snippets : Snippets
        (n, 160) pA, trigger at 40, 40 kHz, with cell ids and trigger samples.
    file : str, Path or None, default: None
        What the ``file`` column says (the folder); None: ``snippets.source``.
    polarity : "negative" | "positive", default: "negative"
        The direction of the spikes in the snippets.
    max_spikes_per_cell : int or None, default: None
        Classify at most this many spikes per cell (seeded); None: all.
    seed : int, default: 0
        Seed of the cap and of the bootstrap.
    model_folder : str, Path or None, default: None
        As :func:`classify_file`.
    method : "cnn" | "criteria", default: "cnn"
        As :func:`classify_file`.
    trust_model : bool, default: False
        As :func:`classify_file`.
    report_dir, nwb_dir : str, Path or None, default: None
        As :func:`classify_file`.
    phy_dir : str, Path or None, default: None
        Not written: a Phy folder needs the recording; the rows' ``export_error`` says so.
    nwb_metadata : dict or None, default: None
        As :func:`classify_file`.
    overwrite : bool, default: False
        As :func:`classify_file`.
    rig_session : dict or None, default: None
        As :func:`classify_file`.
    return_analyzer : bool, default: False
        Return ``(rows, analyzer)``.

    Returns
    -------
    pandas.DataFrame
        :data:`RESULT_COLUMNS`, one row per cell; raises SeroError for bad input (unlike :func:`classify_file`).
    """
    file = Path(str(snippets.source if file is None else file))
    analyzer = analyzer_from_snippets(snippets, polarity=polarity, max_spikes_per_cell=max_spikes_per_cell, seed=seed)
    table, analyzer = _classify_analyzer(
        analyzer,
        file,
        model_folder=model_folder,
        method=method,
        trust_model=trust_model,
        seed=seed,
        report_dir=report_dir,
        nwb_dir=nwb_dir,
        phy_dir=phy_dir,
        nwb_metadata=nwb_metadata,
        overwrite=overwrite,
        rig_session=rig_session,
    )
    return (table, analyzer) if return_analyzer else table


def _classify_analyzer(
    analyzer,
    path: Path,
    *,
    model_folder=None,
    method: str = "cnn",
    trust_model: bool = False,
    seed: int = 0,
    report_dir=None,
    nwb_dir=None,
    phy_dir=None,
    nwb_metadata: dict | None = None,
    overwrite: bool = False,
    rig_session: dict | None = None,
):
    """The ``serotonergic`` extension on an analyzer, its results rows and exports: (rows, analyzer)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DemoModelWarning)  # the table's "model" column says DEMO instead
        # the detection recorded its polarity in the sorting: the extension reads it from there
        analyzer.compute(
            "serotonergic",
            model_folder=model_folder,
            method=method,
            trust_model=trust_model,
            seed=seed,
            rig_session=rig_session,
            progress_bar=False,  # one bar per file is the batch runner's job
        )
        analyzer = split_second_cells(analyzer)  # two cells under one pipette: each its own unit (docs/seal.md)
    table = results_table(analyzer, file=str(path))
    failures = _export(analyzer, path, report_dir, nwb_dir, phy_dir, nwb_metadata, overwrite)
    table["export_error"] = "; ".join(failures)
    return table, analyzer


def _export(analyzer, path: Path, report_dir, nwb_dir, phy_dir, nwb_metadata, overwrite: bool) -> list[str]:
    """The file's plots, NWB file and Phy folder; what failed, one message each (the classification stands)."""
    failures = []
    exports = (
        ("report", report_dir, lambda: write_cell_reports(analyzer, report_dir, file=str(path))),
        (
            "NWB",
            nwb_dir,
            lambda: write_nwb(analyzer, nwb_output(nwb_dir, path), overwrite=overwrite, **(nwb_metadata or {})),
        ),
        ("Phy", phy_dir, lambda: _export_phy(analyzer, phy_output(phy_dir, path), overwrite)),
    )
    for name, folder, write in exports:
        if folder is None:
            continue
        try:
            write()
        except SeroError as e:
            failures.append(f"{name}: {e}")
        except (Exception, MemoryError) as e:  # a full disk, a library failure: the row keeps its result
            failures.append(f"{name}: {type(e).__name__}: {e}")
    return failures


def _export_phy(analyzer, folder: Path, overwrite: bool) -> None:
    """A Phy folder, written whole (files.atomic_folder); export_to_phy refuses an episodic recording."""
    if not analyzer.has_recording():
        raise SeroError("a Phy folder needs the recording, which snippets do not have; export them with nwb_dir")
    with atomic_folder(folder, overwrite=overwrite) as temporary:
        export_to_phy(analyzer, temporary, remove_if_exists=True)


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
    return output_path(nwb_dir, path, ".nwb")


def phy_output(phy_dir, path) -> Path:
    """Where :func:`classify_file` writes the Phy folder of ``path``."""
    return output_path(phy_dir, path)


def check_exports(files, *, nwb_dir=None, phy_dir=None, overwrite: bool = False, overwrite_hint="overwrite=True"):
    """Before any work: the export folders can be written (or made) and nothing in them is replaced unasked.
    What one file cannot export (a Phy folder of an episodic file) is that file's ``export_error``, later."""
    for folder, output in ((nwb_dir, nwb_output), (phy_dir, phy_output)):
        if folder is None:
            continue
        folder = check_output_folder(folder, what="export folder")
        _refuse_shared_outputs(files, folder, output)
        existing = [str(output(folder, f)) for f in files if output(folder, f).exists()]
        if existing and not overwrite:
            raise SeroError(f"{existing[0]} exists; pass {overwrite_hint} to replace it, or choose another folder.")
        folder.mkdir(exist_ok=True)


def _refuse_shared_outputs(files, folder: Path, output) -> None:
    """Two inputs (files of the same name in two folders, a file and a grouped cell of the same name) that
    would export to one path: refused before any work, as the second would replace or fail on the first's."""
    seen = {}
    for f in files:
        target = output(folder, f)
        if target in seen:
            raise SeroError(
                f"{seen[target]} and {f} would both export to {target}; rename one, or export them in separate "
                "runs into separate folders."
            )
        seen[target] = f


def classify_files(
    paths,
    *,
    group=None,
    n_jobs: int = 1,
    max_threads_per_worker: int | None = None,
    engine: str | None = None,
    scheduler=None,
    progress: bool = False,
    sessions: str = "day",
    **kwargs,
) -> pd.DataFrame:
    r"""Classify every cell of many .abf files: :func:`classify_file` per file (or :func:`classify_cell` per
    group of files), one table.

    Parameters
    ----------
    paths : str, Path or list of them
        Files, or folders (their .abf files and their folders of per-spike CSV files, recursively: see
        :func:`expand_inputs`). Every CSV folder is read before the first file is classified, so a malformed
        one stops the run at once (SnippetError); CSV folders are classified in this process.
    group : str, re.Pattern or None, default: None
        A regular expression with a named group ``cell`` (e.g. ``r"(?P<cell>.+)_\d+\.abf"``): .abf files
        whose names match it with the same ``cell`` (in the same folder) are one cell, classified as one
        recording (:func:`classify_cell`: their sweeps the segments, in recording order), one row per unit
        whose ``file`` is the folder / cell; their exports are named after the cell. Files that do not match
        are classified alone.
    n_jobs : int, default: 1
        Worker processes for ``engine="joblib"`` (-1: every core).
    max_threads_per_worker : int or None, default: None
        Inference and BLAS threads of each worker (as SpikeInterface's job keyword of that name); None: the
        cores shared evenly between the workers (:func:`~spikeinterface_sero.model.numpy_engine.default_threads`
        // workers, at least 1), so that the workers neither oversubscribe the cores nor leave some idle.
    engine : "loop" | "joblib" | "dask" | None, default: None
        As SpikeInterface's ``run_sorter_jobs``; None: "dask" with a ``scheduler``, "joblib" with
        ``n_jobs`` other than 1, else "loop".
    scheduler : str, dask.distributed.Client or None, default: None
        The Dask scheduler (e.g. ``"tcp://10.0.0.5:8786"``) for ``engine="dask"``.
    progress : bool, default: False
        A progress bar over files (loop engine).
    sessions : "day" | "none", default: "day"
        The session check (``docs/validate.md``): "day" judges the inputs of one folder recorded on one date
        (the .abf header's) together, and when most of such a session's cells are unlike every rig the model
        was validated on (its median cell past the rig's session limit, with at least 5 cells), classifies the
        session's inputs again with that verdict: their cells are ``session_unlike_validated_rigs`` and not
        reliable, in the rows and in every export. "none": each cell is judged alone.
    **kwargs
        Options of :func:`classify_file` (detection, model, exports).

    Returns
    -------
    pandas.DataFrame
        :data:`RESULT_COLUMNS`, rows in the order of the files (a cell at its first file); a file (or cell)
        that failed has one row whose ``error`` says why (a killed worker costs only its own file or cell).

    Raises
    ------
    BatchInterrupted
        On Ctrl-C; its ``table`` holds the rows of the files finished so far.
    ParameterError
        ``group`` is not a regular expression with a named group ``cell``.
    """
    group = check_group(group)
    sessions = check_sessions(sessions)
    files = expand_inputs(paths)
    engine = check_batch_options(n_jobs, max_threads_per_worker, engine, scheduler)
    if not files:
        raise SeroError("No input files.")
    _detection_params(kwargs)  # every option is checked before the first file is read
    items = _work_items(files, group)
    check_exports(
        [Path(str(item)) for item in items],
        nwb_dir=kwargs.get("nwb_dir"),
        phy_dir=kwargs.get("phy_dir"),
        overwrite=kwargs.get("overwrite", False),
    )
    rig_validation = None
    if kwargs.get("method", "cnn") == "cnn":
        # a model that does not load is one error for the run, not one error row per file
        rig_validation = load_model(kwargs.get("model_folder"), trust=kwargs.get("trust_model", False)).info.get(
            "rig_validation"
        )
    folders = [index for index, item in enumerate(items) if not isinstance(item, CellFiles) and is_snippet_input(item)]
    snippets = {index: read_snippet_input(items[index]) for index in folders}  # a bad file stops the run now
    done: dict[int, pd.DataFrame] = {}
    others = [index for index in range(len(items)) if index not in snippets]
    done_others: dict[int, pd.DataFrame] = {}
    grouped = any(isinstance(item, CellFiles) for item in items)
    try:
        for index in folders:  # CSV folders already read: classified in this process
            done[index] = _classify_read_folder(items[index], snippets.pop(index), kwargs)
        run_files(
            # looked up now: a caller's replacement of pipeline.classify_file reaches the workers
            _classify_item if grouped else classify_file,
            [items[index] for index in others],
            kwargs,
            done_others,
            engine=engine,
            n_jobs=n_jobs,
            max_threads_per_worker=max_threads_per_worker,
            scheduler=scheduler,
            progress=progress,
        )
    except KeyboardInterrupt:
        done.update({others[position]: rows for position, rows in done_others.items()})
        raise BatchInterrupted(_assemble(items, done, "interrupted before this file was finished")) from None
    done.update({others[position]: rows for position, rows in done_others.items()})
    if sessions == "day" and rig_validation:
        engines = dict(engine=engine, n_jobs=n_jobs, max_threads_per_worker=max_threads_per_worker, scheduler=scheduler)
        try:
            _apply_sessions(items, done, kwargs, rig_validation, engines)
        except KeyboardInterrupt:
            raise BatchInterrupted(_assemble(items, done, "interrupted before this file was finished")) from None
    return _assemble(items, done, "not classified")


def _apply_sessions(items: list, done: dict, kwargs: dict, rig_validation: dict, engines: dict) -> None:
    """Classify the inputs of each session unlike every validated rig again, with its verdict (the extension's
    ``rig_session``), replacing their rows and the exports this run wrote for them. Until an input is done
    again its row is an error row, so that an interrupted run never shows a call its session disowns."""
    session = sessions_of_rows(items, done)
    for name, verdict in unlike_sessions(session, done, rig_validation).items():
        warnings.warn(unlike_message(verdict), SessionUnlikeRigWarning, 2)
        indices = [i for i, s in enumerate(session) if s == name and changed_by_verdict(done[i])]
        for i in indices:
            done[i] = error_row(items[i], "interrupted before its session check was applied; rerun this file")
        options = {**kwargs, "rig_session": verdict, "overwrite": True}  # the exports replaced are this run's own
        folders = [i for i in indices if not isinstance(items[i], CellFiles) and is_snippet_input(items[i])]
        for i in folders:
            done[i] = _classify_read_folder(items[i], read_snippet_input(items[i]), options)
        others = [i for i in indices if i not in folders]
        redone: dict[int, pd.DataFrame] = {}
        try:
            run_files(_classify_item, [items[i] for i in others], options, redone, **engines)
        finally:
            done.update({others[position]: rows for position, rows in redone.items()})


def _work_items(files: list[Path], group) -> list:
    """The batch's work items: each input, or with ``group`` the .abf files of one cell as one
    :class:`~spikeinterface_sero.grouping.CellFiles` at the place of its first file."""
    if group is None:
        return list(files)
    abf_files = [path for path in files if not is_snippet_input(path)]
    cells = group_files(abf_files, group)
    key_of = {member: key for key, members in cells.items() for member in members if key != str(member)}
    items, placed = [], set()
    for path in files:
        key = key_of.get(path)
        if key is None:
            items.append(path)
        elif key not in placed:
            placed.add(key)
            items.append(CellFiles(key, tuple(str(member) for member in cells[key])))
    return items


def _classify_read_folder(folder: Path, snippets: Snippets, kwargs: dict) -> pd.DataFrame:
    """:func:`classify_snippets` of a CSV folder already read, with the options of :func:`classify_file`
    that apply to it; a failure becomes the folder's error row."""
    options = {
        key: kwargs[key]
        for key in (
            "polarity",
            "max_spikes_per_cell",
            "seed",
            "model_folder",
            "method",
            "trust_model",
            "report_dir",
            "nwb_dir",
            "nwb_metadata",
            "phy_dir",
            "overwrite",
            "rig_session",
        )
        if key in kwargs
    }
    return _guarded(
        folder, lambda: classify_snippets(snippets, file=folder, return_analyzer=True, **options), return_analyzer=False
    )


def _assemble(files, done: dict, missing: str) -> pd.DataFrame:
    parts = [done[i] if i in done else error_row(path, missing) for i, path in enumerate(files)]
    return tidy(pd.concat(parts, ignore_index=True))


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
    overwrite: bool = False,
    **classify_kwargs,
) -> Path:
    """Plots and ``index.html`` for SortingAnalyzers, saved analyzer folders or .abf files (or folders of
    them), mixed as you like; returns the path of ``index.html``.

    An analyzer without the ``serotonergic`` extension is classified first (``model_folder``, ``method``,
    ``trust_model``); .abf files go through :func:`spikeinterface_sero.pipeline.classify_file` with those and
    ``classify_kwargs`` (detection options), and a file that fails appears as a red row.

    The report is written by one writer at a time, into a temporary sibling folder that takes the place of
    ``out_dir`` at the end (:func:`~spikeinterface_sero.files.whole_folder`): a kill leaves the old report or
    the new one, never half. An ``out_dir`` that exists and is not empty is replaced only with
    ``overwrite=True`` (which also lets the .abf files' exports replace theirs).

    Raises
    ------
    SeroError
        ``out_dir`` cannot be written, another process is writing it, or it is not empty and ``overwrite`` is
        False.
    """
    items = analyzers_or_paths
    if isinstance(items, (str, os.PathLike)) or hasattr(items, "unit_ids"):
        items = [items]
    options = dict(model_folder=model_folder, method=method, trust_model=trust_model)
    out_dir = Path(out_dir).expanduser().absolute()
    with whole_folder(out_dir, overwrite=overwrite, what="report folder", flag="out_dir") as temporary:
        parts = []
        for i, item in enumerate(items):
            if isinstance(item, (str, os.PathLike)) and not _is_analyzer_folder(Path(item)):
                for f in expand_inputs(item):
                    parts.append(
                        classify_file(f, report_dir=temporary, overwrite=overwrite, **options, **classify_kwargs)
                    )
                continue
            analyzer = load_sorting_analyzer(item) if isinstance(item, (str, os.PathLike)) else item
            if not analyzer.has_extension("serotonergic"):
                analyzer.compute("serotonergic", **options)
            file = _analyzer_file(analyzer, i)
            parts.append(results_table(analyzer, file=file))
            write_cell_reports(analyzer, temporary, file=file, dpi=dpi)
        table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=RESULT_COLUMNS)
        write_summary_html(table, temporary, title=title)
    return out_dir / "index.html"
