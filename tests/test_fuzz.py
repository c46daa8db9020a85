"""Fuzzing the .abf reading path: every mutated or truncated file is processed or refused with SeroError.

The engine is ``benchmarks/fuzz_abf.py`` (seeded mutations: byte flips in the first 6 KiB, header fields
set to awkward values, truncations; a per-case time budget; an address-space cap). Here it runs a few
thousand of these classic cases on small files of our own (always) and on the real files in ../shared/abf
(skipped when absent), plus named regression cases for the bugs it found; the structure-aware mutations and
the kill-during-write checks are in ``test_fuzz_structure.py``. ``python benchmarks/fuzz_abf.py --cases N``
runs many more.
"""

from __future__ import annotations

import hashlib
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import fuzz_report, load_fuzzer

from spikeinterface_sero import read_abf
from spikeinterface_sero.datasets import write_abf
from spikeinterface_sero.errors import AbfError, DataError, SeroError
from spikeinterface_sero.snippets import recording_to_snippets
from spikeinterface_sero.testing import synthetic_trace

ROOT = Path(__file__).resolve().parents[1]
SHARED_ABF = ROOT.parent / "shared" / "abf"
BUDGET_S = 5.0  # per case: a case taking longer is a hang


@pytest.fixture(scope="module")
def fz():
    return load_fuzzer()


@pytest.fixture(scope="module")
def own(fz, tmp_path_factory):
    return fz.prepare(fz.own_sources(tmp_path_factory.mktemp("fuzz_src")))


def test_fuzz_own_files(fz, own, tmp_path):
    r = fz.fuzz(2500, seed=7, budget_s=BUDGET_S, sources=own, workdir=tmp_path, mix="classic")
    assert r["n_escaped"] == 0, fuzz_report(r)
    # the mix exercises both outcomes, and several kinds of refusal
    assert r["n_processed"] > 200 and r["n_refused"] > 200, r["counts"]
    assert sum(k.startswith("refused:") for k in r["counts"]) >= 3, r["counts"]


def test_fuzz_shared_files(fz, tmp_path):
    if not SHARED_ABF.is_dir():
        pytest.skip("../shared/abf is not present on this machine")
    sources = fz.prepare(fz.shared_sources(SHARED_ABF))
    if not sources:
        pytest.skip("../shared/abf holds no .abf files")
    r = fz.fuzz(1200, seed=11, budget_s=BUDGET_S, sources=sources, workdir=tmp_path, mix="classic")
    assert r["n_escaped"] == 0, fuzz_report(r)
    assert r["n_processed"] > 100 and r["n_refused"] > 100, r["counts"]


def test_fuzz_is_deterministic(fz, own):
    def digest():
        h = hashlib.sha256()
        for _i, src, data, desc in fz.iter_cases(own, 200, seed=3):
            h.update(src.name.encode() + desc.encode() + data)
        return h.hexdigest()

    assert digest() == digest()


# ------------------------------------------------------------------------------------ named regressions
def _trace(n=8000, seed=0):
    """n samples at 40 kHz: -30 pA, 3 pA noise, spikes at samples 2000 and 5000."""
    return synthetic_trace(
        duration_s=n / 40_000.0, spike_times_s=[0.05, 0.125], noise_pa=3.0, offset_pa=-30.0, drift_pa=0.0, seed=seed
    )


def _patch(src: Path, dst: Path, fmt: str, offset: int, value) -> Path:
    b = bytearray(src.read_bytes())
    struct.pack_into(fmt, b, offset, value)
    dst.write_bytes(bytes(b))
    return dst


def _refused_fast(path: Path, exc=AbfError, match=None):
    t0 = time.perf_counter()
    with pytest.raises(exc, match=match) as e:
        read_abf(path)
    assert time.perf_counter() - t0 < 2.0
    assert "\n" not in str(e.value)
    return str(e.value)


@pytest.mark.parametrize("section", [1, 2, 3, 5, 11])  # ADC, DAC, Epoch, EpochPerDAC, Tag
@pytest.mark.parametrize("count", [2**62, 2**31, -1])
def test_abf2_entry_list_that_cannot_fit_is_refused_at_once(tmp_path, section, count):
    # Neo loops over llNumEntries entries; with a zero entry size it re-read one entry for ever
    p = write_abf(tmp_path / "a.abf", _trace(), 40_000.0)
    b = bytearray(p.read_bytes())
    struct.pack_into("<Iq", b, 76 + 16 * section + 4, 0, count)  # uBytes = 0, llNumEntries = count
    q = tmp_path / "bad.abf"
    q.write_bytes(bytes(b))
    _refused_fast(q, match="does not fit")


