"""``sero adapt``: a model adapted to a lab's rig from a few labelled cells, written only when it beats the
starting model out of fold on the same cells (docs/adapt.md)."""

from __future__ import annotations

from pathlib import Path

from ..arguments import check_choice, check_integer
from ..curation import read_curation
from ..errors import SeroError
from ..extension import load_sorting_analyzer
from ..training.finetune import ADAPT_MODES, DEFAULT_ADAPT_MODES
from ..training.labelled_cells import cells_of_analyzer
from ..training.noise_files import DEFAULT_MASKS_PER_FILE, unlabelled_files
from .common import PARSER_STYLE, add_labelled_cells_args, labelled_cells_given
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
    add_labelled_cells_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="the adapted model folder to write")
    p.add_argument(
        "--mode",
        choices=["auto", *ADAPT_MODES],
        default="auto",
        help="auto: a nested cross-validation chooses among keeping the starting model and --modes; or one mode",
    )
    p.add_argument(
        "--modes",
        default=",".join(DEFAULT_ADAPT_MODES),
        help="the candidates of --mode auto: temperature (recalibration only), head (the members' Dense layers), "
        "all (every layer: the slowest; 'temperature,head' is 4 times faster)",
    )
    p.add_argument(
        "--unlabelled",
        nargs="+",
        action="extend",
        default=None,
        metavar="PATH",
        help="unlabelled .abf files or folders of your rig: their spike-free stretches join the noise masks",
    )
    p.add_argument(
        "--masks-per-file",
        type=int,
        default=DEFAULT_MASKS_PER_FILE,
        help="the most noise masks cut from one unlabelled file",
    )
    p.add_argument("--by", choices=["auto", "cell", "group"], default="auto", help="cross-validation by cell or day")
    p.add_argument("--folds", type=int, default=4, help="folds of the (outer) cross-validation")
    p.add_argument("--inner-folds", type=int, default=3, help="folds of the inner cross-validation of --mode auto")
    p.add_argument("--epochs", type=int, default=2, help="epochs of the 'all' mode")
    p.add_argument("--max-spikes", type=int, default=60, help="spikes kept per cell")
    p.add_argument("--seed", type=int, default=0, help="seed of the folds, synthetic spikes and training")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model folder --out")
    p.add_argument("--quiet", action="store_true", help="no line per fold")
    p.set_defaults(run=run)


def _labels(args):
    """The labelled cells from LABELS or --table, or from --analyzer with --curation, given once."""
    labels = labelled_cells_given(args)
    if args.curation is None:
        return labels
    return cells_of_analyzer(load_sorting_analyzer(args.analyzer), read_curation(args.curation))


def run(args) -> int:
    from ..training.finetune import adapt_model

    labels = _labels(args)
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        raise SeroError(
            f"{out} exists and is not an empty folder; pass --overwrite to replace it, or choose another --out."
        )
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for name in modes or [""]:
        check_choice(name, "--modes", ADAPT_MODES)
    report = adapt_model(
        None if args.model == "demo" else args.model,
        labels,
        out,
        mode=args.mode,
        modes=modes,
        unlabelled=unlabelled_files(args.unlabelled, "--unlabelled"),
        masks_per_file=check_integer(args.masks_per_file, "--masks-per-file", minimum=1),
        by=args.by,
        n_folds=check_integer(args.folds, "--folds", minimum=2),
        inner_folds=check_integer(args.inner_folds, "--inner-folds", minimum=2),
        epochs=check_integer(args.epochs, "--epochs", minimum=1),
        max_spikes_per_cell=check_integer(args.max_spikes, "--max-spikes", minimum=1),
        seed=check_integer(args.seed, "--seed", minimum=0),
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    _print(report)
    return 0


def _print(report: dict) -> None:
    keys = ("balanced_accuracy", "ser_recall", "nser_recall", "log_loss", "ece")
    masks = report["noise_masks"]
    print(
        f"{len(report['cells'])} cells, {report['cross_validation']}; noise masks: {masks['labelled_pool']} from the "
        f"labelled recordings, {masks['unlabelled_masks']} from {masks['unlabelled_files']} unlabelled file(s)"
    )
    for choice in report["choices"]:
        losses = ", ".join(f"{mode} {number(value)}" for mode, value in choice["inner_log_loss"].items())
        print(
            f"  fold {choice['fold'] + 1}: the inner cross-validation ({choice['inner_cross_validation']}) chose "
            f"{choice['chosen']} (log-loss {losses})"
        )
    print("out of fold, on the same cells:")
    rows = [("starting model", report["before"]), *report["candidates"].items()]
    if report["choices"]:
        rows.append((f"auto ({report['final_mode']})", report["after"]))
    for name, figures in rows:
        print(f"  {name:18s} " + ", ".join(f"{k} {number(figures.get(k))}" for k in keys))
    test = report["test"]
    print(f"paired test of the adaptation against the starting model: p = {test['p_value']:.3g}")
    for check, passed in test["checks"].items():
        print(f"  {'yes' if passed else 'NO '} {check}")
    print(report["message"] + f" ({report['seconds']} s)")
