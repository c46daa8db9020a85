"""Structure-aware fuzzing of the .abf reader and kill-during-write checks of the result writers (CI subset).

The engine is ``benchmarks/fuzz_abf.py``: it parses the ABF 2 section table (and the ABF 1 pointers) of each
source file and changes it on purpose (section blocks beyond the file or overlapping, entry sizes and counts
0 / huge / negative, the data section against the file size, ADC entries against the channels, the sampling
interval, the data format, the mode, the strings section, sweep counts and synch arrays); every case must be
read (finite traces of the announced shape) or refused with a SeroError, within its time limit and memory
bound. The kill-during-write mode SIGKILLs writers of results tables and of the watcher's appended CSV at
random moments and counts lost results. ``python benchmarks/fuzz_abf.py --cases 20000`` runs the benchmark.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import fuzz_report, load_fuzzer

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 5.0


@pytest.fixture(scope="module")
def fz():
    return load_fuzzer()


@pytest.fixture(scope="module")
def own(fz, tmp_path_factory):
    return fz.prepare(fz.own_sources(tmp_path_factory.mktemp("fuzz_structure_src")))


def test_structure_aware_cases_are_read_or_refused(fz, own, tmp_path):
    t0 = time.perf_counter()
    r = fz.fuzz(500, seed=23, budget_s=BUDGET_S, sources=own, workdir=tmp_path, mix="structure")
    assert r["n_escaped"] == 0, fuzz_report(r)
    assert r["n_hangs"] == 0 and r["n_memory"] == 0 and r["n_tracebacks"] == 0
    # both outcomes, several kinds of refusal, and most mutation kinds of both versions drawn
    assert r["n_processed"] > 40 and r["n_refused"] > 150, r["counts"]
    assert sum(k.startswith("refused:") for k in r["counts"]) >= 3, r["counts"]
    kinds = set(r["kinds"])
    assert len(kinds & set(fz.STRUCTURE_KINDS[2])) >= 18, kinds
    assert len(kinds & set(fz.STRUCTURE_KINDS[1])) >= 10, kinds
    assert r["peak_rss_mb"] > 0
    assert time.perf_counter() - t0 < 40


def test_structure_mutations_are_deterministic_and_cover_every_kind(fz, own):
    def run():
        h, kinds = hashlib.sha256(), Counter()
        for i in range(1500):
            src, data, desc, kind = fz.make_case(own, i, 31, "structure")
            h.update(src.name.encode() + desc.encode() + data)
            kinds.update(desc.split(":", 1)[0].removeprefix("struct ").split("+"))
        return h.hexdigest(), kinds

    digest, kinds = run()
    assert digest == run()[0]
    every = set(fz.STRUCTURE_KINDS[1]) | set(fz.STRUCTURE_KINDS[2])
    assert every <= set(kinds), every - set(kinds)


def test_structure_mutations_change_the_section_table_on_purpose(fz, own):
    # the mutations are relative to the file's real layout: a section block beyond the file, an int64 count
    # that is negative, the data section one item longer than the file ...
    seen = Counter()
    for i in range(600):
        src, data, desc, kind = fz.make_case(own, i, 5, "structure")
        if data[:4] != b"ABF2" or kind != "sec.count":
            continue
        seen["count"] += 1
        if "llNumEntries" in desc and "-> -" in desc:
            seen["negative"] += 1
    assert seen["count"] >= 10 and seen["negative"] >= 1, seen


def test_worker_pool_gives_the_same_outcomes_as_in_process(fz, own, tmp_path):
    kw = dict(seed=41, budget_s=BUDGET_S, sources=own, mix="all")
    a = fz.fuzz(60, workdir=tmp_path / "a", **kw)
    b = fz.fuzz(60, workdir=tmp_path / "b", workers=2, **kw)
    assert a["n_escaped"] == 0 and b["n_escaped"] == 0, fuzz_report(a) + fuzz_report(b)
    assert a["counts"] == b["counts"]
    assert b["worker_processes"] == 2 and b["peak_rss_mb"] > 0


def test_kill_during_write_loses_no_result(fz, tmp_path):
    r = fz.kill_during_write(10, seed=3, workdir=tmp_path, table_rows=10_000)
    assert r["kills"] == 10 and r["table_rounds"] == 5 and r["append_rounds"] == 5
    assert r["lost_results"] == 0 and r["writer_errors"] == 0, "\n".join(r["failures"])
    assert r["rows_acknowledged"] > 0
    assert sum(r["table_outcomes"].values()) == 5
