"""``sero adapt``: a model adapted to a lab's rig from a few labelled cells, written only when it beats the
starting model out of fold on the same cells (docs/adapt.md)."""

from __future__ import annotations

from pathlib import Path

from ..arguments import check_integer
from ..errors import SeroError
from .common import PARSER_STYLE
from .labelled import number

NAME = "adapt"
NEEDS_TENSORFLOW = True


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        NAME,
        **PARSER_STYLE,
        help="adapt a model to your rig from a few labelled cells: written only when it beats the starting "
        "model out of fold on the same cells",
    )
    p.add_argument("model", metavar="MODEL", help="the starting model folder, or 'demo' for the bundled demo model")
    p.add_argument("--table", required=True, metavar="CSV", help="your labelled recordings: file,label[,channel,group]")
    p.add_argument("--out", required=True, metavar="DIR", help="the adapted model folder to write")
    p.add_argument(
        "--modes",
        default="temperature,head",
        help="what may change, compared by cross-validation: temperature (recalibration only), head (the "
        "members' Dense layers), all (every layer: slower)",
    )
    p.add_argument("--by", choices=["auto", "cell", "group"], default="auto", help="cross-validation by cell or day")
    p.add_argument("--folds", type=int, default=4, help="folds of the cross-validation")
    p.add_argument("--epochs", type=int, default=2, help="epochs of the 'all' mode")
    p.add_argument("--max-spikes", type=int, default=60, help="spikes kept per cell")
    p.add_argument("--seed", type=int, default=0, help="seed of the folds, synthetic spikes and training")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model folder --out")
    p.add_argument("--quiet", action="store_true", help="no line per fold")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..training.finetune import adapt_model

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        raise SeroError(
            f"{out} exists and is not an empty folder; pass --overwrite to replace it, or choose another --out."
        )
    report = adapt_model(
        None if args.model == "demo" else args.model,
        args.table,
        out,
        modes=[m.strip() for m in args.modes.split(",") if m.strip()],
        by=args.by,
        n_folds=check_integer(args.folds, "--folds", minimum=2),
        epochs=check_integer(args.epochs, "--epochs", minimum=1),
        max_spikes_per_cell=check_integer(args.max_spikes, "--max-spikes", minimum=1),
        seed=args.seed,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    keys = ("balanced_accuracy", "ser_recall", "nser_recall", "log_loss", "ece")
    print(f"{len(report['cells'])} cells, {report['cross_validation']}, out of fold:")
    for name, figures in [("starting model", report["before"]), *report["candidates"].items()]:
        print(f"  {name:15s} " + ", ".join(f"{k} {number(figures.get(k))}" for k in keys))
    print(f"paired test of {report['test']['mode']} against the starting model: p = {report['test']['p_value']:.3g}")
    for check, passed in report["test"]["checks"].items():
        print(f"  {'yes' if passed else 'NO '} {check}")
    print(report["message"] + f" ({report['seconds']} s)")
    return 0
