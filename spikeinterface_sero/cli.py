"""The ``sero`` command. Thin: every subcommand calls the public Python API and prints a readable table.

Exit status: 0 on success, 1 when some input files failed (the others were processed), 2 on a usage or
input error (one line on stderr saying what is wrong and what to do).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import sys
import warnings
from pathlib import Path

os.environ.setdefault(
    "TF_CPP_MIN_LOG_LEVEL", "3"
)  # the command's output is the user's; TensorFlow's C++ chatter is not

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ._version import __version__  # noqa: E402
from .constants import (  # noqa: E402
    DEFAULT_DEAD_TIME_MS,
    DEFAULT_MIN_SPIKES,
    DEFAULT_PRECISION,
    DEFAULT_THRESHOLD_PA,
    MIN_SAMPLING_FREQUENCY,
    is_paper_rate,
)
from .demo import run_demo  # noqa: E402
from .errors import SeroError  # noqa: E402
from .export import TABLE_SUFFIXES, write_table  # noqa: E402
from .files import check_output_path  # noqa: E402
from .io import abf_info  # noqa: E402
from .model import import_models, load_model  # noqa: E402
from .pipeline import BatchInterrupted, classify_files, expand_inputs, read_snippet_input  # noqa: E402
from .report import write_summary_html  # noqa: E402
from .snippets import Snippets, abf_to_snippets, save_npz, write_snippet_csv_folder  # noqa: E402
from .training import (  # noqa: E402
    RECIPES,
    SpikeDataset,
    calibration_from_cross_validation,
    cross_validate,
    dataset_from_csv_folders,
    dataset_from_table,
    evaluate,
    evaluate_table,
    headline_figures,
    train_from_table,
)
from .training.fused import PRECISIONS  # noqa: E402
from .training.train import parse_kernels  # noqa: E402
from .watch import watch_folder  # noqa: E402


def _expand_inputs(items: list[str]) -> list[Path]:
    return expand_inputs(items)


def _progress(iterable, total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="file", disable=not enabled or total < 2, file=sys.stderr)


def _detection_kwargs(args) -> dict:
    kw = dict(polarity=args.polarity, dead_time_ms=args.dead_time_ms)
    if args.mad is not None:
        kw["mad_multiplier"] = args.mad
    else:
        kw["threshold"] = (
            args.threshold
            if args.threshold is not None
            else (DEFAULT_THRESHOLD_PA if args.polarity == "negative" else -DEFAULT_THRESHOLD_PA)
        )
    return kw


def _add_detection_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("detection (the paper: downward crossing of -50 pA from the local baseline)")
    g.add_argument(
        "--channel",
        action="append",
        default=None,
        help="channel id or name to use (repeatable); default: every current channel",
    )
    g.add_argument(
        "--threshold",
        type=float,
        default=None,
        help=f"threshold in pA from the baseline; None: {DEFAULT_THRESHOLD_PA:g}, or {-DEFAULT_THRESHOLD_PA:g} with --polarity positive",
    )
    g.add_argument(
        "--mad",
        type=float,
        default=None,
        metavar="K",
        help="noise-relative threshold: K x MAD noise instead of --threshold",
    )
    g.add_argument(
        "--polarity", choices=["negative", "positive"], default="negative", help="'positive' for inverted recordings"
    )
    g.add_argument(
        "--dead-time-ms",
        type=float,
        default=DEFAULT_DEAD_TIME_MS,
        help="one trigger per spike within this time (ms)",
    )
    g.add_argument("--max-spikes", type=int, default=None, help="cap on spikes per cell (paper: 700)")
    g.add_argument("--seed", type=int, default=0, help="seed for the spike cap")
    g.add_argument("--allow-low-rate", action="store_true", help="accept recordings below 20 kHz (approximate)")
    g.add_argument("--any-unit", action="store_true", help="accept a named channel whose unit is not a current")


def _channel_arg(args):
    if not args.channel:
        return None
    return args.channel[0] if len(args.channel) == 1 else args.channel


# ---------------------------------------------------------------------------------------------------- snippets
def cmd_snippets(args) -> int:
    files = _expand_inputs(args.files)
    out = Path(args.out)
    fmt = args.format or ("npz" if out.suffix.lower() == ".npz" else "csv")
    if fmt == "npz":
        if out.suffix != ".npz":  # numpy adds it: name the file that is actually written
            out = out.with_name(out.name + ".npz")
        if out.exists() and not args.overwrite:
            raise SeroError(f"{out} exists; pass --overwrite to replace it.")
    # snippets already cut (a CSV folder, an .npz file) are converted as they are; a bad one stops the run
    given = {index: _read_snippets(f) for index, f in enumerate(files) if f.is_dir() or f.suffix.lower() == ".npz"}
    parts, failed = [], []
    for index, f in enumerate(_progress(files, len(files), "snippets", not args.quiet)):
        if index in given:
            parts.append(given.pop(index).capped(args.max_spikes, seed=args.seed))
            continue
        try:
            parts.append(
                abf_to_snippets(
                    f,
                    channel=_channel_arg(args),
                    max_spikes_per_cell=args.max_spikes,
                    seed=args.seed,
                    allow_low_rate=args.allow_low_rate,
                    allow_any_unit=args.any_unit,
                    **_detection_kwargs(args),
                )
            )
        except SeroError as e:
            failed.append((f, str(e)))
    rows = []
    for sn in parts:
        for c in sn.n_detected:
            rows.append(
                (
                    Path(sn.source).name if sn.source else "-",
                    c,
                    int((sn.cell_ids == c).sum()),
                    sn.n_dropped_edge.get(c, 0),
                    sn.thresholds_pa.get(c, float("nan")),
                )
            )
    if parts:
        if fmt == "npz":  # one file keeps its sweep durations; several files' sweeps have no common timeline
            cat = (
                parts[0]
                if len(parts) == 1
                else Snippets(
                    waveforms=np.concatenate([p.waveforms for p in parts]),
                    trigger_samples=np.concatenate([p.trigger_samples for p in parts]),
                    segment_index=np.concatenate([p.segment_index for p in parts]),
                    unit_ids=np.concatenate([p.unit_ids for p in parts]),
                    cell_ids=np.concatenate([p.cell_ids for p in parts]),
                    detection=parts[0].detection,
                    n_dropped_edge={k: v for p in parts for k, v in p.n_dropped_edge.items()},
                    n_detected={k: v for p in parts for k, v in p.n_detected.items()},
                    thresholds_pa={k: v for p in parts for k, v in p.thresholds_pa.items()},
                    source=";".join(str(p.source) for p in parts),
                )
            )
            save_npz(cat, out)
        else:
            for p in parts:
                write_snippet_csv_folder(p, out, overwrite=args.overwrite)
    _print_table(["file", "cell", "snippets", "dropped_at_edge", "threshold_pA"], rows)
    for f, msg in failed:
        print(f"FAILED {f}: {msg}", file=sys.stderr)
    total = sum(len(p) for p in parts)
    print(
        f"{total} snippets from {len(parts)} file(s) written to {out} ({fmt})"
        + (f"; {len(failed)} file(s) failed" if failed else "")
    )
    return 1 if failed else 0


def _read_snippets(path: Path) -> Snippets:
    """A CSV snippet folder or an .npz snippet file, to be written in the other format."""
    if not path.exists():
        raise SeroError(f"{path} does not exist.")
    return read_snippet_input(path)


# ---------------------------------------------------------------------------------------------------- classify
_SHOW = [
    "file",
    "channel",
    "n_spikes",
    "sero_label",
    "sero_probability",
    "sero_type",
    "firing_rate_hz",
    "cv_isi",
    "udi_ms",
]


def _is_true(v) -> bool:
    """True for a true value of a nullable boolean column; False for false, NA, None or NaN."""
    return False if v is None or pd.isna(v) else bool(v)


def _print_results(table) -> None:
    rows = []
    for _, r in table.iterrows():
        if r["error"]:
            rows.append((Path(str(r["file"])).name, "-", "-", "ERROR", "-", "-", "-", "-", "-", "-"))
            continue
        p, lo, hi = r["sero_probability"], r["sero_probability_low"], r["sero_probability_high"]
        prob = f"{p:.2f} [{lo:.2f}-{hi:.2f}]" if p == p else "-"
        if p == p and not _is_true(r.get("sero_reliable")):
            prob += " ?"
        rows.append(
            (
                Path(str(r["file"])).name,
                r["channel"],
                int(r["n_spikes"]),
                r["sero_label"],
                prob,
                r["sero_type"],
                f"{r['firing_rate_hz']:.2f}",
                f"{r['cv_isi']:.2f}",
                f"{r['udi_ms']:.2f}",
                r.get("sero_quality", ""),
            )
        )
    _print_table(
        ["file", "channel", "spikes", "label", "P(SER) [95% CI]", "type", "rate_Hz", "CV_ISI", "UDI_ms", "quality"],
        rows,
    )


def _classify_kwargs(args) -> dict:
    det = _detection_kwargs(args)
    return dict(
        model_folder=args.model,
        channel=_channel_arg(args),
        threshold=det.get("threshold", DEFAULT_THRESHOLD_PA),
        mad_multiplier=det.get("mad_multiplier"),
        polarity=args.polarity,
        dead_time_ms=args.dead_time_ms,
        max_spikes_per_cell=args.max_spikes,
        seed=args.seed,
        allow_low_rate=args.allow_low_rate,
        allow_any_unit=args.any_unit,
        method=args.method,
        trust_model=args.trust_model,
    )


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


def cmd_info(args) -> int:
    failed = 0
    for path in _expand_inputs(args.files):
        try:
            info = abf_info(path)
        except SeroError as e:
            print(f"FAILED {path}: {_in_cli_words(str(e))}", file=sys.stderr)
            failed += 1
            continue
        print(f"{info['file']}")
        print(
            f"  ABF {info['abf_version']:g}, {info['mode']}, {info['sampling_frequency']:g} Hz, "
            f"{info['n_sweeps']} sweep(s), {info['duration_s']:.2f} s"
            + (f", {info['n_tags']} tag(s)" if info["n_tags"] else "")
        )
        print(f"  recorded {info['recorded'] or '(no date)'}; protocol {info['protocol'] or '(none)'}")
        rate = info["sampling_frequency"]
        if rate < MIN_SAMPLING_FREQUENCY:
            print(f"  below {MIN_SAMPLING_FREQUENCY:g} Hz: refused unless --allow-low-rate")
        elif not is_paper_rate(rate):
            print("  not 40 kHz: resampled to 40 kHz when read")
        channels = info["channels"].assign(
            used=lambda t: t["used"].map({True: "yes", False: "no"}), why_not=lambda t: t["why_not"].map(_in_cli_words)
        )
        print(
            "  "
            + channels[["channel_id", "channel_name", "unit", "used", "why_not"]]
            .to_string(index=False)
            .replace("\n", "\n  ")
        )
    return 1 if failed else 0


def cmd_classify(args) -> int:
    files = _expand_inputs(args.files)
    if args.out:  # checked before any work: a bad --out is found now, not after every file is done
        check_output_path(
            args.out,
            overwrite=args.overwrite,
            suffixes=TABLE_SUFFIXES,
            what="--out table",
            overwrite_hint="--overwrite",
        )
    if args.report and (Path(args.report) / "index.html").exists() and not args.overwrite:
        raise SeroError(
            f"{args.report} already holds a report (index.html); pass --overwrite to replace it, or choose another "
            "--report folder."
        )
    kwargs = _classify_kwargs(args)
    if args.report:
        kwargs["report_dir"] = args.report
    if args.nwb or args.phy:
        kwargs.update(nwb_dir=args.nwb, phy_dir=args.phy, overwrite=args.overwrite, nwb_metadata=_nwb_metadata(args))
    interrupted = False
    try:
        table = classify_files(
            files,
            n_jobs=args.n_jobs,
            max_threads_per_worker=args.threads_per_worker,
            engine=args.engine,
            scheduler=args.scheduler,
            progress=not args.quiet,
            **kwargs,
        )
    except BatchInterrupted as stop:  # Ctrl-C: keep what is done
        table, interrupted = stop.table, True
    if args.out:
        write_table(table, args.out, overwrite=True)
    if args.report:
        write_summary_html(table, args.report)
    _print_results(table)
    n_err = int((table["error"] != "").sum())
    ok_rows = table[table["error"] == ""]
    if any(p == p and not _is_true(v) for p, v in zip(ok_rows["sero_probability"], ok_rows["sero_reliable"])):
        print(
            "?: not a reliable call: the quality column names the checks an action current failed; otherwise "
            f"fewer than {DEFAULT_MIN_SPIKES} spikes, input unlike the training data, or an interval that includes 0.5"
        )
    if any(path.is_dir() for path in files):
        print(
            "CSV folders: spike times from the trigger samples in the file names; the files do not say how long "
            "the recording was, so firing_rate_hz is NaN (CV, LV and UDI are computed)"
        )
    demo = table["model"].astype(str).str.startswith("DEMO").any()
    if demo:
        print(
            "NOTE: labels from the bundled DEMONSTRATION model (trained on simulated recordings) - not for "
            "scientific conclusions; pass --model DIR with a real model."
        )
    if n_err:
        for _, r in table[table["error"] != ""].iterrows():
            print(f"FAILED {r['file']}: {_in_cli_words(r['error'])}", file=sys.stderr)
    print(
        f"{len(table) - n_err} cell(s) from {len(files)} file(s)"
        + (f"; {n_err} file(s) failed" if n_err else "")
        + (f"; results in {args.out}" if args.out else "")
        + (f"; report in {args.report}" if args.report else "")
    )
    if interrupted:
        print("interrupted: the files finished so far are in the table", file=sys.stderr)
        return 130
    return 1 if n_err else 0


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default=None,
        metavar="DIR",
        help="model folder (default: the bundled demonstration model, simulated data only)",
    )
    p.add_argument(
        "--method",
        choices=["cnn", "criteria"],
        default="cnn",
        help="'criteria' = classical criteria only (wide, slow, regular)",
    )
    p.add_argument(
        "--trust-model", action="store_true", help="allow a model that needs arbitrary code (Lambda layers) to load"
    )


# ---------------------------------------------------------------------------------------------------- import
def cmd_import_models(args) -> int:
    choose = None
    if args.choose:
        choose = {}
        for item in args.choose:
            if "=" in item:
                k, v = item.split("=", 1)
                choose[int(k)] = v
            else:
                choose = item
                break
    out = import_models(args.src, args.out, choose=choose, overwrite=args.overwrite, trust=args.trust)
    ens = load_model(out)
    print(f"imported {len(ens.kernels)} member(s), kernels {', '.join(map(str, ens.kernels))}, into {out}")
    return 0


# ---------------------------------------------------------------------------------------------------- demo
def cmd_demo(args) -> int:
    counts = {"serotonergic": args.cells, "atypical_serotonergic": args.cells, "non_serotonergic": args.cells}
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
                "yes" if _is_true(r["sero_reliable"]) else f"no ({r['sero_quality']})",
                r["sero_type"],
                r["n_spikes"],
                f"{r['firing_rate_hz']:.2f}",
                f"{r['udi_ms']:.2f}",
                "yes" if r["correct"] else "NO",
            )
        )
    _print_table(
        [
            "file",
            "simulated as",
            "label",
            "P(SER) [95% CI]",
            "reliable",
            "type",
            "spikes",
            "rate_Hz",
            "UDI_ms",
            "correct",
        ],
        rows,
    )
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


# ---------------------------------------------------------------------------------------------------- watch
def cmd_watch(args) -> int:
    kwargs = _classify_kwargs(args)
    model = kwargs.pop("model_folder")
    counts = {"cells": 0, "failed": 0}

    def show(rows) -> None:
        stamp = datetime.datetime.now().strftime("%H:%M:%S")
        for _, r in rows.iterrows():
            if r["error"]:
                counts["failed"] += 1
                print(f"{stamp}  FAILED {Path(str(r['file'])).name}: {_in_cli_words(r['error'])}", flush=True)
                continue
            counts["cells"] += 1
            if args.quiet:
                continue
            p, lo, hi = r["sero_probability"], r["sero_probability_low"], r["sero_probability_high"]
            prob = f"P(SER) {p:.2f} [{lo:.2f}-{hi:.2f}]" if p == p else ""
            mark = "" if _is_true(r.get("sero_reliable")) else " ?"
            quality = "" if r.get("sero_quality") == "ok" else f"  quality: {r.get('sero_quality')}"
            print(
                f"{stamp}  {r['cell_id']}  {r['sero_label']}  {prob}{mark}  {r['sero_type']}  {int(r['n_spikes'])} "
                f"spikes  {r['firing_rate_hz']:.2f} Hz  UDI {r['udi_ms']:.2f} ms{quality}",
                flush=True,
            )

    if args.method == "cnn" and not args.quiet:
        print("loading the model ...", file=sys.stderr, flush=True)

    def ready() -> None:  # said once the model is loaded and the folder listed: nothing saved later is missed
        if args.method == "cnn" and load_model(model, trust=args.trust_model).is_demo:
            print(
                "NOTE: labels from the bundled DEMONSTRATION model (trained on simulated recordings) - not for "
                "scientific conclusions; pass --model DIR with a real model.",
                flush=True,
            )
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
            on_result=show,
            on_start=ready,
            timeout_s=args.timeout,
            recursive=args.recursive,
            report_dir=args.report,
            use_polling=args.polling,
            **kwargs,
        )
    except KeyboardInterrupt:
        pass
    print(f"stopped: {counts['cells']} cell(s) classified, {counts['failed']} file(s) failed")
    return 1 if counts["failed"] else 0


# ---------------------------------------------------------------------------------------------------- train
def _labelled_data(args, max_per_cell=None):
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


def _number(value) -> str:
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


def _figures_line(figures: dict, prefix: str, keys) -> str:
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


def _print_warnings(figures: dict, indent: str) -> None:
    for warning in figures.get("warnings") or []:
        print(f"{indent}warning: {warning}")


def cmd_train(args) -> int:
    out = Path(args.out)  # checked before the recordings are read (train_from_table checks it after)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        raise SeroError(
            f"{out} exists and is not an empty folder; pass --overwrite to replace a model folder, or choose "
            "another --out."
        )
    data = _labelled_data(args, max_per_cell=args.max_spikes)
    calibration, headline = None, None
    if args.cv:
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
        calibration, headline = calibration_from_cross_validation(folds), {"cross-validation by day": figures}
        print(
            f"cross-validation ({figures['held_out']}, {figures['n_cells']} cells): "
            + _figures_line(figures, "", ("balanced_accuracy", "SER_recall", "NSER_recall"))
            + f", cell ECE {_number(figures.get('cell_ece'))}"
        )
        _print_warnings(figures, "  ")
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
                + _figures_line(m, "cell_", ("accuracy", "balanced_accuracy", "TPR_SER_recall", "TNR_NSER_recall"))
                + f"; spike accuracy {_number(m.get('spike_accuracy'))}, cell ECE {_number(m.get('cell_ece'))}"
            )
            _print_warnings(m, "  ")
    if summ.get("test_metrics"):
        print("  (cell figures with 95% intervals over cells: Wilson for accuracy and recalls, bootstrap for balanced)")
    if res.report_dir:
        print(f"evaluation report: {res.report_dir}")
    return 0


def cmd_evaluate(args) -> int:
    if args.out:  # checked before any work: every report holds a report.json
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise SeroError(f"{out} is a file; --out names the folder of the report (JSON + PNG).")
        if (out / "report.json").exists() and not args.overwrite:
            raise SeroError(f"{out} already holds a report; pass --overwrite to replace it, or choose another --out.")
    data = _labelled_data(args, max_per_cell=args.max_spikes)
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
    _print_table(
        ["level", "n", "accuracy", "balanced_acc", "roc_auc", "ECE"],
        [tuple("-" if v is None else v for v in row) for row in rows],
    )
    cell = dict(
        result.get("cell") or {},
        **{f"{k}_recall": v for k, v in ((result.get("cell") or {}).get("rates") or {}).items()},
    )
    print(
        "cells: "
        + _figures_line(cell, "", ("accuracy", "balanced_accuracy", "TPR_recall", "TNR_recall"))
        + " (95% intervals over cells)"
    )
    _print_warnings(result, "")
    print(
        "confusion matrices: rows = true class (row-normalised = recall: TPR/TNR), columns = predicted class "
        "(column-normalised = precision: PPV/NPV); the authors' notebook normalised by predicted class."
    )
    if args.out:
        print(f"report (JSON + PNG): {args.out}")
    return 0


def _add_labelled_data_args(p: argparse.ArgumentParser) -> None:
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


def _print_table(header: list[str], rows: list[tuple]) -> None:
    """A plain-text table (pandas' ``to_string``), floats to 3 significant digits."""
    table = pd.DataFrame(rows, columns=header)
    print(
        table.to_string(index=False, justify="left", float_format=lambda v: f"{v:.3g}") if rows else "  ".join(header)
    )


class _DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default when it has one worth saying (not None, not a switch's False)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text or not action.option_strings:
            return text
        return text + " (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sero",
        description="Serotonergic / non-serotonergic classification of cell-attached action currents "
        "(Corradetti et al. 2024) on SpikeInterface.",
    )
    parser.add_argument("--version", action="version", version=f"spikeinterface-sero {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    formatter = dict(formatter_class=_DefaultsHelpFormatter)

    p = sub.add_parser(
        "snippets",
        **formatter,
        help="cut 160-point snippets from .abf files (npz or the authors' CSV folder), or convert between the two",
    )
    p.add_argument(
        "files",
        nargs="+",
        help=".abf files or folders of them; also folders of per-spike CSV files and .npz snippet files, "
        "written as they are in the other format (the detection options apply to .abf files only)",
    )
    p.add_argument("--out", required=True, help="output .npz file, or a folder for per-spike CSV files")
    p.add_argument("--format", choices=["npz", "csv"], default=None, help="default: npz if --out ends in .npz")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file or CSV snippet files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_detection_args(p)
    p.set_defaults(func=cmd_snippets)

    p = sub.add_parser(
        "info", **formatter, help="the header of .abf files: mode, rate, sweeps, channels used and why not"
    )
    p.add_argument("files", nargs="+", help=".abf files or folders of them")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("classify", **formatter, help="the main job: label every cell of .abf files serotonergic or not")
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
    g = p.add_argument_group("NWB metadata (with --nwb)")
    g.add_argument("--subject-id", default=None, help="the animal (writes an NWB Subject)")
    g.add_argument("--species", default=None, help='Latin binomial, e.g. "Mus musculus"')
    g.add_argument("--age", default=None, help="ISO 8601 duration, e.g. P30D")
    g.add_argument("--sex", default="U", choices=["M", "F", "U", "O"], help="the subject's sex")
    g.add_argument("--experimenter", default=None, help='"Last, First"')
    g.add_argument("--institution", default=None, help="where the recording was made")
    g.add_argument("--lab", default=None, help="the lab that made the recording")
    g.add_argument("--session-description", default=None, help="what the session was")
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
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_model_args(p)
    _add_detection_args(p)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser(
        "import-models", **formatter, help="import the authors' published members (.keras, .h5, SavedModel)"
    )
    p.add_argument("src", help="folder of ModConvBinNormN<k> members (e.g. ModelsDNN/BioModelDNN_BALANCED)")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument(
        "--choose",
        action="append",
        default=None,
        metavar="K=FILE|SESSION",
        help="which file to use when a kernel has several (e.g. 27=ModConvBinNormN27-v199.keras, or v199)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.add_argument(
        "--trust",
        action="store_true",
        help="let TensorFlow run a SavedModel's graph when its weights cannot be read from its variables alone "
        "(only for files from a source you trust: a graph can read and write files)",
    )
    p.set_defaults(func=cmd_import_models)

    p = sub.add_parser(
        "demo", **formatter, help="simulate recordings, classify them with the bundled demo model, report"
    )
    p.add_argument("--out", default="sero_demo_output", help="output folder (default: sero_demo_output)")
    p.add_argument("--cells", type=int, default=2, help="cells per type (typical SER, atypical SER, NSER)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds per simulated recording")
    p.add_argument("--seed", type=int, default=2024, help="seed of the simulated recordings")
    p.add_argument("--model", default=None, metavar="DIR", help="model folder (default: the bundled demo model)")
    p.add_argument("--n-jobs", type=int, default=1, help="files classified in parallel on this machine")
    p.add_argument("--no-report", action="store_true", help="no plots and HTML summary")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier demo's output in --out")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "watch", **formatter, help="classify each new .abf file in a folder as soon as it is completely written"
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
    _add_model_args(p)
    _add_detection_args(p)
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser(
        "train", **formatter, help="train an ensemble from labelled recordings (table: file,label[,channel,group])"
    )
    _add_labelled_data_args(p)
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
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate", **formatter, help="evaluate a model on labelled recordings: confusion, AUC, calibration"
    )
    _add_labelled_data_args(p)
    p.add_argument("--model", required=True, metavar="DIR", help="the model folder to evaluate")
    p.add_argument("--out", default=None, metavar="REPORT_DIR", help="write JSON + PNG plots here")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD_PA, help="threshold in pA")
    p.add_argument("--max-spikes", type=int, default=None, help="cap on spikes per cell; default: every spike")
    p.add_argument(
        "--trust-model", action="store_true", help="allow a model that needs arbitrary code (Lambda layers) to load"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an earlier report in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_evaluate)

    for extra in _EXTRA_COMMANDS:
        extra(sub)
    return parser


