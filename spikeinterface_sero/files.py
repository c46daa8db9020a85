"""Output files: checked before any work, written atomically, never overwritten without being asked."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime
import errno
import glob
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from .errors import SeroError

__all__ = [
    "check_output_path",
    "check_output_folder",
    "check_writable",
    "atomic_path",
    "atomic_folder",
    "output_lock",
    "whole_folder",
    "fallback_paths",
    "append_line",
    "file_mode",
]


def check_output_path(
    path,
    *,
    overwrite: bool = False,
    suffixes: Sequence[str] | None = None,
    what: str = "output",
    overwrite_hint: str = "overwrite=True",
) -> Path:
    """The output path, checked before any work starts.

    Parameters
    ----------
    path : str or Path
        Where the output will be written.
    overwrite : bool, default: False
        Whether an existing file may be replaced.
    suffixes : sequence of str or None, default: None
        The file name endings allowed (e.g. ``(".csv", ".json")``); None: any.
    what : str, default: "output"
        What the file is, for the messages.
    overwrite_hint : str, default: "overwrite=True"
        How the caller asks for an overwrite, in the words of its interface (e.g. ``--overwrite``).

    Returns
    -------
    Path
        The path, absolute.

    Raises
    ------
    SeroError
        The suffix is not allowed, the file exists (and ``overwrite`` is False) or is a folder, the folder
        does not exist or cannot be written to.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise SeroError(f"{path} is a folder; the {what} must be a file name.")
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise SeroError(f"{path.name}: the {what} must end in {', '.join(suffixes)}.")
    if path.exists() and not overwrite:
        raise SeroError(f"{path} exists; pass {overwrite_hint} to replace it, or choose another name.")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise SeroError(f"the folder {parent} does not exist: create it first, or choose another {what} path.")
    check_writable(parent, what)
    return path.absolute()


def check_output_folder(path, *, what: str = "output folder") -> Path:
    """An output folder, checked before any work: it is a folder (or can be made in an existing one) and a
    file can really be written there (a temporary file is created and removed).

    Parameters
    ----------
    path : str or Path
        The folder; it need not exist yet, but its parent must.
    what : str, default: "output folder"
        What the folder is, for the messages (the flag from the CLI).

    Returns
    -------
    Path
        The folder, absolute.

    Raises
    ------
    SeroError
        ``path`` is a file, its parent does not exist, or nothing can be written there.
    """
    path = Path(path).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise SeroError(f"{path} is a file; the {what} must be a folder.")
    if not path.exists() and not path.parent.is_dir():
        raise SeroError(f"the folder {path.parent} does not exist: create it first, or choose another {what}.")
    check_writable(path if path.exists() else path.parent, what)
    return path


def check_writable(folder, what: str = "output") -> None:
    """Prove that a file can be written into ``folder`` by creating and removing a real temporary file there
    (permissions alone do not tell: a read-only mount, a pseudo filesystem such as /proc or /sys, a quota).

    Raises
    ------
    SeroError
        Nothing can be written there; the message names the folder and the system's reason.
    """
    try:
        descriptor, probe = tempfile.mkstemp(prefix=".sero-probe-", dir=folder)
    except OSError as e:
        reason = "no permission" if e.errno in (errno.EACCES, errno.EPERM) else (e.strerror or type(e).__name__)
        raise SeroError(f"cannot write the {what} into {folder} ({reason}): choose another folder.") from None
    os.close(descriptor)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def file_mode() -> int:
    """The mode ``open()`` gives a new file under this process's umask (0666 less the umask)."""
    return 0o666 & ~_umask()


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: read the umask by setting it, and put it back at once
    os.umask(mask)
    return mask


