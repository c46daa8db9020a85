"""``sero classify``: the main job, every cell of the input files labelled, with the table and exports."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from ..constants import DEFAULT_MIN_SPIKES
from ..errors import SeroError
from ..export import TABLE_SUFFIXES, write_fallback, write_table
from ..files import check_output_folder, check_output_path, output_lock, whole_folder
from ..pipeline import BatchInterrupted, classify_files
from ..report import write_summary_html
from .common import (
    DEMO_NOTE,
    PARSER_STYLE,
    add_detection_args,
    add_group_arg,
    add_model_args,
    add_sessions_arg,
    call_text,
    check_detection_flags,
    check_group_flag,
    classify_kwargs,
    expand_files,
    in_cli_words,
    print_table,
    printable,
    stop_on_terminate,
)

NAME = "classify"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        NAME, **PARSER_STYLE, help="the main job: label every cell of .abf files serotonergic or not"
    )
    p.add_argument(
        "files",
        nargs="+",
        help=".abf files or folders of them, folders of the authors' per-spike CSV files (<cell>_trigger_<sample>"
        ".csv), or .npz snippet files (sero snippets); one row per cell; of the detection options only "
        "--polarity, --max-spikes and --seed apply to snippets",
    )
    p.add_argument("--out", default=None, help="results table (.csv, .tsv or .json)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing outputs: the --out table, the --report summary, --nwb files and --phy folders",
    )
    p.add_argument("--report", default=None, metavar="DIR", help="write per-cell plots and an HTML summary here")
    p.add_argument("--nwb", default=None, metavar="DIR", help="write one NWB file per recording here (<stem>.nwb)")
    p.add_argument("--phy", default=None, metavar="DIR", help="write one Phy folder per recording here (<stem>/)")
    add_group_arg(p, "one row per cell, file = the folder / cell; --nwb, --phy and --report named after the cell")
    add_sessions_arg(p)
    _add_nwb_metadata_args(p)
    _add_batch_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_args(p)
    add_detection_args(p)
    p.set_defaults(run=run)


def _add_nwb_metadata_args(p) -> None:
    g = p.add_argument_group("NWB metadata (with --nwb)")
    g.add_argument("--subject-id", default=None, help="the animal (writes an NWB Subject)")
    g.add_argument("--species", default=None, help='Latin binomial, e.g. "Mus musculus"')
    g.add_argument("--age", default=None, help="ISO 8601 duration, e.g. P30D")
    g.add_argument("--sex", default="U", choices=["M", "F", "U", "O"], help="the subject's sex")
    g.add_argument("--experimenter", default=None, help='"Last, First"')
    g.add_argument("--institution", default=None, help="where the recording was made")
    g.add_argument("--lab", default=None, help="the lab that made the recording")
    g.add_argument("--session-description", default=None, help="what the session was")


def _add_batch_args(p) -> None:
    p.add_argument("--n-jobs", type=int, default=1, help="files processed in parallel on this machine")
    p.add_argument(
        "--threads-per-worker",
        type=int,
        default=None,
        metavar="N",
        help="inference threads of each --n-jobs worker (default: the cores shared evenly between the workers)",
    )
    p.add_argument(
        "--engine",
        choices=["loop", "joblib", "dask"],
        default=None,
        help="batch engine (as SpikeInterface's run_sorter_jobs); default from --n-jobs/--scheduler",
    )
    p.add_argument("--scheduler", default=None, help="dask.distributed scheduler address, with --engine dask")


def _nwb_metadata(args) -> dict:
    metadata = dict(
        subject_id=args.subject_id,
        species=args.species,
        age=args.age,
        sex=args.sex,
        experimenter=args.experimenter,
        institution=args.institution,
        lab=args.lab,
    )
    if args.session_description:
        metadata["session_description"] = args.session_description
    return metadata


def _check_outputs(args) -> None:
    """Every output proven writable before any work (a file is created and removed there): a bad --out,
    --report, --nwb or --phy is found now, not after every file is done."""
    if args.out:
        check_output_path(
            args.out,
            overwrite=args.overwrite,
            suffixes=TABLE_SUFFIXES,
            what="--out table",
            overwrite_hint="--overwrite",
        )
    for flag, folder in (("--report", args.report), ("--nwb", args.nwb), ("--phy", args.phy)):
        if folder:
            check_output_folder(folder, what=f"{flag} folder")


def _report_folder(args):
    """The --report folder: one writer, written into a temporary sibling that takes its place at the end; an
    earlier report is replaced only with --overwrite."""
    return whole_folder(
        args.report,
        overwrite=args.overwrite,
        what="report folder",
        flag="--report folder",
        overwrite_hint="--overwrite",
    )


def run(args) -> int:
    check_detection_flags(args)
    group = check_group_flag(args)
    files = expand_files(args.files)
    _check_outputs(args)
    table, interrupted, saved, report_failed = None, False, None, False
    try:
        with contextlib.ExitStack() as stack:
            if args.out:  # one writer per table: a second run into the same --out is refused now
                stack.enter_context(output_lock(args.out, what="--out table", flag="--out"))
            stop_on_terminate(stack)
            report = stack.enter_context(_report_folder(args)) if args.report else None
            table, interrupted = _classify(files, args, report, group)
            saved = _save_table(table, args.out) if args.out else None
            if report is not None:
                write_summary_html(table, report)
    except OSError as e:  # the report, after the table was saved: said, never a traceback
        if table is None:
            raise
        print(f"sero classify: could not write the report {args.report} ({e.strerror or e})", file=sys.stderr)
        report_failed = True
    print_results(table)
    n_err, n_export = _print_notes(table, files)
    print(
        f"{len(table) - n_err} cell(s) from {len(files)} file(s)"
        + (f"; {n_err} file(s) failed" if n_err else "")
        + (f"; {n_export} export(s) failed" if n_export else "")
        + (f"; results in {saved}" if saved else "")
        + (f"; report in {args.report}" if args.report and not report_failed else "")
    )
    if interrupted:
        print("interrupted: the files finished so far are in the table", file=sys.stderr)
        return 130
    return 1 if n_err or n_export or report_failed or (args.out and saved != Path(args.out)) else 0


def _classify(files: list[Path], args, report, group) -> tuple:
    """(table, interrupted): every file's rows, or those finished when Ctrl-C or SIGTERM came."""
    kwargs = classify_kwargs(args)
    if report is not None:
        kwargs["report_dir"] = report
    if args.nwb or args.phy:
        kwargs.update(nwb_dir=args.nwb, phy_dir=args.phy, overwrite=args.overwrite, nwb_metadata=_nwb_metadata(args))
    try:
        table = classify_files(
            files,
            group=group,
            sessions=args.sessions,
            n_jobs=args.n_jobs,
            max_threads_per_worker=args.threads_per_worker,
            engine=args.engine,
            scheduler=args.scheduler,
            progress=not args.quiet,
            **kwargs,
        )
    except BatchInterrupted as stop:  # Ctrl-C or SIGTERM: keep what is done
        return stop.table, True
    return table, False