_EXTRA_COMMANDS: list = []


def _quiet_import_tensorflow() -> None:
    """Import TensorFlow with its C++ start-up log lines (oneDNN, CUDA probing) kept off the terminal: they
    are printed before any log level applies. A failing import still raises its Python exception."""
    if "tensorflow" in sys.modules:
        return
    try:
        saved = os.dup(2)
    except OSError:
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            import tensorflow  # noqa: F401
    except Exception:
        pass  # the real import later raises with its message visible
    finally:
        os.dup2(saved, 2)
        os.close(saved)


#: the Python arguments library messages name, as the flags a CLI user types
_FLAGS = {
    "allow_any_unit=True": "--any-unit",
    "allow_low_rate=True": "--allow-low-rate",
    "overwrite=True": "--overwrite",
    "trust_model=True": "--trust-model",
    "trust=True": "--trust",
    "max_spikes_per_cell": "--max-spikes",
    "dead_time_ms": "--dead-time-ms",
    "mad_multiplier": "--mad",
    "max_threads_per_worker": "--threads-per-worker",
    "n_jobs": "--n-jobs",
    "model_folder": "--model",
    "settle_s": "--settle",
    "phy_dir": "--phy",
    "nwb_dir": "--nwb",
    "channel=": "--channel ",
    "scheduler=": "--scheduler ",
}


