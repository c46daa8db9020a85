"""``sero info``: the header of .abf files, and which channels are used and why not."""

from __future__ import annotations

import sys

from ..constants import MIN_SAMPLING_FREQUENCY, is_paper_rate
from ..errors import SeroError
from ..io import abf_info
from .common import PARSER_STYLE, expand_files, in_cli_words, printable

NAME = "info"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        NAME, **PARSER_STYLE, help="the header of .abf files: mode, rate, sweeps, channels used and why not"
    )
    p.add_argument("files", nargs="+", help=".abf files or folders of them")
    p.set_defaults(run=run)


def run(args) -> int:
    failed = 0
    for path in expand_files(args.files):
        try:
            info = abf_info(path)
        except SeroError as e:
            print(f"FAILED {printable(path)}: {printable(in_cli_words(str(e)))}", file=sys.stderr)
            failed += 1
            continue
        _print_info(info)
    return 1 if failed else 0


def _print_info(info: dict) -> None:
    print(printable(info["file"]))
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
        used=lambda t: t["used"].map({True: "yes", False: "no"}), why_not=lambda t: t["why_not"].map(in_cli_words)
    )
    print(
        "  "
        + channels[["channel_id", "channel_name", "unit", "used", "why_not"]]
        .to_string(index=False)
        .replace("\n", "\n  ")
    )