def fallback_paths(name: str) -> list[Path]:
    """Where a table goes when its own path cannot be written at the end of a run (a full disk): new
    time-stamped files in the current folder, the home folder and the temporary folder, to be tried in that
    order (they may lie on other disks)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    stem, suffix = os.path.splitext(Path(name).name)
    candidates = []
    for folder in (Path.cwd(), Path.home(), Path(tempfile.gettempdir())):
        candidate = folder / f"{stem}-saved-{stamp}-{os.getpid()}{suffix}"
        if candidate not in candidates and not candidate.exists():
            candidates.append(candidate)
    return candidates


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """A temporary path in the same folder as ``path``; on success it is flushed to disk and renamed to
    ``path`` in one step, so a crash leaves either the old file or the new one, never a half file.

    >>> with atomic_path("results.csv") as tmp:
    ...     table.to_csv(tmp)
    """
    path = Path(path)
    _remove_stale_parts(path)
    # the temporary keeps the file's own suffix (``.r.nwb.x1y2.part.nwb``): writers such as pynwb check it
    # the name holds the writer's pid, so a later writer knows a killed writer's leftover from a live one's
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}-", suffix=_PART + path.suffix, dir=path.parent
    )
    os.close(descriptor)
    temporary = Path(temporary)
    try:
        os.chmod(temporary, file_mode())  # mkstemp makes it 0600: the user's umask decides, as for open()
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(path, *, overwrite: bool = False) -> Iterator[Path]:
    """A temporary sibling folder of ``path``; on success it takes the place of ``path`` whole (an existing
    ``path`` is swapped out in one step where the system can, then removed), so a kill leaves the old folder
    or the new one, never half of one.

    Parameters
    ----------
    path : str or Path
        The folder to write.
    overwrite : bool, default: False
        Replace an existing ``path``; without it an existing one raises SeroError before anything is written.
    """
    path = Path(path).absolute()
    if path.exists() and not overwrite:
        raise SeroError(f"{path} exists; pass overwrite=True to replace it, or choose another name.")
    _remove_stale_parts(path)
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}-", suffix=_PART, dir=path.parent))
    try:
        os.chmod(temporary, 0o777 & ~_umask())  # mkdtemp makes it 0700: the user's umask decides, as for mkdir
        yield temporary
        _sync_tree(temporary)
        _swap_into_place(temporary, path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _sync_tree(folder: Path) -> None:
    for root, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError), open(os.path.join(root, name), "rb") as handle:
                os.fsync(handle.fileno())


_RENAME_EXCHANGE = 2  # renameat2's flag: swap two paths in one step (Linux 3.15)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step (Linux renameat2); False where the system cannot."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return False
    at_cwd = -100
    result = renameat2(at_cwd, os.fsencode(first), at_cwd, os.fsencode(second), _RENAME_EXCHANGE)
    return result == 0


def _swap_into_place(temporary: Path, path: Path) -> None:
    """``temporary`` renamed to ``path``; an existing ``path`` is exchanged with it and then removed."""
    if not path.exists():
        os.rename(temporary, path)
        return
    if _exchange(temporary, path):  # now ``temporary`` holds the old folder, removed by the caller
        return
    old = path.with_name(f".{path.name}.{os.getpid()}-old{_PART}")
    os.rename(path, old)
    os.rename(temporary, path)
    shutil.rmtree(old, ignore_errors=True)


_PART = ".part"
_STALE_S = 3600.0  # a temporary file untouched for an hour belongs to a writer that was killed


def _remove_stale_parts(path: Path) -> None:
    """Temporary files and folders a killed writer of ``path`` left behind (its cleanup cannot run under
    SIGKILL): those whose writer process is gone, or untouched for an hour."""
    now = time.time()
    for part in path.parent.glob(f".{glob.escape(path.name)}.*{_PART}*"):
        try:
            if _writer_alive(part.name[len(path.name) + 2 :]) and now - part.stat().st_mtime <= _STALE_S:
                continue
            if part.is_dir():
                shutil.rmtree(part, ignore_errors=True)
            else:
                part.unlink()
        except OSError:  # gone already, or not ours to remove
            pass


def _writer_alive(tail: str) -> bool:
    """Whether the process whose pid starts ``tail`` (``<pid>-...``) still runs; True when no pid is there."""
    pid = tail.split("-", 1)[0]
    return not pid.isdigit() or pid_alive(int(pid))


def pid_alive(pid: int) -> bool:
    """Whether a process of this id runs on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


@contextlib.contextmanager
def output_lock(path, *, what: str = "output", flag: str = "the output") -> Iterator[Path]:
    """One writer per output: a lock file ``.<name>.lock`` beside ``path``, made with O_EXCL and holding the
    writer's pid, removed at the end. A lock whose process is gone (killed) is taken over. The thread that
    holds the lock may take it again (the CLI holds its table's lock for the run, and the table writer takes
    it too); another thread of the same process is refused like another process.

    Parameters
    ----------
    path : str or Path
        The output file or folder.
    what : str, default: "output"
        What the output is, for the messages.
    flag : str, default: "the output"
        The argument or flag that named ``path`` in the caller's interface (``--out``, ``path``).

    Raises
    ------
    SeroError
        Another running process, or another thread of this one, holds the lock; the message names ``flag``.
    """
    path = Path(path).absolute()
    lock = path.with_name(f".{path.name}.lock")
    if not _claim(lock, path, flag):
        try:
            _take_lock(lock, path, what, flag)
        except BaseException:
            _release(lock)
            raise
    try:
        yield lock
    finally:
        if _release(lock) and _lock_holder(lock) == os.getpid():
            with contextlib.suppress(OSError):
                lock.unlink()