def _in_cli_words(message: str) -> str:
    """A library message in the words of the command line: flags for Python arguments, no double hints."""
    message = re.sub(r"\s*\(CLI: [^)]*\)", "", message)  # the flag is named directly below
    message = re.sub(r"choose=\{[^}]*\}", "--choose K=FILE", message)
    message = re.sub(r", or pass on_bad='skip' to leave such files out", "", message)  # no such flag
    for argument, flag in _FLAGS.items():
        message = re.sub(rf"(?<![\w-]){re.escape(argument)}(?![\w])", flag, message)
    return message


# commands that build Keras models (classify, watch, evaluate and demo run the numpy engine: no TensorFlow)
_NEEDS_TF = {"train", "import-models"}


# ---------------------------------------------------------------- sero adapt (one self-contained block)
def _add_adapt_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "adapt",
        formatter_class=_DefaultsHelpFormatter,
        help="adapt a model to your rig from a few labelled cells: written only when it beats the starting "
        "model out of fold on the same cells",
    )
    p.add_argument("model", metavar="MODEL", help="the starting model folder, or 'demo' for the bundled demo model")
    p.add_argument("--table", required=True, metavar="CSV", help="your labelled recordings: file,label[,channel,group]")
    p.add_argument("--out", required=True, metavar="DIR", help="the adapted model folder to write")
    p.add_argument(
        "--modes",
        default="temperature,head,all",
        help="what may change, compared by cross-validation: temperature (recalibration only), head (the "
        "members' Dense layers), all (every layer)",
    )
    p.add_argument("--by", choices=["auto", "cell", "group"], default="auto", help="cross-validation by cell or day")
    p.add_argument("--folds", type=int, default=4, help="folds of the cross-validation")
    p.add_argument("--epochs", type=int, default=2, help="epochs of the 'all' mode")
    p.add_argument("--max-spikes", type=int, default=60, help="spikes kept per cell")
    p.add_argument("--seed", type=int, default=0, help="seed of the folds, synthetic spikes and training")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model folder --out")
    p.add_argument("--quiet", action="store_true", help="no line per fold")
    p.set_defaults(func=_run_adapt)


