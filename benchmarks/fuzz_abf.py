"""Fuzz the .abf reading path: mutated headers and truncated files must be read or refused with SeroError.

    python benchmarks/fuzz_abf.py [--cases 20000] [--seed 0] [--budget-s 5] [--no-shared] [--json OUT]

Every case takes one source file (files of our own written with ``datasets.write_abf``: ABF 1 and 2, int16
and float32, gap-free, episodic and event-driven, one and two channels; plus the real files in
``../shared/abf`` when present), applies one seeded mutation and runs ``spikeinterface_sero.read_abf``
on it, then ``recording_to_snippets`` when the recording is small. Mutations:

* ``flip``: 1-8 random byte or bit changes in the first 6 KiB (the ABF 1 header, the ABF 2 header and
  section blocks);
* ``field``: one header field set to an awkward value (0, -1, 1, type min/max, huge, x1000, /1000, ±1,
  random; floats also nan, ±inf, 1e-30, 1e30, negative). The fields come from Neo's own layout tables, so
  they cover everything Neo reads: sampling interval, channel count, data section offset and size,
  nDataFormat, nOperationMode, every section's block / entry size / entry count, synch array, gains,
  string indices, dates ...; the fields the reading depends on most are drawn more often;
* ``truncate``: the file cut at a random length (inside the header half of the time);
* ``field+truncate``: both.

Outcome of a case: ``processed``, ``refused:<SeroError subclass>``, or ``escaped:<exception type>``
(anything else, including ``hang``: the per-case time budget ran out, and ``MemoryError`` under the
address-space cap ``--mem-limit-gb`` above the current size). Escapes are bugs; each is listed with its
case number, mutation and message, and ``replay(case)`` reproduces it. Same seed, same cases.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import struct
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_ABF = ROOT.parent / "shared" / "abf"
BLOCK = 512
SNIPPET_MAX_SAMPLES = 400_000  # run detection only on recordings up to this many samples x channels

# fields read most by the reading path (drawn 4x more often)
_KEY_FIELDS = {
    "fADCSequenceInterval",
    "fADCSampleInterval",
    "nADCNumChannels",
    "ADCSection.llNumEntries",
    "ADCSection.uBytes",
    "ADCSection.uBlockIndex",
    "DataSection.uBlockIndex",
    "DataSection.llNumEntries",
    "DataSection.uBytes",
    "lDataSectionPtr",
    "lActualAcqLength",
    "nDataFormat",
    "nOperationMode",
    "SynchArraySection.llNumEntries",
    "SynchArraySection.uBlockIndex",
    "lSynchArrayPtr",
    "lSynchArraySize",
    "fSynchTimeUnit",
    "nNumPointsIgnored",
    "StringsSection.uBlockIndex",
    "StringsSection.uBytes",
    "ProtocolSection.uBlockIndex",
    "TagSection.llNumEntries",
    "TagSection.uBytes",
    "lNumTagEntries",
    "lTagSectionPtr",
    "DACSection.llNumEntries",
    "DACSection.uBytes",
    "EpochSection.llNumEntries",
    "EpochPerDACSection.llNumEntries",
    "fInstrumentScaleFactor",
    "fSignalGain",
    "fADCProgrammableGain",
    "fADCRange",
    "lADCResolution",
    "nTelegraphEnable",
    "fTelegraphAdditGain",
    "lADCChannelNameIndex",
    "lADCUnitsIndex",
    "nADCSamplingSeq",
}


@dataclass
class Field:
    name: str
    offset: int
    fmt: str  # one struct code, native (as Neo reads it)


@dataclass
class Source:
    name: str
    data: bytes
    version: int
    fields: list = field(default_factory=list)
    small: bool = True


# ------------------------------------------------------------------------------------------ field layouts
def _fields_v1() -> list[Field]:
    from neo.rawio import axonrawio as A

    out = []
    for key, off, fmt in A.headerDescriptionV1:
        if key == "fFileSignature":
            continue
        code = fmt.lstrip("0123456789")
        n = int(fmt[: len(fmt) - len(code)] or 1)
        if code.endswith("s"):
            continue
        size = struct.calcsize(code)
        for i in range(min(n, 2)):  # first two channels of per-channel arrays
            out.append(Field(key if n == 1 else f"{key}[{i}]", off + i * size, code))
    return out


def _fields_v2(data: bytes) -> list[Field]:
    from neo.rawio import axonrawio as A

    out = [Field(k, off, fmt) for k, off, fmt in A.headerDescriptionV2 if fmt in ("I", "H", "h", "i")]
    sections = {}
    for s, name in enumerate(A.sectionNames):
        off = 76 + 16 * s
        out += [
            Field(f"{name}.uBlockIndex", off, "I"),
            Field(f"{name}.uBytes", off + 4, "I"),
            Field(f"{name}.llNumEntries", off + 8, "q"),
        ]
        if off + 16 <= len(data):
            sections[name] = struct.unpack_from("<IIq", data, off)

    def walk(desc, base, prefix=""):
        pos = base
        for key, fmt in desc:
            size = struct.calcsize(fmt)
            if len(fmt) == 1 and fmt not in "sc":
                out.append(Field(prefix + key, pos, fmt))
            pos += size

    if "ProtocolSection" in sections:
        walk(A.protocolInfoDescription, sections["ProtocolSection"][0] * BLOCK)
    if "ADCSection" in sections:
        blk, nbytes, n = sections["ADCSection"]
        for i in range(min(max(n, 0), 2)):
            walk(A.ADCInfoDescription, blk * BLOCK + nbytes * i, "" if i == 0 else f"adc{i}.")
    if "DACSection" in sections:
        blk, nbytes, n = sections["DACSection"]
        if n > 0:
            walk(A.DACInfoDescription, blk * BLOCK, "dac0.")
    return [f for f in out if f.offset + struct.calcsize(f.fmt) <= len(data)]


# ------------------------------------------------------------------------------------------ sources
def own_sources(folder: Path) -> list[Source]:
    """Small files of our own (write_abf), so that fuzzing needs nothing outside the project."""
    from spikeinterface_sero.testing import synthetic_trace, write_abf

    fs = 40_000.0
    n = 8_000  # 0.2 s per sweep

    def trace(k, length=n):  # -30 pA, 3 pA noise, a spike every 37.5 ms
        spike_times_s = np.arange(200 + 37 * k, length - 400, 1500) / fs
        return synthetic_trace(
            duration_s=length / fs, spike_times_s=spike_times_s, noise_pa=3.0, offset_pa=-30.0, drift_pa=0.0, seed=k
        )

    specs = [
        ("v2_int16_gapfree.abf", dict(data=trace(0), version=2)),
        (
            "v2_float32_episodic.abf",
            dict(
                data=np.stack([trace(1)[:, None], trace(2)[:, None]]), version=2, data_format="float32", mode="episodic"
            ),
        ),
        ("v2_int16_2ch.abf", dict(data=np.c_[trace(3), 0.1 * trace(4)], version=2, units=["pA", "mV"])),
        (
            "v2_int16_eventdriven.abf",
            dict(data=[trace(5, 5000), trace(6, 7000)], version=2, mode="event-driven", sweep_t_starts=[0.0, 1.0]),
        ),
        ("v2_int16_20khz.abf", dict(data=trace(7), version=2, fs=20_000.0)),
        ("v1_int16_gapfree.abf", dict(data=trace(8), version=1)),
        (
            "v1_int16_episodic.abf",
            dict(data=np.stack([trace(9)[:, None], trace(10)[:, None]]), version=1, mode="episodic"),
        ),
        ("v1_float32_gapfree.abf", dict(data=trace(11), version=1, data_format="float32")),
    ]
    out = []
    folder.mkdir(parents=True, exist_ok=True)
    for name, kw in specs:
        kw = dict(kw)
        data = kw.pop("data")
        rate = kw.pop("fs", fs)
        p = write_abf(folder / name, data, rate, **kw)
        out.append(Source(name, p.read_bytes(), kw["version"]))
    return out


def shared_sources(folder: Path = SHARED_ABF) -> list[Source]:
    out = []
    if folder.is_dir():
        for p in sorted(folder.glob("*.abf")):
            data = p.read_bytes()
            version = 2 if data[:4] == b"ABF2" else 1
            out.append(Source(p.name, data, version, small=len(data) <= 400_000))
    return out


def prepare(sources: list[Source]) -> list[Source]:
    for s in sources:
        if not s.fields:
            s.fields = _fields_v2(s.data) if s.version == 2 else _fields_v1()
            s.fields = [f for f in s.fields if f.offset + struct.calcsize(f.fmt) <= len(s.data)]
    return sources


# ------------------------------------------------------------------------------------------ mutations
def _awkward_value(rng: np.random.Generator, fmt: str, current):
    if fmt in "fd":
        choices = [
            0.0,
            -0.0,
            float("nan"),
            float("inf"),
            float("-inf"),
            1e-30,
            1e30,
            -1.0,
            1.0,
            3.4e38,
            -abs(current or 1.0),
            (current or 1.0) * 1000,
            (current or 1.0) / 1000,
            float(rng.normal(0, 1e4)),
            float(np.float32(rng.uniform(0.01, 100))),
        ]
        return choices[int(rng.integers(len(choices)))]
    bits = struct.calcsize(fmt) * 8
    signed = fmt in "bhilq"
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    cur = int(current)
    choices = [
        0,
        1,
        -1,
        2,
        hi,
        lo,
        hi // 2,
        cur + 1,
        cur - 1,
        cur * 2,
        cur * 1000,
        cur // 2,
        int(rng.integers(-1000, 1000)),
        int(rng.integers(lo, hi, endpoint=True, dtype=np.int64)) if bits < 64 else int(rng.integers(-(2**62), 2**62)),
    ]
    v = choices[int(rng.integers(len(choices)))]
    # wrap into the field's range (a negative value in an unsigned field becomes its two's complement)
    v &= (1 << bits) - 1
    if signed and v >= 1 << (bits - 1):
        v -= 1 << bits
    return v


def mutate(src: Source, rng: np.random.Generator) -> tuple[bytes, str]:
    """One seeded mutation of ``src``: (bytes, description)."""
    buf = bytearray(src.data)
    kind = rng.choice(["flip", "field", "truncate", "field+truncate"], p=[0.35, 0.45, 0.12, 0.08])
    desc = []
    if kind == "flip":
        n = int(rng.integers(1, 9))
        lim = min(len(buf), 6144)
        for _ in range(n):
            pos = int(rng.integers(4, lim))  # keep the signature: flips there only test _check_signature
            if rng.random() < 0.5:
                buf[pos] ^= 1 << int(rng.integers(8))
            else:
                buf[pos] = int(rng.integers(256))
            desc.append(f"byte {pos}")
        return bytes(buf), f"flip {', '.join(desc)}"
    if "field" in kind:
        fields = src.fields
        weights = np.array(
            [
                4.0 if f.name.split("[")[0].split(".", 1)[-1] in _KEY_FIELDS or f.name in _KEY_FIELDS else 1.0
                for f in fields
            ]
        )
        f = fields[int(rng.choice(len(fields), p=weights / weights.sum()))]
        (cur,) = struct.unpack_from(f.fmt, buf, f.offset)
        val = _awkward_value(rng, f.fmt, cur)
        struct.pack_into(f.fmt, buf, f.offset, val)
        desc.append(f"{f.name}@{f.offset} {cur!r} -> {val!r}")
    if "truncate" in kind:
        header_len = 6144 if src.version == 1 else min(len(buf), 8 * BLOCK)
        if rng.random() < 0.5:
            cut = int(rng.integers(0, min(header_len, len(buf))))
        else:
            cut = int(rng.integers(0, len(buf)))
        buf = buf[:cut]
        desc.append(f"truncated to {cut} bytes")
    return bytes(buf), f"{kind}: " + "; ".join(desc)


# ------------------------------------------------------------------------------------------ running
class CaseTimeout(BaseException):
    """The per-case time budget ran out (a BaseException, so that no ``except Exception`` swallows it)."""


def _alarm(signum, frame):
    raise CaseTimeout()


@contextlib.contextmanager
def memory_cap(extra_gb: float | None):
    """Cap the address space at the current size + ``extra_gb`` (soft limit, restored afterwards), so that a
    header asking for absurd memory fails fast with MemoryError instead of swapping."""
    if not extra_gb or not hasattr(resource, "RLIMIT_AS"):
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        with open("/proc/self/status") as f:
            vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize"))
    except (OSError, StopIteration):
        yield
        return
    cap = vm + int(extra_gb * 2**30)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_case(path: Path, small: bool, budget_s: float) -> tuple[str, str]:
    """(outcome, message) of reading ``path`` (and detecting on it when small)."""
    from spikeinterface_sero import read_abf
    from spikeinterface_sero.errors import SeroError
    from spikeinterface_sero.snippets import recording_to_snippets

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, budget_s)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rec = read_abf(path)
            n = sum(rec.get_num_samples(s) for s in range(rec.get_num_segments())) * rec.get_num_channels()
            if small and n <= SNIPPET_MAX_SAMPLES:
                recording_to_snippets(rec)
        return "processed", ""
    except CaseTimeout:
        return "escaped:hang", f"no answer within {budget_s:g} s"
    except SeroError as e:
        return f"refused:{type(e).__name__}", str(e)
    except BaseException as e:  # noqa: BLE001 - the point is to catch everything else
        if isinstance(e, KeyboardInterrupt):
            raise
        tb = traceback.extract_tb(e.__traceback__)
        where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
        return f"escaped:{type(e).__name__}", f"{str(e)[:300]} (at {where})"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def iter_cases(sources: list[Source], n_cases: int, seed: int):
    """Deterministic cases: (index, source, mutated bytes, description)."""
    for i in range(n_cases):
        rng = np.random.default_rng([seed, i])
        src = sources[int(rng.integers(len(sources)))]
        data, desc = mutate(src, rng)
        yield i, src, data, desc


def fuzz(
    n_cases: int,
    seed: int = 0,
    budget_s: float = 5.0,
    use_shared: bool = True,
    mem_limit_gb: float = 3.0,
    workdir=None,
    sources: list[Source] | None = None,
    progress=None,
) -> dict:
    """Run ``n_cases`` cases; returns counts per outcome, the escapes, and timings."""
    tmp_ctx = tempfile.TemporaryDirectory(prefix="sero-fuzz-") if workdir is None else contextlib.nullcontext(workdir)
    with tmp_ctx as tmp:
        tmp = Path(tmp)
        if sources is None:
            sources = own_sources(tmp / "src") + (shared_sources() if use_shared else [])
        prepare(sources)
        counts, escapes, per_source, examples = Counter(), [], Counter(), {}
        slowest = (0.0, None)
        t_all = time.perf_counter()
        with memory_cap(mem_limit_gb):
            for i, src, data, desc in iter_cases(sources, n_cases, seed):
                p = tmp / f"case{i}.abf"  # a fresh name per case: never rewrite a file Neo may still map
                p.write_bytes(data)
                t0 = time.perf_counter()
                outcome, msg = run_case(p, src.small, budget_s)
                dt = time.perf_counter() - t0
                with contextlib.suppress(OSError):
                    p.unlink()
                counts[outcome] += 1
                per_source[src.name] += 1
                if outcome not in examples:
                    examples[outcome] = dict(case=i, source=src.name, mutation=desc, message=msg[:300])
                if dt > slowest[0]:
                    slowest = (dt, f"case {i} {src.name}: {desc}")
                if outcome.startswith("escaped"):
                    escapes.append(dict(case=i, source=src.name, mutation=desc, outcome=outcome, message=msg))
                if progress is not None and (i + 1) % progress == 0:
                    print(
                        f"  {i + 1} cases, {sum(v for k, v in counts.items() if k.startswith('escaped'))} "
                        f"escaped, {time.perf_counter() - t_all:.0f} s",
                        file=sys.stderr,
                        flush=True,
                    )
        total = time.perf_counter() - t_all
    return dict(
        cases=n_cases,
        seed=seed,
        seconds=total,
        counts=dict(sorted(counts.items())),
        escapes=escapes,
        n_processed=counts["processed"],
        n_refused=sum(v for k, v in counts.items() if k.startswith("refused")),
        n_escaped=sum(v for k, v in counts.items() if k.startswith("escaped")),
        sources=[s.name for s in sources],
        slowest_case=dict(seconds=slowest[0], case=slowest[1]),
        examples=examples,
    )


def replay(case: int, seed: int = 0, use_shared: bool = True, out=None) -> Path:
    """Write the mutated file of one case (to reproduce an escape by hand); returns its path."""
    tmp = Path(tempfile.mkdtemp(prefix="sero-fuzz-replay-"))
    sources = prepare(own_sources(tmp / "src") + (shared_sources() if use_shared else []))
    for i, _src, data, desc in iter_cases(sources, case + 1, seed):
        if i == case:
            p = Path(out) if out else tmp / f"case{case}.abf"
            p.write_bytes(data)
            print(f"case {case}: {desc} -> {p}", file=sys.stderr)
            return p
    raise ValueError(case)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget-s", type=float, default=5.0, help="time budget per case (a longer case is a hang)")
    ap.add_argument(
        "--mem-limit-gb", type=float, default=3.0, help="address space allowed above the start size (0: no cap)"
    )
    ap.add_argument("--no-shared", action="store_true", help="only our own write_abf files, not ../shared/abf")
    ap.add_argument("--replay", type=int, default=None, metavar="CASE", help="write one case's file and exit")
    ap.add_argument("--json", default=None, metavar="OUT")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.replay is not None:
        print(replay(args.replay, args.seed, not args.no_shared))
        return 0
    r = fuzz(
        args.cases,
        args.seed,
        args.budget_s,
        not args.no_shared,
        args.mem_limit_gb,
        progress=max(1000, args.cases // 20),
    )
    print(
        f"{r['cases']} cases (seed {r['seed']}) on {len(r['sources'])} source files in {r['seconds']:.0f} s "
        f"({1000 * r['seconds'] / max(1, r['cases']):.1f} ms/case); slowest {r['slowest_case']['seconds']:.2f} s"
    )
    print(f"{'outcome':<32}{'cases':>8}")
    for k, v in r["counts"].items():
        print(f"{k:<32}{v:>8}")
    print(f"processed {r['n_processed']}, refused {r['n_refused']}, escaped {r['n_escaped']}")
    print("first case of each outcome:")
    for k, e in r["examples"].items():
        print(
            f"  {k}: case {e['case']} ({e['source']}; {e['mutation']})" + (f": {e['message']}" if e["message"] else "")
        )
    for e in r["escapes"][:30]:
        print(f"ESCAPED case {e['case']} ({e['source']}; {e['mutation']}): {e['outcome']}: {e['message']}")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2, default=str))
    return 1 if r["n_escaped"] else 0


if __name__ == "__main__":
    sys.exit(main())
