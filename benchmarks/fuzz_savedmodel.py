"""Damage a member SavedModel many ways and import each copy: every case is imported or refused with one
SeroError line, never a TensorFlow traceback.

    python benchmarks/fuzz_savedmodel.py [--cases 600] [--seed 1] [--source DIR]

The source is the kernel-20 TensorFlow 2.15 SavedModel of ``../shared/models/keras2-tf2.15/formats`` (or
``--source``). Two cases in three damage the variables' data shard, the third one of the data shard, the
index or ``saved_model.pb``; each case applies one damage: a truncation at a random length, one bit flipped,
eight bits flipped, or 64 bytes zeroed at a random offset. Each copy goes through
``spikeinterface_sero.model.import_models`` (its graph never run). The result counts the outcomes; an
"escape" is any exception that is not a SeroError.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "models" / "keras2-tf2.15" / "formats" / "ModConvBinNormN20"
FILES = ("variables/variables.data-00000-of-00001", "variables/variables.index", "saved_model.pb")
DAMAGES = ("truncate", "flip", "flip8", "zero")


def damage(data: bytearray, kind: str, rng: random.Random) -> bytes:
    """``data`` damaged the ``kind`` way."""
    if kind == "truncate":
        return bytes(data[: rng.randrange(len(data))])
    if kind in ("flip", "flip8"):
        for _ in range(1 if kind == "flip" else 8):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    start = rng.randrange(len(data))
    data[start : start + 64] = bytes(min(64, len(data) - start))
    return bytes(data)


def run(cases: int, seed: int, source: Path) -> dict:
    from spikeinterface_sero.errors import SeroError
    from spikeinterface_sero.model import import_models

    rng = random.Random(seed)
    outcomes: collections.Counter = collections.Counter()
    escapes = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for case in range(cases):
            copy = base / f"case{case}" / source.name
            shutil.copytree(source, copy)
            for p in copy.rglob("*"):
                p.chmod(0o755 if p.is_dir() else 0o644)
            name = FILES[0] if case % 3 else rng.choice(FILES)
            kind = rng.choice(DAMAGES)
            target = copy / name
            target.write_bytes(damage(bytearray(target.read_bytes()), kind, rng))
            try:
                import_models(copy.parent, base / f"out{case}")
                outcomes["imported"] += 1
            except SeroError as error:
                outcomes[type(error).__name__] += 1
            except Exception as error:  # noqa: BLE001 - what the fuzzer looks for
                outcomes["escaped"] += 1
                escapes.append({"case": case, "file": name, "damage": kind, "error": repr(error)[:300]})
            shutil.rmtree(base / f"case{case}", ignore_errors=True)
            shutil.rmtree(base / f"out{case}", ignore_errors=True)
    return {
        "cases": cases,
        "seed": seed,
        "outcomes": dict(outcomes),
        "escapes": escapes[:20],
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--source", type=Path, default=SOURCE)
    args = parser.parse_args()
    if not (args.source / "saved_model.pb").is_file():
        raise SystemExit(f"no SavedModel at {args.source}; pass --source")
    print(json.dumps(run(args.cases, args.seed, args.source), indent=2))


if __name__ == "__main__":
    main()
