"""The ``sero`` command: one module per subcommand, each with ``add_parser(subparsers)`` setting ``run``.

Exit status: 0 on success, 1 when some input files failed (the others were processed), 2 on a usage or
input error (one line on stderr saying what is wrong and what to do).
"""

from __future__ import annotations

import os

os.environ.setdefault(
    "TF_CPP_MIN_LOG_LEVEL", "3"
)  # the command's output is the user's; TensorFlow's C++ chatter is not

import argparse  # noqa: E402
import sys  # noqa: E402

from .._version import __version__  # noqa: E402
from ..errors import SeroError  # noqa: E402
from . import adapt, classify, demo, evaluate, import_models, info, snippets, train, validate, watch  # noqa: E402
from .common import command_warnings, in_cli_words  # noqa: E402

__all__ = ["main", "build_parser", "COMMANDS"]

#: every subcommand, in the order of ``sero --help``: a module with NAME, add_parser(subparsers) and run(args);
#: NEEDS_TENSORFLOW = True where it builds Keras models
COMMANDS = [snippets, info, classify, import_models, demo, watch, train, evaluate, validate, adapt]

# commands that build Keras models (classify, watch, evaluate and demo run the numpy engine: no TensorFlow)
_NEEDS_TF = {command.NAME for command in COMMANDS if getattr(command, "NEEDS_TENSORFLOW", False)}


def build_parser() -> argparse.ArgumentParser:
    """The ``sero`` argument parser with every command of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="sero",
        description="Serotonergic / non-serotonergic classification of cell-attached action currents "
        "(Corradetti et al. 2024) on SpikeInterface.",
    )
    parser.add_argument("--version", action="version", version=f"spikeinterface-sero {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def _quiet_import_tensorflow() -> None:
    """Import TensorFlow with its C++ start-up log lines (oneDNN, CUDA probing) kept off the terminal: they
    are printed before any log level applies. A failing import still raises its Python exception."""
    if "tensorflow" in sys.modules:
        return
    try:
        saved = os.dup(2)
    except OSError:
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            import tensorflow  # noqa: F401
    except Exception:
        pass  # the real import later raises with its message visible
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    """Run one ``sero`` command; returns its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    with command_warnings(args.command):  # put back when the command returns
        return _run_command(args)


def _run_command(args) -> int:
    """The command's run, its errors in one line on stderr and its exit status."""
    if args.command in _NEEDS_TF:
        if not getattr(args, "quiet", False) and "tensorflow" not in sys.modules:
            print(f"sero {args.command}: loading TensorFlow ...", file=sys.stderr, flush=True)  # seconds of silence
        _quiet_import_tensorflow()
    try:
        return int(args.run(args) or 0)
    except SeroError as e:
        print(f"sero {args.command}: error: {in_cli_words(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # the system refused a read or a write the checks could not foresee: one line
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        print(f"sero {args.command}: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
