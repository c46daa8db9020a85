"""What several commands share: the detection and model options, the table printer, the CLI's words."""

from __future__ import annotations

import argparse
import contextlib
import re
import signal
import sys
import threading
import warnings
from pathlib import Path

import pandas as pd

from ..arguments import check_integer, check_number
from ..constants import DEFAULT_DEAD_TIME_MS, DEFAULT_THRESHOLD_PA
from ..errors import ParameterError
from ..grouping import check_group
from ..pipeline import expand_inputs
from ..session_runs import SESSION_RULES
from ..text import printable

DEMO_NOTE = (
    "NOTE: labels from the bundled DEMONSTRATION model (trained on simulated recordings) - not for "
    "scientific conclusions; pass --model DIR with a real model."
)


#: the largest --mad: a threshold of 1000 noise MADs crosses nothing a recording can hold
MAX_MAD = 1000.0
#: the smallest --mad: below one noise MAD the noise itself crosses the threshold
MIN_MAD = 1.0


@contextlib.contextmanager
def command_warnings(command: str):
    """While a command runs, its warnings in one line, in the command's name (``sero COMMAND: warning: ...``),
    without the library's source line; the process's own format is put back when the command returns, so
    ``cli.main`` called from Python leaves later warnings as they were."""
    saved = warnings.formatwarning
    warnings.formatwarning = lambda message, category, *rest, **kw: f"sero {command}: warning: {message}\n"
    try:
        yield
    finally:
        warnings.formatwarning = saved


def expand_files(items: list[str]) -> list[Path]:
    """The input files the command line names (folders expanded)."""
    return expand_inputs(items)


def progress(iterable, total: int, desc: str, enabled: bool):
    """A tqdm progress bar on stderr, shown for two or more files."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="file", disable=not enabled or total < 2, file=sys.stderr)


def detection_kwargs(args) -> dict:
    """The detector's keyword arguments from the detection flags."""
    kw = dict(polarity=args.polarity, dead_time_ms=args.dead_time_ms)
    if args.mad is not None:
        kw["mad_multiplier"] = args.mad
    else:
        kw["threshold"] = (
            args.threshold
            if args.threshold is not None
            else (DEFAULT_THRESHOLD_PA if args.polarity == "negative" else -DEFAULT_THRESHOLD_PA)
        )
    return kw


def add_detection_args(p: argparse.ArgumentParser) -> None:
    """The detection flags of snippets, classify and watch."""
    g = p.add_argument_group("detection (the paper: downward crossing of -50 pA from the local baseline)")
    g.add_argument(
        "--channel",
        action="append",
        default=None,
        help="channel id or name to use (repeatable); default: every current channel",
    )
    g.add_argument(
        "--threshold",
        type=float,
        default=None,
        help=f"threshold in pA from the baseline; None: {DEFAULT_THRESHOLD_PA:g}, or {-DEFAULT_THRESHOLD_PA:g} with --polarity positive",
    )
    g.add_argument(
        "--mad",
        type=float,
        default=None,
        metavar="K",
        help=f"noise-relative threshold: K x MAD noise instead of --threshold ({MIN_MAD:g} to {MAX_MAD:g})",
    )
    g.add_argument(
        "--polarity", choices=["negative", "positive"], default="negative", help="'positive' for inverted recordings"
    )
    g.add_argument(
        "--dead-time-ms",
        type=float,
        default=DEFAULT_DEAD_TIME_MS,
        help="one trigger per spike within this time (ms)",
    )
    g.add_argument("--max-spikes", type=int, default=None, help="cap on spikes per cell, at least 1 (paper: 700)")
    g.add_argument("--seed", type=int, default=0, help="seed for the spike cap (0 to 2**32 - 1)")
    g.add_argument("--allow-low-rate", action="store_true", help="accept recordings below 20 kHz (approximate)")
    g.add_argument("--any-unit", action="store_true", help="accept a named channel whose unit is not a current")


