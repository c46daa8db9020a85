"""The batch engines under :func:`~spikeinterface_sero.pipeline.classify_files`: one function over many files in
this process (``"loop"``), in worker processes on this machine (``"joblib"``) or on a ``dask.distributed``
cluster (``"dask"``), with the thread limits of the workers. Whatever stops a run (Ctrl-C, SIGTERM, a worker
that dies, a scheduler that is lost), the rows of the finished files are kept; ``docs/tutorial.md`` says how.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .errors import ParameterError, SeroError
from .export import error_row
from .model.numpy_engine import default_threads

__all__ = [
    "ENGINES",
    "BatchInterrupted",
    "check_batch_options",
    "run_files",
    "run_in_processes",
    "run_on_dask",
    "worker_threads",
    "thread_environment",
    "WORKER_DIED",
    "SCHEDULER_LOST",
]

#: the engines, as SpikeInterface's ``run_sorter_jobs`` names them
ENGINES = ("loop", "joblib", "dask")

#: the error row of a file whose worker process died on it
WORKER_DIED = "the worker process died on this file (killed, or out of memory); try --n-jobs 1 or more memory"

#: the error row of a file not finished when the Dask scheduler was lost
SCHEDULER_LOST = (
    "the Dask scheduler was lost before this file was finished; rerun these files (the finished files' rows are kept)"
)


class BatchInterrupted(SeroError):
    """The run was interrupted (Ctrl-C, SIGTERM); ``table`` holds the rows of the files finished so far."""

    def __init__(self, table: pd.DataFrame):
        super().__init__(f"interrupted: {int((table['error'] == '').sum())} rows of finished files kept")
        self.table = table


def check_batch_options(n_jobs, max_threads_per_worker, engine, scheduler) -> str:
    """The engine a run uses, its options checked before any work (the words of the Python API).

    Raises
    ------
    ParameterError
        ``n_jobs`` is 0 or not an integer, ``max_threads_per_worker`` not a positive integer, ``engine`` unknown,
        or ``engine="dask"`` without a ``scheduler``.
    """
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise ParameterError(f"n_jobs must be a non-zero integer (1 = one process, -1 = every core), not {n_jobs!r}.")
    if max_threads_per_worker is not None and (
        isinstance(max_threads_per_worker, bool)
        or not isinstance(max_threads_per_worker, (int, np.integer))
        or max_threads_per_worker < 1
    ):
        raise ParameterError(
            f"max_threads_per_worker must be a positive integer or None (the cores shared evenly between the "
            f"workers), not {max_threads_per_worker!r}."
        )
    if engine is None:
        engine = "dask" if scheduler is not None else ("joblib" if n_jobs != 1 else "loop")
    if engine not in ENGINES:
        raise ParameterError(f"engine must be 'loop', 'joblib' or 'dask', not {engine!r}.")
    if engine == "dask" and scheduler is None:
        raise ParameterError(
            "engine='dask' needs scheduler=<address of a dask.distributed scheduler> (CLI: --scheduler tcp://host:8786)."
        )
    return engine


def run_files(
    function,
    files,
    kwargs: dict,
    done: dict,
    *,
    engine: str,
    n_jobs: int = 1,
    max_threads_per_worker: int | None = None,
    scheduler=None,
    progress: bool = False,
) -> None:
    """``done[i] = function(files[i], **kwargs)`` for every work item, with ``engine`` (checked by
    :func:`check_batch_options`); ``done`` fills as items finish, so a caller that catches an interruption
    still holds every finished item's rows. A work item is a path, or any picklable object whose ``str`` names
    it in an error row and whose ``files`` (optional) are the paths it reads (to start the largest first)."""
    if engine == "loop":
        for index, path in enumerate(tqdm(files, desc="classify", unit="file", disable=not progress or len(files) < 2)):
            done[index] = function(path, **kwargs)
    elif engine == "joblib":
        with tqdm(total=len(files), desc="classify", unit="file", disable=not progress) as bar:
            run_in_processes(
                function, files, n_jobs, kwargs, done, bar=bar, max_threads_per_worker=max_threads_per_worker
            )
    else:
        run_on_dask(function, files, scheduler, kwargs, done)


# ------------------------------------------------------------------------------- worker processes (joblib)
def run_in_processes(
    function, files, n_jobs: int, kwargs: dict, done: dict, bar=None, max_threads_per_worker: int | None = None
) -> None:
    """Worker processes (forked, or loky as joblib); a worker that dies (killed, out of memory) costs only its
    file, whose row says :data:`WORKER_DIED`."""
    workers = max(1, min(os.cpu_count() if n_jobs < 0 else n_jobs, len(files)))
    threads = worker_threads(workers, max_threads_per_worker)
    # first all files in parallel; a dead worker breaks the whole pool, so the files it took with it are
    # then run one at a time, each in a fresh worker, and only a file that kills its own worker is lost
    broken = _submit_all(function, files, range(len(files)), kwargs, done, workers, threads, bar)
    for index in broken:
        if _submit_all(function, files, [index], kwargs, done, 1, threads, bar):
            done[index] = error_row(files[index], WORKER_DIED)
            if bar is not None:
                bar.update(1)


def _submit_all(function, files, indices, kwargs: dict, done: dict, workers: int, threads: int, bar=None) -> list[int]:
    """Run ``function`` on the files in worker processes of ``threads`` threads each (``bar``, a tqdm bar,
    advances per finished file); the indices whose worker died."""
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    # the largest files first, so that no worker is left with a long file at the end (LPT scheduling)
    indices = sorted(indices, key=lambda i: -_size(files[i]))
    executor = _executor(max(1, min(workers, len(indices))), threads)
    futures = {executor.submit(function, files[i], **kwargs): i for i in indices}
    broken = []
    try:
        for future in as_completed(futures):
            try:
                done[futures[future]] = future.result()
                if bar is not None:
                    bar.update(1)
            except (TerminatedWorkerError, BrokenProcessPool):
                broken.append(futures[future])
    except BaseException:  # Ctrl-C, SIGTERM: the workers stop with this process, not after their files
        _stop_workers(executor)
        raise
    finally:
        if isinstance(executor, ProcessPoolExecutor):
            executor.shutdown(wait=not broken, cancel_futures=True)
            gc.unfreeze()
    return sorted(broken)


def _executor(workers: int, threads: int):
    """Forked workers while TensorFlow is not loaded (warm: they start with this process's imports and loaded
    model), else fresh loky workers."""
    if "tensorflow" not in sys.modules and "fork" in multiprocessing.get_all_start_methods():
        # forking is safe here because TensorFlow is not loaded. gc.freeze(): the collector no longer visits
        # (and so writes to) the inherited objects, whose pages then stay shared instead of being copied
        gc.freeze()
        return ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("fork"), initializer=_limit_threads, initargs=(threads,)
        )
    from joblib.externals.loky import get_reusable_executor

    # TensorFlow's threads do not survive a fork: fresh loky workers, ``threads`` inference threads each
    return get_reusable_executor(max_workers=workers, env=thread_environment(threads), initializer=_ignore_interrupts)


def _stop_workers(executor) -> None:
    """End the worker processes of ``executor`` now (their unfinished files are lost, the finished kept)."""
    if isinstance(executor, ProcessPoolExecutor):
        for process in list((getattr(executor, "_processes", None) or {}).values()):
            process.terminate()
        executor.shutdown(wait=False, cancel_futures=True)
    else:  # loky
        executor.shutdown(wait=False, kill_workers=True)


def _size(item) -> int:
    """The bytes a work item reads: a path's, or the sum of its ``files``' (a cell of several files)."""
    total = 0
    for path in getattr(item, "files", (item,)):
        try:
            total += os.stat(path).st_size
        except OSError:  # the function reports it
            pass
    return total


def worker_threads(workers: int, max_threads_per_worker: int | None = None) -> int:
    """Inference and BLAS threads of each of ``workers`` worker processes: ``max_threads_per_worker``, else
    the cores this process may use (:func:`~spikeinterface_sero.model.numpy_engine.default_threads`) shared
    evenly, at least one each; the workers are the parallelism, their threads use the cores left over."""
    if max_threads_per_worker is not None:
        return int(max_threads_per_worker)
    return max(1, default_threads() // max(1, int(workers)))


def thread_environment(threads: int) -> dict:
    """The environment that gives a fresh process ``threads`` inference and BLAS threads."""
    value = str(int(threads))
    return {name: value for name in ("SERO_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C to the parent (which stops them) and end at SIGTERM without a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _limit_threads(threads: int) -> None:
    """Initializer of a forked worker: its BLAS pools already exist, so they are limited through threadpoolctl."""
    _ignore_interrupts()
    os.environ.update(thread_environment(threads))
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:  # without threadpoolctl the numpy engine still runs ``threads`` threads (SERO_NUM_THREADS)
        pass


# ------------------------------------------------------------------------------- a Dask cluster
def run_on_dask(function, files, scheduler, kwargs: dict, done: dict) -> None:
    """``function`` on every file on a ``dask.distributed`` cluster (``scheduler``: its address or a
    ``Client``), the rows gathered as files finish. A worker that fails costs its file; a lost scheduler
    costs the files not finished by then, whose rows say :data:`SCHEDULER_LOST`: the client learns of the
    loss when its connection closes (at once when the scheduler's process dies; within
    ``distributed.comm.timeouts.tcp``, 30 s by default, when its machine vanishes from the network)."""
    from dask.distributed import Client
    from dask.distributed import as_completed as dask_completed

    client = scheduler if isinstance(scheduler, Client) else _connect(scheduler)
    try:
        items = [os.fspath(f) if isinstance(f, os.PathLike) else f for f in files]
        futures = client.map(function, items, pure=False, **kwargs)
        position = {future.key: index for index, future in enumerate(futures)}
        try:
            for future in dask_completed(futures):
                index = position[future.key]
                done[index] = _dask_rows(future, files[index])
        except BaseException:  # Ctrl-C, SIGTERM: the cluster stops working for this run
            with contextlib.suppress(Exception):  # a lost scheduler cannot cancel: nothing runs then
                client.cancel(futures)
            raise
    except (OSError, TimeoutError) as e:  # the scheduler went while the files were sent or gathered
        if not _lost(client, e):
            raise
        for index, path in enumerate(files):
            done.setdefault(index, error_row(path, SCHEDULER_LOST))
    finally:
        if client is not scheduler:
            with _quiet_dask_logs():  # a lost scheduler: its reconnection attempt ends here, said by the rows
                client.close()


def _dask_rows(future, path):
    """The rows of a finished Dask future; the file's error row when the worker failed or the scheduler was lost."""
    try:
        return future.result()
    except Exception as e:  # this file only (a cancelled future's error is an Exception in concurrent.futures)
        if getattr(e, "reason", None) == "scheduler-connection-lost":
            return error_row(path, SCHEDULER_LOST)
        return error_row(path, f"the Dask worker failed on this file ({type(e).__name__}: {e})")


def _lost(client, error: BaseException) -> bool:
    """Whether ``error`` came from losing the scheduler (the client is no longer connected)."""
    return getattr(client, "status", "running") != "running" or type(error).__name__ == "CommClosedError"


@contextlib.contextmanager
def _quiet_dask_logs():
    """distributed's own loggers silenced: the client's failed reconnection would print tracebacks."""
    loggers = [logging.getLogger(name) for name in ("distributed", "distributed.client", "distributed.utils")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _connect(scheduler):
    from dask.distributed import Client

    try:
        return Client(scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as e:
        raise SeroError(
            f"cannot reach the Dask scheduler at {scheduler!r} ({type(e).__name__}: {e}); check the address "
            "(CLI: --scheduler tcp://host:8786) and that the scheduler is running."
        ) from None
