"""What ``sero train`` and ``sero evaluate`` share: the labelled-data options and the figures' lines."""

from __future__ import annotations

import argparse

from ..errors import SeroError
from ..training import dataset_from_csv_folders


def add_labelled_data_args(p: argparse.ArgumentParser) -> None:
    """--table, --csv and --group."""
    g = p.add_argument_group("labelled data (one of --table and --csv)")
    g.add_argument("--table", default=None, help="CSV with columns file,label and optional channel,group")
    g.add_argument(
        "--csv",
        default=None,
        metavar="ROOT",
        help="folder with SER and NSER subfolders of the authors' per-spike CSV files (<cell>_trigger_<sample>.csv)",
    )
    g.add_argument(
        "--group",
        choices=["day"],
        default=None,
        help="with --csv: group cells by recording day (the cell id before '#') for a leak-free split; "
        "default: each cell its own group",
    )


def labelled_data(args, max_per_cell=None):
    """What --table or --csv names: the table's path (read by train_from_table / evaluate_table), or the
    dataset of a CSV root with SER and NSER subfolders (at most ``max_per_cell`` spikes per cell)."""
    if (args.table is None) == (args.csv is None):
        raise SeroError(
            "give the labelled data once: --table FILE (columns file,label) or --csv ROOT (SER and NSER folders "
            "of per-spike CSV files)."
        )
    if args.table is not None:
        if args.group is not None:
            raise SeroError("--group applies to --csv; a --table gives each file's group in its 'group' column.")
        return args.table
    return dataset_from_csv_folders(args.csv, group=args.group, max_per_cell=max_per_cell)


def number(value) -> str:
    """A figure to three decimals, '-' when there is none."""
    return "-" if value is None else f"{float(value):.3f}"


#: what the cell-level figures are called on the terminal, and the key of each one's interval
_FIGURE_NAMES = {
    "accuracy": ("accuracy", "accuracy_interval"),
    "balanced_accuracy": ("balanced", "balanced_accuracy_interval"),
    "SER_recall": ("SER recall", "TPR_interval"),
    "NSER_recall": ("NSER recall", "TNR_interval"),
    "TPR_SER_recall": ("SER recall", "TPR_interval"),
    "TNR_NSER_recall": ("NSER recall", "TNR_interval"),
    "TPR_recall": ("SER recall", "TPR_interval"),
    "TNR_recall": ("NSER recall", "TNR_interval"),
}


def figures_line(figures: dict, prefix: str, keys) -> str:
    """``accuracy 0.917 [0.646-0.985], balanced ...`` from ``figures[prefix + key]`` and its interval."""
    parts = []
    for key in keys:
        name, interval_key = _FIGURE_NAMES[key]
        value, interval = figures.get(prefix + key), figures.get(prefix + interval_key)
        if value is None:
            parts.append(f"{name} -")
        else:
            parts.append(f"{name} {float(value):.3f}" + (f" [{interval[0]:.3f}-{interval[1]:.3f}]" if interval else ""))
    return ", ".join(parts)


def print_warnings(figures: dict, indent: str) -> None:
    """The warnings an evaluation attached to its figures."""
    for warning in figures.get("warnings") or []:
        print(f"{indent}warning: {warning}")
