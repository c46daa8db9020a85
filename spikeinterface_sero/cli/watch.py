"""``sero watch``: each new .abf file of a folder classified as soon as it is completely written."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

from ..model import load_model
from ..watch import watch_folder
from .common import DEMO_NOTE, PARSER_STYLE, add_detection_args, add_model_args, classify_kwargs, in_cli_words, is_true

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
    p.add_argument("--settle", type=float, default=2.0, help="seconds a file must stay unchanged (default 2)")
    p.add_argument(
        "--existing",
        action="store_true",
        help="also classify the files already there (those already in --out are skipped)",
    )
    p.add_argument("--recursive", action="store_true", help="also watch subfolders")
    p.add_argument("--polling", action="store_true", help="poll instead of OS notifications (network drives)")
    p.add_argument("--timeout", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    p.add_argument("--quiet", action="store_true", help="print only failures and the final summary")
    add_model_args(p)
    add_detection_args(p)
    p.set_defaults(run=run)


class _Printer:
    """Prints each classified cell as it comes, and counts cells and failed files."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.cells = 0
        self.failed = 0

    def __call__(self, rows) -> None:
        stamp = datetime.datetime.now().strftime("%H:%M:%S")
        for _, r in rows.iterrows():
            if r["error"]:
                self.failed += 1
                print(f"{stamp}  FAILED {Path(str(r['file'])).name}: {in_cli_words(r['error'])}", flush=True)
                continue
            self.cells += 1
            if not self.quiet:
                print(f"{stamp}  {_cell_line(r)}", flush=True)


def _cell_line(r) -> str:
    p, lo, hi = r["sero_probability"], r["sero_probability_low"], r["sero_probability_high"]
    prob = f"P(SER) {p:.2f} [{lo:.2f}-{hi:.2f}]" if p == p else ""
    mark = "" if is_true(r.get("sero_reliable")) else " ?"
    quality = "" if r.get("sero_quality") == "ok" else f"  quality: {r.get('sero_quality')}"
    return (
        f"{r['cell_id']}  {r['sero_label']}  {prob}{mark}  {r['sero_type']}  {int(r['n_spikes'])} "
        f"spikes  {r['firing_rate_hz']:.2f} Hz  UDI {r['udi_ms']:.2f} ms{quality}"
    )


def run(args) -> int:
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

    try:
        watch_folder(
            args.folder,
            out=args.out,
            model_folder=model,
            settle_s=args.settle,
            process_existing=args.existing,
            on_result=printer,
            on_start=ready,
            timeout_s=args.timeout,
            recursive=args.recursive,
            report_dir=args.report,
            use_polling=args.polling,
            **kwargs,
        )
    except KeyboardInterrupt:
        pass
    print(f"stopped: {printer.cells} cell(s) classified, {printer.failed} file(s) failed")
    return 1 if printer.failed else 0
