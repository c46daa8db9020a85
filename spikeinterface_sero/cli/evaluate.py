"""``sero evaluate``: a model on labelled recordings: confusion, AUC, calibration."""

from __future__ import annotations

from pathlib import Path

from ..constants import DEFAULT_THRESHOLD_PA
from ..errors import SeroError
from ..model import load_model
from ..training import evaluate, evaluate_table
from .common import PARSER_STYLE, print_table
from .labelled import add_labelled_data_args, figures_line, labelled_data, print_warnings

NAME = "evaluate"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        NAME, **PARSER_STYLE, help="evaluate a model on labelled recordings: confusion, AUC, calibration"
    )
    add_labelled_data_args(p)
    p.add_argument("--model", required=True, metavar="DIR", help="the model folder to evaluate")
    p.add_argument("--out", default=None, metavar="REPORT_DIR", help="write JSON + PNG plots here")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD_PA, help="threshold in pA")
    p.add_argument("--max-spikes", type=int, default=None, help="cap on spikes per cell; default: every spike")
    p.add_argument(
        "--trust-model", action="store_true", help="allow a model that needs arbitrary code (Lambda layers) to load"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an earlier report in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def _check_out(args) -> None:
    """Checked before any work: every report holds a report.json."""
    if args.out:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise SeroError(f"{out} is a file; --out names the folder of the report (JSON + PNG).")
        if (out / "report.json").exists() and not args.overwrite:
            raise SeroError(f"{out} already holds a report; pass --overwrite to replace it, or choose another --out.")


def run(args) -> int:
    _check_out(args)
    data = labelled_data(args, max_per_cell=args.max_spikes)
    if args.csv is None:
        result = evaluate_table(
            data,
            args.model,
            args.out,
            threshold=args.threshold,
            trust=args.trust_model,
            max_per_cell=args.max_spikes,
            progress_bar=not args.quiet,
        )
    else:
        result = evaluate(load_model(args.model, trust=args.trust_model), data, args.out, title=Path(args.csv).name)
    _print_result(result)
    if args.out:
        print(f"report (JSON + PNG): {args.out}")
    return 0


def _print_result(result: dict) -> None:
    rows = []
    for level in ("spike", "cell"):
        r = result.get(level) or {}
        rows.append(
            (
                level,
                r.get("n"),
                r.get("accuracy"),
                r.get("balanced_accuracy"),
                r.get("roc_auc"),
                r.get("ece", (r.get("calibration") or {}).get("ece")),
            )
        )
    print_table(
        ["level", "n", "accuracy", "balanced_acc", "roc_auc", "ECE"],
        [tuple("-" if v is None else v for v in row) for row in rows],
    )
    cell = dict(
        result.get("cell") or {},
        **{f"{k}_recall": v for k, v in ((result.get("cell") or {}).get("rates") or {}).items()},
    )
    print(
        "cells: "
        + figures_line(cell, "", ("accuracy", "balanced_accuracy", "TPR_recall", "TNR_recall"))
        + " (95% intervals over cells)"
    )
    print_warnings(result, "")
    print(
        "confusion matrices: rows = true class (row-normalised = recall: TPR/TNR), columns = predicted class "
        "(column-normalised = precision: PPV/NPV); the authors' notebook normalised by predicted class."
    )
