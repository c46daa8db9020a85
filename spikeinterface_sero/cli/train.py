"""``sero train``: an ensemble trained on labelled recordings, optionally cross-validated by recording day."""

from __future__ import annotations

from ..constants import DEFAULT_PRECISION, DEFAULT_THRESHOLD_PA
from ..errors import SeroError
from ..files import check_output_folder
from ..training import (
    RECIPES,
    SpikeDataset,
    calibration_from_cross_validation,
    cross_validate,
    dataset_from_table,
    headline_figures,
    train_from_table,
)
from ..training.fused import PRECISIONS
from ..training.train import parse_kernels
from .common import PARSER_STYLE
from .labelled import add_labelled_data_args, figures_line, labelled_data, number, print_warnings

NAME = "train"
NEEDS_TENSORFLOW = True  # builds Keras models


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        NAME, **PARSER_STYLE, help="train an ensemble from labelled recordings (table: file,label[,channel,group])"
    )
    add_labelled_data_args(p)
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--kernels", default="20-31", help="kernel sizes, e.g. 20-31 or 20,24,28 (default 20-31)")
    p.add_argument(
        "--recipe",
        default="default",
        choices=sorted(RECIPES),
        help="how to train: 'default' is the paper's recipe plus varied recording conditions, chosen on the "
        "day-shift benchmark; 'paper' the published recipe exactly; 'real_only' no synthetic samples "
        "(default: default)",
    )
    p.add_argument(
        "--cv",
        action="store_true",
        help="first cross-validate leaving one recording day (group) out, one model per day: the headline "
        "figure of the model card, and the calibration is fitted on its held-out cells (needs >= 3 groups)",
    )
    p.add_argument(
        "--epochs", type=int, default=None, help="passes over the training data, at most (default: the recipe's, 25)"
    )
    p.add_argument(
        "--synthetic",
        type=int,
        default=None,
        metavar="N",
        help="streamed synthetic samples per epoch (smoothed spike + noise mask; 0 = real only; default: the "
        "recipe's, as many as real training spikes)",
    )
    p.add_argument("--split", default="auto", help="auto (by group if given, else by cell), cell, group, spike")
    p.add_argument("--batch-size", type=int, default=None, help="spikes per training step (default: the recipe's, 64)")
    p.add_argument(
        "--patience", type=int, default=None, help="early stopping on validation loss (default: the recipe's, 10)"
    )
    p.add_argument("--max-spikes", type=int, default=700, help="cap per cell (paper: 700)")
    p.add_argument("--no-balance", action="store_true", help="keep the class imbalance")
    p.add_argument("--val-fraction", type=float, default=0.15, help="cells/groups held out for early stopping")
    p.add_argument("--test-fraction", type=float, default=0.15, help="cells/groups held out for the model card")
    p.add_argument(
        "--precision",
        choices=["auto", *PRECISIONS],
        default=DEFAULT_PRECISION,
        help="compute precision of the convolutions; auto: bfloat16 where the CPU (AVX512-BF16/AMX) or GPU "
        "computes it natively (about 3x faster), else float32; the saved members are float32 either way",
    )
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD_PA, help="threshold in pA")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the balancing and the initial weights")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model folder --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def _check_out(args) -> None:
    """Checked before the recordings are read (train_from_table checks it after)."""
    out = check_output_folder(args.out, what="--out model folder")  # proven writable before any training
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        raise SeroError(
            f"{out} exists and is not an empty folder; pass --overwrite to replace a model folder, or choose "
            "another --out."
        )


def _cross_validate(args, data):
    """The calibration and headline figures of a cross-validation by day (--cv)."""
    if not isinstance(data, SpikeDataset):
        data = dataset_from_table(
            data,
            threshold=args.threshold,
            max_per_cell=args.max_spikes,
            seed=args.seed,
            progress_bar=not args.quiet,
        )
    print("cross-validating: one model per recording day held out ...", flush=True)
    folds = cross_validate(
        data,
        recipe=args.recipe,
        kernels=parse_kernels(args.kernels),
        seed=args.seed,
        epochs=args.epochs,
        synthetic=args.synthetic,
        precision=args.precision,
        progress_bar=not args.quiet,
    )
    figures = headline_figures(folds)
    print(
        f"cross-validation ({figures['held_out']}, {figures['n_cells']} cells): "
        + figures_line(figures, "", ("balanced_accuracy", "SER_recall", "NSER_recall"))
        + f", cell ECE {number(figures.get('cell_ece'))}"
    )
    print_warnings(figures, "  ")
    return data, calibration_from_cross_validation(folds), {"cross-validation by day": figures}


def run(args) -> int:
    _check_out(args)
    data = labelled_data(args, max_per_cell=args.max_spikes)
    calibration, headline = None, None
    if args.cv:
        data, calibration, headline = _cross_validate(args, data)
    res = train_from_table(
        data,
        args.out,
        recipe=args.recipe,
        calibration=calibration,
        headline_metrics=headline,
        kernels=parse_kernels(args.kernels),
        epochs=args.epochs,
        synthetic=args.synthetic,
        seed=args.seed,
        split=args.split,
        batch_size=args.batch_size,
        patience=args.patience,
        max_per_cell=args.max_spikes,
        balance=False if args.no_balance else None,
        threshold=args.threshold,
        overwrite=args.overwrite,
        progress_bar=not args.quiet,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        precision=args.precision,
    )
    _print_summary(res)
    return 0


def _print_summary(res) -> None:
    summ = res.summary()
    print(
        f"trained {len(res.ensemble.kernels)} member(s) (kernels {', '.join(map(str, res.ensemble.kernels))}) "
        f"for {summ.get('epochs_run')} epoch(s) in {summ.get('seconds') or 0:.0f} s -> {res.folder}"
    )
    for side, name in (("val_metrics", "validation"), ("test_metrics", "held-out test")):
        m = summ.get(side) or {}
        if m:
            print(
                f"{name}: {m.get('cells')} cells, {m.get('spikes')} spikes; "
                + figures_line(m, "cell_", ("accuracy", "balanced_accuracy", "TPR_SER_recall", "TNR_NSER_recall"))
                + f"; spike accuracy {number(m.get('spike_accuracy'))}, cell ECE {number(m.get('cell_ece'))}"
            )
            print_warnings(m, "  ")
    if summ.get("test_metrics"):
        print("  (cell figures with 95% intervals over cells: Wilson for accuracy and recalls, bootstrap for balanced)")
    if res.report_dir:
        print(f"evaluation report: {res.report_dir}")