_HELD: dict[Path, list[int]] = {}  # lock file -> [thread holding it, times taken], in this process
_HELD_GUARD = threading.Lock()


def _claim(lock: Path, path: Path, flag: str) -> bool:
    """Note that this thread takes ``lock``; True when it held it already (taken again, nothing to do)."""
    with _HELD_GUARD:
        held = _HELD.get(lock)
        if held is None:
            _HELD[lock] = [threading.get_ident(), 1]
            return False
        if held[0] != threading.get_ident():
            raise SeroError(f"{path} is being written by another thread of this process; choose another {flag}.")
        held[1] += 1
        return True


def _release(lock: Path) -> bool:
    """This thread gives ``lock`` back once; True when it no longer holds it at all."""
    with _HELD_GUARD:
        held = _HELD[lock]
        held[1] -= 1
        if held[1] == 0:
            del _HELD[lock]
        return held[1] == 0


def _take_lock(lock: Path, path: Path, what: str, flag: str) -> None:
    """Make the lock file with this process's pid; a dead writer's lock is taken over."""
    for _ in range(3):
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, file_mode())
        except FileExistsError:
            holder = _lock_holder(lock)
            if holder is not None and pid_alive(holder):
                raise SeroError(
                    f"another sero process (pid {holder}) is writing {path}; wait for it to finish, or choose "
                    f"another {flag}."
                ) from None
            with contextlib.suppress(FileNotFoundError):  # a dead writer's lock: taken over
                lock.unlink()
            continue
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(f"{os.getpid()}\n")
        except OSError as e:  # a full disk: the lock cannot say whose it is
            lock.unlink(missing_ok=True)
            raise SeroError(
                f"cannot write the lock file {lock} ({e.strerror or e}): free some space, or choose another {flag}."
            ) from None
        return
    raise SeroError(f"cannot take the lock {lock} of the {what}; remove it if no sero process is running.")


@contextlib.contextmanager
def whole_folder(
    path,
    *,
    overwrite: bool = False,
    what: str = "output folder",
    flag: str = "the output folder",
    overwrite_hint: str = "overwrite=True",
) -> Iterator[Path]:
    """One writer, written whole: a folder output (a report) checked (:func:`check_output_folder`), locked
    (:func:`output_lock`), refused when it exists and is not empty unless ``overwrite``, and written into a
    temporary sibling that takes its place at the end (:func:`atomic_folder`): a kill leaves the old folder
    or the new one, never half.

    Parameters
    ----------
    path : str or Path
        The folder.
    overwrite : bool, default: False
        Replace an existing, non-empty folder.
    what, flag, overwrite_hint : str
        What the folder is, the argument or flag that named it, and how the caller asks for an overwrite, in
        the words of the caller's interface (``--report``, ``--overwrite``).

    Yields
    ------
    Path
        The temporary folder to write into.

    Raises
    ------
    SeroError
        ``path`` cannot be written, another writer holds it, or it is not empty and ``overwrite`` is False.
    """
    path = check_output_folder(path, what=what)
    with output_lock(path, what=what, flag=flag):
        if path.is_dir() and any(path.iterdir()) and not overwrite:
            raise SeroError(
                f"{path} is not empty (an earlier {what}?); pass {overwrite_hint} to replace it, or choose another "
                f"{flag}."
            )
        with atomic_folder(path, overwrite=True) as temporary:
            yield temporary


def _lock_holder(lock: Path) -> int | None:
    """The pid in a lock file; a lock just made may not hold it yet, so an empty one is read again briefly."""
    for _ in range(20):
        try:
            text = lock.read_text().strip()
        except OSError:
            return None
        if text.isdigit():
            return int(text)
        time.sleep(0.05)
    return None


def append_line(path, line: str) -> None:
    """Append one whole line (with its newline) and flush it to disk; a file whose last line was torn by a
    crash gets a newline first, so the new line never glues onto the half one."""
    path = Path(path)
    data = line if line.endswith("\n") else line + "\n"
    with open(path, "ab+") as handle:
        if handle.tell() > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                data = "\n" + data
        handle.write(data.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