def test_abf1_event_driven_with_synch_time_unit_is_refused(tmp_path):
    # mode 1 with fSynchTimeUnit != 0: Neo divides the sweep lengths and ends with float offsets
    p = write_abf(
        tmp_path / "e.abf", np.stack([_trace()[:, None], _trace(seed=1)[:, None]]), 40_000.0, version=1, mode="episodic"
    )
    q = _patch(p, tmp_path / "m1.abf", "<h", 8, 1)  # nOperationMode
    q = _patch(q, q, "<f", 130, 12.5)  # fSynchTimeUnit (µs)
    _refused_fast(q, match="truncated or corrupt")


@pytest.mark.parametrize(
    "offset, value",
    [
        (730, float("nan")),
        (730, float("inf")),
        (730, 0.0),  # fADCProgrammableGain
        (244, 3.4e38),
        (244, float("nan")),
    ],
)  # fADCRange
def test_invalid_gain_is_refused(tmp_path, offset, value):
    # a NaN, infinite or overflowing gain made resampling or detection fail with a ValueError
    p = write_abf(tmp_path / "g.abf", _trace(), 40_000.0, version=1)
    q = _patch(p, tmp_path / "bad.abf", "<f", offset, value)
    _refused_fast(q, match="invalid scaling")


@pytest.mark.parametrize("interval_us", [1e-30, 1e-3, -25.0, 0.0, float("nan")])
def test_absurd_sampling_interval_is_refused(tmp_path, interval_us):
    p = write_abf(tmp_path / "r.abf", _trace(), 40_000.0, version=1)
    q = _patch(p, tmp_path / "bad.abf", "<f", 122, interval_us)  # fADCSampleInterval
    _refused_fast(q, exc=SeroError)


def test_channel_count_above_the_data_is_refused(tmp_path):
    p = write_abf(tmp_path / "c.abf", np.c_[_trace(), _trace(seed=2)], 40_000.0, version=1)
    q = _patch(p, tmp_path / "bad.abf", "<h", 120, 1)  # nADCNumChannels 2 -> 1, sampling sequence still 2
    _refused_fast(q, match="channels")


def test_extra_synch_entries_give_empty_sweeps_that_are_handled(tmp_path):
    # one more synch entry than sweeps: Neo reads an empty sweep; detection must not fail on it
    p = write_abf(
        tmp_path / "s.abf", np.stack([_trace()[:, None], _trace(seed=1)[:, None]]), 40_000.0, version=1, mode="episodic"
    )
    (n,) = struct.unpack_from("<i", p.read_bytes(), 96)
    q = _patch(p, tmp_path / "more.abf", "<i", 96, n + 2)  # lSynchArraySize
    try:
        rec = read_abf(q)
    except SeroError:
        return
    recording_to_snippets(rec)


def test_truncated_everywhere_in_the_header_is_refused(tmp_path):
    for version in (1, 2):
        data = write_abf(tmp_path / f"t{version}.abf", _trace(), 40_000.0, version=version).read_bytes()
        for cut in list(range(0, 6200, 97)) + [len(data) - 1]:
            q = tmp_path / f"cut{version}_{cut}.abf"
            q.write_bytes(data[:cut])
            try:
                read_abf(q)
            except SeroError:
                pass


def test_more_sweeps_than_the_open_file_limit(tmp_path):
    # Neo kept one open file per sweep: 1,000+ sweeps failed with OSError EMFILE under a 1024 limit
    import resource

    x = (-30 + np.random.default_rng(0).normal(0, 3, (600, 400, 1))).astype(np.float32)
    x[:, 200:208, 0] -= 150
    p = write_abf(tmp_path / "many.abf", x, 40_000.0, mode="episodic")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
    try:
        rec = read_abf(p)
        assert rec.get_num_segments() == 600
        assert len(recording_to_snippets(rec)) == 600
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_flood_of_tiny_sweeps_is_refused_quickly(tmp_path):
    # a corrupt synch array can describe 100,000 one-sample sweeps; scanning them took > 10 s
    p = write_abf(
        tmp_path / "tiny.abf",
        [np.full(20, -30.0, np.float32) + np.arange(20) for _ in range(1500)],
        40_000.0,
        mode="event-driven",
    )
    _refused_fast(p, exc=DataError, match="sweeps of")


@pytest.mark.parametrize("fs", [39999.9, 39998.0, 40004.0, 41234.567])
def test_rates_near_40khz_come_out_at_40khz(tmp_path, fs):
    # found by the fuzzer: 39999.4 Hz was left as it was (the resampler keeps ratio 1/1 there) and detection
    # refused it with "read .abf files with read_abf (it resamples)"; 39998 Hz was resampled to 40002 Hz
    p = write_abf(tmp_path / "r.abf", _trace(40_000), fs)
    rec = read_abf(p)
    assert rec.sampling_frequency == 40_000.0
    assert len(recording_to_snippets(rec)) == 2
