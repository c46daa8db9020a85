"""``sero validate``: a model on labelled cells of the user's rig: figures, a conformal guarantee, the rig recorded."""

from __future__ import annotations

from ..constants import DEFAULT_CONFORMAL_LEVEL, DEFAULT_MIN_SPIKES
from ..extension import load_sorting_analyzer
from ..validation import validate
from .common import PARSER_STYLE, add_labelled_cells_args, labelled_cells_given

NAME = "validate"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        NAME,
        **PARSER_STYLE,
        help="validate a model on labelled cells of your rig: per-class recall, calibration, reliable calls, "
        "and a conformal guarantee recorded in the model folder",
    )
    p.add_argument("model", metavar="MODEL", help="the model folder ('demo' for the bundled demonstration model)")
    add_labelled_cells_args(p)
    p.add_argument("--report", required=True, metavar="DIR", help="folder of the page (HTML + PNG + JSON + cells.csv)")
    p.add_argument(
        "--out",
        default=None,
        metavar="NEW_FOLDER",
        help="write a validated copy of the model here (required for the demo, imported published and read-only models)",
    )
    p.add_argument("--rig", default=None, metavar="NAME", help="the rig's name (default rig<N>); same name replaces")
    p.add_argument(
        "--level", type=float, default=DEFAULT_CONFORMAL_LEVEL, help="per-class coverage of the conformal sets"
    )
    p.add_argument("--min-spikes", type=int, default=DEFAULT_MIN_SPIKES, help="fewer spikes: no set, no reliable call")
    p.add_argument("--seed", type=int, default=0, help="seed of the spike selection and bootstrap")
    p.add_argument("--trust-model", action="store_true", help="allow a model that needs arbitrary code to load")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier report or --out folder")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(run=run)


def _progress(done: int, total: int) -> None:
    print(f"\rclassified {done}/{total} cells", end="\n" if done == total else "", flush=True)


def _labels(args):
    """(labels, analyzer) from LABELS or --table, or from --analyzer with --curation."""
    labels = labelled_cells_given(args)
    if args.curation is None:
        return labels, None
    return args.curation, load_sorting_analyzer(args.analyzer)


def run(args) -> int:
    labels, analyzer = _labels(args)
    result = validate(
        None if args.model == "demo" else args.model,
        labels,
        analyzer=analyzer,
        report_dir=args.report,
        out=args.out,
        rig_name=args.rig,
        level=args.level,
        min_spikes=args.min_spikes,
        trust=args.trust_model,
        seed=args.seed,
        overwrite=args.overwrite,
        progress=None if args.quiet else _progress,
    )
    f = result.figures
    print(f"balanced accuracy {f['balanced_accuracy']:.3f} ({_pair(f['balanced_accuracy_interval'])})")
    for name, v in f["per_class"].items():
        print(
            f"  {name}: {v['right']}/{v['n']} ({_pair(v['interval'])}); +{v['more_cells_for_5_points']} cells for +-5 points"
        )
    precision = f["reliable_precision"]
    print(
        f"reliable calls (cross-fitted): {f['reliable_n']}/{f['n_cells']}, right "
        + ("-" if precision is None else f"{precision:.0%}")
    )
    print(f"guarantee: {result.rig_text}")
    print(f"rig recorded in {result.model_folder}")
    print(f"page: {result.files['validation.html']}")
    return 0


def _pair(interval) -> str:
    return f"{interval[0]:.2f}-{interval[1]:.2f}" if interval else "-"