def add_group_arg(p: argparse.ArgumentParser, what: str) -> None:
    """``--group REGEX`` (``sero classify``, ``sero watch``): per-sweep files grouped into one cell; ``what`` says
    what the cell's row is."""
    p.add_argument(
        "--group",
        default=None,
        metavar="REGEX",
        help="files whose names match REGEX with the same named group 'cell' are one cell, e.g. "
        f"'(?P<cell>.+)_\\d+\\.abf' (one file per sweep or trial; their sweeps the segments of one recording in "
        f"recording order; {what}; docs/live.md)",
    )


def add_sessions_arg(p: argparse.ArgumentParser) -> None:
    """``--sessions {day,none}`` (``sero classify``, ``sero watch``): the session check (docs/validate.md)."""
    p.add_argument(
        "--sessions",
        choices=SESSION_RULES,
        default="day",
        help="the session check: 'day' (default) judges the cells of one folder recorded on one date together; "
        "when most are unlike every rig the model was validated on, none of them is reliable "
        "(session_unlike_validated_rigs; docs/validate.md); 'none' judges each cell alone",
    )


def check_group_flag(args):
    """``--group`` as a compiled pattern (or None); one error in --group words before any work."""
    return check_group(args.group, "--group")


def check_detection_flags(args) -> None:
    """Every detection flag checked before the first file is read (one ParameterError, in flag words)."""
    if args.max_spikes is not None:
        check_integer(args.max_spikes, "--max-spikes", minimum=1)
    check_integer(args.seed, "--seed", minimum=0, maximum=2**32 - 1)
    if args.mad is not None:
        check_number(args.mad, "--mad", minimum=MIN_MAD, maximum=MAX_MAD)
    if args.threshold is not None:
        check_number(args.threshold, "--threshold")
    for channel in args.channel or ():
        if not channel.strip():
            raise ParameterError("--channel must name a channel (its id or name), not an empty text.")


def add_model_args(p: argparse.ArgumentParser) -> None:
    """--model, --method and --trust-model."""
    p.add_argument(
        "--model",
        default=None,
        metavar="DIR",
        help="model folder (default: the bundled demonstration model, simulated data only)",
    )
    p.add_argument(
        "--method",
        choices=["cnn", "criteria"],
        default="cnn",
        help="'criteria' = classical criteria only (wide, slow, regular)",
    )
    p.add_argument(
        "--trust-model", action="store_true", help="allow a model that needs arbitrary code (Lambda layers) to load"
    )


def channel_arg(args):
    """None, one channel, or a list of them, from the repeatable --channel."""
    if not args.channel:
        return None
    return args.channel[0] if len(args.channel) == 1 else args.channel


def classify_kwargs(args) -> dict:
    """The keyword arguments of ``pipeline.classify_file`` from the detection and model flags."""
    det = detection_kwargs(args)
    return dict(
        model_folder=args.model,
        channel=channel_arg(args),
        threshold=det.get("threshold", DEFAULT_THRESHOLD_PA),
        mad_multiplier=det.get("mad_multiplier"),
        polarity=args.polarity,
        dead_time_ms=args.dead_time_ms,
        max_spikes_per_cell=args.max_spikes,
        seed=args.seed,
        allow_low_rate=args.allow_low_rate,
        allow_any_unit=args.any_unit,
        method=args.method,
        trust_model=args.trust_model,
    )


#: the short names of the two labels on the terminal
_SHORT = {"serotonergic": "SER", "non_serotonergic": "NSER"}


def call_text(row) -> str:
    """What a person reads for a cell: the label when the call is reliable, ``UNSURE (leans SER, 0.70)``
    when it is not (from ``sero_call``, with the P(SER) it leans on), ``undetermined`` without spikes."""
    call = str(row.get("sero_call") or "")
    label = str(row.get("sero_label") or "")
    if not call:  # a table from before sero_call: reliable or not from sero_reliable
        call = label if is_true(row.get("sero_reliable")) or label not in _SHORT else "unsure"
    if call != "unsure":
        return printable(call)
    p = row.get("sero_probability")
    leaning = _SHORT.get(label, label)
    return f"UNSURE (leans {leaning}, {p:.2f})" if p == p and p is not None else f"UNSURE (leans {leaning})"