def _save_table(table, out) -> Path:
    """The table at --out; when that fails at the end (a full disk), at a fallback path, said on stderr."""
    try:
        return write_table(table, out, overwrite=True)
    except (OSError, SeroError) as e:
        fallback = write_fallback(table, out)
        print(
            f"sero classify: could not write {out} ({getattr(e, 'strerror', None) or e}); the results are in {fallback}",
            file=sys.stderr,
        )
        return fallback


def _print_notes(table, files: list[Path]) -> tuple[int, int]:
    """The notes under the table and the failed files and exports; returns their numbers."""
    n_err = int((table["error"] != "").sum())
    ok_rows = table[table["error"] == ""]
    if (ok_rows["sero_call"] == "unsure").any():
        print(
            "UNSURE: not a reliable call (it leans to the label named, with its P(SER)): the quality column names the "
            f"checks an action current failed; otherwise fewer than {DEFAULT_MIN_SPIKES} spikes, input unlike the "
            "training data, a cell or session unlike the rigs the model was validated on, or a conformal set that "
            "does not hold the label alone (sero_unsure_reasons in the table says which)"
        )
    if any(path.is_dir() for path in files):
        print(
            "CSV folders: spike times from the trigger samples in the file names; the files do not say how long "
            "the recording was, so firing_rate_hz is NaN (CV, LV and UDI are computed)"
        )
    if table["model"].astype(str).str.startswith("DEMO").any():
        print(DEMO_NOTE)
    for _, r in table[table["error"] != ""].iterrows():
        print(f"FAILED {printable(r['file'])}: {printable(in_cli_words(r['error']))}", file=sys.stderr)
    exports = table[(table["error"] == "") & (table["export_error"] != "")].drop_duplicates("file")
    for _, r in exports.iterrows():
        print(f"EXPORT FAILED {printable(r['file'])}: {printable(in_cli_words(r['export_error']))}", file=sys.stderr)
    return n_err, len(exports)


def print_results(table) -> None:
    """One line per cell: the call (UNSURE with its leaning when not reliable), P(SER) with its interval,
    type, rate and quality."""
    rows = []
    for _, r in table.iterrows():
        name = printable(Path(str(r["file"])).name)
        if r["error"]:
            rows.append((name, "-", "-", "ERROR", "-", "-", "-", "-", "-", "-"))
            continue
        p, lo, hi = r["sero_probability"], r["sero_probability_low"], r["sero_probability_high"]
        rows.append(
            (
                name,
                printable(r["channel"]),
                int(r["n_spikes"]),
                call_text(r),
                f"{p:.2f} [{lo:.2f}-{hi:.2f}]" if p == p else "-",
                r["sero_type"],
                f"{r['firing_rate_hz']:.2f}",
                f"{r['cv_isi']:.2f}",
                f"{r['udi_ms']:.2f}",
                r.get("sero_quality", ""),
            )
        )
    print_table(
        ["file", "channel", "spikes", "call", "P(SER) [95% CI]", "type", "rate_Hz", "CV_ISI", "UDI_ms", "quality"],
        rows,
    )