def _run_adapt(args) -> int:
    from .arguments import check_integer
    from .training.finetune import adapt_model

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
        print(f"  {name:15s} " + ", ".join(f"{k} {_number(figures.get(k))}" for k in keys))
    print(f"paired test of {report['test']['mode']} against the starting model: p = {report['test']['p_value']:.3g}")
    for check, passed in report["test"]["checks"].items():
        print(f"  {'yes' if passed else 'NO '} {check}")
    print(report["message"] + f" ({report['seconds']} s)")
    return 0


_EXTRA_COMMANDS.append(_add_adapt_parser)
_NEEDS_TF.add("adapt")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # warnings in one line, in the command's name, without the source line of the library
    warnings.formatwarning = lambda message, category, *rest, **kw: f"sero {args.command}: warning: {message}\n"
    if args.command in _NEEDS_TF and not (args.command == "classify" and getattr(args, "method", "") == "criteria"):
        if not getattr(args, "quiet", False) and "tensorflow" not in sys.modules:
            print(f"sero {args.command}: loading TensorFlow ...", file=sys.stderr, flush=True)  # seconds of silence
        _quiet_import_tensorflow()
    try:
        return int(args.func(args) or 0)
    except SeroError as e:
        print(f"sero {args.command}: error: {_in_cli_words(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
