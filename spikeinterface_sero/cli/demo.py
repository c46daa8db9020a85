"""``sero demo``: simulated recordings classified with the bundled demonstration model, and a report."""

from __future__ import annotations

from pathlib import Path

from ..demo import MAX_CELLS_PER_TYPE, MAX_DURATION_S, MAX_TOTAL_S, check_demo_size, run_demo
from .common import PARSER_STYLE, is_true, print_table

NAME = "demo"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        NAME, **PARSER_STYLE, help="simulate recordings, classify them with the bundled demo model, report"
    )
    p.add_argument("--out", default="sero_demo_output", help="output folder (default: sero_demo_output)")
    p.add_argument(
        "--cells",
        type=int,
        default=2,
        help=f"cells per type (typical SER, atypical SER, NSER), at most {MAX_CELLS_PER_TYPE}",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=30.0,
        help=f"seconds per simulated recording, 1 to {MAX_DURATION_S:g}; at most {MAX_TOTAL_S:g} s in all",
    )
    p.add_argument("--seed", type=int, default=2024, help="seed of the simulated recordings")
    p.add_argument("--model", default=None, metavar="DIR", help="model folder (default: the bundled demo model)")
    p.add_argument("--n-jobs", type=int, default=1, help="files classified in parallel on this machine")
    p.add_argument("--no-report", action="store_true", help="no plots and HTML summary")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier demo's output in --out")
    p.set_defaults(run=run)


def run(args) -> int:
    counts = {"serotonergic": args.cells, "atypical_serotonergic": args.cells, "non_serotonergic": args.cells}
    check_demo_size(counts, args.duration, cells_name="--cells", duration_name="--duration")
    table = run_demo(
        args.out,
        n_cells_per_type=counts,
        duration_s=args.duration,
        seed=args.seed,
        model_folder=args.model,
        report=not args.no_report,
        n_jobs=args.n_jobs,
        overwrite=args.overwrite,
    )
    rows = []
    for _, r in table.iterrows():
        p, lo, hi = r["sero_probability"], r["sero_probability_low"], r["sero_probability_high"]
        rows.append(
            (
                Path(str(r["file"])).name,
                r["true_cell_type"],
                r["sero_label"],
                f"{p:.2f} [{lo:.2f}-{hi:.2f}]" if p == p else "-",
                "yes" if is_true(r["sero_reliable"]) else f"no ({r['sero_quality']})",
                r["sero_type"],
                r["n_spikes"],
                f"{r['firing_rate_hz']:.2f}",
                f"{r['udi_ms']:.2f}",
                "yes" if r["correct"] else "NO",
            )
        )
    header = ["file", "simulated as", "label", "P(SER) [95% CI]", "reliable", "type", "spikes", "rate_Hz", "UDI_ms"]
    print_table([*header, "correct"], rows)
    n_ok = int(table["correct"].sum())
    print(
        f"{n_ok}/{len(table)} simulated cells labelled correctly. Results: {Path(args.out) / 'results.csv'}"
        + ("" if args.no_report else f"; report: {Path(args.out) / 'report' / 'index.html'}")
    )
    print(
        "NOTE: simulated recordings and the bundled DEMONSTRATION model (trained on simulated data): this shows "
        "the workflow and is not for scientific conclusions."
    )
    return 0
