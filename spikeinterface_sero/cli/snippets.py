"""``sero snippets``: cut 160-point snippets from .abf files, or convert between the npz and CSV formats."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..detection import abf_to_snippets
from ..errors import SeroError
from ..files import check_output_path
from ..snippet_folders import check_snippet_folder, read_snippet_input, write_snippet_folder
from ..snippet_formats import Snippets, save_npz
from .common import (
    PARSER_STYLE,
    add_detection_args,
    channel_arg,
    check_detection_flags,
    detection_kwargs,
    expand_files,
    in_cli_words,
    print_table,
    printable,
    progress,
)

NAME = "snippets"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        NAME,
        **PARSER_STYLE,
        help="cut 160-point snippets from .abf files (npz or the authors' CSV folder), or convert between the two",
    )
    p.add_argument(
        "files",
        nargs="+",
        help=".abf files or folders of them; also folders of per-spike CSV files and .npz snippet files, "
        "written as they are in the other format (the detection options apply to .abf files only)",
    )
    p.add_argument("--out", required=True, help="output .npz file, or a folder (no suffix) for per-spike CSV files")
    p.add_argument(
        "--format", choices=["npz", "csv"], default=None, help="default: from --out, npz if it ends in .npz, else csv"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file or CSV snippet files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_detection_args(p)
    p.set_defaults(run=run)


def _output(args) -> tuple[Path, str]:
    """The --out path and its format, checked before any file is read: the suffix decides (.npz: one file;
    no suffix: a folder of per-spike CSV files); a --format that disagrees with it is refused."""
    out = Path(args.out)
    suffix = out.suffix.lower()
    fmt = args.format or ("npz" if suffix == ".npz" else "csv")
    if fmt == "csv" and suffix == ".npz":
        raise SeroError(
            f"--out {out.name} ends in .npz but --format csv writes a folder: name a folder, or leave out --format."
        )
    if fmt == "csv" and suffix and not out.is_dir():
        raise SeroError(
            f"--out {out.name}: CSV snippets are a folder of per-spike files (<cell>_trigger_<sample>.csv), not one "
            f"{suffix} file; name a folder (e.g. {out.with_suffix('').name}), or end --out in .npz for one file."
        )
    if fmt == "npz":
        if out.suffix != ".npz":  # numpy adds it: name the file that is actually written
            out = out.with_name(out.name + ".npz")
        check_output_path(
            out, overwrite=args.overwrite, suffixes=(".npz",), what="--out file", overwrite_hint="--overwrite"
        )
    else:
        check_snippet_folder(out, overwrite=args.overwrite, overwrite_hint="--overwrite")
    return out, fmt


def run(args) -> int:
    check_detection_flags(args)
    files = expand_files(args.files)
    out, fmt = _output(args)
    parts, failed = _cut(files, args)
    if parts:
        _write(parts, out, fmt, args.overwrite)
    print_table(["file", "cell", "snippets", "dropped_at_edge", "threshold_pA"], _rows(parts))
    for f, msg in failed:
        print(f"FAILED {printable(f)}: {printable(in_cli_words(msg))}", file=sys.stderr)
    total = sum(len(p) for p in parts)
    print(
        f"{total} snippets from {len(parts)} file(s) written to {out} ({fmt})"
        + (f"; {len(failed)} file(s) failed" if failed else "")
    )
    return 1 if failed else 0


def _cut(files: list[Path], args) -> tuple[list[Snippets], list[tuple[Path, str]]]:
    """Every file's snippets, and the .abf files that failed with their message."""
    # snippets already cut (a CSV folder, an .npz file) are converted as they are; a bad one stops the run
    given = {index: _read_snippets(f) for index, f in enumerate(files) if f.is_dir() or f.suffix.lower() == ".npz"}
    parts, failed = [], []
    for index, f in enumerate(progress(files, len(files), "snippets", not args.quiet)):
        if index in given:
            parts.append(given.pop(index).capped(args.max_spikes, seed=args.seed))
            continue
        try:
            parts.append(
                abf_to_snippets(
                    f,
                    channel=channel_arg(args),
                    max_spikes_per_cell=args.max_spikes,
                    seed=args.seed,
                    allow_low_rate=args.allow_low_rate,
                    allow_any_unit=args.any_unit,
                    **detection_kwargs(args),
                )
            )
        except SeroError as e:
            failed.append((f, str(e)))
    return parts, failed


def _rows(parts: list[Snippets]) -> list[tuple]:
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
    return rows


def _write(parts: list[Snippets], out: Path, fmt: str, overwrite: bool) -> None:
    if fmt == "npz":  # one file keeps its sweep durations; several files' sweeps have no common timeline
        save_npz(parts[0] if len(parts) == 1 else _concatenate(parts), out)
    else:
        write_snippet_folder(parts, out, overwrite=overwrite)


def _concatenate(parts: list[Snippets]) -> Snippets:
    return Snippets(
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


def _read_snippets(path: Path) -> Snippets:
    """A CSV snippet folder or an .npz snippet file, to be written in the other format."""
    if not path.exists():
        raise SeroError(f"{path} does not exist.")
    return read_snippet_input(path)
