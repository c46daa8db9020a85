"""``sero import-models``: the authors' published members into a model folder."""

from __future__ import annotations

from ..files import check_output_folder
from ..model import import_models, load_model
from .common import PARSER_STYLE

NAME = "import-models"
NEEDS_TENSORFLOW = True  # builds Keras models


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        NAME, **PARSER_STYLE, help="import the authors' published members (.keras, .h5, SavedModel)"
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
    p.set_defaults(run=run)


def run(args) -> int:
    check_output_folder(args.out, what="--out model folder")  # proven writable before anything is imported
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
