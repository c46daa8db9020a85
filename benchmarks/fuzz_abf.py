"""Fuzz the .abf reading path and the result writers: every mutated file is read or refused with SeroError,
and a killed writer never loses a result.

    python benchmarks/fuzz_abf.py [--cases 20000] [--seed 0] [--mix all|classic|structure] [--workers 2]
        [--budget-s 5] [--mem-limit-gb 3] [--rss-growth-mb 1024] [--kill-rounds 60] [--no-shared] [--json OUT]

Every case takes one source file (files of our own written with ``datasets.write_abf``: ABF 1 and 2, int16
and float32, gap-free, episodic and event-driven, one and two channels; plus the real files in
``../shared/abf`` when present), applies one seeded mutation and runs ``spikeinterface_sero.read_abf``
on it, reads every trace back (they must be finite and of the announced shape), then runs
``recording_to_snippets`` when the recording is small.

Classic mutations (``--mix classic``, the fuzzer's first version; same seed, same cases as before):

* ``flip``: 1-8 random byte or bit changes in the first 6 KiB (the ABF 1 header, the ABF 2 header and
  section blocks);
* ``field``: one header field set to an awkward value (0, -1, 1, type min/max, huge, x1000, /1000, ±1,
  random; floats also nan, ±inf, 1e-30, 1e30, negative). The fields come from Neo's own layout tables;
  the fields the reading depends on most are drawn more often;
* ``truncate``: the file cut at a random length (inside the header half of the time);
* ``field+truncate``: both.

Structure-aware mutations (``--mix structure``): the ABF 2 section table (18 descriptors of ``uint32
uBlockIndex, uint32 uBytes, int64 llNumEntries``) and the ABF 1 pointers are parsed from the file and
changed on purpose, relative to the file's real layout (see :data:`STRUCTURE_KINDS`):

* ABF 2: ``sec.block`` (0, beyond the file, the last block, another section's block, inside the data),
  ``sec.bytes`` / ``sec.count`` (0, 1, entry size ±1, huge, negative as int64, one more than fits),
  ``sec.swap`` / ``sec.copy`` (two sections exchanged or overlapping), ``sec.zero`` (a section missing),
  ``data.size`` (the data section's entry count against the file size: exactly fits, one item or one
  sample too many, not a multiple of the channel count, 0; item size 2 <-> 4), ``data.block``, ``data.cut``
  (the file cut just before / after the data end), ``adc.count`` (ADC entries against the interleaved
  channels), ``adc.entry`` (nADCNum, sampling sequence, telegraph, duplicated entries), ``rate``
  (fADCSequenceInterval 0, ±0, NaN, ±inf, negative, subnormal, tiny, huge, near 25 µs), ``format``
  (nDataFormat flipped with or without a consistent item size, out of range), ``mode`` (nOperationMode
  0-7, -1, extremes; with the synch array removed or made up), ``strings.*`` (section offset and length,
  the SSCH header, the body: no NULs, an extra double NUL, invalid UTF-8, random; string indices -1, one
  past the end, huge), ``sweeps`` (episode counts), ``synch.section`` / ``synch.entry`` / ``synch.add`` /
  ``synch.unit`` (synch array count against the sweeps, entries with negative / zero / huge / odd
  lengths and starts, a flood of tiny sweeps, the data read as a synch array, fSynchTimeUnit), ``tags``;
* ABF 1: the same kinds on the fixed header (``v1.data-ptr``, ``v1.data-size``, ``v1.channels``,
  ``v1.rate``, ``v1.format``, ``v1.mode``, ``v1.strings``, ``v1.sweeps``, ``v1.synch.*``, ``v1.tags``,
  ``v1.cut``);
* ``multi``: two or three of them at once.

``--mix all`` (the default) draws a classic or a structure-aware mutation with equal probability.

Outcome of a case: ``processed``, ``refused:<SeroError subclass>``, or ``escaped:<what>``: a traceback of
another exception type, ``hang`` (the per-case time budget ran out; with ``--workers`` > 1 a worker stuck
in C code is also killed by a watchdog), ``memory`` (one case raised the peak RSS by more than
``--rss-growth-mb``; ``MemoryError`` under the address-space cap ``--mem-limit-gb`` is an escape too unless
the reader turns it into a refusal), ``nonfinite`` / ``badshape`` (a recording that was accepted gives NaN,
inf or a wrongly shaped trace), ``crash`` (the worker process died). Escapes are bugs; each is listed
with its case number, mutation and message, and ``replay(case)`` reproduces it. Same seed, same cases.

Kill-during-write (``--kill-rounds N``, half tables, half appends): a forked writer overwrites a results
table with ``export.write_table`` (CSV and JSON, alternately) or appends rows with the watcher's
``_ResultsCsv`` (``files.append_line``), and is SIGKILLed at a random moment. After each kill the table must
be byte-identical to the last version acknowledged or to the complete next one; the appended file must hold
every acknowledged row intact, every whole line must parse, only the last (unacknowledged) line may be torn,
and a restart must drop it and append cleanly. Anything else is a lost result (goal 0).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
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
import zlib
from collections import Counter, defaultdict
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


# ------------------------------------------------------------------------------------------ structure-aware
from spikeinterface_sero.datasets.abf_writer import ABF2_SECTIONS  # noqa: E402  (the writer's own table)

_TABLE = 76
#: bytes Neo reads per entry of the ABF 2 lists it walks
_NEO_ENTRY = {
    "ADCSection": 82,
    "DACSection": 256,
    "EpochSection": 32,
    "EpochPerDACSection": 48,
    "TagSection": 64,
    "SynchArraySection": 8,
}
# ABF 2 ADC entry fields (offset in the entry, struct code)
_ADC_FIELDS = {
    "nADCNum": (0, "h"),
    "nTelegraphEnable": (2, "h"),
    "fTelegraphAdditGain": (6, "f"),
    "nADCPtoLChannelMap": (24, "h"),
    "nADCSamplingSeq": (26, "h"),
    "fInstrumentScaleFactor": (40, "f"),
    "lADCChannelNameIndex": (74, "i"),
    "lADCUnitsIndex": (78, "i"),
}
_FLOAT_AWKWARD = (
    0.0,
    -0.0,
    float("nan"),
    float("inf"),
    float("-inf"),
    -25.0,
    1e-45,  # float32 subnormal
    1e-30,
    1e-7,
    1e-3,
    0.1,
    1.0,
    2.5,
    24.999,
    25.001,
    1000.0,
    1e6,
    1e30,
    3.4e38,
)


def _wrap(fmt: str, value: int) -> int:
    """``value`` as the integer field ``fmt`` stores it (two's complement, truncated to its width)."""
    bits = struct.calcsize(fmt) * 8
    v = int(value) & ((1 << bits) - 1)
    if fmt in "bhilq" and v >= 1 << (bits - 1):
        v -= 1 << bits
    return v


def _pick(rng: np.random.Generator, choices):
    return choices[int(rng.integers(len(choices)))]


class _Patch:
    """The file being mutated: little-endian get/put (offsets outside the file are skipped and noted)."""

    def __init__(self, data: bytes):
        self.b = bytearray(data)
        self.notes: list[str] = []

    def __len__(self):
        return len(self.b)

    def get(self, fmt: str, off: int):
        size = struct.calcsize("<" + fmt)
        if off < 0 or off + size > len(self.b):
            return None
        return struct.unpack_from("<" + fmt, self.b, off)[0]

    def put(self, fmt: str, off: int, value, name: str) -> None:
        size = struct.calcsize("<" + fmt)
        if off < 0 or off + size > len(self.b):
            self.notes.append(f"{name}@{off} outside the file")
            return
        cur = self.get(fmt, off)
        if fmt == "f":
            with np.errstate(over="ignore"):
                value = float(np.float32(value))  # beyond float32: inf, as a C cast stores it
        elif fmt != "d":
            value = _wrap(fmt, value)
        struct.pack_into("<" + fmt, self.b, off, value)
        self.notes.append(f"{name}@{off} {cur!r} -> {value!r}")

    def write(self, off: int, raw: bytes, name: str) -> None:
        off = max(0, min(off, len(self.b)))
        raw = raw[: len(self.b) - off]
        self.b[off : off + len(raw)] = raw
        self.notes.append(f"{name}@{off} {len(raw)} bytes {bytes(raw[:12])!r}{'...' if len(raw) > 12 else ''}")

    def append_blocks(self, raw: bytes, name: str) -> int:
        """Append ``raw`` at the next block boundary; returns its block index."""
        pad = (-len(self.b)) % BLOCK
        self.b += b"\x00" * pad
        block = len(self.b) // BLOCK
        self.b += raw + b"\x00" * ((-len(raw)) % BLOCK)
        self.notes.append(f"{name}: {len(raw)} bytes appended at block {block}")
        return block

    def cut(self, length: int, name: str) -> None:
        length = max(0, min(int(length), len(self.b)))
        del self.b[length:]
        self.notes.append(f"{name}: truncated to {length} bytes")


@dataclass
class _Layout2:
    """What an ABF 2 file's section table says (as read from the possibly already mutated bytes)."""

    sections: dict
    size: int
    n_blocks: int
    protocol: int  # byte offset of the protocol section
    n_ch: int
    item: int
    data: tuple  # (block, bytes, count)

    @classmethod
    def parse(cls, p: _Patch) -> _Layout2:
        sections = {}
        for s, name in enumerate(ABF2_SECTIONS):
            off = _TABLE + 16 * s
            sections[name] = list(struct.unpack_from("<IIq", p.b, off)) if off + 16 <= len(p) else [0, 0, 0]
        fmt = p.get("H", 30)
        data = tuple(sections["DataSection"])
        item = 4 if fmt == 1 else 2
        n_ch = int(min(max(sections["ADCSection"][2], 1), 64))
        return cls(sections, len(p), -(-len(p) // BLOCK), sections["ProtocolSection"][0] * BLOCK, n_ch, item, data)

    def used(self) -> list[str]:
        return [n for n, (_b, _u, c) in self.sections.items() if c != 0]


def _sec_field(p: _Patch, name: str, which: str, value) -> None:
    s = ABF2_SECTIONS.index(name)
    off, fmt = {"uBlockIndex": (0, "I"), "uBytes": (4, "I"), "llNumEntries": (8, "q")}[which]
    p.put(fmt, _TABLE + 16 * s + off, value, f"{name}.{which}")


def _choose_section(L: _Layout2, rng: np.random.Generator, prefer=None) -> str:
    used = L.used()
    pool = prefer if prefer else used
    if pool and rng.random() < 0.8:
        return _pick(rng, pool)
    return _pick(rng, ABF2_SECTIONS)


# ---- ABF 2 kinds: each takes (patch, layout, rng) and changes the file in place
def _m2_sec_block(p, L, rng):
    name = _choose_section(L, rng)
    blk = L.sections[name][0]
    others = [L.sections[n][0] for n in L.used() if n != name] or [0]
    dblk, _, dcount = L.data
    mid_data = dblk + (dcount * L.item // BLOCK) // 2
    value = _pick(
        rng,
        [0, 1, blk - 1, blk + 1, L.n_blocks - 1, L.n_blocks, L.n_blocks + 1, 2**31, 2**32 - 1, _pick(rng, others)]
        + [mid_data, L.n_blocks * 1000],
    )
    _sec_field(p, name, "uBlockIndex", value)


def _m2_sec_bytes(p, L, rng):
    name = _choose_section(L, rng)
    nbytes = L.sections[name][1]
    entry = _NEO_ENTRY.get(name, nbytes)
    value = _pick(rng, [0, 1, entry - 1, entry + 1, nbytes * 2, nbytes // 2, 2**31, 2**32 - 1, L.size, BLOCK])
    _sec_field(p, name, "uBytes", value)


def _m2_sec_count(p, L, rng):
    name = _choose_section(L, rng)
    blk, nbytes, count = L.sections[name]
    fits = (L.size - blk * BLOCK) // max(nbytes, 1)
    value = _pick(
        rng,
        [0, 1, -1, -(2**63), 2**63 - 1, 2**31, 2**32, count + 1, count - 1, count * 2, L.size, fits, fits + 1],
    )
    _sec_field(p, name, "llNumEntries", value)


def _m2_sec_swap(p, L, rng):
    a = _choose_section(L, rng)
    b = _pick(rng, [n for n in ABF2_SECTIONS if n != a])
    oa, ob = _TABLE + 16 * ABF2_SECTIONS.index(a), _TABLE + 16 * ABF2_SECTIONS.index(b)
    if rng.random() < 0.5:
        p.b[oa : oa + 16], p.b[ob : ob + 16] = bytes(p.b[ob : ob + 16]), bytes(p.b[oa : oa + 16])
        p.notes.append(f"{a} <-> {b} descriptors swapped")
    else:
        p.b[ob : ob + 16] = bytes(p.b[oa : oa + 16])
        p.notes.append(f"{b} descriptor := {a}'s (overlapping)")


def _m2_sec_zero(p, L, rng):
    name = _choose_section(L, rng)
    off = _TABLE + 16 * ABF2_SECTIONS.index(name)
    p.b[off : off + 16] = b"\x00" * 16
    p.notes.append(f"{name} descriptor zeroed")


def _m2_data_size(p, L, rng):
    blk, nbytes, count = L.data
    n = L.n_ch
    avail = max(0, (L.size - blk * BLOCK) // max(L.item, 1))
    if rng.random() < 0.25:
        _sec_field(p, "DataSection", "uBytes", _pick(rng, [6 - L.item, 0, 1, 8, 2**32 - 1]))
        return
    value = _pick(
        rng, [avail, avail + 1, avail + n, count + 1, count - 1, count + n, count - n, 0, 1, n, count // 2, count * 2]
    )
    _sec_field(p, "DataSection", "llNumEntries", value)
    if rng.random() < 0.3:  # the sweeps told by the synch array no longer add up to it either
        _m2_synch_entry(p, L, rng)


def _m2_data_block(p, L, rng):
    blk = L.data[0]
    synch = L.sections["SynchArraySection"][0]
    value = _pick(rng, [0, 1, blk - 1, blk + 1, synch, L.n_blocks - 1, L.n_blocks, 2**31, 2**32 - 1])
    _sec_field(p, "DataSection", "uBlockIndex", value)


def _m2_data_cut(p, L, rng):
    blk, _, count = L.data
    end = blk * BLOCK + count * L.item
    k = _pick(rng, [1, L.item, L.item * L.n_ch, BLOCK, -1, -BLOCK])
    if rng.random() < 0.3:
        target = _pick(rng, [v[0] * BLOCK for v in L.sections.values() if v[2]] or [0])
        p.cut(target + _pick(rng, [-1, 0, 1, 16]), "cut at a section start")
    else:
        p.cut(end - k, "cut at the data end")


def _m2_adc_count(p, L, rng):
    n = L.sections["ADCSection"][2]
    _sec_field(p, "ADCSection", "llNumEntries", _pick(rng, [n + 1, n - 1, 0, 2, 3, 4, 16, 17, 64, 1000, 2**16]))
    if rng.random() < 0.3:
        _sec_field(p, "ADCSection", "uBytes", _pick(rng, [82, 81, 64, 0, 256]))


def _m2_adc_entry(p, L, rng):
    blk, nbytes, n = L.sections["ADCSection"]
    n = max(1, min(n, 16))
    c = int(rng.integers(n))
    base = blk * BLOCK + nbytes * c
    if n > 1 and rng.random() < 0.2:  # duplicate entry 0 over entry c
        src = bytes(p.b[blk * BLOCK : blk * BLOCK + nbytes])
        p.write(base if c else base + nbytes, src, "ADC entry 0 duplicated")
        return
    key = _pick(rng, list(_ADC_FIELDS))
    off, fmt = _ADC_FIELDS[key]
    if fmt == "f":
        value = _pick(rng, _FLOAT_AWKWARD)
    else:
        value = _pick(rng, [-1, c + 1, 16, 99, 2, 32767, -32768, 2**31 - 1, -(2**31), 0])
    p.put(fmt, base + off, value, f"adc{c}.{key}")


def _m2_rate(p, L, rng):
    cur = p.get("f", L.protocol + 2) or 25.0
    value = _pick(rng, list(_FLOAT_AWKWARD) + [cur * (1 + 1e-7), cur * 3, cur / 3, cur * 1.00005])
    p.put("f", L.protocol + 2, value, "protocol.fADCSequenceInterval")


def _m2_format(p, L, rng):
    cur = p.get("H", 30) or 0
    value = _pick(rng, [1 - min(cur, 1), 1 - min(cur, 1), 2, 3, 255, 65535])
    p.put("H", 30, value, "nDataFormat")
    if value in (0, 1) and rng.random() < 0.5:  # a consistent item size and count: the bytes reinterpreted
        item = 4 if value == 1 else 2
        blk, _, count = L.data
        _sec_field(p, "DataSection", "uBytes", item)
        _sec_field(p, "DataSection", "llNumEntries", count * L.item // item)


def _m2_mode(p, L, rng):
    value = _pick(rng, [0, 1, 2, 3, 4, 5, 6, 7, -1, 32767, -32768])
    p.put("h", L.protocol, value, "protocol.nOperationMode")
    r = rng.random()
    if r < 0.25:
        _sec_field(p, "SynchArraySection", "llNumEntries", 0)
    elif r < 0.5:
        _m2_synch_add(p, L, rng)


def _strings(p, L):
    blk, nbytes, _ = L.sections["StringsSection"]
    off = blk * BLOCK
    big = bytes(p.b[off : off + nbytes]) if 0 <= off < len(p) else b""
    tail = big[big.rfind(b"\x00\x00") :]
    return off, nbytes, len(tail.split(b"\x00")[1:])


def _m2_strings_section(p, L, rng):
    off, nbytes, _ = _strings(p, L)
    if rng.random() < 0.5:
        value = _pick(rng, [0, 1, 43, 44, nbytes - 1, nbytes // 2, nbytes + 1, 2**32 - 1])
        _sec_field(p, "StringsSection", "uBytes", value)
    else:
        others = [L.sections[n][0] for n in ("ProtocolSection", "DataSection", "ADCSection")]
        value = _pick(rng, [0, L.n_blocks, L.n_blocks - 1, 2**32 - 1, off // BLOCK + 1] + others)
        _sec_field(p, "StringsSection", "uBlockIndex", value)


def _m2_strings_header(p, L, rng):
    off, _, _ = _strings(p, L)
    if rng.random() < 0.3:
        p.write(off, b"XXXX", "SSCH signature")
        return
    k = int(rng.integers(1, 5))
    p.put("I", off + 4 * k, _pick(rng, [0, 1, 2**32 - 1, 2**31, 7, int(rng.integers(2**32))]), f"SSCH field {k}")


def _m2_strings_body(p, L, rng):
    off, nbytes, _ = _strings(p, L)
    end = min(len(p), off + nbytes)
    if end - off < 46:
        p.notes.append("strings section outside the file: body left as it is")
        return
    lo, hi = off + 44, end
    body = bytes(p.b[lo:hi])
    how = _pick(rng, ["no-nul", "double-nul", "invalid-utf8", "random", "all-nul", "no-terminator"])
    if how == "no-nul":
        new = body.replace(b"\x00", b"A")
    elif how == "double-nul":
        k = int(rng.integers(len(body)))
        new = (body[:k] + b"\x00\x00" + body[k:])[: len(body)]
    elif how == "invalid-utf8":
        k = int(rng.integers(len(body)))
        new = (body[:k] + b"\xff\xfe\xc3\x28\x80\xb5" + body[k + 6 :])[: len(body)]
    elif how == "random":
        new = rng.integers(0, 256, len(body), dtype=np.uint8).tobytes()
    elif how == "all-nul":
        new = b"\x00" * len(body)
    else:
        new = body.rstrip(b"\x00").ljust(len(body), b"Z")
    p.write(lo, new, f"strings body ({how})")


def _m2_strings_index(p, L, rng):
    _, _, n_strings = _strings(p, L)
    value = _pick(rng, [-1, 0, n_strings, n_strings + 1, n_strings - 1, 2**31 - 1, -(2**31), 10**6])
    where = rng.random()
    if where < 0.6:
        blk, nbytes, n = L.sections["ADCSection"]
        c = int(rng.integers(max(1, min(n, 16))))
        key = _pick(rng, ["lADCChannelNameIndex", "lADCUnitsIndex"])
        p.put("i", blk * BLOCK + nbytes * c + _ADC_FIELDS[key][0], value, f"adc{c}.{key}")
    elif where < 0.8:
        blk, nbytes, _ = L.sections["DACSection"]
        p.put("i", blk * BLOCK + _pick(rng, [24, 28]), value, "dac0.string index")
    else:
        off, name = _pick(rng, [(60, "uCreatorNameIndex"), (72, "uProtocolPathIndex"), (68, "uModifierNameIndex")])
        p.put("I", off, value, name)


def _m2_sweeps(p, L, rng):
    off, fmt, name = _pick(
        rng,
        [
            (12, "I", "lActualEpisodes"),
            (L.protocol + 30, "i", "protocol.lEpisodesPerRun"),
            (L.protocol + 22, "i", "protocol.lNumSamplesPerEpisode"),
            (L.protocol + 86, "i", "protocol.lSamplesPerTrace"),
        ],
    )
    cur = p.get(fmt, off) or 0
    p.put(fmt, off, _pick(rng, [0, 1, -1, cur + 1, cur - 1, cur * 2, 2**31 - 1, 10**6]), name)


def _m2_synch_section(p, L, rng):
    blk, nbytes, count = L.sections["SynchArraySection"]
    if count == 0:
        return _m2_synch_add(p, L, rng)
    fits = (L.size - blk * BLOCK) // 8
    if rng.random() < 0.7:
        value = _pick(rng, [count + 1, count - 1, 0, 1, count * 2, fits, fits + 1, 2**31, -1, -(2**63)])
        _sec_field(p, "SynchArraySection", "llNumEntries", value)
    else:
        value = _pick(rng, [0, L.data[0], L.n_blocks, blk - 1, 2**32 - 1])
        _sec_field(p, "SynchArraySection", "uBlockIndex", value)


def _synch_entries(n_items: int, n_ch: int, rng) -> np.ndarray:
    """A made-up synch array for ``n_items`` data items: plausible, then perturbed."""
    n_sweeps = int(_pick(rng, [1, 2, 3, 7, 50, 2000, max(1, n_items // max(n_ch, 1))]))
    n_sweeps = max(1, min(n_sweeps, 20_000))  # a flood far above read_abf's 1000-sweep check, still quick
    n_items, n_ch = min(max(int(n_items), 1), 2**31 - 1), max(int(n_ch), 1)
    length = max(n_ch, (n_items // n_sweeps) // n_ch * n_ch)
    e = np.zeros(n_sweeps, dtype=[("start", "<i4"), ("len", "<i4")])
    e["start"] = (np.arange(n_sweeps, dtype=np.int64) * (length // n_ch)).astype("<i4")  # wraps like a C int32
    e["len"] = _wrap("i", length)
    return e


def _m2_synch_add(p, L, rng):
    _, _, count = L.data
    how = rng.random()
    if how < 0.3:  # point the synch array at the data: samples read as (start, length) pairs
        _sec_field(p, "SynchArraySection", "uBlockIndex", L.data[0])
        _sec_field(p, "SynchArraySection", "uBytes", 8)
        _sec_field(p, "SynchArraySection", "llNumEntries", _pick(rng, [1, 2, 16, max(1, count * L.item // 8)]))
        return
    e = _synch_entries(max(count, 1), L.n_ch, rng)
    if rng.random() < 0.5:
        _perturb_synch(e, rng, p)
    blk = p.append_blocks(e.tobytes(), "synch array")
    _sec_field(p, "SynchArraySection", "uBlockIndex", blk)
    _sec_field(p, "SynchArraySection", "uBytes", 8)
    _sec_field(p, "SynchArraySection", "llNumEntries", len(e))


def _perturb_synch(e: np.ndarray, rng, p: _Patch) -> None:
    j = int(rng.integers(len(e)))
    key = _pick(rng, ["start", "len", "len", "all-len", "reverse"])
    if key == "all-len":
        value = _pick(rng, [1, 0, 2, int(e["len"][0]) + 1])
        e["len"] = value
        p.notes.append(f"every synch length := {value}")
    elif key == "reverse":
        e["start"] = e["start"][::-1].copy()
        p.notes.append("synch starts reversed")
    else:
        cur = int(e[key][j])
        value = _wrap("i", _pick(rng, [0, -1, 1, cur - 1, cur + 1, cur * 2, 2**31 - 1, -(2**31), cur * 1000]))
        e[key][j] = value
        p.notes.append(f"synch[{j}].{key} {cur} -> {value}")


def _m2_synch_entry(p, L, rng):
    blk, _, count = L.sections["SynchArraySection"]
    off = blk * BLOCK
    if count <= 0 or off + 8 * count > len(p) or count > 200_000:
        return _m2_synch_add(p, L, rng)
    e = np.frombuffer(bytes(p.b[off : off + 8 * count]), dtype=[("start", "<i4"), ("len", "<i4")]).copy()
    _perturb_synch(e, rng, p)
    p.b[off : off + 8 * count] = e.tobytes()


def _m2_synch_unit(p, L, rng):
    value = _pick(rng, [0.0, float("nan"), float("inf"), -1.0, 1e-30, 1e30, 12.5, 25.0, 0.5, -0.0, 1e-45])
    p.put("f", L.protocol + 14, value, "protocol.fSynchTimeUnit")
    if rng.random() < 0.4:
        p.put("h", L.protocol, 1, "protocol.nOperationMode")  # event-driven: Neo divides the lengths by it


def _m2_tags(p, L, rng):
    if rng.random() < 0.5:
        n = int(_pick(rng, [1, 3, 100]))
        tags = bytearray(64 * n)
        for k in range(n):
            t = _pick(rng, [0, -1, 2**31 - 1, -(2**31), int(rng.integers(0, 10**6))])
            comment = rng.integers(0, 256, 56, dtype=np.uint8).tobytes() if rng.random() < 0.5 else b"tag".ljust(56)
            struct.pack_into("<i56shh", tags, 64 * k, t, comment, _pick(rng, [0, 1, 2, -1, 99]), -1)
        blk = p.append_blocks(bytes(tags), "tag section")
        _sec_field(p, "TagSection", "uBlockIndex", blk)
        _sec_field(p, "TagSection", "uBytes", 64)
        _sec_field(p, "TagSection", "llNumEntries", n)
    else:
        _sec_field(
            p, "TagSection", _pick(rng, ["uBlockIndex", "uBytes", "llNumEntries"]), _pick(rng, [0, 1, 64, 2**31])
        )


# ---- ABF 1 kinds: the fixed header (offsets from Neo's headerDescriptionV1)
@dataclass
class _Layout1:
    size: int
    n_blocks: int
    n_ch: int
    item: int
    data_ptr: int
    total: int
    synch_ptr: int
    synch_n: int

    @classmethod
    def parse(cls, p: _Patch) -> _Layout1:
        g = lambda fmt, off: p.get(fmt, off) or 0  # noqa: E731
        return cls(
            len(p),
            -(-len(p) // BLOCK),
            int(min(max(g("h", 120), 1), 16)),
            4 if g("h", 100) == 1 else 2,
            g("i", 40),
            g("i", 10),
            g("i", 92),
            g("i", 96),
        )


def _m1_data_ptr(p, L, rng):
    value = _pick(rng, [0, 1, 11, 13, L.n_blocks - 1, L.n_blocks, L.n_blocks + 1, -1, 2**31 - 1, -(2**31), L.synch_ptr])
    p.put("i", 40, value, "lDataSectionPtr")


def _m1_data_size(p, L, rng):
    if rng.random() < 0.25:
        p.put("h", 14, _pick(rng, [1, -1, L.n_ch, 32767, -32768]), "nNumPointsIgnored")
        return
    avail = max(0, (L.size - L.data_ptr * BLOCK) // L.item)
    value = _pick(
        rng, [avail, avail + 1, avail + L.n_ch, L.total + 1, L.total - 1, L.total + L.n_ch, 0, -1, 2**31 - 1, -(2**31)]
    )
    p.put("i", 10, value, "lActualAcqLength")


def _m1_channels(p, L, rng):
    r = rng.random()
    if r < 0.45:
        value = _pick(rng, [0, -1, L.n_ch + 1, L.n_ch - 1, 2, 3, 16, 17, 100, 32767, -32768])
        p.put("h", 120, value, "nADCNumChannels")
    else:
        i = int(rng.integers(min(L.n_ch + 1, 16)))
        base, name = (410, "nADCSamplingSeq") if r < 0.8 else (378, "nADCPtoLChannelMap")
        value = _pick(rng, [-1, 16, 99, 32767, -32768, i + 1, 0, 15])
        p.put("h", base + 2 * i, value, f"{name}[{i}]")


def _m1_rate(p, L, rng):
    cur = p.get("f", 122) or 25.0
    value = _pick(rng, list(_FLOAT_AWKWARD) + [cur * (1 + 1e-7), cur * 3, cur / 3, cur * 1.00005])
    p.put("f", 122, value, "fADCSampleInterval")


def _m1_format(p, L, rng):
    cur = p.get("h", 100) or 0
    p.put("h", 100, _pick(rng, [1 - min(max(cur, 0), 1)] * 2 + [2, -1, 255, 32767]), "nDataFormat")
    if rng.random() < 0.4:  # keep the byte count: the data reinterpreted
        new_item = 4 if (p.get("h", 100) == 1) else 2
        p.put("i", 10, L.total * L.item // new_item, "lActualAcqLength")


def _m1_mode(p, L, rng):
    p.put("h", 8, _pick(rng, [0, 1, 2, 3, 4, 5, 6, 7, -1, 32767, -32768]), "nOperationMode")
    r = rng.random()
    if r < 0.25:
        p.put("i", 96, 0, "lSynchArraySize")
    elif r < 0.5:
        _m1_synch_add(p, L, rng)


def _m1_strings(p, L, rng):
    c = int(rng.integers(min(L.n_ch + 1, 16)))
    where, width, name = _pick(
        rng,
        [
            (442 + 10 * c, 10, f"sADCChannelName[{c}]"),
            (602 + 8 * c, 8, f"sADCUnits[{c}]"),
            (4898, 384, "sProtocolPath"),
        ],
    )
    raw = _pick(
        rng,
        [
            b"\xff" * width,
            b"\x00" * width,
            b"pA\x00\xff\xfe",
            b"\xb5A",
            b"nA",
            b"mV",
            b"pA" + b"\xc3\x28" * 3,
            rng.integers(0, 256, width, dtype=np.uint8).tobytes(),
            b" " * width,
        ],
    )
    p.write(where, raw[:width].ljust(width, b" "), name)


def _m1_sweeps(p, L, rng):
    off, name = _pick(
        rng,
        [
            (16, "lActualEpisodes"),
            (138, "lNumSamplesPerEpisode"),
            (146, "lEpisodesPerRun"),
            (96, "lSynchArraySize"),
            (92, "lSynchArrayPtr"),
        ],
    )
    cur = p.get("i", off) or 0
    fits = (L.size - L.synch_ptr * BLOCK) // 8
    value = _pick(rng, [0, 1, -1, cur + 1, cur - 1, cur * 2, 2**31 - 1, -(2**31), fits, fits + 1, L.n_blocks])
    p.put("i", off, value, name)


def _m1_synch_add(p, L, rng):
    if rng.random() < 0.3:  # the data read as a synch array
        p.put("i", 92, L.data_ptr, "lSynchArrayPtr")
        p.put("i", 96, _pick(rng, [1, 2, 16, max(1, L.total * L.item // 8)]), "lSynchArraySize")
        return
    e = _synch_entries(max(L.total, 1), L.n_ch, rng)
    if rng.random() < 0.5:
        _perturb_synch(e, rng, p)
    blk = p.append_blocks(e.tobytes(), "synch array")
    p.put("i", 92, blk, "lSynchArrayPtr")
    p.put("i", 96, len(e), "lSynchArraySize")


def _m1_synch_entry(p, L, rng):
    off, count = L.synch_ptr * BLOCK, L.synch_n
    if count <= 0 or off <= 0 or off + 8 * count > len(p) or count > 200_000:
        return _m1_synch_add(p, L, rng)
    e = np.frombuffer(bytes(p.b[off : off + 8 * count]), dtype=[("start", "<i4"), ("len", "<i4")]).copy()
    _perturb_synch(e, rng, p)
    p.b[off : off + 8 * count] = e.tobytes()


def _m1_synch_unit(p, L, rng):
    value = _pick(rng, [0.0, float("nan"), float("inf"), -1.0, 1e-30, 1e30, 12.5, 25.0, 0.5, -0.0, 1e-45])
    p.put("f", 130, value, "fSynchTimeUnit")
    if rng.random() < 0.4:
        p.put("h", 8, 1, "nOperationMode")


def _m1_tags(p, L, rng):
    # Neo seeks lTagSectionPtr in bytes (not blocks) and reads lNumTagEntries entries of 64 bytes
    if rng.random() < 0.5:
        p.put("i", 48, _pick(rng, [1, 2, 100, 2**31 - 1, -1, L.size // 64, L.size // 64 + 1]), "lNumTagEntries")
    else:
        p.put("i", 44, _pick(rng, [0, BLOCK, L.size - 64, L.size, L.size + 1, 2**31 - 1, -1]), "lTagSectionPtr")
        p.put("i", 48, _pick(rng, [1, 3]), "lNumTagEntries")


def _m1_cut(p, L, rng):
    end = L.data_ptr * BLOCK + L.total * L.item
    target = _pick(rng, [end, L.synch_ptr * BLOCK, L.data_ptr * BLOCK, 6144, 2048])
    p.cut(target + _pick(rng, [-1, -L.item, -BLOCK, 1, 0]), "cut near a section boundary")


#: structure-aware mutation kinds: name -> (function, weight); ABF 2 and ABF 1
STRUCTURE_KINDS = {
    2: {
        "sec.block": (_m2_sec_block, 3),
        "sec.bytes": (_m2_sec_bytes, 3),
        "sec.count": (_m2_sec_count, 3),
        "sec.swap": (_m2_sec_swap, 1),
        "sec.zero": (_m2_sec_zero, 1),
        "data.size": (_m2_data_size, 3),
        "data.block": (_m2_data_block, 1),
        "data.cut": (_m2_data_cut, 1),
        "adc.count": (_m2_adc_count, 2),
        "adc.entry": (_m2_adc_entry, 2),
        "rate": (_m2_rate, 2),
        "format": (_m2_format, 2),
        "mode": (_m2_mode, 2),
        "strings.section": (_m2_strings_section, 1),
        "strings.header": (_m2_strings_header, 1),
        "strings.body": (_m2_strings_body, 1),
        "strings.index": (_m2_strings_index, 2),
        "sweeps": (_m2_sweeps, 1),
        "synch.section": (_m2_synch_section, 2),
        "synch.entry": (_m2_synch_entry, 2),
        "synch.add": (_m2_synch_add, 1),
        "synch.unit": (_m2_synch_unit, 1),
        "tags": (_m2_tags, 1),
    },
    1: {
        "v1.data-ptr": (_m1_data_ptr, 3),
        "v1.data-size": (_m1_data_size, 3),
        "v1.channels": (_m1_channels, 3),
        "v1.rate": (_m1_rate, 2),
        "v1.format": (_m1_format, 2),
        "v1.mode": (_m1_mode, 2),
        "v1.strings": (_m1_strings, 2),
        "v1.sweeps": (_m1_sweeps, 2),
        "v1.synch.entry": (_m1_synch_entry, 2),
        "v1.synch.add": (_m1_synch_add, 1),
        "v1.synch.unit": (_m1_synch_unit, 1),
        "v1.tags": (_m1_tags, 1),
        "v1.cut": (_m1_cut, 1),
    },
}


def mutate_structure(src: Source, rng: np.random.Generator) -> tuple[bytes, str, str]:
    """One seeded structure-aware mutation of ``src``: (bytes, description, kind)."""
    version = 2 if src.data[:4] == b"ABF2" else 1
    kinds = STRUCTURE_KINDS[version]
    names = list(kinds)
    w = np.array([kinds[n][1] for n in names], float)
    n_steps = 1 if rng.random() < 0.8 else int(rng.integers(2, 4))
    p = _Patch(src.data)
    chosen = []
    for _ in range(n_steps):
        name = names[int(rng.choice(len(names), p=w / w.sum()))]
        if len(p) < _TABLE + 16 * len(ABF2_SECTIONS) or len(p) < 160:
            break  # cut below the header by an earlier step: nothing left to parse
        layout = (_Layout2 if version == 2 else _Layout1).parse(p)
        kinds[name][0](p, layout, rng)
        chosen.append(name)
    kind = chosen[0] if len(chosen) == 1 else "multi"
    return bytes(p.b), f"struct {'+'.join(chosen)}: " + "; ".join(p.notes), kind


# ------------------------------------------------------------------------------------------ running
MIXES = ("all", "classic", "structure")
TRACE_CHUNK = 1_000_000  # frames read at once when checking the traces of an accepted recording
TRACE_MAX_FRAMES = 8_000_000  # per case: beyond this, only the start and end of each sweep are read
#: the per-case time limit grows with the sweeps the header declares (reading is linear in them: Neo and
#: SpikeInterface spend ~1-3 ms per sweep), up to this many sweeps; a case over ``budget_s`` that finishes
#: within its limit is reported as slow, not as a hang
SWEEP_ALLOWANCE_S = 0.003
SWEEP_ALLOWANCE_MAX = 5000


def declared_sweeps(data: bytes) -> int:
    """The number of sweeps the header's synch array declares (as many entries as fit in the file)."""
    if data[:4] == b"ABF2" and len(data) >= _TABLE + 16 * 16:
        block, _nbytes, count = struct.unpack_from("<IIq", data, _TABLE + 16 * ABF2_SECTIONS.index("SynchArraySection"))
    elif data[:4] == b"ABF " and len(data) >= 100:
        block, count = struct.unpack_from("<ii", data, 92)
    else:
        return 0
    return int(max(0, min(count, (len(data) - block * BLOCK) // 8)))


def case_budget(budget_s: float, data: bytes) -> float:
    """The time limit of one case: ``budget_s`` plus an allowance per declared sweep (see SWEEP_ALLOWANCE_S)."""
    return budget_s + SWEEP_ALLOWANCE_S * min(declared_sweeps(data), SWEEP_ALLOWANCE_MAX)


class CaseTimeout(BaseException):
    """The per-case time budget ran out (a BaseException, so that no ``except Exception`` swallows it)."""


class BadTraces(Exception):
    """An accepted recording whose traces are not finite or not of the announced shape."""

    def __init__(self, what: str, message: str):
        super().__init__(message)
        self.what = what


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


def _maxrss_mb() -> float:
    """Peak resident set size of this process so far (MiB; ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return float("nan")


def check_traces(rec) -> None:
    """Read the traces of an accepted recording back (pA): every one finite, of shape (n_samples, n_channels).
    Raises BadTraces."""
    n_ch = rec.get_num_channels()
    n_seg = rec.get_num_segments()
    total = sum(rec.get_num_samples(s) for s in range(n_seg))
    for seg in range(n_seg):
        n = rec.get_num_samples(seg)
        if total <= TRACE_MAX_FRAMES:
            windows = [(a, min(n, a + TRACE_CHUNK)) for a in range(0, n, TRACE_CHUNK)]
        else:
            windows = sorted({(0, min(n, 100_000)), (max(0, n - 100_000), n)})
        for a, b in windows:
            tr = rec.get_traces(segment_index=seg, start_frame=a, end_frame=b, return_in_uV=True)
            if tr.shape != (b - a, n_ch):
                raise BadTraces("badshape", f"sweep {seg} frames {a}:{b} gave shape {tr.shape}, not {(b - a, n_ch)}")
            if tr.dtype.kind == "f" and not np.isfinite(tr).all():
                bad = int((~np.isfinite(tr)).sum())
                raise BadTraces("nonfinite", f"sweep {seg} frames {a}:{b} hold {bad} NaN/inf values in pA")


def run_case(path: Path, small: bool, budget_s: float) -> tuple[str, str]:
    """(outcome, message) of reading ``path``, reading its traces back, and detecting on it when small."""
    from spikeinterface_sero import read_abf
    from spikeinterface_sero.errors import SeroError
    from spikeinterface_sero.snippets import recording_to_snippets

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, budget_s)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rec = read_abf(path)
            check_traces(rec)
            n = sum(rec.get_num_samples(s) for s in range(rec.get_num_segments())) * rec.get_num_channels()
            if small and n <= SNIPPET_MAX_SAMPLES:
                recording_to_snippets(rec)
        return "processed", ""
    except CaseTimeout:
        return "escaped:hang", f"no answer within {budget_s:g} s"
    except SeroError as e:
        return f"refused:{type(e).__name__}", str(e)
    except BadTraces as e:
        return f"escaped:{e.what}", str(e)
    except BaseException as e:  # noqa: BLE001 - the point is to catch everything else
        if isinstance(e, KeyboardInterrupt):
            raise
        tb = traceback.extract_tb(e.__traceback__)
        where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
        return f"escaped:{type(e).__name__}", f"{str(e)[:300]} (at {where})"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def make_case(sources: list[Source], i: int, seed: int, mix: str = "all") -> tuple[Source, bytes, str, str]:
    """Case ``i``: (source, mutated bytes, description, kind). ``mix="classic"`` gives the first version's
    cases exactly."""
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {MIXES}, got {mix!r}")
    rng = np.random.default_rng([seed, i])
    src = sources[int(rng.integers(len(sources)))]
    structure = mix == "structure" or (mix == "all" and rng.random() < 0.5)
    if structure:
        data, desc, kind = mutate_structure(src, rng)
        return src, data, desc, kind
    data, desc = mutate(src, rng)
    return src, data, desc, desc.split(":", 1)[0].split(" ", 1)[0]


def iter_cases(sources: list[Source], n_cases: int, seed: int, mix: str = "classic"):
    """Deterministic cases: (index, source, mutated bytes, description)."""
    for i in range(n_cases):
        src, data, desc, _kind = make_case(sources, i, seed, mix)
        yield i, src, data, desc


def _one_case(sources, i, seed, mix, budget_s, folder: Path, rss_growth_mb: float) -> dict:
    src, data, desc, kind = make_case(sources, i, seed, mix)
    p = folder / f"case{i}.abf"  # a fresh name per case: never rewrite a file Neo may still map
    p.write_bytes(data)
    before = _maxrss_mb()
    t0 = time.perf_counter()
    outcome, msg = run_case(p, src.small, case_budget(budget_s, data))
    dt = time.perf_counter() - t0
    after = _maxrss_mb()
    with contextlib.suppress(OSError):
        p.unlink()
    if after - before > rss_growth_mb and not outcome.startswith("escaped"):
        outcome, msg = "escaped:memory", f"peak RSS grew by {after - before:.0f} MiB (to {after:.0f} MiB); {msg}"
    return dict(
        case=i,
        source=src.name,
        kind=kind,
        mutation=desc,
        outcome=outcome,
        message=msg,
        seconds=dt,
        maxrss_mb=after,
        growth_mb=after - before,
    )


def _pool_worker(conn, sources, seed, mix, budget_s, mem_limit_gb, rss_growth_mb, folder):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with memory_cap(mem_limit_gb):
        while True:
            i = conn.recv()
            if i is None:
                break
            conn.send(_one_case(sources, i, seed, mix, budget_s, folder, rss_growth_mb))
    conn.send(dict(done=True, maxrss_mb=_maxrss_mb(), rss_mb=_rss_mb()))


class _WorkerPool:
    """The forked workers of :func:`_run_pool`: each ``busy`` one runs a case, each ``done`` one has been told
    to stop and owes its final report (its peak memory)."""

    def __init__(self, n_cases, sources, seed, mix, budget_s, mem_limit_gb, rss_growth_mb, tmp: Path, on_result):
        import multiprocessing as mp

        self.ctx = mp.get_context("fork")
        self.n_cases, self.sources, self.seed, self.mix = n_cases, sources, seed, mix
        self.worker_args = (budget_s, mem_limit_gb, rss_growth_mb)
        self.tmp, self.on_result = tmp, on_result
        self.next, self.spawned, self.peak, self.final_rss = 0, 0, 0.0, []
        self.busy: list[dict] = []
        self.done: list[dict] = []

    def spawn(self) -> dict:
        parent, child = self.ctx.Pipe()
        k = self.spawned
        self.spawned += 1
        budget_s, mem_limit_gb, rss_growth_mb = self.worker_args
        args = (
            child,
            self.sources,
            self.seed,
            self.mix,
            budget_s,
            mem_limit_gb,
            rss_growth_mb,
            str(self.tmp / f"w{k}"),
        )
        proc = self.ctx.Process(target=_pool_worker, args=args, daemon=True)
        proc.start()
        child.close()
        return dict(proc=proc, conn=parent, case=None, t0=0.0)

    def feed(self, w) -> None:
        """Send ``w`` the next case, or None (stop) when all are handed out."""
        if self.next < self.n_cases:
            w["case"], w["t0"] = self.next, time.perf_counter()
            self.next += 1
            w["conn"].send(w["case"])
        else:
            w["case"] = None
            w["conn"].send(None)

    def start(self, w) -> None:
        """Feed a worker and file it as busy, or as done when no case was left."""
        self.feed(w)
        (self.busy if w["case"] is not None else self.done).append(w)

    def lost(self, w, outcome, msg) -> None:
        """Report ``w``'s case as escaped, kill the worker and start a fresh one on the next case."""
        self.busy.remove(w)
        src, _data, desc, kind = make_case(self.sources, w["case"], self.seed, self.mix)
        self.on_result(
            dict(
                case=w["case"],
                source=src.name,
                kind=kind,
                mutation=desc,
                outcome=outcome,
                message=msg,
                seconds=time.perf_counter() - w["t0"],
                maxrss_mb=0.0,
                growth_mb=0.0,
            )
        )
        with contextlib.suppress(OSError, ValueError):
            w["proc"].kill()
        w["proc"].join(5)
        w["conn"].close()
        self.start(self.spawn())

    def finish(self, w) -> None:
        """Wait for a stopped worker's final report (its peak memory)."""
        if w["conn"].poll(10):
            with contextlib.suppress(EOFError, OSError):
                r = w["conn"].recv()
                self.peak = max(self.peak, r.get("maxrss_mb", 0.0))
                self.final_rss.append(r.get("rss_mb", float("nan")))
        w["proc"].join(5)
        self.done.remove(w)

    def receive(self, w) -> None:
        """Take ``w``'s result and feed it the next case (a worker that died loses its case)."""
        try:
            r = w["conn"].recv()
        except (EOFError, OSError):
            self.lost(w, "escaped:crash", f"the worker process died (exit code {w['proc'].exitcode})")
            return
        self.peak = max(self.peak, r["maxrss_mb"])
        self.on_result(r)
        self.feed(w)
        if w["case"] is None:
            self.busy.remove(w)
            self.done.append(w)

    def kill_all(self) -> None:
        for w in self.busy + self.done:
            with contextlib.suppress(OSError, ValueError):
                w["proc"].kill()


def _run_pool(n_cases, sources, seed, mix, budget_s, mem_limit_gb, rss_growth_mb, tmp: Path, workers, on_result):
    """Run the cases in ``workers`` forked processes, each with its in-process time guard, and a watchdog
    that kills a worker stuck in one case (C code that never returns to Python) and starts another."""
    from multiprocessing.connection import wait

    hard_limit = (budget_s + SWEEP_ALLOWANCE_S * SWEEP_ALLOWANCE_MAX) * 2 + 10.0
    pool = _WorkerPool(n_cases, sources, seed, mix, budget_s, mem_limit_gb, rss_growth_mb, tmp, on_result)
    workers_started = [pool.spawn() for _ in range(max(1, min(workers, n_cases)))]
    for w in workers_started:
        pool.feed(w)
    pool.busy = [w for w in workers_started if w["case"] is not None]
    try:
        while pool.busy or pool.done:
            for w in list(pool.done):
                pool.finish(w)
            if not pool.busy:
                break
            for conn in wait([w["conn"] for w in pool.busy], timeout=0.5):
                pool.receive(next(w for w in pool.busy if w["conn"] is conn))
            now = time.perf_counter()
            for w in list(pool.busy):
                if now - w["t0"] > hard_limit:
                    pool.lost(
                        w, "escaped:hang", f"killed by the watchdog after {hard_limit:g} s (stuck outside Python)"
                    )
    finally:
        pool.kill_all()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return max(pool.peak, children), pool.final_rss, pool.spawned


def warm_up(sources: list[Source], folder: Path) -> None:
    """Read, check and detect on one unmutated file, so that the lazy imports of the reading path (Neo,
    SpikeInterface's extractors and preprocessing, the detection) are done before any case is timed (and
    before the workers fork, which then inherit them)."""
    src = next((s for s in sources if s.small), sources[0])
    p = Path(folder) / "warm_up.abf"
    p.write_bytes(src.data)
    run_case(p, src.small, 600.0)
    with contextlib.suppress(OSError):
        p.unlink()


def fuzz(
    n_cases: int,
    seed: int = 0,
    budget_s: float = 5.0,
    use_shared: bool = True,
    mem_limit_gb: float = 3.0,
    workdir=None,
    sources: list[Source] | None = None,
    progress=None,
    mix: str = "all",
    workers: int = 1,
    rss_growth_mb: float = 1024.0,
) -> dict:
    """Run ``n_cases`` cases; returns counts per outcome and per mutation kind, the escapes, peak memory and
    timings. ``workers=1`` runs every case in this process (time guard: SIGALRM); more fork worker
    processes that split the cases (and a watchdog for hangs outside Python)."""
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {MIXES}, got {mix!r}")
    tmp_ctx = tempfile.TemporaryDirectory(prefix="sero-fuzz-") if workdir is None else contextlib.nullcontext(workdir)
    with tmp_ctx as tmp:
        tmp = Path(tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        if sources is None:
            sources = own_sources(tmp / "src") + (shared_sources() if use_shared else [])
        prepare(sources)
        warm_up(sources, tmp)

        results = []
        t_all = time.perf_counter()
        rss_start = _rss_mb()

        def on_result(r):
            results.append(r)
            if progress is not None and len(results) % progress == 0:
                n_esc = sum(x["outcome"].startswith("escaped") for x in results)
                print(
                    f"  {len(results)} cases, {n_esc} escaped, {time.perf_counter() - t_all:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )

        if workers <= 1:
            folder = tmp / "cases"
            folder.mkdir(exist_ok=True)
            with memory_cap(mem_limit_gb):
                for i in range(n_cases):
                    on_result(_one_case(sources, i, seed, mix, budget_s, folder, rss_growth_mb))
            peak, final_rss, spawned = _maxrss_mb(), [_rss_mb()], 0
        else:
            peak, final_rss, spawned = _run_pool(
                n_cases, sources, seed, mix, budget_s, mem_limit_gb, rss_growth_mb, tmp, workers, on_result
            )
        total = time.perf_counter() - t_all
    results.sort(key=lambda r: r["case"])
    counts, per_source, per_kind, examples = Counter(), Counter(), defaultdict(Counter), {}
    escapes = []
    for r in results:
        counts[r["outcome"]] += 1
        per_source[r["source"]] += 1
        per_kind[r["kind"]][r["outcome"].split(":")[0]] += 1
        if r["outcome"] not in examples:
            examples[r["outcome"]] = dict(case=r["case"], source=r["source"], mutation=r["mutation"])
            examples[r["outcome"]]["message"] = r["message"][:300]
        if r["outcome"].startswith("escaped"):
            escapes.append({k: r[k] for k in ("case", "source", "kind", "mutation", "outcome", "message")})
    slowest = max(results, key=lambda r: r["seconds"], default=None)
    slow = [r for r in results if r["seconds"] > budget_s and r["outcome"] != "escaped:hang"]
    biggest = max(results, key=lambda r: r["growth_mb"], default=None)
    n_escaped = sum(v for k, v in counts.items() if k.startswith("escaped"))
    return dict(
        cases=n_cases,
        seed=seed,
        mix=mix,
        workers=max(1, workers),
        seconds=total,
        counts=dict(sorted(counts.items())),
        kinds={k: dict(v) for k, v in sorted(per_kind.items())},
        escapes=escapes,
        n_processed=counts["processed"],
        n_refused=sum(v for k, v in counts.items() if k.startswith("refused")),
        n_escaped=n_escaped,
        n_hangs=counts["escaped:hang"],
        n_memory=counts["escaped:memory"],
        n_slow=len(slow),
        slow_cases=[
            dict(case=r["case"], source=r["source"], seconds=round(r["seconds"], 2), outcome=r["outcome"])
            | dict(mutation=r["mutation"][:300])
            for r in sorted(slow, key=lambda r: -r["seconds"])[:20]
        ],
        n_tracebacks=n_escaped - counts["escaped:hang"] - counts["escaped:memory"],
        peak_rss_mb=peak,
        rss_start_mb=rss_start,
        rss_end_mb=max(final_rss) if final_rss else float("nan"),
        worker_processes=spawned,
        sources=[s.name for s in sources],
        slowest_case=dict(
            seconds=slowest["seconds"] if slowest else 0.0,
            case=f"case {slowest['case']} {slowest['source']}: {slowest['mutation']}" if slowest else None,
        ),
        biggest_memory_case=dict(
            growth_mb=biggest["growth_mb"] if biggest else 0.0,
            case=f"case {biggest['case']} {biggest['source']}: {biggest['mutation']}" if biggest else None,
        ),
        examples=examples,
    )


def replay(case: int, seed: int = 0, use_shared: bool = True, out=None, mix: str = "all") -> Path:
    """Write the mutated file of one case (to reproduce an escape by hand); returns its path."""
    tmp = Path(tempfile.mkdtemp(prefix="sero-fuzz-replay-"))
    sources = prepare(own_sources(tmp / "src") + (shared_sources() if use_shared else []))
    _src, data, desc, _kind = make_case(sources, case, seed, mix)
    p = Path(out) if out else tmp / f"case{case}.abf"
    p.write_bytes(data)
    print(f"case {case}: {desc} -> {p}", file=sys.stderr)
    return p


# ------------------------------------------------------------------------------------------ kill during write
APPEND_COLUMNS = ["file", "seq", "payload", "crc", "error"]


def table_version(k: int, n_rows: int):
    """Version ``k`` of a results table (deterministic; every row carries ``k``)."""
    import pandas as pd

    rng = np.random.default_rng(k)
    rows = np.arange(n_rows)
    return pd.DataFrame(
        {
            "file": np.char.add(f"v{k}_cell_", rows.astype(str)),
            "version": np.full(n_rows, k),
            "row": rows,
            "sero_probability": rng.random(n_rows),
            "firing_rate_hz": rng.gamma(2.0, 1.5, n_rows),
            "sero_label": np.where(rng.random(n_rows) < 0.5, "sero", "non-sero"),
        }
    )


def _append_row(seq: int, rng: np.random.Generator):
    import pandas as pd

    n = int(np.exp(rng.uniform(np.log(50), np.log(300_000))))  # 50 B to 300 kB: several pages, so a write can tear
    payload = "".join(_pick(rng, ["a", "b", "c", "d"]) for _ in range(64)) * (n // 64 + 1)
    payload = payload[:n]
    crc = zlib.crc32(f"{seq}|{payload}".encode())
    return pd.DataFrame([[f"cell_{seq}.abf", seq, payload, crc, ""]], columns=APPEND_COLUMNS)


def _table_writer(fd: int, target: str, start_k: int, n_rows: int) -> None:
    from spikeinterface_sero.export import write_table

    k = start_k
    while True:
        write_table(table_version(k, n_rows), target, overwrite=True)
        os.write(fd, f"{k}\n".encode())  # acknowledged: version k is on disk
        k += 1


def _append_writer(fd: int, target: str, start_seq: int, seed: int) -> None:
    import logging

    from spikeinterface_sero.watch import _ResultsCsv

    logging.getLogger("spikeinterface_sero.watch").setLevel(logging.ERROR)  # "torn row dropped" is expected
    results = _ResultsCsv(Path(target), APPEND_COLUMNS)  # a watcher restart: drops a torn last row
    rng = np.random.default_rng([seed, start_seq])
    seq = start_seq
    while True:
        results.append(_append_row(seq, rng))
        os.write(fd, f"{seq}\n".encode())  # acknowledged: row seq is on disk
        seq += 1


def _fork_and_kill(fn, args, delay_s: float) -> tuple[list[int], int]:
    """Run ``fn(fd, *args)`` in a forked child, SIGKILL it after ``delay_s``; returns (the numbers it
    acknowledged, its exit code: -9 when the kill ended it, >= 0 when it stopped by itself)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's stack (pytest, the fuzzer)
        code = 0
        try:
            os.close(r)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            fn(w, *args)
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
            code = 3
        finally:
            os._exit(code)
    os.close(w)
    time.sleep(delay_s)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    status = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    text = b"".join(chunks).decode()
    acks = [int(x) for x in text.split("\n")[:-1] if x.strip()]  # only whole lines
    return acks, status


def _check_appended(path: Path, acked: set[int]) -> tuple[list[str], bool, int]:
    """(problems, torn last line?, highest seq present) of the appended results file."""
    csv.field_size_limit(2**31 - 1)  # the test rows carry up to 300 kB in one field
    raw = path.read_bytes() if path.exists() else b""
    problems = []
    *whole, last = raw.split(b"\n")
    torn = bool(last)
    present = set()
    if not whole:
        problems.append("the header line is missing")
    for n, line in enumerate(whole):
        try:
            fields = next(csv.reader(io.StringIO(line.decode("utf-8"))))
        except (UnicodeDecodeError, StopIteration, csv.Error) as e:
            problems.append(f"line {n + 1} does not parse ({type(e).__name__})")
            continue
        if n == 0:
            if fields != APPEND_COLUMNS:
                problems.append(f"the header line is {fields[:5]}")
            continue
        if len(fields) != len(APPEND_COLUMNS):
            problems.append(f"line {n + 1} has {len(fields)} fields")
            continue
        try:
            seq = int(fields[1])
            ok = zlib.crc32(f"{seq}|{fields[2]}".encode()) == int(fields[3])
        except ValueError:
            ok, seq = False, -1
        if not ok:
            problems.append(f"line {n + 1} (row {fields[1][:20]}) is damaged")
            continue
        present.add(seq)
    missing = sorted(acked - present)
    if missing:
        problems.append(f"{len(missing)} acknowledged rows missing (first {missing[:5]})")
    return problems, torn, max(present | acked | {0})


@dataclass
class _KillTally:
    """What :func:`kill_during_write` counts over its rounds."""

    failures: list = field(default_factory=list)
    lost: int = 0
    torn_lines: int = 0
    leftovers: int = 0
    kills: int = 0
    simulated_torn: int = 0
    writer_errors: int = 0
    table_versions_seen: Counter = field(default_factory=Counter)

    def killed(self, what: str, status: int) -> None:
        self.kills += 1
        if status >= 0:
            self.writer_errors += 1
            self.failures.append(f"{what}: the writer stopped by itself (exit code {status})")


def kill_during_write(
    rounds: int = 60, seed: int = 0, workdir=None, table_rows: int = 60_000, progress: bool = False
) -> dict:
    """SIGKILL writers at random moments: ``rounds // 2`` table overwrites (``write_table``; CSV and JSON in
    turn) and the rest appends (the watcher's ``_ResultsCsv`` / ``append_line``). Counts lost results: a table
    that is neither the last acknowledged version nor the complete next one; acknowledged rows missing or
    damaged, a whole line that does not parse, or a file that a restart cannot read."""
    rng = np.random.default_rng([seed, 0x5E0])
    tmp_ctx = tempfile.TemporaryDirectory(prefix="sero-kill-") if workdir is None else contextlib.nullcontext(workdir)
    n_table = rounds // 2
    n_append = rounds - n_table
    tally = _KillTally()
    t_all = time.perf_counter()
    with tmp_ctx as tmp:
        tmp = Path(tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        out = tmp / "tables"
        out.mkdir(exist_ok=True)
        scratch = tmp / "expected"
        scratch.mkdir(exist_ok=True)
        _kill_table_writes(out, scratch, n_table, table_rows, rng, tally, progress)
        rows_acked = _kill_appends(out / "watch_results.csv", n_append, seed, rng, tally, progress)
    return dict(
        rounds=rounds,
        table_rounds=n_table,
        append_rounds=n_append,
        kills=tally.kills,
        lost_results=tally.lost,
        writer_errors=tally.writer_errors,
        failures=tally.failures,
        table_outcomes=dict(tally.table_versions_seen),
        rows_acknowledged=rows_acked,
        torn_lines_tolerated=tally.torn_lines,
        torn_lines_simulated=tally.simulated_torn,
        leftover_temp_files=tally.leftovers,
        seconds=time.perf_counter() - t_all,
    )


def _kill_table_writes(out: Path, scratch: Path, n_table: int, table_rows: int, rng, tally: _KillTally, progress):
    """Overwrite an existing table (CSV, then JSON), kill the writer, check it holds the old or the new version."""
    from spikeinterface_sero.export import write_table

    expected: dict = {}

    def expected_bytes(k, suffix):
        if (k, suffix) not in expected:
            q = scratch / f"v{k}{suffix}"
            write_table(table_version(k, table_rows), q, overwrite=True)
            expected[(k, suffix)] = q.read_bytes()
            q.unlink()
        return expected[(k, suffix)]

    for suffix_i, suffix in enumerate((".csv", ".json")):
        target = out / f"results{suffix}"
        t0 = time.perf_counter()
        write_table(table_version(0, table_rows), target)
        cycle = time.perf_counter() - t0
        current = 0
        n_here = n_table // 2 + (n_table % 2 if suffix_i == 0 else 0)
        for r in range(n_here):
            delay = float(rng.uniform(0, 0.05 * cycle) if rng.random() < 0.2 else rng.uniform(0, 2.5 * cycle))
            acks, status = _fork_and_kill(_table_writer, (str(target), current + 1, table_rows), delay)
            tally.killed(f"table{suffix} round {r}", status)
            last = max(acks, default=current)
            data = target.read_bytes() if target.exists() else None
            found = next((k for k in (last, last + 1) if data == expected_bytes(k, suffix)), None)
            if found is None:
                tally.lost += 1
                what = "missing" if data is None else f"{len(data)} bytes, not version {last} or {last + 1}"
                tally.failures.append(f"table{suffix} round {r} (killed after {delay * 1000:.0f} ms): {what}")
                write_table(table_version(last, table_rows), target, overwrite=True)
                found = last
            tally.table_versions_seen["new" if found > current else "old"] += 1
            current = found
            parts = list(out.glob(f".{target.name}.*.part"))
            tally.leftovers += len(parts)
            for q in parts:
                q.unlink()
            if progress:
                print(f"  kill {tally.kills}: {target.name} version {current}", file=sys.stderr, flush=True)


def _kill_appends(target: Path, n_append: int, seed: int, rng, tally: _KillTally, progress) -> int:
    """Kill the watcher's appender, check every acknowledged row, restart; return the rows acknowledged."""
    acked: set[int] = set()
    next_seq = 1
    for r in range(n_append):
        delay = float(rng.uniform(0.0, 0.4))
        acks, status = _fork_and_kill(_append_writer, (str(target), next_seq, seed), delay)
        tally.killed(f"append round {r}", status)
        acked |= set(acks)
        problems, torn, highest = _check_appended(target, acked)
        tally.torn_lines += torn
        if problems:
            tally.lost += len(problems)
            tally.failures += [f"append round {r} (killed after {delay * 1000:.0f} ms): {m}" for m in problems]
        next_seq = highest + 1
        if not torn and rng.random() < 0.3:  # a torn write as a kill inside write() leaves it: half a row
            text = _append_row(next_seq, rng).to_csv(header=False, index=False, lineterminator="\n")
            with open(target, "ab") as handle:
                handle.write(text.encode()[: max(1, len(text) // 2)])
            tally.simulated_torn += 1
            next_seq += 1  # never acknowledged: its number is not reused
        if progress:
            print(f"  kill {tally.kills}: {len(acked)} rows acknowledged, torn {torn}", file=sys.stderr, flush=True)
    if n_append:
        _restart_appended(target, acked, next_seq, rng, tally)
    return len(acked)


def _restart_appended(target: Path, acked: set[int], next_seq: int, rng, tally: _KillTally) -> None:
    """The final restart: a torn row is dropped, new rows append cleanly, the whole file parses."""
    import logging

    import pandas as pd

    from spikeinterface_sero.watch import _ResultsCsv

    watch_log = logging.getLogger("spikeinterface_sero.watch")
    level = watch_log.level
    watch_log.setLevel(logging.ERROR)  # "ended with a torn row ... dropped" is expected here
    try:
        results = _ResultsCsv(target, APPEND_COLUMNS)
        results.append(_append_row(next_seq, rng))
        table = pd.read_csv(target, dtype={"payload": str, "error": str}, keep_default_na=False)
        missing = acked - set(table["seq"].astype(int))
        if missing:
            tally.lost += len(missing)
            tally.failures.append(f"after the restart: {len(missing)} acknowledged rows missing")
        if next_seq not in set(table["seq"].astype(int)):
            tally.lost += 1
            tally.failures.append("after the restart: the new row is missing")
    except Exception as e:  # noqa: BLE001
        tally.lost += 1
        tally.failures.append(f"after the restart the file cannot be read: {type(e).__name__}: {e}")
    finally:
        watch_log.setLevel(level)


# ------------------------------------------------------------------------------------------ command line
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mix", choices=MIXES, default="all", help="classic, structure-aware, or both (default)")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="worker processes (1: in here)")
    ap.add_argument("--budget-s", type=float, default=5.0, help="time budget per case (a longer case is a hang)")
    ap.add_argument(
        "--mem-limit-gb", type=float, default=3.0, help="address space allowed above the start size (0: no cap)"
    )
    ap.add_argument("--rss-growth-mb", type=float, default=1024.0, help="peak RSS growth of one case that is an escape")
    ap.add_argument("--kill-rounds", type=int, default=60, help="kill-during-write rounds (0: none)")
    ap.add_argument("--no-shared", action="store_true", help="only our own write_abf files, not ../shared/abf")
    ap.add_argument("--replay", type=int, default=None, metavar="CASE", help="write one case's file and exit")
    ap.add_argument("--json", default=None, metavar="OUT")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.replay is not None:
        print(replay(args.replay, args.seed, not args.no_shared, mix=args.mix))
        return 0
    t_start = time.perf_counter()
    r = fuzz(
        args.cases,
        args.seed,
        args.budget_s,
        not args.no_shared,
        args.mem_limit_gb,
        progress=max(1000, args.cases // 20),
        mix=args.mix,
        workers=args.workers,
        rss_growth_mb=args.rss_growth_mb,
    )
    k = kill_during_write(args.kill_rounds, args.seed) if args.kill_rounds > 0 else None
    wall = time.perf_counter() - t_start
    print(
        f"{r['cases']} cases (seed {r['seed']}, mix {r['mix']}, {r['workers']} worker(s)) on {len(r['sources'])} "
        f"source files in {r['seconds']:.0f} s ({1000 * r['seconds'] / max(1, r['cases']):.1f} ms/case wall); "
        f"slowest {r['slowest_case']['seconds']:.2f} s"
    )
    print(f"{'outcome':<32}{'cases':>8}")
    for key, v in r["counts"].items():
        print(f"{key:<32}{v:>8}")
    print(f"{'mutation kind':<20}{'processed':>10}{'refused':>9}{'escaped':>9}")
    for key, v in r["kinds"].items():
        print(f"{key:<20}{v.get('processed', 0):>10}{v.get('refused', 0):>9}{v.get('escaped', 0):>9}")
    print("first case of each outcome:")
    for key, e in r["examples"].items():
        print(
            f"  {key}: case {e['case']} ({e['source']}; {e['mutation'][:200]})"
            + (f": {e['message'][:200]}" if e["message"] else "")
        )
    for e in r["slow_cases"][:10]:
        print(f"SLOW case {e['case']} ({e['source']}; {e['mutation'][:160]}): {e['seconds']:.1f} s, {e['outcome']}")
    for e in r["escapes"][:30]:
        print(f"ESCAPED case {e['case']} ({e['source']}; {e['mutation']}): {e['outcome']}: {e['message']}")
    if k is not None:
        for f in k["failures"][:30]:
            print(f"LOST/ERROR {f}")
    print("summary:")
    print(f"  cases run          {r['cases']}  (processed {r['n_processed']}, refused {r['n_refused']})")
    print(f"  tracebacks         {r['n_tracebacks']}")
    print(
        f"  hangs              {r['n_hangs']}  (limit {args.budget_s:g} s per case + {1000 * SWEEP_ALLOWANCE_S:g} ms per "
        f"declared sweep up to {SWEEP_ALLOWANCE_MAX}; {r['n_slow']} cases over {args.budget_s:g} s finished within it)"
    )
    print(
        f"  peak memory        {r['peak_rss_mb']:.0f} MiB peak RSS per process (start {r['rss_start_mb']:.0f} MiB, "
        f"end {r['rss_end_mb']:.0f} MiB; largest one-case growth {r['biggest_memory_case']['growth_mb']:.0f} MiB; "
        f"memory escapes {r['n_memory']})"
    )
    if k is not None:
        print(
            f"  lost results       {k['lost_results']}  ({k['kills']} kills: {k['table_rounds']} table overwrites "
            f"{k['table_outcomes']}, {k['append_rounds']} appends with {k['rows_acknowledged']} rows acknowledged, "
            f"{k['torn_lines_tolerated']} torn last lines left by kills and {k['torn_lines_simulated']} simulated, all "
            f"dropped on restart; {k['leftover_temp_files']} temporary "
            f"files left by killed writers; writer errors {k['writer_errors']}; {k['seconds']:.0f} s)"
        )
    else:
        print("  lost results       (not run: --kill-rounds 0)")
    print(f"  time               {wall:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(fuzz=r, kill_during_write=k), indent=2, default=str))
    return 1 if r["n_escaped"] or (k is not None and (k["lost_results"] or k["writer_errors"])) else 0


if __name__ == "__main__":
    sys.exit(main())