def is_true(v) -> bool:
    """True for a true value of a nullable boolean column; False for false, NA, None or NaN."""
    return False if v is None or pd.isna(v) else bool(v)


def print_table(header: list[str], rows: list[tuple]) -> None:
    """A plain-text table (pandas' ``to_string``), floats to 3 significant digits."""
    table = pd.DataFrame(rows, columns=header)
    print(
        table.to_string(index=False, justify="left", float_format=lambda v: f"{v:.3g}") if rows else "  ".join(header)
    )


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default when it has one worth saying (not None, not a switch's False)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text or not action.option_strings:
            return text
        return text + " (default: %(default)s)"


#: the keyword arguments of ``subparsers.add_parser`` every command uses
PARSER_STYLE = dict(formatter_class=DefaultsHelpFormatter)


#: the Python arguments library messages name, as the flags a CLI user types
_FLAGS = {
    "allow_any_unit=True": "--any-unit",
    "allow_low_rate=True": "--allow-low-rate",
    "overwrite=True": "--overwrite",
    "trust_model=True": "--trust-model",
    "trust=True": "--trust",
    "max_spikes_per_cell": "--max-spikes",
    "dead_time_ms": "--dead-time-ms",
    "mad_multiplier": "--mad",
    "max_threads_per_worker": "--threads-per-worker",
    "n_jobs": "--n-jobs",
    "model_folder": "--model",
    "settle_s": "--settle",
    "phy_dir": "--phy",
    "nwb_dir": "--nwb",
    "write_nwb": "--nwb",
    "channel=": "--channel ",
    "out=": "--out ",
    "out_dir": "--out",
    "scheduler=": "--scheduler ",
}


def in_cli_words(message: str) -> str:
    """A library message in the words of the command line: flags for Python arguments, no double hints."""
    message = re.sub(r"\s*\(CLI: [^)]*\)", "", message)  # the flag is named directly below
    message = re.sub(r"choose=\{[^}]*\}", "--choose K=FILE", message)
    message = re.sub(r", or pass on_bad='skip' to leave such files out", "", message)  # no such flag
    for argument, flag in _FLAGS.items():
        message = re.sub(rf"(?<![\w-]){re.escape(argument)}(?![\w])", flag, message)
    return message


def _terminate(signum, frame):
    raise KeyboardInterrupt


def stop_on_terminate(stack) -> None:
    """SIGTERM stops the command as Ctrl-C does (workers stopped, the finished rows kept and written, a
    summary printed): until ``stack`` closes, its handler raises KeyboardInterrupt in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    stack.callback(signal.signal, signal.SIGTERM, previous)


def add_labelled_cells_args(p) -> None:
    """The labelled cells of ``sero validate`` and ``sero adapt``: LABELS (or --table), or --analyzer with
    --curation."""
    p.add_argument(
        "labels",
        nargs="?",
        default=None,
        metavar="LABELS",
        help="the labelled cells: a table (CSV: file,label and optional channel, group or day, type), whose files "
        "are .abf files or folders of per-spike CSV files; or a folder of per-spike CSV files laid out by class "
        "(SER/, NSER/, SER_atypical/ ...)",
    )
    p.add_argument("--table", default=None, metavar="CSV", help="the labelled cells' table (as LABELS)")
    p.add_argument(
        "--analyzer",
        default=None,
        metavar="DIR",
        help="a saved SortingAnalyzer whose units --curation labels",
    )
    p.add_argument(
        "--curation",
        default=None,
        metavar="JSON",
        help="a SpikeInterface curation file labelling --analyzer's units (sero_manual_label)",
    )


def labelled_cells_given(args):
    """LABELS or --table (a path), or None when the cells are --analyzer's units labelled by --curation;
    ParameterError unless the labelled cells are given exactly once."""
    given = [name for name in ("labels", "table", "curation") if getattr(args, name) is not None]
    if len(given) != 1 or (args.curation is None) != (args.analyzer is None):
        raise ParameterError(
            "give the labelled cells once: as LABELS (a table, or a folder of per-spike CSV files laid out by "
            "class), as --table CSV, or as --analyzer DIR with --curation JSON."
        )
    return args.labels if args.labels is not None else args.table
