"""``sero watch``: each new .abf file of a folder classified while it is written and as soon as it is
complete; per-sweep files grouped into one cell with ``--group``."""

from __future__ import annotations

import contextlib
import datetime
import sys
from pathlib import Path

from ..arguments import check_integer, check_number
from ..errors import SeroError
from ..export import write_fallback
from ..model import load_model
from ..watch import RECORDING, watch_folder
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
    in_cli_words,
    printable,
    stop_on_terminate,
)

NAME = "watch"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        NAME, **PARSER_STYLE, help="classify each new .abf file in a folder as soon as it is completely written"
    )
    p.add_argument("folder", help="the folder the acquisition software saves into")
    p.add_argument("--out", default=None, help="results table (.csv) to append to (created if missing)")
    p.add_argument(
        "--report",
        default=None,
        metavar="DIR",
        help="per-cell plots and a live HTML summary here; without --out the rows also go to DIR/results.csv, "
        "so a later session adds to the same summary",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=2.0,
        help="seconds a file must stay unchanged when its header does not say it is complete (default 2)",
    )
    p.add_argument(
        "--update",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="while a file is being written, classify the part written so far this often (default 5; 0: only "
        "finished files)",
    )
    add_group_arg(p, "the cell's row is updated as each file arrives")
    add_sessions_arg(p)
    p.add_argument(
        "--existing",
        action="store_true",
        help="also classify the files already there (those already in --out are skipped)",
    )
    p.add_argument("--recursive", action="store_true", help="also watch subfolders")
    p.add_argument("--polling", action="store_true", help="poll instead of OS notifications (network drives)")
    p.add_argument("--timeout", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    p.add_argument("--quiet", action="store_true", help="print only failures and the final summary")
    p.add_argument(
        "--serve",
        nargs="?",
        const=0,
        type=int,
        default=None,
        metavar="PORT",
        help="show every cell on a live page served on this computer only (127.0.0.1:PORT; no PORT: a free "
        "one), updated as files arrive (docs/live.md)",
    )
    add_model_args(p)
    add_detection_args(p)
    p.set_defaults(run=run)


class _Printer:
    """Prints each classified cell as it comes (the part of a file being recorded marked so), and counts
    cells and failed files (a cell updated, or a file failed again, counts once)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.classified: set[tuple] = set()
        self.failed: set[str] = set()

    @property
    def cells(self) -> int:
        return len(self.classified)

    def __call__(self, rows) -> None:
        stamp = datetime.datetime.now().strftime("%H:%M:%S")
        for _, r in rows.iterrows():
            name = printable(Path(str(r["file"])).name)
            if r["error"]:
                self.failed.add(str(r["file"]))
                print(f"{stamp}  FAILED {name}: {printable(in_cli_words(r['error']))}", flush=True)
                continue
            self.failed.discard(str(r["file"]))
            recording = r.get("acquisition") == RECORDING
            if not recording:
                self.classified.add((str(r["file"]), str(r["cell_id"])))
            if not self.quiet:
                print(f"{stamp}  {'recording: ' if recording else ''}{_cell_line(r)}", flush=True)


def _cell_line(r) -> str:
    p, lo, hi = r["sero_probability"], r["sero_probability_low"], r["sero_probability_high"]
    prob = f"P(SER) {p:.2f} [{lo:.2f}-{hi:.2f}]" if p == p else ""
    quality = "" if r.get("sero_quality") == "ok" else f"  quality: {r.get('sero_quality')}"
    return (
        f"{printable(r['cell_id'])}  {call_text(r)}  {prob}  {r['sero_type']}  {int(r['n_spikes'])} "
        f"spikes  {r['firing_rate_hz']:.2f} Hz  UDI {r['udi_ms']:.2f} ms{quality}"
    )


def _save_unwritten(out):
    """The rows the table could not take by the end (a full disk): to a fallback file, said on stderr."""

    def save(rows) -> None:
        try:
            fallback = write_fallback(rows, out or "watch_results.csv")
        except SeroError as e:
            print(f"sero watch: {len(rows)} row(s) could not be written anywhere ({e}); they are lost", file=sys.stderr)
            return
        print(f"sero watch: {len(rows)} row(s) could not be written to {out}; they are in {fallback}", file=sys.stderr)

    return save


def _live_page(args, model, stack, on_result):
    """With --serve: the live page, fed with every file's rows beside ``on_result``; its address printed."""
    if args.serve is None:
        return on_result
    from ..conformal import rig_guarantee
    from ..live import LiveBoard, LiveServer

    notes = []
    if args.method == "cnn":
        ensemble = load_model(model, trust=args.trust_model)
        notes = ([DEMO_NOTE] if ensemble.is_demo else []) + [rig_guarantee(ensemble.info.get("rig_validation"))]
    board = LiveBoard(notes=notes)
    server = LiveServer(board, port=check_integer(args.serve, "--serve", minimum=0, maximum=65535))
    stack.callback(server.stop)
    print(f"live page: {server.url}", flush=True)

    def both(rows) -> None:
        board.update(rows)
        on_result(rows)

    return both


def run(args) -> int:
    check_detection_flags(args)
    if args.timeout is not None:
        check_number(args.timeout, "--timeout", minimum=0)
    check_number(args.settle, "--settle", minimum=0)
    check_number(args.update, "--update", minimum=0)
    group = check_group_flag(args)
    kwargs = classify_kwargs(args)
    model = kwargs.pop("model_folder")
    printer = _Printer(args.quiet)
    if args.method == "cnn" and not args.quiet:
        print("loading the model ...", file=sys.stderr, flush=True)

    def ready() -> None:  # said once the model is loaded and the folder listed: nothing saved later is missed
        if args.method == "cnn" and load_model(model, trust=args.trust_model).is_demo:
            print(DEMO_NOTE, flush=True)
        print(
            f"watching {args.folder} for finished .abf files (Ctrl-C to stop)"
            + (f"; results appended to {args.out}" if args.out else "")
            + (f"; report in {args.report}" if args.report else ""),
            flush=True,
        )

    with contextlib.ExitStack() as stack:
        stop_on_terminate(stack)  # SIGTERM ends the session as Ctrl-C does, with the summary
        on_result = _live_page(args, model, stack, printer)
        try:
            watch_folder(
                args.folder,
                out=args.out,
                model_folder=model,
                settle_s=args.settle,
                process_existing=args.existing,
                on_result=on_result,
                on_start=ready,
                timeout_s=args.timeout,
                recursive=args.recursive,
                report_dir=args.report,
                use_polling=args.polling,
                on_unwritten=_save_unwritten(args.out),
                update_s=args.update or None,
                group=group,
                sessions=args.sessions,
                **kwargs,
            )
        except KeyboardInterrupt:
            pass
    print(f"stopped: {printer.cells} cell(s) classified, {len(printer.failed)} file(s) failed")
    return 1 if printer.failed else 0
